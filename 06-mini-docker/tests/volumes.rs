//! Volumes: named and anonymous ones, copy-up from the image, `--mount`,
//! `--volumes-from` and the backup/restore recipe, `volume` verbs, and every bad
//! input with its message and code, and nothing left behind.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const VOLUMES_ON_NATIVE: &str = "a volume is a bind mount of `run`'s, whose cgroups other tests cover on this lane; left to the native lane to keep CI within 30 minutes (copy-up runs here)";

/// `run --rm --network none ARGS...`: its outcome.
fn run(docker: &Docker, args: &[&str]) -> lab_tests::Outcome {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend(args);
    docker.out(&all)
}

/// `run` as a learner types it, as a transcript (for the book).
fn typed(docker: &Docker, args: &[&str]) -> String {
    let (code, text) = docker.md().args(args).transcript();
    assert_eq!(code, 0, "{text}");
    text
}

/// Build the image `db` of the book's volume page: files owned by 1000 at
/// /var/lib/db, declared a VOLUME.
fn db_image(docker: &Docker) {
    let dir = docker.root().with_file_name("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dockerfiles/db/Dockerfile"),
    )
    .expect("the book's Dockerfile");
    std::fs::write(dir.join("Dockerfile"), text).expect("write");
    let dir = dir.to_string_lossy().into_owned();
    let out = docker.out(&["build", "-q", "--network", "none", "-t", "db", &dir]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// The volume names in the store.
fn volumes(docker: &Docker) -> Vec<String> {
    let dir = docker.root().join("volumes");
    match dir.is_dir() {
        true => lab_tests::ls(&dir)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect(),
        false => vec![],
    }
}

/// Nothing of a test's left: containers, volumes, mounts.
fn assert_clean(docker: &Docker) {
    assert_eq!(docker.containers(), Vec::<String>::new());
    assert_eq!(volumes(docker), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = docker.root().to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "a mount left under {root}");
}

#[test]
fn a_named_volume_outlives_its_containers() {
    needs_root!();
    native_lane_only!(VOLUMES_ON_NATIVE);
    let docker = Docker::new();
    let mut text = typed(&docker, &["volume", "create", "notes"]);
    text += &typed(
        &docker,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "notes:/notes",
            "busybox",
            "sh",
            "-c",
            "echo written by the first container > /notes/today",
        ],
    );
    text += &typed(
        &docker,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "notes:/notes:ro",
            "busybox",
            "sh",
            "-c",
            "cat /notes/today; (echo more >> /notes/today) 2>/dev/null || echo read-only here",
        ],
    );
    text += &typed(&docker, &["volume", "ls"]);
    text += &typed(&docker, &["volume", "inspect", "notes"]);
    snap("volume_named", &redact(&text));
    // The files are in the store, where inspect says.
    let data = docker.root().join("volumes/notes/_data/today");
    assert_eq!(
        std::fs::read_to_string(data).expect("the volume's file"),
        "written by the first container\n"
    );
    // Used by a container (even a stopped one): not removed.
    docker.run_detached("user", &["-v", "notes:/n", "busybox", "true"]);
    let used = docker.out(&["volume", "rm", "notes"]);
    assert_eq!(used.code, 1, "{}", used.stderr);
    let id = docker.id("user");
    assert!(
        used.stderr
            .contains(&format!("remove notes: volume is in use - [{id}]")),
        "{}",
        used.stderr
    );
    // `rm -v` leaves named volumes; a plain prune leaves them too (Docker 23+).
    assert_eq!(docker.out(&["rm", "-f", "-v", "user"]).code, 0);
    assert!(
        docker
            .out(&["volume", "prune"])
            .stdout
            .starts_with("Deleted Volumes:\n\n")
    );
    assert_eq!(volumes(&docker), ["notes"]);
    let pruned = docker.out(&["volume", "prune", "-a"]);
    assert!(
        pruned.stdout.starts_with("Deleted Volumes:\nnotes\n"),
        "{}",
        pruned.stdout
    );
    assert_clean(&docker);
}

