//! With `--runtime`: the monitor as containerd's shim is, driving an OCI runtime
//! (runc, crun, mini-runc) through its command line on the container's bundle:
//! `create` (the container's stdio is the runtime's, its terminal comes back over a
//! console socket), the network plugged into the process `--pid-file` names, then
//! `start`; at the end, `delete`. The container's process is the runtime's child
//! until the runtime exits: the monitor is a subreaper, so the kernel gives it the
//! orphan, and with it the exit code.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::unistd::Pid;

use crate::container::{Config, Container};
use crate::monitor::{Output, Started, Terminal};
use crate::spec::bundle_dir;
use crate::stdio::Pipes;

/// The runtime's `--root`: its state, in the container's directory.
fn state_root(container: &Container) -> PathBuf {
    container.dir.join("runtime")
}

/// `RUNTIME --root DIR --log FILE --log-format json ARGS`.
fn runtime(container: &Container, runtime: &str, args: &[&str]) -> Command {
    let mut command = Command::new(runtime);
    command
        .arg("--root")
        .arg(state_root(container))
        .arg("--log")
        .arg(container.dir.join("runtime.log"))
        .args(["--log-format", "json"])
        .args(args);
    narrate::step(
        format!("fork(); execve({runtime:?}, ...)"),
        format!(
            "{runtime} --root {} {}",
            state_root(container).display(),
            args.join(" ")
        ),
    );
    command
}

// ANCHOR: start
/// Create the container with the runtime, plug it in (`connect`), start it.
pub(crate) fn start(
    container: &Container,
    path: &str,
    config: &Config,
    terminal: &Terminal,
    mut connect: impl FnMut(Pid) -> Result<()>,
) -> Result<Started> {
    // Orphans of ours come to us: the container's process, once the runtime exits.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (bundle, pid_file) = (
        bundle_dir(&container.dir),
        container.dir.join("runtime.pid"),
    );
    let mut create = runtime(container, path, &[]);
    create
        .arg("create")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let console = Console::prepare(&mut create, config, terminal)?;
    let status = create
        .arg(&container.id)
        .status()
        .context(|| path.to_string())?;
    if !status.success() {
        return failed(container, path);
    }
    let pid = read_pid(&pid_file)?;
    let output = console.output()?;
    let started = connect(pid).and_then(|()| call(container, path, &["start", &container.id]));
    if let Err(failure) = started {
        delete(container, path);
        return Err(failure);
    }
    Ok(Started::Running(pid, output))
}
// ANCHOR_END: start

/// `RUNTIME VERB ID`; when it fails, why (from its log).
fn call(container: &Container, path: &str, args: &[&str]) -> Result<()> {
    let status = runtime(container, path, args)
        .status()
        .context(|| path.to_string())?;
    match status.success() {
        true => Ok(()),
        false => {
            Err(Failure::new(last_error(container).unwrap_or_else(|| {
                format!("{path} {} failed", args.join(" "))
            })))
        }
    }
}

/// What comes back from `create`: our ends of the pipes, or the socket the
/// runtime sends the terminal's master to.
enum Console {
    Pipes(crate::stdio::Ours),
    Listening(std::os::unix::net::UnixListener, tempfile::TempDir),
}

impl Console {
    /// The container's stdio is the runtime's: pipes of ours; or with `-t`, a
    /// console socket (its path must be short, 108 bytes: in a directory of /tmp).
    fn prepare(create: &mut Command, config: &Config, terminal: &Terminal) -> Result<Console> {
        if !config.tty {
            let interactive = config.interactive && terminal.input.is_some();
            let Pipes { theirs, ours } = Pipes::new(interactive)?;
            let [stdin, stdout, stderr] = theirs;
            create.stdin(stdin).stdout(stdout).stderr(stderr);
            return Ok(Console::Pipes(ours));
        }
        let dir = (tempfile::Builder::new()
            .prefix("mini-docker-console")
            .tempdir())
        .context(|| "a directory for the console socket".into())?;
        let socket = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&socket)
            .context(|| socket.display().to_string())?;
        create.arg("--console-socket").arg(&socket);
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(Console::Listening(listener, dir))
    }

    /// Where the container's output comes from: our pipes, or the master the
    /// runtime sent (the connection waits in the socket's queue until we accept it).
    fn output(self) -> Result<Output> {
        match self {
            Console::Pipes(ours) => Ok(Output::Pipes(ours)),
            Console::Listening(listener, _dir) => {
                let (stream, _) = listener.accept().context(|| "console socket".into())?;
                Ok(Output::Pty(OwnedFd::from(stream)))
            }
        }
    }
}

/// `create` failed: why, from the runtime's JSON log (as containerd reads it),
/// with the code Docker gives (127: no such program, 126: not executable).
fn failed(container: &Container, path: &str) -> Result<Started> {
    let why = last_error(container).unwrap_or_else(|| format!("{path} create failed"));
    let code = match why.as_str() {
        w if w.contains("executable file not found") || w.contains("no such file") => 127,
        w if w.contains("permission denied") => 126,
        _ => 125,
    };
    delete(container, path);
    Ok(Started::Failed(code, why))
}

/// The last error line of `--log` (`{"level":"error","msg":...}`).
fn last_error(container: &Container) -> Option<String> {
    let log = std::fs::read_to_string(container.dir.join("runtime.log")).ok()?;
    log.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        (value["level"] == "error").then(|| value["msg"].as_str().unwrap_or_default().to_string())
    })
}

fn read_pid(file: &Path) -> Result<Pid> {
    let text = std::fs::read_to_string(file).context(|| file.display().to_string())?;
    text.trim()
        .parse()
        .map(Pid::from_raw)
        .map_err(|_| Failure::new(format!("{}: not a PID: {text:?}", file.display())))
}

/// `RUNTIME delete --force ID`: its state and cgroup gone (nothing if it has none).
pub(crate) fn delete(container: &Container, path: &str) {
    let _ = runtime(container, path, &["delete", "--force", &container.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(state_root(container));
}

/// The cgroup levels above the container's group that do not exist yet: the
/// runtime makes them (`/mini-docker` in every hierarchy, name=systemd's too) and
/// removes only the container's own. Those still empty go when this is dropped,
/// under chapter 03's lock, as chapter 03 tidies the levels it makes.
#[derive(Debug)]
pub(crate) struct Levels(Vec<PathBuf>);

impl Levels {
    pub(crate) fn missing(place: &ch03_cgroups::place::Place) -> Levels {
        let base = Path::new("/sys/fs/cgroup");
        let roots: Vec<PathBuf> = match base.join("cgroup.procs").exists() {
            true => vec![base.to_path_buf()],
            false => (std::fs::read_dir(base).into_iter().flatten().flatten())
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists())
                .collect(),
        };
        let parent = place.parent.trim_start_matches('/');
        let mut missing = vec![];
        for root in roots.iter().filter(|_| !parent.is_empty() && parent != ".") {
            // Deepest first.
            let levels = Path::new(parent)
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty());
            missing.extend(levels.map(|a| root.join(a)).filter(|l| !l.exists()));
        }
        Levels(missing)
    }
}

impl Drop for Levels {
    fn drop(&mut self) {
        let host = labkit::doctor::Host::real();
        let _lock = ch03_cgroups::place::lock(&ch03_cgroups::hierarchy::Layout::discover(&host));
        for level in &self.0 {
            if ch03_cgroups::place::children(level).is_empty() {
                let _ = std::fs::remove_dir(level);
            }
        }
    }
}
