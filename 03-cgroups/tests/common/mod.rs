//! What every chapter 03 test shares.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

use ch03_cgroups::hierarchy::{Layout, Mode};
pub use lab_tests::{Learner, Outcome, ls, needs_root, open_tempdir, wait_until};
use labkit::doctor::Host;

pub const BIN: &str = env!("CARGO_BIN_EXE_ch03-cgroups");

pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

pub fn layout() -> Layout {
    Layout::discover(&Host::real())
}

/// Transcripts of runs name host-specific cgroup paths: they are snapshotted once
/// per CI lane (`NAME` on hybrid hosts, `NAME-v2` on cgroup v2).
pub fn snap_per_lane(name: &str, text: &str) {
    lab_tests::snap_per_lane(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

/// `ch03-cgroups` with the run-to-run details redacted: PIDs written to
/// cgroup.procs, our own cgroup's path, and measured numbers.
pub fn ch03() -> Learner {
    let mut learner = Learner::new(BIN);
    for path in layout().own.values().filter(|p| p.as_str() != "/") {
        learner = learner.redact_path(path, "/[OUR-CGROUP]");
    }
    learner
}

pub fn redact_numbers(text: &str) -> String {
    lab_tests::Redactor::default()
        .rule(r#"cgroup\.procs", "\d+"\)"#, r#"cgroup.procs", "[PID]")"#)
        .rule(r"echo \d+ > (\S+cgroup\.procs)", "echo [PID] > $1")
        .rule(r"after \d+\.\d+ s", "after [T] s")
        .rule(
            r"(memory peak:|memory now:|cpu time:)( +)\d+\.\d+",
            "$1$2[N]",
        )
        .rule(
            r"(limit hits:|pids peak:|forks refused:|oom kills:)( +)\d+",
            "$1$2[N]",
        )
        .rule(r"throttled:( +)\d+ of \d+", "throttled:$1[N] of [N]")
        .apply(text)
}

/// Every directory named lab-NAME in any hierarchy, in the default parent or
/// beneath our own group (there must be none after a run).
pub fn leftovers(name: &str) -> Vec<PathBuf> {
    let layout = layout();
    let leaf = format!("lab-{name}");
    let mut bases: Vec<PathBuf> = layout.own_v2().into_iter().collect();
    bases.extend(layout.v1.keys().filter_map(|c| layout.own_v1(c)));
    bases.extend(layout.roots().iter().map(|r| r.join("ch03-cgroups")));
    bases
        .into_iter()
        .map(|b| b.join(&leaf))
        .filter(|p| p.exists())
        .collect()
}

/// A name no other test (or run) uses.
pub fn unique(what: &str) -> String {
    format!("{what}-{}", std::process::id())
}

/// A group made with `run --keep`: removed when dropped, even after a failed
/// assertion, so that a failing test leaves nothing behind.
#[derive(Debug)]
pub struct KeptGroup {
    pub name: String,
    pub parent: Option<String>,
}

impl KeptGroup {
    /// `run --keep --name NAME [ARGS] -- true`; asserts that it worked.
    pub fn new(name: &str, args: &[&str]) -> KeptGroup {
        let kept = KeptGroup {
            name: name.to_string(),
            parent: args
                .iter()
                .position(|a| *a == "--parent")
                .and_then(|i| args.get(i + 1))
                .map(|p| p.to_string()),
        };
        let out = Learner::new(BIN)
            .args(["-q", "run", "--keep", "--name", name])
            .args(args)
            .args(["--", "true"])
            .output();
        assert_eq!(out.code, 0, "{}", out.stderr);
        kept
    }

    /// `rm [--parent P] NAME`.
    pub fn remove(&self) -> Outcome {
        let mut rm = Learner::new(BIN).args(["-q", "rm"]);
        if let Some(parent) = &self.parent {
            rm = rm.args(["--parent", parent]);
        }
        rm.arg(&self.name).output()
    }
}

impl Drop for KeptGroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
