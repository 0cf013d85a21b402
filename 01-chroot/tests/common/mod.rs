//! What every chapter 01 test shares: the binary, a fresh rootfs, and snapshots.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

pub use lab_tests::{Learner, needs_root, open_tempdir};

pub const BIN: &str = env!("CARGO_BIN_EXE_ch01-chroot");

/// `ch01-chroot` as a learner types it, with `dir` shown as `name` in transcripts.
pub fn ch01(dir: &Path, name: &str) -> Learner {
    Learner::new(BIN).redact_path(dir, name)
}

/// A busybox rootfs in a fresh temp dir: (the temp dir, the rootfs in it).
pub fn busybox_rootfs() -> (tempfile::TempDir, PathBuf) {
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let out = Learner::new(BIN)
        .args(["-q", "rootfs"])
        .args([&rootfs])
        .args(["--from", "busybox"])
        .output();
    assert_eq!(out.code, 0, "rootfs failed: {}", out.stderr);
    (tmp, rootfs)
}

/// Snapshots are named by the test, with no expression in the header, so that the
/// book can include their body: the body starts on line 4.
pub fn snap(name: &str, text: &str) {
    insta::with_settings!({ omit_expression => true, prepend_module_to_snapshot => false, snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The names in a directory, sorted: what `ls` prints.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
