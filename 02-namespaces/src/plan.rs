//! From what was asked to what will be done: flags that imply others (and say so),
//! namespaces this kernel lacks, and combinations that cannot work, all explained
//! before anything is created.

use std::path::PathBuf;

use labkit::doctor::Host;
use labkit::{Failure, Result};

use crate::extension::Extension;
use crate::namespace::{Namespace, Namespaces, options};
use crate::user_ns::Mapping;

/// How the child gets its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// `clone(2)` creates the child in the new namespaces.
    #[default]
    Clone,
    /// `unshare(2)` moves us into them; the child we fork then inherits them.
    Unshare,
}

/// What was asked on the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub namespaces: Namespaces,
    pub all: bool,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: Option<PathBuf>,
    pub map_root: bool,
    pub init: bool,
    pub via: Via,
    pub command: Vec<String>,
}

/// What will be done.
#[derive(Debug, Clone)]
pub struct Plan {
    pub namespaces: Namespaces,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// Canonical path of the new root.
    pub rootfs: Option<PathBuf>,
    /// The uid/gid maps, when a user namespace is made.
    pub mapping: Option<Mapping>,
    pub init: bool,
    pub via: Via,
    pub command: Vec<String>,
    /// Why flags were added: narrated before we start.
    pub notes: Vec<String>,
    /// Files or directories of the host bound onto paths in the container (chapter
    /// 05 gives each container its own /etc/hosts this way). Needs a mount namespace.
    pub binds: Vec<Bind>,
    /// What a later chapter's runtime adds: environment, user, its last steps...
    pub extension: Extension,
    /// Chapter 03's cgroup for the child, when it has one.
    pub cgroup: Option<IntoCgroup>,
    /// Device nodes of the host's made in the container (`docker run --device`).
    pub devices: Vec<DeviceNode>,
    /// The runtime's own mounts, in order, instead of the chapter's /proc, /dev and
    /// /sys (an OCI bundle's `mounts`, for mini-runc). Needs a rootfs.
    pub mounts: Option<Vec<Mount>>,
    /// Namespaces that exist already, joined by path instead of made (an OCI
    /// bundle's `/proc/PID/ns/net` or `/run/netns/NAME`: a pod's containers share
    /// one network namespace this way). Not a type in `namespaces` too.
    pub join: Vec<(Namespace, PathBuf)>,
}

// ANCHOR: into_cgroup
/// Where chapter 03 puts the child: a cgroup v2 directory to create it in, and
/// whether the parent must still move it into cgroup v1 groups before it goes on.
/// Either way a new cgroup namespace (`--cgroup`) is made once the child is in its
/// group, so that the group is the root it sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntoCgroup {
    /// An open cgroup v2 directory: `clone3(CLONE_INTO_CGROUP)` creates the child in it.
    pub v2: Option<std::os::fd::RawFd>,
    /// cgroup v1 groups too, which only a write to their `cgroup.procs` can join.
    pub v1: bool,
}
// ANCHOR_END: into_cgroup

/// A node for a device of the host's, at `path` in the container: made with
/// `mknod` (in a user namespace, where mknod is refused, the host's node is bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub host: PathBuf,
    pub path: PathBuf,
    pub block: bool,
    pub major: u64,
    pub minor: u64,
    /// Permission bits, owner and group: the host node's.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A mount a runtime chose itself: `mount -t FSTYPE -o FLAGS,DATA SOURCE TARGET`, or
/// a bind mount (`MS_BIND` in `flags`, no `fstype`), TARGET being inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// A host path for a bind mount; for others a name (`proc`, `tmpfs`).
    pub source: String,
    pub target: String,
    pub fstype: Option<String>,
    /// `MS_*` flags: `MS_BIND` (and `MS_REC`), `MS_RDONLY`, `MS_NOSUID`...
    pub flags: nix::mount::MsFlags,
    /// The filesystem's own options (`mode=755,size=65536k`).
    pub data: Option<String>,
    /// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED` or `MS_UNBINDABLE` (with `MS_REC`),
    /// applied once mounted; empty to keep what it inherits.
    pub propagation: nix::mount::MsFlags,
}

/// `mount --bind SOURCE TARGET`, TARGET being a path inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl Plan {
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }
}

// ANCHOR: plan
pub fn plan(request: Request, host: &Host) -> Result<Plan> {
    if std::fs::read_dir(host.path("/proc/self/ns")).is_err() {
        return Err(Failure::new(
            "cannot read /proc/self/ns: /proc is not mounted here. Are we inside a chroot \
             (like ch01-chroot run)? Run from the host, or mount -t proc proc /proc",
        ));
    }
    let available: Namespaces = Namespace::ALL
        .into_iter()
        .filter(|ns| std::fs::symlink_metadata(host.path(format!("/proc/self/ns/{ns}"))).is_ok())
        .collect();
    let (ns, notes) = implied(&request, &available);
    refuse_impossible(&request, &ns, &available, host)?;
    let rootfs = match &request.rootfs {
        Some(dir) => Some(ch01_chroot::chroot_run::check_rootfs(dir)?),
        None => None,
    };
    let user = ns.contains(&Namespace::User);
    Ok(Plan {
        mapping: user.then(|| Mapping::for_caller(request.map_root)),
        namespaces: ns,
        hostname: request.hostname,
        domainname: request.domainname,
        rootfs,
        init: request.init,
        via: request.via,
        command: request.command,
        notes,
        binds: Vec::new(),
        extension: Extension::default(),
        cgroup: None,
        devices: Vec::new(),
        mounts: None,
        join: Vec::new(),
    })
}
// ANCHOR_END: plan

