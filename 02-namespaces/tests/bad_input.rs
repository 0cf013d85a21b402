//! Requests that cannot work: each explained, with exit code 125, nothing created.

mod common;

use common::*;

fn refused(name: &str, uid: Option<u32>, args: &[&str], code: i32) {
    let tmp = open_tempdir();
    let mut learner = ch02(tmp.path()).args(args);
    if let Some(uid) = uid {
        learner = learner.as_uid(uid);
    }
    let (got, text) = learner.transcript();
    assert_eq!(got, code, "{text}");
    snap(name, &text);
}

#[test]
fn namespaces_without_root_and_without_a_user_namespace() {
    needs_root!(); // to become an unprivileged user
    refused(
        "bad-not-root",
        Some(USER),
        &["-q", "run", "--pid", "--", "true"],
        125,
    );
}

#[test]
fn a_rootless_rootfs_without_a_pid_namespace() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let (code, text) = ch02(tmp.path())
        .as_uid(USER)
        .args(["-q", "run", "--user", "--rootfs"])
        .args([&rootfs])
        .cmd(&["true"])
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("bad-rootless-rootfs-without-pid", &text);
}

#[test]
fn a_rootfs_without_the_command() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let (code, text) = ch02(tmp.path())
        .args(["-q", "run", "--pid", "--rootfs"])
        .args([&rootfs])
        .cmd(&["/bin/bash"])
        .transcript();
    assert_eq!(code, 127, "{text}");
    snap("bad-command-not-in-rootfs", &text);
}

#[test]
fn a_rootfs_that_does_not_exist() {
    needs_root!();
    let tmp = open_tempdir();
    let missing = tmp.path().join("nope").to_string_lossy().into_owned();
    let (code, text) = ch02(tmp.path())
        .args(["-q", "run", "--rootfs", &missing, "--", "true"])
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("bad-rootfs-missing", &text);
}

#[test]
fn a_hostname_too_long() {
    refused(
        "bad-hostname",
        None,
        &["-q", "run", "--hostname", &"x".repeat(65), "--", "true"],
        125,
    );
}

/// A host tree whose kernel lacks some namespace types (`have` lists those it has).
fn old_kernel(have: &[&str]) -> tempfile::TempDir {
    let dir = open_tempdir();
    std::fs::create_dir_all(dir.path().join("proc/self/ns")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("proc/sys/kernel")).expect("mkdir");
    std::fs::write(dir.path().join("proc/sys/kernel/osrelease"), "4.19.0\n").expect("write");
    std::fs::write(dir.path().join("proc/self/status"), "Uid:\t0\t0\t0\t0\n").expect("write");
    for ns in have {
        std::fs::write(dir.path().join("proc/self/ns").join(ns), "").expect("write");
    }
    dir
}

#[test]
fn a_kernel_without_time_or_cgroup_namespaces() {
    use ch02_namespaces::namespace::Namespace;
    use ch02_namespaces::plan::{Request, plan};
    let tree = old_kernel(&["uts", "ipc", "pid", "net", "mnt", "user"]);
    let host = labkit::doctor::Host::at(tree.path());
    let mut messages = String::new();
    for ns in [Namespace::Time, Namespace::Cgroup] {
        let request = Request {
            namespaces: [ns].into(),
            command: vec!["true".into()],
            ..Default::default()
        };
        let failure = plan(request, &host).expect_err("refused");
        assert_eq!(labkit::failure::ExitCodes::RunsACommand.of(&failure), 125);
        messages.push_str(&format!("{}\n", failure.message()));
    }
    // --all takes only what this kernel has.
    let request = Request {
        all: true,
        command: vec!["true".into()],
        ..Default::default()
    };
    let planned = plan(request, &host).expect("--all works");
    assert!(
        !planned.has(Namespace::Time)
            && !planned.has(Namespace::Cgroup)
            && planned.has(Namespace::Pid)
    );
    snap("bad-old-kernel", &messages);
}
