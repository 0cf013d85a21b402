//! `doctor` on this host and on fake hosts.

mod common;

use std::path::Path;

use common::*;

const ALL_NS: [&str; 8] = ["uts", "ipc", "pid", "net", "mnt", "user", "cgroup", "time"];
const PRIVATE_ROOT: &str = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
const SHARED_ROOT: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n";

/// A fake host: root, a kernel with the namespaces `ns`, a mount table, an
/// os-release, sysctl files, and a static busybox copied from this host.
fn fake_host(
    kernel: &str,
    ns: &[&str],
    mountinfo: &str,
    os: &str,
    sysctls: &[(&str, &str)],
) -> tempfile::TempDir {
    let dir = open_tempdir();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write("proc/self/status", "Uid:\t0\t0\t0\t0\n");
    write("proc/sys/kernel/osrelease", kernel);
    write("proc/self/mountinfo", mountinfo);
    write("etc/os-release", os);
    for n in ns {
        write(&format!("proc/self/ns/{n}"), "");
    }
    for (path, value) in sysctls {
        write(path, value);
    }
    let busybox =
        ch01_chroot::busybox::find(&labkit::doctor::Host::real()).expect("a busybox on this host");
    std::fs::create_dir_all(dir.path().join("usr/bin")).expect("mkdir");
    std::fs::copy(busybox.path, dir.path().join("usr/bin/busybox")).expect("copy");
    dir
}

fn doctor_at(name: &str, host: &Path, expected: i32) {
    let (code, text) = Learner::new(BIN)
        .redact_path(host, "/fake")
        .env("PATH", "/usr/bin:/bin")
        .args(["doctor", "--host-root"])
        .args([host])
        .transcript();
    assert_eq!(code, expected, "{text}");
    snap(name, &text);
}

#[test]
fn this_host() {
    let (code, text) = Learner::new(BIN).args(["doctor"]).transcript();
    let text = lab_tests::Redactor::doctor().apply(&text);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(code, 0, "{text}");
        snap("doctor", &text);
    }
}

#[test]
fn ubuntu_with_systemd_and_apparmor_restrictions() {
    let host = fake_host(
        "6.8.0-45-generic\n",
        &ALL_NS,
        SHARED_ROOT,
        "ID=ubuntu\nID_LIKE=debian\n",
        &[
            ("proc/sys/user/max_user_namespaces", "63434\n"),
            (
                "proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                "1\n",
            ),
        ],
    );
    doctor_at("doctor-ubuntu-24.04", host.path(), 0);
}

#[test]
fn an_old_debian_kernel() {
    let host = fake_host(
        "4.19.0-27-amd64\n",
        &ALL_NS[..6],
        SHARED_ROOT,
        "ID=debian\n",
        &[
            ("proc/sys/user/max_user_namespaces", "63434\n"),
            ("proc/sys/kernel/unprivileged_userns_clone", "0\n"),
        ],
    );
    doctor_at("doctor-debian-10", host.path(), 0);
}

#[test]
fn user_namespaces_switched_off() {
    let host = fake_host(
        "3.10.0-1160.el7.x86_64\n",
        &ALL_NS[..6],
        PRIVATE_ROOT,
        "ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n",
        &[("proc/sys/user/max_user_namespaces", "0\n")],
    );
    doctor_at("doctor-centos-7", host.path(), 0);
}
