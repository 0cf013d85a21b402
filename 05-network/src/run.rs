//! `ch05-network run --network MODE`: chapter 02's container, wired to a network
//! in one of Docker's four ways.
//!
//! - `bridge`: its own network namespace, plugged into the host's bridge by a veth
//!   pair, with an address from the subnet, a default route, NAT, published ports;
//! - `none`: its own network namespace with only `lo`;
//! - `host`: no network namespace at all: the host's interfaces and ports;
//! - `container:PID`: the network namespace of process PID (another container):
//!   the same interfaces, addresses and ports, reachable over `lo`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ch02_namespaces::plan::Plan;
use ch02_namespaces::spawn;
use ipnet::Ipv4Net;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;

use crate::args::{DEFAULT_SUBNET, Mode, Options, container_pid, gateway, parse_ip, parse_subnet};
use crate::bridge::{self, Bridge};
use crate::etc_files::{Contents, EtcFiles, hosts, read_etc, resolv_conf};
use crate::ipam::{self, Lease, State};
use crate::netfilter::{Iptables, Rule, publish_rules};
use crate::netlink::Netlink;

/// Rules added for this container's published ports; removed when dropped.
#[derive(Debug)]
struct Published {
    iptables: Iptables,
    rules: Vec<Rule>,
}

impl Drop for Published {
    fn drop(&mut self) {
        // One transaction; if a rule was removed by hand meanwhile, one by one.
        if self.iptables.apply(&self.rules, false).is_err() {
            for rule in &self.rules {
                let _ = self.iptables.delete(rule);
            }
        }
    }
}

// ANCHOR: run
pub fn run(options: &Options, mut plan: Plan) -> Result<i32> {
    options.check(&plan)?;
    match options.mode {
        Mode::Bridge => run_on_bridge(options, plan),
        Mode::None => {
            let files = EtcFiles::write(&contents(&plan, None, &host_resolv()), None)?;
            plan.binds.extend(files.binds());
            spawn::run_with(&plan, |child| Netlink::inside(child.pid)?.set_up("lo"))
        }
        Mode::Host => {
            let files = EtcFiles::write(&copied(Path::new("/"), own_hostname(&plan)), None)?;
            plan.binds.extend(files.binds());
            spawn::run(&plan)
        }
        Mode::Container(ref pid) => {
            let pid = container_pid(pid)?;
            // The other container's files: same network, same names.
            let root = PathBuf::from(format!("/proc/{pid}/root"));
            let hostname = read_etc(&root, "hostname").trim().to_string();
            let files = EtcFiles::write(&copied(&root, hostname.clone()), None)?;
            plan.binds.extend(files.binds());
            plan.hostname = (!hostname.is_empty()).then_some(hostname);
            join_network_of(pid)?;
            spawn::run(&plan)
        }
    }
}
// ANCHOR_END: run

// ANCHOR: bridge
fn run_on_bridge(options: &Options, mut plan: Plan) -> Result<i32> {
    let mut attachment = Attachment::prepare(options, &mut plan)?;
    let code = spawn::run_with(&plan, |child| attachment.connect(child.pid));
    narrate::note(format!(
        "{} goes with the container's network namespace: the kernel removes it in the background",
        attachment.lease.veth
    ));
    code
}
// ANCHOR_END: bridge

/// A container's place on a bridge: its address, its port rules and its /etc
/// files, held until dropped (then the rules go, the files go, the address is
/// released). `mini-docker` holds one per running container.
#[derive(Debug)]
pub struct Attachment {
    netlink: Netlink,
    pub bridge: Bridge,
    // Dropped in this order: files, rules, then the lease.
    _files: EtcFiles,
    _published: Published,
    pub lease: Lease,
    mtu: Option<u32>,
}

impl Attachment {
    // ANCHOR: prepare
    /// Everything that can be done before the container exists: the bridge, an
    /// address, the port rules, the /etc files (bound into `plan`, whose hostname
    /// defaults to one made from the address).
    pub fn prepare(options: &Options, plan: &mut Plan) -> Result<Attachment> {
        let netlink = Netlink::here()?;
        let state = State::here()?;
        // --ip is checked against the subnet it will be in, before anything is made.
        let requested = match &options.ip {
            Some(text) => {
                let (subnet, gateway) = match bridge::address_of(&netlink, &options.bridge)? {
                    Some(existing) => (existing.trunc(), existing.addr()),
                    None => {
                        let subnet =
                            (options.subnet).map_or_else(|| parse_subnet(DEFAULT_SUBNET), Ok)?;
                        (subnet, gateway(subnet))
                    }
                };
                Some(parse_ip(text, subnet, gateway)?)
            }
            None => None,
        };
        let bridge = bridge::ensure(&netlink, &state, &options.bridge, options.subnet, None)?;
        // The lease names us: we wait for the container, and release it when we drop.
        let (lease, stale) = ipam::allocate(
            &state,
            &bridge.name,
            (bridge.subnet, bridge.gateway),
            requested,
            &options.publish,
            nix::unistd::getpid(),
        )?;
        // A `run` killed with SIGKILL could not remove its rules: do it for it.
        for gone in &stale {
            for port in &gone.ports {
                for rule in publish_rules(&bridge.name, gone.ip, port) {
                    let _ = bridge.iptables.delete(&rule);
                }
            }
        }
        let published = publish(&bridge, &lease)?;
        let hostname = format!("ip-{}", lease.ip.to_string().replace('.', "-"));
        plan.hostname.get_or_insert(hostname);
        let files = EtcFiles::write(
            &contents(plan, Some(lease.ip), &host_resolv()),
            Some(ipam::files_dir(&state, &bridge.name, lease.ip)),
        )?;
        plan.binds.extend(files.binds());
        Ok(Attachment {
            netlink,
            bridge,
            _files: files,
            _published: published,
            lease,
            mtu: options.mtu,
        })
    }
    // ANCHOR_END: prepare

