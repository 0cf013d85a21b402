//! Where groups go: a group of the tool's own at the top (made, labelled, removed
//! when empty), levels of `--parent` made and removed, controllers switched on in a
//! level we did not make and off again, and `--parent .` (beneath our own group),
//! where cgroup v2's no-internal-processes rule is met.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use lab_tests::only_on_lane;

fn label(dir: &Path, name: &str) -> Option<String> {
    xattr::get(dir, name)
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn subtree(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `PATH` (absolute, inside each hierarchy) in every hierarchy of this host.
fn everywhere(path: &str) -> Vec<PathBuf> {
    layout()
        .roots()
        .iter()
        .map(|r| r.join(path.trim_start_matches('/')))
        .collect()
}

#[test]
fn a_group_of_the_tools_own_at_the_top() {
    needs_root!();
    let name = unique("top");
    let kept = KeptGroup::new(&name, &[]);
    let dirs = leftovers(&name);
    let v2 = layout()
        .v2
        .map(|r| r.join(format!("ch03-cgroups/lab-{name}")));
    assert!(v2.is_none_or(|d| dirs.contains(&d)), "{dirs:?}");
    for dir in &dirs {
        assert!(
            dir.parent().is_some_and(|p| p.ends_with("ch03-cgroups")),
            "{}",
            dir.display()
        );
        let top = dir.parent().expect("the top group");
        assert_eq!(
            label(top, "user.lab.made-by").as_deref(),
            Some("ch03-cgroups"),
            "{} is labelled as ours",
            top.display()
        );
    }
    let listed = Learner::new(BIN).args(["ls"]).output();
    assert!(
        listed.stdout.lines().any(|l| l == name),
        "{}",
        listed.stdout
    );
    assert_eq!(kept.remove().code, 0);
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

#[test]
fn levels_of_a_parent_that_was_not_there_are_made_and_removed() {
    needs_root!();
    let top = format!("lab-made-{}", std::process::id());
    let parent = format!("/{top}/a/b");
    let out = Learner::new(BIN)
        .args(["-q", "run", "--parent", &parent, "--pids", "5"])
        .args(["--", "cat", "/proc/self/cgroup"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("{parent}/lab-")),
        "{}",
        out.stdout
    );
    for made in everywhere(&format!("/{top}")) {
        assert!(!made.exists(), "{} is left", made.display());
    }
}

// ANCHOR: undo_test
#[test]
fn controllers_switched_on_in_a_level_we_did_not_make_are_switched_off_again() {
    needs_root!();
    only_on_lane!("v2");
    // A level that is there before us, handing nothing on (a bare v2 host's root).
    let level = PathBuf::from(format!("/sys/fs/cgroup/lab-level-{}", std::process::id()));
    std::fs::create_dir(&level).expect("mkdir");
    let name = unique("undo");
    let parent = format!("/lab-level-{}", std::process::id());
    let kept = KeptGroup::new(&name, &["--parent", &parent, "--memory", "32m"]);
    let during = (subtree(&level), label(&level, "user.lab.enabled"));
    let leaf = level.join(format!("lab-{name}"));
    let leaf_label = label(&leaf, "user.lab.made-by");
    let removed = kept.remove();
    let after = (subtree(&level), label(&level, "user.lab.enabled"));
    drop(kept);
    let _ = std::fs::remove_dir(&level);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(during.0.split(' ').any(|c| c == "memory"), "{during:?}");
    assert!(
        during
            .1
            .is_some_and(|r| r.split(' ').any(|c| c == "memory")),
        "the level records what we switched on"
    );
    assert_eq!(
        leaf_label.as_deref(),
        Some("ch03-cgroups"),
        "a group right beneath a level we did not make is labelled"
    );
    assert_eq!(after, (String::new(), None), "switched off, record gone");
}
// ANCHOR_END: undo_test

/// A shell that moves itself into `group` and then runs `script_after` there.
fn from_group(group: &Path, script_after: &str) -> Learner {
    let script = format!(
        "echo $$ > {}/cgroup.procs && {{ {script_after}; }}",
        group.display()
    );
    Learner::new("/bin/sh").args(["-c", &script])
}

#[test]
fn beneath_our_own_group_alone_we_move_into_a_leaf_and_hand_controllers_on() {
    needs_root!();
    let root = layout().v2.expect("a v2 tree");
    let group = root.join(format!("lab-alone-{}", std::process::id()));
    std::fs::create_dir(&group).expect("mkdir");
    let name = unique("alone");
    let out = from_group(
        &group,
        &format!("exec {BIN} run --parent . --pids 10 --name {name} -- cat /proc/self/cgroup"),
    )
    .output();
    let left: Vec<String> = ls(&group);
    let handed_on = subtree(&group);
    let _ = std::fs::remove_dir(&group);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v2_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("0::"))
        .expect("v2");
    assert!(
        v2_line.ends_with(&format!("/lab-alone-{}/lab-{name}", std::process::id())),
        "{v2_line}"
    );
    if lab_tests::cgroup_lane() == "v2" {
        assert!(
            out.stderr.contains("we are the only process in this group"),
            "{}",
            out.stderr
        );
    }
    assert!(
        left.iter().all(|f| !f.starts_with("lab-")),
        "groups left: {left:?}"
    );
    assert_eq!(handed_on, "", "nothing left switched on");
}

#[test]
fn beneath_our_own_group_with_others_in_it_is_refused() {
    needs_root!();
    only_on_lane!("v2");
    let root = layout().v2.expect("a v2 tree");
    let group = root.join(format!("lab-crowd-{}", std::process::id()));
    std::fs::create_dir(&group).expect("mkdir");
    // Another process in the group: the shell's sleeping child (its output away
    // from the transcript's pipe, which would stay open while it sleeps).
    let (code, text) = from_group(
        &group,
        &format!("sleep 1000 >/dev/null 2>&1 & exec {BIN} -q run --parent . --memory 32m -- true"),
    )
    .redact_path(&group, "/sys/fs/cgroup/[CROWD]")
    .redact_path(BIN, "ch03-cgroups")
    .transcript();
    for pid in std::fs::read_to_string(group.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // The sleep this test started.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until("the sleep to end", || {
        std::fs::read_to_string(group.join("cgroup.procs"))
            .is_ok_and(|p| p.trim().is_empty())
            .then_some(())
    });
    let left = ls(&group);
    let handed_on = subtree(&group);
    let _ = std::fs::remove_dir(&group);
    assert_eq!(code, 125, "{text}");
    assert!(text.contains("no-internal-processes rule"), "{text}");
    assert!(left.iter().all(|f| !f.starts_with("lab-")), "{left:?}");
    assert_eq!(handed_on, "");
    snap("bad-parent-crowded-v2", &text);
}

#[test]
fn a_disk_throttled_to_a_megabyte_a_second() {
    needs_root!();
    let tmp = open_tempdir();
    let Some(disk) = lab_tests::whole_disk_of(tmp.path()) else {
        lab_tests::not_run(
            "a_disk_throttled_to_a_megabyte_a_second",
            "the temp dir is not on a disk (tmpfs?): nothing to throttle",
        );
        return;
    };
    let file = tmp.path().join("written");
    let out = Learner::new(BIN)
        .args(["run", "--device-write-bps", &format!("{disk}:1m"), "--"])
        .args([BIN, "stress", "write"])
        .args([&file])
        .arg("3m")
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // "stress: wrote 3.0 MiB in 2.99 s (1.0 MiB/s)": at 1 MiB/s, 3 MiB cannot take
    // less than about 2 s (the kernel lets a first slice through at once).
    let seconds: f64 = out
        .stdout
        .split_whitespace()
        .nth(5)
        .and_then(|s| s.parse().ok())
        .expect("a time");
    assert!(seconds > 1.5, "{}", out.stdout);
    let written = if lab_tests::cgroup_lane() == "v2" {
        "io.max"
    } else {
        "blkio.throttle.write_bps_device"
    };
    assert!(out.stderr.contains(written), "{}", out.stderr);
    assert!(out.stderr.contains("3.0 MiB written"), "{}", out.stderr);
}
