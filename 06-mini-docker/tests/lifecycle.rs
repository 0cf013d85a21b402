//! A container's life, through the CLI as a Docker user types it. These run in
//! the host's network namespace, so they use `--network none`; the network has its
//! own tests, inside a sandbox.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn run_gives_the_commands_output_and_exit_code() {
    needs_root!();
    let docker = Docker::new();
    let mut all = String::new();
    for (args, code) in [
        (
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "echo",
                "hello",
            ][..],
            0,
        ),
        (
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "echo to stderr >&2; exit 3",
            ],
            3,
        ),
        (
            &["run", "--rm", "--network", "none", "busybox", "nosuch"],
            127,
        ),
        (
            &["run", "--rm", "--network", "none", "busybox", "/etc/passwd"],
            126,
        ),
        (&["run", "--rm", "--network", "none", "nosuchimage"], 125),
    ] {
        let (got, text) = docker.md().args(args).transcript();
        assert_eq!(got, code, "{text}");
        all.push_str(&text);
    }
    snap("run_exit_codes", &redact(&all));
    assert_eq!(
        docker.containers(),
        Vec::<String>::new(),
        "--rm left containers"
    );
}

/// The README's first command, word for word as a newcomer pastes it (its quoting
/// kept: a shell reads it), with the built binary for `cargo run -q -p mini-docker --`
/// and a store of the test's own. CI runs this on both lanes.
#[test]
fn the_readmes_run_command() {
    needs_root!();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let cargo_run = "cargo run -q -p mini-docker -- ";
    let line = readme
        .lines()
        .find(|l| l.starts_with(cargo_run))
        .expect("the README runs mini-docker with cargo run");
    let typed = &line[cargo_run.len()..];
    let docker = Docker::new();
    let out = docker
        .sandbox
        .enter(
            Learner::new("sh")
                .env("MINI_DOCKER_ROOT", &docker.root().to_string_lossy())
                .args(["-c", &format!("exec \"$0\" {typed}"), BIN]),
        )
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    snap(
        "readme_run",
        &redact(&format!("$ mini-docker {typed}\n{}", out.stdout)),
    );
    assert_eq!(docker.containers(), Vec::<String>::new(), "--rm left it");
}

#[test]
fn env_workdir_hostname_and_the_image_config() {
    needs_root!();
    let docker = Docker::new();
    let dir = open_tempdir();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# settings\nGREETING=hello\nWHO=two words\n").expect("write");
    let out = docker.out(&[
        "run", "--rm", "--network", "none", "--env-file", &env_file.to_string_lossy(), "-e",
        "GREETING=hi", "-e", "PATH=/bin", "-w", "/srv", "-h", "box", "--cpuset-cpus", "0",
        "busybox", "sh", "-c",
        "echo $GREETING $WHO $PATH $(pwd) $(hostname) $HOSTNAME; grep Cpus_allowed_list /proc/self/status",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "hi two words /bin /srv box box\nCpus_allowed_list:\t0\n"
    );
}

#[test]
fn the_whole_lifecycle() {
    needs_root!();
    let docker = Docker::new();
    let ticker = "trap 'echo bye; exit 0' TERM; while true; do echo tick; sleep 0.1; done";
    let mut all = String::new();
    let mut step = |args: &[&str], code: i32| {
        let (got, text) = docker.md().args(args).transcript();
        assert_eq!(got, code, "{text}");
        all.push_str(&text);
    };
    step(
        &[
            "create",
            "--name",
            "web",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            ticker,
        ],
        0,
    );
    step(&["ps", "-a"], 0);
    step(&["start", "web"], 0);
    wait_until("ticks in the log", || {
        docker
            .out(&["logs", "web"])
            .stdout
            .contains("tick")
            .then_some(())
    });
    step(&["ps"], 0);
    step(&["rm", "web"], 1);
    step(&["stop", "web"], 0);
    step(&["ps", "-a"], 0);
    let logs = docker.out(&["logs", "web"]).stdout;
    assert!(logs.ends_with("tick\nbye\n"), "{logs}");
    step(&["start", "web"], 0);
    step(&["stop", "-t", "5", "web"], 0);
    let logs = docker.out(&["logs", "web"]).stdout;
    assert_eq!(logs.matches("bye").count(), 2, "two runs, one log: {logs}");
    step(&["wait", "web"], 0);
    step(&["rm", "web"], 0);
    step(&["ps", "-a"], 0);
    snap("lifecycle", &redact(&all));
    assert_eq!(docker.containers(), Vec::<String>::new());
}

#[test]
fn a_detached_container_keeps_running_and_logging_with_no_cli() {
    needs_root!();
    let docker = Docker::new();
    let id = docker.run_detached(
        "bg",
        &[
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done",
        ],
    );
    assert_eq!(id.len(), 64, "the id: {id}");
    // The CLI is gone; the monitor is the container's parent and keeps the log.
    wait_until("20 lines logged", || {
        let logs = docker.out(&["logs", "--tail", "1", "bg"]).stdout;
        let n: u32 = logs.trim().strip_prefix("line ")?.parse().ok()?;
        (n >= 20).then_some(())
    });
    let inspect: serde_json::Value =
        serde_json::from_str(&docker.out(&["inspect", "bg"]).stdout).expect("json");
    let state = &inspect[0]["State"];
    assert_eq!(state["Status"], "running");
    let monitor = state["MonitorPid"].as_i64().expect("a monitor");
    let pid = state["Pid"].as_i64().expect("a pid");
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid: i64 = parent
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, monitor, "the monitor is the container's parent");
    assert!(
        !cgroups_of(&id).is_empty(),
        "a running container has its cgroup"
    );
    assert_eq!(docker.out(&["rm", "-f", "bg"]).code, 0);
    assert_eq!(
        cgroups_of(&id),
        Vec::<String>::new(),
        "rm -f left its cgroup"
    );
}

