//! Chapter 04 exercises (book: "Chapter 04 > Exercises"). Ignored in the normal run:
//! each fails until its exercise is solved. Check one with:
//!
//!     cargo test -p ch04-overlayfs --test exercises -- --ignored layer_digest
//!
//! Reference solutions: 04-overlayfs/exercises/*.patch.

mod common;

use std::io::Read;

use common::*;
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A small upper layer packed as .tar.gz.
fn a_layer(t: &std::path::Path) -> std::path::PathBuf {
    write(&t.join("upper/etc/motd"), "hi\n");
    let layer = t.join("layer.tar.gz");
    let out = Learner::new(BIN)
        .args(["-q", "layer", "pack"])
        .args([t.join("upper"), layer.clone()])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    layer
}

#[test]
#[ignore = "exercise 1: layer digest TAR"]
fn layer_digest() {
    let t = open_tempdir();
    let layer = a_layer(t.path());
    let blob = std::fs::read(&layer).expect("read");
    let mut tar = vec![];
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip");
    let out = Learner::new(BIN)
        .args(["-q", "layer", "digest"])
        .args([&layer])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("digest:  {}\ndiff_id: {}\n", sha256(&blob), sha256(&tar))
    );
}

#[test]
#[ignore = "exercise 2: layer unpack --dry-run"]
fn unpack_dry_run() {
    let t = open_tempdir();
    let layer = a_layer(t.path());
    let target = t.path().join("target");
    let out = Learner::new(BIN)
        .args(["-q", "layer", "unpack", "--dry-run"])
        .args([&layer, &target])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.ends_with("etc/motd")),
        "lists what it would write: {}",
        out.stdout
    );
    assert!(!target.exists(), "a dry run writes nothing");
}

#[test]
#[ignore = "exercise 3: mount with no upper: a read-only overlay"]
fn read_only_overlay() {
    needs_root!();
    let t = open_tempdir();
    let d = t.path();
    write(&d.join("a/one"), "1\n");
    write(&d.join("b/two"), "2\n");
    std::fs::create_dir(d.join("merged")).expect("mkdir");
    let out = in_mount_namespace(&format!(
        "cd {}; $OV -q mount --lower a:b merged; cat merged/one merged/two; if echo x > merged/three; then echo WROTE; fi",
        d.display()
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "1\n2\n",
        "both lowers show; nothing can be written"
    );
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
}
