//! The shell lines of the chapter's pages beyond "Try it", run as the pages write
//! them: `/tmp/rootfs` and `/tmp/upper` the test's own, in a PID and mount namespace
//! of the test's (`pgrep -n sleep` finds its sleep; its mounts end with it).

mod common;

use common::*;
use lab_tests::book_lines::{isolated, replaced, sh_block};

fn programs() -> &'static std::path::Path {
    std::path::Path::new(BIN).parent().expect("target/debug")
}

/// A busybox rootfs and a fresh upper, for the page's `/tmp/rootfs` and `/tmp/upper`.
fn dirs() -> (tempfile::TempDir, Vec<(&'static str, String)>) {
    let t = open_tempdir();
    let rootfs = t.path().join("rootfs");
    ch01_chroot::rootfs::build(&rootfs, &Default::default()).expect("rootfs");
    let paths = vec![
        ("/tmp/rootfs", rootfs.display().to_string()),
        ("/tmp/upper", t.path().join("upper").display().to_string()),
    ];
    (t, paths)
}

fn with_paths(block: Vec<String>, paths: &[(&str, String)]) -> Vec<String> {
    let paths: Vec<(&str, &str)> = paths.iter().map(|(f, t)| (*f, t.as_str())).collect();
    replaced(block, &paths)
}

/// The overlay of a running container, from its mount table and from inside.
#[test]
fn look_from_the_host_by_hand() {
    needs_root!();
    let (_t, paths) = dirs();
    let out = isolated(
        &with_paths(sh_block("ch04/from-the-host.md", "By hand"), &paths),
        programs(),
        "",
    )
    .output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(" - overlay "),
        "mountinfo: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("overlay / overlay rw,"),
        "/proc/mounts: {}",
        out.stdout
    );
}

/// A whiteout and an opaque directory in the kept upper.
#[test]
fn a_whiteout_by_hand() {
    needs_root!();
    let (_t, paths) = dirs();
    let out = isolated(
        &with_paths(
            sh_block("ch04/from-the-host.md", "A whiteout, by hand"),
            &paths,
        ),
        programs(),
        "",
    )
    .output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("c--------- "), "{}", out.stdout);
    assert!(out.stdout.contains(" root root 0, 0 "), "{}", out.stdout);
    assert!(
        out.stdout.contains("trusted.overlay.opaque=\"y\""),
        "{}",
        out.stdout
    );
}

/// The mount line of the chapter's first page, its placeholders made directories (in
/// the directory it runs in: the line as it is).
#[test]
fn the_mount_line_of_the_first_page() {
    needs_root!();
    let t = open_tempdir();
    for name in ["L1", "L2", "U", "W", "MERGED"] {
        std::fs::create_dir(t.path().join(name)).expect("mkdir");
    }
    write(&t.path().join("L2/from-l2"), "2");
    let mut script = vec![format!("cd {}", t.path().display())];
    script.extend(sh_block("ch04/index.md", "04 overlayfs"));
    script.push("cat MERGED/from-l2".to_string());
    let out = isolated(&script, programs(), "").output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "2");
}
