//! Engines we did not write drive `mini-runc`: podman (through conmon, its shim)
//! runs, execs into, pauses and removes containers with it. Each engine runs in a
//! mount and PID namespace of the test's own, with tmpfs over /run and /var/lib
//! (where it keeps things by default) and its storage in a temp dir; its cgroups
//! go under a parent of the test's own, removed at the end.

mod common;

use common::*;

const RUNC: &str = env!("CARGO_BIN_EXE_mini-runc");

/// Is `program` on PATH?
fn installed(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A temp dir with chapter 01's busybox rootfs in it (`rootfs`), when `programs`
/// are installed; otherwise the test is reported as not run.
fn with_rootfs(test: &str, programs: &[&str]) -> Option<tempfile::TempDir> {
    if let Some(missing) = programs.iter().find(|p| !installed(p)) {
        let why = format!("{missing} is not installed (apt-get install {missing}; .ci/run does)");
        lab_tests::not_run(test, &why);
        return None;
    }
    let dir = open_tempdir();
    labkit::narrate::set_quiet(true);
    let options = ch01_chroot::rootfs::Options {
        source: Some(ch01_chroot::rootfs::Source::Busybox),
        force: false,
        add: vec![],
    };
    ch01_chroot::rootfs::build(&dir.path().join("rootfs"), &options).expect("a busybox rootfs");
    Some(dir)
}

/// The controllers the v2 root hands on to its children when this is made; those
/// an engine switched on meanwhile (runc and podman switch on every one there is,
/// and leave them on) are switched off again when it is dropped.
struct HandedOn(Option<(std::path::PathBuf, String)>);

/// One engine at a time: what each switches on is then its own to switch off.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl HandedOn {
    fn now() -> (HandedOn, std::sync::MutexGuard<'static, ()>) {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (HandedOn::read(), turn)
    }

    fn read() -> HandedOn {
        let file = [
            "/sys/fs/cgroup/cgroup.subtree_control",
            "/sys/fs/cgroup/unified/cgroup.subtree_control",
        ]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|f| f.exists());
        HandedOn(file.map(|f| {
            let had = std::fs::read_to_string(&f).unwrap_or_default();
            (f, had)
        }))
    }
}

impl Drop for HandedOn {
    fn drop(&mut self) {
        let Some((file, had)) = &self.0 else { return };
        let now = std::fs::read_to_string(file).unwrap_or_default();
        let had: Vec<&str> = had.split_whitespace().collect();
        for added in now.split_whitespace().filter(|c| !had.contains(c)) {
            let _ = std::fs::write(file, format!("-{added}"));
        }
    }
}

#[test]
fn podman_runs_containers_with_mini_runc() {
    needs_root!();
    let _handed_on = HandedOn::now();
    let Some(dir) = with_rootfs("podman_runs_containers_with_mini_runc", &["podman"]) else {
        return;
    };
    let d = dir.path().display();
    let parent = format!("lab-podman-{}", std::process::id());
    // In this sandbox podman needs its ulimits given (its default asks for more
    // than the sandbox allows); cgroupfs, as there may be no systemd.
    std::fs::write(
        dir.path().join("containers.conf"),
        format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             [network]\n\
             network_config_dir = \"{d}/net\"\n"
        ),
    )
    .expect("containers.conf");
    let podman = format!(
        "podman --root {d}/storage --runroot {d}/run --storage-driver vfs --runtime {RUNC}"
    );
    let run = format!("--network none --cgroup-parent /{parent}");
    let lines: Vec<String> = [
        "set -e".to_string(),
        // podman's default places, private to this mount namespace
        "mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib".to_string(),
        format!("export CONTAINERS_CONF={d}/containers.conf"),
        format!("P='{podman}'"),
        format!("tar -C {d}/rootfs -cf {d}/busybox.tar ."),
        format!("$P import -q {d}/busybox.tar localhost/busybox >/dev/null"),
        format!(
            "$P run --rm {run} localhost/busybox sh -c 'echo hi from podman; grep Seccomp: /proc/self/status; id'"
        ),
        format!("$P run -d --name web {run} localhost/busybox sleep 1000 >/dev/null"),
        "$P exec web sh -c 'echo in web; ps -o args'".to_string(),
        "$P exec web nosuch 2>/dev/null || echo \"podman exec nosuch: exit $?\"".to_string(),
        "$P exec -t web tty".to_string(),
        "$P pause web >/dev/null; $P inspect -f '{{.State.Status}}' web".to_string(),
        "$P unpause web >/dev/null; $P inspect -f '{{.State.Status}}' web".to_string(),
        "$P rm -f -t 0 web >/dev/null".to_string(),
        "$P ps -a --format '{{.Names}}' | wc -l".to_string(),
    ]
    .into();
    let programs = std::path::Path::new(RUNC).parent().expect("target/debug");
    let out = lab_tests::book_lines::isolated(&lines, programs, "$P rm -a -f -t 0 >/dev/null 2>&1")
        .output();
    lab_tests::remove_cgroups(&parent);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        cgroups_of(&parent),
        Vec::<String>::new(),
        "podman's cgroups are left"
    );
    snap("engines_podman", &out.stdout.replace('\r', ""));
}

