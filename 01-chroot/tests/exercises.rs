//! The features behind chapter 01's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 01 N` cuts it out for a
//! learner to write again, and `cargo lab check 01 N` runs these tests.

mod common;

use common::*;

#[test]
fn userspec() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let out = Learner::new(BIN)
        .args(["-q", "run", "--userspec", "1000:1001"])
        .args([&rootfs])
        .args(["--", "/bin/sh", "-c", "echo $(id -u):$(id -g); id -G"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "1000:1001\n1001\n",
        "uid, gid, and no supplementary group left but the gid"
    );

    let bad = Learner::new(BIN)
        .args(["-q", "run", "--userspec", "nobody"])
        .args([&rootfs])
        .args(["--", "true"])
        .output();
    assert_ne!(bad.code, 0, "a userspec that is not UID:GID is refused");
    assert!(
        bad.stderr.contains("--userspec"),
        "the message names the flag: {}",
        bad.stderr
    );
}
