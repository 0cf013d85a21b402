//! The "Try it" lines of the chapter's first page, run as the page writes them: in
//! a network namespace that plays the host, with a rootfs of the test's own.

mod common;

use common::*;

#[test]
fn the_chapters_try_it_lines_run_as_written() {
    needs_root!();
    let sandbox = Sandbox::new();
    let (_tmp, rootfs) = rootfs();
    let lines = lab_tests::book_lines::try_it(
        "ch05/index.md",
        &[("/tmp/rootfs", &rootfs.to_string_lossy())],
    );
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = sandbox
        .enter(lab_tests::book_lines::shell(&lines, programs))
        .output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("default via 10.77.0.1"),
        "{}",
        out.stdout
    );
    assert!(
        !sandbox.state_dir().exists(),
        "`down` removed the bridge's state"
    );
}
