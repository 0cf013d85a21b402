//! What every chapter 04 test shares.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use lab_tests::{Learner, needs_root, open_tempdir, tree};

pub const BIN: &str = env!("CARGO_BIN_EXE_ch04-overlayfs");

pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Run a shell script in a private mount namespace of its own (`unshare -m`), with
/// `$OV` set to this chapter's binary: mounts made there vanish with it, pass or fail.
pub fn in_mount_namespace(script: &str) -> lab_tests::Outcome {
    Learner::new("unshare")
        .env("OV", BIN)
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-ec",
            script,
        ])
        .output()
}

/// Everything that makes a tree what it is: per path, its type, mode, content or
/// link target, and user xattrs. Two trees with the same view are equal.
pub fn view(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for rel in tree(root) {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        let what = if meta.file_type().is_symlink() {
            format!(
                "link -> {}",
                std::fs::read_link(&path).expect("link").display()
            )
        } else if meta.is_dir() {
            "dir".to_string()
        } else if meta.file_type().is_char_device() {
            format!("char {}", meta.rdev())
        } else {
            format!("file {:?}", std::fs::read(&path).expect("read"))
        };
        let mut xattrs: Vec<String> = xattr::list(&path)
            .into_iter()
            .flatten()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.starts_with("user."))
            .map(|n| format!("{n}={:?}", xattr::get(&path, &n).ok().flatten()))
            .collect();
        xattrs.sort();
        let mode = if meta.file_type().is_symlink() {
            0
        } else {
            meta.permissions().mode() & 0o7777
        };
        out.insert(rel, format!("{what} mode {mode:o} {}", xattrs.join(",")));
    }
    out
}
