//! The lab's test harness.
//!
//! - [`Learner`]: run a chapter's binary exactly as a learner types it, and get its
//!   exit code, its streams, and a *transcript* (what a terminal shows) with the
//!   things that change from run to run redacted, ready for an insta snapshot.
//! - [`needs_root!`]: tests run the real kernel as root; without root a test says
//!   so loudly, and under `CI=true` it fails instead of skipping.
//! - [`host_state`]: the host's mounts, links, netfilter rules, cgroups and our
//!   processes, captured before and after a run to prove nothing was left behind.

pub mod bench;
pub mod book_check;
pub mod host_state;
mod learner;
pub mod netns;

pub use learner::{Learner, Outcome, Redactor, workspace_bin};

/// True when this test can go on. Not root: under `CI=true` the test fails (CI must
/// never pass by skipping); elsewhere it says loudly that it did not run.
pub fn root_or_explain(test: &str) -> bool {
    if labkit::privilege::is_root() {
        return true;
    }
    let why = format!(
        "{test}: NOT RUN: this test drives the real kernel and needs root \
         (run the suite as root: sudo -E cargo lab test)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true that is a failure");
    }
    eprintln!("\n!!! {why}\n");
    false
}

/// Return early from a test unless we are root (see [`root_or_explain`]).
#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::root_or_explain(module_path!()) {
            return;
        }
    };
}

/// Every path under `dir` (relative), to show that a failed command wrote nothing.
pub fn tree(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path.clone());
            }
            found.insert(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
        }
    }
    found
}

/// A temp dir `/tmp/lab-XXXXXX` that an unprivileged user can enter (tempfile makes
/// them 0700). Always in /tmp, whatever TMPDIR says, so that its path has the same
/// length everywhere and redacted transcripts line up the same.
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("lab-")
        .rand_bytes(6)
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Snapshot a transcript as `DIR/NAME.snap`, with no expression in the header so
/// that the book can include the body: it starts on line 4. Each chapter passes its
/// own `tests/snapshots` directory (an absolute path).
pub fn snap(dir: &str, name: &str, text: &str) {
    insta::with_settings!({ omit_expression => true, prepend_module_to_snapshot => false, snapshot_path => dir }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The names in a directory, sorted: what `ls` prints.
pub fn ls(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Poll, bounded to 10 s, until `check` gives a value: for tests that watch a
/// process from outside (a container starting, a counter moving), never for timing.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The children of process `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// The command name of process `pid`.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