    // ANCHOR: connect
    /// Plug the container (still waiting to exec) into the bridge and configure its
    /// side: address, link up, default route through the bridge.
    pub fn connect(&mut self, pid: Pid) -> Result<()> {
        let (netlink, bridge, lease) = (&self.netlink, &self.bridge, &mut self.lease);
        lease.record_container(pid)?;
        if netlink.link(&lease.veth)?.is_some() {
            // The veth of this address's last holder, whose namespace the kernel has
            // not finished taking down: ours now, since we hold the lease.
            netlink.delete(&lease.veth)?;
        }
        netlink.add_veth(&lease.veth, Some(&bridge.link), "eth0", pid)?;
        // The host's end is a port of the bridge, nothing more: no IPv6 of its own.
        if crate::bridge::ipv6_on(&lease.veth) {
            crate::bridge::sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", lease.veth), "1")?;
        }
        let inside = Netlink::inside(pid)?;
        // ANCHOR: hole_mtu
        if let Some(mtu) = self.mtu {
            netlink.set_mtu(&lease.veth, mtu)?;
            inside.set_mtu("eth0", mtu)?;
        }
        // ANCHOR_END: hole_mtu
        let address = Ipv4Net::new(lease.ip, bridge.subnet.prefix_len())
            .map_err(|e| Failure::new(e.to_string()))?;
        inside.add_address("eth0", address)?;
        inside.set_up("lo")?;
        inside.set_up("eth0")?;
        inside.add_default_route(bridge.gateway)
    }
    // ANCHOR_END: connect
}

// ANCHOR: plug
/// A second (third...) interface for the running container `pid`, named `iface`,
/// on `bridge`: a veth whose lease the container itself holds (it is live while
/// the container lives), an address, no default route (the first interface keeps
/// it). `docker network connect` on a running container does this.
pub fn plug(
    bridge: &Bridge,
    requested: Option<Ipv4Addr>,
    pid: Pid,
    iface: &str,
) -> Result<Ipv4Addr> {
    let state = State::here()?;
    let subnet = (bridge.subnet, bridge.gateway);
    let (lease, _) = ipam::allocate(&state, &bridge.name, subnet, requested, &[], pid)?;
    let ip = lease.ip;
    let netlink = Netlink::here()?;
    let plugged = (|| {
        if netlink.link(&lease.veth)?.is_some() {
            netlink.delete(&lease.veth)?;
        }
        netlink.add_veth(&lease.veth, Some(&bridge.link), iface, pid)?;
        let inside = Netlink::inside(pid)?;
        let address = Ipv4Net::new(ip, bridge.subnet.prefix_len())
            .map_err(|e| Failure::new(e.to_string()))?;
        inside.add_address(iface, address)?;
        inside.set_up(iface)
    })();
    plugged?; // on failure the lease goes with `lease`
    lease.keep();
    Ok(ip)
}

/// Take interface `iface` out of the container `pid` (the veth pair goes with
/// it) and give its address back.
pub fn unplug(bridge: &str, ip: Ipv4Addr, pid: Pid, iface: &str) -> Result<()> {
    Netlink::inside(pid)?.delete(iface)?;
    ipam::release(&State::here()?, bridge, ip);
    Ok(())
}
// ANCHOR_END: plug

/// The DNAT and FORWARD rules of each `-p`, added before the container starts.
fn publish(bridge: &Bridge, lease: &Lease) -> Result<Published> {
    let rules: Vec<Rule> = lease
        .ports
        .iter()
        .flat_map(|port| publish_rules(&bridge.name, lease.ip, port))
        .collect();
    bridge.iptables.apply(&rules, true)?;
    Ok(Published {
        iptables: bridge.iptables.clone(),
        rules,
    })
}

/// Step into process `pid`'s network namespace; the child we make next is born in it.
pub fn join_network_of(pid: Pid) -> Result<()> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).context(|| path.clone())?;
    narrate::step(
        format!("setns(open(\"{path}\"), CLONE_NEWNET)"),
        format!("nsenter --net={path}"),
    );
    setns(&ns, CloneFlags::CLONE_NEWNET).context(|| format!("setns({path})"))
}

fn own_hostname(plan: &Plan) -> String {
    plan.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

fn contents(plan: &Plan, address: Option<Ipv4Addr>, resolv: &str) -> Contents {
    let hostname = own_hostname(plan);
    Contents {
        hosts: hosts(&hostname, address),
        hostname,
        resolv_conf: resolv_conf(resolv),
    }
}

/// The files of another root as they are: the host's in host mode, the other
/// container's in container mode.
fn copied(root: &Path, hostname: String) -> Contents {
    Contents {
        hostname,
        hosts: read_etc(root, "hosts"),
        resolv_conf: read_etc(root, "resolv.conf"),
    }
}

fn host_resolv() -> String {
    read_etc(Path::new("/"), "resolv.conf")
}
