//! From what was asked to what will be done: flags that imply others (and say so),
//! namespaces this kernel lacks, and combinations that cannot work, all explained
//! before anything is created.

use std::path::PathBuf;

use labkit::doctor::Host;
use labkit::failure::EXIT_TOOL_FAILED;
use labkit::{Failure, Result};

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
    /// `KEY=VALUE`s over the default environment (mini-docker: the image's and `-e`).
    pub env: Vec<String>,
    /// The directory the command starts in (created if missing, as Docker does).
    pub workdir: Option<PathBuf>,
    /// Called in the child just before exec, inside the new root (mini-docker
    /// mounts its tmpfs, masks /proc paths and takes away capabilities there).
    pub before_exec: Option<Hook>,
    /// Run the command as this uid and gid (`docker run -u UID[:GID]`).
    pub user: Option<(u32, u32)>,
    /// A close-on-exec descriptor the child writes to when it cannot become the
    /// command (its exit code, a byte, then why), instead of stderr. A successful
    /// exec closes it: its reader sees the end of it exactly when the command runs.
    pub report_failure: Option<std::os::fd::RawFd>,
    /// Chapter 03's cgroup for the child, when it has one.
    pub cgroup: Option<IntoCgroup>,
    /// Device nodes of the host's made in the container (`docker run --device`).
    pub devices: Vec<DeviceNode>,
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

/// A step a later chapter adds to the child's setup.
#[derive(Clone)]
pub struct Hook(pub std::sync::Arc<dyn Fn() -> Result<()> + Send + Sync>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

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

fn fail(message: String) -> Failure {
    Failure::new(message).exit_code(EXIT_TOOL_FAILED)
}

// ANCHOR: plan
pub fn plan(request: Request, host: &Host) -> Result<Plan> {
    if std::fs::read_dir(host.path("/proc/self/ns")).is_err() {
        return Err(fail(
            "cannot read /proc/self/ns: /proc is not mounted here. Are we inside a chroot \
             (like ch01-chroot run)? Run from the host, or mount -t proc proc /proc"
                .into(),
        ));
    }
    let available: Namespaces = Namespace::ALL
        .into_iter()
        .filter(|ns| std::fs::symlink_metadata(host.path(format!("/proc/self/ns/{ns}"))).is_ok())
        .collect();
    let mut ns = request.namespaces.clone();
    let mut notes = vec![];
    if request.all {
        ns.extend(available.iter().copied());
    }
    let mut imply = |ns: &mut Namespaces, cond: bool, wanted: Namespace, why: &str| {
        if cond && ns.insert(wanted) {
            notes.push(why.to_string());
        }
    };
    imply(
        &mut ns,
        request.hostname.is_some() || request.domainname.is_some(),
        Namespace::Uts,
        "--hostname and --domainname imply --uts: names are set in a UTS namespace of its own",
    );
    imply(
        &mut ns,
        request.map_root,
        Namespace::User,
        "--map-root implies --user: ids are mapped in a user namespace",
    );
    imply(
        &mut ns,
        request.init,
        Namespace::Pid,
        "--init implies --pid: it is the PID 1 of a new PID namespace",
    );
    imply(
        &mut ns,
        request.rootfs.is_some(),
        Namespace::Mount,
        "--rootfs implies --mount: pivot_root changes / in a mount namespace, not for the host",
    );
    let pid = ns.contains(&Namespace::Pid);
    imply(
        &mut ns,
        pid,
        Namespace::Mount,
        "--pid implies --mount: the command needs a fresh /proc, mounted where the host cannot see it",
    );

    if let Some(missing) = ns.iter().find(|n| !available.contains(n)) {
        let kernel = host.kernel_release().unwrap_or_else(|| "?".into());
        return Err(fail(format!(
            "{}: this kernel (Linux {kernel}) has no {missing} namespaces; they came in Linux {}. \
             Leave {} out, or use a newer kernel",
            missing.option(),
            missing.since(),
            missing.option()
        )));
    }
    let user = ns.contains(&Namespace::User);
    let root = host.effective_uid() == Some(0);
    if !root && !user && !ns.is_empty() {
        return Err(fail(format!(
            "creating {} namespaces needs root (CAP_SYS_ADMIN). Run it with sudo, \
             or add --user --map-root to create a user namespace first (rootless)",
            options(&ns)
        )));
    }
    if user && request.rootfs.is_some() && !ns.contains(&Namespace::Pid) {
        return Err(fail(
            "--rootfs with --user needs --pid too: the new root gets a fresh /proc, and the kernel \
             lets a user namespace mount /proc only for a PID namespace it owns. Add --pid"
                .into(),
        ));
    }
    if let Some(name) = &request.hostname
        && (name.is_empty() || name.len() > 64)
    {
        return Err(fail(format!(
            "--hostname {name:?}: a hostname is 1 to 64 bytes long"
        )));
    }
    let rootfs = match &request.rootfs {
        Some(dir) => Some(
            ch01_chroot::chroot_run::check_rootfs(dir)
                .map_err(|f| f.exit_code(EXIT_TOOL_FAILED))?,
        ),
        None => None,
    };
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
        env: Vec::new(),
        workdir: None,
        before_exec: None,
        user: None,
        report_failure: None,
        cgroup: None,
        devices: Vec::new(),
    })
}
// ANCHOR_END: plan
