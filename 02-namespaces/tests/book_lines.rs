//! The shell lines of the chapter's pages beyond "Try it", and the break-it lab of
//! the chapter, run as the pages write them (in a PID namespace of the test's own, so
//! that `pgrep -n sleep` finds the test's sleep).

mod common;

use common::*;
use lab_tests::book_lines::{in_background, isolated, sh_block, typed_into, wait_for};

fn programs() -> &'static std::path::Path {
    std::path::Path::new(BIN).parent().expect("target/debug")
}

/// With a container sleeping (the page's transcript runs one), the namespaces as
/// `lsns` and /proc show them.
#[test]
fn look_from_the_host() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let container = format!(
        "ch02-namespaces -q run --pid --rootfs {} -- sleep 600",
        rootfs.display()
    );
    let mut script = vec![in_background(&container), wait_for("pgrep -x sleep")];
    script.extend(sh_block("ch02/from-the-host.md", "Look from the host"));
    let out = isolated(&script, programs(), "").output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for handle in ["mnt -> mnt:[", "pid -> pid:[", "uts -> uts:["] {
        assert!(out.stdout.contains(handle), "{handle} in {}", out.stdout);
    }
    // `lsns -t pid` lists the container's PID namespace, its first process the sleep.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains(" pid ") && l.ends_with("sleep 600")),
        "{}",
        out.stdout
    );
}

/// Break-it lab 1: in a shell whose / is shared, the doctor says so (a warning: `run`
/// makes / private in its own namespace first).
#[test]
fn break_it_shared_propagation() {
    needs_root!();
    let lines = sh_block("break-it.md", "1. Shared mount propagation");
    let out = isolated(&typed_into(&lines[0], &lines[1..]), programs(), "").output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("[warn] mount propagation of /: / is shared"),
        "{}",
        out.stdout
    );
}
