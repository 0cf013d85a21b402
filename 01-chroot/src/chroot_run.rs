//! `ch01-chroot run ROOTFS -- CMD`: the whole of what `chroot(8)` does.
//!
//! fork, then in the child: `chroot(ROOTFS)`, `chdir("/")`, `execve(CMD)`. The parent
//! waits and ends with the child's exit code (128 + N when signal N killed it, as
//! shells report it).

use std::path::{Path, PathBuf};

use labkit::failure::{Context, ExitCodes};
use labkit::narrate;
use labkit::privilege::require_root;
use labkit::{Failure, Result};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, chdir, chroot, fork, getpid};

use crate::exec::exec_command;

/// The tool's name, for the messages a forked child prints itself.
pub const TOOL: &str = "ch01-chroot";

/// A directory that can be a root, as an absolute host path.
pub fn check_rootfs(rootfs: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(rootfs).map_err(|e| {
        Failure::new(format!(
            "rootfs {}: {} (make one with: ch01-chroot rootfs {0})",
            rootfs.display(),
            labkit::failure::describe_io(&e)
        ))
    })?;
    if !meta.is_dir() {
        return Err(Failure::new(format!(
            "rootfs {} is a file, not a directory: make one with `ch01-chroot rootfs DIR`",
            rootfs.display()
        )));
    }
    std::fs::canonicalize(rootfs).context(|| format!("rootfs {}", rootfs.display()))
}

// ANCHOR: run
pub fn run(rootfs: &Path, command: &[String], userspec: Option<(u32, u32)>) -> Result<i32> {
    let root = check_rootfs(rootfs)?;
    require_root("chroot(2) needs CAP_SYS_CHROOT")?;
    // Ctrl-C goes to the whole foreground process group: the command decides what
    // to do with it, and we stay to report how it ended (as system(3) does).
    let _ignoring = IgnoreInterrupts::start()?;
    // SAFETY: this program is single-threaded, so the child may do anything.
    match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => {
            let failure = in_child(&root, command, userspec);
            eprintln!("{TOOL}: {failure}");
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(ExitCodes::RunsACommand.of(&failure)) }
        }
        ForkResult::Parent { child } => wait_for(child),
    }
}

/// Runs in the child; returns only when something failed.
fn in_child(root: &Path, command: &[String], userspec: Option<(u32, u32)>) -> Failure {
    IgnoreInterrupts::restore_defaults();
    narrate::step(
        format!("fork() = {}", getpid()),
        "( ... )   # the rest happens in the child",
    );
    // ANCHOR: hole_chroot
    narrate::step(
        format!("chroot({root:?})"),
        format!("chroot {}", root.display()),
    );
    if let Err(e) = chroot(root) {
        return Failure::new(format!("chroot({}): {}", root.display(), e.desc()));
    }
    // chroot does not move the working directory: without this, "." would still be
    // outside the new root (the hole `escape` uses).
    narrate::step("chdir(\"/\")", "cd /");
    if let Err(e) = chdir("/") {
        return Failure::new(format!("chdir(/): {}", e.desc()));
    }
    // ANCHOR_END: hole_chroot
    // ANCHOR: hole_userspec
    if let Some((uid, gid)) = userspec {
        // Groups first: once we give up uid 0 we may no longer change them.
        let (uid, gid) = (
            nix::unistd::Uid::from_raw(uid),
            nix::unistd::Gid::from_raw(gid),
        );
        narrate::step(
            format!("setgroups([{gid}]); setgid({gid}); setuid({uid})"),
            format!("setpriv --groups {gid} --regid {gid} --reuid {uid}"),
        );
        let dropped = nix::unistd::setgroups(&[gid])
            .and_then(|()| nix::unistd::setgid(gid))
            .and_then(|()| nix::unistd::setuid(uid));
        if let Err(e) = dropped {
            return Failure::new(format!("--userspec {uid}:{gid}: {}", e.desc()));
        }
    }
    // ANCHOR_END: hole_userspec
    exec_command(command, root)
}
// ANCHOR_END: run

/// Wait for `child`; its exit code, or 128 + the signal that killed it.
pub fn wait_for(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => {
                narrate::step(
                    format!("waitpid({child}) = exited with {code}"),
                    "wait $!; echo $?",
                );
                return Ok(code);
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                let code = 128 + sig as i32;
                narrate::step(
                    format!("waitpid({child}) = killed by {sig}"),
                    "wait $!; echo $?",
                );
                return Ok(code);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Failure::new(format!("waitpid({child}): {}", e.desc()))),
        }
    }
}

/// SIGINT and SIGQUIT ignored while it lives; what was there before comes back
/// when it is dropped (so that guards can nest).
#[derive(Debug)]
pub struct IgnoreInterrupts {
    previous: [(Signal, SigHandler); 2],
}

impl IgnoreInterrupts {
    pub fn start() -> Result<Self> {
        let mut previous = [
            (Signal::SIGINT, SigHandler::SigDfl),
            (Signal::SIGQUIT, SigHandler::SigDfl),
        ];
        for (sig, old) in &mut previous {
            // SAFETY: SIG_IGN is not a handler function; nothing runs in signal context.
            *old =
                unsafe { signal(*sig, SigHandler::SigIgn) }.context(|| format!("signal({sig})"))?;
        }
        Ok(IgnoreInterrupts { previous })
    }

    /// In a forked child, before exec: the command gets the default dispositions.
    pub fn restore_defaults() {
        for sig in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: SIG_DFL is not a handler function.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (sig, old) in self.previous {
            // SAFETY: restores a disposition this process had before.
            let _ = unsafe { signal(sig, old) };
        }
    }
}
