//! Netfilter rules, written with the `iptables` tool exactly as Docker does.
//!
//! Two kernel interfaces hide behind the one command: the old `x_tables`
//! (`iptables-legacy`, a whole table replaced with `setsockopt`) and `nf_tables`
//! (`iptables-nft`, rules sent over netlink). Both can hold rules at once, and
//! packets then go through both, so we write where the host's rules already are.
//! Every rule we add carries the comment `ch05-network:BRIDGE`, which is how `show`
//! finds them and `down` removes them.

use std::path::PathBuf;
use std::process::Command;

use ipnet::Ipv4Net;
use labkit::doctor::{Host, Package};
use labkit::narrate;
use labkit::{Failure, Result};

use crate::args::Publish;

/// Our chain in the nat table, jumped to for traffic addressed to this host (the
/// role of Docker's `DOCKER` chain): one DNAT rule per published port.
pub const PORTS_CHAIN: &str = "CH05-PORTS";
/// Docker's two-stage isolation of bridges from each other: a packet that comes in
/// on one of our bridges and leaves by another is dropped (filter table).
pub const ISOLATION_CHAINS: [&str; 2] = ["CH05-ISOLATION-1", "CH05-ISOLATION-2"];

pub const IPTABLES: Package = Package {
    apt: "iptables",
    dnf: "iptables-nft",
    pacman: "iptables-nft",
    apk: "iptables",
    zypper: "iptables",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Legacy,
    Nft,
}

/// The `iptables` program to use, and why.
#[derive(Debug, Clone)]
pub struct Iptables {
    pub program: PathBuf,
    pub backend: Backend,
    pub why: String,
}

fn program_name(program: &std::path::Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn output(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

// ANCHOR: detect
/// Which backend is in effect: the one that already holds rules (Docker, firewalld
/// or ufw put them there), else the one `iptables` itself is linked to.
pub fn detect(host: &Host) -> Result<Iptables> {
    let plain = host.find_program("iptables");
    let legacy = host.find_program("iptables-legacy");
    let nft = host.find_program("iptables-nft");
    let Some(default_program) = plain.clone().or(nft.clone()).or(legacy.clone()) else {
        return Err(Failure::new(format!(
            "iptables not found on PATH: bridge networking needs it for NAT and published \
             ports (Docker does too). Install it: {}",
            host.install_command(&IPTABLES)
        )));
    };
    let version = output(&default_program, &["--version"]).unwrap_or_default();
    let default = match version.contains("legacy") {
        true => Backend::Legacy,
        false => Backend::Nft,
    };
    let (Some(legacy), Some(nft)) = (legacy, nft) else {
        return Ok(Iptables {
            program: default_program,
            backend: default,
            why: format!("the only iptables here: {}", version.trim()),
        });
    };
    let rules = |program: &std::path::Path| {
        let save = format!("{}-save", program.display());
        output(std::path::Path::new(&save), &[]).map_or(0, |text| {
            text.lines().filter(|l| l.starts_with("-A")).count()
        })
    };
    let (in_legacy, in_nft) = (rules(&legacy), rules(&nft));
    let backend = match in_legacy.cmp(&in_nft) {
        std::cmp::Ordering::Greater => Backend::Legacy,
        std::cmp::Ordering::Less => Backend::Nft,
        std::cmp::Ordering::Equal => default,
    };
    Ok(Iptables {
        program: match backend {
            Backend::Legacy => legacy,
            Backend::Nft => nft,
        },
        backend,
        why: format!(
            "{in_legacy} rules in legacy tables, {in_nft} in nf_tables; iptables is {}",
            match default {
                Backend::Legacy => "legacy",
                Backend::Nft => "nf_tables",
            }
        ),
    })
}
// ANCHOR_END: detect

/// One rule: its table, chain and match/target words, without `-A`/`-I`/`-D`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: &'static str,
    pub chain: String,
    pub spec: Vec<String>,
    /// Put it first in its chain rather than last: FORWARD may end in a firewall's
    /// own DROP rule, which must not see our traffic first.
    pub first: bool,
}

/// The words of a rule. `iptables -S` quotes comments (`"ch05-network:lab0"`); ours
/// have no spaces, so dropping the quotes gives back the words that made the rule.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .collect()
}

