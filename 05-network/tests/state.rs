//! The state under /run/ch05-network of network namespaces that are gone is removed
//! at the next namespace's first use, and only when it is gone: a run that cannot
//! see every process (in a PID namespace of its own) removes nothing.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};

use common::*;

/// A network namespace that only a process holds (no bind mount): it is gone when
/// the process ends.
struct Held(Child);

impl Held {
    fn new() -> Held {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let held = Held(child);
        let pid = held.0.id();
        lab_tests::wait_until("unshare to run sleep", || {
            (lab_tests::comm(pid) == "sleep").then_some(())
        });
        held
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }

    fn state_dir(&self) -> std::path::PathBuf {
        let inode = std::fs::metadata(self.path()).expect("ns").ino();
        format!("/run/ch05-network/net-{inode}").into()
    }

    /// `ch05-network ARGS` inside it.
    fn ch05(&self, args: &[&str]) -> lab_tests::Outcome {
        Learner::new(BIN)
            .args(args)
            .wrapped(["nsenter", &format!("--net={}", self.path())])
            .output()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.ch05(&["-q", "down"]);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A namespace with a bridge, whose only process is killed: its state is garbage,
/// removed when another namespace is used for the first time.
#[test]
fn the_state_of_a_vanished_namespace_is_removed() {
    needs_root!();
    lab_tests::cgroup_free!();
    let mut held = Held::new();
    assert_eq!(held.ch05(&["-q", "run", "--", "true"]).code, 0);
    let state = held.state_dir();
    assert!(
        state.is_dir(),
        "the bridge's state is at {}",
        state.display()
    );
    // Made first: a namespace made after the held one is gone may get its inode.
    let sandbox = Sandbox::new();
    let _ = held.0.kill();
    let _ = held.0.wait();
    let out = sandbox.ch05().args(["run", "--", "true"]).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!state.exists(), "{} was left", state.display());
    assert_eq!(sandbox.ch05().args(["-q", "down"]).output().code, 0);
}

/// A run in a PID and mount namespace of its own sees none of the host's processes:
/// to it every namespace looks gone. It must leave their state alone.
#[test]
fn a_run_that_cannot_see_every_process_removes_no_state() {
    needs_root!();
    lab_tests::cgroup_free!();
    let held = Held::new();
    assert_eq!(held.ch05(&["-q", "run", "--", "true"]).code, 0);
    let sandbox = Sandbox::new();
    let out = sandbox
        .enter(Learner::new(BIN).args(["run", "--", "true"]).wrapped([
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
        ]))
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("not looking for vanished namespaces"),
        "{}",
        out.stderr
    );
    assert!(
        held.state_dir().is_dir(),
        "a live namespace's state was removed"
    );
    assert_eq!(sandbox.ch05().args(["-q", "down"]).output().code, 0);
}