/// mini-docker drives runtimes of others' (`--runtime`) as containerd's shim does:
/// runc, and mini-runc through its command line, on the bundle the monitor writes.
#[test]
fn mini_docker_drives_runc_and_mini_runc() {
    needs_root!();
    let _handed_on = HandedOn::now();
    if !installed("runc") {
        lab_tests::not_run(
            "mini_docker_drives_runc_and_mini_runc",
            "runc is not installed (apt-get install runc; .ci/run does)",
        );
        return;
    }
    let mut transcript = String::new();
    for runtime in ["runc", RUNC] {
        let docker = Docker::new();
        let md = |args: &[&str]| docker.md().args(["--runtime", runtime]).args(args);
        transcript += &format!(
            "=== --runtime {}\n",
            if runtime == RUNC {
                "mini-runc"
            } else {
                runtime
            }
        );
        for args in [
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "echo hi; grep Seccomp: /proc/self/status; exit 3",
            ][..],
            &["run", "--rm", "--network", "none", "busybox", "nosuch"],
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "ip -4 addr show eth0 | grep -c inet",
            ],
        ] {
            let (code, text) = md(args).transcript();
            transcript += &text.replace(runtime, "RUNTIME");
            assert_ne!(code, 125, "{text}");
        }
        let out = md(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo logged; sleep 1000",
        ])
        .output();
        assert_eq!(out.code, 0, "{}", out.stderr);
        for args in [
            &["exec", "web", "echo", "exec'd"][..],
            &["logs", "web"],
            &["stop", "-t", "1", "web"],
        ] {
            transcript += &docker.md().args(args).transcript().1;
        }
        let inspect: serde_json::Value =
            serde_json::from_str(&docker.out(&["inspect", "web"]).stdout).expect("inspect is JSON");
        let bundle = inspect[0]["Bundle"]
            .as_str()
            .expect("the bundle's path")
            .to_string();
        let spec = std::fs::read_to_string(format!("{bundle}/config.json")).expect("config.json");
        let mut shown: serde_json::Value = serde_json::from_str(&spec).expect("JSON");
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&spec).expect("the spec's format");
        if runtime == RUNC {
            // For the book: the seccomp profile's rules, counted rather than listed.
            let rules = &mut shown["linux"]["seccomp"]["syscalls"];
            let names: usize = (rules.as_array().into_iter().flatten())
                .map(|r| r["names"].as_array().map_or(0, Vec::len))
                .sum();
            *rules = serde_json::json!(format!(
                "[{names} system calls in {} rules]",
                rules.as_array().map_or(0, Vec::len)
            ));
            // Capability sets are sets: written in no set order.
            for set in ["bounding", "effective", "permitted"] {
                if let Some(list) = shown["process"]["capabilities"][set].as_array_mut() {
                    list.sort_by_key(|c| c.as_str().unwrap_or_default().to_string());
                }
            }
            let text = serde_json::to_string_pretty(&shown).expect("JSON");
            let text = text.replace(&docker.root().display().to_string(), "/var/lib/mini-docker");
            snap_per_lane("engines_config_json", &redact(&text));
        }
        assert_eq!(
            spec.process()
                .as_ref()
                .and_then(|p| p.args().clone())
                .unwrap_or_default()[0],
            "sh"
        );
        assert!(inspect[0]["Config"]["Runtime"].as_str().is_some_and(|r| {
            r.ends_with(
                std::path::Path::new(runtime)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(""),
            )
        }));
        let id = docker.id("web");
        assert_eq!(docker.out(&["rm", "web"]).code, 0);
        assert_eq!(docker.containers(), Vec::<String>::new());
        assert_eq!(
            cgroups_of(&id),
            Vec::<String>::new(),
            "{runtime} left the cgroup"
        );
    }
    // A runtime that is not there, and what no OCI runtime can do for us: refused
    // before anything is made.
    let docker = Docker::new();
    for args in [
        &["--runtime", "nosuch", "run", "--rm", "busybox", "true"][..],
        &[
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--init",
            "busybox",
            "true",
        ],
    ] {
        let (code, text) = docker.md().args(args).transcript();
        assert_eq!(code, 125, "{text}");
        transcript += &text;
        assert_eq!(docker.containers(), Vec::<String>::new());
    }
    snap("engines_mini_docker_runtimes", &redact(&transcript));
}

