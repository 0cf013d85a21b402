//! cgroup v2 delegation: a child group gets a controller only if its parent lists it
//! in `cgroup.subtree_control`. And the "no internal processes" rule: a group that
//! hands controllers to its children may not hold processes itself (the root excepted).
//! So when the tool's own group has processes, and we are the only one, we first move
//! ourselves into a leaf of it, then switch the controllers on.
//!
//! Nothing here is needed on a v1 host, nor on a hybrid host whose v2 tree has no
//! controllers of its own (this project's test machines).

use std::path::{Path, PathBuf};

use labkit::failure::EXIT_TOOL_FAILED;
use labkit::narrate;
use labkit::{Failure, Result};

use crate::files::{self, procs};

/// What we changed, to undo it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub parent: PathBuf,
    /// Controllers we switched on in the parent's subtree_control.
    pub enabled: Vec<String>,
    /// The leaf we moved ourselves into, if the parent had to become process-free.
    pub leaf: Option<PathBuf>,
}

fn words(path: &Path) -> Vec<String> {
    files::read(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

// ANCHOR: delegate
/// Make `controllers` available to new children of `parent` (a v2 directory).
pub fn delegate(
    parent: &Path,
    controllers: &[String],
    is_root: bool,
) -> Result<Option<Delegation>> {
    let enabled = words(&parent.join("cgroup.subtree_control"));
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.contains(c))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let available = words(&parent.join("cgroup.controllers"));
    if let Some(c) = missing.iter().find(|c| !available.contains(c)) {
        let up = parent.parent().unwrap_or(parent).display();
        return Err(Failure::new(format!(
            "the {c} controller is not delegated to {} (not in its cgroup.controllers): \
             enable it one level up (echo +{c} > {up}/cgroup.subtree_control), or run under \
             systemd-run --scope -p Delegate=yes",
            parent.display()
        ))
        .exit_code(EXIT_TOOL_FAILED));
    }
    let me = std::process::id() as i32;
    let inside = procs(parent);
    let mut leaf = None;
    if !is_root && !inside.is_empty() {
        if inside != [me] {
            return Err(Failure::new(format!(
                "{} holds processes ({} of them), and cgroup v2 lets a group with processes hand no \
                 controllers to its children (the no-internal-processes rule). Use --parent with a \
                 group that holds none, or run under systemd-run --scope -p Delegate=yes",
                parent.display(),
                inside.len()
            ))
            .exit_code(EXIT_TOOL_FAILED));
        }
        narrate::note(
            "no internal processes: we are the only process in our group, so we move into a leaf of it first",
        );
        let dir = parent.join(format!("lab-runner-{me}"));
        narrate::step(
            format!("mkdir({dir:?})"),
            format!("mkdir {}", dir.display()),
        );
        std::fs::create_dir(&dir)
            .map_err(|e| Failure::new(format!("mkdir {}: {e}", dir.display())))?;
        files::write(&dir.join("cgroup.procs"), &me.to_string())?;
        leaf = Some(dir);
    }
    let plus: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    files::write(&parent.join("cgroup.subtree_control"), &plus.join(" "))?;
    Ok(Some(Delegation {
        parent: parent.to_path_buf(),
        enabled: missing,
        leaf,
    }))
}
// ANCHOR_END: delegate

/// Undo what `delegate` did, as far as the kernel lets us (a kept group may still
/// need the controllers; then we stay in our leaf, and `rm` removes it later).
pub fn undo(delegation: &Delegation) {
    let minus: Vec<String> = delegation.enabled.iter().map(|c| format!("-{c}")).collect();
    let _ = files::write(
        &delegation.parent.join("cgroup.subtree_control"),
        &minus.join(" "),
    );
    if let Some(leaf) = &delegation.leaf
        && files::write(
            &delegation.parent.join("cgroup.procs"),
            &std::process::id().to_string(),
        )
        .is_ok()
    {
        let _ = std::fs::remove_dir(leaf);
    }
}

/// Leaves of earlier runs whose runner is gone.
pub fn stale_leaves(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("lab-runner-"))
        })
        .filter(|p| procs(p).is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(subtree: &str, controllers: &str, procs: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cgroup.subtree_control"), subtree).expect("write");
        std::fs::write(dir.path().join("cgroup.controllers"), controllers).expect("write");
        std::fs::write(dir.path().join("cgroup.procs"), procs).expect("write");
        dir
    }

    #[test]
    fn nothing_to_do_when_already_delegated() {
        let p = parent("memory pids\n", "cpu memory pids\n", "1\n2\n");
        assert_eq!(delegate(p.path(), &["memory".into()], false).unwrap(), None);
    }

    #[test]
    fn a_controller_the_parent_does_not_have() {
        let p = parent("", "cpu\n", "");
        let err = delegate(p.path(), &["memory".into()], false).unwrap_err();
        assert!(
            err.message()
                .contains("the memory controller is not delegated"),
            "{err}"
        );
    }

    #[test]
    fn other_processes_in_the_parent() {
        let p = parent("", "memory\n", "1\n2\n");
        let err = delegate(p.path(), &["memory".into()], false).unwrap_err();
        assert!(
            err.message().contains("no-internal-processes rule"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_parent_just_gets_the_controllers() {
        let p = parent("", "memory pids\n", "");
        let done = delegate(p.path(), &["memory".into(), "pids".into()], false)
            .unwrap()
            .expect("changed");
        assert_eq!(done.enabled, ["memory", "pids"]);
        assert_eq!(done.leaf, None);
        // A plain file stands for the kernel's: it shows what was written.
        assert_eq!(
            std::fs::read_to_string(p.path().join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
    }
}
