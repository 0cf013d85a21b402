//! Registries: push, pull, tag, save, login against a real registry (Debian's
//! docker-registry, distribution v2) on 127.0.0.1:5000 inside the test's own network
//! namespace; skopeo puts Docker-typed images and multi-platform indexes there; a
//! token server of the harness plays Docker Hub's auth. Nothing else is contacted.

mod common;

use std::path::Path;

use common::*;
use lab_tests::registry::{LocalRegistry, PASSWORD, TinyServer, USER};
use sha2::{Digest, Sha256};

/// `mini-docker` with its credentials and daemon config in the test's temp dir.
fn md(docker: &Docker) -> Learner {
    let dir = docker.root();
    let dir = dir.parent().expect("the temp dir");
    docker
        .md()
        .env(
            "DOCKER_CONFIG",
            &dir.join("docker-config").to_string_lossy(),
        )
        .env(
            "MINI_DOCKER_CONFIG_FILE",
            &dir.join("daemon.json").to_string_lossy(),
        )
}

fn ok(docker: &Docker, args: &[&str]) -> String {
    let out = md(docker).args(args).output();
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// busybox (built from this host), pushed as 127.0.0.1:5000/lab/bb:1.
fn push_busybox(docker: &Docker) -> String {
    busybox(docker);
    ok(docker, &["tag", "busybox", "127.0.0.1:5000/lab/bb:1"]);
    ok(docker, &["push", "127.0.0.1:5000/lab/bb:1"])
}

/// busybox, built from this host into the store.
fn busybox(docker: &Docker) {
    let out = docker.out(&["run", "--rm", "--network", "none", "busybox", "true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

fn stored(docker: &Docker, dir: &str) -> Vec<String> {
    lab_tests::ls(&docker.root().join(dir))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// On the emulated cgroup v2 lane only the first test talks to the registry: the
/// protocol is the same on both lanes, and only `run` touches cgroups.
const REGISTRY_ON_NATIVE: &str = "the registry's protocol is the same on both lanes and touches no \
     cgroup; push_then_pull_into_another_store_and_run runs a pulled image on the emulated \
     cgroup v2 lane, the rest is left to the native lane to keep CI within 30 minutes";

#[test]
fn push_then_pull_into_another_store_and_run() {
    needs_root!();
    let docker = Docker::new();
    let _registry = LocalRegistry::start(&docker.sandbox.host, false);
    busybox(&docker);
    ok(&docker, &["tag", "busybox", "127.0.0.1:5000/lab/bb:1"]);
    let (code, pushed) = md(&docker)
        .args(["push", "127.0.0.1:5000/lab/bb:1"])
        .transcript();
    assert_eq!(code, 0, "{pushed}");
    let (_, again) = md(&docker)
        .args(["push", "127.0.0.1:5000/lab/bb:1"])
        .transcript();
    assert!(again.contains("Layer already exists"), "{again}");
    // The same image under a name of another repository: its layer is mounted.
    ok(&docker, &["pull", "127.0.0.1:5000/lab/bb:1"]);
    ok(
        &docker,
        &[
            "tag",
            "127.0.0.1:5000/lab/bb:1",
            "127.0.0.1:5000/other/bb:1",
        ],
    );
    let mounted = ok(&docker, &["push", "127.0.0.1:5000/other/bb:1"]);
    assert!(mounted.contains("Mounted from lab/bb"), "{mounted}");

    let pulled = md(&docker)
        .env(
            "MINI_DOCKER_ROOT",
            &docker.root().with_file_name("second").to_string_lossy(),
        )
        .args(["pull", "127.0.0.1:5000/lab/bb:1"])
        .transcript();
    assert_eq!(pulled.0, 0, "{}", pulled.1);
    let second = docker.root().with_file_name("second");
    let in_second = |args: &[&str]| {
        md(&docker)
            .env("MINI_DOCKER_ROOT", &second.to_string_lossy())
            .args(args)
            .output()
    };
    let out = in_second(&[
        "run",
        "--rm",
        "--network",
        "none",
        "127.0.0.1:5000/lab/bb:1",
        "echo",
        "hi",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hi\n"),
        "{}",
        out.stderr
    );
    // Columns as wide as their widest cell, which the redactions change: squashed.
    let images = regex::Regex::new(" {2,}")
        .expect("regex")
        .replace_all(&in_second(&["images", "--digests"]).stdout, "   ")
        .into_owned();
    // Another tag of the same image: its layer is in the second store already.
    ok(
        &docker,
        &["tag", "127.0.0.1:5000/lab/bb:1", "127.0.0.1:5000/lab/bb:2"],
    );
    ok(&docker, &["push", "127.0.0.1:5000/lab/bb:2"]);
    let again = in_second(&["pull", "127.0.0.1:5000/lab/bb:2"]);
    assert!(
        again.stdout.contains(": Already exists\n"),
        "{}",
        again.stdout
    );
    assert!(
        !again.stdout.contains("Pulling fs layer"),
        "{}",
        again.stdout
    );
    snap(
        "registry_push_pull",
        &redact(&format!("{pushed}\n{}\n{images}", pulled.1)),
    );
    // By its digest, too.
    let digest = pulled
        .1
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("a digest");
    let pinned = format!("127.0.0.1:5000/lab/bb@{digest}");
    assert_eq!(in_second(&["history", &pinned]).code, 0);
    // A name only untags while another is left; the last one deletes.
    let rmi = in_second(&["rmi", "127.0.0.1:5000/lab/bb:1", "127.0.0.1:5000/lab/bb:2"]);
    assert_eq!(rmi.code, 0, "{}", rmi.stderr);
    let lines: Vec<&str> = rmi.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "Untagged: 127.0.0.1:5000/lab/bb:1",
            "Untagged: 127.0.0.1:5000/lab/bb:2"
        ]
    );
    let last = lines.last().expect("a line");
    assert!(last.starts_with("Deleted: sha256:"), "{}", rmi.stdout);
    let _ = std::fs::remove_dir_all(&second);
}

#[test]
fn docker_types_and_a_multi_platform_index() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let registry = LocalRegistry::start(&docker.sandbox.host, false);
    push_busybox(&docker);
    let no_tls = ["--src-tls-verify=false", "--dest-tls-verify=false"];
    // Docker's own media types (manifest v2 schema 2), by skopeo.
    let mut args = vec!["copy", "--format", "v2s2"];
    args.extend(no_tls);
    args.extend([
        "docker://127.0.0.1:5000/lab/bb:1",
        "docker://127.0.0.1:5000/lab/docker-typed:1",
    ]);
    registry.skopeo(&args);
    let raw = registry.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "docker://127.0.0.1:5000/lab/docker-typed:1",
    ]);
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    ok(&docker, &["pull", "127.0.0.1:5000/lab/docker-typed:1"]);
    let out = md(&docker)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "127.0.0.1:5000/lab/docker-typed:1",
            "echo",
            "typed",
        ])
        .output();
    assert_eq!(out.stdout, "typed\n", "{}", out.stderr);

    // An index of two platforms: this machine's, and arm64 (same layer, its own config).
    let layout = registry.dir.path().join("layout");
    let mut args = vec!["copy", "--src-tls-verify=false"];
    let dest = format!("oci:{}:1", layout.display());
    args.extend(["docker://127.0.0.1:5000/lab/bb:1", &dest]);
    registry.skopeo(&args);
    let this = this_arch();
    let (ours, arm) = platform_manifests(&layout, &this);
    write_index(&layout, "multi", &[(&ours, &this), (&arm, "arm64")]);
    write_index(&layout, "armonly", &[(&arm, "arm64")]);
    for name in ["multi", "armonly"] {
        let src = format!("oci:{}:{name}", layout.display());
        let dst = format!("docker://127.0.0.1:5000/lab/{name}:1");
        registry.skopeo(&["copy", "--all", "--dest-tls-verify=false", &src, &dst]);
    }
    let pulled = ok(&docker, &["pull", "127.0.0.1:5000/lab/multi:1"]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let inspect = ok(&docker, &["inspect", "127.0.0.1:5000/lab/multi:1"]);
    assert!(
        inspect.contains(&format!("\"Architecture\": \"{this}\"")),
        "{inspect}"
    );
    let arm_pull = ok(
        &docker,
        &[
            "pull",
            "--platform",
            "linux/arm64",
            "127.0.0.1:5000/lab/multi:1",
        ],
    );
    assert!(arm_pull.contains("Downloaded newer image"), "{arm_pull}");
    let inspect = ok(&docker, &["inspect", "127.0.0.1:5000/lab/multi:1"]);
    assert!(inspect.contains("\"Architecture\": \"arm64\""), "{inspect}");
    // Only another platform: refused, nothing stored.
    let images = stored(&docker, "images");
    let out = md(&docker)
        .args(["pull", "127.0.0.1:5000/lab/armonly:1"])
        .output();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "mini-docker: no matching manifest for linux/{this} in the manifest list entries\n"
        )
    );
    assert_eq!(stored(&docker, "images"), images);
}

