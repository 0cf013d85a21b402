//! Images: commit, export/import, load of OCI layouts and docker save archives
//! built here (several layers, whiteouts, an opaque directory), rmi.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use sha2::{Digest, Sha256};

fn none(args: &[&str]) -> Vec<String> {
    let mut all = vec![
        "run".to_string(),
        "--rm".into(),
        "--network".into(),
        "none".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

#[test]
fn commit_then_run_sees_the_change() {
    needs_root!();
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "--name",
        "base",
        "--network",
        "none",
        "-w",
        "/work",
        "busybox",
        "sh",
        "-c",
        "echo made in a container > /hello; rm /etc/group",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(docker.out(&["commit", "base", "mine:v1"]).code, 0);
    let out = docker
        .md()
        .args(none(&[
            "mine:v1",
            "sh",
            "-c",
            "cat /hello; pwd; ls /etc/group || echo group is gone",
        ]))
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "made in a container\n/work\ngroup is gone\n");
    let (code, text) = docker.md().args(["history", "mine:v1"]).transcript();
    assert_eq!(code, 0, "{text}");
    snap("history", &redact(&text));
    // Used by no container: the image goes, and its own layer with it.
    assert_eq!(docker.out(&["rm", "base"]).code, 0);
    assert_eq!(docker.out(&["rmi", "mine:v1"]).code, 0);
    assert_eq!(
        lab_tests::ls(&docker.root().join("layers")).len(),
        1,
        "busybox's layer stays"
    );
}

/// The line of `tar -tvf TAR` that ends with `name`.
fn tar_line(tar: &Path, name: &str) -> String {
    let listing = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(tar)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing.lines().find(|l| l.ends_with(name));
    line.unwrap_or_else(|| panic!("no {name} in\n{listing}"))
        .to_string()
}

#[test]
fn export_then_import_round_trip() {
    needs_root!();
    let docker = Docker::new();
    let t = open_tempdir();
    let tar = t.path().join("fs.tar");
    let out = docker.out(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept && mkfifo /fifo",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = docker.out(&["export", "-o", &tar.to_string_lossy(), "src"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A FIFO is exported as what it is, and so is a device node (which import
    // refuses unless --allow-devices: it is checked in the tarball).
    assert!(tar_line(&tar, " fifo").starts_with('p'));
    let out = docker.out(&[
        "run",
        "--name",
        "devs",
        "--network",
        "none",
        "busybox",
        "mknod",
        "/null2",
        "c",
        "1",
        "3",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let devs = t.path().join("devs.tar");
    let out = docker.out(&["export", "-o", &devs.to_string_lossy(), "devs"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let null2 = tar_line(&devs, " null2");
    assert!(null2.starts_with('c') && null2.contains("1,3"), "{null2}");
    assert_eq!(
        docker
            .out(&["import", &tar.to_string_lossy(), "flat:1"])
            .code,
        0
    );
    let out = docker.md().args(none(&["flat:1", "cat", "/kept"])).output();
    let fifo = docker
        .md()
        .args(none(&["flat:1", "ls", "-l", "/fifo"]))
        .output();
    assert!(
        fifo.stdout.starts_with('p'),
        "{}{}",
        fifo.stdout,
        fifo.stderr
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "kept\n"),
        "{}",
        out.stderr
    );
    // An imported image has no command of its own.
    let out = docker.out(&["run", "--rm", "--network", "none", "flat:1"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("No command specified"),
        "{}",
        out.stderr
    );
}

/// A layer tarball of `entries` (path, contents; a path ending in `/` is a directory).
fn layer(path: &Path, entries: &[(&str, &str)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            builder
                .append_data(&mut h, name, std::io::empty())
                .expect("dir");
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            builder
                .append_data(&mut h, name, data.as_bytes())
                .expect("file");
        }
    }
    builder.finish().expect("finish");
}

/// Three layers: busybox (exported), two files in /data (gzipped), then /data made
/// opaque with a third file, /etc/group deleted, and a greeting.
fn three_layers(docker: &Docker, dir: &Path) -> Vec<std::path::PathBuf> {
    let out = docker.out(&["create", "--name", "bb", "--network", "none", "busybox"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let base = dir.join("base.tar");
    assert_eq!(
        docker
            .out(&["export", "-o", &base.to_string_lossy(), "bb"])
            .code,
        0
    );
    // The second layer gzipped, as registries store them.
    let plain = dir.join("two-plain.tar");
    layer(
        &plain,
        &[("data/", ""), ("data/one", "1\n"), ("data/two", "2\n")],
    );
    let two = dir.join("two.tar.gz");
    let file = std::fs::File::create(&two).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    std::io::copy(&mut std::fs::File::open(&plain).expect("open"), &mut gz).expect("gzip");
    gz.finish().expect("gzip");
    let three = dir.join("three.tar");
    layer(
        &three,
        &[
            ("data/", ""),
            ("data/.wh..wh..opq", ""),
            ("data/three", "3\n"),
            ("etc/.wh.group", ""),
            ("greeting", "hello, layers\n"),
        ],
    );
    vec![base, two, three]
}

/// The image config of the three layers: what a container starts with, and each
/// layer's digest uncompressed (`rootfs.diff_ids`), which `load` checks.
fn config(layers: &[std::path::PathBuf]) -> String {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                "\"{}\"",
                ch04_overlayfs::unpack::diff_id(l).expect("diff id")
            )
        })
        .collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin","GREETING=from the config"],"Cmd":["sh","-c","cat /greeting; ls /data; ls /etc/group || echo group is gone; echo $GREETING"],"WorkingDir":"/data"}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{{"created_by":"base"}},{{"created_by":"two files"}},{{"created_by":"opaque data, no group"}}]}}"#,
        diff_ids.join(",")
    )
}

/// An OCI image layout in `oci` of `config` and `layers` (blobs named by their
/// digest), tagged `layered:1`.
fn oci_layout(oci: &Path, config: &str, layers: &[Vec<u8>]) {
    std::fs::create_dir_all(oci.join("blobs/sha256")).expect("mkdir");
    let put = |bytes: &[u8]| {
        let digest = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(oci.join("blobs/sha256").join(&digest), bytes).expect("blob");
        (format!("sha256:{digest}"), bytes.len())
    };
    let (config, config_size) = put(config.as_bytes());
    let layer_entries: Vec<String> = layers
        .iter()
        .map(|l| {
            let (d, size) = put(l);
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{size}}}"#)
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{}]}}"#,
        layer_entries.join(",")
    );
    let (manifest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(
        oci.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"layered:1"}}}}]}}"#),
    )
    .expect("index");
    std::fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
}

