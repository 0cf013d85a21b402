//! The bridge: a virtual switch on the host that every container's veth plugs into,
//! with the subnet's first address so that it is also the containers' gateway.
//! It is set up once, with its NAT rules, and shared by all the containers after.

use std::fs;
use std::path::PathBuf;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use labkit::doctor::Host;
use labkit::narrate;
use labkit::{Failure, Result};

use crate::args::{DEFAULT_SUBNET, gateway as default_gateway, parse_subnet};
use crate::ipam::{State, leases};
use crate::netfilter::{Backend, Iptables, bridge_rules, detect, isolation_rules};
use crate::netlink::{Link, Netlink};

/// A bridge ready for containers.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    pub link: Link,
    pub subnet: Ipv4Net,
    /// The bridge's own address: the containers' gateway.
    pub gateway: Ipv4Addr,
    pub iptables: Iptables,
}

/// Write a kernel setting, as `sysctl -w` does.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    narrate::step(
        format!("write({path:?}, \"{value}\")"),
        format!("sysctl -w {key}={value}"),
    );
    fs::write(&path, value).map_err(|e| {
        Failure::new(format!(
            "{}: {}",
            path.display(),
            labkit::failure::describe_io(&e)
        ))
    })
}

/// Whether this interface has IPv6 at all (a kernel may be built or booted without).
pub fn ipv6_on(interface: &str) -> bool {
    std::path::Path::new("/proc/sys/net/ipv6/conf")
        .join(interface)
        .exists()
}

pub fn forwarding_enabled() -> bool {
    fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1")
}

/// The address of an existing bridge `name`: its gateway, in its subnet.
pub fn address_of(netlink: &Netlink, name: &str) -> Result<Option<Ipv4Net>> {
    match netlink.link(name)? {
        Some(link) => Ok(netlink.addresses(link.index)?.first().copied()),
        None => Ok(None),
    }
}

// ANCHOR: ensure
/// The bridge `name`, created with `subnet` (or the default) and `gateway` (or the
/// subnet's first address) if it does not exist.
pub fn ensure(
    netlink: &Netlink,
    state: &State,
    name: &str,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
) -> Result<Bridge> {
    let _locked = state.lock()?; // two runs must not both create it
    // On failure, leave no state directory (the lock made one) behind.
    existing_or_new(netlink, state, name, subnet, gateway).inspect_err(|_| state.tidy())
}

fn existing_or_new(
    netlink: &Netlink,
    state: &State,
    name: &str,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
) -> Result<Bridge> {
    let bridge = match netlink.link(name)? {
        Some(link) => {
            if link.kind.as_deref() != Some("bridge") {
                return Err(Failure::new(format!(
                    "--bridge: {name} exists and is not a bridge (it is a {}); pick another name",
                    link.kind.as_deref().unwrap_or("device")
                )));
            }
            let address = netlink.addresses(link.index)?.first().copied();
            let Some(address) = address else {
                return Err(Failure::new(format!(
                    "bridge {name} has no IPv4 address, so it cannot be the gateway; remove it \
                     with: ch05-network down --bridge {name}"
                )));
            };
            let own = address.trunc();
            if gateway.is_some_and(|g| g != address.addr()) {
                return Err(Failure::new(format!(
                    "--gateway: bridge {name} already exists with gateway {}",
                    address.addr()
                )));
            }
            if subnet.is_some_and(|s| s != own) {
                return Err(Failure::new(format!(
                    "--subnet: bridge {name} already exists with subnet {own}; use that, or \
                     another --bridge"
                )));
            }
            let iptables = match saved_iptables(state, name) {
                Some(saved) => saved,
                // A bridge someone else made, or whose state was lost: set it up.
                None => set_up_netfilter(state, name, own, detect(&Host::real())?)?,
            };
            Bridge {
                name: name.into(),
                link: link.clone(),
                subnet: own,
                gateway: address.addr(),
                iptables,
            }
        }
        None => {
            let subnet = subnet.map_or_else(|| parse_subnet(DEFAULT_SUBNET), Ok)?;
            let gateway = gateway.unwrap_or_else(|| default_gateway(subnet));
            let address = Ipv4Net::new(gateway, subnet.prefix_len())
                .map_err(|e| Failure::new(e.to_string()))?;
            create(netlink, state, name, address).inspect_err(|_| state.tidy())?
        }
    };
    if !forwarding_enabled() {
        sysctl("net.ipv4.ip_forward", "1")?;
    }
    Ok(bridge)
}
// ANCHOR_END: ensure

