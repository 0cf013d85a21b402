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