fn tag(bridge: &str) -> String {
    format!("-m comment --comment ch05-network:{bridge}")
}

impl Rule {
    fn new(table: &'static str, chain: &str, spec: String) -> Rule {
        Rule {
            table,
            chain: chain.to_string(),
            spec: words(&spec),
            first: false,
        }
    }
}

/// The tables our rules are in: raw (before routing), nat, filter.
pub const TABLES: [&str; 3] = ["raw", "nat", "filter"];

// ANCHOR: bridge_rules
/// What a bridge needs from netfilter, set up once with the bridge.
pub fn bridge_rules(bridge: &str, subnet: Ipv4Net) -> Vec<Rule> {
    let tag = tag(bridge);
    vec![
        masquerade(bridge, subnet, &tag),
        // The host's own connections to 127.0.0.1:PORT, rewritten towards a
        // container, must not reach it with 127.0.0.1 as their source.
        Rule::new(
            "nat",
            "POSTROUTING",
            format!("-o {bridge} -m addrtype --src-type LOCAL {tag} -j MASQUERADE"),
        ),
        // route_localnet (above) lets the host route 127.0.0.1 to the bridge, and so
        // also accept 127.0.0.0/8 *from* it: a container that forges such a packet
        // (CAP_NET_RAW is in Docker's default set) reaches the host's loopback-only
        // services (CVE-2020-8558). Nothing honest comes in on a bridge addressed to
        // loopback: dropped before routing, as kube-proxy does.
        Rule::new(
            "raw",
            "PREROUTING",
            format!("-i {bridge} -d 127.0.0.0/8 {tag} -j DROP"),
        ),
        // When the FORWARD policy is DROP (Docker sets it): let containers out, and
        // the replies back in.
        Rule {
            first: true,
            ..Rule::new("filter", "FORWARD", format!("-i {bridge} {tag} -j ACCEPT"))
        },
        Rule {
            first: true,
            ..Rule::new(
                "filter",
                "FORWARD",
                format!("-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"),
            )
        },
    ]
}
// ANCHOR_END: bridge_rules

// ANCHOR: isolation_rules
/// Bridges are isolated from each other, as Docker isolates its networks: what
/// comes in on `bridge` and leaves by another interface is sent to the second
/// chain, where every bridge of ours drops what would leave by it. The uplink
/// (eth0) is in no rule there, so containers still reach the outside.
pub fn isolation_rules(bridge: &str) -> Vec<Rule> {
    let tag = tag(bridge);
    let [first, second] = ISOLATION_CHAINS;
    vec![
        Rule::new(
            "filter",
            first,
            format!("-i {bridge} ! -o {bridge} {tag} -j {second}"),
        ),
        Rule::new("filter", second, format!("-o {bridge} {tag} -j DROP")),
    ]
}

/// An internal bridge (`network create --internal`): nothing leaves it for
/// another interface, and nothing comes in from one.
pub fn internal_rules(bridge: &str) -> Vec<Rule> {
    let tag = tag(bridge);
    let chain = ISOLATION_CHAINS[0];
    [
        format!("-i {bridge} ! -o {bridge} {tag} -j DROP"),
        format!("-o {bridge} ! -i {bridge} {tag} -j DROP"),
    ]
    .into_iter()
    .map(|spec| Rule {
        first: true,
        ..Rule::new("filter", chain, spec)
    })
    .collect()
}
// ANCHOR_END: isolation_rules

/// The jump into the first isolation chain, first in FORWARD.
fn isolation_jump() -> Rule {
    Rule {
        first: true,
        ..Rule::new(
            "filter",
            "FORWARD",
            format!(
                "-m comment --comment ch05-network -j {}",
                ISOLATION_CHAINS[0]
            ),
        )
    }
}

// ANCHOR: masquerade
/// Leaving the host: replace the container's source address with the host's, on
/// every packet from the bridge's subnet that goes out of another interface.
fn masquerade(bridge: &str, subnet: Ipv4Net, tag: &str) -> Rule {
    // ANCHOR: hole_nat
    Rule::new(
        "nat",
        "POSTROUTING",
        format!("-s {subnet} ! -o {bridge} {tag} -j MASQUERADE"),
    )
    // ANCHOR_END: hole_nat
}
// ANCHOR_END: masquerade

