//! Look from the host: a chrooted process is an ordinary process, and /proc shows
//! its root directory as a host path.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The first child of `pid`, once it has become `sleep` (busybox) inside the rootfs.
fn chrooted_child(pid: u32, rootfs: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = children
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
        {
            let exe = std::fs::read_link(format!("/proc/{child}/exe")).unwrap_or_default();
            if exe.starts_with(rootfs) {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the chrooted sleep never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn proc_shows_the_root_of_a_chrooted_process() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let mut tool = std::process::Command::new(BIN)
        .args(["-q", "run"])
        .arg(&rootfs)
        .args(["--", "sleep", "60"])
        .spawn()
        .expect("spawn");
    let sleeper = chrooted_child(tool.id(), &rootfs);

    let mut shown = String::new();
    for args in [
        vec!["readlink".to_string(), format!("/proc/{sleeper}/root")],
        vec!["ls".to_string(), format!("/proc/{sleeper}/root/")],
        vec!["readlink".to_string(), format!("/proc/{sleeper}/exe")],
        vec!["readlink".to_string(), format!("/proc/{sleeper}/cwd")],
    ] {
        let (code, text) = Learner::new(&args[0])
            .args(&args[1..])
            .redact_path(tmp.path(), "/tmp/lab-XXXXXX")
            .transcript();
        assert_eq!(code, 0, "{text}");
        shown.push_str(&text);
    }
    assert!(
        shown.contains("/tmp/lab-XXXXXX/rootfs\n[exit 0]"),
        "{shown}"
    );

    // End the sleep we started, by its PID; ch01-chroot reports 128 + SIGTERM.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    assert_eq!(tool.wait().expect("wait").code(), Some(128 + 15));
    snap("from-the-host", &shown);
}
