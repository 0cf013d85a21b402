//! pivot_root, compared with chroot: chapter 01's escape no longer reaches the host.
//! And what happens when a namespace tool runs inside a chroot.

mod common;

use common::*;

#[test]
fn the_chroot_escape_only_reaches_the_containers_own_root() {
    needs_root!();
    let ch01 = lab_tests::workspace_bin("ch01-chroot");
    let (tmp, rootfs) = rootfs_with(&[&ch01.to_string_lossy()]);
    let (code, text) = ch02(tmp.path())
        .args(["-q", "run", "--pid", "--rootfs"])
        .args([&rootfs])
        .cmd(&["/bin/ch01-chroot", "escape", "/"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    // The outermost / it reaches is the rootfs: pivot_root left no old root.
    let listing = format!("holds: {}\n", ls(&rootfs).join(" "));
    let after = text
        .lines()
        .find(|l| l.starts_with("After the escape"))
        .expect("after line");
    assert!(format!("{after}\n").ends_with(&listing), "{after}");
    snap(
        "escape-in-container",
        &text.replace(&listing, "holds: [THE ROOTFS LISTING]\n"),
    );
}

/// A rootfs with ch02-namespaces in it, and a second rootfs at /inner.
fn nested() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, outer) = rootfs_with(&[BIN]);
    let options = ch01_chroot::rootfs::Options {
        force: true,
        ..Default::default()
    };
    ch01_chroot::rootfs::build(&outer.join("inner"), &options).expect("inner rootfs");
    (tmp, outer)
}

#[test]
fn inside_a_chroot_there_is_no_proc() {
    needs_root!();
    let (tmp, outer) = nested();
    let ch01 = lab_tests::workspace_bin("ch01-chroot");
    let (code, text) = Learner::new(ch01)
        .redact_path(tmp.path(), "/tmp/lab-XXXXXX")
        .args(["-q", "run"])
        .args([&outer])
        .cmd(&[
            "/bin/ch02-namespaces",
            "run",
            "--rootfs",
            "/inner",
            "--",
            "/bin/true",
        ])
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("bad-inside-chroot-no-proc", &text);
}

#[test]
fn inside_a_chroot_slash_is_not_a_mount() {
    needs_root!();
    let (tmp, outer) = nested();
    let ch01 = lab_tests::workspace_bin("ch01-chroot");
    // A mount namespace of our own around it all, so that mounting /proc in the
    // chroot never touches the host's mount table.
    let (code, text) = ch02(tmp.path())
        .args(["-q", "run", "--mount", "--"])
        .args([&ch01])
        .args(["-q", "run"])
        .args([&outer])
        .cmd(&["/bin/sh", "-c", "mount -t proc proc /proc && exec /bin/ch02-namespaces -q run --rootfs /inner -- /bin/true"])
        .redact_path(&ch01, "ch01-chroot")
        .transcript();
    assert_eq!(code, 125, "{text}");
    assert!(
        text.contains("/ is not a mount point: we are inside a chroot"),
        "{text}"
    );
    snap("bad-inside-chroot", &text);
}
