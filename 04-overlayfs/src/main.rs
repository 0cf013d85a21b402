//! `ch04-overlayfs`: the command line of chapter 04.

use std::path::{Path, PathBuf};

use ch02_namespaces::cli::IsolationArgs;
use ch02_namespaces::namespace::Namespace;
use ch02_namespaces::plan::plan;
use ch04_overlayfs::overlay::{self, Overlay};
use ch04_overlayfs::{changes, demo, doctor, pack, run, unpack};
use clap::{Parser, Subcommand};
use labkit::Result;
use labkit::doctor::{Host, Report};
use labkit::failure::{ExitCodes, exit_with};
use labkit::narrate;
use labkit::privilege::require_root;

/// Chapter 04: overlayfs, copy-on-write, and image layers.
/// A union mount shows read-only lower layers and one writable upper layer as one tree.
/// `demo` shows copy-up and whiteouts; `layer pack|unpack` turns layers into OCI tarballs.
#[derive(Parser, Debug)]
#[command(name = "ch04-overlayfs", version, verbatim_doc_comment)]
struct Cli {
    /// Do not narrate the system calls on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

fn lowers(list: &str) -> Vec<PathBuf> {
    list.split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

// Parsed once into one value: the size of the biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Mount an overlay on MERGED (on the host, until `umount`).
    Mount {
        /// Read-only layers, top first: DIR[:DIR...]
        #[arg(long, value_name = "DIRS")]
        lower: String,
        /// The writable layer (none: a read-only overlay).
        #[arg(long, value_name = "DIR", requires = "work")]
        upper: Option<PathBuf>,
        /// Overlay's scratch directory, on the same filesystem as --upper.
        #[arg(long, value_name = "DIR", requires = "upper")]
        work: Option<PathBuf>,
        merged: PathBuf,
    },
    /// Unmount the overlay on MERGED.
    Umount { merged: PathBuf },
    /// Run CMD in a container whose root is an overlay of the lowers plus a writable layer.
    Run {
        /// Read-only layers, top first: DIR[:DIR...]
        #[arg(long, value_name = "DIRS")]
        lower: String,
        /// Keep the writable layer here (default: a temp dir, discarded).
        #[arg(long, value_name = "DIR")]
        upper: Option<PathBuf>,
        #[command(flatten)]
        isolation: IsolationArgs,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// The changes a writable layer holds, as A/C/D lines like docker diff.
    Diff {
        upper: PathBuf,
        /// The lowers, to tell changed (C) from added (A).
        #[arg(long, value_name = "DIRS")]
        lower: Option<String>,
    },
    /// Pack a writable layer into an OCI layer tarball, or apply one to a directory.
    #[command(subcommand)]
    Layer(Layer),
    /// The classic two-layer example, narrated.
    Demo,
    /// Check this machine for what chapter 04 needs, and say how to fix what is missing.
    Doctor {
        #[arg(long, hide = true, default_value = "/")]
        host_root: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum Layer {
    /// UPPER as an OCI layer tarball (.tar or .tar.gz); prints its sha256 digest.
    Pack { upper: PathBuf, out: PathBuf },
    /// Apply the OCI layer TAR onto DIR (whiteouts delete).
    Unpack {
        tar: PathBuf,
        dir: PathBuf,
        /// Accept device nodes in the layer.
        #[arg(long)]
        allow_devices: bool,
    },
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
        Some(Command::Mount {
            lower,
            upper,
            work,
            merged,
        }) => require_root("mount(2) needs CAP_SYS_ADMIN")
            .and_then(|()| match (upper, work) {
                (Some(upper), Some(work)) => Overlay::new(&lowers(&lower), &upper, &work, &merged),
                _ => Overlay::read_only(&lowers(&lower), &merged),
            })
            .and_then(|o| o.mount().map(|()| 0)),
        Some(Command::Umount { merged }) => require_root("umount(2) needs CAP_SYS_ADMIN")
            .and_then(|()| overlay::umount(&merged).map(|()| 0)),
        Some(Command::Run {
            lower,
            upper,
            isolation,
            command,
        }) => require_root("mounting an overlay needs CAP_SYS_ADMIN").and_then(|()| {
            let mut request = isolation.request(command);
            request.namespaces.insert(Namespace::Mount);
            plan(request, &Host::real()).and_then(|p| run::run(&lowers(&lower), upper, p))
        }),
        Some(Command::Diff { upper, lower }) => diff(&upper, lower),
        Some(Command::Layer(layer)) => layer_command(layer),
        Some(Command::Demo) => {
            require_root("mounting an overlay needs CAP_SYS_ADMIN").and_then(|()| demo::demo())
        }
        Some(Command::Doctor { host_root }) => Ok(Report::new(
            "ch04-overlayfs doctor: what chapter 04 needs from this machine",
            doctor::checks(&Host::at(host_root)),
        )
        .print()),
    };
    exit_with("ch04-overlayfs", codes, outcome)
}

/// `diff UPPER`: what a writable layer changed, a line per path.
fn diff(upper: &Path, lower: Option<String>) -> Result<i32> {
    if !upper.is_dir() {
        return Err(labkit::Failure::new(format!(
            "{}: not a directory (an upper layer is one)",
            upper.display()
        )));
    }
    for change in changes::diff(upper, &lower.map(|l| lowers(&l)).unwrap_or_default()) {
        println!("{change}");
    }
    Ok(0)
}

/// `layer pack` and `layer unpack`: a writable layer to a tarball, and back.
fn layer_command(layer: Layer) -> Result<i32> {
    match layer {
        Layer::Pack { upper, out } => pack::pack(&upper, &out).map(|p| {
            println!("{}", p.digest);
            eprintln!(
                "packed {} entries, {} whiteouts, {} opaque directories: {} bytes",
                p.entries, p.whiteouts, p.opaque, p.bytes
            );
            0
        }),
        Layer::Unpack {
            tar,
            dir,
            allow_devices,
        } => unpack::unpack(&tar, &dir, allow_devices).map(|u| {
            eprintln!(
                "applied {} entries, {} whiteouts, {} opaque directories",
                u.entries, u.whiteouts, u.opaque
            );
            0
        }),
    }
}
