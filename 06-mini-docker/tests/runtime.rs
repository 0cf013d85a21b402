//! `mini-runc`, the OCI runtime, driven as an engine drives runc: a bundle made
//! with `mini-runc spec` and chapter 01's busybox rootfs, then create, start,
//! state, kill, delete. Every container lives under a `--root` of the test's own.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

const RUNC: &str = env!("CARGO_BIN_EXE_mini-runc");

/// A `--root` and a bundle of the test's own.
struct Runtime {
    dir: tempfile::TempDir,
}

impl Runtime {
    fn new() -> Runtime {
        let runtime = Runtime {
            dir: open_tempdir(),
        };
        let options = ch01_chroot::rootfs::Options {
            source: Some(ch01_chroot::rootfs::Source::Busybox),
            force: false,
            add: vec![],
        };
        labkit::narrate::set_quiet(true);
        ch01_chroot::rootfs::build(&runtime.bundle().join("rootfs"), &options)
            .expect("a busybox rootfs (apt-get install busybox-static)");
        let out = runtime
            .rc(&["spec", "--bundle", &runtime.bundle().to_string_lossy()])
            .output();
        assert_eq!(out.code, 0, "{}", out.stderr);
        // No terminal (`spec` asks for one, as runc's): output to plain files.
        runtime.config(|c| c["process"]["terminal"] = json!(false));
        runtime
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// `mini-runc --root ROOT ARGS`, as typed.
    fn rc(&self, args: &[&str]) -> Learner {
        Learner::new(RUNC)
            .args(["--root", &self.root().to_string_lossy()])
            .args(args)
            .redact_path(self.dir.path(), "/tmp/lab-XXXXXX")
    }

    /// Change config.json: `edit` gets it as JSON.
    fn config(&self, edit: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("config.json"))
                .expect("JSON");
        edit(&mut config);
        std::fs::write(&path, serde_json::to_string_pretty(&config).expect("JSON"))
            .expect("write config.json");
    }

    /// `create`: the container's process inherits our stdio, as with runc, so its
    /// output goes to a file (`ID.out`), and so does ours.
    fn create(&self, id: &str) -> Outcome {
        let bundle = self.bundle().to_string_lossy().into_owned();
        self.to_files(id, &["create", "--bundle", &bundle, id])
    }

    /// `mini-runc ARGS` with stdout and stderr in files `NAME.out` and `NAME.err`:
    /// for what leaves a process behind holding them (a pipe would never end).
    fn to_files(&self, name: &str, args: &[&str]) -> Outcome {
        let out = self.dir.path().join(format!("{name}.out"));
        let err = self.dir.path().join(format!("{name}.err"));
        let status = std::process::Command::new(RUNC)
            .args(["--root", &self.root().to_string_lossy()])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"))
            .status()
            .expect("mini-runc runs");
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(err).unwrap_or_default(),
        }
    }

    /// What the container `id` has written so far.
    fn output_of(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{id}.out"))).unwrap_or_default()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.rc(&["state", id]).output();
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str(&out.stdout).expect("state is JSON")
    }

    /// Our temp dir's path, and PIDs in `list`'s table, redacted.
    fn redact(&self, text: &str) -> String {
        let text = text.replace(&self.dir.path().display().to_string(), "/tmp/lab-XXXXXX");
        let pid = regex::Regex::new(r"(?m)^(\S+ +)[1-9]\d* +").expect("regex");
        redact(&pid.replace_all(&text, "${1}[PID]    "))
    }

    /// Nothing left of container `id`: no directory under --root, no cgroup.
    fn assert_gone(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "{id}'s state is left");
        assert_eq!(
            cgroups_of(id),
            Vec::<String>::new(),
            "{id}'s cgroups are left"
        );
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = self.rc(&["delete", "--force", &id]).output();
        }
    }
}

/// A change to config.json.
type Edit = fn(&mut Value);

/// The state's fields that change from run to run, redacted.
fn stable(mut state: Value) -> Value {
    for (key, with) in [("pid", json!("[PID]")), ("created", json!("[TIME]"))] {
        if state[key] != json!(0) {
            state[key] = with;
        }
    }
    state
}

