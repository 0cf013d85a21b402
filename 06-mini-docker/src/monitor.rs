//! The monitor: one small process per running container, its parent (Docker's
//! `containerd-shim`, Podman's `conmon`).
//!
//! Why a process of its own? The container's parent is whoever waits for it, and
//! only the parent learns the exit code. If `mini-docker run -d` were the parent, the
//! container would be orphaned when the CLI returns and its exit code lost. So the CLI
//! forks the monitor, which leaves the CLI's session (`setsid`) and stays: it sets
//! up the overlay and the network, writes the container's bundle and hands it to the
//! runtime (mini-runc's code, in-process: the cgroup, the namespaces, the root;
//! chapters 02-05), copies its output into `json.log`, waits for it, records how it
//! ended, and cleans up. The CLI hears from it through a pipe: `started PID`, then
//! `exit CODE` (or `error CODE MESSAGE`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ch02_namespaces::namespace::Namespace;
use ch02_namespaces::plan::{Bind, Plan, Request, plan};
use ch02_namespaces::spawn;
use ch03_cgroups::group::Group;
use ch03_cgroups::hierarchy::Layout;
use ch03_cgroups::stats::Stats;
use ch04_overlayfs::overlay::{self, Overlay};
use ch05_network::args::{Mode, Options, container_pid};
use ch05_network::run::{Attachment, join_network_of};
use labkit::doctor::Host;
use labkit::failure::{Context, ExitCodes};
use labkit::{Failure, Result};
use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid};

use crate::container::{Config, Container, State, Status};
use crate::image;
use crate::logs::LogWriter;
use crate::network;
use crate::runtime::bundle::{Bundle, Translated};
use crate::runtime::lifecycle::write_maps;
use crate::stdio::{Ours, Pipes};
use crate::store::{Store, now};

/// What the monitor tells the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Started(i32),
    Exit(i32),
    Error(i32, String),
}

impl Message {
    fn parse(line: &str) -> Option<Message> {
        let mut words = line.trim_end().splitn(3, ' ');
        match (words.next()?, words.next(), words.next()) {
            ("started", Some(pid), _) => Some(Message::Started(pid.parse().ok()?)),
            ("exit", Some(code), _) => Some(Message::Exit(code.parse().ok()?)),
            ("error", Some(code), message) => Some(Message::Error(
                code.parse().ok()?,
                message.unwrap_or_default().to_string(),
            )),
            _ => None,
        }
    }
}

/// The CLI's end of the pipe.
#[derive(Debug)]
pub struct Reports {
    pub monitor: Pid,
    lines: BufReader<File>,
}

impl Reports {
    /// The next message; a monitor that died without a word is an error.
    pub fn read(&mut self) -> Result<Message> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(n) if n > 0 => Message::parse(&line)
                .ok_or_else(|| Failure::new(format!("the monitor said {line:?}"))),
            _ => Err(Failure::new(format!(
                "the container's monitor (process {}) ended without a word",
                self.monitor
            ))),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.lines.get_ref().as_raw_fd()
    }
}

// ANCHOR: launch
/// Fork the monitor of `container`. `attach`: the container's output also goes to
/// our stdout and stderr (a foreground `run`); otherwise the monitor lets go of them.
pub fn launch(store: &Store, container: &Container, attach: bool) -> Result<Reports> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    // SAFETY: the CLI is single-threaded: the child may do anything.
    match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => {
            drop(read);
            let code = monitor_main(store, container, File::from(write), attach);
            // SAFETY: _exit ends the monitor without running the CLI's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write);
            Ok(Reports {
                monitor: child,
                lines: BufReader::new(File::from(read)),
            })
        }
    }
}
// ANCHOR_END: launch

