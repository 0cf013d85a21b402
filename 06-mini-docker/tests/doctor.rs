//! `mini-docker doctor`: every chapter's checks, each once; and `--help`.

mod common;

use common::*;

#[test]
fn doctor_runs_every_chapters_checks_once() {
    needs_root!();
    let docker = Docker::new();
    let (code, text) = docker.md().args(["doctor"]).transcript();
    assert_eq!(code, 0, "{text}");
    let text = lab_tests::Redactor::doctor()
        .rule(r"(bridge netfilter: ).*", "$1[BR_NETFILTER]")
        .apply(&text);
    for check in [
        "static busybox",
        "namespace types",
        "cgroup version",
        "overlayfs",
        "IPv4 forwarding",
        "FORWARD policy",
    ] {
        assert_eq!(
            text.matches(&format!("] {check}:")).count(),
            1,
            "{check}: {text}"
        );
    }
    // The cgroup checks describe this host's layout: snapshotted once per lane.
    snap_per_lane("doctor", &text);
}

#[test]
fn help() {
    let (code, text) = Learner::new(BIN).args(["--help"]).transcript();
    assert_eq!(code, 0, "{text}");
    snap("help", &text);
}