// ANCHOR: implied
/// The namespaces asked for, and those the other flags imply, each with why.
fn implied(request: &Request, available: &Namespaces) -> (Namespaces, Vec<String>) {
    let mut ns = request.namespaces.clone();
    if request.all {
        ns.extend(available.iter().copied());
    }
    let mut notes = vec![];
    let rules = [
        (
            request.hostname.is_some() || request.domainname.is_some(),
            Namespace::Uts,
            "--hostname and --domainname imply --uts: names are set in a UTS namespace of its own",
        ),
        (
            request.map_root,
            Namespace::User,
            "--map-root implies --user: ids are mapped in a user namespace",
        ),
        (
            request.init,
            Namespace::Pid,
            "--init implies --pid: it is the PID 1 of a new PID namespace",
        ),
        (
            request.rootfs.is_some(),
            Namespace::Mount,
            "--rootfs implies --mount: pivot_root changes / in a mount namespace, not for the host",
        ),
    ];
    for (asked, wanted, why) in rules {
        if asked && ns.insert(wanted) {
            notes.push(why.to_string());
        }
    }
    // After the rules above: --init's PID namespace needs a mount one too.
    if ns.contains(&Namespace::Pid) && ns.insert(Namespace::Mount) {
        notes.push(
            "--pid implies --mount: the command needs a fresh /proc, mounted where the host \
             cannot see it"
                .to_string(),
        );
    }
    (ns, notes)
}
// ANCHOR_END: implied

/// Combinations this kernel, or these privileges, cannot do: said before anything
/// is created.
fn refuse_impossible(
    request: &Request,
    ns: &Namespaces,
    available: &Namespaces,
    host: &Host,
) -> Result<()> {
    if let Some(missing) = ns.iter().find(|n| !available.contains(n)) {
        let kernel = host.kernel_release().unwrap_or_else(|| "?".into());
        return Err(Failure::new(format!(
            "{}: this kernel (Linux {kernel}) has no {missing} namespaces; they came in Linux {}. \
             Leave {} out, or use a newer kernel",
            missing.option(),
            missing.since(),
            missing.option()
        )));
    }
    let user = ns.contains(&Namespace::User);
    if host.effective_uid() != Some(0) && !user && !ns.is_empty() {
        return Err(Failure::new(format!(
            "creating {} namespaces needs root (CAP_SYS_ADMIN). Run it with sudo, \
             or add --user --map-root to create a user namespace first (rootless)",
            options(ns)
        )));
    }
    if user && request.rootfs.is_some() && !ns.contains(&Namespace::Pid) {
        return Err(Failure::new(
            "--rootfs with --user needs --pid too: the new root gets a fresh /proc, and the kernel \
             lets a user namespace mount /proc only for a PID namespace it owns. Add --pid",
        ));
    }
    match &request.hostname {
        Some(name) if name.is_empty() || name.len() > 64 => Err(Failure::new(format!(
            "--hostname {name:?}: a hostname is 1 to 64 bytes long"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host tree with a /proc of its own: these namespaces, this uid, this kernel.
    fn host(namespaces: &[&str], uid: u32) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(proc.join("self/ns")).unwrap();
        std::fs::create_dir_all(proc.join("sys/kernel")).unwrap();
        for ns in namespaces {
            std::fs::write(proc.join("self/ns").join(ns), "").unwrap();
        }
        let status = format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n");
        std::fs::write(proc.join("self/status"), status).unwrap();
        std::fs::write(proc.join("sys/kernel/osrelease"), "4.4.0\n").unwrap();
        let host = Host::at(dir.path());
        (dir, host)
    }

    const EVERY: [&str; 8] = ["uts", "pid", "mnt", "ipc", "net", "user", "cgroup", "time"];

    #[test]
    fn flags_imply_namespaces_and_say_why() {
        let (_dir, host) = host(&EVERY, 0);
        let request = Request {
            init: true,
            hostname: Some("box".into()),
            ..Request::default()
        };
        let plan = plan(request, &host).unwrap();
        let want = [Namespace::Uts, Namespace::Pid, Namespace::Mount];
        assert_eq!(plan.namespaces, want.into_iter().collect());
        assert_eq!(plan.notes.len(), 3, "{:?}", plan.notes);
        assert!(plan.notes[2].starts_with("--pid implies --mount"));
    }

    #[test]
    fn all_means_what_this_kernel_has() {
        let (_dir, host) = host(&["uts", "pid", "mnt", "ipc", "net"], 0);
        let request = Request {
            all: true,
            ..Request::default()
        };
        assert_eq!(plan(request, &host).unwrap().namespaces.len(), 5);
    }

    #[test]
    fn impossible_requests_are_refused_before_anything_is_made() {
        let (_dir, old) = host(&["uts", "pid", "mnt", "ipc", "net"], 0);
        let time = Request {
            namespaces: [Namespace::Time].into_iter().collect(),
            ..Request::default()
        };
        let refused = plan(time.clone(), &old).unwrap_err();
        assert!(refused.message().contains("Linux 4.4.0"), "{refused}");
        let (_dir, user) = host(&EVERY, 1000);
        let refused = plan(time, &user).unwrap_err();
        assert!(refused.message().contains("needs root"), "{refused}");
        let rootless = Request {
            map_root: true,
            rootfs: Some("/".into()),
            ..Request::default()
        };
        let refused = plan(rootless, &user).unwrap_err();
        assert!(refused.message().contains("needs --pid too"), "{refused}");
        let long = Request {
            hostname: Some("x".repeat(65)),
            ..Request::default()
        };
        assert!(plan(long, &old).is_err());
    }

    #[test]
    fn without_proc_it_says_where_we_are() {
        let dir = tempfile::tempdir().unwrap();
        let refused = plan(Request::default(), &Host::at(dir.path())).unwrap_err();
        assert!(refused.message().contains("/proc is not mounted"));
    }
}
