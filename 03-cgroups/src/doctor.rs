//! Chapter 03's doctor: chapter 02's checks, plus cgroups: the version, the
//! controllers, whether we may create groups where `run` will, and v2 delegation.

use labkit::doctor::{Finding, Host};

use crate::hierarchy::Layout;

const LIMIT_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuset", "pids"];

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = ch02_namespaces::doctor::checks(host);
    let layout = Layout::discover(host);
    let Some(mode) = layout.mode() else {
        findings.push(Finding::fail(
            "cgroups",
            "no cgroup or cgroup2 filesystem is mounted",
            "mount -t cgroup2 none /sys/fs/cgroup",
        ));
        return findings;
    };
    findings.push(Finding::ok("cgroup version", mode.to_string()));
    let missing: Vec<&str> = LIMIT_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| layout.version_of(c, host).is_none())
        .collect();
    if missing.is_empty() {
        findings.push(Finding::ok(
            "controllers",
            "memory, cpu, cpuset and pids are all available",
        ));
    }
    for controller in missing {
        let fix = match layout.v2.as_ref().filter(|_| layout.v1.is_empty()) {
            Some(root) => format!(
                "a kernel built with the {controller} controller (then: echo +{controller} > {}/cgroup.subtree_control)",
                root.display()
            ),
            None => format!(
                "mkdir /sys/fs/cgroup/{controller} && mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller}"
            ),
        };
        findings.push(Finding::warn(
            format!("{controller} controller"),
            format!("missing ({mode}): run refuses limits that need it"),
            fix,
        ));
    }
    findings.push(writable(&layout, host));
    if let Some(finding) = v2_delegation(&layout, host) {
        findings.push(finding);
    }
    findings
}

/// `run` makes groups beneath our own: can we?
fn writable(layout: &Layout, host: &Host) -> Finding {
    let places: Vec<_> = layout
        .own_v2()
        .into_iter()
        .chain(layout.v1.keys().filter_map(|c| layout.own_v1(c)))
        .collect();
    for place in &places {
        if let Err(e) = nix::unistd::access(&host.path(place), nix::unistd::AccessFlags::W_OK) {
            return Finding::fail(
                "creating groups",
                format!("{} is not writable ({})", place.display(), e.desc()),
                "run as root on the host; inside a container, /sys/fs/cgroup is usually read-only",
            );
        }
    }
    Finding::ok(
        "creating groups",
        format!(
            "allowed beneath our own cgroup ({} hierarchies)",
            places.len()
        ),
    )
}

// ANCHOR: v2_delegation
/// On v2, new groups beneath ours get only the controllers listed in our group's
/// cgroup.subtree_control, and a group that lists any may hold no processes.
fn v2_delegation(layout: &Layout, host: &Host) -> Option<Finding> {
    let parent = layout.own_v2()?;
    let wanted: Vec<&str> = LIMIT_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| layout.version_of(c, host) == Some(2))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let read = |file: &str| {
        host.read(&parent.join(file).to_string_lossy())
            .unwrap_or_default()
    };
    let enabled = read("cgroup.subtree_control");
    let off: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    let check = "v2 delegation";
    if off.is_empty() {
        return Some(Finding::ok(
            check,
            format!(
                "{} enables {} for its children",
                parent.display(),
                wanted.join(" ")
            ),
        ));
    }
    let others = read("cgroup.procs").split_whitespace().count();
    let plus: Vec<String> = off.iter().map(|c| format!("+{c}")).collect();
    let fix = if others > 1 && Some(&parent) != layout.v2.as_ref() {
        format!(
            "our group holds {others} processes, so none can be enabled there (no internal processes): \
             run under `systemd-run --scope -p Delegate=yes ch03-cgroups run ...`, or pass --parent \
             with an empty group whose parent enables them"
        )
    } else {
        format!(
            "run does it (echo '{}' > {}/cgroup.subtree_control)",
            plus.join(" "),
            parent.display()
        )
    };
    Some(Finding::warn(
        check,
        format!(
            "{} does not enable {} for its children",
            parent.display(),
            off.join(" ")
        ),
        fix,
    ))
}
// ANCHOR_END: v2_delegation