fn monitor_main(store: &Store, container: &Container, mut cli: File, attach: bool) -> i32 {
    // Nothing of the CLI's but stdio and our pipe: not its locks, not anything a
    // container could inherit.
    close_other_fds(&[0, 1, 2, cli.as_raw_fd()]);
    // Out of the CLI's session: the terminal's Ctrl-C and hangup are not for us.
    let _ = setsid();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn) };
    }
    let terminal = match attach {
        true => Terminal {
            input: dup_cloexec(std::io::stdin().as_fd()).ok(),
            out: dup_cloexec(std::io::stdout().as_fd()).ok(),
            err: dup_cloexec(std::io::stderr().as_fd()).ok(),
        },
        false => Terminal::default(),
    };
    // Let go of the CLI's terminal (or pipes): for `-d`, the CLI must be free to
    // end, and whoever reads its output must see the end of it.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
    }
    // `stop` wakes a monitor waiting to restart with SIGUSR1 (see `back_off`).
    let wake = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(woken),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing: it is there only to interrupt ppoll.
    let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGUSR1, &wake) };
    let mut terminal = Some(terminal);
    let mut restarts = None;
    // ANCHOR: restart_loop
    loop {
        let began = std::time::Instant::now();
        let terminal = terminal.take().unwrap_or_default();
        let outcome = caught(|| monitor(store, container, &mut cli, terminal));
        let code = match outcome {
            Ok(Some(code)) => code,
            Ok(None) => return 0, // could not exec: no restart (Docker's rule)
            Err(failure) => return failed(container, &mut cli, failure),
        };
        let Ok(config) = container.config() else {
            return 0; // removed (--rm)
        };
        let restarts =
            restarts.get_or_insert_with(|| crate::restart::Restarts::new(config.restart_policy));
        let by_hand = container.stopped_by_hand().exists();
        let delay = match caught(|| Ok(restarts.next(code, began.elapsed(), by_hand))) {
            Ok(Some(delay)) => delay,
            Ok(None) => return 0,
            Err(failure) => return failed(container, &mut cli, failure),
        };
        if !back_off(container, delay, restarts.count) {
            return 0;
        }
    }
    // ANCHOR_END: restart_loop
}

extern "C" fn woken(_: libc::c_int) {}

// ANCHOR: back_off
/// Wait `delay` before restart number `count`, as `Restarting` (what `ps` shows).
/// False when `stop` came meanwhile: it makes `stopped-by-hand`, then sends SIGUSR1.
/// SIGUSR1 is blocked from before the state says `Restarting` and let in only
/// inside ppoll, atomically: a signal sent at any moment ends the wait.
fn back_off(container: &Container, delay: Duration, count: u32) -> bool {
    use nix::sys::signal::{SigSet, Signal};
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    let _ = usr1.thread_block();
    let state = container.state().unwrap_or_default();
    let _ = container.save_state(&State {
        status: Status::Restarting,
        restarting: true,
        restart_count: count,
        ..state.clone()
    });
    let deadline = std::time::Instant::now() + delay;
    let mut unblocked = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    unblocked.remove(Signal::SIGUSR1);
    let go_on = loop {
        if container.stopped_by_hand().exists() {
            break false;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break true;
        }
        let timeout = nix::sys::time::TimeSpec::from_duration(left);
        let _ = nix::poll::ppoll(&mut [], Some(timeout), Some(unblocked));
    };
    if !go_on {
        let _ = container.save_state(&State {
            status: Status::Exited,
            restarting: false,
            ..state
        });
    }
    let _ = usr1.thread_unblock();
    go_on
}
// ANCHOR_END: back_off

/// `work`, a panic in it (a bug, or an exercise's todo!()) reported like an error:
/// our stderr is /dev/null now, and the CLI (or `inspect`'s State.Error) would
/// otherwise only see us end "without a word".
fn caught<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Failure::new(format!("the monitor panicked: {what}")))
    })
}

/// A start that failed: told to the CLI (if it still listens) and recorded.
fn failed(container: &Container, cli: &mut File, failure: Failure) -> i32 {
    match Err::<(), Failure>(failure) {
        Ok(()) => 0,
        Err(failure) => {
            let message = failure.to_string().replace('\n', " ");
            let code = ExitCodes::RunsACommand.of(&failure);
            let _ = writeln!(cli, "error {code} {message}");
            let _ = container.state().map(|state| {
                container.save_state(&State {
                    status: Status::Exited,
                    running: false,
                    exit_code: code,
                    error: message,
                    finished_at: now(),
                    ..state
                })
            });
            1
        }
    }
}

