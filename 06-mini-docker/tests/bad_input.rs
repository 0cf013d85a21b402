//! Bad input: Docker's messages and exit codes, and nothing half-made.

mod common;

use common::*;

#[test]
fn refused_before_anything_is_made() {
    needs_root!();
    let docker = Docker::new();
    // The image first, so that each refusal below is about its own flag.
    assert_eq!(
        docker.out(&["create", "--network", "none", "busybox"]).code,
        0
    );
    let before = docker.containers();
    let mut all = String::new();
    for args in [
        &["run", "nosuchimage"][..],
        &["run", "-p", "8080", "busybox"],
        &["run", "-m", "12XB", "busybox"],
        &["run", "--cpus", "lots", "busybox"],
        &["run", "--pids-limit", "-5", "busybox"],
        &["run", "--security-opt", "seccomp=profile.json", "busybox"],
        &["run", "--security-opt", "apparmor=unconfined", "busybox"],
        &["run", "-e", "=oops", "busybox"],
        &["run", "--name", "bad/name", "busybox"],
        &["run", "--network", "bogus", "busybox"],
        &["run", "--network", "none", "-p", "8080:80", "busybox"],
        &["run", "--entrypoint", "", "busybox"],
        &["run", "-v", "/tmp:relative", "busybox"],
        &["run", "-v", "/tmp:/x:rx", "busybox"],
        &["run", "--env-file", "/nonexistent", "busybox"],
        &["run", "--cpuset-cpus", "one-two", "busybox"],
        &["run", "-u", "root", "busybox"],
        &["run", "--tmpfs", "tmp", "busybox"],
        &["run", "--cgroupns", "shared", "busybox"],
        &["run", "--cgroup-parent", "../escape", "busybox"],
        &["run", "--device-write-bps", "/dev/null:1mb", "busybox"],
        &[
            "run",
            "--device-read-iops",
            "/dev/nonexistent:100",
            "busybox",
        ],
        &["run", "--device", "/dev/nonexistent", "busybox"],
        &["run", "--device", "/etc/passwd:/dev/passwd", "busybox"],
        &["run", "--device", "/dev/null:/dev/x:rwx", "busybox"],
        &["run", "--device", "/dev/null:dev/x", "busybox"],
    ] {
        let (code, text) = docker.md().args(args).transcript();
        assert_eq!(code, 125, "{text}");
        all.push_str(&text);
        assert_eq!(docker.containers(), before, "{text}: a container was left");
    }
    snap("refused", &redact(&all));
}

#[test]
fn a_name_in_use_and_a_running_container() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("one", &["busybox", "sleep", "30"]);
    let mut all = String::new();
    for (args, code) in [
        (
            &[
                "run",
                "--name",
                "one",
                "--network",
                "none",
                "busybox",
                "true",
            ][..],
            125,
        ),
        (&["rm", "one"], 1),
        (&["exec", "-w", "relative", "one", "pwd"], 125),
        (&["exec", "one", "nosuch"], 127),
        (&["kill", "-s", "NOSUCH", "one"], 125),
        (&["stop", "nosuch"], 1),
        (
            &[
                "create",
                "--name",
                "stopped",
                "--network",
                "none",
                "busybox",
                "true",
            ],
            0,
        ),
        (&["exec", "stopped", "true"], 125),
    ] {
        let (got, text) = docker.md().args(args).transcript();
        assert_eq!(got, code, "{text}");
        all.push_str(&text);
    }
    snap("in_use", &redact(&all));
    assert_eq!(docker.containers().len(), 2);
}

/// A damaged state file: said so plainly, and `rm -f` still removes everything.
#[test]
fn a_damaged_state_file() {
    needs_root!();
    let docker = Docker::new();
    let out = docker.out(&[
        "create",
        "--name",
        "broken",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = out.stdout.trim().to_string();
    let state = docker
        .root()
        .join("containers")
        .join(&id)
        .join("state.json");
    std::fs::write(&state, "{\"Status\": \"runn").expect("damage");
    let mut all = String::new();
    for (args, code) in [
        (&["ps", "-a"][..], 0),
        (&["start", "broken"], 1),
        (&["rm", "broken"], 1),
        (&["rm", "-f", "broken"], 0),
        (&["ps", "-a"], 0),
    ] {
        let (got, text) = docker.md().args(args).transcript();
        assert_eq!(got, code, "{text}");
        all.push_str(&text);
    }
    snap("damaged_state", &redact(&all));
    assert_eq!(docker.containers(), Vec::<String>::new());
}
