//! The runtime spec's lifecycle, as runc runs it: `create` makes the container
//! and leaves its process waiting on the exec fifo; `start` opens the fifo, and
//! the process execs the user's program; `kill` signals it; `delete` removes what
//! is left once it has stopped. Between the calls nothing of mini-runc runs: the
//! state is in `--root` and in the kernel.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use ch02_namespaces::extension::{Extension, ParentHook};
use ch02_namespaces::spawn;
use ch03_cgroups::group::{Group, parse_signal};
use ch03_cgroups::hierarchy::Layout;
use labkit::doctor::Host;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::OFlag;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::runtime::bundle::Bundle;
use crate::runtime::hooks::{self, Hooks};
use crate::runtime::process::Handshake;
use crate::runtime::state::{Container, Root, Saved, Status, check_id, remove_dir};
use crate::store::now;

/// `create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// Where to send the master of the process's terminal (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Descriptors after stderr passed on to the process.
    pub preserve_fds: u32,
}

/// Where a process's terminal goes, when it has one.
#[derive(Debug)]
enum Console {
    /// The engine's `--console-socket`: the process sends its master there.
    Socket(std::os::unix::net::UnixStream),
    /// Ours, for a `run` or `exec` in the foreground: we take the master and copy
    /// between it and our own terminal until the process ends.
    Relay {
        ours: std::os::fd::OwnedFd,
        theirs: std::os::fd::OwnedFd,
    },
}

impl Console {
    /// runc's rules, in runc's words.
    fn new(terminal: bool, socket: Option<&Path>, detach: bool) -> Result<Option<Console>> {
        match (terminal, socket) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(Failure::new(
                "cannot use console socket if runc will not detach or allocate tty",
            )),
            (true, Some(path)) => std::os::unix::net::UnixStream::connect(path)
                .map(|s| Some(Console::Socket(s)))
                .map_err(|e| Failure::new(format!("--console-socket {}: {e}", path.display()))),
            (true, None) if detach => Err(Failure::new(
                "cannot allocate tty if runc will detach without setting console socket",
            )),
            (true, None) => {
                use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
                let flags = SockFlag::SOCK_CLOEXEC;
                let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, flags)
                    .context(|| "socketpair".into())?;
                Ok(Some(Console::Relay { ours, theirs }))
            }
        }
    }

    /// The descriptor the process sends its master on.
    fn process_end(&self) -> std::os::fd::RawFd {
        match self {
            Console::Socket(stream) => stream.as_raw_fd(),
            Console::Relay { theirs, .. } => theirs.as_raw_fd(),
        }
    }

    /// For `Relay`: our terminal, raw, copied to and from the process's until it ends.
    fn relay(self, pid: Pid) -> Result<()> {
        let Console::Relay { ours, theirs } = self else {
            return Ok(());
        };
        drop(theirs);
        match crate::tty::receive_console(&ours) {
            Some(master) => crate::tty::relay(master, pid),
            None => Ok(()),
        }
    }
}

/// Undoes a half-made container if `create` fails: its cgroup, its directory.
struct Undo {
    dir: Option<PathBuf>,
    group: Option<Group>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(group) = &mut self.group {
            let _ = group.kill();
            group.remove();
        }
        if let Some(dir) = self.dir.take() {
            remove_dir(&dir);
        }
    }
}

// ANCHOR: create
/// Make the container: its process exists, in its namespaces, cgroup and root,
/// and waits for `start`. Returns its PID.
pub fn create(root: &Root, id: &str, options: &CreateOptions) -> Result<Container> {
    create_with(root, id, options, true).map(|(container, _)| container)
}

