//! Networks. `--network bridge|none|host|container:NAME` and `-p` are chapter 05's
//! modes, kept in a container's config and turned into chapter 05's options at
//! each start. A user-defined network (`network create NAME`) is one more bridge
//! of chapter 05, with a subnet of its own, isolated from the other bridges; its
//! containers find each other by name through an address book, the `/etc/hosts`
//! of each, which the runtime rewrites as they start and stop.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use ch05_network::args::{DEFAULT_BRIDGE, DEFAULT_SUBNET, Mode, Options, Protocol, Publish};
use ch05_network::ipam::files_dir;
use ch05_network::run::Attachment;
use ipnet::Ipv4Net;
use labkit::failure::{Context, EXIT_FAILURE};
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::container::{self, Config, Container, Endpoint, Plugged};
use crate::store::{Store, lock, new_id, now, read_json, write_json};

/// A user-defined network, as `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    /// The bridge on the host: `br-` and the id's first 12 digits, as Docker's.
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The names Docker reserves: its default networks.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

fn file(store: &Store, name: &str) -> PathBuf {
    store.root.join("networks").join(format!("{name}.json"))
}

/// The user-defined network `name`; "not found" (exit 1) when there is none.
pub fn find(store: &Store, name: &str) -> Result<Network> {
    let missing = || Failure::new(format!("network {name} not found")).exit_code(EXIT_FAILURE);
    if !container::is_name(name) {
        return Err(missing());
    }
    read_json(&file(store, name)).map_err(|_| missing())
}

/// Every user-defined network, by name.
pub fn list(store: &Store) -> Vec<Network> {
    (store.ids("networks").iter())
        .filter_map(|name| find(store, name).ok())
        .collect()
}

// ANCHOR: create
/// `network create`: a record in the store and a bridge of chapter 05, made now
/// with its subnet (the first free 10.N.0.0/24 after the default bridge's unless
/// given), its NAT, and its isolation from the other bridges.
pub fn create(store: &Store, args: &CreateArgs) -> Result<Network> {
    let name = &args.name;
    if !container::is_name(name) || PREDEFINED.contains(&name.as_str()) {
        return Err(Failure::new(format!(
            "invalid network name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, not bridge, host or none"
        )));
    }
    let _locked = lock(&store.root)?;
    if find(store, name).is_ok() {
        return Err(Failure::new(format!(
            "network with name {name} already exists"
        )));
    }
    let taken = subnets_in_use(store);
    let subnet = match &args.subnet {
        Some(text) => {
            let subnet = ch05_network::args::parse_subnet(text)?;
            if let Some(other) = taken
                .iter()
                .find(|t| t.contains(&subnet.network()) || subnet.contains(&t.network()))
            {
                return Err(Failure::new(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({other})"
                )));
            }
            subnet
        }
        None => free_subnet(&taken)?,
    };
    let gateway = match &args.gateway {
        None => ch05_network::args::gateway(subnet),
        Some(asked) => match asked.parse::<Ipv4Addr>() {
            Ok(ip)
                if subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast() =>
            {
                ip
            }
            _ => {
                return Err(Failure::new(format!(
                    "--gateway {asked}: not a host address of the subnet {subnet}"
                )));
            }
        },
    };
    let id = new_id()?;
    let network = Network {
        name: name.clone(),
        bridge: format!("br-{}", &id[..12]),
        id,
        created: now(),
        driver: "bridge".into(),
        subnet: subnet.to_string(),
        gateway: gateway.to_string(),
        internal: args.internal,
        labels: container::labels(&args.labels)?,
    };
    ready(&network)?;
    let dir = store.root.join("networks");
    std::fs::create_dir_all(&dir).context(|| dir.display().to_string())?;
    write_json(&file(store, name), &network)?;
    Ok(network)
}
// ANCHOR_END: create

/// The network's bridge, made if it is missing (chapter 05), and an internal
/// one's rules. Idempotent: each start of a container on it asks again.
fn ready(network: &Network) -> Result<ch05_network::bridge::Bridge> {
    let netlink = ch05_network::netlink::Netlink::here()?;
    let state = ch05_network::ipam::State::here()?;
    let (subnet, gateway) = addresses(network)?;
    let bridge = ch05_network::bridge::ensure(
        &netlink,
        &state,
        &network.bridge,
        Some(subnet),
        Some(gateway),
    )?;
    if network.internal {
        for rule in ch05_network::netfilter::internal_rules(&network.bridge) {
            bridge.iptables.ensure(&rule)?;
        }
    }
    Ok(bridge)
}

