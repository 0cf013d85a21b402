//! The container's filesystem: a private mount tree, the rootfs bound onto itself,
//! /proc, a minimal /dev, a read-only /sys, then `pivot_root`, which, unlike
//! chroot, leaves no old root to walk back to.
//!
//! All of this happens in the child's own mount namespace, after making every mount
//! private: otherwise, on hosts where `/` is shared (systemd does that), each mount
//! would propagate back to the host, and `pivot_root` refuses to work at all.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{chdir, pivot_root};

use crate::namespace::Namespace;
use crate::plan::{Bind, DeviceNode, Mount, Plan};

/// Is `/` the root of a mount? Not inside a chroot into a plain directory, and
/// then neither `mount --make-rprivate /` nor `pivot_root` can work.
pub fn root_is_a_mount() -> bool {
    // SAFETY: zeroed memory is a valid statx struct, which statx only writes into.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a pointer to our struct.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            libc::STATX_BASIC_STATS,
            &mut stx,
        )
    };
    rc != 0 || stx.stx_attributes & (libc::STATX_ATTR_MOUNT_ROOT as u64) != 0
}

const IN_A_CHROOT: &str = " (/ is not a mount point: we are inside a chroot, such as ch01-chroot \
    run. Mount namespaces and pivot_root need the real root: run this from the host)";

fn mount_failed(what: &str, errno: Errno) -> Failure {
    let why = match errno {
        Errno::EPERM => {
            " (not allowed here: in a user namespace some mounts need a PID or network namespace of their own)"
        }
        Errno::ENOENT => " (the mount point does not exist)",
        Errno::EINVAL if !root_is_a_mount() => IN_A_CHROOT,
        _ => "",
    };
    Failure::new(format!("{what}: {}{why}", errno.desc()))
}

/// Mount onto `target` through its descriptor; the narration shows its path.
pub fn mount_step(
    source: &str,
    target: &Target,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    shell: String,
) -> Result<()> {
    let call = format!(
        "mount({source:?}, {:?}, {}, {}{})",
        target.shown,
        fstype.map_or("NULL".into(), |t| format!("{t:?}")),
        flag_names(flags),
        data.map(|d| format!(", {d:?}")).unwrap_or_default()
    );
    narrate::step(&call, shell);
    mount(Some(source), target.via_fd().as_str(), fstype, flags, data)
        .map_err(|e| mount_failed(&call, e))
}

/// Each flag: its name in C, and as `mount -o` spells it.
const FLAGS: [(MsFlags, &str, &str); 17] = [
    (MsFlags::MS_BIND, "MS_BIND", "bind"),
    (MsFlags::MS_REC, "MS_REC", "rec"),
    (MsFlags::MS_PRIVATE, "MS_PRIVATE", "private"),
    (MsFlags::MS_SLAVE, "MS_SLAVE", "slave"),
    (MsFlags::MS_SHARED, "MS_SHARED", "shared"),
    (MsFlags::MS_UNBINDABLE, "MS_UNBINDABLE", "unbindable"),
    (MsFlags::MS_RDONLY, "MS_RDONLY", "ro"),
    (MsFlags::MS_REMOUNT, "MS_REMOUNT", "remount"),
    (MsFlags::MS_NOSUID, "MS_NOSUID", "nosuid"),
    (MsFlags::MS_NODEV, "MS_NODEV", "nodev"),
    (MsFlags::MS_NOEXEC, "MS_NOEXEC", "noexec"),
    (MsFlags::MS_SYNCHRONOUS, "MS_SYNCHRONOUS", "sync"),
    (MsFlags::MS_DIRSYNC, "MS_DIRSYNC", "dirsync"),
    (MsFlags::MS_NOATIME, "MS_NOATIME", "noatime"),
    (MsFlags::MS_NODIRATIME, "MS_NODIRATIME", "nodiratime"),
    (MsFlags::MS_RELATIME, "MS_RELATIME", "relatime"),
    (MsFlags::MS_STRICTATIME, "MS_STRICTATIME", "strictatime"),
];

