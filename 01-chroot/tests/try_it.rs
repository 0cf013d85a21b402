//! The "Try it" lines of the chapter's first page, run as the page writes them (its
//! `/tmp/rootfs` a temp dir of the test's own).

mod common;

use common::*;

#[test]
fn the_chapters_try_it_lines_run_as_written() {
    needs_root!();
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let lines = lab_tests::book_lines::try_it(
        "ch01/index.md",
        &[("/tmp/rootfs", &rootfs.to_string_lossy())],
    );
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = lab_tests::book_lines::shell(&lines, programs).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("hi\n"), "{}", out.stdout);
    assert!(out.stdout.contains("we are out"), "{}", out.stdout);
}