fn this_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = format!("{:x}", Sha256::digest(bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).expect("write blob");
    (format!("sha256:{hex}"), bytes.len())
}

fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob"))
        .expect("json")
}

/// The layout's one manifest (this machine's), and an arm64 twin of it.
fn platform_manifests(layout: &Path, this: &str) -> ((String, usize), (String, usize)) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let ours = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let manifest = blob_json(layout, &ours);
    let mut config = blob_json(
        layout,
        manifest["config"]["digest"].as_str().expect("config"),
    );
    assert_eq!(config["architecture"], this);
    config["architecture"] = "arm64".into();
    let (config_digest, config_size) =
        put_blob(layout, &serde_json::to_vec(&config).expect("json"));
    let mut arm = manifest.clone();
    arm["config"]["digest"] = config_digest.into();
    arm["config"]["size"] = config_size.into();
    let ours_size = std::fs::metadata(
        layout
            .join("blobs/sha256")
            .join(ours.trim_start_matches("sha256:")),
    )
    .expect("blob")
    .len() as usize;
    (
        (ours, ours_size),
        put_blob(layout, &serde_json::to_vec(&arm).expect("json")),
    )
}

/// An image index of `manifests`, named `name` in the layout's index.json.
fn write_index(layout: &Path, name: &str, manifests: &[(&(String, usize), &str)]) {
    let entries: Vec<serde_json::Value> = manifests
        .iter()
        .map(|((digest, size), arch)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": size,
                "platform": { "os": "linux", "architecture": arch },
            })
        })
        .collect();
    let inner = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&inner).expect("json"));
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("index")).expect("json");
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": size,
            "annotations": { "org.opencontainers.image.ref.name": name },
        }));
    std::fs::write(&path, serde_json::to_vec(&index).expect("json")).expect("write index");
}

