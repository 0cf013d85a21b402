//! The book's own checks, which mdBook does not make (it exits 0 on a missing
//! include and does not look at links):
//!
//! - every page is in `SUMMARY.md`, and every page `SUMMARY.md` names exists;
//! - every `{{#include FILE:ANCHOR}}` names a file that exists and an anchor in it;
//! - every internal link (and `#fragment`) leads to a page (and heading) of the book;
//! - every terminal transcript (a `console` block) is one include of an insta
//!   snapshot, skipping exactly its header, and that snapshot is written by a test;
//! - every listing of more than 40 lines is folded (`<details>`): show the idea, fold
//!   the rest;
//! - every exercise (`NN-chapter/exercises.txt`) is on its chapter's exercises page
//!   (`cargo lab start NN N`), and the book names no exercise that does not exist;
//! - every shell block (```sh) the book and the README tell a learner to type is run:
//!   by a test, by `.ci/run`, or it says above it why not.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use regex::Regex;

/// Every problem found, as `page:line: what`.
pub fn check_book(book: &Path) -> Vec<String> {
    let src = book.join("src");
    let mut problems = vec![];
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap_or_default();
    let link = Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let mut pages = BTreeSet::new();
    for (n, line) in summary.lines().enumerate() {
        for c in link.captures_iter(line) {
            let page = normalize(&src.join(&c[1]));
            if !page.is_file() {
                problems.push(format!("SUMMARY.md:{}: {} does not exist", n + 1, &c[1]));
            }
            pages.insert(page);
        }
    }
    for file in markdown_files(&src) {
        if file.file_name().is_some_and(|n| n != "SUMMARY.md") && !pages.contains(&file) {
            problems.push(format!(
                "{}: not in SUMMARY.md, so mdBook never renders it",
                rel(&src, &file)
            ));
        }
    }
    for page in &pages {
        if page.is_file() {
            check_page(&src, page, &pages, &mut problems);
        }
    }
    check_exercises(&src, &pages, &mut problems);
    if let Some(workspace) = book.parent().filter(|w| w.join("Cargo.toml").is_file()) {
        check_sh_blocks(book, workspace, &mut problems);
    }
    problems
}

/// What a ```sh block may say right above it: that `.ci/run` runs it (each of its
/// commands is a line of `.ci/run`), or why no test runs it.
const RUN_BY_CI: &str = "<!-- run by .ci/run -->";
const NOT_RUN: &str = "<!-- not run by a test: ";

/// Every ```sh block of the book is read by a test (`book_lines::sh_block(PAGE,
/// HEADING)` or `try_it(PAGE, ...)` in a test file of the workspace), is run by
/// `.ci/run`, or says why not; every command of the README's ```sh blocks is a line
/// of one of the book's, or of `.ci/run`.
pub fn check_sh_blocks(book: &Path, workspace: &Path, problems: &mut Vec<String>) {
    let src = normalize(&book.join("src"));
    let ci: Vec<String> = std::fs::read_to_string(workspace.join(".ci/run"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let claimed = claimed_blocks(&src, workspace, problems);
    let mut book_lines = BTreeSet::new();
    for page in markdown_files(&src) {
        let name = rel(&src, &page);
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim() != "```sh" {
                continue;
            }
            let block = sh_commands(&lines[n + 1..]);
            book_lines.extend(block.iter().cloned());
            let above = lines[..n].iter().rev().find(|l| !l.trim().is_empty());
            let above = above.map_or("", |l| l.trim());
            if claimed.contains(&(name.clone(), n)) || above.starts_with(NOT_RUN) {
                continue;
            }
            if above == RUN_BY_CI {
                for command in block.iter().filter(|c| !ci.contains(c)) {
                    problems.push(format!(
                        "{name}:{}: {RUN_BY_CI}, but .ci/run has no line {command:?}",
                        n + 1
                    ));
                }
                continue;
            }
            problems.push(format!(
                "{name}:{}: a ```sh block that no test runs: read it in a test \
                 (book_lines::sh_block({name:?}, HEADING)), or say why not above it \
                 ({NOT_RUN}WHY -->)",
                n + 1
            ));
        }
    }
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap_or_default();
    let lines: Vec<&str> = readme.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim() != "```sh" {
            continue;
        }
        for command in sh_commands(&lines[n + 1..]) {
            let tested_by_lifecycle = command.starts_with("cargo run -q -p mini-docker -- ");
            if !book_lines.contains(&command) && !ci.contains(&command) && !tested_by_lifecycle {
                problems.push(format!(
                    "README.md:{}: {command:?} is in no ```sh block of the book, nor in \
                     .ci/run: nothing runs it",
                    n + 1
                ));
            }
        }
    }
}