/// The network's subnet and gateway, as kept in its record.
fn addresses(network: &Network) -> Result<(Ipv4Net, Ipv4Addr)> {
    let subnet = ch05_network::args::parse_subnet(&network.subnet)?;
    let gateway = (network.gateway.parse()).map_err(|_| {
        Failure::new(format!(
            "network {}: gateway {:?}",
            network.name, network.gateway
        ))
    })?;
    Ok((subnet, gateway))
}

/// `--ip` on this network: a free-to-take host address, not its gateway.
pub fn check_ip(network: &Network, ip: &str) -> Result<Ipv4Addr> {
    let (subnet, gateway) = addresses(network)?;
    ch05_network::args::parse_ip(ip, subnet, gateway)
}

fn subnets_in_use(store: &Store) -> Vec<Ipv4Net> {
    (list(store).iter())
        .filter_map(|n| n.subnet.parse().ok())
        .chain(DEFAULT_SUBNET.parse().ok())
        .collect()
}

/// 10.78.0.0/24, 10.79.0.0/24, ...: the first that no network holds.
fn free_subnet(taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    (78..=254u8)
        .filter_map(|n| Ipv4Net::new(Ipv4Addr::new(10, n, 0, 0), 24).ok())
        .find(|s| {
            !taken
                .iter()
                .any(|t| t.contains(&s.network()) || s.contains(&t.network()))
        })
        .ok_or_else(|| Failure::new("no free subnet left in 10.78.0.0-10.254.0.0: give --subnet"))
}

/// A running container on a network: its address and aliases there.
struct Member {
    container: Container,
    config: Config,
    state: crate::container::State,
    ip: Ipv4Addr,
    aliases: Vec<String>,
}

/// The running containers on `name` (as their first network or a connected one).
fn members(store: &Store, name: &str) -> Vec<Member> {
    (container::list(store).into_iter())
        .filter_map(|c| {
            let config = c.config().ok()?;
            let state = (crate::lifecycle::current_state(&c).ok()).filter(|s| s.running)?;
            let (ip, aliases) = match config.network_name == name {
                true => (state.ip_address.clone(), config.aliases.clone()),
                false => {
                    let e = config.extra_networks.iter().find(|e| e.network == name)?;
                    (state.plugged.get(name)?.ip.clone(), e.aliases.clone())
                }
            };
            let ip = ip.parse().ok()?;
            Some(Member {
                container: c,
                config,
                state,
                ip,
                aliases,
            })
        })
        .collect()
}

/// The user-defined networks a container is on.
fn networks_of(config: &Config) -> Vec<&str> {
    let first = (!config.network_name.is_empty()).then_some(config.network_name.as_str());
    first
        .into_iter()
        .chain(config.extra_networks.iter().map(|e| e.network.as_str()))
        .collect()
}

// ANCHOR: remove
/// `network rm`: refused while a container runs on it (a stopped one may stay: it
/// fails at its next start). Its bridge and rules go with it.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    if PREDEFINED.contains(&name) {
        return Err(Failure::new(format!(
            "{name} is a pre-defined network and cannot be removed"
        )));
    }
    let _locked = lock(&store.root)?;
    let network = find(store, name)?;
    let running = members(store, name);
    if !running.is_empty() {
        let ids: Vec<&str> = running.iter().map(|m| m.container.short_id()).collect();
        return Err(Failure::new(format!(
            "error while removing network: network {name} id {} has active endpoints ({})",
            network.id,
            ids.join(", ")
        )));
    }
    let netlink = ch05_network::netlink::Netlink::here()?;
    let state = ch05_network::ipam::State::here()?;
    if netlink.link(&network.bridge)?.is_some() || state.bridge_dir(&network.bridge).exists() {
        ch05_network::bridge::down(&netlink, &state, &network.bridge)?;
    }
    let path = file(store, name);
    std::fs::remove_file(&path).context(|| path.display().to_string())
}
// ANCHOR_END: remove

/// `network prune`: every user-defined network no container runs on.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    let mut gone = vec![];
    for network in list(store) {
        if members(store, &network.name).is_empty() {
            remove(store, &network.name)?;
            gone.push(network.name);
        }
    }
    Ok(gone)
}

