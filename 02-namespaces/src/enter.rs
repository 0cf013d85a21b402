//! `ch02-namespaces exec PID -- CMD`: join the namespaces of a running process with
//! `setns(2)`, as `nsenter` and `docker exec` do.
//!
//! Every handle is opened *before* the first setns: after joining the mount
//! namespace, `/proc/PID/...` may no longer mean the same thing. Joining a PID
//! namespace only places our future children in it, so we fork at the end, like
//! unshare.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use ch01_chroot::chroot_run::{IgnoreInterrupts, wait_for};
use labkit::failure::{Context, ExitCodes};
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, chroot, fchdir, fork};

use crate::extension::Extension;
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

fn open_handle(path: &str, flags: OFlag) -> Result<OwnedFd> {
    open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        let hint = if e == nix::errno::Errno::EACCES {
            " (another user's process: run as root)"
        } else {
            ""
        };
        Failure::new(format!("open {path}: {}{hint}", e.desc()))
    })
}

// ANCHOR: enter
/// Join `pid`'s namespaces (`None`: every one that differs from ours), then run
/// `command` there.
pub fn exec_in(
    pid: u32,
    wanted: Option<&Namespaces>,
    command: &[String],
    options: &Extension,
) -> Result<i32> {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(Failure::new(format!(
            "no process {pid}: it does not exist or has exited (ps -p {pid})"
        )));
    }
    let handles = Handles::open(pid, &to_join(pid, wanted))?;
    // ANCHOR: dumpable
    // Until it execs, the joining process carries what the container must not get:
    // descriptors of the host, our memory. Not dumpable, no process in the container
    // may ptrace it or open its /proc/PID/{fd,exe,mem,environ} (CVE-2016-9962:
    // runc's did not, and a container process could take its descriptors). exec
    // makes the new program dumpable again.
    narrate::step("prctl(PR_SET_DUMPABLE, 0)", "# no shell equivalent");
    nix::sys::prctl::set_dumpable(false).context(|| "prctl(PR_SET_DUMPABLE)".into())?;
    // ANCHOR_END: dumpable
    handles.join(pid)?;
    let _ignoring = IgnoreInterrupts::start()?;
    // SAFETY: single-threaded, so the child may do anything.
    match unsafe { fork() }.context(|| "fork".into())? {
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
            let failure = match options.apply() {
                Ok(()) => {
                    let root = std::path::Path::new(&root);
                    ch01_chroot::exec::exec_keeping(command, root, options.preserve_fds)
                }
                Err(failure) => failure,
            };
            let code = ExitCodes::RunsACommand.of(&failure);
            options.report(code, &failure);
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            if let Some(hook) = &options.while_running {
                (hook.0)(child)?;
            }
            match options.detach {
                true => Ok(0),
                false => wait_for(child),
            }
        }
    }
}
// ANCHOR_END: enter

// ANCHOR: join_paths
/// Join the namespaces `join` names by path, those `now` picks, in `ORDER`
/// (setns checks each is of its type: a file that is not one is refused).
pub fn join_paths(join: &[(Namespace, PathBuf)], now: impl Fn(Namespace) -> bool) -> Result<()> {
    for ns in ORDER.into_iter().filter(|ns| now(*ns)) {
        for (_, path) in join.iter().filter(|(n, _)| *n == ns) {
            narrate::step(
                format!("setns(open({path:?}), {})", ns.flag_name()),
                format!("nsenter {}={}", ns.option(), path.display()),
            );
            let fd = open_handle(&path.to_string_lossy(), OFlag::O_RDONLY)?;
            setns(fd.as_fd(), CloneFlags::from_bits_retain(ns.flag())).map_err(|e| {
                let why = match e {
                    nix::errno::Errno::EINVAL => format!("not a {ns} namespace"),
                    e => e.desc().to_string(),
                };
                Failure::new(format!(
                    "joining the {ns} namespace {}: {why}",
                    path.display()
                ))
            })?;
        }
    }
    Ok(())
}
// ANCHOR_END: join_paths

