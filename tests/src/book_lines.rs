//! The shell lines the book tells a learner to type, taken from the page itself, so
//! that a test runs exactly what the page says (and fails when the page changes into
//! something that does not work).

use std::path::{Path, PathBuf};

use crate::Learner;

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src")
}

/// The line index of the first ```sh fence under the first heading of `text` that
/// starts with `heading`: the block `sh_block` reads (and the book check counts as
/// run by a test).
pub fn block_start(text: &str, heading: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| {
        l.starts_with('#') && l.trim_start_matches('#').trim().starts_with(heading)
    })?;
    (at..lines.len()).find(|&n| lines[n].trim() == "```sh")
}

/// The lines of the first ```sh block under the heading that starts with `heading`
/// on `page` (relative to book/src, e.g. `ch03/exercises.md`).
pub fn sh_block(page: &str, heading: &str) -> Vec<String> {
    let path = book_src().join(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = block_start(&text, heading)
        .unwrap_or_else(|| panic!("{page}: no ```sh block under {heading:?}"));
    text.lines()
        .skip(start + 1)
        .take_while(|l| l.trim() != "```")
        .map(str::to_string)
        .collect()
}

/// A chapter's "Try it" block (`ch01/index.md`), with paths a test must not touch
/// (`/tmp/rootfs`: the learner's own) replaced by its own.
pub fn try_it(page: &str, replace: &[(&str, &str)]) -> Vec<String> {
    replaced(sh_block(page, "Try it"), replace)
}

/// The lines with each `from` replaced by its `to`: the learner's paths (`/tmp/rootfs`,
/// `/var/lib/mini-docker`) made the test's own.
pub fn replaced(lines: Vec<String>, replace: &[(&str, &str)]) -> Vec<String> {
    lines
        .into_iter()
        .map(|line| {
            replace
                .iter()
                .fold(line, |line, (from, to)| line.replace(from, to))
        })
        .collect()
}

/// A line without its comment (`  # terminal 1`).
pub fn command(line: &str) -> &str {
    let comment = line
        .match_indices(" #")
        .map(|(at, _)| at)
        .find(|&at| line[at + 2..].is_empty() || line[at + 2..].starts_with(' '));
    line[..comment.unwrap_or(line.len())].trim_end()
}

/// A line a learner types in a terminal of its own (`# terminal 1`, or ending in
/// `&`), as a script runs it: in the background.
pub fn in_background(line: &str) -> String {
    format!("{} &", command(line).trim_end_matches('&').trim_end())
}

/// A script line that waits until `condition` (a command) succeeds: what a learner
/// does between two terminals, without a fixed sleep.
pub fn wait_for(condition: &str) -> String {
    format!("until {condition} >/dev/null 2>&1; do sleep 0.05; done")
}

/// A line that opens a shell (`sudo unshare --mount sh`), and the lines typed into
/// that shell after it: one command, the typed lines its standard input.
pub fn typed_into(shell: &str, lines: &[String]) -> Vec<String> {
    let mut out = vec![format!("{} <<'TYPED'", command(shell))];
    out.extend(lines.iter().map(|l| as_root(l)));
    out.push("TYPED".to_string());
    out
}

/// The lines this host's cgroup version runs: a line whose comment begins with `v1`
/// or `v2` (`# v2: what freeze does`) is for that version only (on a hybrid host, v1's).
pub fn for_this_host(lines: Vec<String>) -> Vec<String> {
    let v2 = crate::cgroup_lane() == "v2";
    lines
        .into_iter()
        .filter(|line| {
            let comment = line[command(line).len()..].trim_start_matches([' ', '#']);
            match &comment.get(..2) {
                Some("v2") => v2,
                Some("v1") => !v2,
                _ => true,
            }
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

/// The lines, each followed by one that prints its exit code (`[exit 1]`), and the
/// script going on after a failure: for a block in which a command is meant to fail
/// (`# Permission denied`).
pub fn with_exit_codes(lines: &[String]) -> Vec<String> {
    let mut out = vec!["set +e".to_string()];
    for line in joined(lines) {
        out.push(line);
        out.push("echo \"[exit $?]\"".to_string());
    }
    out
}

/// The lines, a line that ends in `\` joined with the next: one command each.
pub fn joined(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut continued = false;
    for line in lines {
        match out.last_mut() {
            Some(last) if continued => last.push_str(line),
            _ => out.push(line.clone()),
        }
        continued = line.ends_with('\\');
        if continued {
            let last = out.last_mut().expect("pushed");
            last.pop();
            last.push(' ');
        }
    }
    out
}

/// The exit codes `with_exit_codes` printed, in order.
pub fn exit_codes(stdout: &str) -> Vec<i32> {
    stdout
        .split("[exit ")
        .skip(1)
        .filter_map(|rest| rest.split(']').next()?.parse().ok())
        .collect()
}

/// `shell`, in a PID and mount namespace of its own: `pgrep -n sleep` finds the
/// script's sleep and no other test's. At the end, after `cleanup` (a script line, may
/// be empty), what the lines left running in the background ends as a container
/// ends: its first process (a child of the tool, which the tool waits for) is killed,
/// and the tool, which cleans up after it, is waited for. Whatever is still left ends
/// with the namespace's init, the script.
pub fn isolated(lines: &[String], programs: &Path, cleanup: &str) -> Learner {
    let ending = format!(
        "rc=$?; set +e; {cleanup}\nfor job in $(jobs -p); do pkill -KILL -P $job; done; wait; exit $rc"
    );
    let mut script = vec![format!("trap '{}' EXIT", ending.replace('\'', "'\\''"))];
    script.extend_from_slice(lines);
    shell(&script, programs).wrapped(["unshare", "--mount", "--pid", "--fork", "--mount-proc"])
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

    #[test]
    fn a_continued_line_is_one_command() {
        let lines = ["a \\".to_string(), "    b".to_string(), "c".to_string()];
        assert_eq!(joined(&lines), ["a      b", "c"]);
    }

    #[test]
    fn a_comment_is_not_the_command() {
        assert_eq!(
            command("pgrep -n sleep   # terminal 2: its PID"),
            "pgrep -n sleep"
        );
        assert_eq!(command("grep '\"Pid\"' x"), "grep '\"Pid\"' x");
        assert_eq!(command("ls /proc/$#"), "ls /proc/$#");
        assert_eq!(
            in_background("x -- sleep 600   # terminal 1"),
            "x -- sleep 600 &"
        );
        assert_eq!(in_background("x -- sleep 300 &"), "x -- sleep 300 &");
    }

    #[test]
    fn a_line_for_one_cgroup_version_runs_on_that_version() {
        let lines = vec![
            "cat a   # v2: what freeze does".to_string(),
            "cat b   # v1".to_string(),
            "cat c   # v2: 2048 (v1: elsewhere)".to_string(),
            "cat d".to_string(),
        ];
        let kept = for_this_host(lines);
        match crate::cgroup_lane() {
            "v2" => assert_eq!(kept.len(), 3, "{kept:?}"),
            _ => assert_eq!(kept.len(), 2, "{kept:?}"),
        }
        assert!(kept.iter().any(|l| l == "cat d"));
    }
}
