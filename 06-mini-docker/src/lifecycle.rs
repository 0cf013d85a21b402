//! start, stop, kill, wait, rm: what happens to a container after `create`.

use std::os::fd::AsFd;
use std::time::Duration;

use ch02_namespaces::extension::{Extension, ParentHook};
use labkit::failure::Context;
use labkit::{Failure, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::container::{Container, State, Status};
use crate::monitor::{self, Message, is_alive, is_the_same};
use crate::remove;
use crate::runtime::bundle::Bundle;
use crate::store::{Store, lock};

// ANCHOR: start
/// Start the container through a new monitor. Detached: return once it runs.
/// Attached: its output comes to our stdout and stderr, signals we get go to it,
/// and we return its exit code.
pub fn start(store: &Store, container: &Container, attach: bool) -> Result<i32> {
    // Read before the launch: with --rm the monitor removes the container's files
    // as soon as it ends, which may be before we get to look.
    let tty = container.config()?.tty;
    let reports = {
        let _locked = lock(&container.dir)?;
        let state = container.state()?;
        let alive = is_the_same(state.monitor_pid, state.monitor_start_time);
        if (state.running || state.restarting) && alive {
            return Ok(0); // already running: as Docker, nothing to do
        }
        started_by_hand(container, state)?;
        monitor::launch(store, container, attach)?
    };
    let mut reports = reports;
    let pid = match reports.read()? {
        Message::Started(pid) => Pid::from_raw(pid),
        Message::Error(code, message) => return Err(Failure::new(message).exit_code(code)),
        Message::Exit(code) => return Ok(code),
    };
    match attach {
        true => attached(&mut reports, pid, tty),
        false => Ok(0),
    }
}
// ANCHOR_END: start

/// A start by hand: the restart policy is back, its count from zero.
fn started_by_hand(container: &Container, state: State) -> Result<()> {
    let _ = std::fs::remove_file(container.stopped_by_hand());
    container.save_state(&State {
        restart_count: 0,
        restarting: false,
        ..state
    })
}

// ANCHOR: attached
/// Attached to the container `pid`: pass on our signals until the monitor says
/// it ended; its exit code.
fn attached(reports: &mut monitor::Reports, pid: Pid, tty: bool) -> Result<i32> {
    let _raw = tty.then(crate::tty::RawMode::enter);
    let signals = ForwardedSignals::block()?;
    while let Some(signal) = signals.wait(reports.raw_fd())? {
        // A resized terminal is the monitor's business: it holds the pty.
        let to = match signal {
            Signal::SIGWINCH => reports.monitor,
            _ => pid,
        };
        let _ = kill(to, signal);
    }
    match reports.read()? {
        Message::Exit(code) => Ok(code),
        Message::Error(code, message) => Err(Failure::new(message).exit_code(code)),
        Message::Started(_) => Err(Failure::new("the monitor said started twice")),
    }
}
// ANCHOR_END: attached

/// Like `docker run`'s sig-proxy: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the
/// CLI are passed on to the container, read from a signalfd.
struct ForwardedSignals {
    fd: nix::sys::signalfd::SignalFd,
}

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

impl ForwardedSignals {
    fn block() -> Result<ForwardedSignals> {
        let mut set = nix::sys::signal::SigSet::empty();
        FORWARDED.iter().for_each(|s| set.add(*s));
        set.thread_block().context(|| "sigprocmask".into())?;
        let fd = nix::sys::signalfd::SignalFd::new(&set).context(|| "signalfd".into())?;
        Ok(ForwardedSignals { fd })
    }

    /// A signal to pass on, or `None` once the monitor has something to say.
    fn wait(&self, reports: i32) -> Result<Option<Signal>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        // SAFETY: `reports` stays open for the whole call (borrowed, not owned).
        let reports = unsafe { std::os::fd::BorrowedFd::borrow_raw(reports) };
        loop {
            let mut fds = [
                PollFd::new(reports, PollFlags::POLLIN),
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Failure::new(format!("poll: {}", e.desc()))),
                Ok(_) => {}
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty())
                && let Ok(Some(info)) = self.fd.read_signal()
            {
                return Ok(Signal::try_from(info.ssi_signo as i32).ok());
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return Ok(None);
            }
        }
    }
}

/// Wait until process `pid` ends, at most `timeout` (none: forever). A pidfd
/// becomes readable when the process exits: no polling of /proc.
pub fn wait_pid(pid: i32, timeout: Option<Duration>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    if !is_alive(pid) {
        return true;
    }
    let Ok(pidfd) = crate::monitor::open_pidfd(Pid::from_raw(pid)) else {
        return !is_alive(pid);
    };
    let timeout = match timeout {
        Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
        None => PollTimeout::NONE,
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) => return n > 0,
            Err(_) => return !is_alive(pid),
        }
    }
}

/// The state, corrected for a monitor that was killed: its container is dead to us.
pub fn current_state(container: &Container) -> Result<State> {
    let state = container.state()?;
    let watched = state.running || state.restarting;
    if watched && !is_the_same(state.monitor_pid, state.monitor_start_time) {
        return Ok(State {
            status: Status::Dead,
            running: false,
            restarting: false,
            error: "its monitor is gone".into(),
            ..state
        });
    }
    Ok(state)
}

