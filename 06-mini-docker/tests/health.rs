//! Health checks: `--health-cmd` and an image's `HEALTHCHECK`, run by the monitor
//! in the container; the states Docker gives (starting, healthy, unhealthy), the
//! start period, the timeout, and what `ps` and `inspect` show.

mod common;

use common::*;

const HEALTH_ON_NATIVE: &str = "a check is an exec, which joins the container's cgroup; unhealthy_then_healthy_as_the_check_says covers that on this lane";
use lab_tests::wait_until;

/// `inspect NAME`'s `State.Health` (null without a check).
fn health(docker: &Docker, name: &str) -> serde_json::Value {
    let out = docker.out(&["inspect", name]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stderr);
    all[0]["State"]["Health"].clone()
}

fn until_status(docker: &Docker, name: &str, status: &str) -> serde_json::Value {
    wait_until(&format!("{name} {status}"), || {
        let health = health(docker, name);
        (health["Status"] == status).then_some(health)
    })
}

#[test]
fn unhealthy_then_healthy_as_the_check_says() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached(
        "web",
        &[
            "--health-cmd",
            "test -e /tmp/ready",
            "--health-interval",
            "100ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let unhealthy = until_status(&docker, "web", "unhealthy");
    assert_eq!(unhealthy["FailingStreak"], 2);
    assert!(docker.out(&["ps"]).stdout.contains("(unhealthy)"));
    assert_eq!(docker.out(&["exec", "web", "touch", "/tmp/ready"]).code, 0);
    let healthy = until_status(&docker, "web", "healthy");
    assert_eq!(healthy["FailingStreak"], 0);
    let log = healthy["Log"].as_array().expect("a log");
    assert!(log.len() <= 5, "Docker keeps five results");
    assert_eq!(log.last().expect("a result")["ExitCode"], 0);
    let ps = docker.out(&["ps"]).stdout;
    assert!(ps.contains("(healthy)"), "{ps}");
    assert_eq!(docker.out(&["rm", "-f", "web"]).code, 0);
}

#[test]
fn a_check_past_its_timeout_is_killed_and_fails() {
    needs_root!();
    native_lane_only!(HEALTH_ON_NATIVE);
    let docker = Docker::new();
    docker.run_detached(
        "slow",
        &[
            "--health-cmd",
            "sleep 100",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "200ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let unhealthy = until_status(&docker, "slow", "unhealthy");
    let first = &unhealthy["Log"][0];
    assert_eq!(first["ExitCode"], -1);
    assert_eq!(first["Output"], "Health check exceeded timeout (200ms)");
    // The check's process was killed and reaped: no `sleep 100` left, not even a
    // zombie under the container's PID 1 (which reaps nothing).
    let ps = docker.out(&["exec", "slow", "ps", "-o", "pid,comm"]).stdout;
    assert_eq!(
        ps.lines().filter(|l| l.contains("sleep")).count(),
        1,
        "{ps}"
    );
    assert_eq!(docker.out(&["rm", "-f", "slow"]).code, 0);
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    needs_root!();
    native_lane_only!(HEALTH_ON_NATIVE);
    let docker = Docker::new();
    docker.run_detached(
        "db",
        &[
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "1h",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let health = wait_until("three checks", || {
        let health = health(&docker, "db");
        (health["Log"].as_array().map_or(0, Vec::len) >= 3).then_some(health)
    });
    assert_eq!(health["Status"], "starting");
    assert_eq!(health["FailingStreak"], 0);
    assert!(docker.out(&["ps"]).stdout.contains("(health: starting)"));
    assert_eq!(docker.out(&["rm", "-f", "db"]).code, 0);
}

#[test]
fn the_images_healthcheck_and_no_healthcheck() {
    needs_root!();
    native_lane_only!(HEALTH_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"true\"]\n",
    )
    .expect("write");
    let dir = dir.to_string_lossy().into_owned();
    let out = docker.out(&["build", "-q", "--network", "none", "-t", "checked", &dir]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    docker.run_detached("a", &["checked", "sleep", "1000"]);
    until_status(&docker, "a", "healthy");
    docker.run_detached("b", &["--no-healthcheck", "checked", "sleep", "1000"]);
    assert_eq!(health(&docker, "b"), serde_json::Value::Null);
    // Flags replace the image's fields one by one.
    docker.run_detached("c", &["--health-cmd", "exit 3", "checked", "sleep", "1000"]);
    let unhealthy = until_status(&docker, "c", "unhealthy");
    assert_eq!(unhealthy["Log"][0]["ExitCode"], 3);
    assert_eq!(docker.out(&["rm", "-f", "a", "b", "c"]).code, 0);
}

#[test]
fn bad_health_flags_are_refused() {
    needs_root!();
    native_lane_only!(HEALTH_ON_NATIVE);
    let docker = Docker::new();
    let mut text = String::new();
    for args in [
        vec!["--health-cmd", "true", "--health-interval", "soon"],
        vec!["--health-cmd", "true", "--health-timeout", "0s"],
        vec!["--health-retries", "2"],
        vec!["--no-healthcheck", "--health-cmd", "true"],
        vec!["--health-retries", "many", "--health-cmd", "true"],
    ] {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend(&args);
        all.extend(["busybox", "true"]);
        let (code, said) = docker.md().args(&all).transcript();
        assert_eq!(code, 125, "{said}");
        text += &said;
    }
    snap("health_bad_input", &redact(&text));
    assert_eq!(docker.containers(), Vec::<String>::new());
}