#[test]
fn the_lifecycle_create_start_state_kill_delete() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| {
        c["process"]["args"] = json!(["sh", "-c", "echo started; exec sleep 1000"]);
    });
    let created = runtime.create("c1");
    assert_eq!(created.code, 0, "{}", created.stderr);
    let mut transcript = String::new();
    let mut states = vec![stable(runtime.state("c1"))];
    let pid = runtime.state("c1")["pid"].as_i64().expect("a pid");
    assert_eq!(runtime.output_of("c1"), "", "the program ran before start");
    for args in [&["list"][..], &["start", "c1"]] {
        transcript += &runtime.rc(args).transcript().1;
    }
    wait_until("the program to run", || {
        runtime.output_of("c1").contains("started").then_some(())
    });
    states.push(stable(runtime.state("c1")));
    assert_eq!(
        runtime.state("c1")["pid"].as_i64(),
        Some(pid),
        "start made another process"
    );
    for args in [&["pause", "c1"][..], &["start", "c1"], &["delete", "c1"]] {
        transcript += &runtime.rc(args).transcript().1;
    }
    states.push(stable(runtime.state("c1")));
    let ps = runtime.rc(&["ps", "--format", "json", "c1"]).output();
    assert_eq!(ps.stdout.trim(), format!("[{pid}]"));
    for args in [&["resume", "c1"][..], &["kill", "c1", "KILL"]] {
        transcript += &runtime.rc(args).transcript().1;
    }
    wait_until("the container to stop", || {
        (runtime.state("c1")["status"] == "stopped").then_some(())
    });
    states.push(stable(runtime.state("c1")));
    for args in [&["delete", "c1"][..], &["state", "c1"]] {
        transcript += &runtime.rc(args).transcript().1;
    }
    runtime.assert_gone("c1");
    let states = serde_json::to_string_pretty(&states).expect("JSON");
    snap(
        "runtime_lifecycle",
        &runtime.redact(&format!("{transcript}{states}\n")),
    );
}

#[test]
fn run_gives_the_programs_exit_code_and_deletes_the_container() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| {
        // Its new network namespace's lo is up ("unknown": lo has no carrier to report).
        let say = "echo hello from $(hostname), lo $(cat /sys/class/net/lo/operstate); exit 3";
        c["process"]["args"] = json!(["sh", "-c", say]);
    });
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let (code, text) = runtime.rc(&["run", "--bundle", &bundle, "r1"]).transcript();
    assert_eq!(code, 3, "{text}");
    runtime.assert_gone("r1");
    snap("runtime_run", &runtime.redact(&text));
}

/// Each bad input: runc's message where engines match on it, exit code 1, and
/// nothing left: no state, no cgroup.
#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    needs_root!();
    let runtime = Runtime::new();
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let mut transcript = String::new();
    for args in [
        &["start", "nosuch"][..],
        &["kill", "nosuch"],
        &["delete", "nosuch"],
        &["state", "../etc"],
        &["--systemd-cgroup", "state", "x"],
        &["run", "--bundle", "/nonexistent", "b1"],
    ] {
        let (code, text) = runtime.rc(args).transcript();
        assert_eq!(code, 1, "{text}");
        transcript += &text;
    }
    let original = std::fs::read_to_string(runtime.bundle().join("config.json")).expect("config");
    let bad_configs: [(&str, Edit); 10] = [
        ("a hook's relative path", |c| {
            c["hooks"] = json!({"createContainer": [{"path": "true"}]})
        }),
        ("a seccomp answer that needs a listener", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY"})
        }),
        ("a namespace to join that is no namespace", |c| {
            c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/etc/hostname"}])
        }),
        ("a mount namespace to join", |c| {
            c["linux"]["namespaces"] = json!([{"type": "mount", "path": "/proc/1/ns/mnt"}])
        }),
        ("no program", |c| c["process"]["args"] = json!([])),
        ("a program that is not there", |c| {
            c["process"]["args"] = json!(["nosuch"])
        }),
        ("a sysctl of the host's", |c| {
            // The host's own value: were the refusal switched off, the write would
            // change nothing on the host.
            let now = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap_or_default();
            c["linux"]["sysctl"] = json!({"vm.swappiness": now.trim()})
        }),
        (
            "a relative bind source",
            |c| c["mounts"] = json!([{"destination": "/x", "source": "etc", "options": ["bind"]}]),
        ),
        ("a systemd cgroupsPath", |c| {
            c["linux"]["cgroupsPath"] = json!("system.slice:mini:b1")
        }),
        ("a bad value", |c| {
            c["process"]["user"]["uid"] = json!("root")
        }),
    ];
    for (what, edit) in bad_configs {
        std::fs::write(runtime.bundle().join("config.json"), &original).expect("config");
        runtime.config(edit);
        let out = runtime.rc(&["run", "--bundle", &bundle, "b1"]).output();
        assert_eq!(out.code, 1, "{what}: {}", out.stderr);
        transcript += &format!("{what}: {}", out.stderr);
        runtime.assert_gone("b1");
    }
    std::fs::write(runtime.bundle().join("config.json"), &original).expect("config");
    runtime.config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    assert_eq!(runtime.create("twice").code, 0);
    let again = runtime.create("twice");
    assert_eq!(again.code, 1, "{}", again.stderr);
    transcript += &format!("the same id twice: {}", again.stderr);
    let (code, text) = runtime.rc(&["delete", "twice"]).transcript();
    assert_eq!(code, 1, "{text}");
    transcript += &text;
    assert_eq!(runtime.rc(&["delete", "--force", "twice"]).output().code, 0);
    runtime.assert_gone("twice");
    snap("runtime_bad_input", &runtime.redact(&transcript));
}