/// `kill -9` of the CLI in the middle of `run`: the container and its monitor
/// carry on, and the state stays readable and true.
#[test]
fn state_survives_a_kill_9_of_the_cli() {
    needs_root!();
    let docker = Docker::new();
    let mut cli = docker
        .command(&[
            "run",
            "--name",
            "k",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 1; echo done",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until("the container to run", || {
        docker.out(&["ps", "-q"]).stdout.lines().next().map(drop)
    });
    cli.kill().expect("kill -9");
    let _ = cli.wait();
    let out = docker.out(&["wait", "k"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "0\n"),
        "{}",
        out.stderr
    );
    assert_eq!(docker.out(&["logs", "k"]).stdout, "done\n");
    assert_eq!(docker.out(&["rm", "k"]).code, 0);
}

#[test]
fn stop_kills_what_ignores_sigterm_after_the_timeout() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached(
        "stubborn",
        &[
            "busybox",
            "sh",
            "-c",
            "trap '' TERM; while true; do sleep 0.1; done",
        ],
    );
    let started = Instant::now();
    assert_eq!(docker.out(&["stop", "-t", "1", "stubborn"]).code, 0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "SIGKILL came before the timeout"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&docker.out(&["inspect", "stubborn"]).stdout).expect("json");
    assert_eq!(inspect[0]["State"]["ExitCode"], 137);
    assert_eq!(inspect[0]["State"]["Status"], "exited");
}

#[test]
fn an_oom_kill_shows_in_inspect_and_ps() {
    needs_root!();
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(out.code, 137, "{}{}", out.stdout, out.stderr);
    let inspect: serde_json::Value =
        serde_json::from_str(&docker.out(&["inspect", "hog"]).stdout).expect("json");
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    assert!(docker.out(&["ps", "-a"]).stdout.contains("Exited (137)"));
}

