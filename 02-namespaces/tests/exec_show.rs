//! `exec` joins a running container; `show` compares namespaces.

mod common;

use common::*;

#[test]
fn exec_sees_the_containers_hostname_and_processes() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let container = sleeping_box(&rootfs);
    let (code, text) = ch02(tmp.path())
        .args(["exec", &container.pid.to_string()])
        .cmd(&["/bin/sh", "-c", "hostname; ps -o pid,comm; exit 0"])
        .redact_path(container.pid.to_string(), "[CONTAINER]")
        .transcript();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("box\nPID   COMMAND\n    1 sleep\n    2 sh\n    4 ps\n"),
        "{text}"
    );
    snap("exec", &text);
}

#[test]
fn show_marks_the_namespaces_that_differ() {
    needs_root!();
    let container = Background::start(
        &[
            "run",
            "--hostname",
            "box",
            "--pid",
            "--net",
            "--",
            "sleep",
            "30",
        ],
        None,
        "sleep",
    );
    let me = std::process::id().to_string();
    let (code, text) = Learner::new(BIN)
        .args(["show", &container.pid.to_string(), "--against", &me])
        .redact_path(container.pid.to_string(), "[CONTAINER]")
        .redact_path(&me, "[TEST]")
        .transcript();
    assert_eq!(code, 0, "{text}");
    let marked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" * "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(marked, ["uts", "pid", "net", "mnt"], "{text}");
    snap("show", &letter_inodes(&text));
}

#[test]
fn exec_and_show_a_process_that_is_not_there() {
    // Beyond the largest pid_max Linux allows: never a process.
    let gone = "4194305";
    let tmp = open_tempdir();
    let (code, text) = ch02(tmp.path())
        .args(["exec", gone])
        .cmd(&["true"])
        .transcript();
    assert_eq!(code, 125, "{text}");
    snap("bad-exec-no-process", &text);
    let (code, text) = Learner::new(BIN).args(["show", gone]).transcript();
    assert_eq!(code, 1, "{text}");
    snap("bad-show-no-process", &text);

    // A process that has exited (and been reaped) is just as gone.
    let mut done = std::process::Command::new("true").spawn().expect("spawn");
    let pid = done.id().to_string();
    done.wait().expect("wait");
    let out = Learner::new(BIN)
        .args(["-q", "exec", &pid, "--", "true"])
        .output();
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains(&format!(
            "no process {pid}: it does not exist or has exited"
        )),
        "{}",
        out.stderr
    );
}