/// config.json's fields, each seen from inside the container (and its cgroup from
/// the host).
#[test]
fn config_fields_are_honoured() {
    needs_root!();
    let runtime = Runtime::new();
    let shared = runtime.dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::write(shared.join("note"), "from the host\n").expect("write");
    runtime.config(|c| {
        c["hostname"] = json!("fields");
        c["domainname"] = json!("example.org");
        c["root"]["readonly"] = json!(true);
        c["process"]["cwd"] = json!("/tmp/work");
        c["process"]["env"] = json!(["PATH=/bin", "GREETING=hi"]);
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o027});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
        c["process"]["oomScoreAdj"] = json!(100);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
        c["linux"]["sysctl"] = json!({"kernel.shmmni": "1234"});
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        c["linux"]["maskedPaths"] = json!(["/proc/interrupts", "/etc/hostname"]);
        c["linux"]["devices"] = json!([{"path": "/dev/lab-null", "type": "c", "major": 1,
            "minor": 3, "fileMode": 0o620, "uid": 1000, "gid": 20}]);
        c["linux"]["resources"] = json!({
            "memory": {"limit": 64 << 20}, "pids": {"limit": 42},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]});
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "mode=1777", "size=1m"]}),
        );
        mounts
            .push(json!({"destination": "/shared", "source": shared, "options": ["rbind", "ro"]}));
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "hostname; cat /proc/sys/kernel/domainname; pwd; id; echo $GREETING; \
            env | sort | tr '\\n' ' '; echo; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; \
            cat /proc/sys/kernel/shmmni; grep -E 'Cap(Eff|Bnd)' /proc/self/status; \
            wc -c < /proc/interrupts; wc -c < /etc/hostname; cat /shared/note; \
            touch /shared/x /x 2>&1; df /tmp | tail -1 | awk '{print $2}'; \
            umask; mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status; \
            stat -c '%F %t:%T %a %u:%g' /dev/lab-null; echo x > /dev/lab-null && echo written; \
            while [ ! -e /tmp/go ]; do :; done"
        ]);
    });
    // The program waits for /tmp/go: meanwhile, its cgroup is read from the host.
    let created = runtime.create("f1");
    assert_eq!(created.code, 0, "{}", created.stderr);
    let limits: Vec<String> = cgroups_of("f1")
        .iter()
        .flat_map(|dir| {
            ["memory.max", "memory.limit_in_bytes", "pids.max"].map(|f| format!("{dir}/{f}"))
        })
        .filter_map(|f| {
            std::fs::read_to_string(&f)
                .ok()
                .map(|v| format!("{} {}", f.rsplit('/').next().unwrap_or(""), v.trim()))
        })
        .collect();
    assert!(limits.contains(&"pids.max 42".to_string()), "{limits:?}");
    assert!(
        limits
            .iter()
            .any(|l| l.ends_with(&(64u64 << 20).to_string())),
        "{limits:?}"
    );
    let started = runtime.rc(&["start", "f1"]).output();
    assert_eq!(started.code, 0, "{}", started.stderr);
    let pid = runtime.state("f1")["pid"].as_i64().expect("pid");
    wait_until("the program's output", || {
        runtime.output_of("f1").contains("Read-only").then_some(())
    });
    // It runs as uid 1000 inside a read-only root: the host ends its wait for it.
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").expect("/tmp/go through /proc/PID/root");
    wait_until("the container to stop", || {
        (runtime.state("f1")["status"] == "stopped").then_some(())
    });
    assert_eq!(runtime.rc(&["delete", "f1"]).output().code, 0);
    runtime.assert_gone("f1");
    snap("runtime_fields", &runtime.redact(&runtime.output_of("f1")));
}

