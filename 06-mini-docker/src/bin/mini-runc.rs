//! `mini-runc`: an OCI runtime with runc's command line, so that engines (podman,
//! containerd's shim, mini-docker --runtime) can drive the chapters' container.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use labkit::narrate;
use labkit::{Failure, Result};
use mini_docker::runtime::bundle::OCI_VERSION;
use mini_docker::runtime::lifecycle::{self, CreateOptions};
use mini_docker::runtime::state::Root;

/// An OCI runtime, as runc is one: a bundle (config.json and a rootfs) in, a
/// container out, through create, start, state, kill and delete.
/// Quiet unless --debug, which narrates every system call.
#[derive(Parser, Debug)]
#[command(name = "mini-runc", version, verbatim_doc_comment)]
struct Cli {
    /// Where the state of containers is kept.
    #[arg(long, global = true, default_value = "/run/mini-runc")]
    root: PathBuf,
    /// Also write errors (and with --debug, each step) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// How lines in --log are written: text, or JSON (as containerd reads them).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Narrate every system call on stderr, with the shell command that does the same.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups (not supported: mini-runc writes cgroupfs itself).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Let a created container's process run the program of config.json.
    Start { id: String },
    /// The container's state, as the runtime spec defines it (JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's process.
    Kill {
        /// To every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// A name (KILL, SIGKILL) or a number (9).
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped container (with --force, kill it first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it, delete it: its exit code is ours.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once it has started; do not wait or delete.
        #[arg(short, long)]
        detach: bool,
    },
    /// The processes in the container's cgroup.
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        id: String,
    },
    /// Freeze every process of the container (the cgroup freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// The containers under --root.
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: Format,
        /// Only their IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// What this runtime supports (the runtime spec's features document).
    Features,
    /// Write a default config.json for a bundle.
    Spec {
        /// The bundle directory to write it in.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// For a container run without root: a user namespace mapping us to root.
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The bundle: a directory with config.json and the rootfs it names.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's PID here once it exists.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master end to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (not supported).
    #[arg(long)]
    no_pivot: bool,
    /// Do not make a new session keyring (mini-runc never makes one).
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N descriptors above stderr on to the container (not supported yet).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> Result<CreateOptions> {
        if self.console_socket.is_some() {
            return Err(Failure::new(
                "cannot use console socket if runc will not detach or allocate tty \
                 (mini-runc: process.terminal is not supported yet)",
            ));
        }
        if self.no_pivot {
            return Err(Failure::new(
                "--no-pivot: mini-runc always uses pivot_root (a rootfs on ramfs cannot be pivoted: use tmpfs)",
            ));
        }
        if self.preserve_fds > 0 {
            return Err(Failure::new(
                "--preserve-fds is not supported by mini-runc yet",
            ));
        }
        Ok(CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
        })
    }
}

fn main() {
    let cli = Cli::parse();
    narrate::set_quiet(!cli.debug);
    let outcome = if cli.systemd_cgroup {
        Err(Failure::new(
            "--systemd-cgroup is not supported: mini-runc manages cgroupfs itself (drop the flag)",
        ))
    } else {
        labkit::privilege::require_root(&format!("mini-runc {}", command_name(&cli.command)))
            .and_then(|()| command(&cli))
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(failure) => {
            log_error(&cli, failure.message());
            eprintln!("mini-runc: {failure}");
            std::process::exit(1)
        }
    }
}

fn command_name(command: &Command) -> String {
    format!("{command:?}")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase()
}

/// An error line in `--log`: `{"level":"error","msg":...,"time":...}` with
/// --log-format json (containerd reads the last one), logrus's text otherwise.
fn log_error(cli: &Cli, message: &str) {
    let Some(path) = &cli.log else { return };
    let time = mini_docker::store::now();
    let line = match cli.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={message:?}"),
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

fn command(cli: &Cli) -> Result<i32> {
    let root = Root(cli.root.clone());
    match &cli.command {
        Command::Create(args) => lifecycle::create(&root, &args.id, &args.options()?).map(|_| 0),
        Command::Start { id } => lifecycle::start(&root, id).map(|()| 0),
        Command::State { id } => {
            let state = root.load(id)?.oci_state();
            println!("{}", serde_json::to_string_pretty(&state).expect("JSON"));
            Ok(0)
        }
        Command::Kill { all, id, signal } => lifecycle::kill(&root, id, signal, *all).map(|()| 0),
        Command::Delete { force, id } => lifecycle::delete(&root, id, *force).map(|()| 0),
        Command::Run { create, detach } => {
            lifecycle::run(&root, &create.id, &create.options()?, *detach)
        }
        Command::Ps { format, id } => ps(&root, id, *format),
        Command::Pause { id } => lifecycle::freeze(&root, id, true).map(|()| 0),
        Command::Resume { id } => lifecycle::freeze(&root, id, false).map(|()| 0),
        Command::List { format, quiet } => list(&root, *format, *quiet),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&features()).expect("JSON")
            );
            Ok(0)
        }
        Command::Spec { bundle, rootless } => spec(bundle, *rootless),
    }
}

fn ps(root: &Root, id: &str, format: Format) -> Result<i32> {
    let pids = lifecycle::pids(root, id)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string(&pids).expect("JSON")),
        Format::Table => {
            println!("PID     CMD");
            for pid in pids {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let words: Vec<String> = (cmdline.split(|b| *b == 0).filter(|w| !w.is_empty()))
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                println!("{pid:<7} {}", words.join(" "));
            }
        }
    }
    Ok(0)
}

fn list(root: &Root, format: Format, quiet: bool) -> Result<i32> {
    let containers: Vec<_> = root
        .ids()
        .iter()
        .filter_map(|id| root.load(id).ok())
        .collect();
    if quiet {
        containers.iter().for_each(|c| println!("{}", c.saved.id));
        return Ok(0);
    }
    match format {
        Format::Json => {
            let states: Vec<_> = containers.iter().map(|c| c.oci_state()).collect();
            println!("{}", serde_json::to_string(&states).expect("JSON"));
        }
        Format::Table => {
            println!(
                "{:<12} {:<8} {:<10} {:<40} CREATED",
                "ID", "PID", "STATUS", "BUNDLE"
            );
            for c in containers {
                let status = c.status();
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {}",
                    c.saved.id,
                    c.pid_now(status),
                    status,
                    c.saved.bundle.display(),
                    c.saved.created
                );
            }
        }
    }
    Ok(0)
}

/// The runtime spec's features document: what a bundle may ask of us.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "sync", "async", "dirsync", "mand", "nomand", "atime", "noatime", "diratime",
            "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "bind",
            "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave",
            "unbindable", "runbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        }
    })
}

/// A default config.json (`runc spec`): busybox's `sh`, runc's namespaces, mounts,
/// capabilities, masked paths; a read-only `rootfs` next to it.
fn spec(bundle: &std::path::Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Failure::new(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_hostname(Some("mini-runc".to_string()));
    if rootless {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        spec.set_linux(Some(oci_spec::runtime::Linux::rootless(uid, gid)));
    }
    let text = serde_json::to_string_pretty(&spec).expect("JSON");
    std::fs::write(&path, text + "\n")
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok(0)
}
