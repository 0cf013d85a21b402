//! Each limit, with the tool as its own load: what the kernel does at the limit.

mod common;

use common::*;

#[test]
fn no_subcommand_explains_the_chapter() {
    let (code, text) = Learner::new(BIN).transcript();
    assert_eq!(code, 0);
    snap("help", &text);
}

#[test]
fn pids_forks_are_refused_and_the_run_completes() {
    needs_root!();
    let name = unique("pids");
    let out = ch03()
        .args([
            "-q", "run", "--pids", "10", "--name", &name, "--", BIN, "stress", "fork", "50",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("stress: started"))
        .expect("a summary");
    let started: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(started <= 9 && started > 0, "{line}");
    assert!(out.stderr.contains("forks refused:"), "{}", out.stderr);
    assert!(leftovers(&name).is_empty());
}

#[test]
fn cpus_a_fifth_of_a_cpu_gets_a_fifth_of_the_time() {
    needs_root!();
    let out = ch03()
        .args([
            "-q", "run", "--cpus", "0.2", "--", BIN, "stress", "cpu", "2",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // "stress: 0.41 s of CPU in 2.00 s"
    let words: Vec<f64> = out
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (cpu, wall) = (words[0], words[1]);
    assert!(
        cpu < 0.6 * wall,
        "{cpu} s of CPU in {wall} s: a generous bound for 20%"
    );
    assert!(out.stderr.contains("throttled:"), "{}", out.stderr);
}

#[test]
fn cpuset_pins_to_cpu_0() {
    needs_root!();
    let out = ch03()
        .args([
            "-q",
            "run",
            "--cpuset",
            "0",
            "--",
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.split_whitespace().last(), Some("0"));
}

#[test]
fn the_process_is_in_its_group_in_every_hierarchy() {
    needs_root!();
    let name = unique("member");
    let out = ch03()
        .args([
            "-q",
            "run",
            "--name",
            &name,
            "--",
            "cat",
            "/proc/self/cgroup",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let layout = layout();
    if layout.v2.is_some() {
        let v2 = out
            .stdout
            .lines()
            .find(|l| l.starts_with("0::"))
            .expect("a v2 line");
        assert!(v2.ends_with(&format!("/lab-{name}")), "v2 membership: {v2}");
    }
    for controller in ["memory", "pids"] {
        if layout.version_of(controller, &labkit::doctor::Host::real()) == Some(1) {
            let line = out
                .stdout
                .lines()
                .find(|l| l.split(':').nth(1) == Some(controller))
                .expect("a v1 line");
            assert!(
                line.ends_with(&format!("/lab-{name}")),
                "{controller}: {line}"
            );
        }
    }
}

#[test]
fn with_chapter_02s_isolation_in_a_rootfs() {
    needs_root!();
    labkit::narrate::set_quiet(true);
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let options = ch01_chroot::rootfs::Options {
        add: vec![BIN.into()],
        ..Default::default()
    };
    ch01_chroot::rootfs::build(&rootfs, &options).expect("rootfs");
    let out = ch03()
        .args([
            "-q",
            "run",
            "--memory",
            "16m",
            "--pid",
            "--hostname",
            "box",
            "--rootfs",
        ])
        .args([&rootfs])
        .args(["--", "/bin/ch03-cgroups", "stress", "memory", "64m"])
        .output();
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert!(out.stderr.contains("OOM-killed:    yes"), "{}", out.stderr);
}

#[test]
fn swap_and_weight_are_written_where_this_host_keeps_them() {
    needs_root!();
    let name = unique("files");
    let out = ch03()
        .args([
            "-q",
            "run",
            "--keep",
            "--name",
            &name,
            "--memory",
            "32m",
            "--memory-swap",
            "64m",
            "--cpu-weight",
            "200",
        ])
        .args(["--", "true"])
        .output();
    let dirs = leftovers(&name);
    let read = |files: &[&str]| {
        dirs.iter()
            .flat_map(|d| files.iter().map(move |f| d.join(f)))
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|v| v.trim().to_string())
    };
    let swap = read(&["memory.memsw.limit_in_bytes", "memory.swap.max"]);
    let weight = read(&["cpu.shares", "cpu.weight"]);
    let _ = Learner::new(BIN).args(["-q", "rm", &name]).output();
    if out.stderr.contains("keeps no swap accounts") {
        eprintln!("this kernel has no v1 swap accounting: --memory-swap refused, as it should be");
        return;
    }
    assert_eq!(out.code, 0, "{}", out.stderr);
    // v1 counts memory+swap (64m); v2 counts swap alone (64m - 32m).
    assert!(
        swap == Some((64u64 << 20).to_string()) || swap == Some((32u64 << 20).to_string()),
        "{swap:?}"
    );
    // v1 shares for weight 200, or v2's weight itself.
    assert!(
        weight == Some(ch03_cgroups::limits::weight_to_shares(200).to_string())
            || weight == Some("200".into()),
        "{weight:?}"
    );
    assert!(leftovers(&name).is_empty());
}

/// Pure cgroup v1 hosts (no v2 tree at all) keep the device list in the `devices`
/// controller: seen here on a hybrid host by leaving its v2 tree out of the layout.
/// A shell in the group may use /dev/null and make nodes, and opens nothing else.
#[test]
fn the_v1_device_controller_allows_only_its_list() {
    needs_root!();
    lab_tests::only_on_lane!("hybrid");
    use ch03_cgroups::devices::DeviceRule;
    use ch03_cgroups::group::Group;
    let mut layout = layout();
    layout.v2 = None;
    let host = labkit::doctor::Host::real();
    let rules: Vec<DeviceRule> = ["c 1:3 rwm", "c *:* m", "b *:* m"]
        .into_iter()
        .map(|r| DeviceRule::parse(r).expect("a rule"))
        .collect();
    let limits = ch03_cgroups::limits::Limits {
        devices: Some(rules),
        ..Default::default()
    };
    let place = ch03_cgroups::place::Place::new("/ch03-cgroups", &format!("lab-{}", unique("dev")))
        .expect("a place");
    let mut group = Group::create(&layout, &host, &place, &limits).expect("the group");
    let dir = group
        .dir_for("devices")
        .expect("a v1 devices group")
        .path
        .clone();
    let list = std::fs::read_to_string(dir.join("devices.list")).unwrap_or_default();
    let script = format!(
        "echo $$ > {}; echo x > /dev/null && echo null written; head -c 1 /dev/zero; \
         mknod /tmp/zero-{} c 1 5 && echo zero made",
        dir.join("cgroup.procs").display(),
        std::process::id()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output();
    let _ = std::fs::remove_file(format!("/tmp/zero-{}", std::process::id()));
    group.remove();
    let out = out.expect("sh runs");
    assert_eq!(list, "c 1:3 rwm\nc *:* m\nb *:* m\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "null written\nzero made\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    assert_eq!(leftovers(&unique("dev")), Vec::<std::path::PathBuf>::new());
}

/// The fork bomb of the exercises page, run as the page writes it: each fork past
/// the limit fails, and the run ends when its shell does, the group with it.
#[test]
fn the_books_fork_bomb_stops_at_the_pids_limit() {
    needs_root!();
    let lines =
        lab_tests::book_lines::sh_block("ch03/exercises.md", "Without a check: the fork bomb");
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = lab_tests::book_lines::shell(&lines, programs).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("fork"),
        "forks past the limit fail: {}",
        out.stderr
    );
}
