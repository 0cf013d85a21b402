//! `ch03-cgroups`: the command line of chapter 03.

use std::path::PathBuf;

use ch02_namespaces::cli::IsolationArgs;
use ch02_namespaces::plan::plan;
use ch03_cgroups::group::{DEFAULT_PARENT, Group, PREFIX, check_name};
use ch03_cgroups::hierarchy::Layout;
use ch03_cgroups::limits::{LimitArgs, parse_size};
use ch03_cgroups::place::Place;
use ch03_cgroups::run::{RunOptions, run};
use ch03_cgroups::stats::{Stats, render};
use ch03_cgroups::{doctor, info, stress};
use clap::{Args, Parser, Subcommand};
use labkit::Result;
use labkit::doctor::{Host, Report};
use labkit::failure::{ExitCodes, exit_with};
use labkit::narrate;

/// Chapter 03: control groups, v1, v2 and hybrid.
/// A cgroup limits, accounts for, freezes and kills a group of processes, through files.
/// `run` starts a command in a new group with limits; `info` shows this host's cgroups.
#[derive(Parser, Debug)]
#[command(name = "ch03-cgroups", version, verbatim_doc_comment)]
struct Cli {
    /// Do not narrate the system calls on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the groups are.
#[derive(Args, Debug, Clone)]
struct Where {
    /// The parent cgroup in each hierarchy: a path from its root, or relative to the
    /// group we run in (`.`: beneath our own, where cgroup v2 delegation is learnt).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PARENT)]
    parent: String,
}

// Parsed once into one value: the size of the biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Show the cgroup version(s), where each controller is, and our own cgroup.
    Info {
        /// Examine this tree (its proc/ and sys/) instead of the real host.
        #[arg(long, hide = true, default_value = "/")]
        host_root: PathBuf,
    },
    /// Run CMD in a new cgroup with limits, report what it used, then remove the group.
    Run {
        #[command(flatten)]
        limits: LimitArgs,
        /// The group's name (default: our PID); its directories are lab-NAME.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Keep the group afterwards (see stats, rm).
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        place: Where,
        #[command(flatten)]
        isolation: IsolationArgs,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Check this machine for what chapter 03 needs, and say how to fix what is missing.
    Doctor {
        #[arg(long, hide = true, default_value = "/")]
        host_root: PathBuf,
    },
    /// What a group uses now: memory, CPU time, pids, frozen or not.
    Stats {
        name: String,
        #[command(flatten)]
        place: Where,
    },
    /// Freeze every process of a group (docker pause).
    Freeze {
        name: String,
        #[command(flatten)]
        place: Where,
    },
    /// Thaw a frozen group (docker unpause).
    Thaw {
        name: String,
        #[command(flatten)]
        place: Where,
    },
    /// SIGKILL every process of a group (or send --signal).
    Kill {
        name: String,
        /// Send this signal instead (TERM, SIGHUP, 15...), like docker kill -s.
        #[arg(short, long, value_name = "SIG")]
        signal: Option<String>,
        #[command(flatten)]
        place: Where,
    },
    /// Kill what is left in a group and remove it.
    Rm {
        name: String,
        #[command(flatten)]
        place: Where,
    },
    /// List the groups made by `run --keep`.
    Ls {
        #[command(flatten)]
        place: Where,
    },
    /// Generate load, to see limits at work.
    #[command(subcommand)]
    Stress(Stress),
}

#[derive(Subcommand, Debug)]
enum Stress {
    /// Allocate and touch SIZE of memory (e.g. 128m).
    Memory { size: String },
    /// Keep a CPU busy for SECONDS.
    Cpu { seconds: f64 },
    /// Try to start N processes at once.
    Fork { count: u64 },
    /// Write SIZE to FILE, past the page cache (O_DIRECT), and say how fast it went.
    Write { file: PathBuf, size: String },
}

fn with_group(
    name: &str,
    place: &Where,
    what: impl FnOnce(&mut Group) -> Result<i32>,
) -> Result<i32> {
    check_name(name)?;
    let layout = Layout::discover(&Host::real());
    let mut group = Group::open(
        &layout,
        &Place::new(&place.parent, &format!("{PREFIX}{name}"))?,
    )?;
    what(&mut group)
}

fn main() {
    let cli = Cli::parse();
    narrate::set_quiet(cli.quiet);
    let codes = match cli.command {
        Some(Command::Run { .. }) => ExitCodes::RunsACommand,
        _ => ExitCodes::Plain,
    };
    let outcome = match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(0)
        }
        Some(Command::Info { host_root }) => {
            print!("{}", info::info(&Host::at(host_root)));
            Ok(0)
        }
        Some(Command::Run {
            limits,
            name,
            keep,
            place,
            isolation,
            command,
        }) => limits.limits().and_then(|limits| {
            let options = RunOptions {
                limits,
                name,
                parent: place.parent,
                keep,
            };
            plan(isolation.request(command), &Host::real()).and_then(|plan| run(&options, &plan))
        }),
        Some(Command::Doctor { host_root }) => Ok(Report::new(
            "ch03-cgroups doctor: what chapter 03 needs from this machine",
            doctor::checks(&Host::at(host_root)),
        )
        .print()),
        Some(Command::Stats { name, place }) => with_group(&name, &place, |g| show_stats(&name, g)),
        Some(Command::Freeze { name, place }) => {
            with_group(&name, &place, |g| g.freeze(true).map(|()| 0))
        }
        Some(Command::Thaw { name, place }) => {
            with_group(&name, &place, |g| g.freeze(false).map(|()| 0))
        }
        Some(Command::Kill {
            name,
            signal,
            place,
        }) => with_group(&name, &place, |g| match signal {
            None => g.kill().map(|()| 0),
            Some(sig) => g.signal(&sig).map(|()| 0),
        }),
        Some(Command::Rm { name, place }) => with_group(&name, &place, |g| {
            g.remove();
            Ok(0)
        }),
        Some(Command::Ls { place }) => Group::list(&Layout::discover(&Host::real()), &place.parent)
            .map(|names| {
                for name in names {
                    println!("{name}");
                }
                0
            }),
        Some(Command::Stress(load)) => stress_load(load),
    };
    exit_with("ch03-cgroups", codes, outcome)
}

/// `stats NAME`: what the group uses now.
fn show_stats(name: &str, group: &Group) -> Result<i32> {
    let stats = Stats::read(group);
    let frozen = if stats.frozen == Some(true) {
        ", frozen"
    } else {
        ""
    };
    println!("cgroup lab-{name}: {} process(es){frozen}", stats.procs);
    if let Some(now) = stats.memory_now {
        println!("  {:<15}{}", "memory now:", ch03_cgroups::stats::mib(now));
    }
    print!("{}", render(&stats));
    Ok(0)
}

fn stress_load(load: Stress) -> Result<i32> {
    match load {
        Stress::Memory { size } => parse_size("memory", &size).and_then(stress::memory),
        Stress::Cpu { seconds } => stress::cpu(seconds),
        Stress::Fork { count } => stress::fork_many(count),
        Stress::Write { file, size } => {
            parse_size("size", &size).and_then(|bytes| stress::write(&file, bytes))
        }
    }
}
