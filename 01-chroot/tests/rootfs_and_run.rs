//! `rootfs` and `run`, as the README and the book use them.

mod common;

use common::*;

const SHELL: [&str; 3] = ["/bin/sh", "-c", "echo hi; ls /"];

#[test]
fn no_subcommand_explains_the_chapter() {
    let (code, text) = Learner::new(BIN).transcript();
    assert_eq!(code, 0);
    snap("help", &text);
}

#[test]
fn busybox_rootfs_runs_a_shell_that_sees_the_rootfs() {
    needs_root!();
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let (code, made) = ch01(tmp.path(), "/tmp/lab-XXXXXX")
        .args(["rootfs"])
        .args([&rootfs])
        .args(["--from", "busybox"])
        .transcript();
    assert_eq!(code, 0, "{made}");
    // What depends on the host's busybox build: its applet list and its size.
    let made = lab_tests::Redactor::default()
        .rule(
            r"\d+ links to /bin/busybox \(.*\)",
            "[N] links to /bin/busybox ([APPLETS], ...)",
        )
        .rule(r"x \d+ ", "x [N] ")
        .rule(r"\d+ symlinks, \d+\.\d MiB", "[N] symlinks, [SIZE] MiB")
        .apply(&made);
    snap("rootfs-busybox", &made);

    let (code, ran) = ch01(tmp.path(), "/tmp/lab-XXXXXX")
        .args(["run"])
        .args([&rootfs])
        .cmd(&SHELL)
        .transcript();
    assert_eq!(code, 0, "{ran}");
    snap("run-busybox", &ran);

    let out = Learner::new(BIN)
        .args(["-q", "run"])
        .args([&rootfs])
        .cmd(&SHELL)
        .output();
    let mut expected = vec!["hi".to_string()];
    expected.extend(ls(&rootfs));
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        expected,
        "the rootfs, not the host"
    );
}

#[test]
fn host_rootfs_runs_a_shell_that_sees_the_rootfs() {
    needs_root!();
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let made = Learner::new(BIN)
        .args(["-q", "rootfs"])
        .args([&rootfs])
        .args(["--from", "host"])
        .output();
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(made.stdout.contains("libraries:"), "{}", made.stdout);
    assert!(rootfs.join("bin/sh").is_file() && rootfs.join("etc/passwd").is_file());

    let out = Learner::new(BIN)
        .args(["-q", "run"])
        .args([&rootfs])
        .cmd(&SHELL)
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut expected = vec!["hi".to_string()];
    expected.extend(ls(&rootfs));
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        expected,
        "the rootfs, not the host"
    );
    assert!(!expected.contains(&"home".to_string()) && !expected.contains(&"usr".to_string()));

    // Every program copied from the host really runs inside: its libraries came too.
    let programs = made
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("programs:"))
        .expect("programs line");
    for program in programs
        .split(':')
        .nth(1)
        .expect("names")
        .split_whitespace()
    {
        let probe = Learner::new(BIN)
            .args(["-q", "run"])
            .args([&rootfs])
            .args(["--", "/bin/sh", "-c"])
            .args([format!(
                "command -v {program} >/dev/null && test -x /bin/{program}"
            )])
            .output();
        assert_eq!(probe.code, 0, "{program}: {}", probe.stderr);
    }
    let id = Learner::new(BIN)
        .args(["-q", "run"])
        .args([&rootfs])
        .args(["--", "id", "-un"])
        .output();
    assert_eq!((id.code, id.stdout.trim()), (0, "root"), "{}", id.stderr);
}

#[test]
fn exit_codes_propagate() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    let code = |script: &str| {
        Learner::new(BIN)
            .args(["-q", "run"])
            .args([&rootfs])
            .args(["--", "/bin/sh", "-c", script])
            .output()
            .code
    };
    assert_eq!(code("exit 0"), 0);
    assert_eq!(code("exit 7"), 7);
    assert_eq!(code("exit 255"), 255);
    assert_eq!(
        code("kill -9 $$"),
        128 + 9,
        "killed by SIGKILL: 128 + 9, as shells report it"
    );
}

