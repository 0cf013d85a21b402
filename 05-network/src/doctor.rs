//! Chapter 05's doctor: chapter 02's checks, plus what wiring containers to the
//! host depends on: iptables and its backend, NAT in the kernel, forwarding, the
//! FORWARD policy, and bridge netfilter.

use labkit::doctor::{Finding, Host};

use crate::netfilter::{Backend, IPTABLES, Iptables, detect};

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = ch02_namespaces::doctor::checks(host);
    findings.push(forwarding(host));
    findings.push(bridge_netfilter(host));
    match detect(host) {
        Ok(iptables) => {
            findings.push(Finding::ok(
                "iptables backend",
                format!("{} ({})", iptables.name(), iptables.why),
            ));
            findings.extend(both_backends(host));
            findings.push(nat(&iptables));
            findings.push(forward_policy(&iptables));
        }
        Err(_) => findings.push(Finding::fail(
            "iptables",
            "not found on PATH: no NAT, no published ports",
            host.install_command(&IPTABLES),
        )),
    }
    findings
}

fn forwarding(host: &Host) -> Finding {
    let check = "IPv4 forwarding";
    match host
        .read("/proc/sys/net/ipv4/ip_forward")
        .as_deref()
        .map(str::trim)
    {
        Some("1") => Finding::ok(
            check,
            "on: packets may pass from the bridge to other interfaces",
        ),
        _ => Finding::warn(
            check,
            "off: containers cannot reach beyond the host (ch05-network run turns it on)",
            "sysctl -w net.ipv4.ip_forward=1   (to keep it: echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-forward.conf)",
        ),
    }
}

fn bridge_netfilter(host: &Host) -> Finding {
    let check = "bridge netfilter";
    match host
        .read("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .as_deref()
        .map(str::trim)
    {
        Some("1") => Finding::ok(
            check,
            "br_netfilter on: traffic between two containers of one bridge crosses iptables' FORWARD chain too (our bridges accept it)",
        ),
        Some(_) => Finding::ok(
            check,
            "br_netfilter loaded, bridge-nf-call-iptables=0: bridged traffic skips iptables",
        ),
        None => Finding::ok(
            check,
            "br_netfilter not loaded: bridged traffic skips iptables (Kubernetes loads it: modprobe br_netfilter)",
        ),
    }
}

/// Rules in both backends work, but are easy to miss: `iptables -S` shows one.
fn both_backends(host: &Host) -> Option<Finding> {
    let count = |name: &str| {
        let program = host.find_program(name)?;
        let out = std::process::Command::new(program).output().ok()?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("-A"))
                .count(),
        )
    };
    match (count("iptables-legacy-save"), count("iptables-nft-save")) {
        (Some(legacy), Some(nft)) if legacy > 0 && nft > 0 => Some(Finding::warn(
            "rules in both backends",
            format!(
                "{legacy} rules in legacy tables and {nft} in nf_tables: packets pass through both sets"
            ),
            "look at both: iptables-legacy-save; iptables-nft-save. Tools that disagree on the backend (an old Docker, a new firewall) cause this",
        )),
        _ => None,
    }
}

fn nat(iptables: &Iptables) -> Finding {
    match iptables.list("nat", Some("POSTROUTING")) {
        Ok(_) => Finding::ok("NAT", "the nat table works"),
        Err(failure) => Finding::fail(
            "NAT",
            failure.to_string(),
            match iptables.backend {
                Backend::Nft => "modprobe nft_nat nft_chain_nat   (CONFIG_NF_NAT, CONFIG_NFT_NAT)",
                Backend::Legacy => "modprobe iptable_nat   (CONFIG_NF_NAT, CONFIG_IP_NF_NAT)",
            },
        ),
    }
}

// ANCHOR: forward_policy
fn forward_policy(iptables: &Iptables) -> Finding {
    let check = "FORWARD policy";
    match iptables.forward_policy().as_deref() {
        Some("DROP") => Finding::warn(
            check,
            "DROP (Docker sets this, so do some firewalls): forwarded packets are dropped unless a rule accepts them. \
             ch05-network run adds accept rules for its bridges; by hand, you must too",
            "iptables -I FORWARD -i BRIDGE -j ACCEPT; iptables -I FORWARD -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ),
        Some(policy) => Finding::ok(check, policy),
        None => Finding::warn(check, "cannot read it", "iptables -S FORWARD"),
    }
}
// ANCHOR_END: forward_policy