// ANCHOR: create
/// A new bridge whose own `address` (the gateway) says its subnet too.
fn create(netlink: &Netlink, state: &State, name: &str, address: Ipv4Net) -> Result<Bridge> {
    let (subnet, gateway) = (address.trunc(), address.addr());
    warn_about_overlaps(netlink, subnet)?;
    // Find iptables before creating anything: without it there is no NAT.
    let iptables = detect(&Host::real())?;
    let link = netlink.add_bridge(name)?;
    let made = (|| {
        netlink.add_address(name, address)?;
        // Published ports reached through 127.0.0.1 must be routable to the bridge.
        sysctl(&format!("net.ipv4.conf.{name}.route_localnet"), "1")?;
        // Routers are not found on a bridge of containers: a container advertising
        // itself as one would get the host's IPv6 traffic (CVE-2020-13401).
        if ipv6_on(name) {
            sysctl(&format!("net.ipv6.conf.{name}.accept_ra"), "0")?;
        }
        set_up_netfilter(state, name, subnet, iptables)
    })();
    if made.is_err() {
        let _ = netlink.delete(name);
        state.remove_bridge(name);
    }
    made.map(|iptables| Bridge {
        name: name.into(),
        link,
        subnet,
        gateway,
        iptables,
    })
}
// ANCHOR_END: create

fn set_up_netfilter(
    state: &State,
    name: &str,
    subnet: Ipv4Net,
    iptables: Iptables,
) -> Result<Iptables> {
    narrate::note(format!(
        "iptables backend: {} ({})",
        iptables.name(),
        iptables.why
    ));
    iptables.ensure_ports_chain()?;
    iptables.ensure_isolation_chains()?;
    for rule in bridge_rules(name, subnet)
        .iter()
        .chain(&isolation_rules(name))
    {
        iptables.ensure(rule)?;
    }
    iptables.isolation_first()?;
    let dir = state.bridge_dir(name);
    fs::create_dir_all(&dir)
        .and_then(|()| {
            fs::write(
                dir.join("iptables"),
                iptables.program.as_os_str().as_encoded_bytes(),
            )
        })
        .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    Ok(iptables)
}

/// The iptables chosen when the bridge was set up: every later run uses the same,
/// without asking again.
fn saved_iptables(state: &State, name: &str) -> Option<Iptables> {
    let program = PathBuf::from(fs::read_to_string(state.bridge_dir(name).join("iptables")).ok()?);
    let backend = match program.to_string_lossy().contains("legacy") {
        true => Backend::Legacy,
        false => Backend::Nft,
    };
    Some(Iptables {
        program,
        backend,
        why: "chosen when the bridge was set up".into(),
    })
}

/// A subnet that overlaps a route of the host makes part of the network unreachable.
fn warn_about_overlaps(netlink: &Netlink, subnet: Ipv4Net) -> Result<()> {
    let links = netlink.links()?;
    for route in netlink.routes()? {
        let d = route.destination;
        if d.prefix_len() > 0 && (d.contains(&subnet.network()) || subnet.contains(&d.network())) {
            let device = links
                .iter()
                .find(|l| Some(l.index) == route.device)
                .map_or("?".into(), |l| l.name.clone());
            eprintln!(
                "ch05-network: warning: --subnet {subnet} overlaps the route {d} dev {device}: \
                 hosts in the overlap would be reached through the bridge instead. Choose a \
                 free --subnet (see: ip route)"
            );
        }
    }
    Ok(())
}

// ANCHOR: down
/// Remove the bridge, its rules and its state. Refused while containers use it.
pub fn down(netlink: &Netlink, state: &State, name: &str) -> Result<()> {
    let _locked = state.lock()?;
    let users = leases(state, name);
    if !users.is_empty() {
        let list: Vec<String> = users
            .iter()
            .map(|l| format!("{} (process {})", l.ip, l.holder))
            .collect();
        return Err(Failure::new(format!(
            "bridge {name} is in use by {}: stop them first",
            list.join(", ")
        )));
    }
    let link = netlink.link(name)?;
    let iptables = match saved_iptables(state, name) {
        Some(saved) => saved,
        None => detect(&Host::real())?,
    };
    let mut rules = vec![];
    for table in crate::netfilter::TABLES {
        rules.extend(iptables.rules_of(table, name)?);
    }
    if link.is_none() && rules.is_empty() && !state.bridge_dir(name).exists() {
        state.tidy(); // the lock made a directory: leave none behind
        return Err(Failure::new(format!(
            "no bridge named {name} here (see: ch05-network show)"
        )));
    }
    for rule in &rules {
        iptables.delete(rule)?;
    }
    if link.is_some() {
        netlink.delete(name)?;
    }
    state.remove_bridge(name);
    if state.bridges().is_empty() {
        iptables.remove_ports_chain()?;
        narrate::note(
            "net.ipv4.ip_forward stays on: other things may rely on it (Docker leaves it too)",
        );
    }
    Ok(())
}
// ANCHOR_END: down
