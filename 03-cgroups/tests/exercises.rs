//! Chapter 03 exercises (book: "Chapter 03 > Exercises"). Ignored in the normal run:
//! each fails until its exercise is solved. Check one with:
//!
//!     cargo test -p ch03-cgroups --test exercises -- --ignored memory_reservation
//!
//! Reference solutions: 03-cgroups/exercises/*.patch.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// Reaps a background `run` when the check ends (after `Cleanup` killed its group).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.wait();
    }
}

/// Removes a kept group when the check ends, passed or not.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Learner::new(BIN).args(["-q", "kill", &self.0]).output();
        let _ = Learner::new(BIN).args(["-q", "rm", &self.0]).output();
    }
}

#[test]
#[ignore = "exercise 1: run --memory-reservation SIZE"]
fn memory_reservation() {
    needs_root!();
    let name = unique("soft");
    let _cleanup = Cleanup(name.clone());
    let out = Learner::new(BIN)
        .args([
            "-q",
            "run",
            "--keep",
            "--name",
            &name,
            "--memory-reservation",
            "16m",
            "--",
            "true",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let files = ["memory.soft_limit_in_bytes", "memory.low"];
    let value = leftovers(&name)
        .iter()
        .flat_map(|dir| files.iter().map(move |f| dir.join(f)))
        .find_map(|f| std::fs::read_to_string(f).ok())
        .expect("a group with a soft memory limit file");
    assert_eq!(value.trim(), (16u64 << 20).to_string());
    let bad = Learner::new(BIN)
        .args(["-q", "run", "--memory-reservation", "lots", "--", "true"])
        .output();
    assert_eq!(bad.code, 125);
    assert!(
        bad.stderr.contains("--memory-reservation"),
        "{}",
        bad.stderr
    );
}

#[test]
#[ignore = "exercise 2: kill --signal SIG NAME"]
fn kill_with_a_signal() {
    needs_root!();
    let name = unique("term");
    let _cleanup = Cleanup(name.clone());
    let mut run = Command::new(BIN)
        .args([
            "-q",
            "run",
            "--keep",
            "--name",
            &name,
            "--",
            "/bin/sh",
            "-c",
            "trap 'exit 3' TERM; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until("the group", || (!leftovers(&name).is_empty()).then_some(()));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = Learner::new(BIN)
        .args(["-q", "kill", "--signal", "TERM", &name])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        run.wait().expect("wait").code(),
        Some(3),
        "the shell's trap ran: it got SIGTERM, not SIGKILL"
    );
}

#[test]
#[ignore = "exercise 3: ls shows processes and state"]
fn ls_shows_state() {
    needs_root!();
    let name = unique("shown");
    // Declared first, dropped last: the group is killed before we wait for the run.
    let _run = Reaped(
        Command::new(BIN)
            .args(["-q", "run", "--keep", "--name", &name, "--", "sleep", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let _cleanup = Cleanup(name.clone());
    let line = |name: &str| {
        let out = Learner::new(BIN).args(["ls"]).output();
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    assert_eq!(
        wait_until("running", || line(&name)
            .filter(|l| l.len() == 3 && l[1] == "1")),
        [name.clone(), "1".into(), "running".into()]
    );
    assert_eq!(
        Learner::new(BIN)
            .args(["-q", "freeze", &name])
            .output()
            .code,
        0
    );
    assert_eq!(
        line(&name).expect("listed"),
        [name.clone(), "1".into(), "frozen".into()]
    );
}
