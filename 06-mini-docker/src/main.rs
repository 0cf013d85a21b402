//! `mini-docker`: Docker's verbs over chapters 02-05.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use labkit::failure::{Context, EXIT_TOOL_FAILED, exit_with};
use labkit::privilege::require_root;
use labkit::{Failure, Result};
use mini_docker::container::{self, Container};
use mini_docker::create::{CreateArgs, create};
use mini_docker::store::{DEFAULT_ROOT, Store};
use mini_docker::{layers, lifecycle, show};

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
    #[command(subcommand)]
    command: Command,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Create and start a container.
    #[command(disable_help_flag = true)]
    Run {
        /// Run in the background and print the container's id.
        #[arg(short = 'd', long)]
        detach: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Create a container, without starting it.
    #[command(disable_help_flag = true)]
    Create {
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start stopped containers.
    Start {
        /// Attach: show its output and wait for it.
        #[arg(short = 'a', long)]
        attach: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps {
        /// All of them, not only the running ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only the ids.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// status=created|running|paused|exited|dead, or name=PART; repeatable.
        #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
    },
    /// What a container wrote (its json-file log).
    Logs {
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
    },
    /// Stop containers: SIGTERM, then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait until containers stop; print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop, then start containers.
    Restart {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze every process of containers (the cgroup freezer).
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec {
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
    },
    /// The processes of a container.
    Top { container: String },
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
    Rm {
        /// Kill a running one first.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Everything about containers, as JSON.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List images.
    Images,
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
    /// How an image was made, a line per layer.
    History { image: String },
    /// Remove images (and the layers nothing else uses).
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Containers as a group.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Check this machine for everything mini-docker needs, with the fix for each.
    Doctor,
    /// Networks: the bridges chapter 05 made.
    #[command(subcommand)]
    Network(Network),
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    /// Remove every stopped container.
    Prune,
}

#[derive(Subcommand, Debug)]
enum Network {
    /// List the bridges, their subnets and containers.
    Ls,
    /// Remove a bridge and its NAT rules (refused while containers use it).
    Rm { name: String },
}

fn main() {
    // Docker's code for a bad command line is 125 too.
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
    // The verbs that put processes into containers run from a file they cannot write.
    let enters = matches!(
        cli.command,
        Command::Run { .. }
            | Command::Start { .. }
            | Command::Restart { .. }
            | Command::Exec { .. }
    );
    let outcome = require_root("containers need root (namespaces, cgroups, mounts)")
        .and_then(|()| match enters {
            true => mini_docker::sealed::reexec_sealed(),
            false => Ok(()),
        })
        .and_then(|()| Store::open(&cli.root))
        .and_then(|store| command(&store, cli.command));
    exit_with("mini-docker", outcome)
}

/// Docker's codes: 125 when mini-docker itself fails.
fn tool(failure: Failure) -> Failure {
    match failure.code() {
        1 => failure.exit_code(EXIT_TOOL_FAILED),
        _ => failure,
    }
}

/// Run `action` on each named container, as Docker does: print the name given when
/// it worked, the error when not; fail (1) if any failed.
fn each(store: &Store, names: &[String], action: impl Fn(&Container) -> Result<()>) -> Result<i32> {
    let mut failed = false;
    for name in names {
        match container::find(store, name).and_then(|c| action(&c)) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from mini-docker: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

fn command(store: &Store, command: Command) -> Result<i32> {
    match command {
        Command::Run {
            detach,
            create: args,
        } => {
            let container = create(store, &args).map_err(tool)?;
            let code = lifecycle::start(store, &container, !detach).map_err(tool)?;
            if detach {
                println!("{}", container.id);
            }
            Ok(code)
        }
        Command::Create { create: args } => {
            let container = create(store, &args).map_err(tool)?;
            println!("{}", container.id);
            Ok(0)
        }
        Command::Start { attach, containers } => {
            if attach {
                let [name] = &containers[..] else {
                    return Err(tool(Failure::new("start -a takes one container")));
                };
                let container = container::find(store, name)?;
                return lifecycle::start(store, &container, true).map_err(tool);
            }
            each(store, &containers, |c| {
                lifecycle::start(store, c, false).map(drop)
            })
        }
        Command::Ps { all, quiet, filter } => {
            print!(
                "{}",
                show::ps(
                    store,
                    all,
                    quiet,
                    &show::Filter::parse(&filter).map_err(tool)?
                )
            );
            Ok(0)
        }
        Command::Logs {
            follow,
            timestamps,
            tail,
            container,
        } => show::logs(
            &container::find(store, &container)?,
            follow,
            timestamps,
            tail,
        ),
        Command::Stop { time, containers } => each(store, &containers, |c| {
            lifecycle::stop(c, Duration::from_secs(time))
        }),
        Command::Kill { signal, containers } => {
            let signal = lifecycle::parse_signal(&signal)?;
            each(store, &containers, |c| lifecycle::send(c, signal))
        }
        Command::Wait { containers } => {
            let mut failed = false;
            for name in &containers {
                match container::find(store, name).and_then(|c| lifecycle::wait(&c)) {
                    Ok(code) => println!("{code}"),
                    Err(e) => {
                        eprintln!("Error response from mini-docker: {e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        Command::Restart { time, containers } => each(store, &containers, |c| {
            lifecycle::stop(c, Duration::from_secs(time))?;
            lifecycle::start(store, c, false).map(drop)
        }),
        Command::Pause { containers } => each(store, &containers, |c| lifecycle::pause(c, true)),
        Command::Unpause { containers } => each(store, &containers, |c| lifecycle::pause(c, false)),
        Command::Exec {
            interactive,
            tty,
            env,
            workdir,
            user,
            container,
            command,
        } => {
            let container = container::find(store, &container)?;
            let flags = lifecycle::ExecFlags {
                env,
                workdir,
                user: user
                    .as_deref()
                    .map(mini_docker::create::user)
                    .transpose()
                    .map_err(tool)?,
                interactive,
                tty,
            };
            lifecycle::exec(&container, &command, &flags).map_err(tool)
        }
        Command::Top { container } => {
            print!("{}", show::top(&container::find(store, &container)?)?);
            Ok(0)
        }
        Command::Stats {
            no_stream,
            containers,
        } => loop {
            // Like `docker stats`: redrawn every second until Ctrl-C, unless --no-stream.
            let table = show::stats(store, &containers)?;
            if no_stream {
                print!("{table}");
                return Ok(0);
            }
            print!("\x1b[2J\x1b[H{table}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(1));
        },
        Command::Rename { container, name } => {
            let container = container::find(store, &container)?;
            mini_docker::create::rename(store, &container, &name).map_err(tool)?;
            Ok(0)
        }
        Command::Rm { force, containers } => each(store, &containers, |c| lifecycle::rm(c, force)),
        Command::Inspect { containers } => show::inspect(store, &containers),
        Command::Images => {
            print!("{}", show::images(store));
            Ok(0)
        }
        Command::Import { tar, name } => {
            let image = layers::import(store, &tar, &name).map_err(tool)?;
            println!("sha256:{}", image.id);
            Ok(0)
        }
        Command::Load { input } => {
            for image in layers::load(store, &input).map_err(tool)? {
                match image.tags.first() {
                    Some(tag) => println!("Loaded image: {tag}"),
                    None => println!("Loaded image ID: sha256:{}", image.id),
                }
            }
            Ok(0)
        }
        Command::Commit { container, name } => {
            let container = container::find(store, &container)?;
            let image = lifecycle::while_still(&container, || {
                layers::commit(store, &container, &name).map_err(tool)
            })?;
            println!("sha256:{}", image.id);
            Ok(0)
        }
        Command::Export { output, container } => {
            let container = container::find(store, &container)?;
            lifecycle::while_still(&container, || match &output {
                Some(path) => {
                    let mut file =
                        std::fs::File::create(path).context(|| path.display().to_string())?;
                    layers::export(store, &container, &mut file)
                }
                None => layers::export(store, &container, &mut std::io::stdout().lock()),
            })?;
            Ok(0)
        }
        Command::Cp { from, to } => mini_docker::cp::cp(store, &from, &to).map(|()| 0),
        Command::History { image } => {
            print!("{}", show::history(store, &image)?);
            Ok(0)
        }
        Command::Rmi { images } => {
            let mut failed = false;
            for image in &images {
                match layers::remove_image(store, image) {
                    Ok(()) => println!("Deleted: {image}"),
                    Err(e) => {
                        eprintln!("Error response from mini-docker: {e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        Command::Container(ContainerCommand::Prune) => {
            for c in container::list(store) {
                if lifecycle::current_state(&c).is_ok_and(|s| !s.running) {
                    lifecycle::rm(&c, false)?;
                    println!("{}", c.id);
                }
            }
            Ok(0)
        }
        Command::Doctor => Ok(0), // answered before the store is opened
        Command::Network(Network::Ls) => {
            print!("{}", ch05_network::show::show(None)?);
            Ok(0)
        }
        Command::Network(Network::Rm { name }) => {
            let netlink = ch05_network::netlink::Netlink::here()?;
            let state = ch05_network::ipam::State::here()?;
            ch05_network::bridge::down(&netlink, &state, &name)?;
            println!("{name}");
            Ok(0)
        }
    }
}