/// Close every descriptor but `keep`.
fn close_other_fds(keep: &[i32]) {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open.into_iter().filter(|fd| !keep.contains(fd)) {
        // SAFETY: closing a descriptor nothing in this process uses any more.
        unsafe { libc::close(fd) };
    }
}

/// Undone in reverse order when dropped: what the monitor set up for a container.
#[derive(Default)]
struct Setup {
    group: Option<Group>,
    merged: Option<PathBuf>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(merged) = self.merged.take() {
            let _ = overlay::umount(&merged);
        }
        if let Some(group) = &mut self.group {
            group.remove();
        }
    }
}

/// The CLI's stdin, stdout and stderr, when it is attached.
#[derive(Debug, Default)]
pub(crate) struct Terminal {
    pub input: Option<OwnedFd>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
}

// ANCHOR: monitor
/// A container's life, from the monitor's side: set up (chapters 04, 02, 05), the
/// bundle, start (03, 02), relay its output, record how it ended, clean up.
fn monitor(
    store: &Store,
    container: &Container,
    cli: &mut File,
    terminal: Terminal,
) -> Result<Option<i32>> {
    let config = container.config()?;
    let mut clock = Clock::start();
    let mut setup = Setup::default();
    let devices = (config.devices.iter())
        .map(|d| d.node())
        .collect::<Result<Vec<_>>>()?;
    let limits = config.limits_with(&devices);
    let place = config.cgroup(&container.id)?;
    // Chapter 04: the overlay, in a mount namespace of the monitor's own.
    setup.merged = Some(mount_root(store, container, &config)?);
    clock.mark("overlay mount (04)");
    // Chapter 02: the namespaces and the root.
    let network = network::at_start(store, &config)?;
    let mut plan = plan_for(&config, &network, &setup, devices)?;
    clock.mark("plan (02)");
    // Chapter 05: the network.
    let mut attachment = attach(store, container, &config, &network, &mut plan)?;
    clock.mark("network: bridge, lease, rules, /etc (05)");
    // The bundle: all of the above in the runtime spec's words, for the runtime.
    let spec = crate::spec::spec(&config, &plan, &limits, &place)?;
    crate::spec::write(&crate::spec::bundle_dir(&container.dir), &spec)?;
    clock.mark("bundle: config.json");
    // (`lo` is the runtime's to bring up, in the container's new network namespace.)
    // ...and the networks it was connected to beyond its first: an interface each.
    let mut plugged = Default::default();
    let connect = |pid: Pid| {
        if let Some(a) = &mut attachment {
            a.connect(pid)?;
            plugged = crate::network::plug_all(store, &config, pid.as_raw())?;
        }
        Ok(())
    };
    // With --runtime, the levels above the group it makes and leaves: ours to remove.
    let _levels = (!config.runtime.is_empty()).then(|| crate::shim::Levels::missing(&place));
    let started = match config.runtime.as_str() {
        "" => start_in_process(
            container, &config, &terminal, &mut setup, connect, &mut clock,
        )?,
        runtime => crate::shim::start(container, runtime, &config, &terminal, connect)?,
    };
    let (pid, output) = match started {
        Started::Running(pid, output) => (pid, output),
        Started::Failed(code, why) => {
            drop((attachment, setup));
            let end = End::failed(code, why);
            return ended(store, container, &config, cli, State::default(), end).map(|()| None);
        }
    };
    let ip = (attachment.as_ref()).map_or(String::new(), |a| a.lease.ip.to_string());
    let count = container.state().map_or(0, |s| s.restart_count);
    let started = State {
        ports: network.publish.clone(),
        plugged,
        ..running(pid, ip, clock, count)
    };
    container.save_state(&started)?;
    // Its name appears in the other containers' address books.
    crate::network::refresh_all(store, &config);
    let _ = writeln!(cli, "started {pid}");
    let checker =
        (config.healthcheck.clone()).map(|c| crate::health::start(&store.root, container, c));
    let code = relay(container, pid, output, terminal);
    drop(checker); // no check of a container that ended
    let code = code?;
    let oom_killed = code == 128 + 9
        && (setup.group.as_ref()).is_some_and(|g| Stats::read(g).oom_kills.is_some_and(|n| n > 0));
    if !config.runtime.is_empty() {
        crate::shim::delete(container, &config.runtime);
    }
    drop((attachment, setup));
    let end = End::ran(code, oom_killed);
    ended(store, container, &config, cli, started, end).map(|()| Some(code))
}

