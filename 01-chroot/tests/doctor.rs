//! `doctor` on this host and on fake hosts (trees with proc/, etc/, usr/bin/).

mod common;

use std::path::Path;

use common::*;

/// A fake host: `files` are (path, contents); `busybox` is a host file to copy to
/// usr/bin/busybox.
fn fake_host(files: &[(&str, &str)], busybox: Option<&Path>) -> tempfile::TempDir {
    let dir = open_tempdir();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    if let Some(src) = busybox {
        std::fs::create_dir_all(dir.path().join("usr/bin")).expect("mkdir");
        std::fs::copy(src, dir.path().join("usr/bin/busybox")).expect("copy");
    }
    dir
}

fn doctor_at(name: &str, host: &Path, expected_code: i32) {
    let (code, text) = ch01(host, "/fake")
        .env("PATH", "/usr/bin:/bin")
        .args(["doctor", "--host-root"])
        .args([host])
        .transcript();
    assert_eq!(code, expected_code, "{text}");
    snap(name, &text);
}

const ROOT: (&str, &str) = ("proc/self/status", "Name:\tch01-chroot\nUid:\t0\t0\t0\t0\n");
const KERNEL: (&str, &str) = ("proc/sys/kernel/osrelease", "6.8.0-45-generic\n");

#[test]
fn this_host() {
    let (code, text) = Learner::new(BIN).args(["doctor"]).transcript();
    let text = lab_tests::Redactor::doctor().apply(&text);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(code, 0, "{text}");
        snap("doctor", &text);
    } else {
        assert_eq!(code, 1, "not root is a problem: {text}");
    }
}

#[test]
fn fedora_unprivileged_without_busybox() {
    let host = fake_host(
        &[
            ("proc/self/status", "Uid:\t1000\t1000\t1000\t1000\n"),
            KERNEL,
            ("etc/os-release", "NAME=Fedora\nID=fedora\n"),
        ],
        None,
    );
    doctor_at("doctor-fedora-user-no-busybox", host.path(), 1);
}

#[test]
fn ubuntu_with_a_dynamic_busybox() {
    let dynamic = ["/usr/bin/env", "/bin/env"]
        .into_iter()
        .map(Path::new)
        .find(|p| ch01_chroot::elf::read_needs(p).is_some_and(|n| n.interpreter.is_some()));
    let host = fake_host(
        &[
            ROOT,
            KERNEL,
            ("etc/os-release", "ID=ubuntu\nID_LIKE=debian\n"),
        ],
        dynamic,
    );
    doctor_at("doctor-ubuntu-dynamic-busybox", host.path(), 0);
}

#[test]
fn alpine_with_a_static_busybox() {
    let real = ch01_chroot::busybox::find(&labkit::doctor::Host::real())
        .filter(|b| b.is_static)
        .expect("this test copies the host's static busybox: apt-get install busybox-static");
    let host = fake_host(
        &[ROOT, KERNEL, ("etc/os-release", "ID=alpine\n")],
        Some(&real.path),
    );
    doctor_at("doctor-alpine-static-busybox", host.path(), 0);
}

#[test]
fn an_unknown_system_without_proc() {
    let host = fake_host(&[("etc/os-release", "ID=plan9\n")], None);
    doctor_at("doctor-no-proc", host.path(), 1);
}