#[test]
fn a_missing_command_is_127_and_named_inside_the_root() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    for (name, cmd) in [
        ("run-missing-path", "/bin/nosuch"),
        ("run-missing-name", "nosuch"),
    ] {
        let (code, text) = ch01(tmp.path(), "/tmp/lab-XXXXXX")
            .args(["run"])
            .args([&rootfs])
            .args(["--", cmd])
            .transcript();
        assert_eq!(code, 127);
        snap(name, &text);
    }
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let (code, text) = ch01(tmp.path(), "/tmp/lab-XXXXXX")
        .args(["-q", "run"])
        .args([&rootfs])
        .args(["--", "/etc/passwd"])
        .transcript();
    assert_eq!(code, 126);
    snap("run-not-executable", &text);
}

#[test]
fn a_dynamic_program_without_its_loader_is_explained() {
    needs_root!();
    let (_tmp, rootfs) = busybox_rootfs();
    // A dynamically linked host program, copied without its loader and libraries.
    let dynamic = ["/usr/bin/ls", "/bin/ls", "/usr/bin/env"]
        .into_iter()
        .find(|p| {
            ch01_chroot::elf::read_needs(std::path::Path::new(p))
                .is_some_and(|n| n.interpreter.is_some())
        })
        .expect("a dynamically linked program on the host");
    std::fs::copy(dynamic, rootfs.join("bin/lonely")).expect("copy");
    let out = Learner::new(BIN)
        .args(["-q", "run"])
        .args([&rootfs])
        .args(["--", "/bin/lonely"])
        .output();
    assert_eq!(out.code, 127);
    assert!(
        out.stderr.contains("/bin/lonely is here, but its loader /"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("rootfs --from host copies them"),
        "{}",
        out.stderr
    );
}

#[test]
fn building_again_into_its_own_rootfs_needs_no_force() {
    let (tmp, rootfs) = busybox_rootfs();
    let again = Learner::new(BIN)
        .args(["-q", "rootfs"])
        .args([&rootfs])
        .args(["--from", "host"])
        .output();
    assert_eq!(again.code, 0, "{}", again.stderr);
    // The old /bin/sh -> busybox link was replaced, not written through.
    let busybox = std::fs::read(rootfs.join("bin/busybox")).expect("still there");
    assert_eq!(
        busybox,
        std::fs::read(
            ch01_chroot::busybox::find(&labkit::doctor::Host::real())
                .expect("busybox")
                .path
        )
        .expect("host busybox")
    );
    drop(tmp);
}

#[test]
fn force_writes_into_a_foreign_directory_and_keeps_its_files() {
    let tmp = open_tempdir();
    std::fs::write(tmp.path().join("notes.txt"), "mine").expect("write");
    let out = Learner::new(BIN)
        .args(["-q", "rootfs"])
        .args([tmp.path()])
        .args(["--from", "busybox", "--force"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).expect("kept"),
        "mine"
    );
    assert!(tmp.path().join("bin/sh").exists());
}

#[test]
fn ctrl_c_reaches_the_command_and_we_report_it() {
    needs_root!();
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let (_tmp, rootfs) = busybox_rootfs();
    // A terminal sends SIGINT to its whole foreground process group: do the same.
    let mut child = std::process::Command::new(BIN)
        .args(["run"])
        .arg(&rootfs)
        .args(["--", "sleep", "30"])
        .process_group(0)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("read") > 0 && !line.contains("execve(") {
        line.clear();
    }
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(128 + 2),
        "sleep died of SIGINT; ch01-chroot lived to report 130"
    );
}

#[test]
fn added_programs_run_inside_with_their_libraries() {
    needs_root!();
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    // Our own binary: dynamically linked, and not something busybox provides.
    let made = Learner::new(BIN)
        .args(["-q", "rootfs"])
        .args([&rootfs])
        .args(["--add", BIN])
        .output();
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        made.stdout.contains("added:     ch01-chroot (into /bin)"),
        "{}",
        made.stdout
    );
    let out = Learner::new(BIN)
        .args(["-q", "run"])
        .args([&rootfs])
        .args(["--", "/bin/ch01-chroot", "--version"])
        .output();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ch01-chroot 0.1.0\n"),
        "{}",
        out.stderr
    );
}
