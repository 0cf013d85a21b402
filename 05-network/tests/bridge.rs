//! Bridge mode, as a learner types it: an address, the gateway, a neighbour on the
//! same bridge, NAT on the way out, published ports on the way in, and nothing
//! left behind.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use common::*;

fn ip_of(output: &str) -> Option<Ipv4Addr> {
    output
        .split_whitespace()
        .find_map(|w| w.split('/').next()?.parse().ok())
}

#[test]
fn a_container_gets_an_address_and_reaches_its_gateway() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let sandbox = Sandbox::new();
    let (code, text) = sandbox
        .ch05()
        .redact_path(&rootfs, "/tmp/rootfs")
        .args(["run", "--rootfs"])
        .arg(&rootfs)
        .cmd(&[
            "sh",
            "-c",
            "ip -4 -o addr show eth0 | cut -d' ' -f2,7; ip route; cat /etc/hostname /etc/hosts; \
             ping -c1 -W2 10.77.0.1 | grep 'bytes from'",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    let text = redact(&text);
    let text = regex::Regex::new(r"time=[0-9.]+ ms")
        .unwrap()
        .replace(&text, "time=[T] ms");
    assert!(text.contains("eth0 10.77.0.2/24"), "{text}");
    assert!(text.contains("default via 10.77.0.1 dev eth0"), "{text}");
    snap("run_bridge", &text);
    sandbox.assert_clean("lab0");
}

#[test]
fn two_containers_on_one_bridge_reach_each_other() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let sandbox = Sandbox::new();
    let rootfs = rootfs.to_string_lossy().into_owned();
    let _first = sandbox.echo_server(&rootfs, "10.77.0.10", "5000", "hi from 10.77.0.10");
    let out = sandbox
        .ch05()
        .args(["-q", "run", "--rootfs", &rootfs])
        .cmd(&["sh", "-c", "ip -4 -o addr show eth0; nc 10.77.0.10 5000"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("hi from 10.77.0.10"), "{}", out.stdout);
    assert_ne!(
        ip_of(&out.stdout.replace("eth0", "")),
        Some(Ipv4Addr::new(10, 77, 0, 10))
    );
}

/// A server published with -p answers the sandbox host itself (on 127.0.0.1 and
/// on its own address) and a neighbour host, with the FORWARD policy at DROP as
/// Docker leaves it.
#[test]
fn a_published_port_answers_from_the_host_and_from_another_host() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let mut sandbox = Sandbox::new();
    let (_, client) = sandbox.add_neighbour();
    sandbox.host.sh("iptables -w -P FORWARD DROP");
    let rootfs = rootfs.to_string_lossy().into_owned();
    let mut server = sandbox.background(
        &[
            "run", "-p", "8080:80", "--rootfs", &rootfs, "--", "httpd", "-f", "-p", "80", "-h",
            "/www",
        ],
        "httpd",
    );
    // httpd runs: wait until it listens.
    wait_until("httpd to listen", || {
        fetch(&sandbox.host, SocketAddr::from(([127, 0, 0, 1], 8080)), GET).ok()
    });
    for (from, to) in [
        (&sandbox.host, SocketAddr::from(([127, 0, 0, 1], 8080))),
        (&sandbox.host, SocketAddr::from((HOST_IP, 8080))),
        (
            &sandbox.neighbours[client],
            SocketAddr::from((HOST_IP, 8080)),
        ),
    ] {
        let answer = fetch(from, to, GET).expect("an answer");
        assert!(
            answer.contains("hello from the container"),
            "{to}: {answer}"
        );
    }
    assert_eq!(server.stop(), 137);
    sandbox.assert_clean("lab0");
}

/// Egress NAT: "the outside" (a neighbour with no route to the containers' subnet)
/// sees the connection come from the host's address.
#[test]
fn the_outside_sees_the_hosts_address_not_the_containers() {
    needs_root!();
    lab_tests::cgroup_free!();
    let (_tmp, rootfs) = rootfs();
    let mut sandbox = Sandbox::new();
    let (outside_ip, outside) = sandbox.add_neighbour();
    sandbox.host.sh("iptables -w -P FORWARD DROP");
    let seen = accept_one(
        &sandbox.neighbours[outside],
        SocketAddr::from((outside_ip, 7000)),
    );
    let out = sandbox
        .ch05()
        .args(["-q", "run", "--rootfs"])
        .arg(&rootfs)
        .cmd(&["sh", "-c", &format!("echo hi | nc {outside_ip} 7000")])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let peer = seen.join().expect("listener").expect("a connection");
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(HOST_IP),
        "masqueraded source"
    );
    sandbox.assert_clean("lab0");
}

