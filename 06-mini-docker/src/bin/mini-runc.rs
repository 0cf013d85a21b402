//! `mini-runc`: an OCI runtime with runc's command line, so that engines (podman,
//! containerd's shim, mini-docker --runtime) can drive the chapters' container.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use labkit::narrate;
use labkit::{Failure, Result};
use mini_docker::runtime::bundle::OCI_VERSION;
use mini_docker::runtime::lifecycle::{self, CreateOptions, ExecOptions};
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
    /// Run one more process in a container: config.json's process with these
    /// changes, or the one described by --process.
    Exec(ExecArgs),
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
    /// Pass on N descriptors after stderr (3, 4...) to the container's process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A JSON file with the process to run (config.json's `process` format).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return once the process runs (it is not waited for).
    #[arg(short, long)]
    detach: bool,
    /// Write the process's PID here once it runs.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Allocate a terminal (its master goes to --console-socket).
    #[arg(short, long)]
    tty: bool,
    /// A unix socket to send the terminal's master end to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// The working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// KEY=VALUE added to the environment (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids (repeatable).
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// A capability to add to every set (repeatable).
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    no_new_privs: bool,
    /// Pass on N descriptors after stderr (3, 4...) to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    /// The program and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl ExecArgs {
    /// The process to run: --process's file, or the container's own with these flags.
    fn process(&self, root: &Root) -> Result<oci_spec::runtime::Process> {
        if let Some(file) = &self.process {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::new(format!("--process {}: {e}", file.display())))?;
            let raw: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::new(format!("--process {}: {e}", file.display())))?;
            mini_docker::runtime::bundle::refuse_unsupported(&raw, "/process", "--process: ")?;
            return serde_json::from_value(raw)
                .map_err(|e| Failure::new(format!("--process {}: {e}", file.display())));
        }
        if self.command.is_empty() {
            return Err(Failure::new("exec needs a command (or --process FILE)"));
        }
        let container = root.load(&self.id)?;
        let mut process = container.saved.process.clone().unwrap_or_default();
        process.set_args(Some(self.command.clone()));
        process.set_terminal(Some(self.tty));
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(self.env.iter().cloned());
        process.set_env(Some(env));
        if let Some(cwd) = &self.cwd {
            process.set_cwd(cwd.clone());
        }
        if let Some(user) = &self.user {
            let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
            let number = |n: &str| {
                n.parse::<u32>()
                    .map_err(|_| Failure::new(format!("--user {user}: give UID[:GID] as numbers")))
            };
            let mut u = process.user().clone();
            u.set_uid(number(uid)?);
            u.set_gid(number(gid)?);
            process.set_user(u);
        }
        if !self.additional_gids.is_empty() {
            let mut u = process.user().clone();
            u.set_additional_gids(Some(self.additional_gids.clone()));
            process.set_user(u);
        }
        if !self.cap.is_empty() {
            let mut caps = process.capabilities().clone().unwrap_or_default();
            let added = (self.cap.iter())
                .map(|c| {
                    c.parse::<oci_spec::runtime::Capability>()
                        .map_err(|_| Failure::new(format!("--cap {c}: not a capability")))
                })
                .collect::<Result<Vec<_>>>()?;
            let with = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.extend(added.iter().copied());
                Some(set)
            };
            caps.set_bounding(with(caps.bounding()));
            caps.set_effective(with(caps.effective()));
            caps.set_permitted(with(caps.permitted()));
            caps.set_inheritable(with(caps.inheritable()));
            caps.set_ambient(with(caps.ambient()));
            process.set_capabilities(Some(caps));
        }
        if self.no_new_privs {
            process.set_no_new_privileges(Some(true));
        }
        Ok(process)
    }
}

impl CreateArgs {
    fn options(&self) -> Result<CreateOptions> {
        if self.no_pivot {
            return Err(Failure::new(
                "--no-pivot: mini-runc always uses pivot_root (a rootfs on ramfs cannot be pivoted: use tmpfs)",
            ));
        }
        Ok(CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
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
        Command::Exec(args) => {
            let options = ExecOptions {
                detach: args.detach,
                pid_file: args.pid_file.clone(),
                console_socket: args.console_socket.clone(),
                preserve_fds: args.preserve_fds,
            };
            lifecycle::exec(&root, &args.id, &args.process(&root)?, &options)
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
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
            "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "sync", "async", "dirsync", "mand", "nomand", "atime", "noatime", "diratime",
            "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "bind",
            "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave",
            "unbindable", "runbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": [format!("SCMP_ARCH_{}", std::env::consts::ARCH.to_uppercase())],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC"]},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        }
    })
}

/// A default config.json (`runc spec`): `sh` on a terminal, runc's namespaces, mounts,
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
    // As runc's: an interactive `sh` on a terminal (`run` relays it to ours).
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(true));
    spec.set_process(Some(process));
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
