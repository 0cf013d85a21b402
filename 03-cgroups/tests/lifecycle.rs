//! Kept groups: stats, freeze, thaw, kill, rm, ls; and no group left behind after
//! a run, an error or Ctrl-C.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// The number a counting shell last wrote.
fn count(file: &std::path::Path) -> u64 {
    wait_until("a count", || {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    })
}

/// A `run --keep` in the background; on drop (even after a failed assertion) its
/// group is killed and removed, and the tool reaped.
struct Kept {
    name: String,
    run: std::process::Child,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = Learner::new(BIN).args(["-q", "kill", &self.name]).output();
        let _ = self.run.wait();
        let _ = Learner::new(BIN).args(["-q", "rm", &self.name]).output();
    }
}

#[test]
fn freeze_stops_a_counter_and_thaw_resumes_it() {
    needs_root!();
    let tmp = open_tempdir();
    let file = tmp.path().join("count");
    let name = unique("counter");
    // Write, then rename: the file always holds a whole number, even when frozen mid-way.
    let f = file.display();
    let script = format!("i=0; while :; do i=$((i+1)); echo $i > {f}.new; mv {f}.new {f}; done");
    let run = Command::new(BIN)
        .args([
            "-q", "run", "--keep", "--name", &name, "--", "/bin/sh", "-c", &script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut kept = Kept {
        name: name.clone(),
        run,
    };
    wait_until("counting", || file.exists().then_some(()));
    let tool = |args: &[&str]| {
        Learner::new(BIN)
            .args(["-q"])
            .args(args)
            .args([&name])
            .output()
    };

    let listed = Learner::new(BIN).args(["ls"]).output();
    assert!(
        listed.stdout.lines().any(|l| l == name),
        "{}",
        listed.stdout
    );

    let out = tool(&["freeze"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let frozen_at = count(&file);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(count(&file), frozen_at, "frozen: no CPU time, no progress");
    let stats = tool(&["stats"]);
    assert!(stats.stdout.contains(", frozen"), "{}", stats.stdout);

    let out = tool(&["thaw"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_until("counting again", || {
        (count(&file) > frozen_at).then_some(())
    });

    let out = tool(&["kill"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        kept.run.wait().expect("wait").code(),
        Some(137),
        "killed: 128 + SIGKILL"
    );
    assert!(!leftovers(&name).is_empty(), "--keep kept the group");
    let out = tool(&["rm"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
}

#[test]
fn no_group_is_left_after_a_command_that_cannot_start() {
    needs_root!();
    let name = unique("missing");
    let out = Learner::new(BIN)
        .args([
            "-q",
            "run",
            "--memory",
            "16m",
            "--name",
            &name,
            "--",
            "/no/such/program",
        ])
        .output();
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
}

#[test]
fn no_group_is_left_after_ctrl_c() {
    needs_root!();
    use std::os::unix::process::CommandExt;
    let name = unique("ctrlc");
    let mut run = Command::new(BIN)
        .args([
            "-q", "run", "--pids", "20", "--name", &name, "--", "sleep", "30",
        ])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pgid = nix::unistd::Pid::from_raw(run.id() as i32);
    // Once the sleep runs in its group, press Ctrl-C (SIGINT to the process group).
    // Not before it has exec'd: until then the child still ignores SIGINT, as its
    // parent does, and the key press would be lost.
    wait_until("the sleep to run in its group", || {
        leftovers(&name)
            .iter()
            .any(|d| {
                std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| {
                    p.split_whitespace().any(|pid| {
                        std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim() == "sleep")
                    })
                })
            })
            .then_some(())
    });
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    assert_eq!(run.wait().expect("wait").code(), Some(130));
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
}

#[test]
fn the_host_sees_the_group_in_proc_and_in_its_files() {
    needs_root!();
    let name = unique("seen");
    let run = Command::new(BIN)
        .args([
            "-q", "run", "--keep", "--pids", "10", "--name", &name, "--", "sleep", "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _kept = Kept {
        name: name.clone(),
        run,
    };
    let pids_dir = wait_until("the group", || {
        leftovers(&name).into_iter().find(|d| {
            d.join("pids.max").exists()
                && !std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
        })
    });
    let pid = std::fs::read_to_string(pids_dir.join("cgroup.procs"))
        .expect("procs")
        .trim()
        .to_string();
    let mut shown = String::new();
    let top = pids_dir.parent().expect("/ch03-cgroups");
    let files: [Vec<String>; 4] = [
        vec!["cat".into(), format!("/proc/{pid}/cgroup")],
        vec![
            "cat".into(),
            pids_dir.join("pids.max").display().to_string(),
            pids_dir.join("pids.current").display().to_string(),
        ],
        vec![
            "cat".into(),
            pids_dir.join("cgroup.procs").display().to_string(),
        ],
        // The label that says whose the level is.
        vec![
            "getfattr".into(),
            "--absolute-names".into(),
            "-d".into(),
            top.display().to_string(),
        ],
    ];
    for args in files {
        let mut cat = Learner::new(&args[0])
            .args(&args[1..])
            .redact_path(&pid, "[PID]")
            .redact_path(&name, "seen");
        for path in layout().own.values().filter(|p| p.as_str() != "/") {
            cat = cat.redact_path(path, "/[OUR-CGROUP]");
        }
        let (code, text) = cat.transcript();
        assert_eq!(code, 0, "{text}");
        shown.push_str(&text);
    }
    assert!(
        shown.contains("\n10\n1\n"),
        "pids.max and pids.current: {shown}"
    );
    snap_per_lane("from-the-host", &shown);
}
