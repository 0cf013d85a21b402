//! What the host looks like, in the parts our programs touch: the mount table,
//! network links and settings, netfilter rules, the cgroup tree, processes running one of our
//! binaries, and the tests' temp dirs. Captured before and after a whole test run; any difference is a
//! leak, shown line by line.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostState {
    /// One line per part: `mount /tmp/x overlay overlay`, `link veth0`, ...
    pub lines: BTreeSet<String>,
}

impl HostState {
    /// `binaries_dir`: processes whose executable lives there are ours.
    pub fn capture(binaries_dir: &Path) -> Self {
        let mut lines = BTreeSet::new();
        mounts(&mut lines);
        links(&mut lines);
        sysctls(&mut lines);
        netfilter(&mut lines);
        cgroups(&mut lines);
        our_processes(binaries_dir, &mut lines);
        test_dirs(&mut lines);
        HostState { lines }
    }

    /// What an earlier run of ours left (a crash, a test interrupted): our links
    /// (`lab0`, `veth0a4d...`), rules, chapter 05's state, our cgroups, temp dirs
    /// and processes. A run starting on top of them would not see its own leaks.
    pub fn ours(&self) -> Vec<String> {
        let link = regex::Regex::new(r"^link (lab\d+|veth[0-9a-f]{8})$").expect("regex");
        self.lines
            .iter()
            .filter(|l| {
                link.is_match(l)
                    || l.contains("ch05-network")
                    || l.contains("CH05-PORTS")
                    || l.starts_with("network state ")
                    || l.starts_with("temp dir ")
                    || l.starts_with("process ")
                    || (l.starts_with("cgroup ")
                        && ["/lab-", "/mini-docker", "/ch03-cgroups"]
                            .iter()
                            .any(|ours| l.contains(ours)))
            })
            .cloned()
            .collect()
    }

    /// Chapter 05's state of network namespaces that are gone (a run killed before
    /// it took its bridge down): garbage that nothing can use, removed before the
    /// host is captured so that it blocks no run. Returns what was removed.
    pub fn forget_vanished_network_state() -> Vec<String> {
        let mut alive = std::collections::HashSet::new();
        for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            for task in std::fs::read_dir(process.path().join("task"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(link) = std::fs::read_link(task.path().join("ns/net")) {
                    alive.insert(link.to_string_lossy().into_owned());
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut removed = vec![];
        for entry in std::fs::read_dir("/run/ch05-network")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(inode) = name.strip_prefix("net-") else {
                continue;
            };
            let ns = format!("net:[{inode}]");
            if !alive.contains(&ns) && !mounts.contains(&ns) {
                let _ = std::fs::remove_dir_all(entry.path());
                removed.push(entry.path().display().to_string());
            }
        }
        removed
    }

    /// `+ line` for what appeared, `- line` for what went away.
    pub fn diff(&self, after: &HostState) -> Vec<String> {
        let gone = self
            .lines
            .difference(&after.lines)
            .map(|l| format!("- {l}"));
        let new = after
            .lines
            .difference(&self.lines)
            .map(|l| format!("+ {l}"));
        gone.chain(new).collect()
    }
}

/// /proc/self/mountinfo: mount point, filesystem type and source.
fn mounts(lines: &mut BTreeSet<String>) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if let (Some(point), Some(fstype), Some(source)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 2))
        {
            lines.insert(format!("mount {point} {fstype} {source}"));
        }
    }
}

/// /sys/class/net lists the links of the namespace sysfs was mounted in: the host's.
fn links(lines: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        lines.insert(format!("link {}", entry.file_name().to_string_lossy()));
    }
}

/// The host's network settings chapter 05 turns on for its bridges (a new network
/// namespace inherits the IPv4 ones, so a leak here changes every later test's).
fn sysctls(lines: &mut BTreeSet<String>) {
    for name in [
        "net/ipv4/ip_forward",
        "net/ipv4/conf/all/route_localnet",
        "net/ipv6/conf/all/forwarding",
    ] {
        let value = std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap_or_default();
        lines.insert(format!("sysctl {name} = {}", value.trim()));
    }
}

