//! `compose`: the book's two-service project (a web server and a "database" whose
//! data is in a named volume) brought up, reached, taken down and up again, and
//! down with its volume; a dependency that never gets healthy; the same `up` twice
//! and a changed file; every bad file with its message and code.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const COMPOSE_ON_NATIVE: &str = "its containers are `run`'s; the project test runs on this lane";

/// The book's example, copied into the test's directory as `notes/` (so the
/// project is called notes, from its directory).
fn notes(docker: &Docker) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/notes");
    let dir = docker.root().with_file_name("notes");
    std::fs::create_dir_all(dir.join("site")).expect("mkdir");
    for file in ["compose.yaml", "site/index.html"] {
        std::fs::copy(from.join(file), dir.join(file)).expect("copy");
    }
    dir
}

/// `mini-docker compose ARGS` in `dir`, as a transcript.
fn compose(docker: &Docker, dir: &Path, args: &[&str]) -> (i32, String) {
    docker
        .md()
        .current_dir(dir)
        .arg("compose")
        .args(args)
        .transcript()
}

fn ok(docker: &Docker, dir: &Path, args: &[&str]) -> String {
    let (code, text) = compose(docker, dir, args);
    assert_eq!(code, 0, "{text}");
    text
}

fn volumes(docker: &Docker) -> Vec<String> {
    docker
        .out(&["volume", "ls", "-q"])
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_web_server_and_its_database_up_down_and_up_again() {
    needs_root!();
    let docker = Docker::new();
    let dir = notes(&docker);
    let mut text = ok(&docker, &dir, &["up", "-d"]);
    text += &ok(&docker, &dir, &["ps"]);
    text += &ok(
        &docker,
        &dir,
        &["exec", "db", "sh", "-c", "echo buy milk >> /data/notes"],
    );
    // The web container reaches the database by its service name.
    text += &ok(
        &docker,
        &dir,
        &["exec", "web", "wget", "-qO-", "http://db/notes"],
    );
    // ps pads its columns to how long ago each container started: one width here.
    let columns = regex::Regex::new(" {2,}").expect("regex");
    snap("compose_up", &columns.replace_all(&redact(&text), "   "));
    // The published port, from the (sandbox) host; the bind-mounted site.
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
    let page = wait_until("the web server", || {
        fetch(&docker.sandbox.host, local, GET).ok()
    });
    assert!(page.contains("<h1>notes</h1>"), "{page}");
    // `down` keeps the named volume; the next `up` finds the data in it.
    let down = ok(&docker, &dir, &["down", "-t", "0"]);
    assert!(down.contains("Network notes_default  Removed"), "{down}");
    assert_eq!(docker.containers(), Vec::<String>::new());
    assert_eq!(volumes(&docker), ["notes_notes"]);
    ok(&docker, &dir, &["up", "-d"]);
    let again = ok(
        &docker,
        &dir,
        &["exec", "web", "wget", "-qO-", "http://db/notes"],
    );
    assert!(again.contains("buy milk"), "{again}");
    // Up again with nothing changed: kept. A changed file: that service made again.
    let same = ok(&docker, &dir, &["up", "-d"]);
    assert!(same.contains("Container notes-web-1  Running"), "{same}");
    let changed = docker
        .md()
        .current_dir(&dir)
        .env("GREETING", "bonjour")
        .args(["compose", "up", "-d"])
        .transcript();
    assert!(
        changed.1.contains("Container notes-web-1  Recreated"),
        "{}",
        changed.1
    );
    assert!(
        changed.1.contains("Container notes-db-1  Running"),
        "{}",
        changed.1
    );
    // `down -v`: the volume goes too; nothing of the project is left.
    let gone = ok(&docker, &dir, &["down", "-v", "-t", "0"]);
    assert!(gone.contains("Volume notes_notes  Removed"), "{gone}");
    assert_eq!(docker.containers(), Vec::<String>::new());
    assert_eq!(volumes(&docker), Vec::<String>::new());
    let networks = docker.out(&["network", "ls", "-q"]).stdout;
    assert_eq!(networks, "bridge\nhost\nnone\n");
}

#[test]
fn logs_stop_start_restart_and_build() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("shop");
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    std::fs::write(
        dir.join("app/Dockerfile"),
        "FROM busybox\nARG WORD=built\nRUN echo $WORD > /word\nCMD [\"sh\", \"-c\", \"cat /word; exec sleep 1000\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    build:\n      context: ./app\n      args:\n        WORD: from-compose\n",
    )
    .expect("write");
    let (code, built) = compose(&docker, &dir, &["build"]);
    assert_eq!(code, 0, "{built}");
    assert!(docker.out(&["images"]).stdout.contains("shop-app"));
    ok(&docker, &dir, &["up", "-d"]);
    let logs = wait_until("the app's line", || {
        let text = ok(&docker, &dir, &["logs"]);
        text.contains("shop-app-1  | from-compose").then_some(text)
    });
    assert!(logs.contains("from-compose"), "{logs}");
    let stopped = ok(&docker, &dir, &["stop", "-t", "0"]);
    assert!(
        stopped.contains("Container shop-app-1  Stopped"),
        "{stopped}"
    );
    assert!(
        !ok(&docker, &dir, &["ps"]).contains("shop-app-1"),
        "nothing runs"
    );
    assert!(ok(&docker, &dir, &["ps", "-a"]).contains("Exited"));
    ok(&docker, &dir, &["start"]);
    ok(&docker, &dir, &["restart", "-t", "0", "app"]);
    assert!(ok(&docker, &dir, &["ps"]).contains("shop-app-1"));
    ok(&docker, &dir, &["down", "-t", "0"]);
    assert_eq!(docker.containers(), Vec::<String>::new());
}

