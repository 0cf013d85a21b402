//! Bad layers and bad mounts: each refused with a clear message, nothing written
//! outside the target directory (and, for layers refused up front, nothing at all).

mod common;

use std::path::Path;

use common::*;

/// A tar entry with any name, as an attacker would write it (the tar crate refuses
/// to make such names itself, so the header bytes are written by hand).
fn raw_entry(kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    if kind == tar::EntryType::Char {
        h.set_device_major(8).expect("major");
        h.set_device_minor(0).expect("minor");
    }
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

fn write_tar(path: &Path, entries: &[Vec<u8>]) {
    let mut bytes: Vec<u8> = entries.concat();
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(path, bytes).expect("write tar");
}

/// Unpack a bad layer into `target`; nothing may change in `outside` nor in the target.
fn refused_layer(snapshot: &str, entries: &[Vec<u8>]) {
    let t = open_tempdir();
    let (target, outside) = (t.path().join("target"), t.path().join("outside"));
    std::fs::create_dir_all(&target).expect("mkdir");
    write(&outside.join("keep"), "mine\n");
    let layer = t.path().join("evil.tar");
    write_tar(&layer, entries);
    let (before_target, before_outside) = (view(&target), view(&outside));
    let (code, text) = Learner::new(BIN)
        .redact_path(t.path(), "/tmp/lab-XXXXXX")
        .args(["-q", "layer", "unpack"])
        .args([&layer, &target])
        .transcript();
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        view(&outside),
        before_outside,
        "{snapshot}: something was written outside"
    );
    assert_eq!(
        view(&target),
        before_target,
        "{snapshot}: the layer was refused, yet written"
    );
    snap(snapshot, &text);
}

use tar::EntryType::{Char, Link, Regular, Symlink};

#[test]
fn a_layer_that_climbs_out_with_dotdot() {
    refused_layer(
        "bad-layer-dotdot",
        &[raw_entry(Regular, "../outside/pwned", "", b"x")],
    );
}

#[test]
fn a_layer_with_an_absolute_path() {
    refused_layer(
        "bad-layer-absolute",
        &[raw_entry(Regular, "/tmp/pwned", "", b"x")],
    );
}

#[test]
fn a_layer_that_writes_through_its_own_symlink() {
    refused_layer(
        "bad-layer-symlink",
        &[
            raw_entry(Symlink, "escape", "/tmp", b""),
            raw_entry(Regular, "escape/pwned", "", b"x"),
        ],
    );
}

#[test]
fn a_layer_with_a_hard_link_to_outside() {
    refused_layer(
        "bad-layer-hardlink",
        &[raw_entry(Link, "passwd", "../../etc/passwd", b"")],
    );
}

#[test]
fn a_layer_with_a_device_node() {
    refused_layer("bad-layer-device", &[raw_entry(Char, "dev/sda", "", b"")]);
}

#[test]
fn a_symlink_already_in_the_target_is_never_followed() {
    let t = open_tempdir();
    let (target, outside) = (t.path().join("target"), t.path().join("outside"));
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, target.join("lib")).expect("symlink");
    let layer = t.path().join("layer.tar");
    write_tar(&layer, &[raw_entry(Regular, "lib/pwned", "", b"x")]);
    let out = Learner::new(BIN)
        .args(["-q", "layer", "unpack"])
        .args([&layer, &target])
        .output();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is a symlink; refusing to write through it"),
        "{}",
        out.stderr
    );
    assert!(
        tree(&outside).is_empty(),
        "nothing written through the symlink"
    );
}

fn refused_mount(snapshot: &str, t: &Path, args: &[&str]) {
    let (code, text) = Learner::new(BIN)
        .redact_path(t, "/tmp/lab-XXXXXX")
        .args(["-q", "mount"])
        .args(args)
        .transcript();
    assert_eq!(code, 1, "{text}");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .contains(" overlay ")
    );
    snap(snapshot, &text);
}

#[test]
fn mounts_that_cannot_work() {
    needs_root!();
    let t = open_tempdir();
    let d = t.path();
    for dir in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(d.join(dir)).expect("mkdir");
    }
    let p = |rel: &str| d.join(rel).to_string_lossy().into_owned();
    refused_mount(
        "bad-mount-missing-lower",
        d,
        &[
            "--lower",
            &p("nope"),
            "--upper",
            &p("upper"),
            "--work",
            &p("work"),
            &p("merged"),
        ],
    );
    // /dev/shm is a tmpfs; the temp dir is not.
    let shm = tempfile::Builder::new()
        .prefix("lab-")
        .tempdir_in("/dev/shm")
        .expect("shm");
    let (code, text) = Learner::new(BIN)
        .redact_path(d, "/tmp/lab-XXXXXX")
        .redact_path(shm.path(), "/dev/shm/lab-XXXXXX")
        .args([
            "-q",
            "mount",
            "--lower",
            &p("lower"),
            "--upper",
            &p("upper"),
            "--work",
        ])
        .args([shm.path()])
        .args([&p("merged")])
        .transcript();
    assert_eq!(code, 1, "{text}");
    snap("bad-mount-work-elsewhere", &text);
    refused_mount(
        "bad-mount-merged-is-a-mount",
        d,
        &[
            "--lower",
            &p("lower"),
            "--upper",
            &p("upper"),
            "--work",
            &p("work"),
            "/proc",
        ],
    );
    let many: Vec<String> = (0..501)
        .map(|i| {
            let dir = d.join(format!("l/{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            dir.to_string_lossy().into_owned()
        })
        .collect();
    let joined = many.join(":");
    let out = Learner::new(BIN)
        .args([
            "-q",
            "mount",
            "--lower",
            &joined,
            "--upper",
            &p("upper"),
            "--work",
            &p("work"),
            &p("merged"),
        ])
        .output();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "ch04-overlayfs: --lower: 501 lower directories, but overlayfs stacks at most 500: merge some layers first\n"
    );
}

/// A whiteout names what it deletes after `.wh.`: `.wh...` would delete the
/// directory above (here, the one that holds the target and `outside`).
#[test]
fn a_whiteout_of_the_parent_directory() {
    refused_layer(
        "bad-layer-whiteout-dotdot",
        &[raw_entry(Regular, ".wh...", "", b"")],
    );
}

/// `.wh.` names nothing: it would delete the directory it is in.
#[test]
fn a_whiteout_of_nothing() {
    refused_layer(
        "bad-layer-whiteout-empty",
        &[
            raw_entry(tar::EntryType::Directory, "a/", "", b""),
            raw_entry(Regular, "a/.wh.", "", b""),
        ],
    );
}