/// The commands of the ```sh block that starts at `lines[0]`: each line as root types
/// it, without its comment; comment lines and blank lines left out.
fn sh_commands(lines: &[&str]) -> Vec<String> {
    use crate::book_lines::{as_root, command};
    lines
        .iter()
        .take_while(|l| l.trim() != "```")
        .map(|l| as_root(command(l.trim())))
        .filter(|c| !c.is_empty() && !c.starts_with('#'))
        .collect()
}

/// The blocks (page, line of the fence) the tests of the workspace read, found in
/// their source: `sh_block("PAGE", "HEADING")`, `try_it("PAGE", ...)`.
fn claimed_blocks(
    src: &Path,
    workspace: &Path,
    problems: &mut Vec<String>,
) -> BTreeSet<(String, usize)> {
    let call = Regex::new(r#"(sh_block|try_it)\(\s*"([^"]+)"(?:,\s*"([^"]+)")?"#).expect("regex");
    let mut claimed = BTreeSet::new();
    let tests = std::fs::read_dir(workspace)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|member| {
            std::fs::read_dir(member.path().join("tests"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"));
    for file in tests {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for c in call.captures_iter(&text) {
            let page = c[2].to_string();
            let heading = match &c[1] {
                "try_it" => "Try it",
                _ => c.get(3).map_or("", |h| h.as_str()),
            };
            let page_text = std::fs::read_to_string(src.join(&page)).unwrap_or_default();
            match crate::book_lines::block_start(&page_text, heading) {
                Some(n) => {
                    claimed.insert((page, n));
                }
                None => problems.push(format!(
                    "{}: reads the ```sh block under {heading:?} on {page}, which has none",
                    file.display()
                )),
            }
        }
    }
    claimed
}

/// The exercises the book names are the ones the chapters cut.
fn check_exercises(src: &Path, pages: &BTreeSet<PathBuf>, problems: &mut Vec<String>) {
    let Some(workspace) = src.parent().and_then(Path::parent) else {
        return;
    };
    let holes = match crate::holes::all(workspace) {
        Ok(holes) => holes,
        Err(e) => return problems.push(e),
    };
    let named = |chapter: &str, number: &str| {
        holes
            .iter()
            .any(|h| h.chapter == chapter && h.number.to_string() == number)
    };
    let start = Regex::new(r"cargo lab (?:start|check|reset) (\d\d) (\d+)").expect("regex");
    for page in pages {
        let text = std::fs::read_to_string(page).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            for c in start.captures_iter(line) {
                if !named(&c[1], &c[2]) {
                    problems.push(format!(
                        "{}:{}: exercise {} {} does not exist (see {}-*/exercises.txt)",
                        rel(src, page),
                        n + 1,
                        &c[1],
                        &c[2],
                        &c[1]
                    ));
                }
            }
        }
    }
    for hole in &holes {
        let page = src.join(format!("ch{}/exercises.md", hole.chapter));
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        if !text.contains(&format!("cargo lab start {} {}", hole.chapter, hole.number)) {
            problems.push(format!(
                "{}: exercise {} ({}) is not on the page (`cargo lab start {} {}`)",
                rel(src, &page),
                hole.label(),
                hole.title,
                hole.chapter,
                hole.number
            ));
        }
    }
}

fn check_page(src: &Path, page: &Path, pages: &BTreeSet<PathBuf>, problems: &mut Vec<String>) {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    let dir = page.parent().unwrap_or(src);
    let name = rel(src, page);
    let directive = Regex::new(r"\{\{#(\w+)\s+([^}\s]+)\s*\}\}").expect("regex");
    let link = Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let mut fence: Option<String> = None;
    let mut block: Vec<String> = vec![];
    let mut folded = false;
    for (n, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", n + 1);
        if fence.is_none() {
            folded = (folded || line.starts_with("<details>")) && !line.starts_with("</details>");
        }
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            match fence.take() {
                None => fence = Some(lang.trim().to_string()),
                Some(open) => {
                    if open == "console" {
                        check_transcript(dir, &block, &at, problems);
                    }
                    block.clear();
                }
            }
            continue;
        }
        if fence.is_some() {
            block.push(line.to_string());
        }
        for c in directive.captures_iter(line) {
            if &c[1] != "include" {
                problems.push(format!(
                    "{at}: {{{{#{}}}}}: only #include is used in this book",
                    &c[1]
                ));
                continue;
            }
            check_include(dir, &c[2], &at, problems);
            let listing = fence.as_deref().is_some_and(|f| f.starts_with("rust"));
            if listing && !folded {
                let lines = included_lines(dir, &c[2]);
                if lines > LONGEST_LISTING {
                    problems.push(format!(
                        "{at}: a listing of {lines} lines: fold it (<details>) and show its \
                         heart (at most {LONGEST_LISTING} lines) before it"
                    ));
                }
            }
        }
        if fence.is_none() {
            for c in link.captures_iter(line) {
                check_link(dir, page, &c[1], pages, &at, problems);
            }
        }
    }
    if fence.is_some() {
        problems.push(format!("{name}: a ``` block is never closed"));
    }
}

fn check_include(dir: &Path, spec: &str, at: &str, problems: &mut Vec<String>) {
    let (file, selector) = spec.split_once(':').unwrap_or((spec, ""));
    let path = dir.join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        problems.push(format!("{at}: include {file}: no such file"));
        return;
    };
    let is_anchor =
        !selector.is_empty() && !selector.starts_with(|c: char| c.is_ascii_digit() || c == ':');
    if is_anchor {
        for mark in [
            format!("ANCHOR: {selector}"),
            format!("ANCHOR_END: {selector}"),
        ] {
            if !text.lines().any(|l| l.trim_end().ends_with(&mark)) {
                problems.push(format!("{at}: include {file}: no `{mark}` in it"));
            }
        }
    }
    if file.ends_with(".snap") {
        let header = insta_header_lines(&text);
        let wanted = format!("{}:", header + 1);
        if selector != wanted {
            problems.push(format!(
                "{at}: include {file}:{selector}: a snapshot's body starts on line {}; include it as {file}:{wanted}",
                header + 1
            ));
        }
        if !written_by_a_test(&path) {
            problems.push(format!(
                "{at}: {file}: no test writes this snapshot (a stale transcript?)"
            ));
        }
    }
}

/// Longer listings are folded: a reader sees the idea, and opens the rest.
const LONGEST_LISTING: usize = 40;

/// How many lines `{{#include FILE:ANCHOR}}` shows (the marker lines left out, as
/// mdBook leaves them out).
fn included_lines(dir: &Path, spec: &str) -> usize {
    let (file, anchor) = spec.split_once(':').unwrap_or((spec, ""));
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let shown = |l: &&str| !l.contains("ANCHOR: ") && !l.contains("ANCHOR_END: ");
    if anchor.is_empty() || anchor.starts_with(|c: char| c.is_ascii_digit()) {
        return text.lines().filter(shown).count();
    }
    text.lines()
        .skip_while(|l| l.trim() != format!("// ANCHOR: {anchor}"))
        .skip(1)
        .take_while(|l| l.trim() != format!("// ANCHOR_END: {anchor}"))
        .filter(shown)
        .count()
}

/// An insta snapshot starts with a `---` ... `---` header.
fn insta_header_lines(text: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(1)
        .find(|(_, l)| *l == "---")
        .map_or(0, |(i, _)| i + 1)
}

/// The snapshot `tests/snapshots/NAME.snap` is written by a test in `tests/` that
/// names it: `snap("NAME", ...)`; `NAME-v2.snap` by `snap_per_lane("NAME", ...)` on
/// the cgroup v2 lane.
fn written_by_a_test(snapshot: &Path) -> bool {
    let Some(name) = snapshot
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
    else {
        return false;
    };
    let Some(tests_dir) = snapshot.parent().and_then(Path::parent) else {
        return false;
    };
    let named = |text: &str| {
        text.contains(&format!("\"{name}\""))
            || name.strip_suffix("-v2").is_some_and(|base| {
                text.contains("snap_per_lane(") && text.contains(&format!("\"{base}\""))
            })
    };
    let mut todo = vec![tests_dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).is_ok_and(|t| named(&t))
            {
                return true;
            }
        }
    }
    false
}