// ANCHOR_END: monitor

/// Chapter 05's part: a place on a bridge (and the address book), another
/// container's network joined, or nothing to do.
fn attach(
    store: &Store,
    container: &Container,
    config: &Config,
    network: &Options,
    plan: &mut Plan,
) -> Result<Option<Attachment>> {
    match &network.mode {
        Mode::Bridge => {
            let attachment = Attachment::prepare(network, plan)?;
            crate::network::address_book(store, container, config, &attachment)?;
            Ok(Some(attachment))
        }
        Mode::Container(pid) => join_network_of(container_pid(pid)?).map(|()| None),
        Mode::None | Mode::Host => Ok(None),
    }
}

/// How a start went: the program runs, or it could not be run (its code, why).
pub(crate) enum Started {
    Running(Pid, Output),
    Failed(i32, String),
}

// ANCHOR: in_process
/// Without --runtime: the bundle goes to mini-runc's code, here in the monitor
/// (no exec on the way). It is read back and translated as `mini-runc create`
/// would; chapter 03 makes the cgroup it names, chapter 02 the container; we
/// plug its network in before it goes on. No exec fifo: nobody waits to `start` it.
fn start_in_process(
    container: &Container,
    config: &Config,
    terminal: &Terminal,
    setup: &mut Setup,
    mut connect: impl FnMut(Pid) -> Result<()>,
    clock: &mut Clock,
) -> Result<Started> {
    let bundle = Bundle::load(&crate::spec::bundle_dir(&container.dir))?;
    let Translated {
        mut plan,
        mut last_steps,
        limits,
        place,
        maps,
    } = bundle.translate(&container.id)?;
    clock.mark("bundle read and translated (mini-runc)");
    let host = Host::real();
    let group = Group::create(&Layout::discover(&host), &host, &place, &limits)?;
    let group = setup.group.insert(group);
    clock.mark("cgroup (03)");
    if let Some((_, socket)) = &mut last_steps.process.terminal {
        *socket = crate::tty::CONSOLE_SOCKET_FD;
    }
    plan.extension.before_exec = Some(last_steps.in_process()?);
    // Created straight into its group (clone3 on cgroup v2), or moved there before it goes on.
    plan.cgroup = Some(group.into_cgroup());
    // --init: chapter 02's init as PID 1 (not a field of the runtime spec: Docker
    // binds its docker-init in and puts it before the command instead).
    plan.init = config.init;
    // ANCHOR_END: in_process
    // The child reports on this pipe why it could not exec, if it could not.
    let (exec_read, exec_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    plan.extension.report_failure = Some(exec_write.as_raw_fd());
    let (child, output) = start_with_stdio(&plan, config, terminal)?;
    drop(exec_write);
    clock.mark("clone into namespaces (02)");
    let mapped = maps.map_or(Ok(()), |(uid, gid)| write_maps(child.pid, &uid, &gid));
    let joined = mapped.and_then(|()| group.join(&child));
    clock.mark("join cgroup (03: v1 groups, or all without clone3)");
    if let Err(failure) = joined.and_then(|()| connect(child.pid)) {
        child.abandon();
        return Err(failure);
    }
    clock.mark("plug veth (05)");
    let pid = child.go();
    match exec_failure(exec_read) {
        Some((code, why)) => {
            let _ = nix::sys::wait::waitpid(pid, None);
            Ok(Started::Failed(code, why))
        }
        None => Ok(Started::Running(pid, output)),
    }
}

/// The state of a container whose command runs now: its PID and the monitor's, with
/// their start times (a PID alone may be another process's later).
fn running(pid: Pid, ip_address: String, clock: Clock, restart_count: u32) -> State {
    let monitor = std::process::id() as i32;
    State {
        status: Status::Running,
        running: true,
        pid: pid.as_raw(),
        monitor_pid: monitor,
        start_time: start_time(pid.as_raw()).unwrap_or_default(),
        monitor_start_time: start_time(monitor).unwrap_or_default(),
        started_at: now(),
        ip_address,
        start_timings: clock.phases,
        restart_count,
        ..State::default()
    }
}

/// The container's root: its image's layers under its writable one, mounted where
/// only the monitor (and the container it makes) sees it; its empty volumes filled.
fn mount_root(store: &Store, container: &Container, config: &Config) -> Result<PathBuf> {
    let image = image::find(store, &config.image_id)
        .ok_or_else(|| Failure::new(format!("image {} is gone", config.image)))?;
    let merged = container.dir.join("merged");
    let lowers = image.lowers(store);
    let overlay = Overlay::new(
        &lowers,
        &container.upper(),
        &container.dir.join("work"),
        &merged,
    )?;
    // With --rm the writable layer is thrown away: no sync of it, ever.
    match config.auto_remove {
        true => overlay.volatile(),
        false => overlay,
    }
    .mount_privately("the container's root, seen by the monitor only")?;
    // An empty volume gets the image's files at its path (Docker's copy-up).
    if config.mounts.iter().any(|m| m.volume().is_some()) {
        let root = File::open(&merged).context(|| merged.display().to_string())?;
        crate::volume::copy_up(&root, &config.mounts)?;
    }
    Ok(merged)
}

/// Chapter 02's plan for the container: its namespaces, its root, its binds and
/// devices (the rest of the bundle is the config's: spec.rs).
fn plan_for(
    config: &Config,
    network: &Options,
    setup: &Setup,
    devices: Vec<ch02_namespaces::plan::DeviceNode>,
) -> Result<Plan> {
    let mut namespaces = vec![
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Pid,
    ];
    namespaces.extend(network.namespaces());
    if config.private_cgroupns() {
        namespaces.push(Namespace::Cgroup);
    }
    let request = Request {
        namespaces: namespaces.into_iter().collect(),
        hostname: Some(config.hostname.clone()),
        rootfs: setup.merged.clone(),
        init: config.init,
        command: config.cmd.clone(),
        ..Request::default()
    };
    let mut plan = plan(request, &Host::real())?;
    plan.devices = devices;
    plan.binds = (config.mounts.iter())
        .filter(|m| m.r#type != "tmpfs")
        .map(|m| Bind {
            source: m.source.clone().into(),
            target: m.destination.clone().into(),
            read_only: !m.rw,
        })
        .collect();
    Ok(plan)
}

// ANCHOR: exec_report
/// Started means exec'd, as for `docker run -d`: wait for the end of the pipe (a
/// successful exec closes it) or for the reason the child gives: its exit code
/// (126, 127...) and a sentence.
fn exec_failure(exec_read: OwnedFd) -> Option<(i32, String)> {
    let mut report = vec![];
    let _ = File::from(exec_read).read_to_end(&mut report);
    let (code, why) = report.split_first()?;
    Some((
        i32::from(*code),
        String::from_utf8_lossy(why).replace('\n', " "),
    ))
}
// ANCHOR_END: exec_report

/// Copy the output into the log (and to the CLI when attached) until the
/// container ends; its exit code.
fn relay(container: &Container, pid: Pid, output: Output, terminal: Terminal) -> Result<i32> {
    let mut log = LogWriter::open(&container.log())?;
    match output {
        Output::Pipes(pipes) => pump(pid, pipes, &mut log, terminal),
        Output::Pty(socket) => {
            let master = crate::tty::receive_console(&socket)
                .ok_or_else(|| Failure::new("the container sent no terminal"))?;
            let input = terminal.input.as_ref();
            if let Some(size) = input.and_then(|t| crate::tty::window_size(t.as_fd())) {
                crate::tty::set_window_size(master.as_fd(), &size);
            }
            pump_tty(pid, master, &mut log, terminal)
        }
    }
}

/// How a run ended: its code, whether the kernel's OOM killer ended it, or why
/// the command could not be run at all.
struct End {
    code: i32,
    oom_killed: bool,
    exec_failed: Option<String>,
}

impl End {
    fn ran(code: i32, oom_killed: bool) -> End {
        End {
            code,
            oom_killed,
            exec_failed: None,
        }
    }

    fn failed(code: i32, why: String) -> End {
        End {
            code,
            oom_killed: false,
            exec_failed: Some(why),
        }
    }
}

/// Record how the container ended (an exec that failed, or its exit code), remove
/// it with `--rm`, and tell the CLI; take its name out of the other containers'
/// address books, and give its further addresses back.
fn ended(
    store: &Store,
    container: &Container,
    config: &Config,
    cli: &mut File,
    state: State,
    end: End,
) -> Result<()> {
    let End {
        code,
        oom_killed,
        exec_failed,
    } = end;
    let plugged = state.plugged.clone();
    // With --rm the container goes at once: its last state is written only if
    // it cannot go.
    let removed = config
        .auto_remove
        .then(|| crate::remove::remove_files(container));
    if let Some(Ok(())) = removed {
        // Its anonymous volumes go with it (Docker's --rm); named ones stay.
        crate::volume::remove_anonymous(store, &config.mounts);
    }
    let saved = match removed {
        Some(Ok(())) => Ok(()),
        _ => container.save_state(&State {
            status: Status::Exited,
            running: false,
            pid: 0,
            exit_code: code,
            oom_killed,
            error: exec_failed.clone().unwrap_or_default(),
            finished_at: now(),
            ..state
        }),
    };
    // Not running any more (or gone): out of the address books, whatever failed.
    crate::network::release_all(store, &plugged);
    crate::network::refresh_all(store, config);
    saved?;
    removed.transpose()?;
    let _ = match exec_failed {
        Some(why) => writeln!(cli, "error {code} {why}"),
        None => writeln!(cli, "exit {code}"),
    };
    Ok(())
}

/// Where the time of a start goes, step by step (`inspect` shows it).
struct Clock {
    last: std::time::Instant,
    phases: Vec<crate::container::Phase>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            last: std::time::Instant::now(),
            phases: Vec::new(),
        }
    }

    fn mark(&mut self, step: &str) {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        self.phases.push(crate::container::Phase {
            step: step.to_string(),
            ms: (ms * 1000.0).round() / 1000.0,
        });
        self.last = now;
    }
}

