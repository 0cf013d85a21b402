//! `doctor` inside a sandbox host: forwarding off, then a FORWARD policy of DROP
//! (as Docker leaves it), then no iptables at all.

mod common;

use common::*;

fn doctor(sandbox: &Sandbox, path: Option<&str>) -> (i32, String) {
    let mut learner = sandbox.ch05().args(["doctor"]);
    if let Some(path) = path {
        learner = learner.env("PATH", path);
    }
    let (code, text) = learner.transcript();
    // Whether br_netfilter is loaded differs from machine to machine.
    let text = lab_tests::Redactor::doctor()
        .rule(r"(bridge netfilter: ).*", "$1[BR_NETFILTER]")
        .apply(&text);
    (code, text)
}

#[test]
fn doctor_in_a_fresh_network_namespace() {
    needs_root!();
    let sandbox = Sandbox::new();
    let (code, text) = doctor(&sandbox, None);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("[warn] IPv4 forwarding: off"), "{text}");
    snap("doctor", &text);
}

#[test]
fn doctor_explains_a_forward_policy_of_drop() {
    needs_root!();
    let sandbox = Sandbox::new();
    sandbox.host.sh("iptables -w -P FORWARD DROP");
    let (code, text) = doctor(&sandbox, None);
    assert_eq!(code, 0, "{text}");
    let line = text
        .lines()
        .skip_while(|l| !l.contains("FORWARD policy"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(line.contains("DROP (Docker sets this"), "{text}");
    assert!(
        line.contains("iptables -I FORWARD -i BRIDGE -j ACCEPT"),
        "{text}"
    );
    snap("doctor_forward_drop", &line);
}

#[test]
fn doctor_without_iptables() {
    needs_root!();
    let sandbox = Sandbox::new();
    let (code, text) = doctor(&sandbox, Some("/nonexistent"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("[FAIL] iptables: not found on PATH"),
        "{text}"
    );
    assert!(text.contains("apt-get install iptables"), "{text}");
}

#[test]
fn help() {
    let (code, text) = Learner::new(BIN).args(["--help"]).transcript();
    assert_eq!(code, 0, "{text}");
    snap("help", &text);
}
