//! The features behind chapter 05's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 05 N` cuts it out for a
//! learner to write again, and `cargo lab check 05 N` runs these tests.

mod common;

use common::*;

#[test]
fn veth_mtu() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .ch05()
        .args(["-q", "run", "--mtu", "1400"])
        .cmd(&["ip", "-o", "link", "show", "eth0"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("mtu 1400"), "inside: {}", out.stdout);
    // The bridge side too: both ends of a cable must agree.
    let _running = sandbox.background(&["run", "--mtu", "1400", "--", "sleep", "30"], "sleep");
    let host_end = sandbox.host.sh("ip -o link show master lab0");
    assert!(host_end.contains("mtu 1400"), "host end: {host_end}");
}
