//! Chapter 03's doctor: chapter 02's checks, plus cgroups: the version, the
//! controllers, whether groups can be made where `run` makes them and get their
//! controllers there, and what `--parent .` (beneath our own group) would meet.

use std::path::{Path, PathBuf};

use labkit::doctor::{Finding, Host};

use crate::group::DEFAULT_PARENT;
use crate::hierarchy::Layout;

/// Without these, limits that every container gets (mini-docker's pids limit) or
/// that learners ask first (memory, CPU) cannot be had.
const ESSENTIAL: [&str; 3] = ["memory", "cpu", "pids"];
const OPTIONAL: [&str; 2] = ["cpuset", "io"];

/// Chapter 03's checks, for groups in [`DEFAULT_PARENT`], and for `--parent .`.
pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = checks_for(host, DEFAULT_PARENT);
    if let Some(finding) = beneath_our_own(&Layout::discover(host), host) {
        findings.push(finding);
    }
    findings
}

/// The checks for a tool whose groups go into `parent` (mini-docker: `/mini-docker`).
pub fn checks_for(host: &Host, parent: &str) -> Vec<Finding> {
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
    findings.extend(controllers(&layout, host));
    findings.push(placement(&layout, host, parent));
    findings
}

fn controllers(layout: &Layout, host: &Host) -> Vec<Finding> {
    let missing = |list: &[&'static str]| -> Vec<&'static str> {
        list.iter()
            .copied()
            .filter(|c| layout.version_of(c, host).is_none())
            .collect()
    };
    let (essential, optional) = (missing(&ESSENTIAL), missing(&OPTIONAL));
    if essential.is_empty() && optional.is_empty() {
        return vec![Finding::ok(
            "controllers",
            "memory, cpu, cpuset, pids and io are all available",
        )];
    }
    let fix = |controller: &str| match layout.v2.as_ref().filter(|_| layout.v1.is_empty()) {
        // Our view's root is a group of the host's (a container with a cgroup
        // namespace of its own): the host decides what it gets.
        Some(root) if !crate::hierarchy::is_true_root(&host.path(root)) => format!(
            "this cgroup tree is a part of the host's (a container?): on the host, give it \
             the controller (echo +{controller} > PARENT/cgroup.subtree_control for its parent group)"
        ),
        Some(root) => format!(
            "a kernel built with the {controller} controller (then: echo +{controller} > {}/cgroup.subtree_control)",
            root.display()
        ),
        None => {
            let name = crate::hierarchy::v1_name(controller);
            format!(
                "mkdir /sys/fs/cgroup/{name} && mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}"
            )
        }
    };
    let mode = layout.mode().map(|m| m.to_string()).unwrap_or_default();
    let mut findings: Vec<Finding> = essential
        .iter()
        .map(|c| {
            Finding::fail(
                format!("{c} controller"),
                format!("missing ({mode}): no container can have its limits or accounting"),
                fix(c),
            )
        })
        .collect();
    findings.extend(optional.iter().map(|c| {
        Finding::warn(
            format!("{c} controller"),
            format!("missing ({mode}): run refuses limits that need it"),
            fix(c),
        )
    }));
    findings
}

// ANCHOR: placement
/// Groups go to `parent` in every hierarchy: can they be made there, and on v2, will
/// the controllers reach them? Every level on the way must offer them and, unless it
/// is the real root, hold no processes where it must hand them on.
fn placement(layout: &Layout, host: &Host, parent: &str) -> Finding {
    let check = "where groups go";
    let own = |key: &str| layout.own.get(key).map_or("/", String::as_str).to_string();
    let place = match crate::place::Place::new(parent, "x") {
        Ok(place) => place,
        Err(failure) => return Finding::fail(check, failure.message(), "a plain path"),
    };
    let mut shown = vec![];
    for root in layout.roots() {
        let key = match Some(&root) == layout.v2.as_ref() {
            true => String::new(),
            false => layout
                .v1
                .iter()
                .find(|(_, r)| **r == root)
                .map(|(c, _)| c.clone())
                .unwrap_or_default(),
        };
        let dir = place.parent_in(&root, &own(&key));
        let existing = dir
            .ancestors()
            .find(|p| host.path(p).is_dir())
            .unwrap_or(&root)
            .to_path_buf();
        if let Err(e) = nix::unistd::access(&host.path(&existing), nix::unistd::AccessFlags::W_OK) {
            return Finding::fail(
                check,
                format!("{} is not writable ({})", existing.display(), e.desc()),
                "run as root on the host (sudo); inside a container /sys/fs/cgroup is read-only: \
                 use a VM",
            );
        }
        if Some(&root) == layout.v2.as_ref()
            && let Some(problem) = v2_path(layout, host, &root, &dir)
        {
            return problem;
        }
        shown.push(dir.display().to_string());
    }
    Finding::ok(
        check,
        format!(
            "{}/NAME (made when needed, removed when empty)",
            shown.first().cloned().unwrap_or_default()
        ),
    )
}

/// The controllers the v2 root offers, walked down to `dir` level by level.
fn v2_path(layout: &Layout, host: &Host, root: &Path, dir: &Path) -> Option<Finding> {
    let check = "where groups go";
    let read = |p: &Path, file: &str| {
        host.read(&p.join(file).to_string_lossy())
            .unwrap_or_default()
    };
    let words = |p: &Path, file: &str| -> Vec<String> {
        read(p, file)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let wanted: Vec<String> = ESSENTIAL
        .iter()
        .chain(OPTIONAL.iter())
        .filter(|c| layout.version_of(c, host) == Some(2))
        .map(|c| c.to_string())
        .collect();
    let mut levels: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| p.starts_with(root))
        .filter(|p| host.path(p).is_dir())
        .map(Path::to_path_buf)
        .collect();
    levels.reverse();
    for level in &levels {
        let offered = words(level, "cgroup.controllers");
        if let Some(c) = wanted.iter().find(|c| !offered.contains(c)) {
            let up = level.parent().unwrap_or(level);
            return Some(Finding::fail(
                check,
                format!("{} is not given the {c} controller", level.display()),
                format!("echo +{c} > {}/cgroup.subtree_control", up.display()),
            ));
        }
        let on = words(level, "cgroup.subtree_control");
        let off: Vec<&String> = wanted.iter().filter(|c| !on.contains(c)).collect();
        let held = read(level, "cgroup.procs").split_whitespace().count();
        let true_root = crate::hierarchy::is_true_root(&host.path(level));
        if !off.is_empty() && held > 0 && !true_root {
            let names: Vec<&str> = off.iter().map(|c| c.as_str()).collect();
            let fix = match level == root {
                // Our view's root is not the host's: a container with a cgroup
                // namespace of its own, whose processes sit in its root group.
                true => format!(
                    "move those processes into a leaf first, as docker-in-docker does: mkdir \
                     {r}/init && for p in $(cat {r}/cgroup.procs); do echo $p > \
                     {r}/init/cgroup.procs; done",
                    r = root.display()
                ),
                false => "choose a parent beneath a group that holds no processes".to_string(),
            };
            return Some(Finding::fail(
                check,
                format!(
                    "{} holds {held} processes and does not hand on {}: cgroup v2 lets a group \
                     with processes give none to its children (no internal processes)",
                    level.display(),
                    names.join(" ")
                ),
                fix,
            ));
        }
    }
    None
}
// ANCHOR_END: placement

// ANCHOR: beneath_our_own
/// `run --parent .` makes groups beneath our own, as a tool that systemd delegated a
/// subtree to does: on v2 our group must then hand on the controllers, and may hold
/// no processes but ours (we move into a leaf of it first).
fn beneath_our_own(layout: &Layout, host: &Host) -> Option<Finding> {
    let parent = layout.own_v2()?;
    let wanted: Vec<&str> = ESSENTIAL
        .iter()
        .copied()
        .filter(|c| layout.version_of(c, host) == Some(2))
        .collect();
    if wanted.is_empty() || Some(&parent) == layout.v2.as_ref() {
        return None;
    }
    let read = |file: &str| {
        host.read(&parent.join(file).to_string_lossy())
            .unwrap_or_default()
    };
    let check = "--parent . (delegation)";
    let (enabled, offered) = (read("cgroup.subtree_control"), read("cgroup.controllers"));
    let has = |text: &str, c: &str| text.split_whitespace().any(|w| w == c);
    let held = read("cgroup.procs").split_whitespace().count();
    let found = match wanted.iter().find(|c| !has(&offered, c)) {
        Some(c) => format!("{} is not given the {c} controller", parent.display()),
        None if wanted.iter().all(|c| has(&enabled, c)) => {
            return Some(Finding::ok(
                check,
                format!("{} hands on {}", parent.display(), wanted.join(" ")),
            ));
        }
        // Only this doctor: run would move into a leaf, then hand them on.
        None if held <= 1 => {
            return Some(Finding::ok(
                check,
                format!(
                    "we are alone in {}: run moves into a leaf of it, then hands on {}",
                    parent.display(),
                    wanted.join(" ")
                ),
            ));
        }
        None => format!(
            "{} holds {held} processes: none can be handed on (no internal processes)",
            parent.display()
        ),
    };
    Some(Finding::warn(
        check,
        found,
        "only --parent . needs it; for it, run in a scope of its own that systemd delegates: \
         systemd-run --scope -p Delegate=yes ch03-cgroups run --parent . ...",
    ))
}
// ANCHOR_END: beneath_our_own
