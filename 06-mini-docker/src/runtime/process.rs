//! The container's last steps, in the child, inside its new root: what config.json
//! says about the process and the kernel settings it sees, then the wait for
//! `start`. Runs as chapter 02's `Extension::before_exec`, so that the exec that
//! follows is the only thing left.

use std::os::fd::RawFd;
use std::sync::{Arc, OnceLock};

use caps::{CapSet, CapsHashSet};
use ch02_namespaces::extension::Hook;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::mount::MsFlags;

/// Everything the child does after `pivot_root`, worked out before it starts.
#[derive(Debug, Clone, Default)]
pub struct LastSteps {
    /// A network namespace of its own: its `lo` is brought up (as runc does).
    pub loopback: bool,
    /// `linux.sysctl`, as paths under /proc/sys and values.
    pub sysctl: Vec<(String, String)>,
    /// `linux.rootfsPropagation`.
    pub rootfs_propagation: Option<MsFlags>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `root.readonly`.
    pub readonly_root: bool,
    pub process: ProcessSteps,
    /// `hooks.createContainer`: run by the child, in its namespaces, before `pivot_root`.
    pub create_container: Vec<oci_spec::runtime::Hook>,
    /// `hooks.startContainer`: run by the child once `start` has come, before the program.
    pub start_container: Vec<oci_spec::runtime::Hook>,
}

/// What `process` asks for: the container's first process, or one `exec` adds.
#[derive(Debug, Clone, Default)]
pub struct ProcessSteps {
    pub oom_score_adj: Option<i32>,
    /// `process.rlimits`: (resource, soft, hard).
    pub rlimits: Vec<(u32, u64, u64)>,
    /// `process.env`, exactly: nothing added.
    pub env: Vec<String>,
    /// `process.user`: uid, gid, additional gids.
    pub user: (u32, u32, Vec<u32>),
    /// `process.user.umask`.
    pub umask: Option<u32>,
    /// `process.capabilities`: bounding, effective, inheritable, permitted, ambient.
    pub capabilities: [CapsHashSet; 5],
    pub no_new_privileges: bool,
    /// `linux.seccomp`, compiled.
    pub seccomp: Option<crate::seccomp::Filters>,
    /// `process.terminal`: a pty of the container's, sized as `consoleSize`, its
    /// master sent over the console socket (the runtime fills in its descriptor).
    pub terminal: Option<(Option<nix::pty::Winsize>, RawFd)>,
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
    /// Where the parent writes the container's state (one line of JSON) for the
    /// hooks the child runs.
    pub state: RawFd,
}

/// The state, read once by whichever of the child's hooks comes first.
type State = Arc<OnceLock<serde_json::Value>>;

impl LastSteps {
    /// The child's two steps: before `pivot_root`, and last of all.
    pub fn hooks(self, handshake: Handshake) -> (Hook, Hook) {
        let state = State::default();
        let (hooks, early) = (self.create_container.clone(), state.clone());
        let before_pivot_root = Hook(Arc::new(move || {
            in_container("createContainer", &hooks, &early, handshake.state)
        }));
        let last = Hook(Arc::new(move || self.run(Some(handshake), &state)));
        (before_pivot_root, last)
    }

    /// The last step alone, for a container that nobody `start`s: mini-docker's
    /// monitor runs its bundle in-process and lets the child go on at once. The
    /// hooks the child runs need the lifecycle's handshake: refused here.
    pub fn in_process(self) -> Result<Hook> {
        if !self.create_container.is_empty() || !self.start_container.is_empty() {
            return Err(Failure::new(
                "config.json: hooks.createContainer and startContainer need mini-runc's create and start",
            ));
        }
        Ok(Hook(Arc::new(move || self.run(None, &State::default()))))
    }

    // ANCHOR: last_steps
    fn run(&self, handshake: Option<Handshake>, state: &State) -> Result<()> {
        if self.loopback {
            ch05_network::netlink::loopback_up_here()?;
        }
        write_sysctl(&self.sysctl)?;
        if let Some(propagation) = self.rootfs_propagation {
            nix::mount::mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
                .context(|| "linux.rootfsPropagation".into())?;
        }
        crate::hardening::protect_paths(&self.masked_paths, &self.readonly_paths)?;
        if self.readonly_root {
            // ANCHOR: hole_read_only
            narrate::step(
                "mount(\"/\", MS_REMOUNT|MS_BIND|MS_RDONLY)",
                "mount -o remount,bind,ro /",
            );
            let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            nix::mount::mount(None::<&str>, "/", None::<&str>, ro, None::<&str>)
                .context(|| "root.readonly".into())?;
            // ANCHOR_END: hole_read_only
        }
        self.process.run()?;
        let Some(handshake) = handshake else {
            return Ok(());
        };
        wait_for_start(handshake)?;
        // create has returned: a failure now is said on stderr (as runc's init does).
        if let Err(failure) = in_container(
            "startContainer",
            &self.start_container,
            state,
            handshake.state,
        ) {
            eprintln!("mini-runc: {failure}");
            // SAFETY: end the child here, without the parent's exit handlers.
            unsafe { libc::_exit(1) }
        }
        Ok(())
    }
    // ANCHOR_END: last_steps
}

