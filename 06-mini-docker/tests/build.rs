//! `build`: real Dockerfiles built in a test's own store (RUN's containers on no
//! network), their images run; the cache, `.dockerignore`, ARG and ENV, the layer
//! limit, and every bad input with its message and code, and nothing left behind.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use lab_tests::registry::TinyServer;

/// A context directory beside the test's store, with these files.
fn context(docker: &Docker, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = docker.root().with_file_name(name);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    dir
}

/// A context of a Dockerfile alone.
fn dockerfile(docker: &Docker, text: &str) -> PathBuf {
    context(docker, "ctx", &[("Dockerfile", text)])
}

/// `build --network none --progress plain ARGS CONTEXT`, as a transcript with
/// step times and long digests redacted.
fn build(docker: &Docker, args: &[&str], dir: &Path) -> (i32, String) {
    let mut all = vec!["build", "--network", "none", "--progress", "plain"];
    all.extend(args);
    let (code, text) = docker.md().args(all).arg(dir).transcript();
    let times = regex::Regex::new(r"(DONE|\d) \d+\.\ds$").expect("regex");
    let text: Vec<String> = redact(&text)
        .lines()
        .map(|l| times.replace(l, "$1 [TIME]").into_owned())
        .collect();
    (code, text.join("\n") + "\n")
}

/// Each Dockerfile, built in `dir` and refused (exit 1): the transcripts.
fn refused(docker: &Docker, dir: &Path, dockerfiles: &[&str]) -> String {
    let mut all = String::new();
    for dockerfile in dockerfiles {
        std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write");
        let (code, text) = build(docker, &[], dir);
        assert_eq!(code, 1, "{text}");
        all.push_str(&text);
    }
    all
}

/// What a build leaves in the store besides images and layers: nothing.
fn assert_clean(docker: &Docker) {
    let root = docker.root();
    assert_eq!(
        lab_tests::ls(&root.join("containers")),
        Vec::<String>::new()
    );
    let scratch: Vec<String> = lab_tests::ls(&root.join("blobs"))
        .into_iter()
        .filter(|n| n != "sha256")
        .collect();
    assert_eq!(scratch, Vec::<String>::new(), "scratch directories left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = root.to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "a mount left under {root}");
}

/// The book's example, `06-mini-docker/dockerfiles/greeter`, copied: the test
/// changes a file in it.
fn greeter(docker: &Docker) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("dockerfiles/greeter");
    let files: Vec<(String, String)> =
        ["Dockerfile", ".dockerignore", "app/greet.sh", "app/VERSION"]
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    std::fs::read_to_string(from.join(f)).expect("the example"),
                )
            })
            .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    context(docker, "greeter", &files)
}

/// On the emulated cgroup v2 lane only the first test builds: a build's containers
/// start as `run`'s do (tested there already), and the rest is the same on both lanes.
const BUILD_ON_NATIVE: &str = "a build's RUN starts its containers as `run` does, which the emulated \
     cgroup v2 lane tests already; multi_stage_cache_and_invalidation builds there, the rest \
     is left to the native lane to keep CI within 30 minutes";

#[test]
fn multi_stage_cache_and_invalidation() {
    needs_root!();
    let docker = Docker::new();
    let dir = greeter(&docker);
    let (code, first) = build(&docker, &["-t", "greeter:1"], &dir);
    assert_eq!(code, 0, "{first}");
    snap("build_first", &first);
    let out = docker.out(&["run", "--rm", "--network", "none", "greeter:1"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hello, world\n"),
        "{}",
        out.stderr
    );
    // The final image: busybox and one small layer; the bulk stayed in the build stage.
    let (code, history) = docker.md().args(["history", "greeter:1"]).transcript();
    assert_eq!(code, 0, "{history}");
    snap("build_history", &redact(&history));

    let (code, second) = build(&docker, &["-t", "greeter:1"], &dir);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second.matches("CACHED").count(), 7, "{second}");
    snap("build_second", &second);

    // One file changes, its size does not: the COPY that takes it and the RUN after
    // run again; the final stage copies the same /out/greet, so it is still cached.
    std::fs::write(dir.join("app/VERSION"), "1.1\n").expect("write");
    let (code, third) = build(&docker, &["-t", "greeter:1"], &dir);
    assert_eq!(code, 0, "{third}");
    snap("build_one_file_changed", &third);
    // WORKDIR, and the final stage's LABEL, COPY, USER and CMD: the snapshot shows
    // which.
    assert_eq!(third.matches("CACHED").count(), 5, "{third}");
    assert_clean(&docker);
}

