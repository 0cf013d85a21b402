//! The "Try it" lines of the chapter's first page, run as the page writes them.

mod common;

use common::*;

#[test]
fn the_chapters_try_it_lines_run_as_written() {
    needs_root!();
    let lines = lab_tests::book_lines::try_it("ch04/index.md", &[]);
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = lab_tests::book_lines::shell(&lines, programs).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}
