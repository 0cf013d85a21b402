//! Talking to the kernel's network configuration over netlink, in-process.
//!
//! `ip link`, `ip addr` and `ip route` are thin clients of the same interface: they
//! send `RTM_NEWLINK`, `RTM_NEWADDR`, `RTM_NEWROUTE` messages on a `NETLINK_ROUTE`
//! socket. We send the same messages with the `rtnetlink` crate. A netlink socket
//! belongs to the network namespace it was created in, which is how we configure a
//! container's interfaces from outside it: see [`Netlink::inside`].

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};
use rtnetlink::{RouteMessageBuilder, new_connection};
use tokio::runtime::Runtime;

/// A netlink connection to one network namespace's configuration.
#[derive(Debug)]
pub struct Netlink {
    runtime: Runtime,
    handle: Handle,
    /// How the shell would reach the same namespace: `""` here, or
    /// `nsenter -t PID -n ` for a container's.
    shell: String,
}

/// One network interface, as `ip -d link` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, ... (`None` for a physical device or `lo`).
    pub kind: Option<String>,
    /// The bridge this interface is a port of.
    pub controller: Option<u32>,
    pub up: bool,
}

/// An IPv4 route of the main table: where a destination prefix goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    pub device: Option<u32>,
}

impl Netlink {
    /// A connection to the network namespace we are in.
    pub fn here() -> Result<Self> {
        // A single-threaded runtime: no worker threads, so that chapter 02 may still
        // fork us safely, and nothing runs behind our back.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Failure::new(format!("cannot start an async runtime: {e}")))?;
        let (connection, handle, _) = {
            let _inside = runtime.enter();
            new_connection()
                .map_err(|e| Failure::new(format!("socket(AF_NETLINK, NETLINK_ROUTE): {e}")))?
        };
        runtime.spawn(connection);
        Ok(Netlink {
            runtime,
            handle,
            shell: String::new(),
        })
    }

    // ANCHOR: inside
    /// A connection to the network namespace of process `pid`: we step into it with
    /// `setns(2)`, open the socket there, and step back. The socket stays bound to
    /// the namespace it was born in, so from then on we configure the container's
    /// interfaces from outside, as `ip -n` (or `nsenter --net ip`) does.
    pub fn inside(pid: Pid) -> Result<Self> {
        let ours = open_netns("self")?;
        let theirs = open_netns(&pid.to_string())?;
        setns(&theirs, CloneFlags::CLONE_NEWNET)
            .context(|| format!("setns(/proc/{pid}/ns/net)"))?;
        let netlink = Netlink::here().map(|n| Netlink {
            shell: format!("nsenter -t {pid} -n "),
            ..n
        });
        setns(&ours, CloneFlags::CLONE_NEWNET)
            .context(|| "setns back to our own network namespace".into())?;
        netlink
    }
    // ANCHOR_END: inside

    /// Say what we send and the `ip` command that sends the same.
    fn narrate(&self, message: String, ip: String) {
        narrate::step(message, format!("{}ip {ip}", self.shell));
    }