#[test]
fn dockerignore_and_symlinks_in_the_context() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let dir = context(
        &docker,
        "ctx",
        &[
            (
                ".dockerignore",
                "# logs anywhere, secrets, the docs but their README\n**/*.log\nsecret/\ndocs\n!docs/README.md\n",
            ),
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx\nRUN cd /ctx && find . | sort\n",
            ),
            ("keep.txt", "kept\n"),
            ("a.log", "x\n"),
            ("sub/b.log", "x\n"),
            ("sub/c.txt", "kept\n"),
            ("secret/key", "hunter2\n"),
            ("docs/README.md", "kept\n"),
            ("docs/draft.md", "x\n"),
        ],
    );
    std::os::unix::fs::symlink("/etc", dir.join("etc-link")).expect("symlink");
    let (code, text) = build(&docker, &[], &dir);
    assert_eq!(code, 0, "{text}");
    snap("build_dockerignore", &text);
    // A path through the link would leave the context: refused. An ignored file is
    // not there, and the message says why.
    let all = refused(
        &docker,
        &dir,
        &[
            "FROM busybox\nCOPY etc-link/passwd /\n",
            "FROM busybox\nCOPY secret/key /\n",
        ],
    );
    snap("build_context_refusals", &all);
    assert_clean(&docker);
}

#[test]
fn args_env_user_and_workdir() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let dir = dockerfile(
        &docker,
        "ARG BASE=busybox\nARG VERSION=1\nFROM $BASE\nARG VERSION\nARG WHO=nobody\n\
             ENV GREETING=\"hello $WHO\" WHO=env-wins\nWORKDIR /srv\nWORKDIR app\nUSER 1000:1000\n\
             RUN echo \"v$VERSION, $GREETING, $WHO, uid $(id -u), in $(pwd)\"\n\
             CMD [\"sh\", \"-c\", \"echo $GREETING; id -u; pwd; echo v${VERSION:-unset}\"]\n",
    );
    let (code, text) = build(
        &docker,
        &[
            "-t",
            "args",
            "--build-arg",
            "WHO=learner",
            "--build-arg",
            "VERSION=2",
            "--build-arg",
            "UNUSED=1",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{text}");
    snap("build_args", &text);
    let out = docker.out(&["run", "--rm", "--network", "none", "args"]);
    // ARGs are the build's: the image keeps ENV, not VERSION.
    assert_eq!(
        out.stdout, "hello learner\n1000\n/srv/app\nvunset\n",
        "{}",
        out.stderr
    );
    // Another value for an ARG a RUN sees is another step: not cached.
    let (code, text) = build(
        &docker,
        &[
            "-t",
            "args",
            "--build-arg",
            "WHO=learner",
            "--build-arg",
            "VERSION=3",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("v3, hello learner"), "{text}");
    assert_eq!(text.matches("CACHED").count(), 4, "{text}");
    assert_clean(&docker);
}

#[test]
fn copy_add_and_the_config_instructions() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let dir = context(
        &docker,
        "ctx",
        &[("src/a.c", "a\n"), ("src/b.c", "b\n"), ("src/c.h", "h\n")],
    );
    // A tarball for ADD to unpack, the same bytes every time.
    let tar = std::process::Command::new("sh")
        .args([
            "-c",
            "tar --mtime=@0 -cf - -C src a.c | gzip -n > site.tar.gz",
        ])
        .current_dir(&dir)
        .status()
        .expect("tar");
    assert!(tar.success());
    std::fs::write(
        dir.join("Dockerfile"),
        "# escape=`\nFROM busybox\nCOPY --chown=1000:1000 src/*.c /code/\nADD site.tar.gz /site\n\
         SHELL [\"/bin/sh\", \"-ec\"]\nRUN stat -c '%u:%g %a %n' /code/* /site/* `\n  && echo shell: $0\n\
         EXPOSE 8080 53/udp\nVOLUME /data\nLABEL org.example.team=\"lab one\"\nSTOPSIGNAL SIGINT\n\
         HEALTHCHECK --interval=5s --retries=2 CMD test -d /code\nENTRYPOINT [\"ls\"]\n",
    )
    .expect("Dockerfile");
    let epoch = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "--network", "none", "-t", "configured"];
        args.extend(extra);
        let out = docker
            .md()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(args)
            .arg(&dir)
            .output();
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    // The same inputs at the same SOURCE_DATE_EPOCH: the same image, cache or not.
    let id = epoch(&[]);
    assert_eq!(epoch(&["--no-cache"]), id);
    let (code, text) = build(&docker, &["--no-cache"], &dir);
    assert_eq!(code, 0, "{text}");
    snap("build_copy_add", &text);
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "configured",
        "/code",
        "/site",
    ]);
    assert_eq!(
        out.stdout, "/code:\na.c\nb.c\n\n/site:\na.c\n",
        "{}",
        out.stderr
    );
    let inspect = docker.out(&["inspect", "configured"]);
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("json");
    let config = &json[0]["Config"];
    snap(
        "build_config",
        &serde_json::to_string_pretty(config).expect("json"),
    );
    assert_eq!(json[0]["Created"], "2023-11-14T22:13:20.000000000Z");
    assert_clean(&docker);
}

