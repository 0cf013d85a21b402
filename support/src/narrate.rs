//! One narration facility for every chapter.
//!
//! Each kernel-facing step is printed on stderr *as it happens*, as the system call
//! and the shell command a learner could type to do the same thing:
//!
//! ```text
//! chroot("/tmp/rootfs")                      ~ chroot /tmp/rootfs
//! ```
//!
//! Chapters 01-05 narrate by default; `-q/--quiet` calls [`set_quiet`]. Narration goes
//! to stderr so that a command's own stdout stays clean for pipes and tests.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// The column where the shell equivalent starts, so that a run reads as two columns.
const SHELL_COLUMN: usize = 44;

/// Silence (or restore) narration for the rest of the process, children included
/// (a forked child inherits the flag with the rest of its memory).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

// ANCHOR: step
/// A system call (or a small group of them) and the shell command that does the same.
pub fn step(syscall: impl Display, shell: impl Display) {
    if !is_quiet() {
        emit(&format_step(&syscall.to_string(), &shell.to_string()));
    }
}
// ANCHOR_END: step

/// A sentence of explanation between steps: why the next step is needed, or what
/// the last one showed.
pub fn note(text: impl Display) {
    if !is_quiet() {
        emit(&format!("# {text}"));
    }
}

/// One narration line: the syscall, padded to the shell column, then `~ shell`.
pub fn format_step(syscall: &str, shell: &str) -> String {
    let pad = SHELL_COLUMN.saturating_sub(syscall.chars().count()).max(3);
    format!("{syscall}{:pad$}~ {shell}", "")
}

fn emit(line: &str) {
    // One write per line, so that the lines of a parent and its forked child
    // interleave whole, never mid-line.
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// Quote a word for a shell, only when it needs it: `echo hi` stays as it is,
/// `echo hi; ls /` becomes `'echo hi; ls /'`.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command line, quoted for a shell: `["sh", "-c", "echo hi"]` -> `sh -c 'echo hi'`.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An argument vector as C code shows it: `["sh", "-c", "echo hi"]`.
pub fn c_array<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{:?}", w.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_line_up_in_two_columns() {
        assert_eq!(
            format_step(r#"chroot("/tmp/rootfs")"#, "chroot /tmp/rootfs"),
            format!(
                "chroot(\"/tmp/rootfs\"){}~ chroot /tmp/rootfs",
                " ".repeat(23)
            )
        );
        let long = "x".repeat(60);
        assert_eq!(format_step(&long, "y"), format!("{long}   ~ y"));
    }

    #[test]
    fn quoting_only_where_a_shell_needs_it() {
        assert_eq!(
            shell_line(&["sh", "-c", "echo hi; ls /"]),
            "sh -c 'echo hi; ls /'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(c_array(&["ls", "-l"]), r#"["ls", "-l"]"#);
    }
}
