//! `--restart`: the monitor starts its container again after a crash, by the
//! policy's rules and with Docker's back-off; `stop` and `kill` put it to rest;
//! `ps` and `inspect` show it; bad policies are refused.

mod common;

use common::*;

const RESTART_ON_NATIVE: &str = "the monitor's restarts make the container's cgroup again as its first start does; always_restarts_after_a_crash_until_stop covers that on this lane";
use lab_tests::wait_until;

/// `inspect NAME`'s `State`, and its `RestartCount`.
fn state(docker: &Docker, name: &str) -> (serde_json::Value, u64) {
    let out = docker.out(&["inspect", name]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stderr);
    let count = all[0]["RestartCount"].as_u64().expect("RestartCount");
    let state = all[0]["State"].clone();
    // What the monitor could not do, it records here: say it now, not at a timeout.
    assert_eq!(state["Error"], "", "{name}: the monitor failed");
    (state, count)
}

fn pid(state: &serde_json::Value, key: &str) -> i32 {
    state[key].as_i64().expect("a pid") as i32
}

fn gone(pid: i32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn on_failure_restarts_a_failing_container_n_times() {
    needs_root!();
    native_lane_only!(RESTART_ON_NATIVE);
    let docker = Docker::new();
    docker.run_detached(
        "flaky",
        &[
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo ran; exit 3",
        ],
    );
    // Two restarts, then the policy gives up and the monitor ends.
    let monitor = wait_until("the policy to give up", || {
        let (state, count) = state(&docker, "flaky");
        (state["Status"] == "exited" && count == 2).then(|| pid(&state, "MonitorPid"))
    });
    wait_until("the monitor to end", || gone(monitor).then_some(()));
    assert_eq!(docker.out(&["logs", "flaky"]).stdout, "ran\nran\nran\n");
    assert_eq!(docker.out(&["wait", "flaky"]).stdout, "3\n");
    // A success is not restarted by on-failure.
    docker.run_detached("fine", &["--restart", "on-failure", "busybox", "true"]);
    assert_eq!(docker.out(&["wait", "fine"]).stdout, "0\n");
    assert_eq!(state(&docker, "fine").1, 0);
    assert_eq!(docker.out(&["rm", "flaky", "fine"]).code, 0);
}

#[test]
fn always_restarts_after_a_crash_until_stop() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("web", &["--restart", "always", "busybox", "sleep", "1000"]);
    let (first, _) = state(&docker, "web");
    // A crash: the container's process killed from the host, not through
    // mini-docker (as the OOM killer would).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid(&first, "Pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let second = wait_until("a restart after the crash", || {
        let (state, count) = state(&docker, "web");
        (state["Status"] == "running" && count == 1).then_some(state)
    });
    assert_ne!(pid(&second, "Pid"), pid(&first, "Pid"));
    assert_eq!(pid(&second, "MonitorPid"), pid(&first, "MonitorPid"));
    // `stop`: ended, and the monitor with it: nothing is left to restart it.
    assert_eq!(docker.out(&["stop", "-t", "1", "web"]).code, 0);
    let (stopped, _) = state(&docker, "web");
    assert_eq!(stopped["Status"], "exited");
    let monitor = pid(&second, "MonitorPid");
    wait_until("the monitor to end", || gone(monitor).then_some(()));
    // `start` brings the policy back, its count from zero; `kill` puts it to rest.
    assert_eq!(docker.out(&["start", "web"]).code, 0);
    let (again, count) = state(&docker, "web");
    assert_eq!((again["Status"].as_str(), count), (Some("running"), 0));
    assert_eq!(docker.out(&["kill", "web"]).code, 0);
    wait_until("the monitor to end", || {
        gone(pid(&again, "MonitorPid")).then_some(())
    });
    let (killed, count) = state(&docker, "web");
    assert_eq!((killed["ExitCode"].as_i64(), count), (Some(137), 0));
    assert_eq!(docker.out(&["rm", "web"]).code, 0);
}

#[test]
fn a_container_that_keeps_failing_shows_restarting() {
    needs_root!();
    native_lane_only!(RESTART_ON_NATIVE);
    let docker = Docker::new();
    docker.run_detached(
        "crashy",
        &["--restart", "always", "busybox", "sh", "-c", "exit 1"],
    );
    // 100 ms, 200, 400, 800, 1.6 s...: after a few ends it waits longer each time.
    let monitor = wait_until("Restarting after a few ends", || {
        let (state, count) = state(&docker, "crashy");
        (state["Status"] == "restarting" && count >= 4).then(|| pid(&state, "MonitorPid"))
    });
    let ps = docker.out(&["ps"]);
    let line = ps.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(line.contains("Restarting (1) "), "{}", ps.stdout);
    // `stop` while it waits: the monitor wakes and ends.
    assert_eq!(docker.out(&["stop", "crashy"]).code, 0);
    wait_until("the monitor to end", || gone(monitor).then_some(()));
    let (state, _) = state(&docker, "crashy");
    assert_eq!(
        (state["Status"].as_str(), state["Restarting"].as_bool()),
        (Some("exited"), Some(false))
    );
    // rm without -f is refused while it restarts; -f works (see the bad input test).
    assert_eq!(docker.out(&["rm", "crashy"]).code, 0);
}

#[test]
fn bad_restart_policies_are_refused() {
    needs_root!();
    native_lane_only!(RESTART_ON_NATIVE);
    let docker = Docker::new();
    let mut text = String::new();
    for policy in ["sometimes", "always:3", "on-failure:x", "unless-stopped:1"] {
        let (code, said) = docker
            .md()
            .args([
                "run",
                "--restart",
                policy,
                "--network",
                "none",
                "busybox",
                "true",
            ])
            .transcript();
        assert_eq!(code, 125, "{said}");
        text += &said;
    }
    let (code, said) = docker
        .md()
        .args([
            "run",
            "--rm",
            "--restart",
            "always",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .transcript();
    assert_eq!(code, 125, "{said}");
    text += &said;
    snap("restart_bad_input", &redact(&text));
    assert_eq!(docker.containers(), Vec::<String>::new());
    // A restarting container is not removed without -f.
    docker.run_detached(
        "loop",
        &["--restart", "always", "busybox", "sh", "-c", "exit 2"],
    );
    wait_until("Restarting", || {
        (state(&docker, "loop").0["Status"] == "restarting").then_some(())
    });
    let refused = docker.out(&["rm", "loop"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(docker.out(&["rm", "-f", "loop"]).code, 0);
    assert_eq!(docker.containers(), Vec::<String>::new());
}
