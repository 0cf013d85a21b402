//! The container's last steps, in the child, inside its new root: what config.json
//! says about the process and the kernel settings it sees, then the wait for
//! `start`. Runs as chapter 02's `Extension::before_exec`, so that the exec that
//! follows is the only thing left.

use std::os::fd::RawFd;

use caps::{CapSet, CapsHashSet};
use ch02_namespaces::extension::Hook;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::mount::MsFlags;

/// Everything the child does after `pivot_root`, worked out before it starts.
#[derive(Debug, Clone, Default)]
pub struct LastSteps {
    /// `linux.sysctl`, as paths under /proc/sys and values.
    pub sysctl: Vec<(String, String)>,
    /// `linux.rootfsPropagation`.
    pub rootfs_propagation: Option<MsFlags>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `root.readonly`.
    pub readonly_root: bool,
    pub oom_score_adj: Option<i32>,
    /// `process.rlimits`: (resource, soft, hard).
    pub rlimits: Vec<(u32, u64, u64)>,
    /// `process.env`, exactly: nothing added.
    pub env: Vec<String>,
    /// `process.user`: uid, gid, additional gids.
    pub user: (u32, u32, Vec<u32>),
    /// `process.capabilities`: bounding, effective, inheritable, permitted, ambient.
    pub capabilities: [CapsHashSet; 5],
    pub no_new_privileges: bool,
    /// The program, `process.args[0]`: looked up before `start`, so that a missing
    /// one fails `create`, as with runc.
    pub program: String,
}

/// Where the child says it is ready, and the fifo it then opens to wait for
/// `start` (runc's exec fifo: opening it for writing blocks until `start` opens it
/// for reading).
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    pub ready: RawFd,
    pub exec_fifo: RawFd,
}

impl LastSteps {
    pub fn hook(self, handshake: Handshake) -> Hook {
        Hook(std::sync::Arc::new(move || self.run(handshake)))
    }

    // ANCHOR: last_steps
    fn run(&self, handshake: Handshake) -> Result<()> {
        for (path, value) in &self.sysctl {
            narrate::step(
                format!("write({path:?}, {value:?})"),
                format!("echo {value} > {path}"),
            );
            std::fs::write(path, value).context(|| format!("sysctl {path}"))?;
        }
        if let Some(propagation) = self.rootfs_propagation {
            nix::mount::mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
                .context(|| "linux.rootfsPropagation".into())?;
        }
        crate::hardening::protect_paths(&self.masked_paths, &self.readonly_paths)?;
        if self.readonly_root {
            narrate::step(
                "mount(\"/\", MS_REMOUNT|MS_BIND|MS_RDONLY)",
                "mount -o remount,bind,ro /",
            );
            let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            nix::mount::mount(None::<&str>, "/", None::<&str>, ro, None::<&str>)
                .context(|| "root.readonly".into())?;
        }
        if let Some(score) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", score.to_string())
                .context(|| "process.oomScoreAdj".into())?;
        }
        self.set_rlimits()?;
        self.set_environment();
        let path = std::env::var("PATH").unwrap_or_default();
        ch01_chroot::exec::resolve(&self.program, &path)?;
        self.become_user()?;
        wait_for_start(handshake)
    }
    // ANCHOR_END: last_steps

    fn set_rlimits(&self) -> Result<()> {
        for (resource, soft, hard) in &self.rlimits {
            let limit = libc::rlimit {
                rlim_cur: *soft,
                rlim_max: *hard,
            };
            // SAFETY: a resource number and a pointer to a live struct.
            if unsafe { libc::setrlimit(*resource as _, &limit) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Failure::new(format!(
                    "process.rlimits: setrlimit({resource}): {e}"
                )));
            }
        }
        Ok(())
    }

    /// `process.env` and nothing else (chapter 02 gave PATH, HOME... first).
    fn set_environment(&self) {
        let keys: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
        for key in keys {
            // SAFETY: single-threaded (a freshly made child, about to exec).
            unsafe { std::env::remove_var(key) };
        }
        for pair in &self.env {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !key.is_empty() {
                // SAFETY: as above.
                unsafe { std::env::set_var(key, value) };
            }
        }
    }

    // ANCHOR: become_user
    /// The user, then the capability sets. Bounding first, while we may still drop
    /// from it; the ids keep our capabilities (`PR_SET_KEEPCAPS`) so that the sets
    /// config.json asks for can still be given to a user other than root.
    fn become_user(&self) -> Result<()> {
        use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
        let [bounding, effective, inheritable, permitted, ambient] = &self.capabilities;
        let (uid, gid, groups) = &self.user;
        narrate::step(
            format!(
                "prctl(PR_CAPBSET_DROP) x{}",
                caps::all().len() - bounding.len()
            ),
            "capsh --drop=...",
        );
        let fail = |e: caps::errors::CapsError| Failure::new(format!("process.capabilities: {e}"));
        for cap in caps::all().difference(bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(fail)?;
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        narrate::step(
            format!("setgroups({groups:?}); setgid({gid}); setuid({uid})"),
            format!("setpriv --reuid={uid} --regid={gid} --groups=..."),
        );
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&gids).context(|| "process.user.additionalGids: setgroups".into())?;
        setgid(Gid::from_raw(*gid)).context(|| "process.user.gid: setgid".into())?;
        setuid(Uid::from_raw(*uid)).context(|| "process.user.uid: setuid".into())?;
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        // Effective before permitted: at every step effective must stay within it.
        caps::clear(None, CapSet::Ambient).map_err(fail)?;
        caps::set(None, CapSet::Effective, effective).map_err(fail)?;
        caps::set(None, CapSet::Permitted, permitted).map_err(fail)?;
        caps::set(None, CapSet::Inheritable, inheritable).map_err(fail)?;
        // As runc: an ambient capability the kernel refuses (one not also permitted
        // and inheritable, as `runc spec`'s own config asks) is a warning, not an error.
        for cap in ambient {
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                narrate::note(format!("warning: ambient {cap} not raised: {e}"));
            }
        }
        if self.no_new_privileges {
            narrate::step("prctl(PR_SET_NO_NEW_PRIVS, 1)", "setpriv --no-new-privs");
            // SAFETY: as above.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Failure::new(format!("process.noNewPrivileges: {e}")));
            }
        }
        Ok(())
    }
    // ANCHOR_END: become_user
}

// ANCHOR: wait_for_start
/// Tell `create` we are ready, then block opening the exec fifo for writing until
/// `start` opens it for reading; write the byte it waits for. Reached through
/// /proc/self/fd: the fifo's directory is not in our root.
fn wait_for_start(handshake: Handshake) -> Result<()> {
    let ready = nix::unistd::write(
        // SAFETY: the descriptor our parent left open for us.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(handshake.ready) },
        b"r",
    );
    ready.context(|| "telling create we are ready".into())?;
    let _ = nix::unistd::close(handshake.ready);
    narrate::note("created: waiting for start (open of the exec fifo blocks)");
    let fifo = format!("/proc/self/fd/{}", handshake.exec_fifo);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .context(|| "open exec fifo".into())?;
    std::io::Write::write_all(&mut fifo, b"0").context(|| "write exec fifo".into())?;
    let _ = nix::unistd::close(handshake.exec_fifo);
    Ok(())
}
// ANCHOR_END: wait_for_start
