//! The book check as an mdBook preprocessor, so that `mdbook build` itself fails on
//! a missing include, a broken link or a transcript that no test produces (mdBook
//! alone only logs a missing include, and exits 0).
//!
//! mdBook runs `book-check supports RENDERER` (we support all), then `book-check`
//! with `[context, book]` as JSON on stdin, and reads the book back on stdout: we
//! hand it back unchanged, or exit 1 with the problems on stderr.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("supports") {
        return ExitCode::SUCCESS;
    }
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("book-check: no input: mdBook runs this as a preprocessor");
        return ExitCode::FAILURE;
    }
    let Ok(serde_json::Value::Array(mut pair)) = serde_json::from_str(&input) else {
        eprintln!("book-check: the input is not mdBook's [context, book] JSON");
        return ExitCode::FAILURE;
    };
    let root = pair
        .first()
        .and_then(|ctx| ctx.get("root"))
        .and_then(|r| r.as_str())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let problems = lab_tests::book_check::check_book(&root);
    if !problems.is_empty() {
        eprintln!("book-check: {} problem(s) in the book:", problems.len());
        for p in &problems {
            eprintln!("  {p}");
        }
        return ExitCode::FAILURE;
    }
    let book = pair.pop().unwrap_or_default();
    println!("{book}");
    ExitCode::SUCCESS
}