#[test]
fn token_auth_anonymous_pull_and_login_to_push() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let _registry = LocalRegistry::start(&docker.sandbox.host, true);
    busybox(&docker);
    ok(&docker, &["tag", "busybox", "127.0.0.1:5000/lab/bb:1"]);
    // Anonymous: the token server grants pull only.
    let out = md(&docker)
        .args(["push", "127.0.0.1:5000/lab/bb:1"])
        .output();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("denied") || out.stderr.contains("unauthorized"),
        "{}",
        out.stderr
    );
    // A wrong password: refused, nothing kept.
    let wrong = md(&docker)
        .args(["login", "-u", USER, "--password-stdin", "127.0.0.1:5000"])
        .stdin_text("wrong\n")
        .output();
    assert_eq!(wrong.code, 1);
    let config = docker
        .root()
        .with_file_name("docker-config")
        .join("config.json");
    assert!(!config.exists());
    let (code, login) = md(&docker)
        .args(["login", "-u", USER, "--password-stdin", "127.0.0.1:5000"])
        .stdin_text(&format!("{PASSWORD}\n"))
        .transcript();
    assert_eq!(code, 0, "{login}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config)
        .expect("config.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let kept = std::fs::read_to_string(&config).expect("config.json");
    assert!(kept.contains("\"127.0.0.1:5000\""), "{kept}");
    assert!(
        !kept.contains(PASSWORD),
        "the password in the clear: {kept}"
    );
    let (code, push) = md(&docker)
        .args(["--explain", "push", "127.0.0.1:5000/lab/bb:1"])
        .transcript();
    assert_eq!(code, 0, "{push}");
    assert!(
        push.contains("/token?service=lab-registry&scope=repository%3Alab%2Fbb%3Apull%2Cpush"),
        "{push}"
    );
    assert!(push.contains("Authorization: Bearer $TOKEN"), "{push}");
    assert!(!push.contains(PASSWORD), "{push}");
    // Pulled back anonymously after logging out, the token dance and all.
    let logout = ok(&docker, &["logout", "127.0.0.1:5000"]);
    ok(&docker, &["rmi", "127.0.0.1:5000/lab/bb:1"]);
    let (code, pull) = md(&docker)
        .args(["--explain", "pull", "127.0.0.1:5000/lab/bb:1"])
        .transcript();
    assert_eq!(code, 0, "{pull}");
    let dance: Vec<&str> = pull
        .lines()
        .filter(|l| l.starts_with("GET ") || l.starts_with("# -> ") || l.contains(": Pulling from"))
        .collect();
    snap(
        "registry_token",
        &redact(&format!("{login}{logout}\n{}\n", dance.join("\n"))),
    );
    assert!(
        !std::fs::read_to_string(&config)
            .expect("config.json")
            .contains("127.0.0.1:5000")
    );
}

#[test]
fn bad_blobs_and_bad_registries_store_nothing() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let registry = LocalRegistry::start(&docker.sandbox.host, false);
    push_busybox(&docker);
    let raw = registry.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "docker://127.0.0.1:5000/lab/bb:1",
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_string();
    let data = registry.blob_data(&layer);
    let good = std::fs::read(&data).expect("the blob");
    // A fresh store for each pull: the first one keeps busybox (and its layer).
    let fresh = docker.root().with_file_name("fresh");
    let pull = |reference: &str| {
        let out = md(&docker)
            .env("MINI_DOCKER_ROOT", &fresh.to_string_lossy())
            .args(["pull", reference])
            .output();
        let left: Vec<String> = ["images", "layers", "blobs/sha256"]
            .iter()
            .flat_map(|d| lab_tests::ls(&fresh.join(d)))
            .collect();
        (out.code, out.stderr, left)
    };
    let mut changed = good.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    std::fs::write(&data, &changed).expect("corrupt the blob");
    let (code, stderr, left) = pull("127.0.0.1:5000/lab/bb:1");
    assert_eq!((code, left), (1, vec![]), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "mini-docker: filesystem layer verification failed for digest {layer}"
        )),
        "{stderr}"
    );
    std::fs::write(&data, &good[..good.len() / 2]).expect("truncate the blob");
    let (code, stderr, left) = pull("127.0.0.1:5000/lab/bb:1");
    assert_eq!((code, left), (1, vec![]), "{stderr}");
    assert!(
        stderr.contains("truncated") || stderr.contains("after"),
        "{stderr}"
    );
    std::fs::write(&data, &good).expect("put the blob back");

    let mut messages = vec![];
    for reference in [
        "127.0.0.1:5000/lab/bb:nope",
        "127.0.0.1:5000/lab/nosuch",
        "127.0.0.1:5001/lab/bb:1",
        "Bad/Name",
    ] {
        let (code, stderr, left) = pull(reference);
        assert_eq!((code, left), (1, vec![]), "{reference}: {stderr}");
        messages.push(format!("$ mini-docker pull {reference}\n{stderr}"));
    }
    // A registry that answers a 5 MiB manifest: refused before it is parsed.
    let huge = TinyServer::start(
        &docker.sandbox.host,
        "127.0.0.1:5002",
        |request| match request.target.as_str() {
            "/v2/" => ("200 OK", vec![], b"{}".to_vec()),
            _ => (
                "200 OK",
                vec![(
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                vec![b' '; 5 << 20],
            ),
        },
    );
    let (code, stderr, left) = pull("127.0.0.1:5002/lab/huge:1");
    drop(huge);
    assert_eq!((code, left), (1, vec![]), "{stderr}");
    messages.push(format!(
        "$ mini-docker pull 127.0.0.1:5002/lab/huge:1\n{stderr}"
    ));
    let run = md(&docker)
        .env("MINI_DOCKER_ROOT", &fresh.to_string_lossy())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "127.0.0.1:5000/lab/bb:nope",
        ])
        .output();
    assert_eq!(run.code, 125);
    messages.push(format!(
        "$ mini-docker run ... 127.0.0.1:5000/lab/bb:nope\n{}",
        run.stderr
    ));
    snap("registry_bad_input", &redact(&messages.join("\n")));
    let _ = std::fs::remove_dir_all(&fresh);
}

