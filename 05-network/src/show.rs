//! `ch05-network show`: what the bridges look like from the host, the way
//! `docker network inspect` shows it: the bridge, each container's veth and
//! address, and the netfilter rules that do NAT and publish ports.

use std::fmt::Write;

use labkit::{Failure, Result};

use crate::bridge::forwarding_enabled;
use crate::ipam::{State, leases};
use crate::netfilter::detect;
use crate::netlink::Netlink;

pub fn show(only: Option<&str>) -> Result<String> {
    let state = State::here()?;
    let bridges = match only {
        Some(name) if !state.bridges().iter().any(|b| b == name) => {
            return Err(Failure::new(format!(
                "no bridge named {name} here (ch05-network run creates it)"
            )));
        }
        Some(name) => vec![name.to_string()],
        None => state.bridges(),
    };
    if bridges.is_empty() {
        return Ok("no bridges (ch05-network run creates one)\n".into());
    }
    let netlink = Netlink::here()?;
    let links = netlink.links()?;
    let iptables = detect(&labkit::doctor::Host::real())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "forwarding: {}   iptables: {}",
        if forwarding_enabled() { "on" } else { "OFF" },
        iptables.name()
    );
    for name in bridges {
        let link = links.iter().find(|l| l.name == name);
        let address = match link {
            Some(l) => netlink
                .addresses(l.index)?
                .first()
                .map_or("no address".into(), |a| a.to_string()),
            None => "missing (its state is left over: ch05-network down)".into(),
        };
        let up = link.is_some_and(|l| l.up);
        let _ = writeln!(
            out,
            "\nbridge {name}: {address}{}",
            if up { ", up" } else { "" }
        );
        let _ = writeln!(out, "  containers:");
        let ports: Vec<_> = links
            .iter()
            .filter(|l| link.is_some_and(|b| l.controller == Some(b.index)))
            .collect();
        for lease in leases(&state, &name) {
            let plugged = ports.iter().any(|p| p.name == lease.veth);
            let published: Vec<String> = lease.ports.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(
                out,
                "    {:<15} {:<13} {:<18} process {}{}",
                lease.ip,
                lease.veth,
                match published.is_empty() {
                    true => "no ports".to_string(),
                    false => published.join(","),
                },
                lease.holder,
                if plugged {
                    ""
                } else {
                    " (veth not plugged in yet)"
                },
            );
        }
        let _ = writeln!(out, "  rules:");
        for table in crate::netfilter::TABLES {
            for rule in iptables.rules_of(table, &name)? {
                let spec = rule
                    .spec
                    .join(" ")
                    .replace(&format!(" -m comment --comment ch05-network:{name}"), "");
                let _ = writeln!(out, "    -t {table} -A {} {spec}", rule.chain);
            }
        }
    }
    Ok(out)
}
