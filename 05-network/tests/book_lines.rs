//! The shell lines of the chapter's pages beyond "Try it", and the chapter's break-it
//! lab, run as the pages write them: in a network namespace that plays the host, and a
//! PID and mount namespace of the test's own (`pgrep -n httpd` finds its httpd; the
//! name `c1` goes into a /run/netns of its own, not the host's).

mod common;

use common::*;
use lab_tests::book_lines::{isolated, replaced, sh_block};

fn programs() -> &'static std::path::Path {
    std::path::Path::new(BIN).parent().expect("target/debug")
}

/// /run/netns, made if the host had none, and removed again (when still empty).
struct NetnsDir(bool);

impl NetnsDir {
    fn made() -> NetnsDir {
        let path = std::path::Path::new("/run/netns");
        NetnsDir(!path.exists() && std::fs::create_dir(path).is_ok())
    }
}

impl Drop for NetnsDir {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_dir("/run/netns");
        }
    }
}

/// A container serving /etc on a published port, seen with ip, bridge, iptables and
/// conntrack; then ended, and the bridge taken down (the test's own lines).
#[test]
fn look_from_the_host() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let (_tmp, rootfs) = rootfs();
    let state = sandbox.state_dir().display().to_string();
    // The name c1 goes into a /run/netns of the script's own (a tmpfs on it, in its
    // mount namespace); a host without /run/netns (no `ip netns add` yet) gets one
    // for the test's time.
    let _run_netns = NetnsDir::made();
    let mut script = vec!["mount -t tmpfs lab-netns /run/netns".to_string()];
    script.extend(replaced(
        sh_block("ch05/from-the-host.md", "Look from the host"),
        &[
            ("/tmp/rootfs", &rootfs.to_string_lossy()),
            ("/run/ch05-network/net-*/", &format!("{state}/")),
        ],
    ));
    script.extend([
        "kill $pid; wait".to_string(),
        "ch05-network -q down".to_string(),
    ]);
    let out = sandbox.enter(isolated(&script, programs(), "")).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for seen in [
        "lab0             UP             10.77.0.1/",
        "default via 10.77.0.1 dev eth0",
        "-j MASQUERADE",
        "dport=8080",
    ] {
        assert!(out.stdout.contains(seen), "{seen:?} in {}", out.stdout);
    }
    assert!(
        !sandbox.state_dir().exists(),
        "down removed the bridge's state"
    );
}

/// Break-it lab 2: forwarding off. The doctor warns, and `run` still works (it turns
/// forwarding back on).
#[test]
fn break_it_forwarding_off() {
    needs_root!();
    lab_tests::cgroup_free!();
    let lines = sh_block("break-it.md", "2. Forwarding off");
    let sandbox = Sandbox::new();
    let out = sandbox.enter(isolated(&lines, programs(), "")).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("net.ipv4.ip_forward = 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[warn] IPv4 forwarding"),
        "{}",
        out.stdout
    );
}