#[test]
fn docker_hub_names_through_a_mirror() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let _registry = LocalRegistry::start(&docker.sandbox.host, false);
    // `bb` is docker.io/library/bb: the mirror is asked for library/bb.
    busybox(&docker);
    ok(
        &docker,
        &["tag", "busybox", "127.0.0.1:5000/library/bb:latest"],
    );
    ok(&docker, &["push", "127.0.0.1:5000/library/bb:latest"]);
    ok(&docker, &["rmi", "127.0.0.1:5000/library/bb:latest"]);
    let daemon = docker.root().with_file_name("daemon.json");
    std::fs::write(
        &daemon,
        r#"{"registry-mirrors": ["http://127.0.0.1:5000"]}"#,
    )
    .expect("daemon.json");
    let out = md(&docker)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "echo",
            "via the mirror",
        ])
        .output();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "via the mirror\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .starts_with("Unable to find image 'bb:latest' locally\n"),
        "{}",
        out.stderr
    );
    // The name answers as Docker writes it, in every form and every verb.
    for name in [
        "bb",
        "bb:latest",
        "library/bb",
        "docker.io/library/bb:latest",
    ] {
        assert_eq!(
            md(&docker).args(["history", name]).output().code,
            0,
            "{name}"
        );
        assert_eq!(
            md(&docker).args(["inspect", name]).output().code,
            0,
            "{name}"
        );
    }
    let images = ok(&docker, &["images"]);
    assert!(images.lines().any(|l| l.starts_with("bb ")), "{images}");
    ok(&docker, &["tag", "docker.io/library/bb", "mine"]);
    let rmi = ok(&docker, &["rmi", "mine"]);
    assert_eq!(rmi, "Untagged: mine:latest\n");
    // By id, an image with two names is removed only when forced.
    ok(&docker, &["tag", "bb", "mine"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&docker, &["inspect", "mine"])).expect("json");
    let id = inspect[0]["Id"].as_str().expect("Id").to_string();
    let refused = md(&docker).args(["rmi", &id[7..19]]).output();
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("must be forced"),
        "{}",
        refused.stderr
    );
    let forced = ok(&docker, &["rmi", "-f", &id[7..19]]);
    assert!(
        forced.contains("Untagged: bb:latest\n") && forced.contains("Untagged: mine:latest\n"),
        "{forced}"
    );
    assert!(forced.ends_with(&format!("Deleted: {id}\n")), "{forced}");
    assert_eq!(
        stored(&docker, "blobs/sha256").len(),
        0,
        "the image's blobs go with it"
    );
}