#[test]
fn an_empty_volume_is_filled_from_the_image() {
    needs_root!();
    native_lane_only!(VOLUMES_ON_NATIVE);
    let docker = Docker::new();
    db_image(&docker);
    // The image's VOLUME: an anonymous volume, filled with the image's files,
    // owners and modes kept.
    docker.run_detached(
        "db1",
        &["db", "sh", "-c", "echo second >> /var/lib/db/seed"],
    );
    assert_eq!(docker.out(&["wait", "db1"]).stdout, "0\n");
    let anonymous = volumes(&docker);
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");
    assert_eq!(anonymous[0].len(), 64);
    let data = docker
        .root()
        .join("volumes")
        .join(&anonymous[0])
        .join("_data");
    let ls = |dir: &Path| {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir).expect("stat");
        (meta.uid(), meta.mode() & 0o7777)
    };
    assert_eq!(ls(&data), (1000, 0o750), "the directory's owner and mode");
    assert_eq!(ls(&data.join("seed")), (1000, 0o640));
    assert_eq!(
        std::fs::read_to_string(data.join("seed")).expect("seed"),
        "initial\nsecond\n"
    );
    // A named volume: filled once, while it is empty; `nocopy` leaves it empty.
    let out = run(
        &docker,
        &["-v", "dbdata:/var/lib/db", "db", "cat", "/var/lib/db/seed"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "initial\n"),
        "{}",
        out.stderr
    );
    let out = run(
        &docker,
        &[
            "-v",
            "empty:/var/lib/db:nocopy",
            "db",
            "ls",
            "-A",
            "/var/lib/db",
        ],
    );
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    // --rm takes the anonymous volume with the container; `rm -v` too.
    let out = run(&docker, &["db", "true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut left = vec![anonymous[0].clone(), "dbdata".into(), "empty".into()];
    left.sort();
    assert_eq!(volumes(&docker), left);
    assert_eq!(docker.out(&["rm", "-v", "db1"]).code, 0);
    assert_eq!(volumes(&docker), ["dbdata", "empty"]);
    let removed = docker.out(&["volume", "rm", "dbdata", "empty", "gone"]);
    assert_eq!(removed.code, 1);
    assert_eq!(removed.stdout, "dbdata\nempty\n");
    assert!(
        removed.stderr.contains("No such volume: gone"),
        "{}",
        removed.stderr
    );
    assert_eq!(docker.out(&["volume", "rm", "-f", "gone"]).code, 0);
    assert_clean(&docker);
}

#[test]
fn backup_and_restore_through_volumes_from() {
    needs_root!();
    native_lane_only!(VOLUMES_ON_NATIVE);
    let docker = Docker::new();
    db_image(&docker);
    let backup = docker.root().with_file_name("backup");
    let bind = format!("{}:/backup", backup.display());
    // The recipe of Docker's documentation: a container with the data...
    let mut text = typed(
        &docker,
        &[
            "run",
            "--name",
            "dbstore",
            "--network",
            "none",
            "db",
            "sh",
            "-c",
            "echo precious >> /var/lib/db/seed",
        ],
    );
    // ...a second one with its volumes and a host directory tars them out
    // (`-v` makes the missing host directory, as Docker's does)...
    text += &typed(
        &docker,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            "dbstore",
            "-v",
            &bind,
            "busybox",
            "tar",
            "cf",
            "/backup/backup.tar",
            "/var/lib/db",
        ],
    );
    // ...and a third restores them into a new container's volume.
    text += &typed(
        &docker,
        &[
            "run",
            "--name",
            "dbstore2",
            "--network",
            "none",
            "-v",
            "/var/lib/db",
            "busybox",
            "true",
        ],
    );
    text += &typed(
        &docker,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            "dbstore2",
            "-v",
            &bind,
            "busybox",
            "sh",
            "-c",
            "cd /var/lib/db && tar xf /backup/backup.tar --strip 3 && cat seed",
        ],
    );
    snap("volume_backup", &redact(&text));
    assert!(backup.join("backup.tar").is_file());
    // --volumes-from ro: the same volume, read-only.
    let out = run(
        &docker,
        &[
            "--volumes-from",
            "dbstore2:ro",
            "busybox",
            "sh",
            "-c",
            "echo x > /var/lib/db/x",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert_eq!(docker.out(&["rm", "-v", "dbstore", "dbstore2"]).code, 0);
    assert_clean(&docker);
}

#[test]
fn mount_flags_as_docker_reads_them() {
    needs_root!();
    native_lane_only!(VOLUMES_ON_NATIVE);
    let docker = Docker::new();
    let host = docker.root().with_file_name("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("in"), "from the host\n").expect("write");
    let bind = format!("type=bind,source={},target=/h,readonly", host.display());
    let out = run(
        &docker,
        &[
            "--mount",
            &bind,
            "--mount",
            "type=volume,src=vol,dst=/v",
            "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1700",
            "busybox",
            "sh",
            "-c",
            "cat /h/in; touch /h/x 2>/dev/null || echo h is read-only; \
             touch /v/x && echo v is writable; stat -c %a /t; df -k /t | tail -1",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["from the host", "h is read-only", "v is writable", "1700"],
    );
    assert!(
        lines[4].starts_with("tmpfs") && lines[4].contains(" 1024 "),
        "{}",
        lines[4]
    );
    assert_eq!(volumes(&docker), ["vol"]);
    assert_eq!(docker.out(&["volume", "rm", "vol"]).code, 0);
    assert_clean(&docker);
}

#[test]
fn bad_volume_input_is_refused_with_nothing_left() {
    needs_root!();
    native_lane_only!(VOLUMES_ON_NATIVE);
    let docker = Docker::new();
    let missing = docker.root().with_file_name("missing");
    let missing_bind = format!("type=bind,src={},dst=/x", missing.display());
    assert_eq!(
        run(&docker, &["busybox", "true"]).code,
        0,
        "busybox, made first"
    );
    let mut text = String::new();
    for args in [
        vec!["-v", "x:/data"],
        vec!["-v", "bad/name:/data"],
        vec!["-v", "vol:data"],
        vec!["-v", "vol:/"],
        vec!["-v", "vol:/data:rx"],
        vec!["-v", "/tmp:/data:nocopy"],
        vec!["-v", "a:/b:ro:d"],
        vec!["-v", "/data", "-v", "other:/data/"],
        vec!["--mount", &missing_bind],
        vec!["--mount", "type=bind,dst=/x"],
        vec!["--mount", "type=volume"],
        vec!["--mount", "type=tmpfs,src=x,dst=/t"],
        vec!["--mount", "type=nfs,dst=/x"],
        vec!["--mount", "type=volume,dst=/x,nonsense"],
        vec!["--mount", "type=volume,dst=/x,colour=blue"],
        vec!["--mount", "type=tmpfs,dst=/t,tmpfs-size=lots"],
        vec!["--volumes-from", "nobody"],
        vec!["--volumes-from", "nobody:rx"],
    ] {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend(&args);
        all.extend(["busybox", "true"]);
        let (code, said) = docker.md().args(&all).transcript();
        assert_eq!(code, 125, "{args:?}: {said}");
        text += &said;
    }
    for args in [
        vec!["volume", "create", "x"],
        vec!["volume", "create", "-d", "nfs", "v1"],
        vec!["volume", "inspect", "nope"],
        vec!["volume", "rm", "nope"],
        vec!["volume", "ls", "-f", "colour=blue"],
    ] {
        let (code, said) = docker.md().args(&args).transcript();
        assert_eq!(code, 1, "{args:?}: {said}");
        text += &said;
    }
    snap("volume_bad_input", &redact(&text));
    assert!(
        !missing.exists(),
        "--mount type=bind made its missing source"
    );
    assert_clean(&docker);
    // `-v` of a missing host path makes it, as Docker's does.
    let made: PathBuf = missing.join("deep");
    let out = run(
        &docker,
        &["-v", &format!("{}:/x", made.display()), "busybox", "true"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(made.is_dir());
}

#[test]
fn copy_up_reads_the_image_not_the_host() {
    needs_root!();
    let docker = Docker::new();
    // A directory of the host's (the test's own), and an image whose /data is a
    // link that would climb out of its root to it, were it followed on the host.
    let host = docker.root().with_file_name("host-secrets");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("marker"), "the host's\n").expect("write");
    let dir = docker.root().with_file_name("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let climb = format!("{}{}", "../".repeat(16), host.display());
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM busybox\nRUN ln -s {climb} /data\n"),
    )
    .expect("write");
    let dir = dir.to_string_lossy().into_owned();
    let out = docker.out(&["build", "-q", "--network", "none", "-t", "climber", &dir]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The volume is made and filled before it is bound; binding onto a link is
    // refused (chapter 02), but by then a copy-up that followed it on the host
    // would have taken the host's files into the volume.
    let out = run(&docker, &["-v", "loot:/data", "climber", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("data is a symlink"), "{}", out.stderr);
    let data = docker.root().join("volumes/loot/_data");
    assert_eq!(lab_tests::ls(&data), Vec::<String>::new());
    assert_eq!(docker.out(&["volume", "rm", "loot"]).code, 0);
    assert_clean(&docker);
}
