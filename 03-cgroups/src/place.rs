//! Where a group goes, and what is made and switched on to put it there.
//!
//! Docker's cgroupfs driver puts each container at `/docker/ID` in every hierarchy:
//! in a group of its own at the top, never beneath the shell that started it. On a
//! systemd host that shell sits in a leaf like `/user.slice/user-1000.slice/session-3.scope`
//! that holds processes, and cgroup v2 lets a group with processes hand no controllers
//! to its children (the no-internal-processes rule). So this chapter does the same:
//! its groups go to `/ch03-cgroups/lab-NAME`, mini-docker's to `/mini-docker/ID`. A
//! relative `--parent` starts from the group we run in (`--parent .` is beneath our
//! own): that is where [delegation](crate::delegate) is learnt.
//!
//! We leave the host as we found it. The levels we make are labelled with an extended
//! attribute (`user.lab.made-by`) and go when the last group in them goes; controllers
//! we switch on in a level we did not make are recorded on that level
//! (`user.lab.enabled`) and switched off once nothing of ours is left beneath it. One
//! tool at a time makes or removes levels: it holds a lock on the hierarchy's root
//! directory meanwhile.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::Flock;

use crate::delegate;
use crate::files::{self, label, set_label};
use crate::hierarchy::{Layout, join};

/// The label of every level (and of every group directly beneath a level we did not
/// make) that one of our tools made: its value is the tool's name.
pub const MADE_BY: &str = "user.lab.made-by";
/// The controllers we switched on in a level we did not make.
pub const ENABLED: &str = "user.lab.enabled";

/// Where a group goes, in every hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// An absolute path from each hierarchy's root, or a path relative to the group
    /// we run in (`.` is our own).
    pub parent: String,
    /// The group's own directory.
    pub leaf: String,
}

// ANCHOR: place
impl Place {
    /// `parent` checked: a path of plain names, no `..` (it could leave the hierarchy).
    pub fn new(parent: &str, leaf: &str) -> Result<Place> {
        let plain = Path::new(parent).components().all(|c| match c {
            Component::Normal(name) => name
                .to_str()
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_graphic() && c != '\\')),
            Component::RootDir | Component::CurDir => true,
            Component::ParentDir | Component::Prefix(_) => false,
        });
        if parent.is_empty() || !plain {
            return Err(Failure::new(format!(
                "--parent {parent:?}: use a cgroup path such as /ch03-cgroups (from the root of \
                 each hierarchy) or . (beneath our own group); no '..'"
            )));
        }
        Ok(Place {
            parent: parent.to_string(),
            leaf: leaf.to_string(),
        })
    }

    /// The parent directory in the hierarchy mounted at `root`, where we sit at `own`.
    pub fn parent_in(&self, root: &Path, own: &str) -> PathBuf {
        match self.parent.starts_with('/') {
            true => join(root, &self.parent),
            false => join(root, own).join(&self.parent).components().collect(),
        }
    }
}
// ANCHOR_END: place

/// One tool at a time makes or removes levels and switches controllers: a lock on
/// the first hierarchy's root directory (flock works on any directory).
pub fn lock(layout: &Layout) -> Result<Option<Flock<File>>> {
    layout
        .roots()
        .first()
        .map(|root| labkit::lock::lock_directory_itself(root))
        .transpose()
}

/// The levels from the root down to `parent`, the root first.
fn levels(root: &Path, parent: &Path) -> Vec<PathBuf> {
    let mut levels: Vec<PathBuf> = parent
        .ancestors()
        .take_while(|p| p.starts_with(root))
        .map(Path::to_path_buf)
        .collect();
    levels.reverse();
    levels
}

// ANCHOR: prepare
/// Make the missing levels from `root` down to `parent`, each labelled as ours, and
/// on v2 switch on, at every level on the way, the controllers the limits need and
/// those that account (memory, cpu, pids, io: runc switches on all there are), so
/// that a group made in `parent` gets them (see [`delegate::enable`]).
pub fn prepare(root: &Path, parent: &Path, needed: &[String]) -> Result<()> {
    let v2 = root.join("cgroup.subtree_control").exists();
    for level in levels(root, parent) {
        let made = !level.exists();
        if made {
            files::mkdir(&level)?;
            mark(&level);
            copy_cpuset(&level);
        }
        if v2 {
            delegate::enable(&level, needed, made)?;
        }
    }
    Ok(())
}

// ANCHOR_END: prepare

/// Label a directory as made by this tool: the label says whose it is when the
/// last group in it goes.
pub fn mark(dir: &Path) {
    let tool = labkit::failure::program();
    if let Err(failure) = set_label(dir, MADE_BY, &tool) {
        narrate::note(format!(
            "{failure}: cgroupfs keeps user.* labels from Linux 5.7 on; without one this \
             level stays when its last group goes, as Docker's /docker does"
        ));
    }
}

/// Whether one of our tools made `dir`.
pub fn is_ours(dir: &Path) -> bool {
    label(dir, MADE_BY).is_some()
}

/// A new cgroup v1 cpuset starts with no CPUs and no memory nodes, and then takes
/// no tasks nor children with any: give a level we made its parent's.
fn copy_cpuset(level: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let here = level.join(file);
        let empty = files::read(&here).is_some_and(|v| v.trim().is_empty());
        let above = level.parent().and_then(|p| files::read(&p.join(file)));
        if let (true, Some(value)) = (empty, above) {
            let _ = files::write(&here, value.trim());
        }
    }
}

// ANCHOR: tidy
/// After a group in `parent` is gone: remove the levels we made that are now empty,
/// bottom up; at the first level we did not make, switch off what we switched on
/// there, unless something of ours is still beneath it.
pub fn tidy(root: &Path, parent: &Path) {
    let mut level = parent.to_path_buf();
    while level != root && is_ours(&level) {
        if !children(&level).is_empty() || !files::rmdir(&level) {
            return;
        }
        let Some(up) = level.parent() else { return };
        level = up.to_path_buf();
    }
    delegate::undo(&level);
}
// ANCHOR_END: tidy

/// The child groups of a directory.
pub fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_absolute_or_relative_to_our_own_group() {
        let root = Path::new("/sys/fs/cgroup");
        let own = "/user.slice/session-3.scope";
        let top = Place::new("/ch03-cgroups", "lab-x").unwrap();
        assert_eq!(
            top.parent_in(root, own),
            PathBuf::from("/sys/fs/cgroup/ch03-cgroups")
        );
        let ours = Place::new(".", "lab-x").unwrap();
        assert_eq!(
            ours.parent_in(root, own),
            PathBuf::from("/sys/fs/cgroup/user.slice/session-3.scope")
        );
        let under = Place::new("lab/work", "lab-x").unwrap();
        assert_eq!(
            under.parent_in(root, own),
            PathBuf::from("/sys/fs/cgroup/user.slice/session-3.scope/lab/work")
        );
        for bad in ["", "..", "/a/../b", "a b", "a\\b"] {
            assert!(Place::new(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn levels_from_the_root_down() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            levels(root, Path::new("/sys/fs/cgroup/a/b")),
            [
                PathBuf::from("/sys/fs/cgroup"),
                "/sys/fs/cgroup/a".into(),
                "/sys/fs/cgroup/a/b".into()
            ]
        );
        assert_eq!(levels(root, root), [PathBuf::from("/sys/fs/cgroup")]);
    }
}