// ANCHOR: stop
/// SIGTERM, then SIGKILL after `timeout`; returns once the monitor has recorded it.
/// The restart policy rests until the next `start` (`stopped-by-hand`, which the
/// monitor reads); a monitor waiting to restart is woken with SIGUSR1 and ends.
pub fn stop(container: &Container, timeout: Duration) -> Result<()> {
    stopped_by_hand(container)?;
    loop {
        let state = current_state(container)?;
        if state.running {
            let _ = kill(Pid::from_raw(state.pid), Signal::SIGTERM);
            if !wait_pid(state.pid, Some(timeout)) {
                let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
            }
            wait_pid(state.monitor_pid, None);
            return Ok(());
        }
        if !state.restarting {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(state.monitor_pid), Signal::SIGUSR1);
        // It ends at once; unless it was restarting the container just then: look again.
        if wait_pid(state.monitor_pid, Some(Duration::from_secs(1))) {
            return Ok(());
        }
    }
}
// ANCHOR_END: stop

fn stopped_by_hand(container: &Container) -> Result<()> {
    let path = container.stopped_by_hand();
    std::fs::write(&path, "").context(|| path.display().to_string())
}

/// `kill`: a signal for the container's first process. SIGKILL and SIGTERM (its
/// stop signal) also put the restart policy to rest, as `stop` does; others (USR1,
/// HUP...) leave it, as Docker's `kill` does.
pub fn send(container: &Container, signal: Signal) -> Result<()> {
    let state = current_state(container)?;
    if state.restarting {
        return Err(Failure::new(format!(
            "Container {} is restarting, wait until the container is running",
            container.name
        )));
    }
    if !state.running {
        return Err(Failure::new(format!(
            "Cannot kill container {}: container is not running",
            container.name
        )));
    }
    if matches!(signal, Signal::SIGKILL | Signal::SIGTERM) {
        stopped_by_hand(container)?;
    }
    kill(Pid::from_raw(state.pid), signal)
        .map_err(|e| Failure::new(format!("kill {}: {}", state.pid, e.desc())))
}