/// `linux.sysctl`: each value written into its file under /proc/sys.
fn write_sysctl(settings: &[(String, String)]) -> Result<()> {
    for (path, value) in settings {
        narrate::step(
            format!("write({path:?}, {value:?})"),
            format!("echo {value} > {path}"),
        );
        std::fs::write(path, value).context(|| format!("sysctl {path}"))?;
    }
    Ok(())
}

/// Run the child's own hooks, with the state the parent wrote (its status: what
/// the container is at that moment).
fn in_container(
    field: &str,
    hooks: &[oci_spec::runtime::Hook],
    state: &State,
    fd: RawFd,
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let state = match state.get() {
        Some(state) => state,
        None => state.get_or_init(|| read_line(fd)),
    };
    let mut state = state.clone();
    state["status"] = match field {
        "createContainer" => "creating",
        _ => "created",
    }
    .into();
    crate::runtime::hooks::run(field, hooks, &state)
}

/// One line from the parent, as JSON (null if it said nothing).
fn read_line(fd: RawFd) -> serde_json::Value {
    let mut line = vec![];
    let mut byte = [0u8; 1];
    // SAFETY: the descriptor our parent left open for us.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while let Ok(1) = nix::unistd::read(fd, &mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    serde_json::from_slice(&line).unwrap_or_default()
}

impl ProcessSteps {
    /// For a process `exec` adds: these steps only (the mounts are the container's).
    pub fn hook(self) -> Hook {
        Hook(Arc::new(move || self.run()))
    }

    // ANCHOR: process_steps
    fn run(&self) -> Result<()> {
        if let Some((size, socket)) = self.terminal {
            crate::tty::make_console(socket, size)?;
        }
        if let Some(score) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", score.to_string())
                .context(|| "process.oomScoreAdj".into())?;
        }
        self.set_rlimits()?;
        self.set_environment();
        let path = std::env::var("PATH").unwrap_or_default();
        // In runc's words, which engines match on (podman: exit code 127).
        ch01_chroot::exec::resolve(&self.program, &path).map_err(|_| {
            let program = &self.program;
            Failure::new(format!(
                "exec: {program:?}: executable file not found in $PATH (PATH={path})"
            ))
            .exit_code(127)
        })?;
        if let Some(mask) = self.umask {
            narrate::step(format!("umask({mask:#o})"), format!("umask {mask:03o}"));
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: before the
        // capabilities go (as runc). With it, as late as can be: fewer calls to allow.
        match &self.seccomp {
            Some(filters) if !self.no_new_privileges => {
                filters.apply()?;
                self.become_user()
            }
            Some(filters) => self.become_user().and_then(|()| filters.apply()),
            None => self.become_user(),
        }
    }
    // ANCHOR_END: process_steps

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
        let bounding = &self.capabilities[0];
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
        self.take_capabilities()
    }
    // ANCHOR_END: become_user

    // ANCHOR: capabilities
    /// The sets config.json gives (all else goes), then no_new_privs: from here
    /// exec can never give more (a setuid binary runs with the caller's).
    fn take_capabilities(&self) -> Result<()> {
        // ANCHOR: hole_caps
        let [_, effective, inheritable, permitted, ambient] = &self.capabilities;
        let fail = |e: caps::errors::CapsError| Failure::new(format!("process.capabilities: {e}"));
        narrate::step(
            format!(
                "capset(effective: {}, permitted: {})",
                effective.len(),
                permitted.len()
            ),
            "capsh --caps=...",
        );
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
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Failure::new(format!("process.noNewPrivileges: {e}")));
            }
        }
        Ok(())
        // ANCHOR_END: hole_caps
    }
    // ANCHOR_END: capabilities
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
    // ANCHOR: hole_exec_fifo
    let fifo = format!("/proc/self/fd/{}", handshake.exec_fifo);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .context(|| "open exec fifo".into())?;
    std::io::Write::write_all(&mut fifo, b"0").context(|| "write exec fifo".into())?;
    let _ = nix::unistd::close(handshake.exec_fifo);
    Ok(())
    // ANCHOR_END: hole_exec_fifo
}
// ANCHOR_END: wait_for_start