#[test]
fn the_layer_limit() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    // busybox's layer and 124 more: 125, moby's most, which the overlay must mount.
    let mut dockerfile = String::from("FROM busybox\n");
    for i in 1..=124 {
        dockerfile.push_str(&format!("COPY f /f{i}\n"));
    }
    let dir = context(&docker, "ctx", &[("Dockerfile", &dockerfile), ("f", "x\n")]);
    let out = docker.out(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "deep",
        &dir.to_string_lossy(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "deep",
        "cat",
        "/f1",
        "/f124",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "x\nx\n"),
        "{}",
        out.stderr
    );
    dockerfile.push_str("COPY f /f125\n");
    std::fs::write(dir.join("Dockerfile"), &dockerfile).expect("write");
    let (code, text) = docker
        .md()
        .args(["build", "-q", "--network", "none"])
        .arg(&dir)
        .transcript();
    assert_eq!(code, 1, "{text}");
    snap("build_too_deep", &redact(&text));
    assert_clean(&docker);
}

#[test]
fn bad_input_points_at_the_line() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let dir = context(&docker, "ctx", &[("f", "x\n")]);
    let all = refused(
        &docker,
        &dir,
        &[
            "FROM busybox\nRUN echo to stdout; echo to stderr >&2; exit 3\n",
            "FROM busybox\n\nRUNN echo typo\n",
            "FROM busybox\nCOPY missing.txt /\n",
            "FROM busybox\nCOPY f g /x\n",
            "FROM busybox\nCOPY --from=later /f /\nFROM busybox AS later\nCOPY --from=0 /f /\n",
            "FROM scratch\nRUN echo\n",
            "FROM busybox\nSHELL /bin/bash -c\n",
            "FROM busybox\nEXPOSE http\n",
            "FROM busybox\nONBUILD RUN echo\n",
            "FROM busybox\nADD https://example.com/x.tar /\n",
            "COPY f /\nFROM busybox\n",
            "FROM busybox\nUSER nobody\nRUN id\n",
        ],
    );
    snap("build_bad_dockerfiles", &all);
    let mut all = String::new();
    let ctx = dir.to_string_lossy().into_owned();
    for args in [
        vec!["build", "--target", "nope", &ctx],
        vec!["build", "-t", "Bad:Name", &ctx],
        vec!["build", "--progress", "fancy", &ctx],
        vec!["build", "-f", "/nonexistent/Dockerfile", &ctx],
        vec!["build", "/nonexistent"],
    ] {
        let (code, text) = docker.md().args(&args).transcript();
        assert_eq!(code, 1, "{text}");
        all.push_str(&redact(&text));
    }
    let (code, text) = docker
        .md()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["build", &ctx])
        .transcript();
    assert_eq!(code, 1, "{text}");
    all.push_str(&redact(&text));
    snap("build_bad_input", &all);
    assert_clean(&docker);
}