const EXPECTED: &str = "hello, layers\nthree\ngroup is gone\nfrom the config\n";

#[test]
fn load_an_oci_layout_with_whiteouts() {
    needs_root!();
    let docker = Docker::new();
    let t = open_tempdir();
    let layers = three_layers(&docker, t.path());
    let oci = t.path().join("layout");
    let bytes: Vec<Vec<u8>> = layers
        .iter()
        .map(|l| std::fs::read(l).expect("layer"))
        .collect();
    oci_layout(&oci, &config(&layers), &bytes);
    let (code, text) = docker.md().args(["load", "-i"]).arg(&oci).transcript();
    assert_eq!(code, 0, "{text}");
    let out = docker.md().args(none(&["layered:1"])).output();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, EXPECTED),
        "{}",
        out.stderr
    );
    // The base layer is stored once, whoever brought it.
    let layers_stored = lab_tests::ls(&docker.root().join("layers")).len();
    let (code, _) = docker.md().args(["load", "-i"]).arg(&oci).transcript();
    assert_eq!(code, 0);
    assert_eq!(
        lab_tests::ls(&docker.root().join("layers")).len(),
        layers_stored
    );
}

#[test]
fn load_a_docker_save_archive() {
    needs_root!();
    let docker = Docker::new();
    let t = open_tempdir();
    let layers = three_layers(&docker, t.path());
    let archive = t.path().join("saved.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).expect("create"));
    let mut names = vec![];
    for (i, l) in layers.iter().enumerate() {
        let name = format!("{i}/layer.tar");
        builder.append_path_with_name(l, &name).expect("layer");
        names.push(format!("\"{name}\""));
    }
    let config_name = format!("{}.json", "c".repeat(12));
    let mut add = |name: &str, text: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(text.len() as u64);
        builder
            .append_data(&mut h, name, text.as_bytes())
            .expect("file");
    };
    add(&config_name, &config(&layers));
    add(
        "manifest.json",
        &format!(
            r#"[{{"Config":"{config_name}","RepoTags":["saved:latest"],"Layers":[{}]}}]"#,
            names.join(",")
        ),
    );
    builder.finish().expect("finish");
    drop(builder);
    let out = docker.md().args(["load", "-i"]).arg(&archive).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Loaded image: saved:latest\n");
    let out = docker.md().args(none(&["saved"])).output();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, EXPECTED),
        "{}",
        out.stderr
    );
}

