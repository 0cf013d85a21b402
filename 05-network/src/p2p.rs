//! `ch05-network p2p -- CMD1 -- CMD2`: two containers joined by one veth pair, with
//! no bridge: a virtual cable. Each end gets a /32 address and a route to the
//! other's /32 through the cable (the way Calico wires pods to their host).

use std::net::Ipv4Addr;

use ch01_chroot::chroot_run::{IgnoreInterrupts, wait_for};
use ch02_namespaces::namespace::Namespace;
use ch02_namespaces::plan::{Request, plan};
use ch02_namespaces::spawn::{self, Started};
use ipnet::Ipv4Net;
use labkit::doctor::Host;
use labkit::{Failure, Result};
use nix::unistd::Pid;

use crate::netlink::Netlink;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2p {
    pub ips: [Ipv4Addr; 2],
    pub commands: [Vec<String>; 2],
}

/// `--ips A,B` and `CMD1 -- CMD2` (the first `--` is clap's).
pub fn parse(ips: &str, words: &[String]) -> Result<P2p> {
    let parsed: Vec<Option<Ipv4Addr>> = ips.split(',').map(|s| s.parse().ok()).collect();
    let ips = match parsed[..] {
        [Some(a), Some(b)] if a != b => [a, b],
        _ => {
            return Err(Failure::new(format!(
                "--ips: {ips:?} is not two different IPv4 addresses; use e.g. 10.99.0.1,10.99.0.2"
            )));
        }
    };
    let mut halves = words.splitn(2, |w| w == "--");
    let first = halves.next().unwrap_or_default().to_vec();
    let second = halves.next().unwrap_or_default().to_vec();
    if first.is_empty() || second.is_empty() {
        return Err(Failure::new(
            "p2p needs two commands: ch05-network p2p -- CMD1 ARGS -- CMD2 ARGS",
        ));
    }
    Ok(P2p {
        ips,
        commands: [first, second],
    })
}

// ANCHOR: run
pub fn run(p2p: &P2p) -> Result<i32> {
    let _ignoring = IgnoreInterrupts::start()?;
    let mut started: Vec<Started> = Vec::new();
    for (i, command) in p2p.commands.iter().enumerate() {
        let request = Request {
            namespaces: [Namespace::Net, Namespace::Uts].into(),
            hostname: Some(["left", "right"][i].into()),
            command: command.clone(),
            ..Request::default()
        };
        let child = plan(request, &Host::real()).and_then(|plan| spawn::start(&plan));
        match child {
            Ok(child) => started.push(child),
            Err(failure) => {
                started.into_iter().for_each(Started::abandon);
                return Err(failure);
            }
        }
    }
    let pids = [started[0].pid, started[1].pid];
    if let Err(failure) = cable(p2p.ips, pids) {
        started.into_iter().for_each(Started::abandon);
        return Err(failure);
    }
    let pids: Vec<Pid> = started.into_iter().map(Started::go).collect();
    let codes: Vec<i32> = pids.into_iter().map(wait_for).collect::<Result<_>>()?;
    Ok(codes.into_iter().find(|c| *c != 0).unwrap_or(0))
}
// ANCHOR_END: run

// ANCHOR: cable
/// One veth pair, an end in each namespace, each named eth0, each with a /32
/// and a route to the other end's /32 through the cable.
fn cable(ips: [Ipv4Addr; 2], pids: [Pid; 2]) -> Result<()> {
    Netlink::here()?.add_veth_between("eth0", pids[0], "eth0", pids[1])?;
    for (ours, theirs, pid) in [(ips[0], ips[1], pids[0]), (ips[1], ips[0], pids[1])] {
        let inside = Netlink::inside(pid)?;
        let address = Ipv4Net::new(ours, 32).map_err(|e| Failure::new(e.to_string()))?;
        inside.add_address("eth0", address)?;
        inside.set_up("lo")?;
        inside.set_up("eth0")?;
        inside.add_link_route(theirs, "eth0")?;
    }
    Ok(())
}
// ANCHOR_END: cable