/// An image's symlinks are read inside its root, where the container would read
/// them: a link to a host path is not a way out, for COPY's destination (a write)
/// or for `COPY --from`'s source (a read). The host path is in the test's own temp
/// dir, so that with the defence switched off the test fails and harms nothing.
#[test]
fn an_images_symlinks_lead_nowhere_on_the_host() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let host = docker.root().with_file_name("host-side");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("secret"), "the host's\n").expect("write");
    let host = host.display().to_string();
    let dir = context(&docker, "ctx", &[("f", "from the context\n")]);
    let write = format!("FROM busybox\nRUN ln -s {host} /app\nCOPY f /app/\nRUN cat {host}/f\n");
    std::fs::write(dir.join("Dockerfile"), write).expect("write");
    let (code, text) = build(&docker, &[], &dir);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("from the context"), "{text}");
    assert!(
        !Path::new(&host).join("f").exists(),
        "COPY wrote through the image's symlink onto the host"
    );
    let read = format!(
        "FROM busybox AS evil\nRUN ln -s {host} /leak\nFROM busybox\nCOPY --from=evil /leak/secret /stolen\n"
    );
    std::fs::write(dir.join("Dockerfile"), read).expect("write");
    let (code, text) = build(&docker, &[], &dir);
    assert_eq!(
        code, 1,
        "COPY --from read the host's file through a symlink: {text}"
    );
    assert!(
        text.contains("leak/secret: not found in the image"),
        "{text}"
    );
    assert_clean(&docker);
}

/// ADD of a URL downloads only when told (`--allow-add-url`): from a server of the
/// test's own, on loopback in its namespace.
#[test]
fn add_of_a_url_only_when_told() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let _server = TinyServer::start(
        &docker.sandbox.host,
        "127.0.0.1:8765",
        |request| match request.target.as_str() {
            "/moved" => (
                "302 Found",
                vec![("Location".into(), "/notes.txt".into())],
                vec![],
            ),
            "/notes.txt" => ("200 OK", vec![], b"downloaded\n".to_vec()),
            _ => ("404 Not Found", vec![], vec![]),
        },
    );
    let dir = dockerfile(
        &docker,
        "FROM busybox\nADD http://127.0.0.1:8765/moved /srv/\nRUN stat -c '%a %n' /srv/moved && cat /srv/moved\n",
    );
    let (code, refused) = build(&docker, &[], &dir);
    assert_eq!(code, 1, "{refused}");
    let (code, text) = build(&docker, &["--allow-add-url"], &dir);
    assert_eq!(code, 0, "{text}");
    snap("build_add_url", &(refused + &text));
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nADD http://127.0.0.1:8765/gone /\n",
    )
    .expect("write");
    let (code, text) = build(&docker, &["--allow-add-url"], &dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("404"), "{text}");
    assert_clean(&docker);
}

/// A RUN step is a container, made as `run` makes one: its monitor (and so the
/// container's first process, until it execs) runs from a view of mini-docker that
/// cannot be written, as `run`'s does (CVE-2019-5736: security.rs tries the attack
/// on `exec`). Seen from the host while the step waits for the test.
#[test]
fn a_run_steps_container_comes_from_a_sealed_program() {
    needs_root!();
    native_lane_only!(BUILD_ON_NATIVE);
    let docker = Docker::new();
    let dir = dockerfile(
        &docker,
        "FROM busybox\nRUN while [ ! -e /tmp/go ]; do sleep 0.05; done\n",
    );
    let mut build = docker
        .command(&["build", "-q", "--network", "none", &dir.to_string_lossy()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("build");
    let state = wait_until("the RUN step's container", || {
        let id = docker.out(&["ps", "-q"]).stdout.lines().next()?.to_string();
        let json: serde_json::Value =
            serde_json::from_str(&docker.out(&["inspect", &id]).stdout).ok()?;
        Some(json[0]["State"].clone())
    });
    let monitor = state["MonitorPid"].as_i64().expect("a monitor");
    let exe = std::fs::File::open(format!("/proc/{monitor}/exe")).expect("its program");
    let read_only = nix::sys::statvfs::fstatvfs(&exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let link = std::fs::read_link(format!("/proc/{monitor}/exe")).expect("readlink");
    let in_memory = link.to_string_lossy().starts_with("/memfd:");
    let go = format!("/proc/{}/root/tmp/go", state["Pid"]);
    std::fs::write(&go, "").expect("let the step go on");
    assert!(build.wait().expect("wait").success());
    assert!(
        read_only || in_memory,
        "the RUN step's monitor runs from {}, which can be written",
        link.display()
    );
    assert_clean(&docker);
}