/// `detach`: nobody will relay the process's terminal (for `create`, and `run -d`).
fn create_with(
    root: &Root,
    id: &str,
    options: &CreateOptions,
    detach: bool,
) -> Result<(Container, Option<Console>)> {
    check_id(id)?;
    let bundle = Bundle::load(&options.bundle)?;
    let mut translated = bundle.translate(id)?;
    let steps = &mut translated.last_steps.process;
    let socket = options.console_socket.as_deref();
    let console = Console::new(steps.terminal.is_some(), socket, detach)?;
    if let (Some((_, fd)), Some(console)) = (&mut steps.terminal, &console) {
        *fd = console.process_end();
    }
    let mut container = root.make(record(id, &bundle, &translated))?;
    let mut undo = Undo {
        dir: Some(container.dir.clone()),
        group: None,
    };
    let exec_fifo = make_exec_fifo(&container.exec_fifo())?;
    let host = Host::real();
    let group = Group::create(
        &Layout::discover(&host),
        &host,
        &translated.place,
        &translated.limits,
    )?;
    translated.plan.cgroup = Some(group.into_cgroup());
    let group = undo.group.insert(group);
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context(|| "pipe".into());
    let ((ready_read, ready_write), (report_read, report_write)) = (pipe()?, pipe()?);
    let (state_read, state_write) = pipe()?;
    let handshake = Handshake {
        ready: ready_write.as_raw_fd(),
        exec_fifo: exec_fifo.as_raw_fd(),
        state: state_read.as_raw_fd(),
    };
    let plan = &mut translated.plan;
    plan.extension.report_failure = Some(report_write.as_raw_fd());
    plan.extension.preserve_fds = options.preserve_fds;
    let (before_pivot_root, last) = translated.last_steps.hooks(handshake);
    plan.extension.before_pivot_root = Some(before_pivot_root);
    plan.extension.before_exec = Some(last);
    let child = spawn::start(plan)?;
    let maps = translated.maps.as_ref();
    if let Err(failure) = before_go(&mut container, &child, group, maps, &state_write) {
        child.abandon();
        return Err(failure);
    }
    let pid = child.go();
    drop((
        ready_write,
        report_write,
        exec_fifo,
        state_read,
        state_write,
    ));
    wait_until_ready(pid, ready_read, report_read)?;
    container.started(pid.as_raw());
    container.save()?;
    if let Some(file) = &options.pid_file {
        PidFile::open(file)?.write(pid.as_raw())?;
    }
    undo.dir = None;
    undo.group = None;
    Ok((container, console))
}
// ANCHOR_END: create

/// What `state` will read: the container as config.json describes it.
fn record(id: &str, bundle: &Bundle, translated: &crate::runtime::bundle::Translated) -> Saved {
    Saved {
        id: id.to_string(),
        bundle: bundle.dir.canonicalize().unwrap_or(bundle.dir.clone()),
        rootfs: bundle.rootfs.clone(),
        created: now(),
        annotations: bundle.annotations(),
        cgroup: (
            translated.place.parent.clone(),
            translated.place.leaf.clone(),
        ),
        hooks: Hooks::from_spec(&bundle.spec),
        process: bundle.spec.process().clone(),
        seccomp: (bundle.spec.linux().as_ref()).and_then(|l| l.seccomp().clone()),
        ..Saved::default()
    }
}

/// Before the child goes on: its maps, its cgroup, the createRuntime hooks; then
/// the state, on a pipe, for the hooks the child runs itself.
fn before_go(
    container: &mut Container,
    child: &spawn::Started,
    group: &Group,
    maps: Option<&(String, String)>,
    state_pipe: &std::os::fd::OwnedFd,
) -> Result<()> {
    if let Some((uid, gid)) = maps {
        write_maps(child.pid, uid, gid)?;
    }
    group.join(child)?;
    container.started(child.pid.as_raw());
    let state = container.oci_state_as(Status::Creating);
    hooks::run(
        "createRuntime",
        &container.saved.hooks.create_runtime,
        &state,
    )?;
    let line = format!("{state}\n");
    nix::unistd::write(state_pipe, line.as_bytes()).context(|| "pipe".into())?;
    Ok(())
}

