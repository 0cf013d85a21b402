//! `info` and `doctor` on this host and on fake hosts: pure v2 (systemd), pure v1.

mod common;

use std::path::Path;

use common::*;

fn fake(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = open_tempdir();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

const ROOT: (&str, &str) = ("proc/self/status", "Uid:\t0\t0\t0\t0\n");
const KERNEL: (&str, &str) = ("proc/sys/kernel/osrelease", "6.8.0\n");

/// What chapter 02's checks read: every namespace type, and user namespaces allowed.
fn with_namespaces(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = fake(files);
    for ns in ["uts", "ipc", "pid", "net", "mnt", "user", "cgroup", "time"] {
        let p = dir.path().join("proc/self/ns").join(ns);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, "").expect("write");
    }
    std::fs::create_dir_all(dir.path().join("proc/sys/user")).expect("mkdir");
    std::fs::write(
        dir.path().join("proc/sys/user/max_user_namespaces"),
        "63434\n",
    )
    .expect("write");
    dir
}

/// Ubuntu 24.04 as root in an ssh session: pure v2, our group is a systemd session
/// scope holding the shell too, so no controller can be enabled beneath it.
fn systemd_v2() -> tempfile::TempDir {
    with_namespaces(&[
        ROOT,
        KERNEL,
        (
            "proc/self/mountinfo",
            "27 1 8:2 / / rw shared:1 - ext4 /dev/sda2 rw\n35 30 0:30 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n",
        ),
        (
            "proc/self/cgroup",
            "0::/user.slice/user-0.slice/session-4.scope\n",
        ),
        (
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        ),
        (
            "sys/fs/cgroup/user.slice/user-0.slice/session-4.scope/cgroup.controllers",
            "cpu memory pids\n",
        ),
        (
            "sys/fs/cgroup/user.slice/user-0.slice/session-4.scope/cgroup.subtree_control",
            "",
        ),
        (
            "sys/fs/cgroup/user.slice/user-0.slice/session-4.scope/cgroup.procs",
            "1201\n1330\n",
        ),
        ("etc/os-release", "ID=ubuntu\nID_LIKE=debian\n"),
    ])
}

/// Inside a container with a cgroup namespace of its own (docker run --privileged
/// on a v2 host): /sys/fs/cgroup is the container's group, which holds its processes.
fn v2_in_a_container(controllers: &str) -> tempfile::TempDir {
    with_namespaces(&[
        ROOT,
        KERNEL,
        (
            "proc/self/mountinfo",
            "600 500 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        ),
        ("proc/self/cgroup", "0::/\n"),
        ("sys/fs/cgroup/cgroup.controllers", controllers),
        ("sys/fs/cgroup/cgroup.subtree_control", ""),
        ("sys/fs/cgroup/cgroup.procs", "1\n7\n"),
        // Every group but the host's real root has a type.
        ("sys/fs/cgroup/cgroup.type", "domain\n"),
        ("etc/os-release", "ID=debian\n"),
    ])
}

/// CentOS 7: cgroup v1 only, cpu and cpuacct mounted together.
fn v1_only() -> tempfile::TempDir {
    with_namespaces(&[
        ROOT,
        KERNEL,
        (
            "proc/self/mountinfo",
            "27 1 8:2 / / rw - xfs /dev/sda2 rw\n\
          32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
          33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n\
          34 25 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
          35 25 0:31 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
        ),
        (
            "proc/self/cgroup",
            "5:freezer:/\n4:pids:/user.slice\n3:cpuacct,cpu:/user.slice\n2:memory:/user.slice\n",
        ),
        ("etc/os-release", "ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n"),
        ("sys/fs/cgroup/memory/user.slice/cgroup.procs", ""),
        ("sys/fs/cgroup/cpu,cpuacct/user.slice/cgroup.procs", ""),
        ("sys/fs/cgroup/pids/user.slice/cgroup.procs", ""),
        ("sys/fs/cgroup/freezer/cgroup.procs", ""),
    ])
}

fn at(name: &str, verb: &str, host: &Path) {
    let (code, text) = Learner::new(BIN)
        .redact_path(host, "/fake")
        .env("PATH", "/usr/bin:/bin")
        .args([verb, "--host-root"])
        .args([host])
        .transcript();
    assert!(code == 0 || verb == "doctor", "{text}");
    snap(name, &text);
}

#[test]
fn info_on_fake_hosts() {
    at("info-v2-systemd", "info", systemd_v2().path());
    at("info-v1", "info", v1_only().path());
}

#[test]
fn doctor_on_fake_hosts() {
    at("doctor-v2-systemd", "doctor", systemd_v2().path());
    at("doctor-v1", "doctor", v1_only().path());
    at(
        "doctor-v2-in-a-container",
        "doctor",
        v2_in_a_container("cpuset cpu io memory pids\n").path(),
    );
    at(
        "doctor-v2-not-delegated",
        "doctor",
        v2_in_a_container("cpu pids\n").path(),
    );
    at(
        "doctor-no-cgroups",
        "doctor",
        fake(&[
            ROOT,
            KERNEL,
            (
                "proc/self/mountinfo",
                "27 1 8:2 / / rw - ext4 /dev/sda2 rw\n",
            ),
        ])
        .path(),
    );
}

#[test]
fn info_and_doctor_on_this_host() {
    let (code, text) = ch03().args(["info"]).transcript();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("mode:"), "{text}");
    snap_per_lane("info", &text);
    let (code, text) = ch03().args(["doctor"]).transcript();
    let text = lab_tests::Redactor::doctor().apply(&text);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(code, 0, "{text}");
        snap_per_lane("doctor", &text);
    }
}
