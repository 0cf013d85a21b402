//! Bridge networking through mini-docker, in a sandbox namespace that plays the
//! host (the machine's own network is never touched).

mod common;

use std::net::SocketAddr;

use common::*;

#[test]
fn a_published_port_answers_and_containers_reach_each_other() {
    needs_root!();
    let docker = Docker::new();
    let sandbox = &docker.sandbox;
    let md = || docker.md();
    let out = md()
        .args(["run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c"])
        .arg("mkdir /www && echo hello from mini-docker > /www/index.html && exec httpd -f -p 80 -h /www")
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let local = SocketAddr::from(([127, 0, 0, 1], 8080));
    let answer = wait_until("the server", || fetch(&sandbox.host, local, GET).ok());
    assert!(answer.contains("hello from mini-docker"), "{answer}");
    let inspect: serde_json::Value =
        serde_json::from_str(&md().args(["inspect", "web"]).output().stdout).expect("json");
    let ip = inspect[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("an address")
        .to_string();
    let out = md()
        .args([
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{ip}/index.html"),
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "hello from mini-docker\n");
    assert_eq!(md().args(["rm", "-f", "web"]).output().code, 0);
    // Its rules and its lease went with it.
    assert_eq!(sandbox.rules_with("DNAT"), Vec::<String>::new());
    let out = md().args(["network", "rm", "lab0"]).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// 20 containers started at once get 20 addresses; removed at once, they leave no
/// veth, rule, lease, cgroup or state behind.
#[test]
fn twenty_containers_at_once_then_removed() {
    needs_root!();
    let docker = Docker::new();
    // The bridge and the image first: what is raced here is the containers.
    assert_eq!(docker.out(&["run", "--rm", "busybox", "true"]).code, 0);
    let started: Vec<_> = (0..20)
        .map(|i| {
            docker
                .command(&[
                    "run",
                    "-d",
                    "--name",
                    &format!("c{i}"),
                    "-p",
                    &format!("{}:80", 9000 + i),
                    "busybox",
                    "sleep",
                    "60",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for run in started {
        let out = run.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let inspect: serde_json::Value = serde_json::from_str(
        &docker
            .md()
            .args(["inspect"])
            .args((0..20).map(|i| format!("c{i}")))
            .output()
            .stdout,
    )
    .expect("json");
    let addresses: std::collections::BTreeSet<&str> = (0..20)
        .map(|i| {
            inspect[i]["NetworkSettings"]["IPAddress"]
                .as_str()
                .expect("address")
        })
        .collect();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    assert_eq!(docker.sandbox.rules_with("DNAT").len(), 20);
    let ids: Vec<String> = docker.containers();
    let removals: Vec<_> = (0..20)
        .map(|i| {
            docker
                .command(&["rm", "-f", &format!("c{i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut rm in removals {
        assert!(rm.wait().expect("wait").success());
    }
    assert_eq!(docker.containers(), Vec::<String>::new());
    assert_eq!(docker.sandbox.rules_with("DNAT"), Vec::<String>::new());
    wait_until("the veths to go with their namespaces", || {
        (!docker.sandbox.links().iter().any(|l| l.starts_with("veth"))).then_some(())
    });
    let leases = std::path::Path::new(&docker.network_state()).join("lab0/leases");
    assert_eq!(lab_tests::ls(&leases), Vec::<String>::new());
    for id in ids {
        assert_eq!(cgroups_of(&id), Vec::<String>::new());
    }
}

/// Ctrl-C (or any of INT, TERM, HUP, QUIT) sent to a foreground `run` goes to the
/// container, as Docker's sig-proxy does; `run` exits with the container's code.
#[test]
fn signals_to_a_foreground_run_reach_the_container() {
    needs_root!();
    let docker = Docker::new();
    let cli = docker
        .command(&[
            "run",
            "--name",
            "fg",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_until("the container to be ready", || {
        docker
            .out(&["logs", "fg"])
            .stdout
            .contains("ready")
            .then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("kill");
    let out = cli.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\ngot INT\n");
}

/// `--network container:NAME`: the second container is born in the first one's
/// network namespace: the same address, and its server on 127.0.0.1.
#[test]
fn container_mode_joins_another_containers_network() {
    needs_root!();
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "-d",
        "--name",
        "first",
        "busybox",
        "nc",
        "-l",
        "-p",
        "6000",
        "-e",
        "echo",
        "hi over lo",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let inspect: serde_json::Value =
        serde_json::from_str(&docker.out(&["inspect", "first"]).stdout).expect("json");
    let ip = inspect[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("an address")
        .to_string();
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | cut -d' ' -f7; nc 127.0.0.1 6000",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{ip}/24\nhi over lo\n"));
    let stopped = docker.out(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "busybox",
        "true",
    ]);
    assert_eq!(
        stopped.code, 125,
        "first's server has ended: {}",
        stopped.stderr
    );
}