/// The page's "Try it" lines, as written (sudo left out), with a `--root` of the
/// test's own, in a PID and mount namespace of their own.
#[test]
fn the_books_try_it() {
    needs_root!();
    use lab_tests::book_lines::{for_this_host, isolated, replaced, sh_block};
    let dir = open_tempdir();
    let root = format!("mini-runc --root {} ", dir.path().join("root").display());
    let mut lines = vec![format!("cd {}", dir.path().display()), "set -e".to_string()];
    lines.extend(for_this_host(replaced(
        sh_block("ch06/runtime.md", "Try it"),
        &[("mini-runc ", &root)],
    )));
    let programs = std::path::Path::new(RUNC).parent().expect("target/debug");
    let cleanup = format!("{root} delete --force demo");
    let out = isolated(&lines, programs, &cleanup).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for seen in ["\"status\": \"created\"", "demo ", "running"] {
        assert!(out.stdout.contains(seen), "{seen:?} in {}", out.stdout);
    }
    assert!(
        !dir.path().join("root/demo").exists(),
        "demo's state is left"
    );
    assert_eq!(
        cgroups_of("demo"),
        Vec::<String>::new(),
        "demo's cgroups are left"
    );
}

/// Hooks run at their moment, each with the state on its stdin; a failing
/// createRuntime hook fails create and leaves nothing.
#[test]
fn hooks_run_at_their_moments_with_the_state_on_stdin() {
    needs_root!();
    let runtime = Runtime::new();
    let seen = runtime.dir.path().join("seen");
    std::fs::create_dir(&seen).expect("mkdir");
    // Each hook keeps its state and its mount namespace; the host's paths, but for
    // startContainer's, which resolve in the container (where `seen` is /seen).
    let hook = |name: &str, dir: &std::path::Path| {
        let dir = dir.display();
        let script =
            format!("cat > {dir}/{name}.json; readlink /proc/self/ns/mnt > {dir}/{name}.mnt");
        json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
    };
    let inside = std::path::Path::new("/seen");
    runtime.config(|c| {
        c["process"]["args"] = json!(["sleep", "1000"]);
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/seen", "source": seen, "options": ["bind"]}));
        c["hooks"] = json!({
            "prestart": [hook("prestart", &seen)], "createRuntime": [hook("createRuntime", &seen)],
            "createContainer": [hook("createContainer", &seen)],
            "startContainer": [hook("startContainer", inside)],
            "poststart": [hook("poststart", &seen)], "poststop": [hook("poststop", &seen)]});
    });
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(seen.join(format!("{name}.json"))).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    let created = runtime.create("h1");
    assert_eq!(created.code, 0, "{}", created.stderr);
    let pid = runtime.state("h1")["pid"].clone();
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).expect("its mount ns");
    assert_eq!(read("poststart"), Value::Null, "poststart ran before start");
    assert_eq!(
        read("startContainer"),
        Value::Null,
        "startContainer ran before start"
    );
    assert_eq!(runtime.rc(&["start", "h1"]).output().code, 0);
    wait_until("startContainer's record", || {
        seen.join("startContainer.mnt").exists().then_some(())
    });
    assert_eq!(runtime.rc(&["kill", "h1", "KILL"]).output().code, 0);
    wait_until("the container to stop", || {
        (runtime.state("h1")["status"] == "stopped").then_some(())
    });
    assert_eq!(runtime.rc(&["delete", "h1"]).output().code, 0);
    let mut seen_states = String::new();
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let state = read(name);
        assert_eq!(state["id"], "h1", "{name}: {state}");
        let pid_matches = state["pid"] == pid || state["status"] == "stopped";
        assert!(pid_matches, "{name}: {state} (pid {pid})");
        let mnt = std::fs::read_to_string(seen.join(format!("{name}.mnt"))).unwrap_or_default();
        let where_ = match mnt.trim() == container_mnt.to_string_lossy() {
            true => "the container's namespaces",
            false => "the runtime's namespaces",
        };
        seen_states += &format!("{name}: {}, in {where_}\n", state["status"]);
    }
    runtime.assert_gone("h1");
    runtime.config(|c| {
        c["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 2"]}]});
    });
    let failed = runtime.create("h2");
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    runtime.assert_gone("h2");
    // A failing startContainer hook ends the container: said on its stderr.
    runtime.config(|c| {
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo not today >&2; exit 3"]}]});
    });
    assert_eq!(runtime.create("h3").code, 0);
    assert_eq!(runtime.rc(&["start", "h3"]).output().code, 0);
    wait_until("h3 to stop", || {
        (runtime.state("h3")["status"] == "stopped").then_some(())
    });
    let said = std::fs::read_to_string(runtime.dir.path().join("h3.err")).unwrap_or_default();
    assert_eq!(runtime.rc(&["delete", "h3"]).output().code, 0);
    runtime.assert_gone("h3");
    snap(
        "runtime_hooks",
        &format!("{seen_states}{}{said}", failed.stderr),
    );
}

