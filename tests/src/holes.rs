//! Exercises as holes cut out of the real code.
//!
//! Each chapter lists its exercises in `NN-chapter/exercises.txt`:
//!
//! ```text
//! 1 enter the new root
//!   cut: src/chroot_run.rs hole_chroot
//!   check: rootfs_and_run runs_a_command_in_the_rootfs
//!   hint: chroot(2) is nix::unistd::chroot; ...
//! ```
//!
//! `cut` names a region of the chapter's source, between `// ANCHOR: NAME` and
//! `// ANCHOR_END: NAME` (the markers the book's listings use, so the book can show the
//! same lines). [`Hole::start`] replaces what is between them with the hints and a
//! `todo!()`, keeping the reference in `.lab/`; [`Hole::reset`] puts it back. `check`
//! lines name the chapter's own tests (test target, then test names) that run that
//! region: [`Hole::check_args`] runs them, and [`Hole::verdict`] passes only when
//! every one of them ran and passed.

use std::path::{Path, PathBuf};

/// One exercise of one chapter.
#[derive(Debug, Clone)]
pub struct Hole {
    /// `01`
    pub chapter: String,
    /// The chapter's folder, e.g. `/repo/01-chroot`.
    pub dir: PathBuf,
    /// The chapter's cargo package, e.g. `ch01-chroot`.
    pub package: String,
    pub number: u32,
    pub title: String,
    /// The source file, relative to the chapter's folder.
    pub file: PathBuf,
    /// The anchor around the region.
    pub anchor: String,
    /// (test target, test name)
    pub tests: Vec<(String, String)>,
    pub hints: Vec<String>,
}

/// What the text of a hole's `todo!()` starts with: a failing check shows it.
pub fn marker(chapter: &str, number: u32) -> String {
    format!("exercise {chapter}.{number}:")
}

