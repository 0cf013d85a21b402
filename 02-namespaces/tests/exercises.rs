//! Chapter 02 exercises (book: "Chapter 02 > Exercises"). Ignored in the normal run:
//! each fails until its exercise is solved. Check one with:
//!
//!     cargo test -p ch02-namespaces --test exercises -- --ignored domainname
//!
//! Reference solutions: 02-namespaces/exercises/*.patch.

mod common;

use common::*;

fn run(args: &[&str]) -> lab_tests::Outcome {
    Learner::new(BIN).args(["-q", "run"]).args(args).output()
}

#[test]
#[ignore = "exercise 1: run --domainname NAME"]
fn domainname() {
    needs_root!();
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname");
    let out = run(&[
        "--domainname",
        "lab.example",
        "--",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "lab.example\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname"),
        host,
        "the host's is unchanged"
    );
}

#[test]
#[ignore = "exercise 2: run --tmpfs PATH"]
fn tmpfs() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let r = rootfs.to_string_lossy().into_owned();
    let out = run(&[
        "--pid",
        "--rootfs",
        &r,
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--",
        "/bin/sh",
        "-c",
        "grep -E ' /(tmp|run) ' /proc/mounts | cut -d' ' -f1-3; echo scratch > /tmp/file",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "tmpfs /tmp tmpfs\ntmpfs /run tmpfs\n");
    assert!(
        !rootfs.join("tmp/file").exists(),
        "what is written to a tmpfs never reaches the rootfs"
    );
    let alone = run(&["--tmpfs", "/tmp", "--", "true"]);
    assert_eq!(alone.code, 125, "--tmpfs without --rootfs is refused");
    assert!(alone.stderr.contains("--tmpfs"), "{}", alone.stderr);
}

#[test]
#[ignore = "exercise 3: run --time --boottime-offset SECONDS"]
fn boottime_offset() {
    needs_root!();
    let uptime = |text: &str| {
        text.split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok())
            .expect("uptime")
    };
    for via in ["clone", "unshare"] {
        let out = run(&[
            "--time",
            "--boottime-offset",
            "86400",
            "--via",
            via,
            "--",
            "cat",
            "/proc/uptime",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let host = uptime(&std::fs::read_to_string("/proc/uptime").expect("uptime"));
        let inside = uptime(&out.stdout);
        assert!(
            (inside - host - 86400.0).abs() < 5.0,
            "--via {via}: inside {inside}, host {host}"
        );
    }
}