/// `exec`: one more process in the container's namespaces, root and cgroup,
/// from flags or from a `--process` file, in the foreground or detached.
#[test]
fn exec_adds_a_process_to_a_running_container() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    assert_eq!(runtime.create("e1").code, 0);
    // Created is enough: the container (namespaces, root, cgroup) exists, only its
    // own program waits for start.
    let (code, text) = runtime
        .rc(&["exec", "e1", "sh", "-c", "echo before start"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    let mut transcript = text;
    assert_eq!(runtime.rc(&["start", "e1"]).output().code, 0);
    let init = runtime.state("e1")["pid"].as_i64().expect("pid");
    let same = |ns: &str, pid: i64| {
        std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
            == std::fs::read_link(format!("/proc/{init}/ns/{ns}")).ok()
    };
    for args in [
        &["exec", "e1", "sh", "-c", "echo in e1; hostname; exit 7"][..],
        &[
            "exec",
            "--user",
            "1000:1000",
            "--cwd",
            "/tmp",
            "--env",
            "X=1",
            "e1",
            "sh",
            "-c",
            "id; pwd; echo X=$X",
        ],
        &["exec", "e1", "nosuch"],
        &["exec", "--detach", "--tty", "e1", "sh"],
    ] {
        transcript += &runtime.rc(args).transcript().1;
    }
    // Detached, from a process file, as conmon and containerd's shim ask.
    let process = runtime.dir.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sleep", "999"], "cwd": "/", "env": ["PATH=/bin"],
               "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .expect("process.json");
    let pid_file = runtime.dir.path().join("exec.pid");
    let out = runtime.to_files(
        "detached",
        &[
            "exec",
            "--detach",
            "--pid-file",
            &pid_file.to_string_lossy(),
            "--process",
            &process.to_string_lossy(),
            "e1",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("the pid file")
        .parse()
        .expect("a PID");
    for ns in ["pid", "mnt", "net", "uts", "ipc"] {
        assert!(
            same(ns, pid),
            "the exec'd process is not in e1's {ns} namespace"
        );
    }
    let in_group = |pid: i64| {
        let out = runtime.rc(&["ps", "--format", "json", "e1"]).output();
        serde_json::from_str::<Vec<i64>>(&out.stdout)
            .unwrap_or_default()
            .contains(&pid)
    };
    assert!(in_group(pid), "the exec'd process is not in e1's cgroup");
    assert_eq!(
        runtime.rc(&["kill", "--all", "e1", "KILL"]).output().code,
        0
    );
    wait_until("e1 to stop", || {
        (runtime.state("e1")["status"] == "stopped").then_some(())
    });
    transcript += &runtime.rc(&["exec", "e1", "true"]).transcript().1;
    assert_eq!(runtime.rc(&["delete", "e1"]).output().code, 0);
    runtime.assert_gone("e1");
    snap("runtime_exec", &runtime.redact(&transcript));
}

/// `process.terminal`: a pty of the container's, its master sent over the
/// engine's `--console-socket` (runc's protocol: one byte and the descriptor in
/// SCM_RIGHTS); or, for `run` in the foreground, relayed by mini-runc itself.
#[test]
fn a_terminal_goes_to_the_console_socket() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
        c["process"]["args"] = json!(["sh", "-c", "tty; stty size; echo done"]);
    });
    let socket_path = runtime.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket_path).expect("bind");
    let out = runtime
        .rc(&[
            "create",
            "--bundle",
            &runtime.bundle().to_string_lossy(),
            "--console-socket",
            &socket_path.to_string_lossy(),
            "t1",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (stream, _) = listener.accept().expect("mini-runc connects");
    let master = mini_docker::tty::receive_console(&std::os::fd::OwnedFd::from(stream))
        .expect("the master, over SCM_RIGHTS");
    assert_eq!(runtime.rc(&["start", "t1"]).output().code, 0);
    let mut seen = String::new();
    let mut terminal = std::fs::File::from(master);
    wait_until("the program's output on the pty", || {
        let mut buf = [0u8; 256];
        match std::io::Read::read(&mut terminal, &mut buf) {
            Ok(n) if n > 0 => seen += &String::from_utf8_lossy(&buf[..n]),
            _ => return Some(()), // EIO: the program has ended
        }
        // The whole line: "done" and its end may come in two reads.
        seen.contains("done\r\n").then_some(())
    });
    wait_until("t1 to stop", || {
        (runtime.state("t1")["status"] == "stopped").then_some(())
    });
    assert_eq!(runtime.rc(&["delete", "t1"]).output().code, 0);
    let mut transcript = format!("on the console socket's pty:\n{}", seen.replace('\r', ""));
    // Foreground, without a socket: mini-runc relays the pty to its own stdout.
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let (code, text) = runtime.rc(&["run", "--bundle", &bundle, "t2"]).transcript();
    assert_eq!(code, 0, "{text}");
    transcript += &text.replace('\r', "");
    for args in [
        &["run", "--bundle", &bundle, "--detach", "t3"][..],
        &["create", "--bundle", &bundle, "t3"],
    ] {
        let (code, text) = runtime.rc(args).transcript();
        assert_eq!(code, 1, "{text}");
        transcript += &text;
    }
    runtime.config(|c| c["process"]["terminal"] = json!(false));
    let (code, text) = runtime
        .rc(&[
            "create",
            "--bundle",
            &bundle,
            "--console-socket",
            &socket_path.to_string_lossy(),
            "t4",
        ])
        .transcript();
    assert_eq!(code, 1, "{text}");
    transcript += &text;
    for id in ["t1", "t2", "t3", "t4"] {
        runtime.assert_gone(id);
    }
    snap("runtime_terminal", &runtime.redact(&transcript));
}

/// Namespaces joined by path, as a pod's containers share one: the second
/// container joins the first one's network, IPC and PID namespaces.
#[test]
fn namespaces_are_joined_by_path() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    assert_eq!(runtime.create("pod").code, 0);
    assert_eq!(runtime.rc(&["start", "pod"]).output().code, 0);
    let pod = runtime.state("pod")["pid"].as_i64().expect("pid");
    runtime.config(|c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        for ns in namespaces.iter_mut() {
            let file = match ns["type"].as_str() {
                Some("network") => "net",
                Some("ipc") => "ipc",
                Some("pid") => "pid",
                _ => continue,
            };
            ns["path"] = json!(format!("/proc/{pod}/ns/{file}"));
        }
        c["process"]["args"] = json!(["sh", "-c", "for ns in net ipc pid uts; do echo $ns $(readlink /proc/self/ns/$ns); done; ps -o pid,args"]);
    });
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let out = runtime.rc(&["run", "--bundle", &bundle, "member"]).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut seen = String::new();
    for line in out.stdout.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(ns @ ("net" | "ipc" | "pid" | "uts")), Some(id)) => {
                let pods = std::fs::read_link(format!("/proc/{pod}/ns/{ns}")).expect("pod's ns");
                let shared = pods.to_string_lossy() == id;
                seen += &format!("{ns}: {}\n", if shared { "the pod's" } else { "its own" });
            }
            _ => seen += &format!("{line}\n"),
        }
    }
    assert_eq!(runtime.rc(&["delete", "--force", "pod"]).output().code, 0);
    runtime.assert_gone("pod");
    runtime.assert_gone("member");
    snap("runtime_join", &seen);
}