/// exec joins the container (its namespaces and cgroup); pause freezes it.
#[test]
fn exec_top_stats_pause_and_unpause() {
    needs_root!();
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "-d",
        "--name",
        "box",
        "-h",
        "box",
        "-m",
        "64m",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.05; done",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (code, text) = docker
        .md()
        .args([
            "exec",
            "box",
            "sh",
            "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 7",
        ])
        .transcript();
    assert_eq!(code, 7, "{text}");
    snap("exec", &redact(&text));
    let out = docker.out(&[
        "exec",
        "-e",
        "EXTRA=yes",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "box",
        "sh",
        "-c",
        "echo $EXTRA $(pwd) $(id -u):$(id -g); grep -E 'Cap(Eff|Bnd)' /proc/self/status",
    ]);
    assert_eq!(
        out.stdout, "yes /tmp 1000:1000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n",
        "{}",
        out.stderr
    );
    let top = docker.out(&["top", "box"]).stdout;
    assert!(top.contains("while true"), "{top}");
    let stats = docker.out(&["stats", "--no-stream", "box"]).stdout;
    assert!(stats.contains("/ 64.0 MiB"), "{stats}");
    assert_eq!(docker.out(&["pause", "box"]).code, 0);
    assert!(docker.out(&["ps"]).stdout.contains("(Paused)"));
    let lines = || docker.out(&["logs", "box"]).stdout.lines().count();
    let frozen = lines();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(), frozen, "a paused container wrote");
    assert_eq!(docker.out(&["exec", "box", "true"]).code, 125);
    assert_eq!(docker.out(&["unpause", "box"]).code, 0);
    wait_until("more lines", || (lines() > frozen).then_some(()));
    assert_eq!(docker.out(&["rm", "-f", "box"]).code, 0);
    // No such container: 1, as Docker.
    assert_eq!(docker.out(&["exec", "box", "true"]).code, 1);
}

#[test]
fn bind_volumes_read_write_and_read_only() {
    needs_root!();
    let docker = Docker::new();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("in"), "from the host\n").expect("write");
    let host = dir.path().to_string_lossy().into_owned();
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{host}:/data"),
        "-v",
        &format!("{host}:/ro:ro"),
        "busybox",
        "sh",
        "-c",
        "cat /data/in; echo from the container > /data/out; echo no > /ro/x || echo ro refused",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "from the host\nro refused\n");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).expect("written through"),
        "from the container\n"
    );
    assert!(!dir.path().join("x").exists());
    // A missing host path is made (Docker's rule): volumes.rs.
}

#[test]
fn interactive_reads_our_stdin() {
    needs_root!();
    let docker = Docker::new();
    let mut cli = docker
        .command(&[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "read line; echo got: $line",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    cli.stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("write");
    let out = cli.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got: hello\n");
}

/// Input bigger than a pipe holds goes through `run -i` and `exec -i` whole, in
/// order, while the output comes back: the relay never blocks on one side.
#[test]
fn a_megabyte_goes_through_run_i_and_exec_i_whole() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("c", &["busybox", "sleep", "600"]);
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let net = ["--network", "none"];
    for args in [
        &["run", "--rm", "-i", net[0], net[1], "busybox", "cat"][..],
        &["exec", "-i", "c", "cat"],
    ] {
        let mut cli = docker
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = cli.stdin.take().expect("stdin");
        let input = data.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&input).expect("write");
        });
        let out = cli.wait_with_output().expect("wait");
        writer.join().expect("writer");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stdout == data,
            "{args:?}: {} bytes back",
            out.stdout.len()
        );
    }
}

