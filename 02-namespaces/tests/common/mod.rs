//! What every chapter 02 test shares.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

pub use lab_tests::{Learner, children, comm, ls, needs_root, open_tempdir, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_ch02-namespaces");
/// An unprivileged user for the rootless tests (no passwd entry is needed).
pub const USER: u32 = 1000;

pub fn ch02(dir: &Path) -> Learner {
    Learner::new(BIN).redact_path(dir, "/tmp/lab-XXXXXX")
}

pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

/// A busybox rootfs made by chapter 01's library, in a fresh temp dir, plus extra
/// host programs (`add`) with their libraries.
pub fn rootfs_with(add: &[&str]) -> (tempfile::TempDir, PathBuf) {
    labkit::narrate::set_quiet(true);
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let options = ch01_chroot::rootfs::Options {
        source: Some(ch01_chroot::rootfs::Source::Busybox),
        force: false,
        add: add.iter().map(PathBuf::from).collect(),
    };
    ch01_chroot::rootfs::build(&rootfs, &options)
        .expect("a busybox rootfs (apt-get install busybox-static)");
    (tmp, rootfs)
}

pub fn busybox_rootfs() -> (tempfile::TempDir, PathBuf) {
    rootfs_with(&[])
}

/// A `ch02-namespaces run ...` in the background, with its container's first
/// process (`pid`, a host PID) once that runs `comm`. Killed and reaped on drop.
pub struct Background {
    pub tool: std::process::Child,
    pub pid: u32,
}

impl Background {
    pub fn start(args: &[&str], uid: Option<u32>, comm_wanted: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("-q").args(args).stdin(std::process::Stdio::null());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let tool = cmd.spawn().expect("spawn");
        let tool_pid = tool.id();
        // From here on, dropped (a timeout's panic included) means ended.
        let mut started = Background { tool, pid: 0 };
        started.pid = wait_until("the container's first process", || {
            children(tool_pid)
                .into_iter()
                .find(|c| comm(*c) == comm_wanted)
        });
        started
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // The container's PID 1: we started it. Killing it ends its PID namespace.
        lab_tests::end_background(&mut self.tool, self.pid);
    }
}

/// A container named `box` with its own PIDs, root in `rootfs`, sleeping 30 s.
pub fn sleeping_box(rootfs: &Path) -> Background {
    let rootfs = rootfs.to_string_lossy().into_owned();
    let args = [
        "run",
        "--hostname",
        "box",
        "--pid",
        "--rootfs",
        &rootfs,
        "--",
        "sleep",
        "30",
    ];
    Background::start(&args, None, "sleep")
}

/// Inode numbers `[4026531838]` as `[A]`, `[B]`, ... in order of first appearance:
/// the same namespace keeps the same letter, so a transcript still shows what is shared.
pub fn letter_inodes(text: &str) -> String {
    let re = regex_lite(r"\[(\d{6,})\]");
    let mut seen: Vec<String> = vec![];
    re.replace_all(text, |c: &regex::Captures| {
        let n = c[1].to_string();
        let i = seen.iter().position(|s| *s == n).unwrap_or_else(|| {
            seen.push(n);
            seen.len() - 1
        });
        // Padded to the width of the number it replaces, so that columns still line up.
        let short = format!("[ns-{}]", (b'A' + i as u8) as char);
        format!("{short:<width$}", width = c[0].len())
    })
    .into_owned()
}

fn regex_lite(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("regex")
}