/// The exec fifo, and a descriptor of it (`O_PATH`) for the child to open through.
fn make_exec_fifo(fifo: &Path) -> Result<std::os::fd::OwnedFd> {
    narrate::step(
        format!("mkfifo({fifo:?}, 0622)"),
        format!("mkfifo -m 622 {}", fifo.display()),
    );
    nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .context(|| format!("mkfifo {}", fifo.display()))?;
    // Writable by all (mkfifo's mode went through our umask): the process may no
    // longer be root when it opens it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fifo, std::fs::Permissions::from_mode(0o622))
        .context(|| format!("chmod {}", fifo.display()))?;
    nix::fcntl::open(
        fifo,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| fifo.display().to_string())
}

/// Our child says `r` once it waits on the fifo; or it ends, having written why
/// on the report pipe (its exit code, then a sentence).
fn wait_until_ready(
    pid: Pid,
    ready: std::os::fd::OwnedFd,
    report: std::os::fd::OwnedFd,
) -> Result<()> {
    let mut byte = [0u8; 1];
    if matches!(File::from(ready).read(&mut byte), Ok(1)) {
        return Ok(());
    }
    let mut why = vec![];
    let _ = File::from(report).read_to_end(&mut why);
    let _ = ch01_chroot::chroot_run::wait_for(pid);
    Err(match why.split_first() {
        Some((code, text)) => Failure::new(String::from_utf8_lossy(text).trim_end().to_string())
            .exit_code(i32::from(*code)),
        None => Failure::new("the container's process ended before it was ready"),
    })
}

/// `linux.uidMappings` and `gidMappings`, written by us (the parent) before the
/// child goes on.
pub fn write_maps(pid: Pid, uid: &str, gid: &str) -> Result<()> {
    for (file, lines) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{file}");
        narrate::step(
            format!("write({path:?}, {lines:?})"),
            format!("echo '{}' > {path}", lines.trim_end()),
        );
        std::fs::write(&path, lines).context(|| format!("config.json: linux mappings: {path}"))?;
    }
    Ok(())
}

/// `--pid-file`: its directory opened at once (`exec` writes it from inside the
/// container's mount namespace, where the path means nothing); written whole, then
/// renamed, so that an engine polling for it never reads half a PID.
struct PidFile {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
}

impl PidFile {
    fn open(file: &Path) -> Result<PidFile> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = file
            .file_name()
            .ok_or_else(|| Failure::new(format!("--pid-file {}: names no file", file.display())))?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty())
            .context(|| format!("--pid-file {}", file.display()))?;
        Ok(PidFile {
            dir,
            name: name.to_os_string(),
        })
    }

    fn write(&self, pid: i32) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let tmp = [self.name.as_bytes(), b".mini-runc.tmp"].concat();
        let tmp = std::ffi::OsStr::from_bytes(&tmp);
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC;
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        let shown = || format!("--pid-file {}", self.name.to_string_lossy());
        let fd = nix::fcntl::openat(&self.dir, tmp, flags, mode).context(shown)?;
        nix::unistd::write(&fd, pid.to_string().as_bytes()).context(shown)?;
        nix::fcntl::renameat(&self.dir, tmp, &self.dir, self.name.as_os_str()).context(shown)
    }
}