/// `linux.resources.blockIO`'s throttles, on a block device of this machine (named
/// by MAJOR:MINOR in config.json), land in the container's cgroup.
#[test]
fn block_io_throttles_reach_the_cgroup() {
    needs_root!();
    let Some(disk) = std::fs::read_dir("/sys/dev/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min()
    else {
        lab_tests::not_run(
            "block_io_throttles_reach_the_cgroup",
            "no block device on this machine",
        );
        return;
    };
    let (major, minor) = disk.split_once(':').expect("MAJOR:MINOR");
    let (major, minor): (i64, i64) = (major.parse().expect("major"), minor.parse().expect("minor"));
    let runtime = Runtime::new();
    runtime.config(|c| {
        c["process"]["args"] = json!(["sleep", "1000"]);
        c["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 77}]});
    });
    let created = runtime.create("io");
    assert_eq!(created.code, 0, "{}", created.stderr);
    let files: Vec<String> = cgroups_of("io")
        .iter()
        .flat_map(|dir| {
            [
                "io.max",
                "blkio.throttle.read_bps_device",
                "blkio.throttle.write_iops_device",
            ]
            .map(|f| format!("{dir}/{f}"))
        })
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let all = files.join("");
    assert!(
        all.contains(&format!("{disk} 1048576")) || all.contains(&format!("{disk} rbps=1048576")),
        "{all}"
    );
    assert!(
        all.contains(&format!("{disk} 77")) || all.contains("wiops=77"),
        "{all}"
    );
    assert_eq!(runtime.rc(&["delete", "--force", "io"]).output().code, 0);
    runtime.assert_gone("io");
    // Weights are refused, by name.
    runtime.config(|c| c["linux"]["resources"]["blockIO"] = json!({"weight": 500}));
    let refused = runtime.create("io2");
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("blockIO weights are not supported"),
        "{}",
        refused.stderr
    );
    runtime.assert_gone("io2");
}

/// `--preserve-fds N`: descriptors 3.. of mini-runc's caller reach the process;
/// without it, none does (a descriptor leaked into a container was CVE-2024-21626).
#[test]
fn preserve_fds_passes_on_only_what_is_asked() {
    needs_root!();
    let runtime = Runtime::new();
    let secret = runtime.dir.path().join("passed");
    std::fs::write(&secret, "through fd 3\n").expect("write");
    runtime.config(|c| {
        c["process"]["args"] = json!(["sh", "-c", "cat <&3 2>&1 || echo fd 3 is not open"]);
    });
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let mut seen = String::new();
    for preserve in ["1", "0"] {
        let file = std::fs::File::open(&secret).expect("open");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let mut command = std::process::Command::new(RUNC);
        command.args([
            "--root",
            &runtime.root().to_string_lossy(),
            "run",
            "--bundle",
            &bundle,
        ]);
        command.args(["--preserve-fds", preserve, &format!("p{preserve}")]);
        // SAFETY: in the child before exec, our file at 3 without close-on-exec
        // (dup2 onto itself would change nothing: then the flag is cleared).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                let done = match fd {
                    3 => libc::fcntl(3, libc::F_SETFD, 0),
                    _ => libc::dup2(fd, 3),
                };
                match done {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                }
            });
        }
        let out = command.output().expect("mini-runc runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen += &format!(
            "--preserve-fds {preserve}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        runtime.assert_gone(&format!("p{preserve}"));
    }
    snap("runtime_preserve_fds", &seen);
}