fn flag_names(flags: MsFlags) -> String {
    let names: Vec<&str> = (FLAGS.iter())
        .filter(|(f, _, _)| flags.contains(*f))
        .map(|(_, n, _)| *n)
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// The flags as `mount -o` options (`ro,nosuid`).
fn option_names(flags: MsFlags) -> String {
    let names: Vec<&str> = (FLAGS.iter())
        .filter(|(f, _, _)| flags.contains(*f))
        .map(|(_, _, o)| *o)
        .collect();
    names.join(",")
}

// ANCHOR: make_private
/// Stop mount events from travelling between this namespace and the host, in both
/// directions, for every mount.
pub fn make_private() -> Result<()> {
    narrate::step(
        "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)",
        "mount --make-rprivate /",
    );
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| mount_failed("mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)", e))
}
// ANCHOR_END: make_private

/// `--pid` without `--rootfs`: a fresh /proc over the host's, in our mount
/// namespace only, so that `ps` sees the new PID namespace.
pub fn mount_fresh_proc() -> Result<()> {
    proc_mount(&Target::trusted(Path::new("/proc"))?)
}

fn proc_mount(target: &Target) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_step(
        "proc",
        target,
        Some("proc"),
        flags,
        None,
        format!("mount -t proc proc {}", target.shown.display()),
    )
}

// ANCHOR: target
/// A place to mount on, reached without following any symlink and held open. The
/// mount goes through the descriptor (`/proc/self/fd/N`), not through the path: a
/// name swapped for a symlink after the walk (CVE-2021-30465) changes nothing.
#[derive(Debug)]
pub struct Target {
    fd: OwnedFd,
    /// The path it was reached by, for messages and narration.
    pub shown: PathBuf,
}

impl Target {
    /// A path the caller chose on the host (the rootfs itself, the host's /proc):
    /// opened as it is.
    pub fn trusted(path: &Path) -> Result<Target> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .context(|| path.display().to_string())?;
        Ok(Target {
            fd,
            shown: path.to_path_buf(),
        })
    }

    /// The magic link the kernel resolves to exactly this descriptor's file.
    pub fn via_fd(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}
// ANCHOR_END: target

/// What `mount_target` does when a name is missing: make a directory, make an
/// empty file, or nothing (`Ok(None)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    MakeDir,
    MakeFile,
    Skip,
}

/// A directory inside the rootfs to mount on: created when missing.
fn mount_point(rootfs: &Path, inside: &str) -> Result<Target> {
    Ok(mount_target(rootfs, inside, Missing::MakeDir)?.expect("made when missing"))
}

// ANCHOR: mount_target
/// Walk `inside` one name at a time, each opened relative to its parent's
/// descriptor with `O_NOFOLLOW` (and made with `mkdirat`, or `openat(O_CREAT)` for a
/// final file, when missing). A symlink anywhere on the way is refused: the image
/// owns the rootfs, and its `/proc`, `/dev` or `/etc` could point anywhere on the
/// host. What comes back is a descriptor, not a path.
pub fn mount_target(root: &Path, inside: &str, missing: Missing) -> Result<Option<Target>> {
    let refuse = |why: String| {
        Failure::new(format!(
            "{inside} in the rootfs: {why}: refusing to mount there (it could lead onto the host)"
        ))
    };
    let names: Vec<&str> = inside.split('/').filter(|n| !n.is_empty()).collect();
    let walk = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut here = nix::fcntl::open(root, walk | OFlag::O_DIRECTORY, Mode::empty())
        .context(|| root.display().to_string())?;
    for (i, name) in names.iter().enumerate() {
        if *name == ".." || *name == "." {
            return Err(refuse(format!("{name:?} is not allowed")));
        }
        let last = i + 1 == names.len();
        let flags = match last && missing != Missing::MakeDir {
            true => walk, // the last name may be a file: checked below
            false => walk | OFlag::O_DIRECTORY,
        };
        here = match openat(&here, *name, flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::ENOENT) => match (last, missing) {
                (_, Missing::Skip) => return Ok(None),
                (true, Missing::MakeFile) => {
                    let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | walk;
                    openat(
                        &here,
                        *name,
                        create - OFlag::O_PATH,
                        Mode::from_bits_truncate(0o644),
                    )
                    .map_err(|e| refuse(format!("cannot create {name}: {}", e.desc())))?
                }
                _ => {
                    nix::sys::stat::mkdirat(&here, *name, Mode::from_bits_truncate(0o755))
                        .map_err(|e| refuse(format!("cannot create {name}: {}", e.desc())))?;
                    openat(&here, *name, walk | OFlag::O_DIRECTORY, Mode::empty())
                        .map_err(|e| refuse(format!("{name}: {}", e.desc())))?
                }
            },
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(refuse(format!("{name} is a symlink or not a directory")));
            }
            Err(e) => return Err(refuse(format!("{name}: {}", e.desc()))),
        };
        // O_PATH|O_NOFOLLOW opens a final symlink itself, rather than failing.
        if last && nix::sys::stat::fstat(&here).is_ok_and(|st| is_symlink(st.st_mode)) {
            return Err(refuse(format!("{name} is a symlink")));
        }
    }
    Ok(Some(Target {
        fd: here,
        shown: root.join(inside.trim_start_matches('/')),
    }))
}
// ANCHOR_END: mount_target