#[test]
fn ten_runs_at_once_get_ten_addresses() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    // The bridge first: its creation is not what is raced here.
    sandbox.ch05().args(["-q", "run", "--", "true"]).output();
    let runs: Vec<_> = (0..10)
        .map(|_| {
            std::process::Command::new("nsenter")
                .arg(format!("--net={}", sandbox.host.path()))
                .args([
                    BIN,
                    "-q",
                    "run",
                    "--",
                    "sh",
                    "-c",
                    "ip -4 -o addr show eth0",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let addresses: Vec<Ipv4Addr> = runs
        .into_iter()
        .map(|r| {
            let out = r.wait_with_output().expect("wait");
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout).replace("eth0", "");
            ip_of(&text).expect("an address")
        })
        .collect();
    let distinct: BTreeSet<_> = addresses.iter().collect();
    assert_eq!(distinct.len(), 10, "{addresses:?}");
    sandbox.assert_clean("lab0");
}

/// Ctrl-C reaches the container (the whole foreground process group gets it); `run`
/// then removes its published port rules and releases its address.
#[test]
fn ctrl_c_leaves_nothing_behind() {
    needs_root!();
    lab_tests::cgroup_free!();
    use std::os::unix::process::CommandExt;
    let sandbox = Sandbox::new();
    let mut tool = std::process::Command::new("nsenter")
        .arg(format!("--net={}", sandbox.host.path()))
        .args([BIN, "-q", "run", "-p", "8081:80", "--", "sleep", "30"])
        .process_group(0)
        .spawn()
        .expect("spawn");
    let tool_pid = tool.id();
    wait_until("the container", || {
        children(tool_pid).into_iter().find(|c| comm(*c) == "sleep")
    });
    assert_eq!(sandbox.leases("lab0").len(), 1);
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(tool_pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("killpg");
    let status = tool.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    sandbox.assert_clean("lab0");
}

/// `run` killed with SIGKILL cannot clean up: the next run takes the lease back
/// (and removes the dead run's port rules) once its container is gone too.
#[test]
fn a_lease_whose_holders_are_gone_is_taken_back() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let mut killed = sandbox.background(&["run", "-p", "8082:80", "--", "sleep", "30"], "sleep");
    let _ = killed.tool.kill();
    let _ = killed.tool.wait();
    assert_eq!(
        sandbox.leases("lab0"),
        ["10.77.0.2"],
        "the container still holds it"
    );
    killed.stop();
    let (code, text) = sandbox
        .ch05()
        .args(["run", "-p", "8082:80", "--", "true"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    let text = redact(&text);
    assert!(
        text.contains("# 10.77.0.2 was held by process [PID], which is gone: taken back"),
        "{text}"
    );
    assert!(text.contains("lease 10.77.0.3"), "{text}");
    sandbox.assert_clean("lab0");
}

#[test]
fn show_lists_the_bridge_its_containers_and_rules() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let _web = sandbox.background(&["run", "-p", "8080:80", "--", "sleep", "30"], "sleep");
    let (code, text) = sandbox.ch05().args(["show"]).transcript();
    assert_eq!(code, 0, "{text}");
    snap("show", &redact(&text));
}

#[test]
fn down_removes_the_bridge_and_its_rules_but_not_while_in_use() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let mut web = sandbox.background(&["run", "--", "sleep", "30"], "sleep");
    let (code, text) = sandbox.ch05().args(["down"]).transcript();
    assert_eq!(code, 1, "{text}");
    snap("down_in_use", &redact(&text));
    web.stop();
    let (code, text) = sandbox.ch05().args(["down"]).transcript();
    assert_eq!(code, 0, "{text}");
    snap("down", &redact(&text));
    assert_eq!(sandbox.links(), ["lo"]);
    assert_eq!(sandbox.our_rules(), Vec::<String>::new());
    assert!(!sandbox.state_dir().exists());
}

/// The kernel takes a finished container's veth down in the background; a new
/// container given the same address soon after finds it still there, and replaces it.
#[test]
fn a_lingering_veth_of_the_same_address_is_replaced() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    sandbox.ch05().args(["-q", "run", "--", "true"]).output();
    sandbox
        .host
        .sh("ip link add veth0a4d0005 type veth peer name lingering");
    let out = sandbox
        .ch05()
        .args(["-q", "run", "--ip", "10.77.0.5"])
        .cmd(&["ip", "-4", "-o", "addr", "show", "eth0"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("10.77.0.5/24"), "{}", out.stdout);
    sandbox.assert_clean("lab0");
}
