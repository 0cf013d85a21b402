//! `ch05-network`: the command line of chapter 05.

use ch02_namespaces::cli::IsolationArgs;
use ch02_namespaces::plan::plan;
use ch05_network::args::{DEFAULT_BRIDGE, Mode, NetworkArgs, check_interface_name};
use ch05_network::run;
use ch05_network::{bridge, doctor, ipam, netlink, p2p, show};
use clap::{Parser, Subcommand};
use labkit::Result;
use labkit::doctor::{Host, Report};
use labkit::failure::{ExitCodes, exit_with};
use labkit::narrate;
use labkit::privilege::require_root;

/// Chapter 05: container networking.
/// A network namespace starts with nothing but a loopback that is down. `run` wires
/// it to the host: a bridge, a veth pair, an address, a route, NAT, published ports.
#[derive(Parser, Debug)]
#[command(name = "ch05-network", version, verbatim_doc_comment)]
struct Cli {
    /// Do not narrate the system calls on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Debug, Clone)]
struct BridgeArg {
    /// The bridge (a Linux interface name: at most 15 characters).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BRIDGE)]
    bridge: String,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run CMD in a container with a network: bridge (default), none, host or container:PID.
    Run {
        #[command(flatten)]
        network: NetworkArgs,
        #[command(flatten)]
        isolation: IsolationArgs,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Remove a bridge, its NAT and forwarding rules, and its state.
    Down {
        #[command(flatten)]
        bridge: BridgeArg,
    },
    /// The bridges, their containers and published ports (like docker network inspect).
    Show {
        /// Only this bridge.
        #[arg(long, value_name = "NAME")]
        bridge: Option<String>,
    },
    /// Two containers joined point to point by one veth pair: p2p -- CMD1 -- CMD2
    P2p {
        /// The two addresses, one per container.
        #[arg(long, value_name = "A,B", default_value = "10.99.0.1,10.99.0.2")]
        ips: String,
        /// CMD1 -- CMD2
        #[arg(required = true, last = true, value_name = "CMDS")]
        commands: Vec<String>,
    },
    /// Check this machine for what chapter 05 needs, and say how to fix what is missing.
    Doctor {
        #[arg(long, hide = true, default_value = "/")]
        host_root: std::path::PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    narrate::set_quiet(cli.quiet);
    let codes = match cli.command {
        Some(Command::Run { .. } | Command::P2p { .. }) => ExitCodes::RunsACommand,
        _ => ExitCodes::Plain,
    };
    let outcome = match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(0)
        }
        Some(Command::Run {
            network,
            isolation,
            command,
        }) => run_command(network, isolation, command),
        Some(Command::Down { bridge }) => down(&bridge.bridge),
        Some(Command::Show { bridge }) => require_root("reading iptables needs CAP_NET_ADMIN")
            .and_then(|()| show::show(bridge.as_deref()))
            .map(|text| {
                print!("{text}");
                0
            }),
        Some(Command::P2p { ips, commands }) => {
            require_root("creating a veth pair needs CAP_NET_ADMIN")
                .and_then(|()| p2p::parse(&ips, &commands))
                .and_then(|request| p2p::run(&request))
        }
        Some(Command::Doctor { host_root }) => Ok(Report::new(
            "ch05-network doctor: what chapter 05 needs from this machine",
            doctor::checks(&Host::at(host_root)),
        )
        .print()),
    };
    exit_with("ch05-network", codes, outcome)
}

fn run_command(
    network: NetworkArgs,
    isolation: IsolationArgs,
    command: Vec<String>,
) -> Result<i32> {
    let options = network.options()?;
    if options.mode == Mode::Bridge {
        require_root("a veth pair in the host's network namespace needs CAP_NET_ADMIN")?;
    }
    let mut request = isolation.request(command);
    request.namespaces.extend(options.namespaces());
    run::run(&options, plan(request, &Host::real())?)
}

fn down(name: &str) -> Result<i32> {
    check_interface_name(name)?;
    require_root("removing a bridge needs CAP_NET_ADMIN")?;
    ipam::forget_vanished();
    let netlink = netlink::Netlink::here()?;
    bridge::down(&netlink, &ipam::State::here()?, name).map(|()| 0)
}