#[test]
fn save_is_read_by_skopeo_and_load() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let registry = LocalRegistry::start(&docker.sandbox.host, false);
    busybox(&docker);
    let archive = docker.root().with_file_name("bb.tar");
    ok(
        &docker,
        &["save", "-o", &archive.to_string_lossy(), "busybox"],
    );
    let seen = registry.skopeo(&["inspect", &format!("docker-archive:{}", archive.display())]);
    assert!(
        seen.contains("docker.io/library/busybox") || seen.contains("\"Layers\""),
        "{seen}"
    );
    registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        "docker://127.0.0.1:5000/lab/saved:1",
    ]);
    let fresh = docker.root().with_file_name("fresh");
    let in_fresh = |args: &[&str]| {
        md(&docker)
            .env("MINI_DOCKER_ROOT", &fresh.to_string_lossy())
            .args(args)
            .output()
    };
    assert_eq!(
        in_fresh(&["load", "-i", &archive.to_string_lossy()]).code,
        0
    );
    let out = in_fresh(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "loaded",
    ]);
    assert_eq!(out.stdout, "loaded\n", "{}", out.stderr);
    let out = in_fresh(&[
        "run",
        "--rm",
        "--network",
        "none",
        "127.0.0.1:5000/lab/saved:1",
        "echo",
        "copied",
    ]);
    assert_eq!(out.stdout, "copied\n", "{}", out.stderr);
    let terminalless = md(&docker).args(["save", "nosuch"]).output();
    assert_eq!(
        (terminalless.code, terminalless.stderr.as_str()),
        (1, "mini-docker: No such image: nosuch\n")
    );
    let _ = std::fs::remove_dir_all(&fresh);
}

#[test]
fn a_large_layer_is_uploaded_in_chunks() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let _registry = LocalRegistry::start(&docker.sandbox.host, false);
    let made = docker.out(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "head -c 6000000 /dev/urandom > /noise",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    ok(&docker, &["commit", "big", "127.0.0.1:5000/lab/big:1"]);
    ok(&docker, &["rm", "big"]);
    let (code, push) = md(&docker)
        .args(["--explain", "push", "127.0.0.1:5000/lab/big:1"])
        .transcript();
    assert_eq!(code, 0, "{push}");
    let patches: Vec<&str> = push.lines().filter(|l| l.starts_with("PATCH ")).collect();
    assert_eq!(patches.len(), 2, "{push}");
    assert!(push.contains("Content-Range: 0-4194303"), "{push}");
    ok(&docker, &["rmi", "127.0.0.1:5000/lab/big:1"]);
    let out = md(&docker)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "127.0.0.1:5000/lab/big:1",
            "wc",
            "-c",
            "/noise",
        ])
        .output();
    assert_eq!(
        out.stdout.split_whitespace().next(),
        Some("6000000"),
        "{}",
        out.stderr
    );
}

