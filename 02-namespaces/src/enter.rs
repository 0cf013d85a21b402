//! `ch02-namespaces exec PID -- CMD`: join the namespaces of a running process with
//! `setns(2)`, as `nsenter` and `docker exec` do.
//!
//! Every handle is opened *before* the first setns: after joining the mount
//! namespace, `/proc/PID/...` may no longer mean the same thing. Joining a PID
//! namespace only places our future children in it, so we fork at the end, like
//! unshare.

use std::os::fd::{AsFd, OwnedFd};

use ch01_chroot::chroot_run::{IgnoreInterrupts, wait_for};
use labkit::failure::EXIT_TOOL_FAILED;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid, chroot, fchdir, fork};

use crate::environment::set_container_environment;
use crate::namespace::{Namespace, Namespaces, identity};

/// The order nsenter uses: the user namespace first (it grants the capabilities
/// needed for the rest), the mount namespace last (it changes what paths mean).
const ORDER: [Namespace; 8] = [
    Namespace::User,
    Namespace::Cgroup,
    Namespace::Ipc,
    Namespace::Uts,
    Namespace::Net,
    Namespace::Pid,
    Namespace::Time,
    Namespace::Mount,
];

fn fail(message: String) -> Failure {
    Failure::new(message).exit_code(EXIT_TOOL_FAILED)
}

fn open_handle(path: &str, flags: OFlag) -> Result<OwnedFd> {
    open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        let hint = if e == nix::errno::Errno::EACCES {
            " (another user's process: run as root)"
        } else {
            ""
        };
        fail(format!("open {path}: {}{hint}", e.desc()))
    })
}

/// What the joining process gets besides the namespaces (`docker exec -e -w -u`,
/// and the container's own restrictions through `before_exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub env: Vec<String>,
    pub workdir: Option<std::path::PathBuf>,
    pub user: Option<(u32, u32)>,
    pub before_exec: Option<crate::plan::Hook>,
    /// What the child takes as its stdin, stdout and stderr instead of ours (a
    /// runtime's own pipes: mini-docker's `exec`). The caller keeps and closes them.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// Called in the parent once the child is made, before waiting for it
    /// (mini-docker's `exec -t` relays the child's terminal there).
    pub while_running: Option<ParentHook>,
}

/// A step of the parent's, given the child's PID.
#[derive(Clone)]
pub struct ParentHook(pub std::sync::Arc<dyn Fn(Pid) -> Result<()> + Send + Sync>);

impl std::fmt::Debug for ParentHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParentHook")
    }
}