/// A seccomp profile without `noNewPrivileges`: the filter is installed while the
/// process still has CAP_SYS_ADMIN, and no_new_privs stays off (the runtime
/// spec's validation suite checks both).
#[test]
fn seccomp_without_no_new_privileges() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1"
        ]);
        c["root"]["readonly"] = json!(false);
    });
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let (code, text) = runtime.rc(&["run", "--bundle", &bundle, "s1"]).transcript();
    assert_eq!(code, 1, "{text}");
    runtime.assert_gone("s1");
    snap("runtime_seccomp_without_nnp", &runtime.redact(&text));
}

/// A user namespace whose root is another host id (0 -> 100000, as engines map
/// it): the process becomes that root once the maps are written, so that what it
/// makes has an owner in there (before, the first device node failed with EOVERFLOW).
#[test]
fn a_user_namespace_maps_root_to_another_host_id() {
    needs_root!();
    let runtime = Runtime::new();
    runtime.config(|c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        namespaces.push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "id; cat /proc/self/uid_map; touch /dev/shm/made; stat -c '%n %u:%g' /dev/shm/made; \
             stat -c '%n %F %t:%T' /dev/null"
        ]);
    });
    let bundle = runtime.bundle().to_string_lossy().into_owned();
    let (code, text) = runtime.rc(&["run", "--bundle", &bundle, "u1"]).transcript();
    assert_eq!(code, 0, "{text}");
    runtime.assert_gone("u1");
    snap("runtime_user_namespace", &runtime.redact(&text));
}