/// Until the container ends; its exit code.
pub fn wait(container: &Container) -> Result<i32> {
    let state = container.state()?;
    if !state.running {
        return Ok(state.exit_code);
    }
    if !container.config()?.restart_policy.restarts() {
        wait_pid(state.monitor_pid, None);
        return Ok(container.state()?.exit_code);
    }
    // With a restart policy the monitor stays: wait for this run's process, then
    // for the monitor to record its end (as Docker's wait, the first end counts).
    wait_pid(state.pid, None);
    loop {
        let now = current_state(container)?;
        if !now.running || now.pid != state.pid {
            return Ok(now.exit_code);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ANCHOR: rm
pub fn rm(container: &Container, force: bool) -> Result<()> {
    let _locked = lock(&container.dir);
    match current_state(container) {
        Ok(state) if (state.running || state.restarting) && !force => {
            return Err(remove::in_use(&container.name));
        }
        Ok(state) if state.restarting => stop(container, Duration::ZERO)?,
        Ok(state) if state.running => {
            stopped_by_hand(container)?; // no restart: it is going
            let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
            wait_pid(state.monitor_pid, None);
        }
        Ok(state) if state.status == Status::Dead => {
            // The monitor was killed: the container may live on, and its cgroup.
            if is_the_same(state.pid, state.start_time) {
                let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
                wait_pid(state.pid, Some(Duration::from_secs(10)));
            }
            remove::remove_leftover_cgroup(container);
        }
        Ok(_) => {}
        Err(failure) if !force => return Err(failure),
        Err(_) => remove::remove_leftover_cgroup(container),
    }
    remove::remove_files(container)
}
// ANCHOR_END: rm

pub fn parse_signal(text: &str) -> Result<Signal> {
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    text.parse::<i32>()
        .ok()
        .and_then(|n| Signal::try_from(n).ok())
        .or_else(|| name.parse().ok())
        .ok_or_else(|| Failure::new(format!("invalid signal: {text}")))
}

/// The container's cgroup (chapter 03), while it runs.
pub fn group_of(container: &Container) -> Result<ch03_cgroups::group::Group> {
    let host = labkit::doctor::Host::real();
    let layout = ch03_cgroups::hierarchy::Layout::discover(&host);
    let place = container.config()?.cgroup(&container.id)?;
    ch03_cgroups::group::Group::open(&layout, &place)
}

fn running(container: &Container) -> Result<State> {
    let state = current_state(container)?;
    match state.running {
        true => Ok(state),
        false => Err(Failure::new(format!(
            "Container {} is not running",
            container.name
        ))),
    }
}

// ANCHOR: pause
/// The freezer (chapter 03): the processes stop being scheduled, and keep their
/// memory, files and connections.
pub fn pause(container: &Container, paused: bool) -> Result<()> {
    let _locked = lock(&container.dir)?;
    let state = running(container)?;
    if state.paused == paused {
        let what = if paused {
            "already paused"
        } else {
            "not paused"
        };
        return Err(Failure::new(format!(
            "Container {} is {what}",
            container.name
        )));
    }
    group_of(container)?.freeze(paused)?;
    container.save_state(&State {
        status: if paused {
            Status::Paused
        } else {
            Status::Running
        },
        paused,
        ..state
    })
}
// ANCHOR_END: pause

// ANCHOR: still
/// Run `work` with the container's processes frozen (unless it is stopped, or
/// paused already), and thaw them after, whatever happened: `commit` and `export`
/// read its files while it cannot change them. A container that swaps a directory
/// for a symlink to `/` while its files are walked would otherwise get the host's
/// files into the image or the tarball (CVE-2018-15664; `docker commit` pauses too).
pub fn while_still<T>(container: &Container, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let _locked = lock(&container.dir)?;
    let state = current_state(container)?;
    if !state.running || state.paused {
        return work();
    }
    let group = group_of(container)?;
    group.freeze(true)?;
    let done = work();
    group.freeze(false)?;
    done
}
// ANCHOR_END: still

// ANCHOR: exec
/// `exec`: chapter 02's `exec_in` (setns into each of the container's namespaces,
/// then fork and exec), after joining the container's cgroup, so that what we
/// start is counted and limited with the rest of the container. It gets the
/// container's environment (plus `-e`) and the same restrictions as its command.
pub fn exec(container: &Container, command: &[String], flags: &ExecFlags) -> Result<i32> {
    let state = running(container)?;
    if state.paused {
        return Err(Failure::new(format!(
            "Container {} is paused, unpause the container before exec",
            container.name
        )));
    }
    // The container's own process, from its bundle, with this exec's changes: its
    // seccomp filter and capabilities apply here too.
    let bundle = Bundle::load(&crate::spec::bundle_dir(&container.dir))?;
    let process = crate::spec::exec_process(&bundle.spec, command, flags)?;
    let linux = bundle.spec.linux().clone().unwrap_or_default();
    let mut steps = crate::runtime::bundle::process_steps(&process, &linux)?;
    if let Some((_, socket)) = &mut steps.terminal {
        *socket = crate::tty::CONSOLE_SOCKET_FD;
    }
    let mut options = Extension {
        workdir: Some(process.cwd().clone()),
        before_exec: Some(steps.hook()),
        ..Extension::default()
    };
    if flags.tty {
        // As for `run -t`: the process makes its pty in the container and sends
        // us the master; we relay between it and our terminal while it runs.
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .context(|| "socketpair".into())?;
        // SAFETY: dup2 onto the number the child looks for; it inherits it.
        unsafe {
            libc::dup2(
                std::os::fd::AsRawFd::as_raw_fd(&theirs),
                crate::tty::CONSOLE_SOCKET_FD,
            )
        };
        options.while_running = Some(ParentHook(std::sync::Arc::new(move |child| {
            // SAFETY: our copy of the child's end: the child has its own now.
            unsafe { libc::close(crate::tty::CONSOLE_SOCKET_FD) };
            match crate::tty::receive_console(&ours) {
                Some(master) => crate::tty::relay(master, child),
                None => Ok(()), // it failed before making one: wait says why
            }
        })));
    }
    if !flags.tty {
        relay_through_pipes(&mut options, flags.interactive)?;
    }
    group_of(container)?.add(nix::unistd::getpid())?;
    ch02_namespaces::enter::exec_in(state.pid as u32, None, command, &options)
}

// ANCHOR: exec_pipes
/// Without `-t`, the process gets pipes of ours, never our stdin, stdout and
/// stderr: a process it leaves behind would keep the admin's terminal (and read what
/// is typed after `exec` has returned). We copy between them while it runs.
fn relay_through_pipes(options: &mut Extension, interactive: bool) -> Result<()> {
    use std::io::Write;
    let pipes = crate::stdio::Pipes::new(interactive)?;
    options.stdio = Some(pipes.theirs.each_ref().map(std::os::fd::AsRawFd::as_raw_fd));
    let pipes = std::sync::Mutex::new(Some(pipes));
    options.while_running = Some(ParentHook(std::sync::Arc::new(move |child| {
        let Some(crate::stdio::Pipes { theirs, ours }) =
            pipes.lock().ok().and_then(|mut p| p.take())
        else {
            return Ok(());
        };
        drop(theirs); // the child has its own copies now
        let stdin = std::io::stdin();
        let input = interactive.then(|| stdin.as_fd());
        ours.relay(child, input, |stream, bytes| {
            let _ = match stream {
                "stderr" => std::io::stderr().write_all(bytes),
                _ => std::io::stdout()
                    .write_all(bytes)
                    .and_then(|()| std::io::stdout().flush()),
            };
            Ok(())
        })
    })));
    Ok(())
}
// ANCHOR_END: exec_pipes

/// `exec`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ExecFlags {
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<(u32, u32)>,
    pub interactive: bool,
    pub tty: bool,
}
// ANCHOR_END: exec