/// The jumps into our ports chain, from both ways a packet reaches this host.
pub fn port_chain_jumps() -> Vec<Rule> {
    let spec =
        format!("-m addrtype --dst-type LOCAL -m comment --comment ch05-network -j {PORTS_CHAIN}");
    vec![
        // Packets arriving from other hosts (and from containers).
        Rule::new("nat", "PREROUTING", spec.clone()),
        // Connections made on this host itself, 127.0.0.1 included.
        Rule::new("nat", "OUTPUT", spec),
    ]
}

// ANCHOR: publish_rules
/// `-p HOST:CONTAINER`: rewrite the destination, then let the packet through.
pub fn publish_rules(bridge: &str, container: std::net::Ipv4Addr, publish: &Publish) -> Vec<Rule> {
    // ANCHOR: hole_publish
    let (tag, proto) = (tag(bridge), publish.protocol);
    let (host_port, port) = (publish.host_port, publish.container_port);
    vec![
        Rule::new(
            "nat",
            PORTS_CHAIN,
            format!(
                "! -i {bridge} -p {proto} --dport {host_port} {tag} -j DNAT --to-destination {container}:{port}"
            ),
        ),
        Rule {
            first: true,
            ..Rule::new(
                "filter",
                "FORWARD",
                format!(
                    "-d {container}/32 ! -i {bridge} -o {bridge} -p {proto} --dport {port} {tag} -j ACCEPT"
                ),
            )
        },
    ]
    // ANCHOR_END: hole_publish
}
// ANCHOR_END: publish_rules

impl Iptables {
    /// `iptables-nft`, `iptables-legacy` or `iptables`.
    pub fn name(&self) -> String {
        program_name(&self.program)
    }