fn check_transcript(dir: &Path, block: &[String], at: &str, problems: &mut Vec<String>) {
    let lines: Vec<&str> = block
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let ok = matches!(lines.as_slice(), [only] if only.starts_with("{{#include ") && only.contains(".snap:"));
    if !ok {
        problems.push(format!(
            "{at}: a console block must be one {{{{#include ...snap:N:}}}} of a tested snapshot, not typed text"
        ));
    }
    let _ = dir;
}

fn check_link(
    dir: &Path,
    page: &Path,
    target: &str,
    pages: &BTreeSet<PathBuf>,
    at: &str,
    problems: &mut Vec<String>,
) {
    if target.contains("://") || target.starts_with("mailto:") {
        return;
    }
    let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
    let path = if file.is_empty() {
        page.to_path_buf()
    } else {
        normalize(&dir.join(file))
    };
    if !path.exists() {
        problems.push(format!("{at}: link {target}: no such file"));
        return;
    }
    if path.extension().is_some_and(|e| e == "md") && !pages.contains(&path) {
        problems.push(format!(
            "{at}: link {target}: that page is not in SUMMARY.md"
        ));
    }
    if !fragment.is_empty() && !heading_ids(&path).contains(fragment) {
        problems.push(format!("{at}: link {target}: no heading #{fragment} there"));
    }
}

