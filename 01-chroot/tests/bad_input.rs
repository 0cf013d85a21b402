//! Every bad input the chapter names: the message, the exit code, and that nothing
//! was left behind.

mod common;

use common::*;
use lab_tests::tree;

const NOBODY: u32 = 65534;

/// Run `args` as root (or as `uid`), expect `code`, snapshot the transcript as `name`.
fn refused(name: &str, tmp: &std::path::Path, uid: Option<u32>, args: &[&str], code: i32) {
    let mut learner = ch01(tmp, "/tmp/lab-XXXXXX").args(args);
    if let Some(uid) = uid {
        learner = learner.as_uid(uid);
    }
    let before = tree(tmp);
    let (got, text) = learner.transcript();
    assert_eq!(got, code, "{text}");
    assert_eq!(tree(tmp), before, "{name}: something was written");
    snap(name, &text);
}

fn path(tmp: &tempfile::TempDir, rel: &str) -> String {
    tmp.path().join(rel).to_string_lossy().into_owned()
}

#[test]
fn run_with_a_missing_rootfs() {
    needs_root!();
    let tmp = open_tempdir();
    refused(
        "bad-run-missing-rootfs",
        tmp.path(),
        None,
        &["run", &path(&tmp, "nope"), "--", "sh"],
        125,
    );
}

#[test]
fn run_with_a_file_as_rootfs() {
    needs_root!();
    let tmp = open_tempdir();
    std::fs::write(tmp.path().join("file"), "not a tree").expect("write");
    refused(
        "bad-run-file-rootfs",
        tmp.path(),
        None,
        &["run", &path(&tmp, "file"), "--", "sh"],
        125,
    );
}

#[test]
fn run_and_escape_without_root() {
    needs_root!(); // to become nobody
    let (tmp, rootfs) = busybox_rootfs();
    let rootfs = rootfs.to_string_lossy().into_owned();
    refused(
        "bad-run-not-root",
        tmp.path(),
        Some(NOBODY),
        &["-q", "run", &rootfs, "--", "sh"],
        125,
    );
    refused(
        "bad-escape-not-root",
        tmp.path(),
        Some(NOBODY),
        &["-q", "escape", &rootfs],
        1,
    );
}

#[test]
fn run_without_a_command() {
    let tmp = open_tempdir();
    refused(
        "bad-run-no-command",
        tmp.path(),
        None,
        &["run", &path(&tmp, "rootfs")],
        2,
    );
}

#[test]
fn rootfs_onto_a_regular_file() {
    let tmp = open_tempdir();
    std::fs::write(tmp.path().join("file"), "mine").expect("write");
    refused(
        "bad-rootfs-file",
        tmp.path(),
        None,
        &["-q", "rootfs", &path(&tmp, "file")],
        1,
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("file")).expect("read"),
        "mine"
    );
}

#[test]
fn rootfs_into_a_directory_we_cannot_write() {
    needs_root!(); // to become nobody
    let tmp = open_tempdir();
    std::fs::create_dir(tmp.path().join("roots-only")).expect("mkdir");
    // As nobody: an existing directory owned by root, and a new one under it.
    refused(
        "bad-rootfs-not-writable",
        tmp.path(),
        Some(NOBODY),
        &["-q", "rootfs", &path(&tmp, "roots-only")],
        1,
    );
    refused(
        "bad-rootfs-cannot-create",
        tmp.path(),
        Some(NOBODY),
        &["-q", "rootfs", &path(&tmp, "roots-only/new")],
        1,
    );
}

#[test]
fn rootfs_into_a_foreign_non_empty_directory() {
    let tmp = open_tempdir();
    std::fs::create_dir(tmp.path().join("photos")).expect("mkdir");
    std::fs::write(tmp.path().join("photos/cat.jpg"), "meow").expect("write");
    refused(
        "bad-rootfs-not-empty",
        tmp.path(),
        None,
        &["-q", "rootfs", &path(&tmp, "photos")],
        1,
    );
}

#[test]
fn rootfs_over_a_system_directory_even_with_force() {
    let tmp = open_tempdir();
    let before = tree(std::path::Path::new("/tmp/bin")).len();
    refused(
        "bad-rootfs-system-dir",
        tmp.path(),
        None,
        &["-q", "rootfs", "/tmp", "--force"],
        1,
    );
    assert_eq!(tree(std::path::Path::new("/tmp/bin")).len(), before);
}

#[test]
fn rootfs_from_busybox_without_busybox() {
    let tmp = open_tempdir();
    std::fs::create_dir(tmp.path().join("empty-bin")).expect("mkdir");
    let learner = ch01(tmp.path(), "/tmp/lab-XXXXXX")
        .env("PATH", &path(&tmp, "empty-bin"))
        .args(["-q", "rootfs", &path(&tmp, "rootfs"), "--from", "busybox"]);
    let before = tree(tmp.path());
    let (code, text) = learner.transcript();
    assert_eq!(code, 1, "{text}");
    assert_eq!(tree(tmp.path()), before, "nothing created");
    snap("bad-rootfs-no-busybox", &text);
}

#[test]
fn rootfs_from_an_unknown_source() {
    let tmp = open_tempdir();
    refused(
        "bad-rootfs-unknown-source",
        tmp.path(),
        None,
        &["rootfs", &path(&tmp, "r"), "--from", "alpine"],
        2,
    );
}

#[test]
fn rootfs_with_a_program_that_does_not_exist() {
    let tmp = open_tempdir();
    refused(
        "bad-rootfs-add-missing",
        tmp.path(),
        None,
        &["-q", "rootfs", &path(&tmp, "r"), "--add", "no-such-program"],
        1,
    );
}
