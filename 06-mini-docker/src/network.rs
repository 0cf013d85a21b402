//! Networks. `--network bridge|none|host|container:NAME` and `-p` are chapter 05's
//! modes, kept in a container's config and turned into chapter 05's options at
//! each start. A user-defined network (`network create NAME`) is one more bridge
//! of chapter 05, with a subnet of its own, isolated from the other bridges; its
//! containers find each other by name through an address book, the `/etc/hosts`
//! of each, which the runtime rewrites as they start and stop.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use ch05_network::args::{DEFAULT_BRIDGE, DEFAULT_SUBNET, Mode, Options, Protocol, Publish};
use ch05_network::ipam::files_dir;
use ch05_network::run::Attachment;
use ipnet::Ipv4Net;
use labkit::failure::{Context, EXIT_FAILURE};
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::container::{self, Config, Container};
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
    let gateway = ch05_network::args::gateway(subnet);
    if let Some(asked) = &args.gateway
        && asked.parse::<Ipv4Addr>().ok() != Some(gateway)
    {
        return Err(Failure::new(format!(
            "--gateway {asked}: a bridge of chapter 05 is the first address of its subnet, {gateway}"
        )));
    }
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
        labels: (args.labels.iter())
            .map(|l| l.split_once('=').unwrap_or((l, "")))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
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
    let subnet = ch05_network::args::parse_subnet(&network.subnet)?;
    let bridge = ch05_network::bridge::ensure(&netlink, &state, &network.bridge, Some(subnet))?;
    if network.internal {
        for rule in ch05_network::netfilter::internal_rules(&network.bridge) {
            bridge.iptables.ensure(&rule)?;
        }
    }
    Ok(bridge)
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

/// The running containers on `name`, with their addresses.
fn members(store: &Store, name: &str) -> Vec<(Container, Config, Ipv4Addr)> {
    (container::list(store).into_iter())
        .filter_map(|c| {
            let config = c.config().ok().filter(|cfg| cfg.network_name == name)?;
            let state = crate::lifecycle::current_state(&c)
                .ok()
                .filter(|s| s.running)?;
            let ip = state.ip_address.parse().ok()?;
            Some((c, config, ip))
        })
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
        let ids: Vec<&str> = running.iter().map(|(c, _, _)| c.short_id()).collect();
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
    for (name, aliases, peer) in peers.iter().filter(|(_, _, p)| *p != ip) {
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
pub fn address_book(store: &Store, config: &Config, attachment: &Attachment) -> Result<()> {
    let peers = match config.network_name.is_empty() {
        true => vec![],
        false => peers(store, &config.network_name),
    };
    write_files(&attachment.bridge.name, config, attachment.lease.ip, &peers)
}

fn peers(store: &Store, network: &str) -> Vec<(String, Vec<String>, Ipv4Addr)> {
    (members(store, network).into_iter())
        .map(|(c, config, ip)| (c.name, config.aliases, ip))
        .collect()
}

// ANCHOR: refresh
/// A container started or ended on `network`: every running member's address
/// book is written again, under the network's lock (two starts at once must not
/// write what each saw before the other).
pub fn refresh(store: &Store, network: &str) {
    if network.is_empty() {
        return;
    }
    let Ok(net) = find(store, network) else {
        return;
    };
    let _locked = crate::store::lock(&store.root.join("networks"));
    let peers = peers(store, network);
    for (_, config, ip) in members(store, network) {
        let _ = write_files(&net.bridge, &config, ip, &peers);
    }
}
// ANCHOR_END: refresh

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
    /// Put a stopped container on a network (it joins at its next start).
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
    /// Take a stopped container off its network (to `none`).
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
        } => attach(store, &container, Some((&network, aliases, ip))).map(|()| 0),
        Command::Disconnect { network, container } => {
            let c = container::find(store, &container)?;
            if c.config()?.network_name != network {
                return Err(Failure::new(format!(
                    "container {container} is not connected to network {network}"
                )));
            }
            attach(store, &container, None).map(|()| 0)
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

/// `connect`/`disconnect`: the container's network in its config, changed while
/// it is stopped (a running one has its veth: it would need a second, hot-plugged).
fn attach(
    store: &Store,
    name: &str,
    to: Option<(&str, Vec<String>, Option<String>)>,
) -> Result<()> {
    let c = container::find(store, name)?;
    let _locked = lock(&c.dir)?;
    if crate::lifecycle::current_state(&c)?.running {
        return Err(Failure::new(format!(
            "container {name} is running: mini-docker plugs a container into one network, \
             when it starts; stop it, connect, start it"
        )));
    }
    let mut config = c.config()?;
    match to {
        Some((network, aliases, ip)) => {
            let network = find(store, network)?;
            if !config.network_name.is_empty() && config.network_name != network.name {
                return Err(Failure::new(format!(
                    "container {name} is on network {}: mini-docker gives a container one                      network; disconnect it first",
                    config.network_name
                )));
            }
            if let Some(ip) = &ip {
                ch05_network::args::parse_ip(
                    ip,
                    network.subnet.parse().map_err(|_| Failure::new("subnet"))?,
                )?;
            }
            config.network = Mode::Bridge;
            config.network_name = network.name;
            config.aliases = aliases;
            config.ip = ip;
        }
        None => {
            config.network = Mode::None;
            config.network_name = String::new();
            config.aliases = vec![];
            config.ip = None;
            config.publish.clear();
        }
    }
    c.save_config(&config)
}

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
                    .map(|(c, config, ip)| {
                        let entry = serde_json::json!({"Name": c.name, "IPv4Address": ip.to_string(), "Aliases": config.aliases});
                        (c.id, entry)
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
