//! Bad input: each refused with one sentence that names it, a non-zero exit code,
//! and nothing left behind in the sandbox host (no bridge, no rule, no lease).

mod common;

use common::*;

/// Run `ch05-network ARGS` in a fresh sandbox; expect `code`; nothing may be left.
fn refused(sandbox: &Sandbox, args: &[&str], code: i32) -> String {
    let (got, text) = sandbox.ch05().args(args).transcript();
    assert_eq!(got, code, "{text}");
    text
}

fn nothing_made(sandbox: &Sandbox) {
    assert_eq!(sandbox.links(), ["lo"], "a link was left");
    assert_eq!(sandbox.our_rules(), Vec::<String>::new(), "rules were left");
    assert!(!sandbox.state_dir().exists(), "state was left");
}

#[test]
fn malformed_values_are_refused_before_anything_is_made() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let mut all = String::new();
    for (args, code) in [
        (&["run", "--subnet", "10.77.0.0/33", "--", "true"][..], 125),
        (&["run", "--subnet", "10.77.0.5/24", "--", "true"], 125),
        (&["run", "--subnet", "10.77.0.0/31", "--", "true"], 125),
        (&["run", "--ip", "10.77.1.5", "--", "true"], 125),
        (&["run", "--ip", "10.77.0.1", "--", "true"], 125),
        (
            &["run", "--bridge", "a-bridge-name-too-long", "--", "true"],
            125,
        ),
        (&["run", "-p", "8080", "--", "true"], 2),
        (&["run", "-p", "0:80", "--", "true"], 2),
        (&["run", "-p", "8080:80/sctp", "--", "true"], 2),
        (&["run", "--network", "bogus", "--", "true"], 2),
        (
            &["run", "--network", "none", "-p", "8080:80", "--", "true"],
            125,
        ),
        (&["run", "--network", "host", "--net", "--", "true"], 125),
        (
            &["run", "--network", "container:2147483647", "--", "true"],
            125,
        ),
        (
            &["p2p", "--ips", "10.99.0.1", "--", "true", "--", "true"],
            125,
        ),
        (&["p2p", "--", "true"], 125),
    ] {
        all.push_str(&refused(&sandbox, args, code));
        nothing_made(&sandbox);
    }
    snap("bad_values", &redact(&all));
}

#[test]
fn an_address_or_a_host_port_in_use_is_refused() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let _first = sandbox.background(
        &[
            "run",
            "--ip",
            "10.77.0.9",
            "-p",
            "8080:80",
            "--",
            "sleep",
            "30",
        ],
        "sleep",
    );
    let before = (sandbox.links(), sandbox.our_rules(), sandbox.leases("lab0"));
    let mut all = refused(
        &sandbox,
        &["-q", "run", "--ip", "10.77.0.9", "--", "true"],
        125,
    );
    all += &refused(
        &sandbox,
        &["-q", "run", "-p", "8080:8080", "--", "true"],
        125,
    );
    all += &refused(
        &sandbox,
        &["-q", "run", "-p", "9090:80", "-p", "9090:81", "--", "true"],
        125,
    );
    all += &refused(
        &sandbox,
        &["-q", "run", "--subnet", "10.78.0.0/24", "--", "true"],
        125,
    );
    snap("in_use", &redact(&all));
    assert_eq!(
        (sandbox.links(), sandbox.our_rules(), sandbox.leases("lab0")),
        before
    );
}

/// A subnet overlapping a route of the host is allowed, with a warning that says
/// what will go wrong.
#[test]
fn a_subnet_overlapping_a_route_is_warned_about() {
    needs_root!();
    lab_tests::cgroup_free!();
    let mut sandbox = Sandbox::new();
    sandbox.add_neighbour();
    sandbox.host.sh("ip route add 10.0.0.0/8 via 192.0.2.10");
    let (code, text) = sandbox
        .ch05()
        .args(["-q", "run", "--", "true"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    snap("overlap", &redact(&text));
}

/// No iptables: bridge networking explains what to install, and makes nothing.
#[test]
fn missing_iptables_is_explained() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let (code, text) = sandbox
        .ch05()
        .env("PATH", "/nonexistent")
        .args(["-q", "run", "--", "/bin/true"])
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("no_iptables", &redact(&text));
    nothing_made(&sandbox);
    // Modes that need no NAT still work.
    let (code, text) = sandbox
        .ch05()
        .env("PATH", "/nonexistent")
        .args(["-q", "run", "--network", "none", "--", "/bin/true"])
        .transcript();
    assert_eq!(code, 0, "{text}");
}

/// A rootfs whose /etc links out of it (absolute, relative, or to a directory of
/// the host) must not make `run` write /etc/hosts and friends on the host.
#[test]
fn a_rootfs_whose_etc_links_out_is_refused() {
    needs_root!();
    lab_tests::cgroup_free!();
    let sandbox = Sandbox::new();
    let (tmp, rootfs) = rootfs();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::remove_dir_all(rootfs.join("etc")).expect("rm etc");
    for link in ["/", "../../../../../..", &outside.to_string_lossy()] {
        let _ = std::fs::remove_file(rootfs.join("etc"));
        std::os::unix::fs::symlink(link, rootfs.join("etc")).expect("symlink");
        let (code, text) = sandbox
            .ch05()
            .redact_path(tmp.path(), "/tmp/lab-XXXXXX")
            .args(["-q", "run", "--network", "none", "--rootfs"])
            .arg(&rootfs)
            .cmd(&["true"])
            .transcript();
        assert_eq!(code, 125, "{link}: {text}");
        assert!(text.contains("etc is a symlink"), "{link}: {text}");
        assert_eq!(
            lab_tests::ls(&outside),
            Vec::<String>::new(),
            "{link}: written outside"
        );
        for host_file in ["/hostname", "/hosts", "/resolv.conf"] {
            assert!(
                !std::path::Path::new(host_file).exists(),
                "{link}: {host_file} on the host"
            );
        }
    }
}