// ANCHOR: start
/// Let the created container's process go on to exec the user's program: open
/// the exec fifo for reading (its open for writing returns) and read its byte.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let container = root.load(id)?;
    match container.status() {
        Status::Created => {}
        Status::Stopped => return Err(Failure::new("cannot start a container that has stopped")),
        Status::Running | Status::Paused => {
            return Err(Failure::new("cannot start an already running container"));
        }
        Status::Creating => {
            return Err(Failure::new(
                "cannot start a container that is still being created",
            ));
        }
    }
    let fifo = container.exec_fifo();
    narrate::step(
        format!("open({fifo:?}, O_RDONLY); read()"),
        format!("cat {}", fifo.display()),
    );
    // Non-blocking, so that a process that died meanwhile cannot leave us waiting.
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| fifo.display().to_string())?;
    let pidfd = crate::monitor::open_pidfd(Pid::from_raw(container.saved.pid))?;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context(|| "poll".into())?,
        };
        let mut byte = [0u8; 1];
        match nix::unistd::read(&fd, &mut byte) {
            Ok(1) => break,
            Err(nix::errno::Errno::EAGAIN) | Ok(_) if !fds[1].any().unwrap_or(false) => continue,
            _ => {
                return Err(Failure::new(
                    "the container's process ended before it could start",
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&fifo);
    let state = container.oci_state_as(Status::Running);
    if let Err(failure) = hooks::run("poststart", &container.saved.hooks.poststart, &state) {
        eprintln!("mini-runc: warning: {failure}");
    }
    Ok(())
}
// ANCHOR_END: start

/// `kill ID SIGNAL`: to the container's process, or with `all` to every process
/// in its cgroup.
pub fn kill(root: &Root, id: &str, signal: &str, all: bool) -> Result<()> {
    let container = root.load(id)?;
    let signal =
        parse_signal(signal).ok_or_else(|| Failure::new(format!("unknown signal {signal:?}")))?;
    if container.status() == Status::Stopped && !all {
        return Err(Failure::new("container not running"));
    }
    match (all, container.group()) {
        (true, Some(group)) => group.signal(signal.as_str()),
        _ => {
            narrate::step(
                format!("kill({}, {signal})", container.saved.pid),
                format!("kill -{} {}", &signal.as_str()[3..], container.saved.pid),
            );
            nix::sys::signal::kill(Pid::from_raw(container.saved.pid), signal)
                .context(|| format!("kill {}", container.saved.pid))
        }
    }
}

// ANCHOR: delete
/// Remove a stopped container: its cgroup and its directory. With `force`, kill
/// it first (every process of its cgroup) and wait until it has ended.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let container = match root.load(id) {
        Err(e) if force && e.message() == crate::runtime::state::NOT_EXIST => return Ok(()),
        other => other?,
    };
    let status = container.status();
    if status != Status::Stopped && !force {
        return Err(Failure::new(format!(
            "cannot delete container {id} that is not stopped: {status}"
        )));
    }
    if let Some(mut group) = container.group() {
        if status != Status::Stopped {
            let _ = group.freeze(false);
            group.kill()?;
        }
        group.remove();
    }
    if status != Status::Stopped {
        wait_until_gone(&container)?;
    }
    let state = container.oci_state_as(Status::Stopped);
    if let Err(failure) = hooks::run("poststop", &container.saved.hooks.poststop, &state) {
        eprintln!("mini-runc: warning: {failure}");
    }
    remove_dir(&container.dir);
    Ok(())
}
// ANCHOR_END: delete

/// Until the process has ended (a pidfd becomes readable then).
fn wait_until_gone(container: &Container) -> Result<()> {
    let Ok(pidfd) = crate::monitor::open_pidfd(Pid::from_raw(container.saved.pid)) else {
        return Ok(()); // gone already
    };
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
    Ok(())
}

/// `pause` and `resume`: chapter 03's freezer.
pub fn freeze(root: &Root, id: &str, frozen: bool) -> Result<()> {
    let container = root.load(id)?;
    match (container.status(), frozen) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(Failure::new("container already paused")),
        (_, false) => return Err(Failure::new("container not paused")),
        (_, true) => return Err(Failure::new("container not running")),
    }
    let group = container
        .group()
        .ok_or_else(|| Failure::new("the container's cgroup is gone"))?;
    group.freeze(frozen)
}

/// `run`: create, start, wait for the end (we are its parent: we learn its exit
/// code), delete. The container's code is ours.
pub fn run(root: &Root, id: &str, options: &CreateOptions, detach: bool) -> Result<i32> {
    let _ignoring = ch01_chroot::chroot_run::IgnoreInterrupts::start()?;
    let (container, console) = create_with(root, id, options, detach)?;
    if let Err(failure) = start(root, id) {
        let _ = delete(root, id, true);
        return Err(failure);
    }
    if detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(container.saved.pid);
    if let Some(console) = console {
        console.relay(pid)?;
    }
    let code = ch01_chroot::chroot_run::wait_for(pid);
    delete(root, id, true)?;
    code
}

