//! `mini-docker`: Docker's verbs over chapters 02-05.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use labkit::failure::{Context, EXIT_TOOL_FAILED, ExitCodes, exit_with};
use labkit::privilege::require_root;
use labkit::{Failure, Result};
use mini_docker::build::BuildArgs;
use mini_docker::container::{self, Container, find};
use mini_docker::create::{CreateArgs, create};
use mini_docker::show::Filter;
use mini_docker::store::{DEFAULT_ROOT, Store};
use mini_docker::{layers, lifecycle, pull, push, show};

/// A small Docker: images, containers, a monitor per container, logs.
/// Built from the earlier chapters: namespaces and pivot_root (02), cgroups (03),
/// overlay layers (04) and the network (05). Quiet unless --explain.
#[derive(Parser, Debug)]
#[command(name = "mini-docker", version, verbatim_doc_comment)]
struct Cli {
    /// Where images and containers live.
    #[arg(long, global = true, env = "MINI_DOCKER_ROOT", default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Narrate every system call, with the shell command that does the same.
    #[arg(long, global = true)]
    explain: bool,
    /// For `run` and `create`: an OCI runtime (runc, crun, mini-runc: a name on PATH
    /// or a path) that the monitor drives through its command line, with the
    /// container's bundle. Without it, the monitor makes the container itself.
    #[arg(long, global = true, env = "MINI_DOCKER_RUNTIME")]
    runtime: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Create and start a container.
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a container, without starting it.
    #[command(disable_help_flag = true)]
    Create {
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start stopped containers.
    Start(StartArgs),
    /// List containers.
    Ps(PsArgs),
    /// What a container wrote (its json-file log).
    Logs(LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the timeout.
    Stop(StopArgs),
    /// Send a signal to containers.
    Kill(KillArgs),
    /// Wait until containers stop; print their exit codes.
    Wait(Containers),
    /// Stop, then start containers.
    Restart(StopArgs),
    /// Freeze every process of containers (the cgroup freezer).
    Pause(Containers),
    /// Thaw paused containers.
    Unpause(Containers),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// The processes of a container.
    Top { container: String },
    /// The ports a running container publishes: PRIVATE[/PROTO] -> HOST:PORT.
    Port {
        container: String,
        /// Only this container port (80, 80/udp).
        private_port: Option<String>,
    },
    /// What containers use: CPU time, memory, processes (redrawn every second).
    Stats {
        /// Print once and return.
        #[arg(long)]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Give a container a new name.
    Rename { container: String, name: String },
    /// Remove containers.
    Rm(RmArgs),
    /// Everything about containers, as JSON.
    Inspect(Containers),
    /// List images.
    Images {
        /// Show the digests images were pulled or pushed by.
        #[arg(long)]
        digests: bool,
        /// Show the images a build made for its steps too.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Build an image from a Dockerfile and a context directory.
    Build(BuildArgs),
    /// Download an image from a registry (Docker Hub by default).
    Pull {
        /// os/arch[/variant] to take from a multi-platform image.
        #[arg(long, value_name = "OS/ARCH")]
        platform: Option<String>,
        /// NAME[:TAG|@DIGEST]
        image: String,
    },
    /// Upload an image to a registry.
    Push {
        /// NAME[:TAG], naming its registry (e.g. localhost:5000/app:1).
        image: String,
    },
    /// Give an image another name: tag SOURCE TARGET.
    Tag { source: String, target: String },
    /// Images as a `docker save` archive (to stdout, or -o FILE).
    Save {
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Keep credentials for a registry (Docker Hub by default).
    Login {
        #[arg(short = 'u', long)]
        username: Option<String>,
        /// The password (seen by `ps`: prefer --password-stdin).
        #[arg(short = 'p', long)]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        server: Option<String>,
    },
    /// Forget the credentials for a registry.
    Logout { server: Option<String> },
    /// A root filesystem tarball (e.g. `docker export`'s) as an image.
    Import { tar: PathBuf, name: String },
    /// Images from an OCI image layout (directory or tar) or a `docker save` archive.
    Load {
        #[arg(short = 'i', long = "input", value_name = "PATH")]
        input: PathBuf,
    },
    /// A container's writable layer as a new image on top of its own.
    Commit { container: String, name: String },
    /// A container's filesystem as a tarball (stdout, or -o FILE).
    Export {
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        container: String,
    },
    /// Copy between a container and the host: cp CONTAINER:PATH HOSTPATH, or back.
    Cp { from: String, to: String },
    /// How an image was made, a line per step (and the layer it made).
    History { image: String },
    /// Remove images (and the layers nothing else uses); a name only untags.
    Rmi {
        /// Remove an image even when other names point at it.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Containers as a group.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Images as a group.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Check this machine for everything mini-docker needs, with the fix for each.
    Doctor,
    /// Projects of several containers, from a compose file.
    Compose(mini_docker::compose::ComposeArgs),
    /// Volumes: directories of the store's that outlive containers.
    #[command(subcommand)]
    Volume(mini_docker::volume::Command),
    /// Networks: bridges of chapter 05, the default one and those made here.
    #[command(subcommand)]
    Network(mini_docker::network::Command),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Args, Debug)]
struct StartArgs {
    /// Attach: show its output and wait for it.
    #[arg(short = 'a', long)]
    attach: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
struct PsArgs {
    /// All of them, not only the running ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Only the ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// status=created|running|paused|exited|dead, or name=PART; repeatable.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

#[derive(Args, Debug)]
struct LogsArgs {
    /// Keep following it until it ends.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show times.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    container: String,
}

#[derive(Args, Debug)]
struct StopArgs {
    /// Seconds to wait before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
struct KillArgs {
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// Kill a running one first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
struct Containers {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// Keep stdin open: the command reads ours.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Set an environment variable; repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The directory to start in.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Run as UID[:GID].
    #[arg(short = 'u', long = "user", value_name = "UID[:GID]")]
    user: Option<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    /// Remove every stopped container.
    Prune,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Remove dangling images: no name, no child, no container (old builds' images).
    Prune,
}

impl Command {
    // ANCHOR: exit_codes
    /// Docker's exit codes, decided here once: 125 when mini-docker fails at a verb
    /// that makes or runs something (and for a bad command line); 1 for the verbs
    /// that only look, and for a name that matches no container; a container's own
    /// code (126 and 127 when its command cannot run) as it comes.
    fn exit_codes(&self) -> ExitCodes {
        match self {
            Command::Run(_)
            | Command::Create { .. }
            | Command::Start(_)
            | Command::Restart(_)
            | Command::Exec(_)
            | Command::Kill(_)
            | Command::Ps(_)
            | Command::Rename { .. }
            | Command::Import { .. }
            | Command::Load { .. }
            | Command::Commit { .. } => ExitCodes::RunsACommand,
            // `docker pull`, `push`, `login`, `tag`, `save` fail with 1.
            _ => ExitCodes::Plain,
        }
    }
    // ANCHOR_END: exit_codes

    /// The verbs that put processes into containers run from a file they cannot write
    /// (`build`'s RUN steps are containers too).
    fn enters(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Start(_)
                | Command::Restart(_)
                | Command::Exec(_)
                | Command::Build(_)
                | Command::Compose(_)
        )
    }
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { EXIT_TOOL_FAILED } else { 0 })
    });
    labkit::narrate::set_quiet(!cli.explain);
    if let Command::Doctor = cli.command {
        let report = labkit::doctor::Report::new(
            "mini-docker doctor: what every chapter needs from this machine",
            mini_docker::doctor::checks(&labkit::doctor::Host::real()),
        );
        std::process::exit(report.print());
    }
    let codes = cli.command.exit_codes();
    let enters = cli.command.enters();
    let outcome = require_root("containers need root (namespaces, cgroups, mounts)")
        .and_then(|()| match enters {
            true => mini_docker::sealed::reexec_sealed(),
            false => Ok(()),
        })
        .and_then(|()| Store::open(&cli.root))
        .and_then(|store| command(&store, with_runtime(cli.command, cli.runtime)));
    exit_with("mini-docker", codes, outcome)
}

/// Run `action` on each named container, as Docker does: print what `action`
/// returns when it worked (the name given, or an exit code), the error when not;
/// fail (1) if any failed.
fn each<T: std::fmt::Display>(
    store: &Store,
    names: &[String],
    action: impl Fn(&str, &Container) -> Result<T>,
) -> Result<i32> {
    let mut failed = false;
    for name in names {
        match container::find(store, name).and_then(|c| action(name, &c)) {
            Ok(shown) => println!("{shown}"),
            Err(e) => {
                eprintln!("Error response from mini-docker: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// `--runtime` goes with what `run` and `create` record.
fn with_runtime(mut command: Command, runtime: Option<String>) -> Command {
    match &mut command {
        Command::Run(args) => args.create.runtime = runtime,
        Command::Create { create } => create.runtime = runtime,
        _ => {}
    }
    command
}

/// Print `text`; done.
fn printed(text: impl std::fmt::Display) -> Result<i32> {
    print!("{text}");
    Ok(0)
}

// ANCHOR: command
fn command(store: &Store, command: Command) -> Result<i32> {
    let named = |name: &str, _: &Container| Ok(name.to_string());
    match command {
        Command::Run(args) => run(store, args),
        Command::Create { create: args } => printed(format!("{}\n", create(store, &args)?.id)),
        Command::Start(args) => start(store, args),
        Command::Ps(a) => printed(show::ps(store, a.all, a.quiet, &Filter::parse(&a.filter)?)),
        Command::Logs(a) => show::logs(&find(store, &a.container)?, a.follow, a.timestamps, a.tail),
        Command::Stop(a) => each(store, &a.containers, |name, c| {
            lifecycle::stop(c, Duration::from_secs(a.time))?;
            named(name, c)
        }),
        Command::Kill(a) => {
            let signal = lifecycle::parse_signal(&a.signal)?;
            each(store, &a.containers, |name, c| {
                lifecycle::send(c, signal)?;
                named(name, c)
            })
        }
        Command::Wait(a) => each(store, &a.containers, |_, c| lifecycle::wait(c)),
        Command::Restart(a) => each(store, &a.containers, |name, c| {
            lifecycle::stop(c, Duration::from_secs(a.time))?;
            lifecycle::start(store, c, false)?;
            named(name, c)
        }),
        Command::Pause(a) => pause(store, &a.containers, true),
        Command::Unpause(a) => pause(store, &a.containers, false),
        Command::Exec(args) => exec(store, args),
        Command::Top { container } => printed(show::top(&find(store, &container)?)?),
        Command::Port {
            container,
            private_port,
        } => printed(show::port(
            &find(store, &container)?,
            private_port.as_deref(),
        )?),
        Command::Stats {
            no_stream,
            containers,
        } => stats(store, no_stream, &containers),
        Command::Rename { container, name } => {
            mini_docker::create::rename(store, &find(store, &container)?, &name).map(|()| 0)
        }
        Command::Rm(a) => rm(store, a),
        Command::Inspect(a) => show::inspect(store, &a.containers),
        Command::Images { digests, all } => printed(show::images(store, digests, all)),
        Command::Build(args) => mini_docker::build::build(store, &args).map(|_| 0),
        Command::Pull { platform, image } => pull(store, &image, platform.as_deref()),
        Command::Push { image } => push::push(store, &image, &mut std::io::stdout()).map(|_| 0),
        Command::Tag { source, target } => tag(store, &source, &target),
        Command::Save { output, images } => save(store, output, &images),
        Command::Login {
            username,
            password,
            password_stdin,
            server,
        } => login(username, password, password_stdin, server),
        Command::Logout { server } => logout(server),
        Command::Import { tar, name } => printed(format!(
            "sha256:{}\n",
            layers::import(store, &tar, &name)?.id
        )),
        Command::Load { input } => load(store, &input),
        Command::Commit { container, name } => commit(store, &container, &name),
        Command::Export { output, container } => export(store, output, &container),
        Command::Cp { from, to } => mini_docker::cp::cp(store, &from, &to).map(|()| 0),
        Command::History { image } => printed(show::history(store, &image)?),
        Command::Rmi { force, images } => rmi(store, &images, force),
        Command::Container(ContainerCommand::Prune) => prune(store),
        Command::Image(ImageCommand::Prune) => printed(format!(
            "Deleted Images:\n{}",
            (layers::prune_images(store)?.iter()).fold(String::new(), |t, l| t + l + "\n")
        )),
        Command::Doctor => Ok(0), // answered before the store is opened
        Command::Network(verb) => mini_docker::network::command(store, verb),
        Command::Volume(verb) => mini_docker::volume::command(store, verb),
        Command::Compose(args) => mini_docker::compose::compose(store, args),
    }
}
// ANCHOR_END: command

/// `rm [-f] [-v]`: with -v, the container's anonymous volumes too.
fn rm(store: &Store, args: RmArgs) -> Result<i32> {
    each(store, &args.containers, |name, c| {
        let mounts = c.config().map(|config| config.mounts);
        lifecycle::rm(c, args.force)?;
        if let (true, Ok(mounts)) = (args.volumes, mounts) {
            mini_docker::volume::remove_anonymous(store, &mounts);
        }
        Ok(name.to_string())
    })
}

fn pause(store: &Store, containers: &[String], paused: bool) -> Result<i32> {
    each(store, containers, |name, c| {
        lifecycle::pause(c, paused)?;
        Ok(name.to_string())
    })
}

fn pull(store: &Store, image: &str, platform: Option<&str>) -> Result<i32> {
    if !image.contains(':') && !image.contains('@') {
        println!("Using default tag: latest");
    }
    pull::pull(store, image, platform, &mut std::io::stdout()).map(|_| 0)
}

fn run(store: &Store, args: RunArgs) -> Result<i32> {
    let container = create(store, &args.create)?;
    let code = lifecycle::start(store, &container, !args.detach)?;
    if args.detach {
        println!("{}", container.id);
    }
    Ok(code)
}

fn start(store: &Store, args: StartArgs) -> Result<i32> {
    if !args.attach {
        return each(store, &args.containers, |name, c| {
            lifecycle::start(store, c, false).map(|_| name.to_string())
        });
    }
    let [name] = &args.containers[..] else {
        return Err(Failure::new("start -a takes one container"));
    };
    lifecycle::start(store, &find(store, name)?, true)
}

fn exec(store: &Store, args: ExecArgs) -> Result<i32> {
    let container = find(store, &args.container)?;
    let flags = lifecycle::ExecFlags {
        env: args.env,
        workdir: args.workdir,
        user: args
            .user
            .as_deref()
            .map(mini_docker::create::user)
            .transpose()?,
        interactive: args.interactive,
        tty: args.tty,
    };
    lifecycle::exec(&container, &args.command, &flags)
}

/// Like `docker stats`: redrawn every second until Ctrl-C, unless --no-stream.
fn stats(store: &Store, no_stream: bool, containers: &[String]) -> Result<i32> {
    loop {
        let table = show::stats(store, containers)?;
        if no_stream {
            return printed(table);
        }
        print!("\x1b[2J\x1b[H{table}");
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn load(store: &Store, input: &Path) -> Result<i32> {
    for image in layers::load(store, input)? {
        match image.tags.first() {
            Some(tag) => println!("Loaded image: {}", mini_docker::image::familiar(tag)),
            None => println!("Loaded image ID: sha256:{}", image.id),
        }
    }
    Ok(0)
}

fn commit(store: &Store, container: &str, name: &str) -> Result<i32> {
    let container = find(store, container)?;
    let image = lifecycle::while_still(&container, || layers::commit(store, &container, name))?;
    printed(format!("sha256:{}\n", image.id))
}

fn export(store: &Store, output: Option<PathBuf>, container: &str) -> Result<i32> {
    let container = find(store, container)?;
    lifecycle::while_still(&container, || match &output {
        Some(path) => {
            let mut file = std::fs::File::create(path).context(|| path.display().to_string())?;
            layers::export(store, &container, &mut file)
        }
        None => layers::export(store, &container, &mut std::io::stdout().lock()),
    })?;
    Ok(0)
}

fn rmi(store: &Store, images: &[String], force: bool) -> Result<i32> {
    let mut failed = false;
    for image in images {
        match layers::remove_image(store, image, force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("Error response from mini-docker: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

fn prune(store: &Store) -> Result<i32> {
    for c in container::list(store) {
        if lifecycle::current_state(&c).is_ok_and(|s| !s.running) {
            lifecycle::rm(&c, false)?;
            println!("{}", c.id);
        }
    }
    Ok(0)
}

fn tag(store: &Store, source: &str, target: &str) -> Result<i32> {
    let mut image = mini_docker::image::find(store, source)
        .ok_or_else(|| Failure::new(format!("No such image: {source}")))?;
    layers::tag(store, &mut image, target)?;
    Ok(0)
}

/// `save`: refused on a terminal, as Docker refuses it.
fn save(store: &Store, output: Option<PathBuf>, images: &[String]) -> Result<i32> {
    use std::io::IsTerminal;
    match output {
        Some(path) => {
            // Written beside, renamed when whole: a failed save leaves no half archive.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".save-")
                .tempfile_in(dir)
                .context(|| dir.display().to_string())?;
            push::save(store, images, &mut tmp)?;
            tmp.persist(&path)
                .map_err(|e| e.error)
                .context(|| path.display().to_string())?;
        }
        None if std::io::stdout().is_terminal() => {
            return Err(Failure::new(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            ));
        }
        None => push::save(store, images, &mut std::io::stdout().lock())?,
    }
    Ok(0)
}

/// `login`: asks for what the flags did not give, on a terminal only.
fn login(
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    server: Option<String>,
) -> Result<i32> {
    use std::io::{BufRead, IsTerminal};
    let registry = registry_of(server.as_deref());
    let interactive = std::io::stdin().is_terminal();
    if password.is_some() && password_stdin {
        return Err(Failure::new(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let line = |prompt: &str| -> Result<String> {
        if !interactive && !password_stdin {
            return Err(Failure::new(
                "Cannot perform an interactive login from a non TTY device",
            ));
        }
        eprint!("{prompt}");
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut text)
            .context(|| "stdin".into())?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    };
    let username = match username {
        Some(u) => u,
        None if password_stdin => {
            return Err(Failure::new(
                "Must provide --username with --password-stdin",
            ));
        }
        None => line("Username: ")?,
    };
    let password = match (password, password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut text)
                .context(|| "stdin".into())?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            let _hidden = mini_docker::tty::RawMode::no_echo();
            let p = line("Password: ")?;
            eprintln!();
            p
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failure::new(
            "Error: Non-null Username and Password Required",
        ));
    }
    let credentials = mini_docker::login::Credentials { username, password };
    let file = mini_docker::login::login(&registry, credentials)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        file.display()
    );
    println!("Login Succeeded");
    Ok(0)
}

fn logout(server: Option<String>) -> Result<i32> {
    let registry = registry_of(server.as_deref());
    match mini_docker::login::logout(&registry)? {
        true => println!("Removing login credentials for {registry}"),
        false => println!("Not logged in to {registry}"),
    }
    Ok(0)
}

/// `login`'s SERVER: Docker Hub when none; a URL's scheme and path dropped.
fn registry_of(server: Option<&str>) -> String {
    let server = server.unwrap_or(mini_docker::reference::DOCKER_HUB);
    let host = server.split_once("://").map_or(server, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => mini_docker::reference::DOCKER_HUB.into(),
        other => other.into(),
    }
}
