//! What a writable layer holds, in overlay's own format:
//!
//! - a new or changed file or directory is simply there;
//! - a deleted lower file is a **whiteout**: a character device with number 0/0;
//! - a directory that replaced a lower one (so nothing of the lower shows through) is
//!   **opaque**: it carries the xattr `trusted.overlay.opaque = y`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Overlay's opaque-directory marker (trusted.* xattrs need CAP_SYS_ADMIN to read).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Added,
    Changed,
    Deleted,
}

/// One line of `diff`: `A /etc/new`, `C /etc`, `D /etc/old`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    /// Absolute, as seen in the merged view.
    pub path: PathBuf,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let letter = match self.kind {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        };
        write!(f, "{letter} {}", self.path.display())
    }
}

// ANCHOR: whiteout
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

pub fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, OPAQUE_XATTR)
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}
// ANCHOR_END: whiteout

/// The entries of a directory, sorted by name (so that every walk is reproducible).
pub fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
}

// ANCHOR: diff
/// The changes an upper directory holds, like `docker diff`: `D` for whiteouts, and
/// for the rest `C` when a lower has the path, `A` when none does.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Vec<Change> {
    let mut changes = vec![];
    walk(upper, Path::new("/"), lowers, false, &mut changes);
    changes
}

fn walk(dir: &Path, inside: &Path, lowers: &[PathBuf], under_opaque: bool, out: &mut Vec<Change>) {
    for entry in sorted_entries(dir) {
        let name = entry.file_name().unwrap_or_default();
        let path = inside.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&entry) else {
            continue;
        };
        let in_lower = !under_opaque
            && lowers.iter().any(|l| {
                std::fs::symlink_metadata(l.join(path.strip_prefix("/").unwrap_or(&path))).is_ok()
            });
        if is_whiteout(&meta) {
            out.push(Change {
                kind: Kind::Deleted,
                path,
            });
            continue;
        }
        let kind = if in_lower { Kind::Changed } else { Kind::Added };
        out.push(Change {
            kind,
            path: path.clone(),
        });
        if meta.is_dir() {
            walk(
                &entry,
                &path,
                lowers,
                under_opaque || is_opaque(&entry),
                out,
            );
        }
    }
}
// ANCHOR_END: diff
