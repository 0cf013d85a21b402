//! The extension point: what a runtime built on this chapter (mini-docker) adds to
//! the process it starts with `spawn` or joins to a container with `enter::exec_in`.
//! Chapter 02's own `run` leaves it empty. In the child, once inside the namespaces
//! and the root, [`Extension::apply`] does its steps in this order: stdio, the
//! environment, the working directory, the runtime's last steps, the user; then the
//! child execs.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;

use labkit::narrate;
use labkit::{Failure, Result};
use nix::unistd::Pid;

use crate::environment::set_container_environment;

/// A step a later chapter adds to the child's setup.
#[derive(Clone)]
pub struct Hook(pub Arc<dyn Fn() -> Result<()> + Send + Sync>);

/// A step of the parent's, given the child's PID.
#[derive(Clone)]
pub struct ParentHook(pub Arc<dyn Fn(Pid) -> Result<()> + Send + Sync>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl std::fmt::Debug for ParentHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParentHook")
    }
}

// ANCHOR: extension
#[derive(Debug, Clone, Default)]
pub struct Extension {
    /// What the child takes as its stdin, stdout and stderr instead of ours (a
    /// runtime's own pipes). The caller keeps and closes them.
    pub stdio: Option<[RawFd; 3]>,
    /// `KEY=VALUE`s over the default environment (mini-docker: the image's and `-e`).
    pub env: Vec<String>,
    /// The directory the command starts in (a new container's is created if missing,
    /// as Docker does; a joining process's must exist).
    pub workdir: Option<PathBuf>,
    /// Called in the child once its root is ready, before `pivot_root`: the host's
    /// paths still resolve (mini-runc runs an OCI bundle's createContainer hooks).
    pub before_pivot_root: Option<Hook>,
    /// Called in the child just before exec, inside the new root (mini-docker
    /// mounts its tmpfs, masks /proc paths and takes away capabilities there).
    pub before_exec: Option<Hook>,
    /// Run the command as this uid and gid (`docker run -u UID[:GID]`).
    pub user: Option<(u32, u32)>,
    /// A close-on-exec descriptor the child writes to when it cannot become the
    /// command (its exit code, a byte, then why), instead of stderr. A successful
    /// exec closes it: its reader sees the end of it exactly when the command runs.
    pub report_failure: Option<RawFd>,
    /// Called in the parent once the child is made, before waiting for it
    /// (mini-docker's `exec -t` relays the child's terminal there).
    pub while_running: Option<ParentHook>,
    /// Descriptors after stderr (3, 4...) passed on to the command (runc's
    /// `--preserve-fds`); every other one is closed at exec.
    pub preserve_fds: u32,
    /// `enter::exec_in` returns once `while_running` has, without waiting: the
    /// process outlives us, and our nearest subreaper inherits it (`runc exec -d`).
    pub detach: bool,
}

impl Extension {
    /// In the child, before exec.
    pub fn apply(&self) -> Result<()> {
        for (to, from) in self.stdio.iter().flat_map(|fds| fds.iter().enumerate()) {
            // SAFETY: dup2 onto our own stdio descriptors.
            if unsafe { libc::dup2(*from, to as i32) } < 0 {
                let e = std::io::Error::last_os_error();
                return Err(Failure::new(format!("dup2: {e}")));
            }
        }
        set_container_environment(&self.env);
        if let Some(dir) = &self.workdir {
            narrate::step(format!("chdir({dir:?})"), format!("cd {}", dir.display()));
            std::env::set_current_dir(dir)
                .map_err(|e| Failure::new(format!("working directory {}: {e}", dir.display())))?;
        }
        if let Some(last_step) = &self.before_exec {
            (last_step.0)()?;
        }
        if let Some((uid, gid)) = self.user {
            become_user(uid, gid)?;
        }
        Ok(())
    }
    // ANCHOR_END: extension

    /// Tell whoever reads `report_failure` why the child could not become the
    /// command; without one, say it on stderr.
    pub fn report(&self, code: i32, failure: &Failure) {
        match self.report_failure {
            Some(fd) => {
                let report = [&[code as u8][..], failure.message().as_bytes()].concat();
                // SAFETY: the descriptor was left open for us by our parent.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let _ = nix::unistd::write(fd, &report);
            }
            None => eprintln!("{}: {failure}", labkit::failure::program()),
        }
    }
}

/// Drop root for `uid`/`gid`: groups first, while we may still change them.
pub fn become_user(uid: u32, gid: u32) -> Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    narrate::step(
        format!("setgroups([{gid}]); setgid({gid}); setuid({uid})"),
        format!("setpriv --reuid={uid} --regid={gid} --clear-groups"),
    );
    let fail = |what: &str, e: nix::errno::Errno| Failure::new(format!("{what}: {}", e.desc()));
    setgroups(&[Gid::from_raw(gid)]).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(gid)).map_err(|e| fail("setgid", e))?;
    setuid(Uid::from_raw(uid)).map_err(|e| fail("setuid", e))?;
    Ok(())
}
