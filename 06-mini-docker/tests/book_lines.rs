//! The shell lines of the chapter's and the security part's pages beyond the first
//! commands, run as the pages write them: in the test's sandbox network namespace and
//! store (`/var/lib/mini-docker` its store), in a PID and mount namespace of its own
//! (`pgrep -n sleep` finds its sleep), a line marked `# v1` or `# v2` on that cgroup
//! version (CI's two lanes run both).

mod common;

use common::*;
use lab_tests::book_lines::{
    exit_codes, for_this_host, isolated, replaced, sh_block, with_exit_codes,
};

/// What a failing block left is removed in its own PID namespace (from the host's,
/// its state's PIDs name other processes).
const LEFT_BEHIND: &str = "left=$(mini-docker ps -aq); [ -z \"$left\" ] || mini-docker rm -f $left";

/// A block of the book, run for this host; with `codes`, each line's
/// exit code printed and the script going on after a failure.
fn run_block(docker: &Docker, block: Vec<String>, codes: bool) -> lab_tests::Outcome {
    let root = docker.root().display().to_string();
    let dir = docker
        .root()
        .parent()
        .expect("the test's dir")
        .display()
        .to_string();
    let mut lines = vec![format!("cd {dir}")];
    lines.extend(for_this_host(replaced(
        block,
        &[("/var/lib/mini-docker", &root)],
    )));
    if codes {
        lines = with_exit_codes(&lines);
    }
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = docker
        .sandbox
        .enter(isolated(&lines, programs, LEFT_BEHIND).env("MINI_DOCKER_ROOT", &root))
        .output();
    assert!(
        docker.containers().is_empty(),
        "the block ends with rm -f: {}",
        out.stderr
    );
    out
}

fn assert_shows(out: &lab_tests::Outcome, seen: &[&str]) {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for s in seen {
        assert!(out.stdout.contains(s), "{s:?} in {}", out.stdout);
    }
}

/// The build and registry pages' blocks run the tests of build.rs and registry.rs
/// already run on the emulated lane (see there).
const BOOK_ON_NATIVE: &str = "its commands are those of build.rs's and registry.rs's first tests, \
     which the emulated cgroup v2 lane runs; left to the native lane to keep CI within 30 minutes";

#[test]
fn ch06_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("ch06/from-the-host.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &[
            "config.json",
            "not in the host's mount table",
            "2048\n",
            "NoNewPrivs:\t1",
        ],
    );
    assert!(out.stdout.contains(" - overlay overlay "), "{}", out.stdout);
}

/// The build page's block, from a copy of the example at the path the page uses.
#[test]
fn build_look_from_the_host() {
    needs_root!();
    native_lane_only!(BOOK_ON_NATIVE);
    let docker = Docker::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dockerfiles/greeter");
    let into = docker.root().with_file_name("06-mini-docker/dockerfiles");
    std::fs::create_dir_all(&into).expect("mkdir");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&example)
        .arg(&into)
        .status()
        .expect("cp");
    assert!(copied.success());
    let out = run_block(
        &docker,
        sh_block("ch06/build.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &["<none>", "COPY --from=build file:", "hello, world\n"],
    );
    // The build stage's bulk (512 KiB) is in the store, in a layer of its own.
    let mut bulk = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok());
    assert!(bulk.any(|k| (512..600).contains(&k)), "{}", out.stdout);
}

/// The volume page's block: the store's files, the bind in the container's mount
/// table, and `volume rm` refused while a container uses the volume.
#[test]
fn volumes_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("ch06/volumes.md", "Look from the host"),
        true,
    );
    // After `cd`: create, run, ls, cat, run -d, grep, rm refused, rm -f, rm.
    assert_eq!(
        exit_codes(&out.stdout),
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("\"Mountpoint\": "), "{}", out.stdout);
    assert!(
        out.stdout.contains("/volumes/notes/_data /notes "),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("volume is in use"), "{}", out.stderr);
    assert!(!docker.root().join("volumes/notes").exists());
}

/// The networks page's block: the bridge, its isolation rules, the address book.
#[test]
fn networks_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("ch06/networks.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &[
            "br-",
            "CH05-ISOLATION-1",
            "\tdb database\n",
            "1 packets received",
        ],
    );
}