/// Where the container's output comes from.
pub(crate) enum Output {
    /// Our ends of its pipes: stdout and stderr apart (and stdin, with `-i`).
    Pipes(Ours),
    /// A pty's master end: one stream, as on a terminal.
    Pty(OwnedFd),
}

/// Start the child with its stdio: pipes of ours (stdin /dev/null without `-i`);
/// or, with `-t`, a pty. The child inherits our fds 0, 1 and 2, so we
/// point those where its own should go while it is made, then put ours back.
fn start_with_stdio(
    plan: &Plan,
    config: &Config,
    terminal: &Terminal,
) -> Result<(spawn::Started, Output)> {
    let fail = |what: &str, e: nix::errno::Errno| Failure::new(format!("{what}: {}", e.desc()));
    let saved = (
        dup_cloexec(std::io::stdin().as_fd())?,
        dup_cloexec(std::io::stdout().as_fd())?,
        dup_cloexec(std::io::stderr().as_fd())?,
    );
    let output = if config.tty {
        // The container makes its pty and sends us the master on this socket.
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| fail("socketpair", e))?;
        // SAFETY: dup2 onto a number we reserve for it (without CLOEXEC: the child
        // must inherit it; it is closed here right after the child is made).
        unsafe { libc::dup2(theirs.as_raw_fd(), crate::tty::CONSOLE_SOCKET_FD) };
        Output::Pty(ours)
    } else {
        let Pipes { theirs, ours } = Pipes::new(config.interactive && terminal.input.is_some())?;
        let _ = dup2_stdin(&theirs[0]);
        let _ = dup2_stdout(&theirs[1]);
        let _ = dup2_stderr(&theirs[2]);
        Output::Pipes(ours)
    };
    let started = spawn::start(plan);
    if config.tty {
        // SAFETY: our copy of the child's end of the console socket.
        unsafe { libc::close(crate::tty::CONSOLE_SOCKET_FD) };
    }
    let _ = dup2_stdin(&saved.0);
    let _ = dup2_stdout(&saved.1);
    let _ = dup2_stderr(&saved.2);
    Ok((started?, output))
}

