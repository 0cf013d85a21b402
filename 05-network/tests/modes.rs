//! Docker's other three network modes, and the point-to-point cable.

mod common;

use common::*;

#[test]
fn none_has_only_loopback_and_it_is_up() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let sandbox = Sandbox::new();
    let (code, text) = sandbox
        .ch05()
        .redact_path(&rootfs, "/tmp/rootfs")
        .args(["-q", "run", "--network", "none", "--rootfs"])
        .arg(&rootfs)
        .cmd(&[
            "sh",
            "-c",
            "ip -o link | cut -d' ' -f2,3; ping -c1 -W1 127.0.0.1 | grep -c 'bytes from'",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    snap("run_none", &redact(&text));
    // No bridge was made for it.
    assert_eq!(sandbox.links(), ["lo"]);
}

#[test]
fn host_shares_the_hosts_interfaces() {
    needs_root!();
    lab_tests::cgroup_free!();
    let mut sandbox = Sandbox::new();
    sandbox.add_neighbour();
    let out = sandbox
        .ch05()
        .args(["-q", "run", "--network", "host"])
        .cmd(&["ip", "-4", "-o", "addr", "show", "lan"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("192.0.2.2/24"), "{}", out.stdout);
    assert_eq!(sandbox.leases("lab0"), Vec::<String>::new());
}

/// The second container joins the first one's network namespace: the same eth0,
/// the same address, and the first one's server on 127.0.0.1.
#[test]
fn container_mode_shares_the_other_containers_interfaces() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let sandbox = Sandbox::new();
    let rootfs = rootfs.to_string_lossy().into_owned();
    let first = sandbox.echo_server(&rootfs, "10.77.0.20", "6000", "hi over lo");
    let (code, text) = sandbox
        .ch05()
        .redact_path(&rootfs, "/tmp/rootfs")
        .args(["-q", "run", "--network"])
        .arg(format!("container:{}", first.pid))
        .args(["--rootfs", &rootfs])
        .cmd(&[
            "sh",
            "-c",
            "ip -4 -o addr show eth0 | cut -d' ' -f2,7; hostname; nc 127.0.0.1 6000",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    let text = regex::Regex::new(r"container:\d+")
        .unwrap()
        .replace(&text, "container:[PID]")
        .into_owned();
    snap("run_container_mode", &redact(&text));
    drop(first);
    sandbox.assert_clean("lab0");
}

#[test]
fn p2p_joins_two_containers_with_one_cable() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let (code, text) = sandbox
        .ch05()
        .args(["-q", "p2p", "--"])
        // The server sends; the client retries until the server listens (both
        // start at once), then prints what it got.
        .args(["busybox", "nc", "-l", "-p", "5000", "-e", "echo", "hello over the cable"])
        .args(["--", "sh", "-c"])
        .arg("busybox ip -4 -o addr show eth0 | cut -d' ' -f2,7; busybox ip route; until busybox nc 10.99.0.1 5000 2>/dev/null; do sleep 0.1; done")
        .transcript();
    assert_eq!(code, 0, "{text}");
    let text = redact(&text);
    assert!(text.contains("eth0 10.99.0.2/32"), "{text}");
    assert!(text.contains("hello over the cable"), "{text}");
    snap("p2p", &text);
    // Nothing in the sandbox host: the cable never touched it.
    assert_eq!(sandbox.links(), ["lo"]);
}
