//! User-defined networks, in a sandbox namespace that plays the host: a bridge per
//! network, containers that find each other by name and alias (an address book
//! rewritten as they start and stop), isolation between networks, `--internal`,
//! `--add-host`/`--dns`, `-P` and `port`, and bad input.

mod common;

use common::*;

fn hosts_of(docker: &Docker, name: &str) -> String {
    let out = docker.out(&["exec", name, "cat", "/etc/hosts"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

fn ip_of(docker: &Docker, name: &str) -> String {
    let out = docker.out(&["inspect", name]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect(&out.stderr);
    all[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("an address")
        .to_string()
}

/// `run -d --name NAME ARGS... busybox sleep 1000` (on the network ARGS say).
fn sleeper(docker: &Docker, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend(args);
    all.extend(["busybox", "sleep", "1000"]);
    let out = docker.out(&all);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn containers_find_each_other_by_name_on_a_user_network() {
    needs_root!();
    cgroup_free!();
    let docker = Docker::new();
    let mut text = String::new();
    for args in [
        vec!["network", "create", "app"],
        vec![
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "app",
            "--network-alias",
            "database",
            "busybox",
            "sleep",
            "1000",
        ],
        vec![
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; ping -c1 -W5 database >/dev/null && echo database answers",
        ],
        vec!["network", "ls"],
    ] {
        let (code, said) = docker.md().args(&args).transcript();
        assert_eq!(code, 0, "{said}");
        text += &said;
    }
    snap("network_names", &redact(&text));
    // Names appear as containers start...
    sleeper(&docker, "web", &["--network", "app"]);
    let web = hosts_of(&docker, "web");
    assert!(
        web.contains(&format!("{}\tdb database\n", ip_of(&docker, "db"))),
        "{web}"
    );
    assert!(
        hosts_of(&docker, "db").contains("\tweb\n"),
        "db's book was rewritten"
    );
    let ping = docker.out(&["exec", "web", "ping", "-c1", "-W5", "db"]);
    assert_eq!(ping.code, 0, "{}", ping.stderr);
    // ...and vanish as they stop.
    assert_eq!(docker.out(&["stop", "-t", "0", "db"]).code, 0);
    let web = hosts_of(&docker, "web");
    assert!(!web.contains("\tdb"), "db is still in web's book: {web}");
    // The default bridge keeps Docker's rule: no names of others.
    sleeper(&docker, "a", &[]);
    sleeper(&docker, "b", &[]);
    let b = hosts_of(&docker, "b");
    assert!(!b.contains("\ta\n"), "{b}");
    // A network in use is not removed; its bridge goes with it.
    let busy = docker.out(&["network", "rm", "app"]);
    assert_eq!(busy.code, 1);
    assert!(
        busy.stderr.contains("has active endpoints"),
        "{}",
        busy.stderr
    );
    assert_eq!(docker.out(&["rm", "-f", "db", "web", "a", "b"]).code, 0);
    let bridge = serde_json::from_str::<serde_json::Value>(
        &docker.out(&["network", "inspect", "app"]).stdout,
    )
    .expect("json")[0]["Bridge"]
        .as_str()
        .expect("a bridge")
        .to_string();
    assert!(docker.sandbox.links().contains(&bridge));
    assert_eq!(docker.out(&["network", "rm", "app"]).stdout, "app\n");
    assert!(!docker.sandbox.links().contains(&bridge));
    assert_eq!(docker.sandbox.rules_with(&bridge), Vec::<String>::new());
}

#[test]
fn networks_are_isolated_from_each_other_and_internal_ones_from_all() {
    needs_root!();
    cgroup_free!();
    let mut docker = Docker::new();
    let (outside, _) = docker.sandbox.add_neighbour();
    for net in [vec!["one"], vec!["two"], vec!["--internal", "closed"]] {
        let mut args = vec!["network", "create"];
        args.extend(net);
        assert_eq!(docker.out(&args).code, 0);
    }
    sleeper(&docker, "a1", &["--network", "one"]);
    sleeper(&docker, "a2", &["--network", "one"]);
    sleeper(&docker, "b1", &["--network", "two"]);
    sleeper(&docker, "c1", &["--network", "closed"]);
    sleeper(&docker, "c2", &["--network", "closed"]);
    let ping = |from: &str, to: &str| docker.out(&["exec", from, "ping", "-c1", "-W2", to]).code;
    assert_eq!(ping("a1", "a2"), 0, "same network");
    assert_eq!(ping("c1", "c2"), 0, "same internal network");
    assert_eq!(ping("a1", &ip_of(&docker, "b1")), 1, "one to two");
    assert_eq!(ping("b1", &ip_of(&docker, "a1")), 1, "two to one");
    assert_eq!(ping("a1", &ip_of(&docker, "c1")), 1, "one to closed");
    // Out through NAT, except from the internal network.
    assert_eq!(ping("a1", &outside.to_string()), 0, "one to the outside");
    assert_eq!(ping("c1", &outside.to_string()), 1, "closed to the outside");
    assert_eq!(
        docker.out(&["rm", "-f", "a1", "a2", "b1", "c1", "c2"]).code,
        0
    );
    let pruned = docker.out(&["network", "prune"]);
    assert_eq!(pruned.stdout, "Deleted Networks:\nclosed\none\ntwo\n");
    assert_eq!(docker.sandbox.rules_with("br-"), Vec::<String>::new());
    let _ = &mut docker;
}

#[test]
fn connect_and_disconnect_a_running_container() {
    needs_root!();
    cgroup_free!();
    let docker = Docker::new();
    for net in ["front", "back"] {
        assert_eq!(docker.out(&["network", "create", net]).code, 0);
    }
    sleeper(&docker, "db", &["--network", "back"]);
    sleeper(&docker, "web", &["--network", "front"]);
    let ping = |to: &str| docker.out(&["exec", "web", "ping", "-c1", "-W2", to]).code;
    assert_eq!(ping("db"), 1, "not on db's network yet");
    // Connected while it runs: a second interface at once, and a name on back.
    let mut text = String::new();
    for args in [
        vec!["network", "connect", "--alias", "api", "back", "web"],
        vec!["exec", "web", "ip", "-o", "-4", "addr", "show"],
        vec!["exec", "db", "cat", "/etc/hosts"],
    ] {
        let (code, said) = docker.md().args(&args).transcript();
        assert_eq!(code, 0, "{said}");
        text += &said;
    }
    snap("network_connect", &redact(&text));
    assert_eq!(ping("db"), 0, "web reaches db by name on back");
    let inspect = docker.out(&["network", "inspect", "back"]).stdout;
    assert!(inspect.contains("\"Name\": \"web\""), "{inspect}");
    // Disconnected: the interface, the name and the address go.
    assert_eq!(
        docker.out(&["network", "disconnect", "back", "web"]).code,
        0
    );
    let db_ip = ip_of(&docker, "db");
    assert_eq!(ping(&db_ip), 1, "web still reaches back");
    assert!(!hosts_of(&docker, "db").contains("\tweb"));
    let first = docker.out(&["network", "disconnect", "front", "web"]);
    assert_eq!(first.code, 1);
    assert!(first.stderr.contains("first network"), "{}", first.stderr);
    // Connected while stopped: plugged at its next start.
    assert_eq!(docker.out(&["stop", "-t", "0", "web"]).code, 0);
    assert_eq!(docker.out(&["network", "connect", "back", "web"]).code, 0);
    assert_eq!(docker.out(&["start", "web"]).code, 0);
    assert_eq!(ping("db"), 0, "plugged at the start");
    assert_eq!(docker.out(&["rm", "-f", "db", "web"]).code, 0);
    // The addresses were given back: no lease left in this sandbox's state.
    let state = std::path::PathBuf::from(docker.network_state());
    let bridges = match state.is_dir() {
        true => lab_tests::ls(&state),
        false => vec![],
    };
    let leases: Vec<String> = bridges
        .iter()
        .flat_map(|bridge| {
            let dir = state.join(bridge).join("leases");
            match dir.is_dir() {
                true => lab_tests::ls(&dir),
                false => vec![],
            }
        })
        .collect();
    assert_eq!(leases, Vec::<String>::new(), "leases left");
    assert_eq!(docker.out(&["network", "prune"]).code, 0);
}

#[test]
fn a_gateway_and_an_address_of_ones_choosing() {
    needs_root!();
    cgroup_free!();
    let docker = Docker::new();
    let made = docker.out(&[
        "network",
        "create",
        "--subnet",
        "10.92.0.0/24",
        "--gateway",
        "10.92.0.254",
        "custom",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let out = docker.out(&[
        "run", "--rm", "--network", "custom", "--ip", "10.92.0.1", "busybox", "sh", "-c",
        "ip -o -4 addr show eth0; ip route; ping -c1 -W2 10.92.0.254 >/dev/null && echo gateway answers",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("inet 10.92.0.1/24"), "{}", out.stdout);
    assert!(
        out.stdout.contains("default via 10.92.0.254 dev eth0"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("gateway answers"), "{}", out.stdout);
    let taken = docker.out(&[
        "run",
        "--rm",
        "--network",
        "custom",
        "--ip",
        "10.92.0.254",
        "busybox",
        "true",
    ]);
    assert_eq!(
        taken.code, 125,
        "the gateway is not a container's: {}",
        taken.stderr
    );
    assert_eq!(docker.out(&["network", "rm", "custom"]).code, 0);
}

#[test]
fn add_host_dns_publish_all_and_port() {
    needs_root!();
    cgroup_free!();
    let docker = Docker::new();
    let dir = docker.root().with_file_name("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nEXPOSE 80 53/udp\n").expect("write");
    let dir = dir.to_string_lossy().into_owned();
    let built = docker.out(&["build", "-q", "--network", "none", "-t", "exposed", &dir]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let out = docker.out(&[
        "run",
        "-d",
        "--name",
        "svc",
        "-P",
        "-p",
        "8053:53/udp",
        "--add-host",
        "db.example:192.0.2.40",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "lab.example",
        "exposed",
        "sh",
        "-c",
        "exec httpd -f -p 80 -h /",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(hosts_of(&docker, "svc").ends_with("192.0.2.40\tdb.example\n"));
    let resolv = docker
        .out(&["exec", "svc", "cat", "/etc/resolv.conf"])
        .stdout;
    assert_eq!(resolv, "search lab.example\nnameserver 192.0.2.53\n");
    // -P: 80/tcp on a port the kernel chose; 53/udp stays where -p put it.
    let port = docker.out(&["port", "svc"]).stdout;
    let mut lines: Vec<&str> = port.lines().collect();
    lines.sort();
    assert_eq!(lines[0], "53/udp -> 0.0.0.0:8053", "{port}");
    assert!(lines[1].starts_with("80/tcp -> 0.0.0.0:"), "{port}");
    let host_port: u16 = lines[1]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("a port");
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], host_port));
    let answer = wait_until("the server", || {
        fetch(&docker.sandbox.host, local, GET).ok()
    });
    assert!(answer.starts_with("HTTP/1."), "{answer}");
    assert_eq!(
        docker.out(&["port", "svc", "80"]).stdout,
        format!("{}\n", lines[1])
    );
    let none = docker.out(&["port", "svc", "8080"]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert_eq!(docker.out(&["rm", "-f", "svc"]).code, 0);
}

#[test]
fn bad_network_input_is_refused() {
    needs_root!();
    cgroup_free!();
    let docker = Docker::new();
    assert_eq!(
        docker
            .out(&["network", "create", "--subnet", "10.90.0.0/24", "taken"])
            .code,
        0
    );
    let mut text = String::new();
    for (args, code) in [
        (vec!["network", "create", "bridge"], 1),
        (vec!["network", "create", "bad/name"], 1),
        (vec!["network", "create", "taken"], 1),
        (
            vec!["network", "create", "--subnet", "10.90.0.128/25", "overlap"],
            1,
        ),
        (
            vec!["network", "create", "--subnet", "10.91.0.0/33", "wide"],
            1,
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.92.0.0/24",
                "--gateway",
                "10.93.0.1",
                "gw",
            ],
            1,
        ),
        (vec!["network", "create", "-d", "overlay", "swarm"], 1),
        (vec!["network", "rm", "nope"], 1),
        (vec!["network", "rm", "bridge"], 1),
        (vec!["network", "inspect", "nope"], 1),
        (vec!["run", "--network", "nope", "busybox", "true"], 125),
        (vec!["run", "--network-alias", "x", "busybox", "true"], 125),
        (vec!["run", "--ip", "10.77.0.9", "busybox", "true"], 125),
        (
            vec![
                "run",
                "--network",
                "taken",
                "--ip",
                "10.91.0.9",
                "busybox",
                "true",
            ],
            125,
        ),
        (vec!["run", "--add-host", "nocolon", "busybox", "true"], 125),
        (vec!["run", "--dns", "resolver", "busybox", "true"], 125),
        (
            vec![
                "run",
                "--network",
                "none",
                "--dns",
                "192.0.2.53",
                "busybox",
                "true",
            ],
            125,
        ),
        (vec!["port", "nope"], 1),
        (vec!["network", "connect", "taken", "nope"], 1),
        (vec!["network", "disconnect", "taken", "nope"], 1),
    ] {
        let (got, said) = docker.md().args(&args).transcript();
        assert_eq!(got, code, "{said}");
        text += &said;
    }
    snap("network_bad_input", &redact(&text));
    assert_eq!(docker.containers(), Vec::<String>::new());
    assert_eq!(docker.out(&["network", "rm", "taken"]).code, 0);
}