/// The rules of every iptables backend present, and of nftables, without counters.
fn netfilter(lines: &mut BTreeSet<String>) {
    let tools: [(&str, &[&str]); 5] = [
        ("iptables-legacy-save", &[]),
        ("ip6tables-legacy-save", &[]),
        ("iptables-nft-save", &[]),
        ("ip6tables-nft-save", &[]),
        ("nft", &["list", "ruleset"]),
    ];
    let counters = regex::Regex::new(r"\[\d+:\d+\]|packets \d+ bytes \d+").expect("regex");
    for (tool, args) in tools {
        let Ok(out) = Command::new(tool).args(args).output() else {
            continue;
        };
        for rule in String::from_utf8_lossy(&out.stdout).lines() {
            if rule.starts_with('#') || rule.trim().is_empty() {
                continue;
            }
            lines.insert(format!("{tool}: {}", counters.replace_all(rule, "")));
        }
    }
}

/// Every directory under /sys/fs/cgroup, and the controllers each v2 group hands
/// on to its children (`cgroup.subtree_control`: switching one on and leaving it on
/// is a change too). systemd's own units (`*.scope`, `*.service`...) come and go on
/// their own and are left out; ours never use those suffixes.
fn cgroups(lines: &mut BTreeSet<String>) {
    fn subtree_control(dir: &Path, lines: &mut BTreeSet<String>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.subtree_control")) {
            lines.insert(format!(
                "cgroup {} hands on: {}",
                dir.display(),
                text.trim()
            ));
        }
    }
    fn walk(dir: &Path, lines: &mut BTreeSet<String>) {
        subtree_control(dir, lines);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let systemd = [".scope", ".service", ".slice", ".socket", ".mount", ".swap"]
                .iter()
                .any(|s| name.ends_with(s));
            if !systemd {
                lines.insert(format!("cgroup {}", entry.path().display()));
                walk(&entry.path(), lines);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), lines);
}

/// The tests' and the tools' temp dirs (`/tmp/lab-*`, `/tmp/ch04-*`, `/tmp/ch05-*`)
/// and chapter 05's state (`/run/ch05-network/net-*`), which must all go.
fn test_dirs(lines: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["lab-", "ch04-", "ch05-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            lines.insert(format!("temp dir /tmp/{name}"));
        }
    }
    for entry in std::fs::read_dir("/run/ch05-network")
        .into_iter()
        .flatten()
        .flatten()
    {
        lines.insert(format!("network state {}", entry.path().display()));
    }
}

/// Processes whose executable is one of ours (built into `binaries_dir`).
fn our_processes(binaries_dir: &Path, lines: &mut BTreeSet<String>) {
    let mine = ancestors();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if mine.contains(&pid) || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(exe) = std::fs::read_link(entry.path().join("exe"))
            && exe.parent() == Some(binaries_dir)
        {
            lines.insert(format!("process {pid} {}", exe.display()));
        }
    }
}

/// This process and those above it: the `cargo lab` that asked (through sudo, for a
/// user) is not a process a run left behind.
fn ancestors() -> Vec<String> {
    let mut found = vec![std::process::id().to_string()];
    while let Some(parent) =
        std::fs::read_to_string(format!("/proc/{}/stat", found[found.len() - 1]))
            .ok()
            .and_then(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces and parentheses.
                let after = stat.rsplit_once(')')?.1.to_string();
                after.split_whitespace().nth(1).map(str::to_string)
            })
            .filter(|ppid| ppid != "0" && found.len() < 64)
    {
        found.push(parent);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_shows_as_a_difference() {
        let before = HostState {
            lines: ["mount / ext4 /dev/vda".to_string()].into(),
        };
        let mut after = before.clone();
        after.lines.insert("mount /tmp/x overlay overlay".into());
        after.lines.remove("mount / ext4 /dev/vda");
        assert_eq!(
            before.diff(&after),
            ["- mount / ext4 /dev/vda", "+ mount /tmp/x overlay overlay"]
        );
    }

    #[test]
    fn capture_sees_this_host() {
        let state = HostState::capture(Path::new("/nonexistent"));
        assert!(
            state.lines.iter().any(|l| l.starts_with("mount / ")),
            "{state:?}"
        );
        assert!(state.lines.contains("link lo"), "{state:?}");
    }
}
