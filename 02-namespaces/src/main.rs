//! `ch02-namespaces`: the command line of chapter 02.

use std::path::PathBuf;

use ch02_namespaces::cli::{IsolationArgs, NamespaceFlags};
use ch02_namespaces::plan::plan;
use ch02_namespaces::{doctor, enter, show, spawn};
use clap::{Parser, Subcommand};
use labkit::doctor::{Host, Report};
use labkit::failure::{ExitCodes, exit_with};
use labkit::narrate;

/// Chapter 02: namespaces, with clone(2), unshare(2) and setns(2).
/// A namespace gives a process its own view of one global resource: hostname, PIDs, mounts, network...
/// `run` starts a command in new ones, `exec` joins a running process's, `show` compares them.
#[derive(Parser, Debug)]
#[command(name = "ch02-namespaces", version, verbatim_doc_comment)]
struct Cli {
    /// Do not narrate the system calls on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run CMD in new namespaces.
    Run {
        #[command(flatten)]
        isolation: IsolationArgs,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run CMD in the namespaces of process PID, with setns(2), like nsenter.
    /// With no namespace flag: every namespace of PID that differs from ours.
    Exec {
        #[arg(value_name = "PID")]
        target: u32,
        #[command(flatten)]
        namespaces: NamespaceFlags,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Show the namespaces of PID (default: this process) next to the host's PID 1,
    /// marking those that differ.
    Show {
        pid: Option<u32>,
        /// Compare with this process instead of PID 1 (e.g. another container).
        #[arg(long, value_name = "PID")]
        against: Option<u32>,
    },
    /// Check this machine for what chapter 02 needs, and say how to fix what is missing.
    Doctor {
        /// Examine this tree (its proc/, sys/, etc/) instead of the real host.
        #[arg(long, hide = true, default_value = "/")]
        host_root: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    narrate::set_quiet(cli.quiet);
    let codes = match cli.command {
        Some(Command::Run { .. } | Command::Exec { .. }) => ExitCodes::RunsACommand,
        _ => ExitCodes::Plain,
    };
    let outcome = match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(0)
        }
        Some(Command::Run { isolation, command }) => {
            plan(isolation.request(command), &Host::real()).and_then(|plan| spawn::run(&plan))
        }
        Some(Command::Exec {
            target,
            namespaces,
            command,
        }) => {
            let chosen = namespaces.chosen();
            let wanted = (!namespaces.all && !chosen.is_empty()).then_some(&chosen);
            enter::exec_in(target, wanted, &command, &Default::default())
        }
        Some(Command::Show { pid, against }) => {
            let pid = pid.map_or_else(|| "self".to_string(), |p| p.to_string());
            let missing = [Some(pid.clone()), against.map(|a| a.to_string())]
                .into_iter()
                .flatten()
                .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
            match missing {
                Some(p) => Err(labkit::Failure::new(format!(
                    "no process {p}: it does not exist or has exited (ps -p {p})"
                ))),
                None => {
                    print!("{}", show::table(&pid, show::reference(against)));
                    Ok(0)
                }
            }
        }
        Some(Command::Doctor { host_root }) => Ok(Report::new(
            "ch02-namespaces doctor: what chapter 02 needs from this machine",
            doctor::checks(&Host::at(host_root)),
        )
        .print()),
    };
    exit_with("ch02-namespaces", codes, outcome)
}
