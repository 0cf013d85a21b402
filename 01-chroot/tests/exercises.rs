//! Chapter 01 exercises (book: "Chapter 01 > Exercises"). Each check is ignored in
//! the normal run because it fails until the exercise is solved. Check one with:
//!
//!     cargo test -p ch01-chroot --test exercises -- --ignored userspec
//!
//! Reference solutions: 01-chroot/exercises/*.patch (`cargo lab exercises` proves
//! that each check fails on the starting code and passes with its solution).

mod common;

use common::*;

#[test]
#[ignore = "exercise 1: ch01-chroot run --userspec UID:GID"]
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

#[test]
#[ignore = "exercise 2: ch01-chroot run --drop-chroot-cap"]
fn drop_chroot_cap() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let chroot_again = |flags: &[&str]| {
        Learner::new(BIN)
            .args(["-q", "run"])
            .args(flags)
            .args([&rootfs])
            .args(["--", "chroot", "/", "/bin/true"])
            .output()
    };
    assert_eq!(
        chroot_again(&[]).code,
        0,
        "without the flag, root may chroot again"
    );
    let dropped = chroot_again(&["--drop-chroot-cap"]);
    assert_ne!(dropped.code, 0, "with it, chroot(2) is refused");
    assert!(
        dropped.stderr.contains("Operation not permitted"),
        "{}",
        dropped.stderr
    );
    // The escape needs chroot(2), so it is closed too.
    let escape = Learner::new(BIN)
        .args(["-q", "run", "--drop-chroot-cap"])
        .args([&rootfs])
        .args(["--", "/bin/sh", "-c", "cd / && chroot tmp /bin/true"])
        .output();
    assert_ne!(escape.code, 0);
}

#[test]
#[ignore = "exercise 3: ch01-chroot run --workdir DIR"]
fn workdir() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let run = |dir: &str| {
        Learner::new(BIN)
            .args(["-q", "run", "--workdir", dir])
            .args([&rootfs])
            .args(["--", "/bin/sh", "-c", "pwd"])
            .output()
    };
    let out = run("/etc");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "/etc\n", "the directory inside the new root");
    let missing = run("/nonexistent");
    assert_eq!(
        missing.code, 125,
        "a missing directory is our failure: {}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("/nonexistent"),
        "{}",
        missing.stderr
    );
}
