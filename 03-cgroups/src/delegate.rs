//! cgroup v2 delegation: a child group gets a controller only if its parent lists it
//! in `cgroup.subtree_control`. And the "no internal processes" rule: a group that
//! hands controllers to its children may hold no processes itself (the real root
//! excepted). So when a level we switch controllers on in holds processes, and we are
//! the only one (`--parent .` under `systemd-run --scope -p Delegate=yes`), we first
//! move ourselves into a leaf of it; when others are there, we cannot.
//!
//! What we switch on in a level we did not make is recorded on it
//! ([`ENABLED`](crate::place::ENABLED)), and [`undo`] switches it off again.

use std::path::Path;

use labkit::narrate;
use labkit::{Failure, Result};

use crate::files::{self, label, procs, remove_label, set_label, words};
use crate::hierarchy::is_true_root;
use crate::place::{ENABLED, children, is_ours};

/// The leaf a tool moves into when its own group must give up its processes.
pub const RUNNER_PREFIX: &str = "lab-runner-";

/// The v2 controllers a group gets whenever they are offered, for its accounting
/// (memory used, CPU time, tasks, bytes read and written), limits or not: runc
/// switches on every controller there is.
pub const ACCOUNTING: [&str; 4] = ["memory", "cpu", "pids", "io"];

// ANCHOR: enable
/// Make the `needed` controllers available to new children of `level` (a v2
/// directory), and those of [`ACCOUNTING`] it offers when that costs no move.
/// `made`: we made `level` just now (nothing to record: it goes when it is empty).
pub fn enable(level: &Path, needed: &[String], made: bool) -> Result<()> {
    let enabled = words(&level.join("cgroup.subtree_control"));
    let available = words(&level.join("cgroup.controllers"));
    let off = |c: &String| !enabled.contains(c);
    let mut missing: Vec<String> = needed.iter().filter(|c| off(c)).cloned().collect();
    let accounting: Vec<String> = ACCOUNTING
        .iter()
        .map(|c| c.to_string())
        .filter(|c| off(c) && available.contains(c) && !missing.contains(c))
        .collect();
    // Accounting alone is no reason to move anyone: only where nothing is in the way.
    let free = is_true_root(level) || procs(level).is_empty();
    if missing.is_empty() && (accounting.is_empty() || !free) {
        return Ok(());
    }
    if let Some(c) = missing.iter().find(|c| !available.contains(c)) {
        let up = level.parent().unwrap_or(level).display();
        return Err(Failure::new(format!(
            "the {c} controller is not delegated to {} (not in its cgroup.controllers): \
             enable it one level up (echo +{c} > {up}/cgroup.subtree_control), or run under \
             systemd-run --scope -p Delegate=yes",
            level.display()
        )));
    }
    leave_for_a_leaf(level)?;
    missing.extend(accounting);
    let plus: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    files::write(&level.join("cgroup.subtree_control"), &plus.join(" "))?;
    if !made {
        let mut record = label(level, ENABLED).map_or_else(Vec::new, |r| {
            r.split_whitespace().map(str::to_string).collect::<Vec<_>>()
        });
        for c in missing {
            if !record.contains(&c) {
                record.push(c);
            }
        }
        if let Err(failure) = set_label(level, ENABLED, &record.join(" ")) {
            narrate::note(format!(
                "{failure}: without the record, they stay switched on afterwards"
            ));
        }
    }
    Ok(())
}
// ANCHOR_END: enable

// ANCHOR: no_internal_processes
/// The no-internal-processes rule, before switching controllers on in `level`: it
/// must hold no processes (unless it is the real root). If we are the only one, we
/// move into a leaf of it ([`undo`] moves us back); if others are there, nothing can
/// be done from here.
fn leave_for_a_leaf(level: &Path) -> Result<()> {
    let inside = procs(level);
    if is_true_root(level) || inside.is_empty() {
        return Ok(());
    }
    let me = std::process::id() as i32;
    if inside != [me] {
        return Err(Failure::new(format!(
            "{} holds processes ({} of them), and cgroup v2 lets a group with processes hand no \
             controllers to its children (the no-internal-processes rule). Leave out --parent \
             (groups then go to a group of their own at the top), or run under \
             systemd-run --scope -p Delegate=yes",
            level.display(),
            inside.len()
        )));
    }
    narrate::note(
        "no internal processes: we are the only process in this group, so we move into a leaf of it first",
    );
    let leaf = level.join(format!("{RUNNER_PREFIX}{me}"));
    files::mkdir(&leaf)?;
    files::write(&leaf.join("cgroup.procs"), &me.to_string())
}
// ANCHOR_END: no_internal_processes

