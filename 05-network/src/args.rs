//! What the command line says, checked before anything is created: the mode,
//! subnets, addresses, interface names and published ports. The other modules read
//! these types; this one reads none of theirs.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use ch02_namespaces::namespace::Namespace;
use ch02_namespaces::plan::Plan;
use ipnet::Ipv4Net;
use labkit::{Failure, Result};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The bridge chapter 05 makes when none is named.
pub const DEFAULT_BRIDGE: &str = "lab0";
/// Its subnet. Not Docker's 172.17.0.0/16 nor Podman's 10.88.0.0/16, so that the
/// lab does not collide with either on a learner's machine.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";

/// `--subnet 10.77.0.0/24`: an IPv4 network with room for a gateway and containers.
pub fn parse_subnet(text: &str) -> Result<Ipv4Net> {
    let net = Ipv4Net::from_str(text).map_err(|_| {
        Failure::new(format!(
            "--subnet: {text:?} is not an IPv4 network; use e.g. {DEFAULT_SUBNET}"
        ))
    })?;
    if net.prefix_len() > 30 {
        return Err(Failure::new(format!(
            "--subnet: {text} holds no room for a gateway and a container; use /30 or wider, e.g. {DEFAULT_SUBNET}"
        )));
    }
    if net.network() != net.addr() {
        return Err(Failure::new(format!(
            "--subnet: {text} has host bits set; the network is {}",
            net.trunc()
        )));
    }
    Ok(net)
}

/// `--ip 10.77.0.9`: must be a container address of the subnet (not its gateway).
pub fn parse_ip(text: &str, subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<Ipv4Addr> {
    let ip = Ipv4Addr::from_str(text).map_err(|_| {
        Failure::new(format!(
            "--ip: {text:?} is not an IPv4 address; use e.g. 10.77.0.9"
        ))
    })?;
    if !subnet.contains(&ip) {
        return Err(Failure::new(format!(
            "--ip: {ip} is outside the bridge's subnet {subnet}"
        )));
    }
    if ip == subnet.network() || ip == subnet.broadcast() || ip == gateway {
        return Err(Failure::new(format!(
            "--ip: {ip} is the subnet's network, broadcast or gateway address; pick another in {subnet}"
        )));
    }
    Ok(ip)
}

/// The bridge's own address: the subnet's first, as Docker gives docker0.
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Interface names live in a 16-byte buffer in the kernel (IFNAMSIZ): 15 characters.
pub fn check_interface_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 {
        return Err(Failure::new(format!(
            "--bridge: {name:?} is {} characters; the kernel allows 1 to 15 (IFNAMSIZ)",
            name.len()
        )));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(Failure::new(format!(
            "--bridge: {name:?} is not a valid interface name (no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

/// `--network`: one of Docker's four ways, as typed. `container:WHAT` names the other
/// container: a PID for chapter 05, a container's name or id for mini-docker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Mode {
    #[default]
    Bridge,
    None,
    Host,
    Container(String),
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "bridge" => Ok(Mode::Bridge),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            _ => match text.strip_prefix("container:") {
                Some(other) if !other.is_empty() => Ok(Mode::Container(other.to_string())),
                _ => Err(format!(
                    "{text:?} is not a network mode; use bridge, none, host or container:PID"
                )),
            },
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Bridge => f.write_str("bridge"),
            Mode::None => f.write_str("none"),
            Mode::Host => f.write_str("host"),
            Mode::Container(other) => write!(f, "container:{other}"),
        }
    }
}

impl From<Mode> for String {
    fn from(mode: Mode) -> String {
        mode.to_string()
    }
}

impl TryFrom<String> for Mode {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        text.parse()
    }
}

/// `container:PID`: a process of this host, whose network namespace is joined.
pub fn container_pid(text: &str) -> Result<Pid> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 && Path::new(&format!("/proc/{pid}/ns/net")).exists() => {
            Ok(Pid::from_raw(pid))
        }
        Ok(pid) if pid > 0 => Err(Failure::new(format!(
            "--network container:{pid}: no process {pid} here"
        ))),
        _ => Err(Failure::new(format!(
            "--network container:{text}: use the PID of a process in the other container"
        ))),
    }
}

/// The network half of `run`'s command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub bridge: String,
    pub subnet: Option<Ipv4Net>,
    pub ip: Option<String>,
    pub publish: Vec<Publish>,
    pub mtu: Option<u32>,
}

impl Options {
    /// The namespaces this mode needs on top of what was asked: its own network
    /// namespace (bridge, none) and, for the /etc files, a mount and a UTS one.
    pub fn namespaces(&self) -> Vec<Namespace> {
        match self.mode {
            Mode::Bridge | Mode::None => vec![Namespace::Net, Namespace::Mount, Namespace::Uts],
            Mode::Host | Mode::Container(_) => vec![Namespace::Mount, Namespace::Uts],
        }
    }

