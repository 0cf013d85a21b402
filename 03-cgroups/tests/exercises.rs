//! The features behind chapter 03's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 03 N` cuts it out for a
//! learner to write again, and `cargo lab check 03 N` runs these tests.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// Removes a kept group when the check ends, passed or not.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Learner::new(BIN).args(["-q", "kill", &self.0]).output();
        let _ = Learner::new(BIN).args(["-q", "rm", &self.0]).output();
    }
}

#[test]
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
