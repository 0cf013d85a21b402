//! `demo` and `doctor`.

mod common;

use common::*;

#[test]
fn the_demo_shows_each_behaviour_and_leaves_nothing() {
    needs_root!();
    let (code, text) = Learner::new(BIN).args(["demo"]).transcript();
    assert_eq!(code, 0, "{text}");
    let text = regex::Regex::new(r"/tmp/ch04-demo-\w+")
        .expect("re")
        .replace_all(&text, "/tmp/ch04-demo-XXXXXX")
        .into_owned();
    for expected in [
        "\"hello from the upper layer\"",
        "a whiteout, c 0 0",
        "yes (trusted.overlay.opaque=y)",
        "D /bin/old-tool",
        "A /notes.txt",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .contains(" overlay ")
    );
    snap("demo", &text);
}

#[test]
fn doctor_on_this_host_and_without_overlayfs() {
    let (code, text) = Learner::new(BIN).args(["doctor"]).transcript();
    let text = lab_tests::Redactor::doctor().apply(&text);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(code, 0, "{text}");
        snap("doctor", &text);
    }
    let fake = open_tempdir();
    for (rel, text) in [
        ("proc/self/status", "Uid:\t0\t0\t0\t0\n"),
        ("proc/sys/kernel/osrelease", "3.10.0\n"),
        ("proc/filesystems", "nodev\tproc\nnodev\ttmpfs\n\text4\n"),
        (
            "proc/self/mountinfo",
            "27 1 8:2 / / rw - ext4 /dev/sda2 rw\n",
        ),
        ("tmp/.keep", ""),
    ] {
        write(&fake.path().join(rel), text);
    }
    let (code, text) = Learner::new(BIN)
        .redact_path(fake.path(), "/fake")
        .env("PATH", "/usr/bin:/bin")
        .args(["doctor", "--host-root"])
        .args([fake.path()])
        .transcript();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("[FAIL] overlayfs: not in /proc/filesystems"),
        "{text}"
    );
    snap("doctor-no-overlay", &text);
}
