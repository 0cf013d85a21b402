//! What Docker takes away from a container's root by default, on top of the
//! namespaces: most capabilities, the right to gain privileges through exec (setuid
//! binaries), and the files of /proc and /sys that reach into the host's kernel.
//! Written into the container's bundle (spec.rs), and done by the runtime's last
//! steps in the child, inside the new root (runtime/process.rs).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use caps::Capability;
use ch02_namespaces::container_fs::{Missing, mount_step, mount_target, remount_readonly};
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::{OFlag, open};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, fstat, makedev};

use crate::container::Config;

/// The capabilities Docker leaves a container (moby's `DefaultCapabilities`).
pub const DOCKER_CAPABILITIES: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Paths hidden from the container: files get /dev/null bound over them,
/// directories an empty read-only tmpfs (moby's `DefaultSpec` masked paths).
pub const MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write (the host's kernel settings).
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

// ANCHOR: null_device
/// The `/dev/null` to mask with, opened without following a symlink and checked to
/// be the null device, character 1:3. Bound over a masked path, anything else would
/// *unmask* it, or expose what it points to (CVE-2025-31133: a container that
/// made its /dev/null a symlink to /proc/sys/kernel/core_pattern got that file
/// bound, writable, over the paths meant to be hidden).
fn null_device() -> Result<OwnedFd> {
    let refuse = |why: &str| {
        Failure::new(format!(
            "/dev/null in the container {why}: refusing to mask /proc and /sys with it"
        ))
    };
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd =
        open("/dev/null", flags, Mode::empty()).map_err(|e| refuse(&format!(": {}", e.desc())))?;
    let st = fstat(&fd).map_err(|e| refuse(&format!(": {}", e.desc())))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(refuse("is a symlink"));
    }
    if !is_char_device(&fd, 1, 3) {
        return Err(refuse("is not the null device (character 1:3)"));
    }
    Ok(fd)
}
// ANCHOR_END: null_device

/// Is `fd` the character device `major:minor`?
pub fn is_char_device(fd: &OwnedFd, major: u64, minor: u64) -> bool {
    fstat(fd).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == makedev(major, minor)
    })
}

// ANCHOR: mounts
/// Mask and make read-only, inside the container's root (after `pivot_root`):
/// Docker's lists (`MASKED`, `READ_ONLY`), or a bundle's (`maskedPaths`,
/// `readonlyPaths`). Every target is reached by chapter 02's walk, which follows
/// no symlink.
pub fn protect_paths(masked: &[impl AsRef<str>], read_only: &[impl AsRef<str>]) -> Result<()> {
    // ANCHOR: hole_masks
    narrate::note(format!(
        "masking {} paths of /proc and /sys, {} more read-only",
        masked.len(),
        read_only.len()
    ));
    let null = null_device()?;
    let null = format!("/proc/self/fd/{}", null.as_raw_fd());
    let root = Path::new("/");
    for path in masked.iter().map(AsRef::as_ref) {
        let Some(target) = mount_target(root, path, Missing::Skip)? else {
            continue;
        };
        let is_dir = fstat(target.fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if is_dir {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            let shell = format!("mount -t tmpfs -o ro tmpfs {path}");
            mount_step("tmpfs", &target, Some("tmpfs"), flags, None, shell)?;
        } else {
            let shell = format!("mount --bind /dev/null {path}");
            mount_step(&null, &target, None, MsFlags::MS_BIND, None, shell)?;
        }
    }
    for path in read_only.iter().map(AsRef::as_ref) {
        let Some(target) = mount_target(root, path, Missing::Skip)? else {
            continue;
        };
        let shell = format!("mount --bind {path} {path}");
        mount_step(
            path,
            &target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            shell,
        )?;
        // Walked again: the descriptor from before holds what is under the mount.
        if let Some(mounted) = mount_target(root, path, Missing::Skip)? {
            remount_readonly(&mounted, nix::mount::MsFlags::empty())?;
        }
    }
    Ok(())
    // ANCHOR_END: hole_masks
}
// ANCHOR_END: mounts

/// A capability by name, as Docker takes it: `NET_ADMIN`, `net_admin` or
/// `CAP_NET_ADMIN`; `ALL` is every one.
pub fn capability(name: &str) -> Result<Vec<Capability>> {
    if name.eq_ignore_ascii_case("ALL") {
        return Ok(caps::all().into_iter().collect());
    }
    let upper = name.to_uppercase();
    let full = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    full.parse::<Capability>()
        .map(|cap| vec![cap])
        .map_err(|_| {
            Failure::new(format!(
                "{name}: no such capability (see man 7 capabilities)"
            ))
        })
}

/// Docker's set, less the `--cap-drop`s, plus the `--cap-add`s.
pub fn capabilities(config: &Config) -> Result<caps::CapsHashSet> {
    // ANCHOR: hole_cap_add_drop
    let mut keep: caps::CapsHashSet = DOCKER_CAPABILITIES.into_iter().collect();
    for name in &config.cap_drop {
        for cap in capability(name)? {
            keep.remove(&cap);
        }
    }
    for name in &config.cap_add {
        keep.extend(capability(name)?);
    }
    Ok(keep)
    // ANCHOR_END: hole_cap_add_drop
}
