//! Bad input: a message naming the flag and the fix, exit code 125, nothing created.

mod common;

use common::*;

fn refused(snapshot: &str, args: &[&str]) {
    let name = unique(snapshot);
    let (code, text) = Learner::new(BIN)
        .args(["-q", "run", "--name", &name])
        .args(args)
        .args(["--", "true"])
        .redact_path(&name, "NAME")
        .transcript();
    assert_eq!(code, 125, "{text}");
    assert!(
        leftovers(&name).is_empty(),
        "{snapshot}: {:?}",
        leftovers(&name)
    );
    snap(snapshot, &text);
}

#[test]
fn sizes() {
    refused("bad-memory-12XB", &["--memory", "12XB"]);
    refused("bad-memory-negative", &["--memory", "-64m"]);
    refused(
        "bad-memory-swap-below-memory",
        &["--memory", "64m", "--memory-swap", "32m"],
    );
}

#[test]
fn cpus() {
    refused("bad-cpus-0", &["--cpus", "0"]);
    refused("bad-cpus-negative", &["--cpus", "-1"]);
    refused("bad-cpus-word", &["--cpus", "half"]);
    refused("bad-cpus-too-many", &["--cpus", "4096"]);
    refused("bad-cpuset-no-such-cpu", &["--cpuset", "4095"]);
    refused("bad-cpuset-not-a-list", &["--cpuset", "zero"]);
}

#[test]
fn pids_and_weights() {
    refused("bad-pids-too-many", &["--pids-limit", "5000000"]);
    refused("bad-pids-negative", &["--pids", "-5"]);
    refused("bad-cpu-weight", &["--cpu-weight", "20000"]);
}

#[test]
fn disk_throttles() {
    refused("bad-throttle-no-rate", &["--device-read-bps", "/dev/null"]);
    refused(
        "bad-throttle-not-a-path",
        &["--device-write-bps", "sda:1mb"],
    );
    refused(
        "bad-throttle-not-a-block-device",
        &["--device-write-bps", "/dev/null:1mb"],
    );
    refused(
        "bad-throttle-no-such-device",
        &["--device-read-iops", "/dev/nonexistent:100"],
    );
}

#[test]
fn parents() {
    refused("bad-parent-dotdot", &["--parent", "../.."]);
    refused("bad-parent-empty", &["--parent", ""]);
}

#[test]
fn names() {
    for (snapshot, name) in [
        ("bad-name-slash", "a/b"),
        ("bad-name-dotdot", ".."),
        ("bad-name-empty", ""),
    ] {
        let (code, text) = Learner::new(BIN)
            .args(["-q", "run", "--name", name, "--", "true"])
            .transcript();
        assert_eq!(code, 125, "{text}");
        snap(snapshot, &text);
    }
}

#[test]
fn a_name_that_exists_already() {
    needs_root!();
    let name = unique("twice");
    let kept = KeptGroup::new(&name, &[]);
    let (code, text) = ch03()
        .args(["-q", "run", "--name", &name, "--", "true"])
        .redact_path(&name, "twice")
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap_per_lane("bad-name-exists", &text);
    assert_eq!(kept.remove().code, 0);
    assert!(leftovers(&name).is_empty());
}

#[test]
fn a_controller_missing_on_this_host() {
    use ch03_cgroups::group::Group;
    use ch03_cgroups::hierarchy::Layout;
    use ch03_cgroups::limits::Limits;
    // A v1 host with memory and cpu, but no pids controller mounted.
    let mut layout = Layout::default();
    layout
        .v1
        .insert("memory".into(), "/nonexistent/memory".into());
    layout.v1.insert("cpu".into(), "/nonexistent/cpu".into());
    let host = labkit::doctor::Host::at("/nonexistent");
    let limits = Limits {
        pids: Some(10),
        ..Default::default()
    };
    let place = ch03_cgroups::place::Place::new("/ch03-cgroups", "lab-x").expect("a place");
    let failure = Group::create(&layout, &host, &place, &limits).expect_err("refused");
    assert_eq!(labkit::failure::ExitCodes::RunsACommand.of(&failure), 125);
    snap(
        "bad-controller-missing",
        &format!("{}\n", failure.message()),
    );
}

#[test]
fn groups_that_do_not_exist() {
    for verb in ["stats", "freeze", "rm"] {
        let out = Learner::new(BIN).args([verb, "no-such-group"]).output();
        assert_eq!(out.code, 1, "{verb}");
        assert_eq!(
            out.stderr,
            "ch03-cgroups: no group named no-such-group here (ch03-cgroups ls lists them)\n"
        );
    }
}