/// A process that `exec`'s command leaves behind, writing for ever to the stdout
/// it inherited, does not keep `exec` from returning: once the command has ended,
/// the CLI copies what is already in the pipe (at most a pipe's worth) and lets go.
#[test]
fn exec_returns_when_its_command_ends_whatever_it_left_behind() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("c", &["busybox", "sleep", "600"]);
    let mut cli = docker
        .command(&["exec", "c", "sh", "-c", "yes & echo started"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = cli.stdout.take().expect("stdout");
    // Read as we go, so that the pipe between the CLI and us never fills up.
    let reader = std::thread::spawn(move || {
        let mut all = vec![];
        let _ = std::io::Read::read_to_end(&mut stdout, &mut all);
        all.len()
    });
    let status = wait_until("exec to return", || cli.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(0));
    // And the pipe it gave us ends with it: `yes` never had it.
    wait_until("the end of exec's output", || {
        reader.is_finished().then_some(())
    });
    assert!(reader.join().expect("reader") > 0);
}

/// `-it` on a real pseudo-terminal, as a user at a terminal: the window size goes
/// through, Ctrl-C interrupts the command in the container (not the CLI), and the
/// shell's exit code comes back.
#[test]
fn a_terminal_with_line_editing_ctrl_c_and_window_size() {
    needs_root!();
    let docker = Docker::new();
    let size = nix::pty::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let mut terminal = Terminal::new(Some(size));
    let mut command = docker.command(&[
        "run",
        "--rm",
        "-it",
        "--name",
        "term",
        "--network",
        "none",
        "busybox",
        "sh",
    ]);
    terminal.attach(&mut command);
    let mut cli = command.spawn().expect("spawn");
    terminal.type_keys("stty size; echo hello $((6*7))\r");
    terminal.wait_for("$((6*7))", "hello 42");
    terminal.type_keys("echo started; sleep 30\r");
    terminal.wait_for("sleep 30", "started\r\n");
    // Ctrl-C must find sleep running in the foreground, not the shell about to fork it.
    wait_until("sleep to run", || {
        docker
            .out(&["top", "term"])
            .stdout
            .contains("sleep 30")
            .then_some(())
    });
    // Ctrl-C: the pty's line discipline sends SIGINT to the container's job.
    terminal.type_keys("\x03");
    terminal.wait_for("started\r\n", "/ # ");
    terminal.type_keys("echo after $?\r");
    terminal.wait_for("echo after $?", "after 130");
    terminal.type_keys("exit 4\r");
    let status = cli.wait().expect("wait");
    assert!(
        terminal.screen().contains("30 100"),
        "{}",
        terminal.screen()
    );
    assert_eq!(status.code(), Some(4));
}

/// `cp` both ways, running or stopped, and through the container's own symlinks
/// (absolute, relative, to `/`): they mean the container's paths, never the host's.
#[test]
fn cp_both_ways_and_symlinks_stay_inside() {
    needs_root!();
    let docker = Docker::new();
    let host = open_tempdir();
    let h = host.path().to_string_lossy().into_owned();
    let out = docker.out(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &format!(
            "mkdir -p /dir/sub && echo inner > /dir/sub/f && ln -s /etc/passwd /dir/link && \
             ln -s / /escape && ln -s ../../../.. /up && ln -s {h} /hostdir"
        ),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Out: a tree, its symlink copied as a symlink.
    assert_eq!(docker.out(&["cp", "src:/dir", &h]).code, 0);
    assert_eq!(
        std::fs::read_to_string(host.path().join("dir/sub/f")).unwrap(),
        "inner\n"
    );
    assert_eq!(
        std::fs::read_link(host.path().join("dir/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    // Through the container's symlinks: its own files, not the host's.
    let pw = host.path().join("pw");
    assert_eq!(
        docker
            .out(&["cp", "src:/up/etc/passwd", &pw.to_string_lossy()])
            .code,
        0
    );
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert_ne!(std::fs::read_to_string(&pw).unwrap(), host_passwd);
    // In: through symlinks to `/`, the file lands in the container's /tmp; a link
    // to the host's temp dir names a directory the container does not have.
    std::fs::write(host.path().join("note"), "from the host\n").unwrap();
    let note = host.path().join("note").to_string_lossy().into_owned();
    assert_eq!(docker.out(&["cp", &note, "src:/hostdir/"]).code, 1);
    for target in ["src:/escape/tmp/", "src:/up/tmp/"] {
        let out = docker.out(&["cp", &note, target]);
        assert_eq!(out.code, 0, "{target}: {}", out.stderr);
    }
    assert_eq!(
        lab_tests::ls(host.path()),
        ["dir", "note", "pw"],
        "something reached the host"
    );
    docker.run_detached("live", &["busybox", "sleep", "30"]);
    assert_eq!(docker.out(&["cp", &note, "live:/tmp/"]).code, 0);
    assert_eq!(
        docker.out(&["exec", "live", "cat", "/tmp/note"]).stdout,
        "from the host\n"
    );
}

/// `exec -it`: a terminal of the container's own devpts, for a process joining it.
#[test]
fn exec_with_a_terminal() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("t", &["busybox", "sleep", "60"]);
    let mut terminal = Terminal::new(None);
    let mut command = docker.command(&[
        "exec",
        "-it",
        "t",
        "sh",
        "-c",
        "tty; read line; echo got $line; exit 6",
    ]);
    terminal.attach(&mut command);
    let mut cli = command.spawn().expect("spawn");
    terminal.wait_for("", "/dev/pts/");
    terminal.type_keys("hello\r");
    assert_eq!(cli.wait().expect("wait").code(), Some(6));
    terminal.wait_for("", "got hello");
}

/// On a fresh store, five `run busybox` at once build the image once.
#[test]
fn the_busybox_image_is_built_once() {
    needs_root!();
    let docker = Docker::new();
    let runs: Vec<_> = (0..5)
        .map(|_| {
            docker
                .command(&["run", "--rm", "--network", "none", "busybox", "true"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().expect("wait").success());
    }
    assert_eq!(lab_tests::ls(&docker.root().join("images")).len(), 1);
    assert_eq!(lab_tests::ls(&docker.root().join("layers")).len(), 1);
}

/// The first commands of chapter 06's page, run as the page writes them (in the
/// test's sandbox network namespace and store): each must work.
#[test]
fn the_chapters_first_commands_run_as_written() {
    needs_root!();
    let docker = Docker::new();
    let lines = lab_tests::book_lines::sh_block("ch06/index.md", "06 mini-docker");
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let root = docker.root();
    let out = docker
        .sandbox
        .enter(
            lab_tests::book_lines::shell(&lines, programs)
                .env("MINI_DOCKER_ROOT", &root.to_string_lossy()),
        )
        .output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("\nhello\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("httpd -f -v -p 80 -h /etc"),
        "ps lists it: {}",
        out.stdout
    );
    assert!(docker.containers().is_empty(), "stop and rm leave none");
}

/// A state whose monitor and container PIDs now name another process (reused after a
/// crash, or after a reboot: the store outlives both): the container is dead, and
/// `rm -f` neither signals that process nor waits for it.
#[test]
fn a_reused_pid_is_not_the_container() {
    needs_root!();
    let docker = Docker::new();
    let id = docker.run_detached("old", &["busybox", "sleep", "600"]);
    let path = docker
        .root()
        .join("containers")
        .join(&id)
        .join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("json");
    let pid = |key: &str| nix::unistd::Pid::from_raw(state[key].as_i64().expect(key) as i32);
    // The crash: the monitor and the container end without a word.
    for key in ["MonitorPid", "Pid"] {
        let _ = nix::sys::signal::kill(pid(key), nix::sys::signal::Signal::SIGKILL);
    }
    lab_tests::wait_until("the monitor gone", || {
        (!std::path::Path::new(&format!("/proc/{}", pid("MonitorPid"))).exists()).then_some(())
    });
    // Their numbers, now another process's.
    let mut other = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep");
    state["MonitorPid"] = other.id().into();
    state["Pid"] = other.id().into();
    std::fs::write(&path, state.to_string()).expect("write the state");
    let ps = docker.out(&["ps", "-a", "--filter", "name=old"]).stdout;
    assert!(ps.contains("Dead"), "{ps}");
    assert_eq!(docker.out(&["rm", "-f", "old"]).code, 0);
    assert_eq!(
        other.try_wait().expect("try_wait"),
        None,
        "rm -f killed another process"
    );
    let _ = other.kill();
    let _ = other.wait();
    assert!(docker.containers().is_empty());
    assert_eq!(
        cgroups_of(&id),
        Vec::<String>::new(),
        "rm -f left its cgroup"
    );
}

/// The writable layer of a `--rm` container is thrown away: it is mounted
/// `volatile` (no sync of it, not even at the unmount); a kept one is not.
#[test]
fn an_rm_containers_layer_is_volatile_and_a_kept_one_is_not() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("thrown", &["--rm", "busybox", "sleep", "1000"]);
    docker.run_detached("kept", &["busybox", "sleep", "1000"]);
    let options = |name: &str| {
        let inspect: serde_json::Value =
            serde_json::from_str(&docker.out(&["inspect", name]).stdout).expect("json");
        let monitor = inspect[0]["State"]["MonitorPid"]
            .as_i64()
            .expect("a monitor");
        let mounts = std::fs::read_to_string(format!("/proc/{monitor}/mountinfo")).expect("mounts");
        let merged = docker
            .root()
            .join("containers")
            .join(docker.id(name))
            .join("merged");
        let merged = merged.display().to_string();
        (mounts.lines())
            .find(|l| l.split(' ').nth(4) == Some(merged.as_str()))
            .unwrap_or_else(|| panic!("no overlay on {merged} in the monitor's mounts:\n{mounts}"))
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    // Shown as `volatile`, or `fsync=volatile` by newer kernels.
    let volatile = |o: String| o.split(',').any(|o| o.ends_with("volatile"));
    assert!(volatile(options("thrown")), "{}", options("thrown"));
    assert!(!volatile(options("kept")), "{}", options("kept"));
    assert_eq!(docker.out(&["rm", "-f", "thrown", "kept"]).code, 0);
    assert_eq!(docker.containers(), Vec::<String>::new());
}