/// containerd's runc shim (containerd-shim-runc-v2) drives mini-runc as it drives
/// runc: `ctr run --runc-binary`, with a containerd of the test's own (its root,
/// state and socket in a temp dir), in a mount and PID namespace of the test's own.
#[test]
fn containerds_shim_drives_mini_runc() {
    needs_root!();
    let _handed_on = HandedOn::now();
    let test = "containerds_shim_drives_mini_runc";
    let Some(dir) = with_rootfs(test, &["containerd", "ctr"]) else {
        return;
    };
    let d = dir.path().display();
    let parent = format!("lab-ctr-{}", std::process::id());
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n"
        ),
    )
    .expect("config.toml");
    let run = format!("--rootfs --runc-binary {RUNC}");
    let lines: Vec<String> = [
        "set -e".to_string(),
        "mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib".to_string(),
        format!("containerd --config {d}/config.toml > {d}/containerd.log 2>&1 &"),
        // The event: its socket appears.
        format!("while [ ! -S {d}/containerd.sock ]; do sleep 0.05; done"),
        format!("C='ctr --address {d}/containerd.sock'"),
        format!(
            "$C run --rm {run} --cgroup /{parent}/c1 {d}/rootfs c1 /bin/sh -c 'echo hi from containerd; exit 5' || echo \"ctr run: exit $?\""
        ),
        format!("$C run -d {run} --cgroup /{parent}/c2 {d}/rootfs c2 /bin/sleep 1000"),
        "$C task exec --exec-id e1 c2 /bin/sh -c 'echo exec in c2; ps -o pid,args'".to_string(),
        "$C task pause c2; $C task ls | tail -1 | awk '{print $1, $3}'".to_string(),
        "$C task resume c2; $C task ls | tail -1 | awk '{print $1, $3}'".to_string(),
        "$C task kill -s SIGKILL c2".to_string(),
        "$C task delete --force c2 >/dev/null 2>&1 || true".to_string(),
        "$C container delete c2".to_string(),
        "$C task ls | wc -l".to_string(),
    ]
    .into();
    let programs = std::path::Path::new(RUNC).parent().expect("target/debug");
    let out = lab_tests::book_lines::isolated(&lines, programs, "kill %1 2>/dev/null").output();
    lab_tests::remove_cgroups(&parent);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        cgroups_of(&parent),
        Vec::<String>::new(),
        "containerd's cgroups are left"
    );
    snap("engines_containerd", &out.stdout);
}
