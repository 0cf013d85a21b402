//! The container's cgroup: `/mini-docker/ID` in each hierarchy (or beneath
//! `--cgroup-parent`), a cgroup namespace of its own on cgroup v2 (Docker's default
//! there) with its own read-only `/sys/fs/cgroup`, disk throttles, and stats.

mod common;

use std::path::{Path, PathBuf};

use common::*;

// ANCHOR: cgroupns_test
#[test]
fn the_container_sees_its_own_group_as_the_root_on_cgroup_v2() {
    needs_root!();
    let docker = Docker::new();
    let show = "cat /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/mounts; \
                cat /sys/fs/cgroup/memory.max 2>/dev/null; \
                touch /sys/fs/cgroup/x 2>/dev/null || echo read-only";
    docker.run_detached("box", &["-m", "64m", "busybox", "sleep", "1000"]);
    let id = docker.id("box");
    let inside = docker.out(&["exec", "box", "sh", "-c", show]);
    assert_eq!(inside.code, 0, "{}", inside.stderr);
    let host_view = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroupns",
        "host",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]);
    let private_everywhere = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroupns",
        "private",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]);
    match lab_tests::cgroup_lane() {
        "v2" => {
            // Docker's default on v2: the container's group is its root, mounted
            // read-only (source "cgroup", as runc mounts it), with its own limits in it.
            assert!(inside.stdout.starts_with("0::/\n"), "{}", inside.stdout);
            assert!(
                inside.stdout.contains("cgroup /sys/fs/cgroup cgroup2 ro,"),
                "{}",
                inside.stdout
            );
            assert!(inside.stdout.contains("67108864\n"), "{}", inside.stdout);
            assert!(inside.stdout.ends_with("read-only\n"), "{}", inside.stdout);
        }
        _ => {
            // Docker's default on v1 and hybrid hosts: the host's cgroup namespace.
            let v2 = inside
                .stdout
                .lines()
                .find(|l| l.starts_with("0::"))
                .expect("a v2 line");
            assert_eq!(v2, format!("0::/mini-docker/{id}"));
        }
    }
    assert!(
        host_view
            .stdout
            .lines()
            .any(|l| l.starts_with("0::/mini-docker/")),
        "{}",
        host_view.stdout
    );
    assert!(
        private_everywhere.stdout.lines().all(|l| l.ends_with(":/")),
        "{}",
        private_everywhere.stdout
    );
}
// ANCHOR_END: cgroupns_test

#[test]
fn cgroup_parent_puts_the_group_there_and_takes_what_it_made_away() {
    needs_root!();
    let docker = Docker::new();
    let top = format!("lab-parent-{}", std::process::id());
    let parent = format!("/{top}/web");
    docker.run_detached(
        "web",
        &["--cgroup-parent", &parent, "busybox", "sleep", "1000"],
    );
    let id = docker.id("web");
    let groups = cgroups_of(&id);
    let inspect = docker.out(&["inspect", "web"]).stdout;
    assert_eq!(docker.out(&["rm", "-f", "web"]).code, 0);
    assert!(!groups.is_empty());
    for group in &groups {
        assert!(group.ends_with(&format!("{parent}/{id}")), "{group}");
    }
    assert!(
        inspect.contains(&format!("\"CgroupParent\": \"{parent}\"")),
        "{inspect}"
    );
    let made: Vec<PathBuf> = groups
        .iter()
        .filter_map(|g| {
            Path::new(g)
                .ancestors()
                .find(|a| a.ends_with(&top))
                .map(Path::to_path_buf)
        })
        .collect();
    assert!(made.iter().all(|m| !m.exists()), "left: {made:?}");
}

#[test]
fn a_disk_throttle_and_the_block_io_in_stats() {
    needs_root!();
    let docker = Docker::new();
    let data = open_tempdir();
    let Some(disk) = lab_tests::whole_disk_of(data.path()) else {
        lab_tests::not_run(
            "a_disk_throttle_and_the_block_io_in_stats",
            "the temp dir is not on a disk (tmpfs?): nothing to throttle",
        );
        return;
    };
    let volume = format!("{}:/data", data.path().display());
    // dd's own duration, from /proc/uptime before and after (busybox's dd says none).
    let write = "a=$(cut -d' ' -f1 /proc/uptime); \
                 dd if=/dev/zero of=/data/f bs=64k count=48 oflag=direct 2>/dev/null; \
                 b=$(cut -d' ' -f1 /proc/uptime); echo \"$a $b\" > /data/time; \
                 mv /data/time /data/done; sleep 1000";
    docker.run_detached(
        "writer",
        &[
            "--device-write-bps",
            &format!("{disk}:1mb"),
            "-v",
            &volume,
            "busybox",
            "sh",
            "-c",
            write,
        ],
    );
    let times = wait_until("dd to finish", || {
        std::fs::read_to_string(data.path().join("done")).ok()
    });
    let stats = docker.out(&["stats", "--no-stream", "writer"]).stdout;
    assert_eq!(docker.out(&["rm", "-f", "writer"]).code, 0);
    let t: Vec<f64> = times
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(
        t.len() == 2 && t[1] - t[0] > 1.5,
        "3 MiB at 1 MiB/s took: {times}"
    );
    assert!(stats.contains("BLOCK I/O"), "{stats}");
    assert!(stats.contains("/ 3.0 MiB"), "3 MiB written: {stats}");
}