/// `--network`: chapter 05's mode, or the name of a user-defined network (then a
/// bridge, its own).
pub fn mode_of(store: &Store, text: &str) -> Result<(Mode, String)> {
    match text.parse::<Mode>() {
        Ok(mode) => Ok((mode, String::new())),
        Err(why) if text.contains(':') => Err(Failure::new(why)),
        Err(_) => find(store, text)
            .map(|n| (Mode::Bridge, n.name))
            .map_err(|e| Failure::new(e.message())),
    }
}

/// Chapter 05's options for a container on mini-docker's default bridge.
pub fn options(mode: Mode, publish: &[Publish]) -> Result<Options> {
    let options = Options {
        mode,
        bridge: DEFAULT_BRIDGE.into(),
        subnet: None,
        ip: None,
        publish: publish.to_vec(),
        mtu: None,
    };
    options.check_flags()?;
    Ok(options)
}

// ANCHOR: at_start
/// The options at a start: `container:NAME` becomes the PID of its first
/// process, a user-defined network its bridge (made ready), `-P` free host ports
/// for the image's exposed ones (new ports at each start, as Docker gives).
pub fn at_start(store: &Store, config: &Config) -> Result<Options> {
    let mode = match &config.network {
        Mode::Container(name) => {
            let state = container::find(store, name)?.state()?;
            if !state.running {
                return Err(Failure::new(format!(
                    "--network container:{name}: that container is not running"
                )));
            }
            Mode::Container(state.pid.to_string())
        }
        mode => mode.clone(),
    };
    let mut publish = config.publish.clone();
    for exposed in &config.publish_all {
        if let Some(port) = free_port_for(exposed, &publish)? {
            publish.push(port);
        }
    }
    let mut options = options(mode, &publish)?;
    options.ip = config.ip.clone();
    if !config.network_name.is_empty() {
        let network = find(store, &config.network_name)?;
        let bridge = ready(&network)?;
        options.bridge = bridge.name;
        options.subnet = Some(bridge.subnet);
    }
    Ok(options)
}
// ANCHOR_END: at_start

/// `-P`: for an exposed `80/tcp` not published by `-p`, a host port the kernel
/// says is free now (bound to port 0, then let go).
fn free_port_for(exposed: &str, taken: &[Publish]) -> Result<Option<Publish>> {
    let (port, proto) = exposed.split_once('/').unwrap_or((exposed, "tcp"));
    let bad = || Failure::new(format!("the image's EXPOSE {exposed}: not PORT[/tcp|/udp]"));
    let container_port: u16 = port.parse().map_err(|_| bad())?;
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(bad()),
    };
    if taken
        .iter()
        .any(|p| p.container_port == container_port && p.protocol == protocol)
    {
        return Ok(None);
    }
    let any = (Ipv4Addr::UNSPECIFIED, 0);
    let host_port = match protocol {
        Protocol::Tcp => TcpListener::bind(any).and_then(|s| s.local_addr()),
        Protocol::Udp => UdpSocket::bind(any).and_then(|s| s.local_addr()),
    }
    .context(|| "a free port for -P".into())?
    .port();
    Ok(Some(Publish {
        host_port,
        container_port,
        protocol,
    }))
}

// ANCHOR: address_book
/// The address book of a container on a bridge: its own `/etc/hosts` (the loopback
/// names, itself, every other running container of its user-defined network by
/// name and aliases, then `--add-host`s) and `/etc/resolv.conf` (`--dns`,
/// `--dns-search`). The default bridge lists no other containers: Docker's rule.
fn hosts(config: &Config, ip: Ipv4Addr, peers: &[(String, Vec<String>, Ipv4Addr)]) -> String {
    // ANCHOR: hole_hosts
    let mut text = ch05_network::etc_files::hosts(&config.hostname, Some(ip));
    for (name, aliases, peer) in peers {
        let names: Vec<&str> = std::iter::once(name.as_str())
            .chain(aliases.iter().map(String::as_str))
            .collect();
        text.push_str(&format!("{peer}\t{}\n", names.join(" ")));
    }
    for extra in &config.extra_hosts {
        if let Some((host, address)) = extra.split_once(':') {
            text.push_str(&format!("{address}\t{host}\n"));
        }
    }
    text
    // ANCHOR_END: hole_hosts
}
// ANCHOR_END: address_book

