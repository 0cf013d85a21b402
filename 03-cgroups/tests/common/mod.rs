//! What every chapter 03 test shares.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

use ch03_cgroups::hierarchy::{Layout, Mode};
pub use lab_tests::{Learner, Outcome, needs_root, open_tempdir, wait_until};
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

/// Transcripts of runs name host-specific cgroup paths: they are snapshotted on
/// the kind of host CI runs (hybrid); elsewhere the tests check the same facts
/// without a snapshot.
pub fn snap_on_hybrid(name: &str, text: &str) {
    if layout().mode() == Some(Mode::Hybrid) {
        snap(name, text);
    }
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

/// Every directory named lab-NAME in any hierarchy (there must be none after a run).
pub fn leftovers(name: &str) -> Vec<PathBuf> {
    let layout = layout();
    let leaf = format!("lab-{name}");
    let mut bases: Vec<PathBuf> = layout.own_v2().into_iter().collect();
    bases.extend(layout.v1.keys().filter_map(|c| layout.own_v1(c)));
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