/// HTTPS, checked against this machine's roots (here the file SSL_CERT_FILE names,
/// holding the registry's own certificate). Loopback and the registries daemon.json
/// calls insecure may go unchecked (or over HTTP), as Docker allows them.
#[test]
fn https_is_checked_and_insecure_registries_are_named() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let registry = LocalRegistry::start_tls(&docker.sandbox.host);
    docker.sandbox.host.sh("ip addr add 192.0.2.2/32 dev lo");
    busybox(&docker);
    let cert = registry.certificate();
    let trusted = |args: &[&str]| {
        md(&docker)
            .env("SSL_CERT_FILE", &cert.to_string_lossy())
            .args(args)
            .output()
    };
    ok(&docker, &["tag", "busybox", "192.0.2.2:5000/lab/bb:1"]);
    let out = trusted(&["--explain", "push", "192.0.2.2:5000/lab/bb:1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("GET https://192.0.2.2:5000/v2/"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("http://"), "{}", out.stderr);
    ok(&docker, &["rmi", "192.0.2.2:5000/lab/bb:1"]);
    // Signed by no root this machine trusts: refused, and no HTTP tried.
    let out = md(&docker)
        .args(["--explain", "pull", "192.0.2.2:5000/lab/bb:1"])
        .output();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
    assert!(!out.stderr.contains("GET http://"), "{}", out.stderr);
    // Named insecure: its certificate goes unchecked.
    let daemon = docker.root().with_file_name("daemon.json");
    std::fs::write(&daemon, r#"{"insecure-registries": ["192.0.2.2:5000"]}"#).expect("daemon.json");
    ok(&docker, &["pull", "192.0.2.2:5000/lab/bb:1"]);
    // Loopback is insecure by default, as in Docker.
    ok(&docker, &["pull", "127.0.0.1:5000/lab/bb:1"]);
}

/// On a terminal: the layers' lines redrawn in place with their bars, and a login
/// that asks, the password never echoed.
#[test]
fn on_a_terminal_progress_bars_and_a_login_prompt() {
    needs_root!();
    native_lane_only!(REGISTRY_ON_NATIVE);
    let docker = Docker::new();
    let _registry = LocalRegistry::start(&docker.sandbox.host, true);
    busybox(&docker);
    let config = docker.root().with_file_name("docker-config");
    let mut terminal = Terminal::new(None);
    let mut login = docker.command(&["login", "127.0.0.1:5000"]);
    login.env("DOCKER_CONFIG", &config);
    terminal.attach(&mut login);
    let mut child = login.spawn().expect("login");
    terminal.wait_for("", "Username: ");
    terminal.type_keys(&format!("{USER}\n"));
    terminal.wait_for("", "Password: ");
    terminal.type_keys(&format!("{PASSWORD}\n"));
    assert!(
        child.wait().expect("wait").success(),
        "{}",
        terminal.screen()
    );
    terminal.wait_for("", "Login Succeeded");
    assert!(
        !terminal.screen().contains(PASSWORD),
        "echoed: {}",
        terminal.screen()
    );
    let mut push = docker.command(&["push", "127.0.0.1:5000/lab/bb:1"]);
    ok(&docker, &["tag", "busybox", "127.0.0.1:5000/lab/bb:1"]);
    push.env("DOCKER_CONFIG", &config);
    assert!(push.output().expect("push").status.success());
    ok(&docker, &["rmi", "127.0.0.1:5000/lab/bb:1", "busybox"]);
    let screen = Terminal::new(None);
    let mut pull = docker.command(&["pull", "127.0.0.1:5000/lab/bb:1"]);
    screen.attach(&mut pull);
    assert!(pull.spawn().expect("pull").wait().expect("wait").success());
    screen.wait_for("", "Status: Downloaded newer image");
    let shown = screen.screen();
    assert!(shown.contains("\x1b[1A\x1b[2K"), "no redraw: {shown:?}");
    assert!(shown.contains(": Downloading ["), "no bar: {shown:?}");
    assert!(shown.contains(": Pull complete"), "{shown:?}");
}