#[test]
fn a_service_on_two_networks_links_the_others() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("tiers");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  front:\n    image: busybox\n    command: sleep 1000\n    networks: [public]\n\
         \x20 api:\n    image: busybox\n    command: sleep 1000\n    networks: [public, private]\n\
         \x20 db:\n    image: busybox\n    command: sleep 1000\n    networks: [private]\n\
         networks:\n  public:\n  private:\n    internal: true\n",
    )
    .expect("write");
    ok(&docker, &dir, &["up", "-d"]);
    let ping = |from: &str, to: &str| {
        docker
            .md()
            .current_dir(&dir)
            .args(["compose", "exec", from, "ping", "-c1", "-W2", to])
            .output()
            .code
    };
    assert_eq!(ping("front", "api"), 0, "front and api share public");
    assert_eq!(ping("api", "db"), 0, "api and db share private");
    assert_eq!(ping("front", "db"), 1, "front does not know db");
    ok(&docker, &dir, &["down", "-t", "0"]);
    assert_eq!(docker.containers(), Vec::<String>::new());
    let networks = docker.out(&["network", "ls", "-q"]).stdout;
    assert_eq!(networks, "bridge\nhost\nnone\n");
}

#[test]
fn a_services_fields_become_runs_flags() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("fields");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("vars.env"), "# from env_file\nGREETING=hi\n").expect("write");
    std::fs::write(dir.join(".env"), "WHO=compose\n").expect("write");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  job:\n    image: busybox\n    entrypoint: [\"sh\", \"-c\"]\n\
         \x20   command: [\"echo $$GREETING ${WHO} from $$(pwd) as $$(id -u):$$(id -g)\"]\n\
         \x20   env_file: vars.env\n    user: \"1000:1000\"\n    working_dir: /tmp\n\
         \x20 split:\n    image: busybox\n    command: printf '%s|' one 'two words' three\n",
    )
    .expect("write");
    ok(&docker, &dir, &["up", "-d"]);
    let logs = wait_until("both lines", || {
        let text = ok(&docker, &dir, &["logs"]);
        (text.contains("job-1") && text.contains("split-1")).then_some(text)
    });
    assert!(
        logs.contains("fields-job-1    | hi compose from /tmp as 1000:1000"),
        "{logs}"
    );
    assert!(
        logs.contains("fields-split-1  | one|two words|three|"),
        "{logs}"
    );
    ok(&docker, &dir, &["down", "-t", "0"]);
}