impl ExecOptions {
    /// In the forked child, before exec.
    fn prepare(&self) -> Result<()> {
        for (to, from) in self.stdio.iter().flat_map(|fds| fds.iter().enumerate()) {
            // SAFETY: dup2 onto our own stdio descriptors.
            if unsafe { libc::dup2(*from, to as i32) } < 0 {
                return Err(Failure::new(format!(
                    "dup2: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        set_container_environment(&self.env);
        if let Some(dir) = &self.workdir {
            std::env::set_current_dir(dir)
                .map_err(|e| Failure::new(format!("working directory {}: {e}", dir.display())))?;
        }
        if let Some(hook) = &self.before_exec {
            (hook.0)()?;
        }
        if let Some((uid, gid)) = self.user {
            crate::child::become_user(uid, gid)?;
        }
        Ok(())
    }
}

// ANCHOR: enter
/// Join `pid`'s namespaces (`None`: every one that differs from ours), then run
/// `command` there.
pub fn exec_in(
    pid: u32,
    wanted: Option<&Namespaces>,
    command: &[String],
    options: &ExecOptions,
) -> Result<i32> {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(fail(format!(
            "no process {pid}: it does not exist or has exited (ps -p {pid})"
        )));
    }
    let differs = |ns: Namespace| identity(&pid.to_string(), ns).ok() != identity("self", ns).ok();
    let join: Vec<Namespace> = ORDER
        .into_iter()
        .filter(|ns| wanted.map_or_else(|| differs(*ns), |w| w.contains(ns)))
        // Re-entering our own user namespace is an error (EINVAL): skip it.
        .filter(|ns| *ns != Namespace::User || differs(*ns))
        .collect();
    if join.is_empty() {
        narrate::note(format!(
            "process {pid} shares all our namespaces: nothing to join"
        ));
    }
    let handles: Vec<(Namespace, OwnedFd)> = join
        .iter()
        .map(|ns| {
            Ok((
                *ns,
                open_handle(&format!("/proc/{pid}/ns/{ns}"), OFlag::O_RDONLY)?,
            ))
        })
        .collect::<Result<_>>()?;
    let mount = join.contains(&Namespace::Mount);
    let (root, cwd) = if mount {
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        (
            Some(open_handle(&format!("/proc/{pid}/root"), dir)?),
            Some(open_handle(&format!("/proc/{pid}/cwd"), dir)?),
        )
    } else {
        (None, None)
    };
    // ANCHOR: dumpable
    // Until it execs, the joining process carries what the container must not get:
    // descriptors of the host, our memory. Not dumpable, no process in the container
    // may ptrace it or open its /proc/PID/{fd,exe,mem,environ} (CVE-2016-9962:
    // runc's did not, and a container process could take its descriptors). exec
    // makes the new program dumpable again.
    narrate::step("prctl(PR_SET_DUMPABLE, 0)", "# no shell equivalent");
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| fail(format!("prctl(PR_SET_DUMPABLE): {}", e.desc())))?;
    // ANCHOR_END: dumpable
    for (ns, fd) in &handles {
        narrate::step(
            format!("setns(open(\"/proc/{pid}/ns/{ns}\"), {})", ns.flag_name()),
            format!("nsenter --target {pid} {}", ns.option()),
        );
        setns(fd.as_fd(), CloneFlags::from_bits_retain(ns.flag()))
            .map_err(|e| fail(format!("setns {ns}: {}", e.desc())))?;
        if *ns == Namespace::User {
            // Be root of that namespace, as nsenter does.
            narrate::step("setgid(0); setuid(0)", "nsenter --setuid 0 --setgid 0");
            nix::unistd::setgid(0.into())
                .and_then(|()| nix::unistd::setuid(0.into()))
                .map_err(|e| fail(format!("becoming root in the user namespace: {}", e.desc())))?;
        }
    }
    if let (Some(root), Some(cwd)) = (root, cwd) {
        // The new mount namespace has its own idea of /: take the target's root and
        // working directory, opened before we moved.
        narrate::step(
            format!("fchdir(/proc/{pid}/root); chroot(\".\")"),
            format!("nsenter --target {pid} --root"),
        );
        fchdir(root.as_fd())
            .and_then(|()| chroot("."))
            .map_err(|e| fail(format!("entering its root: {}", e.desc())))?;
        narrate::step(
            format!("fchdir(/proc/{pid}/cwd)"),
            format!("nsenter --target {pid} --wd"),
        );
        fchdir(cwd.as_fd())
            .map_err(|e| fail(format!("entering its working directory: {}", e.desc())))?;
    }
    let _ignoring = IgnoreInterrupts::start()?;
    // SAFETY: single-threaded, so the child may do anything.
    match unsafe { fork() }.map_err(|e| fail(format!("fork: {}", e.desc())))? {
        ForkResult::Child => {
            IgnoreInterrupts::restore_defaults();
            narrate::step(
                format!(
                    "fork() = {}   # in its PID namespace: joining one applies to children",
                    nix::unistd::getpid()
                ),
                "nsenter --fork",
            );
            let root = format!("/proc/{pid}/root");
            let failure = match options.prepare() {
                Ok(()) => ch01_chroot::exec::exec_with_path(command, std::path::Path::new(&root)),
                Err(failure) => failure,
            };
            eprintln!("{}: {failure}", labkit::failure::program());
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(failure.code()) }
        }
        ForkResult::Parent { child } => {
            if let Some(hook) = &options.while_running {
                (hook.0)(child)?;
            }
            wait_for(child)
        }
    }
}
// ANCHOR_END: enter