/// The compose page's block, in a copy of the example at the path the page uses.
#[test]
fn compose_look_from_the_host() {
    needs_root!();
    native_lane_only!("compose.rs's project test runs on this lane");
    let docker = Docker::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/notes");
    let into = docker
        .root()
        .with_file_name("06-mini-docker/compose/notes/site");
    std::fs::create_dir_all(&into).expect("mkdir");
    for file in ["compose.yaml", "site/index.html"] {
        std::fs::copy(example.join(file), into.parent().expect("notes").join(file)).expect("copy");
    }
    let out = run_block(
        &docker,
        sh_block("ch06/compose.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &[
            "notes-web-1",
            "notes_default",
            "notes_notes",
            "\"com.docker.compose.service\": \"db\"",
        ],
    );
}

/// The restart page's block: a crash from the host, the same monitor, a new PID.
#[test]
fn restart_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("ch06/restart-health.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &["\"Name\": \"always\"", "\"MonitorPid\": ", "\"Status\": \""],
    );
}

/// Push to a registry in the sandbox (the one the page starts by hand), then look.
#[test]
fn registries_look_from_the_host() {
    needs_root!();
    native_lane_only!(BOOK_ON_NATIVE);
    let docker = Docker::new();
    let _registry = lab_tests::registry::LocalRegistry::start(&docker.sandbox.host, false);
    let out = run_block(
        &docker,
        sh_block("ch06/registries.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &[r#"{"name":"lab/bb","tags":["1"]}"#, "\"schemaVersion\":2"],
    );
    // Each blob's name is its own digest: the line's two halves agree.
    let blobs: Vec<&str> = out.stdout.lines().filter(|l| l.ends_with("  -")).collect();
    assert!(!blobs.is_empty(), "{}", out.stdout);
    for line in blobs {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), words.next(), "{line}");
    }
}

#[test]
fn security_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/from-the-host.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &["CapAmb:\t0000000000000000", "Seccomp:\t2", "2048\n"],
    );
}

#[test]
fn security_narrated() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/from-the-host.md", "Narrated"),
        false,
    );
    assert_shows(&out, &["seccomp", "PR_SET_NO_NEW_PRIVS"]);
}

/// The attacker's lines, typed in a container: the node is made, the open refused.
#[test]
fn devices_what_the_attacker_does() {
    needs_root!();
    let docker = Docker::new();
    let attack =
        lab_tests::book_lines::script(&sh_block("security/devices.md", "What the attacker does"));
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &attack,
    ]);
    assert_ne!(out.code, 0, "the disk was read: {}", out.stdout);
    assert!(
        out.stderr
            .contains("head: /tmp/disk: Operation not permitted"),
        "{}",
        out.stderr
    );
}

/// One device, read-only: its first bytes, then the write refused.
#[test]
fn devices_given_with_device() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(&docker, sh_block("security/devices.md", "`--device`"), true);
    // After `cd`: the run, whose write is refused.
    assert_eq!(
        exit_codes(&out.stdout),
        [0, 1],
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr
            .contains("can't create /dev/xvda: Operation not permitted"),
        "{}",
        out.stderr
    );
}

#[test]
fn devices_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/devices.md", "Look from the host"),
        false,
    );
    assert_shows(&out, &["cgroup_device", "device"]);
}

#[test]
fn init_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/init.md", "Look from the host"),
        true,
    );
    // After `cd`: the run; cat refused; ls -l lists the names and says
    // for each that where it leads is refused, yet exits 0; the host's look; rm.
    assert_eq!(
        exit_codes(&out.stdout),
        [0, 0, 1, 0, 0, 0, 0],
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("/proc/1/environ': Permission denied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("/proc/1/fd/0: cannot read link: Permission denied"),
        "the container read where its init's descriptors lead: {}",
        out.stderr
    );
    assert!(
        out.stdout.contains("anon_inode:[signalfd]"),
        "{}",
        out.stdout
    );
}

#[test]
fn loopback_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/loopback.md", "Look from the host"),
        false,
    );
    assert_shows(
        &out,
        &["route_localnet = 1", "-d 127.0.0.0/8 -i lab0", "-j DROP"],
    );
}

#[test]
fn router_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/router.md", "Look from the host"),
        false,
    );
    assert_shows(&out, &["accept_ra = 0", "disable_ipv6 = 1"]);
}

#[test]
fn still_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/still.md", "Look from the host"),
        false,
    );
    assert_shows(&out, &["cgroup.freeze\n", "echo 1 > ", "echo 0 > "]);
}

#[test]
fn store_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/store.md", "Look from the host"),
        false,
    );
    assert_shows(&out, &["drwx------ ", "-rw------- 1 root root"]);
}

#[test]
fn terminal_look_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    let out = run_block(
        &docker,
        sh_block("security/terminal.md", "Look from the host"),
        false,
    );
    assert_shows(&out, &["0 -> /dev/null", "1 -> pipe:["]);
}