#[test]
fn pull_takes_the_services_images_from_a_registry() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let _registry = lab_tests::registry::LocalRegistry::start(&docker.sandbox.host, false);
    let image = "127.0.0.1:5000/lab/bb:1";
    assert_eq!(
        docker
            .out(&["run", "--rm", "--network", "none", "busybox", "true"])
            .code,
        0
    );
    assert_eq!(docker.out(&["tag", "busybox", image]).code, 0);
    assert_eq!(docker.out(&["push", image]).code, 0);
    assert_eq!(docker.out(&["rmi", image]).code, 0);
    let dir = docker.root().with_file_name("pulled");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("compose.yaml"),
        format!("services:\n  app:\n    image: {image}\n"),
    )
    .expect("write");
    let pulled = ok(&docker, &dir, &["pull"]);
    assert!(
        pulled.contains(&format!("Service app  Pulling {image}")),
        "{pulled}"
    );
    let images = docker.out(&["images"]).stdout;
    assert!(images.contains("127.0.0.1:5000/lab/bb"), "{images}");
}

#[test]
fn a_dependency_that_never_gets_healthy_stops_the_up() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("sick");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  db:\n    image: busybox\n    command: sleep 1000\n    healthcheck:\n      test: exit 1\n      interval: 100ms\n      retries: 2\n  web:\n    image: busybox\n    command: sleep 1000\n    depends_on:\n      db:\n        condition: service_healthy\n",
    )
    .expect("write");
    let (code, text) = compose(&docker, &dir, &["up", "-d"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("dependency failed to start: container sick-db-1 is unhealthy"),
        "{text}"
    );
    assert!(!text.contains("sick-web-1"), "web must not be made: {text}");
    ok(&docker, &dir, &["down", "-t", "0"]);
    assert_eq!(docker.containers(), Vec::<String>::new());
}

#[test]
fn bad_compose_files_are_refused() {
    needs_root!();
    native_lane_only!(COMPOSE_ON_NATIVE);
    let docker = Docker::new();
    let dir = docker.root().with_file_name("bad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (code, text) = compose(&docker, &dir, &["up", "-d"]);
    assert_eq!(code, 1, "{text}");
    let mut all = text;
    for file in [
        "services:\n  web:\n    image: busybox\n    deploy: {}\n",
        "services:\n  web:\n    image: busybox\n    volumes: [\"data:/data\"]\n",
        "services:\n  web:\n    image: busybox\n    networks: [back]\n",
        "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
        "services:\n  web:\n    image: busybox:${TAG:?set TAG}\n",
        "services:\n  web:\n    image: busybox\n    ports: [\"80\"]\n",
        "services:\n  web:\n    command: true\n",
        "services:\n  web:\n    image: busybox\n    restart: sometimes\n",
        "services: [web]\n",
        "services:\n  web:\n    image: busybox\n  \tbad: indentation\n",
    ] {
        std::fs::write(dir.join("compose.yaml"), file).expect("write");
        let (code, text) = compose(&docker, &dir, &["up", "-d"]);
        assert_eq!(code, 1, "{file}: {text}");
        all += &format!("--- compose.yaml:\n{file}{text}");
    }
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n",
    )
    .expect("write");
    for args in [
        vec!["-p", "Bad Name", "ps"],
        vec!["exec", "nope", "true"],
        vec!["logs", "nope"],
    ] {
        let (code, text) = compose(&docker, &dir, &args);
        assert_eq!(code, 1, "{text}");
        all += &text;
    }
    snap("compose_bad_input", &redact(&all));
    assert_eq!(docker.containers(), Vec::<String>::new());
    let networks = docker.out(&["network", "ls", "-q"]).stdout;
    assert_eq!(
        networks, "bridge\nhost\nnone\n",
        "a refused file made a network"
    );
    assert_eq!(volumes(&docker), Vec::<String>::new());
}