    fn block<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, rtnetlink::Error>>,
    ) -> Result<T> {
        self.runtime
            .block_on(request)
            .map_err(|e| Failure::new(format!("{what}: {}", describe(&e))))
    }

    /// Every interface, in index order.
    pub fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self.block(
            "RTM_GETLINK",
            self.handle.link().get().execute().try_collect(),
        )?;
        Ok(messages.iter().map(link_of).collect())
    }

    /// One interface by name: one small request, not a dump of every interface.
    pub fn link(&self, name: &str) -> Result<Option<Link>> {
        let found: std::result::Result<Vec<LinkMessage>, _> = self.runtime.block_on(
            self.handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute()
                .try_collect(),
        );
        match found {
            Ok(messages) => Ok(messages.first().map(link_of)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(Failure::new(format!(
                "RTM_GETLINK {name}: {}",
                describe(&e)
            ))),
        }
    }

    // ANCHOR: bridge
    /// `ip link add NAME type bridge`, up.
    pub fn add_bridge(&self, name: &str) -> Result<Link> {
        self.narrate(
            format!("RTM_NEWLINK {name} type bridge, up"),
            format!("link add {name} up type bridge"),
        );
        let message = LinkBridge::new(name).build();
        self.block(
            &format!("RTM_NEWLINK {name} type bridge"),
            self.handle.link().add(message).execute(),
        )?;
        self.link(name)?
            .ok_or_else(|| Failure::new(format!("{name}: created, but not found")))
    }
    // ANCHOR_END: bridge

    fn index_of(&self, name: &str) -> Result<u32> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| Failure::new(format!("{name}: created, but not found")))
    }

    // ANCHOR: veth
    /// One message makes the pair, plugs our end into the bridge, brings it up, and
    /// creates the other end directly inside namespace `pid`, already named `peer`:
    /// `ip link add NAME master BRIDGE up type veth peer name PEER netns PID`.
    pub fn add_veth(&self, name: &str, bridge: Option<&Link>, peer: &str, pid: Pid) -> Result<()> {
        // ANCHOR: hole_veth
        let peer_end = LinkMessageBuilder::<LinkUnspec>::default()
            .name(peer.to_string())
            .setns_by_pid(pid.as_raw() as u32)
            .build();
        let mut ours = LinkVeth::new(name, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_end)))
            .up();
        if let Some(bridge) = bridge {
            ours = ours.controller(bridge.index);
        }
        self.narrate(
            format!("RTM_NEWLINK {name} type veth peer {peer}"),
            format!(
                "link add {name}{} up type veth peer name {peer} netns {pid}",
                bridge
                    .map(|b| format!(" master {}", b.name))
                    .unwrap_or_default()
            ),
        );
        self.block(
            &format!("RTM_NEWLINK {name} type veth peer {peer}"),
            self.handle.link().add(ours.build()).execute(),
        )
        // ANCHOR_END: hole_veth
    }
    // ANCHOR_END: veth

    /// `ip link add NAME netns PID_A type veth peer name PEER netns PID_B`: a pair
    /// whose two ends are born in two other namespaces (chapter 05's `p2p`).
    pub fn add_veth_between(&self, name: &str, a: Pid, peer: &str, b: Pid) -> Result<()> {
        let peer_end = LinkMessageBuilder::<LinkUnspec>::default()
            .name(peer.to_string())
            .setns_by_pid(b.as_raw() as u32)
            .build();
        let ours = LinkVeth::new(name, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_end)))
            .setns_by_pid(a.as_raw() as u32);
        self.narrate(
            format!("RTM_NEWLINK {name} type veth peer {peer}"),
            format!("link add {name} netns {a} type veth peer name {peer} netns {b}"),
        );
        self.block(
            &format!("RTM_NEWLINK {name} type veth peer {peer}"),
            self.handle.link().add(ours.build()).execute(),
        )
    }

    /// `ip link set NAME up`.
    pub fn set_up(&self, name: &str) -> Result<()> {
        let index = self.index_of(name)?;
        self.narrate(
            format!("RTM_NEWLINK {name} up"),
            format!("link set {name} up"),
        );
        self.block(
            &format!("RTM_NEWLINK {name} up"),
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute(),
        )
    }

    /// `ip link set NAME mtu MTU`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let index = self.index_of(name)?;
        self.narrate(
            format!("RTM_NEWLINK {name} mtu {mtu}"),
            format!("link set {name} mtu {mtu}"),
        );
        self.block(
            &format!("RTM_NEWLINK {name} mtu {mtu}"),
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
                .execute(),
        )
    }

    /// `ip link del NAME`.
    pub fn delete(&self, name: &str) -> Result<()> {
        let index = self.index_of(name)?;
        self.narrate(format!("RTM_DELLINK {name}"), format!("link del {name}"));
        self.block(
            &format!("RTM_DELLINK {name}"),
            self.handle.link().del(index).execute(),
        )
    }

    /// `ip addr add ADDRESS/PREFIX dev NAME`.
    pub fn add_address(&self, name: &str, address: Ipv4Net) -> Result<()> {
        let index = self.index_of(name)?;
        self.narrate(
            format!("RTM_NEWADDR {address} dev {name}"),
            format!("addr add {address} dev {name}"),
        );
        self.block(
            &format!("RTM_NEWADDR {address} dev {name}"),
            self.handle
                .address()
                .add(index, IpAddr::V4(address.addr()), address.prefix_len())
                .execute(),
        )
    }

    /// The IPv4 addresses of interface `index`, with their prefix lengths.
    pub fn addresses(&self, index: u32) -> Result<Vec<Ipv4Net>> {
        let messages: Vec<_> = self.block(
            "RTM_GETADDR",
            self.handle
                .address()
                .get()
                .set_link_index_filter(index)
                .execute()
                .try_collect(),
        )?;
        Ok(messages
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Ipv4Net::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// `ip route add default via GATEWAY`.
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.narrate(
            format!("RTM_NEWROUTE default via {gateway}"),
            format!("route add default via {gateway}"),
        );
        self.block(
            &format!("RTM_NEWROUTE default via {gateway}"),
            self.handle.route().add(route).execute(),
        )
    }

    /// `ip route add DESTINATION/32 dev NAME`: a host reachable directly on a link.
    pub fn add_link_route(&self, destination: Ipv4Addr, name: &str) -> Result<()> {
        let index = self.index_of(name)?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(destination, 32)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build();
        self.narrate(
            format!("RTM_NEWROUTE {destination}/32 dev {name}"),
            format!("route add {destination}/32 dev {name}"),
        );
        self.block(
            &format!("RTM_NEWROUTE {destination}/32 dev {name}"),
            self.handle.route().add(route).execute(),
        )
    }

    /// The IPv4 routes of the main table.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let filter = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let messages: Vec<RouteMessage> = self.block(
            "RTM_GETROUTE",
            self.handle.route().get(filter).execute().try_collect(),
        )?;
        Ok(messages
            .iter()
            // The main table: the one `ip route` shows.
            .filter(|m| m.header.table == libc::RT_TABLE_MAIN)
            .map(|m| {
                let destination = m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                        _ => None,
                    })
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let device = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(index) => Some(*index),
                    _ => None,
                });
                Route {
                    destination: Ipv4Net::new(destination, m.header.destination_prefix_length)
                        .unwrap_or_default(),
                    device,
                }
            })
            .collect())
    }
}