/// While it lives, the PID and time namespaces `join` names are the ones our
/// children are made in (joining them applies to children only); then ours again.
#[derive(Debug)]
pub struct ForChildren(Vec<(Namespace, OwnedFd)>);

impl ForChildren {
    pub fn enter(join: &[(Namespace, PathBuf)]) -> Result<ForChildren> {
        let for_children = |ns: Namespace| matches!(ns, Namespace::Pid | Namespace::Time);
        if !join.iter().any(|(ns, _)| for_children(*ns)) {
            return Ok(ForChildren(vec![]));
        }
        let ours = (join.iter().filter(|(ns, _)| for_children(*ns)))
            .map(|(ns, _)| {
                Ok((
                    *ns,
                    open_handle(&format!("/proc/self/ns/{ns}"), OFlag::O_RDONLY)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let guard = ForChildren(ours); // back to ours if a join fails half-way
        join_paths(join, for_children)?;
        Ok(guard)
    }
}

impl Drop for ForChildren {
    fn drop(&mut self) {
        for (ns, fd) in &self.0 {
            let _ = setns(fd.as_fd(), CloneFlags::from_bits_retain(ns.flag()));
        }
    }
}

/// The namespaces to join, in `ORDER`: those asked for, or every one that differs.
fn to_join(pid: u32, wanted: Option<&Namespaces>) -> Vec<Namespace> {
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
    join
}

/// Everything of the target's opened before we move: once in its mount namespace,
/// its /proc/PID paths may mean something else.
struct Handles {
    namespaces: Vec<(Namespace, OwnedFd)>,
    /// Its root and working directory, when its mount namespace is joined.
    root_and_cwd: Option<(OwnedFd, OwnedFd)>,
}

impl Handles {
    fn open(pid: u32, join: &[Namespace]) -> Result<Handles> {
        let namespaces = (join.iter())
            .map(|ns| {
                Ok((
                    *ns,
                    open_handle(&format!("/proc/{pid}/ns/{ns}"), OFlag::O_RDONLY)?,
                ))
            })
            .collect::<Result<_>>()?;
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let root_and_cwd = match join.contains(&Namespace::Mount) {
            true => Some((
                open_handle(&format!("/proc/{pid}/root"), dir)?,
                open_handle(&format!("/proc/{pid}/cwd"), dir)?,
            )),
            false => None,
        };
        Ok(Handles {
            namespaces,
            root_and_cwd,
        })
    }

    // ANCHOR: join
    /// setns(2) into each, in order; then the target's root and working directory.
    fn join(self, pid: u32) -> Result<()> {
        for (ns, fd) in &self.namespaces {
            narrate::step(
                format!("setns(open(\"/proc/{pid}/ns/{ns}\"), {})", ns.flag_name()),
                format!("nsenter --target {pid} {}", ns.option()),
            );
            setns(fd.as_fd(), CloneFlags::from_bits_retain(ns.flag()))
                .context(|| format!("setns {ns}"))?;
            if *ns == Namespace::User {
                // Be root of that namespace, as nsenter does.
                narrate::step("setgid(0); setuid(0)", "nsenter --setuid 0 --setgid 0");
                nix::unistd::setgid(0.into())
                    .and_then(|()| nix::unistd::setuid(0.into()))
                    .context(|| "becoming root in the user namespace".into())?;
            }
        }
        let Some((root, cwd)) = self.root_and_cwd else {
            return Ok(());
        };
        // The new mount namespace has its own idea of /: take the target's root and
        // working directory, opened before we moved.
        narrate::step(
            format!("fchdir(/proc/{pid}/root); chroot(\".\")"),
            format!("nsenter --target {pid} --root"),
        );
        fchdir(root.as_fd())
            .and_then(|()| chroot("."))
            .context(|| "entering its root".into())?;
        narrate::step(
            format!("fchdir(/proc/{pid}/cwd)"),
            format!("nsenter --target {pid} --wd"),
        );
        fchdir(cwd.as_fd()).context(|| "entering its working directory".into())
    }
    // ANCHOR_END: join
}