fn resolv_conf(config: &Config) -> String {
    if config.dns.is_empty() && config.dns_search.is_empty() {
        let host = ch05_network::etc_files::read_etc(std::path::Path::new("/"), "resolv.conf");
        return ch05_network::etc_files::resolv_conf(&host);
    }
    let mut text = String::new();
    if !config.dns_search.is_empty() {
        text.push_str(&format!("search {}\n", config.dns_search.join(" ")));
    }
    for server in &config.dns {
        text.push_str(&format!("nameserver {server}\n"));
    }
    text
}

/// Write one container's files in place: they are bound into it, and a new file
/// renamed over the old one would not be seen through the bind. A file that says
/// the same already is left alone, and a changed one is overwritten before it is cut
/// to its new length: a program reading it meanwhile never finds it empty, as it
/// would between the truncation and the write of `fs::write`.
fn write_files(
    bridge: &str,
    config: &Config,
    ip: Ipv4Addr,
    peers: &[(String, Vec<String>, Ipv4Addr)],
) -> Result<()> {
    let state = ch05_network::ipam::State::here()?;
    let dir = files_dir(&state, bridge, ip);
    for (name, text) in [
        ("hosts", hosts(config, ip, peers)),
        ("resolv.conf", resolv_conf(config)),
    ] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|now| now == text) {
            continue;
        }
        let shown = || path.display().to_string();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .context(shown)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).context(shown)?;
        file.set_len(text.len() as u64).context(shown)?;
    }
    Ok(())
}

/// After chapter 05 prepared the container's place on its bridge: its files.
pub fn address_book(
    store: &Store,
    container: &Container,
    config: &Config,
    attachment: &Attachment,
) -> Result<()> {
    let peers = peers(store, config, &container.id);
    write_files(&attachment.bridge.name, config, attachment.lease.ip, &peers)
}

/// Every other running container on the networks of `config`'s container (`own`,
/// its id), by name and aliases, on each.
fn peers(store: &Store, config: &Config, own: &str) -> Vec<(String, Vec<String>, Ipv4Addr)> {
    (networks_of(config).into_iter())
        .flat_map(|network| members(store, network))
        .filter(|m| m.container.id != own)
        .map(|m| (m.container.name, m.aliases, m.ip))
        .collect()
}

// ANCHOR: refresh
/// A container started, ended, or was connected on `network`: the address book of
/// every running member is written again, under the network's lock (two starts at
/// once must not write what each saw before the other).
pub fn refresh(store: &Store, network: &str) {
    if network.is_empty() {
        return;
    }
    let _locked = crate::store::lock(&store.root.join("networks"));
    for member in members(store, network) {
        // Its book is where its first network's files are.
        let bridge = match member.config.network_name.as_str() {
            "" => DEFAULT_BRIDGE.to_string(),
            first => match find(store, first) {
                Ok(net) => net.bridge,
                Err(_) => continue,
            },
        };
        let Ok(ip) = member.state.ip_address.parse() else {
            continue;
        };
        let peers = peers(store, &member.config, &member.container.id);
        let _ = write_files(&bridge, &member.config, ip, &peers);
    }
}
// ANCHOR_END: refresh

/// [`refresh`] each of the container's user-defined networks.
pub fn refresh_all(store: &Store, config: &Config) {
    for network in networks_of(config) {
        refresh(store, network);
    }
}

/// `network create`'s flags.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// An IPv4 subnet, e.g. 10.90.0.0/24 (default: the first free 10.N.0.0/24).
    #[arg(long)]
    pub subnet: Option<String>,
    /// The gateway: the subnet's first address (the bridge's own).
    #[arg(long)]
    pub gateway: Option<String>,
    /// No way in or out but between its containers: no NAT, no forwarding.
    #[arg(long)]
    pub internal: bool,
    /// Only `bridge`.
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Set a label: KEY=VALUE; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    pub name: String,
}

