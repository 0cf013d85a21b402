//! `ch01-chroot`: the command line of chapter 01. Arguments are checked here; the
//! work is in the library.

use std::path::PathBuf;

use ch01_chroot::rootfs::{self, Built, Source};
use ch01_chroot::{chroot_run, doctor, escape};
use clap::{Parser, Subcommand, ValueEnum};
use labkit::doctor::{Host, Report};
use labkit::failure::{ExitCodes, exit_with};
use labkit::narrate::{self, shell_line};

/// Chapter 01: chroot(2) and the root filesystem.
/// A rootfs is just a directory tree; chroot(2) makes it the / of a process and its children.
/// chroot is not isolation: `ch01-chroot escape` shows a root process walking out of it.
#[derive(Parser, Debug)]
#[command(name = "ch01-chroot", version, verbatim_doc_comment)]
struct Cli {
    /// Do not narrate the system calls on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a minimal, working root filesystem in DIR from this host (no download).
    Rootfs {
        /// Where to build it; created when missing.
        dir: PathBuf,
        /// busybox: a busybox found on PATH, with a link per applet.
        /// host: host programs plus every library and the loader they need.
        /// Default: busybox when one is found, otherwise host.
        #[arg(long, value_enum)]
        from: Option<From>,
        /// Write into DIR even when it is not empty and not a rootfs made here.
        #[arg(long)]
        force: bool,
        /// Also copy this host program (a path, or a name on PATH) into /bin, with its
        /// libraries. May be repeated.
        #[arg(long, value_name = "PROGRAM")]
        add: Vec<PathBuf>,
    },
    /// Run CMD with ROOTFS as its root directory: fork, chroot, chdir("/"), exec.
    Run {
        /// Become this user and group (numeric) inside, after chroot and before exec.
        #[arg(long, value_name = "UID:GID", value_parser = parse_userspec)]
        userspec: Option<(u32, u32)>,
        rootfs: PathBuf,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Show, without writing anything, that root can walk out of a chroot.
    Escape { rootfs: PathBuf },
    /// Check this machine for what chapter 01 needs, and say how to fix what is missing.
    Doctor {
        /// Examine this tree (its proc/, sys/, etc/) instead of the real host.
        #[arg(long, hide = true, default_value = "/")]
        host_root: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum From {
    Busybox,
    Host,
}

fn main() {
    let cli = Cli::parse();
    narrate::set_quiet(cli.quiet);
    // `run` exits as chroot(1) does: 125 when we fail, 126/127 when the command cannot run.
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
        Some(Command::Rootfs {
            dir,
            from,
            force,
            add,
        }) => {
            let source = from.map(|f| match f {
                From::Busybox => Source::Busybox,
                From::Host => Source::Host,
            });
            let options = rootfs::Options { source, force, add };
            rootfs::build(&dir, &options).map(|built| {
                print_summary(&built);
                0
            })
        }
        Some(Command::Run {
            rootfs,
            command,
            userspec,
        }) => chroot_run::run(&rootfs, &command, userspec),
        Some(Command::Escape { rootfs }) => escape::escape(&rootfs),
        Some(Command::Doctor { host_root }) => Ok(Report::new(
            "ch01-chroot doctor: what chapter 01 needs from this machine",
            doctor::checks(&Host::at(host_root)),
        )
        .print()),
    };
    exit_with("ch01-chroot", codes, outcome)
}

fn parse_userspec(spec: &str) -> Result<(u32, u32), String> {
    let parsed = spec
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
    parsed.ok_or_else(|| format!("{spec:?} is not UID:GID; use numbers, e.g. 1000:1000"))
}

fn print_summary(built: &Built) {
    let dir = built.dir.display();
    match &built.busybox {
        Some(bb) => {
            println!("Made a busybox rootfs in {dir}");
            let kind = if bb.is_static {
                "statically linked: needs no libraries"
            } else {
                "dynamically linked"
            };
            println!("  busybox:   {} ({kind})", bb.path.display());
            let names: Vec<_> = built
                .applets
                .iter()
                .filter_map(|a| a.file_name())
                .map(|n| n.to_string_lossy())
                .take(6)
                .collect();
            println!(
                "  applets:   {} links to /bin/busybox ({}, ...)",
                built.applets.len(),
                names.join(", ")
            );
        }
        None => {
            println!("Made a host rootfs in {dir}");
            println!(
                "  programs:  {} copied into /bin: {}",
                built.programs.len(),
                built.programs.join(" ")
            );
        }
    }
    if !built.added.is_empty() {
        println!("  added:     {} (into /bin)", built.added.join(" "));
    }
    for (name, why) in &built.skipped {
        println!("  skipped:   {name} ({why})");
    }
    if !built.libraries.is_empty() {
        println!(
            "  libraries: {} (the loader and what the ELF headers ask for):",
            built.libraries.len()
        );
        for lib in &built.libraries {
            println!("             {}", lib.display());
        }
    }
    println!("  /etc:      passwd, group, hostname");
    println!(
        "  in all:    {} files, {} symlinks, {:.1} MiB",
        built.files,
        built.links,
        built.bytes as f64 / (1024.0 * 1024.0)
    );
    let try_it = [
        "ch01-chroot",
        "run",
        &dir.to_string(),
        "--",
        "/bin/sh",
        "-c",
        "echo hi; ls /",
    ];
    println!("Try it:      {}", shell_line(&try_it));
}