// ANCHOR: undo
/// Switch off what we switched on in `level`, once none of our groups is beneath it;
/// then leave our leaf (and earlier runs' empty ones). The kernel refuses to switch
/// off a controller a child still hands on (EBUSY): that one stays recorded.
pub fn undo(level: &Path) {
    if children(level).iter().any(|c| is_ours(c)) {
        return;
    }
    if let Some(record) = label(level, ENABLED) {
        let mut kept = vec![];
        for c in record.split_whitespace() {
            if files::write(&level.join("cgroup.subtree_control"), &format!("-{c}")).is_err() {
                kept.push(c);
            }
        }
        match kept.is_empty() {
            true => remove_label(level, ENABLED),
            false => {
                let _ = set_label(level, ENABLED, &kept.join(" "));
            }
        }
    }
    let me = std::process::id() as i32;
    for leaf in children(level).into_iter().filter(|c| {
        c.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(RUNNER_PREFIX))
    }) {
        let mine = procs(&leaf) == [me];
        if mine && files::write(&level.join("cgroup.procs"), &me.to_string()).is_err() {
            continue; // the level still hands on controllers: we stay in our leaf
        }
        if procs(&leaf).is_empty() {
            files::rmdir(&leaf);
        }
    }
}
// ANCHOR_END: undo

#[cfg(test)]
mod tests {
    use super::*;

    fn level(subtree: &str, controllers: &str, procs: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cgroup.subtree_control"), subtree).expect("write");
        std::fs::write(dir.path().join("cgroup.controllers"), controllers).expect("write");
        std::fs::write(dir.path().join("cgroup.procs"), procs).expect("write");
        // Not the real root: every other group has a cgroup.type.
        std::fs::write(dir.path().join("cgroup.type"), "domain\n").expect("write");
        dir
    }

    #[test]
    fn nothing_to_do_when_already_delegated() {
        // cpu is offered but not on: accounting alone moves no one.
        let l = level("memory pids\n", "cpu memory pids\n", "1\n2\n");
        enable(l.path(), &["memory".into()], false).unwrap();
        assert_eq!(
            std::fs::read_to_string(l.path().join("cgroup.subtree_control")).unwrap(),
            "memory pids\n",
            "nothing written"
        );
    }

    #[test]
    fn a_controller_the_level_does_not_have() {
        let l = level("", "cpu\n", "");
        let err = enable(l.path(), &["memory".into()], false).unwrap_err();
        assert!(
            err.message()
                .contains("the memory controller is not delegated"),
            "{err}"
        );
    }

    #[test]
    fn other_processes_in_the_level() {
        let l = level("", "memory\n", "1\n2\n");
        let err = enable(l.path(), &["memory".into()], false).unwrap_err();
        assert!(
            err.message().contains("no-internal-processes rule"),
            "{err}"
        );
    }

    #[test]
    fn the_real_root_may_hold_processes() {
        let l = level("", "memory\n", "1\n2\n");
        std::fs::remove_file(l.path().join("cgroup.type")).expect("rm");
        enable(l.path(), &["memory".into()], true).unwrap();
        assert!(
            !l.path()
                .join(format!("{RUNNER_PREFIX}{}", std::process::id()))
                .exists()
        );
    }

    #[test]
    fn an_empty_level_just_gets_the_controllers() {
        let l = level("", "cpuset memory pids io\n", "");
        enable(l.path(), &["cpuset".into()], true).unwrap();
        // A plain file stands for the kernel's: it shows what was written (the
        // needed one, and those that account).
        assert_eq!(
            std::fs::read_to_string(l.path().join("cgroup.subtree_control")).unwrap(),
            "+cpuset +memory +pids +io"
        );
    }
}