/// `network ...`: Docker's verbs for networks.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make a network: a bridge of its own, isolated from the others.
    Create(CreateArgs),
    /// List networks: the default ones and those made here.
    Ls {
        /// Only the names.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Everything about networks, with their running containers, as JSON.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while a container runs on one). A bridge of
    /// chapter 05 by its name (lab0) is taken down too.
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every user-defined network no container runs on.
    Prune {
        /// Accepted, as Docker's: mini-docker does not ask.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Put a container on one more network: at once when it runs, else at its
    /// next start.
    Connect {
        /// Other names it is found by on that network; repeatable.
        #[arg(long = "alias", value_name = "NAME")]
        aliases: Vec<String>,
        /// Its address there.
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Take a container off a network (its first one only while it is stopped).
    Disconnect { network: String, container: String },
}

/// Run one `network` verb; its exit code.
pub fn command(store: &Store, command: Command) -> Result<i32> {
    match command {
        Command::Create(args) => {
            if args.driver != "bridge" {
                return Err(Failure::new(format!(
                    "plugin \"{}\" not found: mini-docker has the bridge driver only",
                    args.driver
                )));
            }
            println!("{}", create(store, &args)?.id);
            Ok(0)
        }
        Command::Ls { quiet } => {
            print!("{}", ls(store, quiet));
            Ok(0)
        }
        Command::Inspect { networks } => inspect(store, &networks),
        Command::Rm { networks } => Ok(each(&networks, |name| remove_any(store, name))),
        Command::Prune { force: _ } => {
            let gone = prune(store)?;
            let names: String = gone.iter().map(|n| format!("{n}\n")).collect();
            print!("Deleted Networks:\n{names}");
            Ok(0)
        }
        Command::Connect {
            aliases,
            ip,
            network,
            container,
        } => {
            let endpoint = Endpoint {
                network,
                aliases,
                ip,
            };
            connect(store, &container, endpoint).map(|()| 0)
        }
        Command::Disconnect { network, container } => {
            disconnect(store, &network, &container).map(|()| 0)
        }
    }
}

/// Print each name that worked, each error, as Docker; 1 if any failed.
fn each(names: &[String], action: impl Fn(&str) -> Result<()>) -> i32 {
    let mut failed = false;
    for name in names {
        match action(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from mini-docker: {e}");
                failed = true;
            }
        }
    }
    i32::from(failed)
}

/// A user-defined network, or a bridge of chapter 05 by its name (lab0).
fn remove_any(store: &Store, name: &str) -> Result<()> {
    if find(store, name).is_ok() || PREDEFINED.contains(&name) {
        return remove(store, name);
    }
    let netlink = ch05_network::netlink::Netlink::here()?;
    let state = ch05_network::ipam::State::here()?;
    ch05_network::bridge::down(&netlink, &state, name)
        .map_err(|_| Failure::new(format!("network {name} not found")).exit_code(EXIT_FAILURE))
}

// ANCHOR: plug
/// Plug the container `pid` into each network it was connected to beyond its
/// first: an interface on each (eth1, eth2...), as `network connect` does to a
/// running one. The monitor does it at each start, after the first interface.
pub fn plug_all(store: &Store, config: &Config, pid: i32) -> Result<BTreeMap<String, Plugged>> {
    let mut plugged = BTreeMap::new();
    for endpoint in &config.extra_networks {
        let one = plug(store, endpoint, pid, &plugged)?;
        plugged.insert(endpoint.network.clone(), one);
    }
    Ok(plugged)
}

fn plug(
    store: &Store,
    endpoint: &Endpoint,
    pid: i32,
    taken: &BTreeMap<String, Plugged>,
) -> Result<Plugged> {
    let network = find(store, &endpoint.network)?;
    let bridge = ready(&network)?;
    let requested = (endpoint.ip.as_deref())
        .map(|ip| ch05_network::args::parse_ip(ip, bridge.subnet, bridge.gateway))
        .transpose()?;
    let interface = (1..)
        .map(|n| format!("eth{n}"))
        .find(|i| !taken.values().any(|p| &p.interface == i))
        .unwrap_or_default();
    let pid = nix::unistd::Pid::from_raw(pid);
    let ip = ch05_network::run::plug(&bridge, requested, pid, &interface)?;
    Ok(Plugged {
        interface,
        ip: ip.to_string(),
    })
}
// ANCHOR_END: plug

/// A container ended: the addresses of its extra interfaces are given back (the
/// interfaces went with its network namespace).
pub fn release_all(store: &Store, plugged: &BTreeMap<String, Plugged>) {
    let Ok(state) = ch05_network::ipam::State::here() else {
        return;
    };
    for (network, one) in plugged {
        if let (Ok(net), Ok(ip)) = (find(store, network), one.ip.parse()) {
            ch05_network::ipam::release(&state, &net.bridge, ip);
        }
    }
}

// ANCHOR: connect
/// `network connect`: one more network for the container, plugged at once when it
/// runs (a second veth in its namespace), else at its next start.
fn connect(store: &Store, name: &str, endpoint: Endpoint) -> Result<()> {
    let c = container::find(store, name)?;
    let _locked = lock(&c.dir)?;
    let mut config = c.config()?;
    let network = find(store, &endpoint.network)?;
    if config.network != Mode::Bridge {
        return Err(Failure::new(format!(
            "container {name} cannot be connected to network {}: its network mode is {}",
            network.name, config.network
        )));
    }
    if networks_of(&config).contains(&network.name.as_str()) {
        return Err(Failure::new(format!(
            "endpoint with name {name} already exists in network {}",
            network.name
        )));
    }
    let mut state = crate::lifecycle::current_state(&c)?;
    if state.running {
        let one = plug(store, &endpoint, state.pid, &state.plugged)?;
        state.plugged.insert(network.name.clone(), one);
        c.save_state(&state)?;
    } else if let Some(ip) = &endpoint.ip {
        check_ip(&network, ip)?;
    }
    config.extra_networks.push(endpoint);
    c.save_config(&config)?;
    refresh(store, &network.name);
    Ok(())
}

/// `network disconnect`: a connected network's interface taken out (now, when the
/// container runs). Its first network is kept while it runs (its eth0, its
/// default route); stopped, it goes, and the next one (or none) is first.
fn disconnect(store: &Store, network: &str, name: &str) -> Result<()> {
    let c = container::find(store, name)?;
    let _locked = lock(&c.dir)?;
    let mut config = c.config()?;
    let mut state = crate::lifecycle::current_state(&c)?;
    if !networks_of(&config).contains(&network) {
        return Err(Failure::new(format!(
            "container {name} is not connected to network {network}"
        )));
    }
    if config.network_name == network {
        if state.running {
            return Err(Failure::new(format!(
                "{network} is container {name}'s first network (its eth0 and default \
                 route): stop it to disconnect it"
            )));
        }
        config.aliases = vec![];
        config.ip = None;
        match config.extra_networks.first().cloned() {
            Some(next) => {
                config.extra_networks.remove(0);
                config.network_name = next.network;
                config.aliases = next.aliases;
                config.ip = next.ip;
            }
            None => {
                config.network = Mode::None;
                config.network_name = String::new();
                config.publish.clear();
            }
        }
    } else {
        if let Some(one) = state.plugged.remove(network).filter(|_| state.running) {
            let bridge = find(store, network)?.bridge;
            let ip = one
                .ip
                .parse()
                .map_err(|_| Failure::new(format!("address {}", one.ip)))?;
            let pid = nix::unistd::Pid::from_raw(state.pid);
            ch05_network::run::unplug(&bridge, ip, pid, &one.interface)?;
            c.save_state(&state)?;
        }
        config.extra_networks.retain(|e| e.network != network);
    }
    c.save_config(&config)?;
    refresh(store, network);
    Ok(())
}
// ANCHOR_END: connect

/// `network ls`, as Docker prints it: the default networks, then ours.
fn ls(store: &Store, quiet: bool) -> String {
    let mut rows = vec![
        ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
            .map(String::from)
            .to_vec(),
    ];
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        rows.push(vec![
            predefined_id(name),
            name.into(),
            driver.into(),
            "local".into(),
        ]);
    }
    for n in list(store) {
        rows.push(vec![
            n.id[..12].to_string(),
            n.name,
            n.driver,
            "local".into(),
        ]);
    }
    match quiet {
        true => rows[1..].iter().map(|r| format!("{}\n", r[1])).collect(),
        false => crate::show::table(&rows),
    }
}

/// The default networks' ids: from their names, the same on every machine.
fn predefined_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(name.as_bytes()))[..12].to_string()
}

fn inspect(store: &Store, names: &[String]) -> Result<i32> {
    let mut out = vec![];
    let mut failed = false;
    for name in names {
        match find(store, name) {
            Ok(network) => {
                let mut value = serde_json::json!(network);
                let containers: serde_json::Map<String, serde_json::Value> = (members(store, name).into_iter())
                    .map(|m| {
                        let entry = serde_json::json!({"Name": m.container.name, "IPv4Address": m.ip.to_string(), "Aliases": m.aliases});
                        (m.container.id, entry)
                    })
                    .collect();
                value["Containers"] = containers.into();
                out.push(value);
            }
            Err(e) => {
                eprintln!("Error response from mini-docker: {e}");
                failed = true;
            }
        }
    }
    let text = serde_json::to_string_pretty(&out).map_err(|e| Failure::new(e.to_string()))?;
    println!("{text}");
    Ok(i32::from(failed))
}