    /// The flags that only a bridge gives a meaning to (mini-docker asks this too).
    pub fn check_flags(&self) -> Result<()> {
        let bridge_only = |flag: &str| match self.mode {
            Mode::Bridge => Ok(()),
            _ => Err(Failure::new(format!(
                "{flag} only applies to --network bridge"
            ))),
        };
        if !self.publish.is_empty() {
            bridge_only("-p")?;
        }
        if self.ip.is_some() {
            bridge_only("--ip")?;
        }
        if self.subnet.is_some() {
            bridge_only("--subnet")?;
        }
        Ok(())
    }

    /// Flags that make no sense together, refused before anything is created.
    pub fn check(&self, plan: &Plan) -> Result<()> {
        self.check_flags()?;
        if let Mode::Container(pid) = &self.mode {
            if plan.hostname.is_some() {
                return Err(Failure::new(
                    "--hostname: a container joining another's network (container:PID) \
                     shares its name too",
                ));
            }
            container_pid(pid)?;
        }
        if matches!(self.mode, Mode::Host | Mode::Container(_)) && plan.has(Namespace::Net) {
            return Err(Failure::new(
                "--net makes a new network namespace, --network host|container:PID joins one: pick one",
            ));
        }
        if self.mode == Mode::Bridge && plan.has(Namespace::User) {
            return Err(Failure::new(
                "--network bridge plugs a veth into the host's bridge, which needs root on the \
                 host; rootless containers use a user-space network (slirp4netns, pasta) or \
                 --network none",
            ));
        }
        Ok(())
    }
}

/// `run`'s network flags, Docker's names (mini-docker takes the same).
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkArgs {
    /// bridge | none | host | container:PID
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    pub network: Mode,
    /// The bridge (a Linux interface name: at most 15 characters).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BRIDGE)]
    pub bridge: String,
    /// The bridge's subnet, when this run creates it [default: 10.77.0.0/24]
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// The container's address (default: the next free one).
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// Publish a port: HOSTPORT:CONTAINERPORT[/tcp|/udp]; repeatable.
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<Publish>,
    /// The MTU of the container's veth pair, both ends.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..=65535))]
    pub mtu: Option<u32>,
}

impl NetworkArgs {
    /// Checked: the bridge's name and the subnet's form.
    pub fn options(self) -> Result<Options> {
        check_interface_name(&self.bridge)?;
        Ok(Options {
            mode: self.network,
            bridge: self.bridge,
            subnet: self.subnet.as_deref().map(parse_subnet).transpose()?,
            ip: self.ip,
            publish: self.publish,
            mtu: self.mtu,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `-p 8080:80/tcp`: traffic to the host's port 8080 goes to the container's 80.
/// Kept (in mini-docker's config too) as the text Docker shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Publish {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

impl From<Publish> for String {
    fn from(publish: Publish) -> String {
        publish.to_string()
    }
}

impl TryFrom<String> for Publish {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        text.parse()
    }
}

impl FromStr for Publish {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let usage = || format!("{text:?} is not HOSTPORT:CONTAINERPORT[/tcp|/udp]; e.g. 8080:80");
        let (ports, protocol) = match text.split_once('/') {
            None => (text, Protocol::Tcp),
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => return Err(format!("{other:?} is not a protocol; use tcp or udp")),
        };
        let (host, container) = ports.split_once(':').ok_or_else(usage)?;
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("{p:?} is not a port; ports are 1 to 65535")),
            Ok(n) => Ok(n),
        };
        Ok(Publish {
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        assert_eq!(parse_subnet("10.77.0.0/24").map(|n| n.prefix_len()), Ok(24));
        assert!(parse_subnet("10.77.0.0").is_err());
        assert!(parse_subnet("10.77.0.0/33").is_err());
        assert!(parse_subnet("10.77.0.0/31").is_err());
        assert!(parse_subnet("10.77.0.5/24").is_err());
        assert_eq!(
            gateway(parse_subnet("10.77.0.0/24").unwrap()),
            Ipv4Addr::new(10, 77, 0, 1)
        );
    }

    #[test]
    fn addresses() {
        let net = parse_subnet("10.77.0.0/24").unwrap();
        assert!(parse_ip("10.77.0.9", net, gateway(net)).is_ok());
        for bad in ["10.77.1.9", "10.77.0.1", "10.77.0.255", "10.77.0.0", "ten"] {
            assert!(parse_ip(bad, net, gateway(net)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        let p: Publish = "8080:80".parse().unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let p: Publish = "53:53/udp".parse().unwrap();
        assert_eq!(p.protocol, Protocol::Udp);
        for bad in ["8080", "0:80", "8080:80/sctp", "70000:80", "a:b", ":80"] {
            assert!(bad.parse::<Publish>().is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        assert!(check_interface_name("lab0").is_ok());
        assert!(check_interface_name("a-very-long-name").is_err());
        assert!(check_interface_name("a/b").is_err());
        assert!(check_interface_name("").is_err());
    }
}
