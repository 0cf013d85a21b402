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

/// Snapshot a transcript into this chapter's tests/snapshots.
pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

pub use lab_tests::ls;