/// A copy of `fd` that exec closes: nothing of the monitor's may reach the
/// container by accident (CVE-2024-21626 was such a leak, in runc).
fn dup_cloexec(fd: std::os::fd::BorrowedFd) -> Result<OwnedFd> {
    let raw =
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).context(|| "dup".into())?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

pub(crate) fn open_pidfd(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if raw < 0 {
        return Err(Failure::new("pidfd_open: needs Linux 5.3 or newer"));
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

// ANCHOR: pump
/// Copy the container's output into the log (and to the CLI when attached), and
/// with `-i` the CLI's stdin into the container's, until the container ends; then
/// its exit code. A pidfd tells the relay when it ends, without polling: it becomes
/// readable when the process exits.
fn pump(pid: Pid, pipes: Ours, log: &mut LogWriter, terminal: Terminal) -> Result<i32> {
    // ANCHOR: hole_pump
    let copies = [terminal.out, terminal.err];
    pipes.relay(
        pid,
        terminal.input.as_ref().map(|i| i.as_fd()),
        |stream, bytes| {
            log.write(stream, bytes)?;
            if let Some(copy) = &copies[usize::from(stream == "stderr")] {
                let _ = nix::unistd::write(copy, bytes);
            }
            Ok(())
        },
    )?;
    log.finish()?;
    ch01_chroot::chroot_run::wait_for(pid)
    // ANCHOR_END: hole_pump
}
// ANCHOR_END: pump

/// With `-t`: one stream, the pty's master, copied to the log and the user's
/// terminal; the user's keys copied in; the window size passed on (the CLI
/// sends us SIGWINCH when its terminal changes size).
fn pump_tty(pid: Pid, master: OwnedFd, log: &mut LogWriter, terminal: Terminal) -> Result<i32> {
    use nix::sys::signal::{SigSet, Signal};
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    let _ = winch.thread_block();
    let resized = nix::sys::signalfd::SignalFd::new(&winch).context(|| "signalfd".into())?;
    crate::tty::copy_terminal(
        &master,
        pid,
        terminal.input.as_ref().map(|i| i.as_fd()),
        terminal.out.as_ref().map(|o| o.as_fd()),
        Some(&resized),
        |bytes| log.write("stdout", bytes),
    )?;
    log.finish()?;
    ch01_chroot::chroot_run::wait_for(pid)
}

/// Whether process `pid` exists.
pub fn is_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// When process `pid` started, in clock ticks after boot (the 22nd field of
/// `/proc/PID/stat`, counted after the name, which may hold spaces and parentheses).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether `pid` is still the process that started at `started`: not one that got its
/// number later (as runc checks before it signals). A state written before start times
/// were kept (`0`) has only the PID to go by.
pub fn is_the_same(pid: i32, started: u64) -> bool {
    is_alive(pid) && (started == 0 || start_time(pid) == Some(started))
}