fn link_of(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        controller: None,
        up: message.header.flags.contains(LinkFlags::Up),
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Controller(index) => link.controller = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind_name(kind));
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn open_netns(pid: &str) -> Result<File> {
    let path = format!("/proc/{pid}/ns/net");
    File::open(&path).context(|| path.clone())
}

/// The kernel's answer in words: netlink errors are errnos.
fn describe(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            let io = message.to_io();
            let why = match io.raw_os_error() {
                Some(libc::EEXIST) => " (it already exists)",
                Some(libc::EPERM) => " (not allowed: this needs CAP_NET_ADMIN, i.e. root)",
                Some(libc::EOPNOTSUPP) => {
                    " (this kernel lacks the device type: modprobe veth / modprobe bridge)"
                }
                _ => "",
            };
            format!("{}{why}", labkit::failure::describe_io(&io))
        }
        other => other.to_string(),
    }
}

// ANCHOR: loopback_up
/// `lo` up in the network namespace we are in, as a runtime's child does it in a
/// new one (runc and crun do it too): the classic `ifconfig lo up`, two ioctls on
/// any socket, with no netlink connection to open.
pub fn loopback_up_here() -> Result<()> {
    narrate::step(
        "ioctl(SIOCGIFFLAGS, \"lo\"); ioctl(SIOCSIFFLAGS, \"lo\", flags | IFF_UP)",
        "ip link set lo up",
    );
    let fail = |what: &str| {
        Failure::new(format!(
            "lo up: {what}: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(fail("socket"));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: an ifreq is plain data; all zeroes is a valid one.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *to = *from as libc::c_char;
    }
    // SAFETY: the ioctls read and write the ifreq we own.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(fail("SIOCGIFFLAGS"));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(fail("SIOCSIFFLAGS"));
        }
    }
    Ok(())
}
// ANCHOR_END: loopback_up