/// The ids mdBook gives headings: lower case, spaces to `-`, punctuation dropped.
fn heading_ids(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    let mut in_code = false;
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let id: String = title
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        ids.insert(id);
    }
    ids
}

fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(normalize(&path));
        }
    }
    found
}

/// `a/b/../c` -> `a/c`, without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn rel(src: &Path, file: &Path) -> String {
    file.strip_prefix(src).unwrap_or(file).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small book: `files` are (path under the book, contents).
    fn book(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    const SUMMARY: (&str, &str) = ("src/SUMMARY.md", "# Summary\n\n- [A](a.md)\n- [B](b.md)\n");
    const CODE: (&str, &str) = (
        "code/x.rs",
        "// ANCHOR: main\nfn main() {}\n// ANCHOR_END: main\n",
    );
    const SNAP: (&str, &str) = (
        "code/tests/snapshots/run.snap",
        "---\nsource: t.rs\n---\n# run\n[exit 0]\n",
    );
    const TEST: (&str, &str) = ("code/tests/t.rs", "snap(\"run\", &text);\n");

    #[test]
    fn a_sound_book_has_no_problems() {
        let b = book(&[
            SUMMARY,
            CODE,
            SNAP,
            TEST,
            (
                "src/a.md",
                "# A\n\n```rust\n{{#include ../code/x.rs:main}}\n```\n\nSee [b](b.md#the-part).\n",
            ),
            (
                "src/b.md",
                "# B\n\n## The part\n\n```console\n{{#include ../code/tests/snapshots/run.snap:4:}}\n```\n",
            ),
        ]);
        assert_eq!(check_book(b.path()), Vec::<String>::new());
    }

    #[test]
    fn every_sh_block_is_run_or_says_why_not() {
        let page = "# A\n\n## Run\n\n```sh\necho run   # a comment\n```\n\n\
                    ## Not\n\n<!-- not run by a test: why -->\n```sh\nx\n```\n\n\
                    ## CI\n\n<!-- run by .ci/run -->\n```sh\nsudo cargo lab test\ncargo lab nope\n```\n\n\
                    ## Loose\n\n```sh\nloose\n```\n";
        let w = book(&[
            ("Cargo.toml", ""),
            ("book/src/a.md", page),
            (
                "ch/tests/t.rs",
                "let l = sh_block(\n    \"a.md\",\n    \"Run\",\n);\n",
            ),
            (".ci/run", "cargo lab test\n"),
            ("README.md", "```sh\necho run\nnot in the book\n```\n"),
        ]);
        let mut problems = vec![];
        check_sh_blocks(&w.path().join("book"), w.path(), &mut problems);
        let problems = problems.join("\n");
        assert!(
            problems.contains(
                "a.md:19: <!-- run by .ci/run -->, but .ci/run has no line \"cargo lab nope\""
            ),
            "{problems}"
        );
        assert!(
            problems.contains("a.md:26: a ```sh block that no test runs"),
            "{problems}"
        );
        assert!(
            problems.contains("README.md:1: \"not in the book\" is in no ```sh block"),
            "{problems}"
        );
        assert_eq!(problems.lines().count(), 3, "{problems}");
    }

    #[test]
    fn a_long_listing_must_be_folded() {
        let long = format!(
            "// ANCHOR: long\n{}// ANCHOR_END: long\n",
            "let x = 1;\n".repeat(41)
        );
        let listing = "```rust\n{{#include ../code/long.rs:long}}\n```\n";
        let open = book(&[
            SUMMARY,
            ("code/long.rs", &long),
            ("src/a.md", &format!("# A\n\n{listing}")),
            ("src/b.md", "# B\n"),
        ]);
        let problems = check_book(open.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("a listing of 41 lines"),
            "{problems:?}"
        );
        let folded = book(&[
            SUMMARY,
            ("code/long.rs", &long),
            (
                "src/a.md",
                &format!("# A\n\n<details><summary>all</summary>\n\n{listing}\n</details>\n"),
            ),
            ("src/b.md", "# B\n"),
        ]);
        assert_eq!(check_book(folded.path()), Vec::<String>::new());
    }

    #[test]
    fn a_v2_snapshot_is_written_by_snap_per_lane() {
        let page = "# B\n```console\n{{#include ../code/tests/snapshots/run-v2.snap:4:}}\n```\n";
        let v2 = ("code/tests/snapshots/run-v2.snap", SNAP.1);
        let per_lane = (
            "code/tests/t.rs",
            "snap_per_lane(\n    \"run\",\n    &text);\n",
        );
        let b = book(&[
            SUMMARY,
            CODE,
            v2,
            per_lane,
            ("src/a.md", "# A\n"),
            ("src/b.md", page),
        ]);
        assert_eq!(check_book(b.path()), Vec::<String>::new());
        let b = book(&[
            SUMMARY,
            CODE,
            v2,
            TEST,
            ("src/a.md", "# A\n"),
            ("src/b.md", page),
        ]);
        assert!(
            check_book(b.path())
                .join("\n")
                .contains("no test writes this snapshot")
        );
    }

    #[test]
    fn missing_includes_anchors_and_links_are_problems() {
        let b = book(&[
            SUMMARY,
            CODE,
            SNAP,
            (
                "src/a.md",
                "# A\n{{#include ../code/nope.rs}}\n{{#include ../code/x.rs:gone}}\n[x](c.md) [y](b.md#nowhere)\n",
            ),
            (
                "src/b.md",
                "# B\n```console\n$ typed by hand\n```\n```console\n{{#include ../code/tests/snapshots/run.snap}}\n```\n",
            ),
            ("src/orphan.md", "# O\n"),
        ]);
        let problems = check_book(b.path()).join("\n");
        for expected in [
            "a.md:2: include ../code/nope.rs: no such file",
            "a.md:3: include ../code/x.rs: no `ANCHOR: gone` in it",
            "a.md:4: link c.md: no such file",
            "a.md:4: link b.md#nowhere: no heading #nowhere there",
            "b.md:4: a console block must be one",
            "include it as ../code/tests/snapshots/run.snap:4:",
            "no test writes this snapshot",
            "orphan.md: not in SUMMARY.md",
        ] {
            assert!(
                problems.contains(expected),
                "missing {expected:?} in:\n{problems}"
            );
        }
    }
}