// ANCHOR: archive_attacks
/// An archive is its author's. A blob that is a symlink to a file of the host's (a
/// tar here, named by its own digest) would make that file a layer; one to
/// /dev/zero would never end; a blob whose content is not its digest, or a layer
/// whose content is not the diff id its config names, is not the image it claims.
/// Each is refused at once, and nothing is stored.
#[test]
fn an_archive_with_links_or_wrong_digests_is_refused() {
    needs_root!();
    let docker = Docker::new();
    let t = open_tempdir();
    let host_tar = t.path().join("host.tar");
    layer(&host_tar, &[("secret", "the host's secret\n")]);
    let host_bytes = std::fs::read(&host_tar).expect("read");
    let blob_of = |oci: &Path, bytes: &[u8]| {
        oci.join("blobs/sha256")
            .join(format!("{:x}", Sha256::digest(bytes)))
    };
    let one = |config: &str, bytes: &[u8], spoil: &dyn Fn(&Path)| {
        let oci = tempfile::tempdir_in(t.path()).expect("dir").keep();
        oci_layout(&oci, config, &[bytes.to_vec()]);
        spoil(&oci);
        let out = docker.md().args(["load", "-i"]).arg(&oci).output();
        assert_eq!(out.code, 125, "{}", out.stderr);
        out.stderr
    };
    let good = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        ch04_overlayfs::unpack::diff_id(&host_tar).expect("diff id")
    );
    let to_host = |oci: &Path| {
        let blob = blob_of(oci, &host_bytes);
        std::fs::remove_file(&blob).expect("rm");
        std::os::unix::fs::symlink(&host_tar, &blob).expect("symlink");
    };
    assert!(one(&good, &host_bytes, &to_host).contains("a symlink"));
    let to_zero = |oci: &Path| {
        let blob = blob_of(oci, &host_bytes);
        std::fs::remove_file(&blob).expect("rm");
        std::os::unix::fs::symlink("/dev/zero", &blob).expect("symlink");
    };
    assert!(one(&good, &host_bytes, &to_zero).contains("a symlink"));
    let altered = |oci: &Path| {
        let blob = blob_of(oci, &host_bytes);
        let mut bytes = std::fs::read(&blob).expect("read");
        bytes[600] ^= 1; // inside the first file's contents
        std::fs::write(&blob, bytes).expect("write");
    };
    assert!(one(&good, &host_bytes, &altered).contains("not the digest it is named by"));
    let wrong = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "0".repeat(64)
    );
    assert!(one(&wrong, &host_bytes, &|_| ()).contains("not the sha256:000"));
    assert_eq!(
        lab_tests::ls(&docker.root().join("images")),
        Vec::<String>::new()
    );
    let layers = lab_tests::ls(&docker.root().join("layers"));
    assert_eq!(layers, Vec::<String>::new(), "stored: {layers:?}");
}
// ANCHOR_END: archive_attacks

#[test]
fn an_archive_that_leaves_its_directory_is_refused() {
    needs_root!();
    let docker = Docker::new();
    let t = open_tempdir();
    let evil = t.path().join("evil.tar");
    // The tar crate will not write `..`: write the header by hand.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(3);
    let name = b"../../escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(b"hi\n");
    bytes.resize(1024 + 512, 0);
    std::fs::File::create(&evil)
        .and_then(|mut f| f.write_all(&bytes))
        .expect("write");
    let (code, text) = docker
        .md()
        .redact_path(t.path(), "/tmp/lab-XXXXXX")
        .args(["load", "-i"])
        .arg(&evil)
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("load_traversal", &redact(&text));
    assert!(!t.path().parent().unwrap().join("escaped").exists());
    let (code, text) = docker
        .md()
        .args(["import"])
        .arg(&evil)
        .arg("evil")
        .transcript();
    assert_eq!(code, 125, "{text}");
    assert_eq!(
        lab_tests::ls(&docker.root().join("images")),
        Vec::<String>::new()
    );
}
