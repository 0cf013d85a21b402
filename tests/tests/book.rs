//! The book builds from what the code and the tests really are.

use std::path::Path;

#[test]
fn every_include_link_and_transcript_in_the_book_is_sound() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../book");
    let problems = lab_tests::book_check::check_book(&book);
    assert!(
        problems.is_empty(),
        "the book has {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
