//! The shell lines the book tells a learner to type, taken from the page itself, so
//! that a test runs exactly what the page says (and fails when the page changes into
//! something that does not work).

use std::path::{Path, PathBuf};

use crate::Learner;

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src")
}

/// The lines of the first ```sh block under the heading that starts with `heading`
/// on `page` (relative to book/src, e.g. `ch03/exercises.md`).
pub fn sh_block(page: &str, heading: &str) -> Vec<String> {
    let path = book_src().join(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .skip_while(|l| {
            !(l.starts_with('#') && l.trim_start_matches('#').trim().starts_with(heading))
        })
        .skip_while(|l| l.trim() != "```sh");
    assert!(
        lines.next().is_some(),
        "{page}: no ```sh block under {heading:?}"
    );
    lines
        .take_while(|l| l.trim() != "```")
        .map(str::to_string)
        .collect()
}

/// A chapter's "Try it" block (`ch01/index.md`), with paths a test must not touch
/// (`/tmp/rootfs`: the learner's own) replaced by its own.
pub fn try_it(page: &str, replace: &[(&str, &str)]) -> Vec<String> {
    sh_block(page, "Try it")
        .into_iter()
        .map(|line| {
            replace
                .iter()
                .fold(line, |line, (from, to)| line.replace(from, to))
        })
        .collect()
}

/// A line as root types it: the book's `sudo ` in front of each command left out
/// (the tests run as root, and CI's machine need not have sudo).
pub fn as_root(line: &str) -> String {
    let mut out = line.to_string();
    for before in ["", "&& ", "; ", "| ", "$(", "time "] {
        out = out.replace(&format!("{before}sudo "), before);
        if before.is_empty() && out.starts_with("sudo ") {
            out = out["sudo ".len()..].to_string();
        }
    }
    out
}

/// The lines as one script, as root types them.
pub fn script(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| as_root(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `PATH` with this build's programs first, as `cargo lab install` puts them on
/// root's.
pub fn path_with(programs: &Path) -> String {
    format!(
        "{}:{}",
        programs.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `bash -e -c` the lines (as root), with this build's programs first on `PATH`.
pub fn shell(lines: &[String], programs: &Path) -> Learner {
    Learner::new("/bin/bash")
        .args(["-e", "-c", &script(lines)])
        .env("PATH", &path_with(programs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_is_left_out_wherever_a_command_starts() {
        assert_eq!(
            as_root("sudo ch03-cgroups run -- x"),
            "ch03-cgroups run -- x"
        );
        assert_eq!(
            as_root("sudo umount /m && sudo rm -r /m"),
            "umount /m && rm -r /m"
        );
        assert_eq!(as_root("time sudo sh -c 'x'"), "time sh -c 'x'");
        assert_eq!(as_root("echo pseudo sudoku"), "echo pseudo sudoku");
    }
}
