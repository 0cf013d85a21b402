//! The shell lines of the chapter's pages beyond "Try it", run as the pages write
//! them (`/tmp/rootfs` a rootfs of the test's own).

mod common;

use common::*;
use lab_tests::book_lines::{in_background, isolated, replaced, sh_block, shell, wait_for};

fn programs() -> &'static std::path::Path {
    std::path::Path::new(BIN).parent().expect("target/debug")
}

/// Terminal 1 runs a sleep in the rootfs, terminal 2 looks at it through /proc.
#[test]
fn look_from_the_host() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let lines = replaced(
        sh_block("ch01/from-the-host.md", "Look from the host"),
        &[("/tmp/rootfs", &rootfs.to_string_lossy())],
    );
    let mut script = vec![in_background(&lines[0]), wait_for("pgrep -x sleep")];
    script.extend_from_slice(&lines[1..]);
    let out = isolated(&script, programs(), "").output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // `ls -la /proc/PID/root/` lists the rootfs: busybox's directories.
    for dir in [" bin\n", " etc\n", " proc\n"] {
        assert!(out.stdout.contains(dir), "{dir:?} in {}", out.stdout);
    }
}

/// A host program copied into the busybox rootfs without its loader: the run fails,
/// and says what is missing.
#[test]
fn see_the_loader_fail() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let lines = replaced(
        sh_block("ch01/exercises.md", "Without a check: see the loader fail"),
        &[("/tmp/rootfs", &rootfs.to_string_lossy())],
    );
    let (copy, run) = lines.split_at(1);
    let out = shell(copy, programs()).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = shell(run, programs()).output();
    assert_ne!(out.code, 0, "it ran: {}", out.stdout);
    assert!(
        out.stderr.contains("/bin/hostls is here, but its loader"),
        "{}",
        out.stderr
    );
}