/// The device nodes a program expects: (name, major, minor).
pub const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn is_symlink(mode: libc::mode_t) -> bool {
    mode & libc::S_IFMT == libc::S_IFLNK
}

// ANCHOR: prepare_rootfs
/// Mount what a container needs inside `rootfs`, then make it our `/`.
/// In a user namespace device nodes cannot be created, so the host's are bound in;
/// sysfs may only be mounted by the owner of the network namespace.
pub fn enter_rootfs(plan: &Plan, rootfs: &Path) -> Result<()> {
    let (in_user_ns, own_net) = (plan.has(Namespace::User), plan.has(Namespace::Net));
    // pivot_root needs the new root to be a mount point: bind it onto itself.
    let r = rootfs.display();
    mount_step(
        &rootfs.to_string_lossy(),
        &Target::trusted(rootfs)?,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        format!("mount --rbind {r} {r}"),
    )?;
    if let Some(mounts) = &plan.mounts {
        mount_all(rootfs, mounts, in_user_ns)?;
        return finish_rootfs(plan, rootfs, in_user_ns);
    }
    proc_mount(&mount_point(rootfs, "/proc")?)?;
    setup_dev(rootfs, in_user_ns)?;
    let sys = mount_point(rootfs, "/sys")?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if own_net || !in_user_ns {
        mount_step(
            "sysfs",
            &sys,
            Some("sysfs"),
            ro,
            None,
            format!("mount -t sysfs -o ro sysfs {r}/sys"),
        )?;
    } else {
        narrate::note(
            "no network namespace of our own, so no sysfs mount: bind the host's /sys, read-only",
        );
        mount_step(
            "/sys",
            &sys,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            format!("mount --rbind /sys {r}/sys"),
        )?;
        // As the fresh sysfs above: nothing in /sys is a program, a device or setuid.
        remount_readonly(
            &mount_point(rootfs, "/sys")?,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    if plan.has(Namespace::Cgroup) && host_is_cgroup_v2() {
        cgroup_mount(rootfs)?;
    }
    finish_rootfs(plan, rootfs, in_user_ns)
}
// ANCHOR_END: prepare_rootfs

/// What every root gets last: `--device` nodes, the binds, the runtime's step
/// before `pivot_root` (while the host's paths still resolve), then `pivot_root`.
fn finish_rootfs(plan: &Plan, rootfs: &Path, in_user_ns: bool) -> Result<()> {
    for node in &plan.devices {
        add_device(rootfs, node, in_user_ns)?;
    }
    bind_all(rootfs, &plan.binds)?;
    if let Some(step) = &plan.extension.before_pivot_root {
        (step.0)()?;
    }
    pivot_into(rootfs)
}

// ANCHOR: mount_all
/// A runtime's own list (an OCI bundle's `mounts`): each in order, each target
/// reached by the walk that follows no symlink. When `/dev` is a fresh tmpfs, the
/// device nodes and links every program expects are made in it at once (runc
/// makes them after the whole list, over whatever is there by then): a later mount
/// over `/dev` (a volume) hides them, and its files are never taken for them.
fn mount_all(rootfs: &Path, mounts: &[Mount], in_user_ns: bool) -> Result<()> {
    for m in mounts {
        mount_one(rootfs, m)?;
        if m.target == "/dev" && m.fstype.as_deref() == Some("tmpfs") {
            let dev = mount_point(rootfs, "/dev")?;
            make_devices(&dev, in_user_ns)?;
            dev_links(&dev)?;
        }
    }
    Ok(())
}

fn mount_one(rootfs: &Path, m: &Mount) -> Result<()> {
    let bind = m.flags.contains(MsFlags::MS_BIND);
    let missing = match bind && !Path::new(&m.source).is_dir() {
        true => Missing::MakeFile,
        false => Missing::MakeDir,
    };
    let target = mount_target(rootfs, &m.target, missing)?.expect("made when missing");
    let shown = target.shown.display().to_string();
    let again = || {
        // The descriptor holds what was under the new mount: walk again to reach it.
        mount_target(rootfs, &m.target, Missing::Skip)?
            .ok_or_else(|| Failure::new(format!("{}: gone", m.target)))
    };
    if bind {
        let rec = m.flags & MsFlags::MS_REC;
        let r = if rec.is_empty() { "" } else { "r" };
        let shell = format!("mount --{r}bind {} {shown}", m.source);
        mount_step(
            &m.source,
            &target,
            None,
            MsFlags::MS_BIND | rec,
            None,
            shell,
        )?;
        // Bind mounts take their other flags only on a remount.
        let rest = m.flags - MsFlags::MS_BIND - MsFlags::MS_REC;
        if !rest.is_empty() {
            remount_bind(&again()?, rest)?;
        }
    } else {
        let fstype = m.fstype.as_deref().unwrap_or("none");
        let options = [option_names(m.flags), m.data.clone().unwrap_or_default()]
            .into_iter()
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        let shell = format!("mount -t {fstype} -o {options} {} {shown}", m.source);
        mount_step(
            &m.source,
            &target,
            Some(fstype),
            m.flags,
            m.data.as_deref(),
            shell,
        )?;
    }
    if !m.propagation.is_empty() {
        let kind = option_names(m.propagation - MsFlags::MS_REC);
        let r = if m.propagation.contains(MsFlags::MS_REC) {
            "r"
        } else {
            ""
        };
        let shell = format!("mount --make-{r}{kind} {shown}");
        mount_step("none", &again()?, None, m.propagation, None, shell)?;
    }
    Ok(())
}
// ANCHOR_END: mount_all

/// Whether the host's `/sys/fs/cgroup` is one cgroup v2 tree (a pure v2 host).
pub fn host_is_cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

// ANCHOR: cgroup_mount
/// With a cgroup namespace of its own on a v2 host, the container gets its own
/// `/sys/fs/cgroup`, read-only, as Docker mounts it: a cgroup2 mounted inside the
/// namespace shows the namespace's root, the container's group, and nothing above.
fn cgroup_mount(rootfs: &Path) -> Result<()> {
    let target = mount_point(rootfs, "/sys/fs/cgroup")?;
    mount_step(
        "cgroup2",
        &target,
        Some("cgroup2"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
        format!(
            "mount -t cgroup2 -o ro cgroup2 {}/sys/fs/cgroup",
            rootfs.display()
        ),
    )
}
// ANCHOR_END: cgroup_mount

// ANCHOR: bind_all
/// Bind each source onto its target under `root`. A missing target is created (an
/// empty file for a file, a directory for a directory), as Docker does.
pub fn bind_all(root: &Path, binds: &[Bind]) -> Result<()> {
    for bind in binds {
        let inside = bind.target.to_string_lossy();
        let missing = match bind.source.is_dir() {
            true => Missing::MakeDir,
            false => Missing::MakeFile,
        };
        let target = mount_target(root, &inside, missing)?.expect("made when missing");
        mount_step(
            &bind.source.to_string_lossy(),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            format!(
                "mount --bind {} {}",
                bind.source.display(),
                target.shown.display()
            ),
        )?;
        if bind.read_only {
            // The descriptor still holds what was under the mount: walk again to
            // reach the mount itself.
            let mounted = mount_target(root, &inside, Missing::Skip)?;
            remount_readonly(
                &mounted.ok_or_else(|| Failure::new(format!("{inside}: gone")))?,
                MsFlags::empty(),
            )?;
        }
    }
    Ok(())
}
// ANCHOR_END: bind_all

fn setup_dev(rootfs: &Path, in_user_ns: bool) -> Result<()> {
    let r = rootfs.display();
    mount_step(
        "tmpfs",
        &mount_point(rootfs, "/dev")?,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
        format!("mount -t tmpfs -o mode=755 tmpfs {r}/dev"),
    )?;
    // Walked again: the descriptor from before the mount is the directory under it.
    let dev = mount_point(rootfs, "/dev")?;
    make_devices(&dev, in_user_ns)?;
    mount_step(
        "devpts",
        &mount_point(rootfs, "/dev/pts")?,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
        format!("mount -t devpts -o newinstance,ptmxmode=0666 devpts {r}/dev/pts"),
    )?;
    dev_links(&dev)
}

/// The nodes of `DEVICES` in the fresh `/dev` (bound from the host's in a user
/// namespace, where mknod is refused).
fn make_devices(dev: &Target, in_user_ns: bool) -> Result<()> {
    let io_failed = |what: String, e: Errno| Failure::new(format!("{what}: {}", e.desc()));
    for (name, major, minor) in DEVICES {
        let shown = dev.shown.join(name);
        if in_user_ns {
            // mknod(2) of a device needs CAP_MKNOD in the *initial* user namespace.
            let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
            let fd = openat(dev.fd(), name, create, Mode::from_bits_truncate(0o644))
                .map_err(|e| io_failed(shown.display().to_string(), e))?;
            let shell = format!("touch {0}; mount --bind /dev/{name} {0}", shown.display());
            let target = Target { fd, shown };
            mount_step(
                &format!("/dev/{name}"),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
                shell,
            )?;
        } else {
            narrate::step(
                format!("mknod({shown:?}, S_IFCHR|0666, makedev({major}, {minor}))"),
                format!("mknod -m 666 {} c {major} {minor}", shown.display()),
            );
            let mode = Mode::from_bits_truncate(0o666);
            mknodat(dev.fd(), name, SFlag::S_IFCHR, mode, makedev(major, minor))
                .map_err(|e| io_failed(format!("mknod {}", shown.display()), e))?;
            // mknod's mode is filtered by the umask; devices must be usable by all.
            nix::sys::stat::fchmodat(
                dev.fd(),
                name,
                mode,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| io_failed(format!("chmod {}", shown.display()), e))?;
        }
    }
    Ok(())
}

/// `/dev/ptmx` (to the devpts instance's), `/dev/fd`, stdin, stdout and stderr.
fn dev_links(dev: &Target) -> Result<()> {
    narrate::step(
        "symlink(\"pts/ptmx\", \"/dev/ptmx\"), /dev/fd, stdin, stdout, stderr",
        "ln -s pts/ptmx dev/ptmx; ln -s /proc/self/fd dev/fd ...",
    );
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        nix::unistd::symlinkat(target, dev.fd(), link)
            .map_err(|e| Failure::new(format!("symlink /dev/{link}: {}", e.desc())))?;
    }
    Ok(())
}

// ANCHOR: add_device
/// `--device`: a node for a device of the host's, at its path in the container (its
/// directories made as needed, never through a symlink). Whether it can be opened
/// is the device cgroup's to say (chapter 03).
fn add_device(rootfs: &Path, node: &DeviceNode, in_user_ns: bool) -> Result<()> {
    let inside = node.path.to_string_lossy();
    let (r, host) = (rootfs.display(), node.host.display());
    if in_user_ns {
        let target = mount_target(rootfs, &inside, Missing::MakeFile)?.expect("made");
        return mount_step(
            &node.host.to_string_lossy(),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            format!("touch {r}{inside}; mount --bind {host} {r}{inside}"),
        );
    }
    let parent = node
        .path
        .parent()
        .map_or("/".into(), |p| p.to_string_lossy());
    let name = node.path.file_name().unwrap_or_default();
    let dir = mount_point(rootfs, &parent)?;
    let (kind, letter) = match node.block {
        true => (SFlag::S_IFBLK, 'b'),
        false => (SFlag::S_IFCHR, 'c'),
    };
    let (major, minor, mode) = (node.major, node.minor, node.mode & 0o7777);
    narrate::step(
        format!(
            "mknod({:?}, {kind:?}|{mode:o}, makedev({major}, {minor}))",
            dir.shown.join(name)
        ),
        format!("mknod -m {mode:o} {r}{inside} {letter} {major} {minor}"),
    );
    let failed = |what: &str, e: Errno| Failure::new(format!("{what} {inside}: {}", e.desc()));
    mknodat(
        &dir.fd,
        name,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .map_err(|e| failed("mknod", e))?;
    // As the host's node: its mode (mknod's is filtered by the umask), owner, group.
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    // (Just made in a directory held by descriptor: it is the node, not a symlink.)
    let follow = nix::sys::stat::FchmodatFlags::FollowSymlink;
    nix::sys::stat::fchmodat(&dir.fd, name, Mode::from_bits_truncate(mode), follow)
        .map_err(|e| failed("chmod", e))?;
    nix::unistd::fchownat(
        &dir.fd,
        name,
        Some(node.uid.into()),
        Some(node.gid.into()),
        flags,
    )
    .map_err(|e| failed("chown", e))
}
// ANCHOR_END: add_device

/// Make a bind mount read-only, with `also` (nosuid, nodev, noexec), keeping the
/// flags the kernel locked on it (in a user namespace, a remount may not drop them).
pub fn remount_readonly(target: &Target, also: MsFlags) -> Result<()> {
    let shell = format!("mount -o remount,bind,ro {}", target.shown.display());
    remount(target, MsFlags::MS_RDONLY | also, shell)
}

/// Remount a bind mount with `flags` (read-only, nosuid...), keeping those the
/// kernel locked on it.
pub fn remount_bind(target: &Target, flags: MsFlags) -> Result<()> {
    let shell = format!(
        "mount -o remount,bind,{} {}",
        option_names(flags),
        target.shown.display()
    );
    remount(target, flags, shell)
}

fn remount(target: &Target, flags: MsFlags, shell: String) -> Result<()> {
    let locked = nix::sys::statvfs::fstatvfs(target.fd())
        .context(|| format!("statvfs {}", target.shown.display()))?
        .flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    use nix::sys::statvfs::FsFlags;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if locked.contains(fs) {
            flags |= ms;
        }
    }
    mount_step("none", target, None, flags, None, shell)
}

// ANCHOR: pivot
/// Make `rootfs` our `/`, and detach the old root so that nothing of the host's
/// filesystem is reachable any more (chroot only hides it).
pub fn pivot_into(rootfs: &Path) -> Result<()> {
    // ANCHOR: hole_pivot
    let r = rootfs.display();
    narrate::step(format!("chdir({rootfs:?})"), format!("cd {r}"));
    chdir(rootfs).context(|| format!("chdir {r}"))?;
    // pivot_root(".", "."): the new root is here, and the old root gets stacked on
    // top of it, so no directory for the old root has to be made in the rootfs.
    narrate::step("pivot_root(\".\", \".\")", "pivot_root . .");
    pivot_root(".", ".").map_err(|e| {
        let why = match e {
            Errno::EINVAL if !root_is_a_mount() => IN_A_CHROOT,
            Errno::EINVAL => {
                " (the new root must be a mount point and neither it nor / may be \
                              a shared mount: was / made private first?)"
            }
            _ => "",
        };
        Failure::new(format!("pivot_root: {}{why}", e.desc()))
    })?;
    narrate::step(
        "umount2(\".\", MNT_DETACH)",
        "umount -l .   # the old root, stacked on top",
    );
    umount2(".", MntFlags::MNT_DETACH).context(|| "unmounting the old root".into())?;
    narrate::step("chdir(\"/\")", "cd /");
    chdir("/").context(|| "chdir /".into())
    // ANCHOR_END: hole_pivot
}
// ANCHOR_END: pivot