/// Every chapter's exercises, in order. A malformed `exercises.txt` is an error
/// that names its line.
pub fn all(workspace: &Path) -> Result<Vec<Hole>, String> {
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(workspace)
        .map_err(|e| format!("{}: {e}", workspace.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("exercises.txt").is_file())
        .collect();
    chapters.sort();
    let mut holes = vec![];
    for dir in chapters {
        holes.extend(parse_chapter(&dir)?);
    }
    Ok(holes)
}

/// `2` or `02`, and N: that exercise.
pub fn find(workspace: &Path, chapter: &str, number: &str) -> Result<Hole, String> {
    let chapter = chapter
        .parse::<u32>()
        .map(|c| format!("{c:02}"))
        .map_err(|_| format!("{chapter:?} is not a chapter number (01 to 06)"))?;
    let number: u32 = number
        .parse()
        .map_err(|_| format!("{number:?} is not an exercise number"))?;
    let holes = all(workspace)?;
    let listed: Vec<String> = holes
        .iter()
        .filter(|h| h.chapter == chapter)
        .map(|h| h.number.to_string())
        .collect();
    holes
        .into_iter()
        .find(|h| h.chapter == chapter && h.number == number)
        .ok_or_else(|| match listed.is_empty() {
            true => format!("there is no chapter {chapter} with exercises"),
            false => format!(
                "chapter {chapter} has no exercise {number} (it has {})",
                listed.join(", ")
            ),
        })
}

/// The cargo package in `dir` (`ch01-chroot`), from its Cargo.toml.
pub fn package_name(dir: &Path) -> Option<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    manifest.lines().find_map(|l| {
        let value = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

fn parse_chapter(dir: &Path) -> Result<Vec<Hole>, String> {
    let list = dir.join("exercises.txt");
    let text = std::fs::read_to_string(&list).map_err(|e| format!("{}: {e}", list.display()))?;
    let folder = dir.file_name().unwrap_or_default().to_string_lossy();
    let chapter = folder.split('-').next().unwrap_or_default().to_string();
    let package = package_name(dir).ok_or_else(|| format!("{}: no package name", dir.display()))?;
    let mut holes: Vec<Hole> = vec![];
    for (i, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("{}:{}: {what}", list.display(), i + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            let (number, title) = trimmed
                .split_once(' ')
                .ok_or_else(|| bad("expected `N title`"))?;
            holes.push(Hole {
                chapter: chapter.clone(),
                dir: dir.to_path_buf(),
                package: package.clone(),
                number: number.parse().map_err(|_| bad("expected `N title`"))?,
                title: title.trim().to_string(),
                file: PathBuf::new(),
                anchor: String::new(),
                tests: vec![],
                hints: vec![],
            });
            continue;
        }
        let hole = holes
            .last_mut()
            .ok_or_else(|| bad("a detail before the first exercise"))?;
        let (key, value) = trimmed
            .split_once(':')
            .ok_or_else(|| bad("expected `key: value`"))?;
        let value = value.trim();
        match key {
            "cut" => {
                let (file, anchor) = value
                    .split_once(' ')
                    .ok_or_else(|| bad("expected `cut: FILE ANCHOR`"))?;
                hole.file = file.into();
                hole.anchor = anchor.trim().to_string();
            }
            "check" => {
                let mut words = value.split_whitespace();
                let target = words
                    .next()
                    .ok_or_else(|| bad("expected `check: TARGET TEST...`"))?;
                let names: Vec<&str> = words.collect();
                if names.is_empty() {
                    return Err(bad("expected `check: TARGET TEST...`"));
                }
                for name in names {
                    hole.tests.push((target.to_string(), name.to_string()));
                }
            }
            "hint" => hole.hints.push(value.to_string()),
            _ => return Err(bad("expected cut, check or hint")),
        }
    }
    if let Some(h) = holes
        .iter()
        .find(|h| h.anchor.is_empty() || h.tests.is_empty())
    {
        return Err(format!(
            "{}: exercise {} needs a `cut:` and a `check:`",
            list.display(),
            h.number
        ));
    }
    Ok(holes)
}

/// Where a region is in a file: the lines between the markers.
struct Region {
    lines: Vec<String>,
    /// Index of the first line after `// ANCHOR: NAME`.
    start: usize,
    /// Index of `// ANCHOR_END: NAME`.
    end: usize,
}

impl Region {
    fn find(text: &str, anchor: &str) -> Result<Region, String> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let at = |marker: String| lines.iter().position(|l| l.trim() == marker);
        let begin = at(format!("// ANCHOR: {anchor}"));
        let end = at(format!("// ANCHOR_END: {anchor}"));
        match (begin, end) {
            (Some(b), Some(e)) if b < e => Ok(Region {
                lines,
                start: b + 1,
                end: e,
            }),
            _ => Err(format!(
                "the markers `// ANCHOR: {anchor}` and `// ANCHOR_END: {anchor}` are gone"
            )),
        }
    }

    fn body(&self) -> String {
        self.lines[self.start..self.end]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The file with the region's lines replaced by `body`.
    fn replaced(mut self, body: &str) -> String {
        self.lines
            .splice(self.start..self.end, body.lines().map(str::to_string));
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

impl Hole {
    pub fn source(&self) -> PathBuf {
        self.dir.join(&self.file)
    }

    /// `01.1`
    pub fn label(&self) -> String {
        format!("{}.{}", self.chapter, self.number)
    }

    /// Where the reference (and a learner's own version, on reset) is kept.
    fn kept(&self, workspace: &Path, what: &str) -> PathBuf {
        workspace
            .join(".lab")
            .join(format!("{}-{}.{what}.rs", self.chapter, self.number))
    }

    /// What stands in the hole: the hints, and a `todo!()` a failing check shows.
    fn hole_text(&self, indent: &str) -> String {
        let mut text = format!(
            "{indent}// Exercise {}: {}.\n\
             {indent}// Write this part; `cargo lab check {} {}` runs its tests, and\n\
             {indent}// `cargo lab reset {} {}` puts the reference back.\n",
            self.label(),
            self.title,
            self.chapter,
            self.number,
            self.chapter,
            self.number
        );
        for hint in &self.hints {
            text += &format!("{indent}// Hint: {hint}\n");
        }
        text += &format!(
            "{indent}todo!(\"{} {}\");\n",
            marker(&self.chapter, self.number),
            self.title.replace('"', "'")
        );
        text
    }

    /// True when the region holds this exercise's `todo!()`.
    pub fn is_cut(&self) -> Result<bool, String> {
        let text = self.read()?;
        let region = Region::find(&text, &self.anchor)?;
        Ok(region.body().contains(&marker(&self.chapter, self.number)))
    }

    fn read(&self) -> Result<String, String> {
        std::fs::read_to_string(self.source())
            .map_err(|e| format!("{}: {e}", self.source().display()))
    }

    fn write(&self, text: &str) -> Result<(), String> {
        std::fs::write(self.source(), text).map_err(|e| format!("{}: {e}", self.source().display()))
    }

    /// Cut the region out: the reference goes to `.lab/`, the hints and a `todo!()`
    /// take its place.
    pub fn start(&self, workspace: &Path) -> Result<(), String> {
        let text = self.read()?;
        let region = Region::find(&text, &self.anchor)?;
        let body = region.body();
        if body.contains(&marker(&self.chapter, self.number)) {
            return Err(format!(
                "exercise {} is already started in {}",
                self.label(),
                self.source().display()
            ));
        }
        let indent: String = body
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.chars().take_while(|c| c.is_whitespace()).collect())
            .unwrap_or_default();
        let reference = self.kept(workspace, "reference");
        std::fs::create_dir_all(reference.parent().expect("in .lab"))
            .and_then(|()| std::fs::write(&reference, &body))
            .map_err(|e| format!("{}: {e}", reference.display()))?;
        self.write(&region.replaced(&self.hole_text(&indent)))
    }

    /// Put the reference back; what was in the region (a learner's own version) is
    /// kept in `.lab/CH-N.mine.rs`. Returns where that went.
    pub fn reset(&self, workspace: &Path) -> Result<PathBuf, String> {
        let reference_file = self.kept(workspace, "reference");
        let reference = std::fs::read_to_string(&reference_file).map_err(|e| {
            format!(
                "{}: {e} (the reference is kept there by `cargo lab start`; \
                 `git checkout {}` also brings it back)",
                reference_file.display(),
                self.source().display()
            )
        })?;
        let text = self.read()?;
        let region = Region::find(&text, &self.anchor)?;
        let mine = self.kept(workspace, "mine");
        std::fs::write(&mine, region.body()).map_err(|e| format!("{}: {e}", mine.display()))?;
        self.write(&region.replaced(&reference))?;
        let _ = std::fs::remove_file(&reference_file);
        Ok(mine)
    }

    /// `cargo ARGS` that runs this exercise's tests, and only them.
    pub fn check_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["test", "--no-fail-fast", "-p", &self.package]
            .map(String::from)
            .to_vec();
        let mut targets: Vec<&String> = self.tests.iter().map(|(t, _)| t).collect();
        targets.dedup();
        for target in targets {
            args.extend(["--test".into(), target.clone()]);
        }
        args.extend(["--".into(), "--exact".into()]);
        args.extend(self.tests.iter().map(|(_, name)| name.clone()));
        args
    }

    /// From the output of [`Hole::check_args`]: the tests that did not run and pass
    /// (empty: the exercise is solved).
    pub fn not_passed(&self, output: &str) -> Vec<String> {
        self.tests
            .iter()
            .filter(|(_, name)| !output.contains(&format!("test {name} ... ok")))
            .map(|(_, name)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "fn enter() {\n    // ANCHOR: hole_x\n    chroot(root);\n    chdir(\"/\");\n    // ANCHOR_END: hole_x\n}\n";

    /// A workspace of one chapter with one exercise.
    fn workspace(list: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let chapter = dir.path().join("01-demo");
        std::fs::create_dir_all(chapter.join("src")).expect("mkdir");
        std::fs::write(
            chapter.join("Cargo.toml"),
            "[package]\nname = \"ch01-demo\"\n",
        )
        .expect("write");
        std::fs::write(chapter.join("src/run.rs"), SOURCE).expect("write");
        std::fs::write(chapter.join("exercises.txt"), list).expect("write");
        dir
    }

    const LIST: &str = "# a comment\n1 enter the root\n  cut: src/run.rs hole_x\n  check: run a b\n  hint: chroot, then chdir\n";

    #[test]
    fn start_cuts_the_region_and_reset_puts_it_back() {
        let w = workspace(LIST);
        let hole = find(w.path(), "1", "1").expect("exercise 01.1");
        assert_eq!(hole.package, "ch01-demo");
        assert_eq!(hole.tests.len(), 2);
        hole.start(w.path()).expect("start");
        let cut = std::fs::read_to_string(hole.source()).expect("read");
        assert!(cut.contains("    // Hint: chroot, then chdir\n"), "{cut}");
        assert!(
            cut.contains("    todo!(\"exercise 01.1: enter the root\");\n"),
            "{cut}"
        );
        assert!(!cut.contains("chroot(root)"), "{cut}");
        assert!(hole.is_cut().expect("is_cut"));
        assert!(hole.start(w.path()).is_err(), "cut twice");
        hole.reset(w.path()).expect("reset");
        assert_eq!(
            std::fs::read_to_string(hole.source()).expect("read"),
            SOURCE
        );
    }

    #[test]
    fn a_check_passes_only_when_every_test_ran_and_passed() {
        let w = workspace(LIST);
        let hole = find(w.path(), "01", "1").expect("exercise 01.1");
        assert_eq!(
            hole.not_passed("test a ... ok\ntest b ... ok\n"),
            Vec::<String>::new()
        );
        assert_eq!(hole.not_passed("test a ... ok\n"), vec!["b"], "b never ran");
        assert_eq!(
            hole.not_passed("test a ... ok\ntest b ... FAILED\n"),
            vec!["b"]
        );
    }

    #[test]
    fn a_bad_list_or_number_is_named() {
        let w = workspace("1 no cut\n  check: run a\n");
        assert!(
            all(w.path())
                .expect_err("no cut")
                .contains("needs a `cut:`")
        );
        let w = workspace(LIST);
        let e = find(w.path(), "01", "7").expect_err("no such exercise");
        assert!(e.contains("has no exercise 7 (it has 1)"), "{e}");
    }
}