    fn run(&self, args: &[String], quiet: bool) -> Result<String> {
        let name = self.name();
        if !quiet {
            let kernel = match self.backend {
                Backend::Nft => "nf_tables",
                Backend::Legacy => "x_tables",
            };
            narrate::step(
                format!("exec {name}   # {kernel}"),
                format!("iptables {}", args.join(" ")),
            );
        }
        // -w: wait for the xtables lock that concurrent runs take.
        let out = Command::new(&self.program)
            .arg("-w")
            .args(args)
            .output()
            .map_err(|e| Failure::new(format!("{name}: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let hint = if said.contains("Table does not exist") || said.contains("can't initialize") {
            " (this kernel lacks netfilter NAT support: modprobe iptable_nat, or \
              CONFIG_NF_NAT / CONFIG_NF_TABLES)"
        } else {
            ""
        };
        Err(Failure::new(format!(
            "iptables {}: {said}{hint}",
            args.join(" ")
        )))
    }

    // ANCHOR: restore
    /// Add (or delete) several rules with one `iptables-restore --noflush`: one
    /// process and one transaction instead of one `iptables` per rule. All of them
    /// apply, or none does.
    pub fn apply(&self, rules: &[Rule], add: bool) -> Result<()> {
        if rules.is_empty() {
            return Ok(());
        }
        let restore = PathBuf::from(format!("{}-restore", self.program.display()));
        let name = program_name(&restore);
        narrate::step(
            format!("exec {name} --noflush"),
            format!(
                "iptables-restore --noflush   # {} rules, one transaction:",
                rules.len()
            ),
        );
        let mut input = String::new();
        for table in TABLES {
            let in_table: Vec<&Rule> = rules.iter().filter(|r| r.table == table).collect();
            if in_table.is_empty() {
                continue;
            }
            input.push_str(&format!("*{table}\n"));
            for rule in in_table {
                let action = match (add, rule.first) {
                    (false, _) => "-D",
                    (true, true) => "-I",
                    (true, false) => "-A",
                };
                let line = format!("{action} {} {}", rule.chain, rule.spec.join(" "));
                narrate::step("", format!("  iptables -t {table} {line}"));
                input.push_str(&line);
                input.push('\n');
            }
            input.push_str("COMMIT\n");
        }
        let mut child = Command::new(&restore)
            .args(["-w", "--noflush"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Failure::new(format!("{name}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Failure::new(format!("{name}: {e}")))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(Failure::new(format!(
                "{name} --noflush: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }
    // ANCHOR_END: restore

    fn command(rule: &Rule, action: &str) -> Vec<String> {
        let mut args = vec![
            "-t".into(),
            rule.table.into(),
            action.into(),
            rule.chain.clone(),
        ];
        args.extend(rule.spec.iter().cloned());
        args
    }

    pub fn exists(&self, rule: &Rule) -> bool {
        self.run(&Self::command(rule, "-C"), true).is_ok()
    }

    pub fn add(&self, rule: &Rule) -> Result<()> {
        let action = if rule.first { "-I" } else { "-A" };
        self.run(&Self::command(rule, action), false).map(drop)
    }

    /// Add unless an identical rule is there already.
    pub fn ensure(&self, rule: &Rule) -> Result<()> {
        match self.exists(rule) {
            true => Ok(()),
            false => self.add(rule),
        }
    }

    pub fn delete(&self, rule: &Rule) -> Result<()> {
        self.run(&Self::command(rule, "-D"), false).map(drop)
    }

    /// `iptables -t TABLE -S [CHAIN]`: the rules as the words that made them.
    pub fn list(&self, table: &'static str, chain: Option<&str>) -> Result<Vec<String>> {
        let mut args = vec!["-t".to_string(), table.to_string(), "-S".to_string()];
        args.extend(chain.map(str::to_string));
        Ok(self.run(&args, true)?.lines().map(str::to_string).collect())
    }

    /// Our ports chain in the nat table, and the jumps into it.
    pub fn ensure_ports_chain(&self) -> Result<()> {
        if self.list("nat", Some(PORTS_CHAIN)).is_err() {
            self.run(&words(&format!("-t nat -N {PORTS_CHAIN}")), false)?;
        }
        port_chain_jumps().iter().try_for_each(|r| self.ensure(r))
    }

    /// The rules tagged for `bridge`, in `table`, as they are listed.
    pub fn rules_of(&self, table: &'static str, bridge: &str) -> Result<Vec<Rule>> {
        let tag = format!("ch05-network:{bridge}");
        Ok(self
            .list(table, None)?
            .iter()
            .filter_map(|line| {
                let mut words = words(line);
                let ours = words.contains(&tag);
                (ours && words.len() > 2 && words[0] == "-A").then(|| {
                    let chain = words[1].clone();
                    Rule {
                        table,
                        chain,
                        spec: words.split_off(2),
                        first: false,
                    }
                })
            })
            .collect())
    }

    /// The isolation chains, made once for all bridges.
    pub fn ensure_isolation_chains(&self) -> Result<()> {
        for chain in ISOLATION_CHAINS {
            if self.list("filter", Some(chain)).is_err() {
                self.run(&words(&format!("-t filter -N {chain}")), false)?;
            }
        }
        Ok(())
    }

    /// The jump into them, moved (back) to the top of FORWARD: a bridge set up
    /// later inserts its ACCEPT rules first, and they must not come before it.
    pub fn isolation_first(&self) -> Result<()> {
        let jump = isolation_jump();
        if self.exists(&jump) {
            self.delete(&jump)?;
        }
        self.add(&jump)
    }

    /// Remove our chains and their jumps, once no bridge uses them.
    pub fn remove_ports_chain(&self) -> Result<()> {
        for jump in port_chain_jumps().into_iter().chain([isolation_jump()]) {
            if self.exists(&jump) {
                self.delete(&jump)?;
            }
        }
        if self.list("nat", Some(PORTS_CHAIN)).is_ok() {
            self.run(&words(&format!("-t nat -X {PORTS_CHAIN}")), false)?;
        }
        for chain in ISOLATION_CHAINS {
            if self.list("filter", Some(chain)).is_ok() {
                self.run(&words(&format!("-t filter -X {chain}")), false)?;
            }
        }
        Ok(())
    }

    /// `-P FORWARD DROP` or ACCEPT.
    pub fn forward_policy(&self) -> Option<String> {
        self.list("filter", Some("FORWARD"))
            .ok()?
            .first()?
            .strip_prefix("-P FORWARD ")
            .map(str::to_string)
    }
}