/// `exec`'s options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Return once the process runs; it outlives us.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

// ANCHOR: exec
/// One more process in a container: chapter 02's `exec_in` (setns into each of
/// its namespaces, its root, then fork), after joining its cgroup. `process` is in
/// config.json's format; the container's seccomp profile applies to it too.
pub fn exec(root: &Root, id: &str, process: &Process, options: &ExecOptions) -> Result<i32> {
    let container = root.load(id)?;
    match container.status() {
        Status::Created | Status::Running => {}
        Status::Paused => return Err(Failure::new("cannot exec in a paused container")),
        _ => return Err(Failure::new("cannot exec in a stopped container")),
    }
    check_process(process, "process")?;
    let pid_file = options.pid_file.as_deref().map(PidFile::open).transpose()?;
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_seccomp(container.saved.seccomp.clone());
    let mut steps = crate::runtime::bundle::process_steps(process, &linux)?;
    let socket = options.console_socket.as_deref();
    let console = Console::new(steps.terminal.is_some(), socket, options.detach)?;
    if let (Some((_, fd)), Some(console)) = (&mut steps.terminal, &console) {
        *fd = console.process_end();
    }
    let (report_read, report_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    let extension = Extension {
        workdir: Some(process.cwd().clone()),
        before_exec: Some(steps.hook()),
        report_failure: Some(report_write.as_raw_fd()),
        while_running: Some(until_it_runs(report_read, report_write, pid_file, console)),
        detach: options.detach,
        preserve_fds: options.preserve_fds,
        ..Extension::default()
    };
    if let Some(group) = container.group() {
        group.add(nix::unistd::getpid())?;
    }
    let args = process.args().clone().unwrap_or_default();
    let pid = container.saved.pid as u32;
    ch02_namespaces::enter::exec_in(pid, None, &args, &extension)
}
// ANCHOR_END: exec

/// In the parent, once the process is made: wait until it runs its program (the
/// report pipe closes on exec) or says why it could not; then its PID file; then,
/// for a terminal of ours, the relay.
fn until_it_runs(
    report: std::os::fd::OwnedFd,
    ours: std::os::fd::OwnedFd,
    pid_file: Option<PidFile>,
    console: Option<Console>,
) -> ParentHook {
    let console = std::sync::Mutex::new(console);
    let ours = std::sync::Mutex::new(Some(ours));
    let report = std::sync::Mutex::new(Some(report));
    ParentHook(std::sync::Arc::new(move |child| {
        drop(ours.lock().ok().and_then(|mut o| o.take())); // the child has its own
        if let Some(report) = report.lock().ok().and_then(|mut r| r.take()) {
            let mut why = vec![];
            let _ = File::from(report).read_to_end(&mut why);
            if let Some((code, text)) = why.split_first() {
                let _ = ch01_chroot::chroot_run::wait_for(child);
                let text = String::from_utf8_lossy(text).trim_end().to_string();
                return Err(Failure::new(text).exit_code(i32::from(*code)));
            }
        }
        if let Some(file) = &pid_file {
            file.write(child.as_raw())?;
        }
        match console.lock().ok().and_then(|mut c| c.take()) {
            Some(console) => console.relay(child),
            None => Ok(()),
        }
    }))
}

/// What a process must have: a program, an absolute working directory.
pub fn check_process(process: &Process, field: &str) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Failure::new(format!("{field}.args must not be empty")));
    }
    if !process.cwd().is_absolute() {
        return Err(Failure::new(format!(
            "{field}.cwd {}: must be an absolute path",
            process.cwd().display()
        )));
    }
    Ok(())
}

/// The PIDs of every process in the container's cgroup.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let container = root.load(id)?;
    Ok(container.group().map(|g| g.procs()).unwrap_or_default())
}
