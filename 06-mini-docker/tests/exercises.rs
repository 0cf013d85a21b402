//! The features behind chapter 06's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 06 N` cuts it out for a
//! learner to write again, and `cargo lab check 06 N` runs these tests.

mod common;

use common::*;

#[test]
fn rename() {
    let docker = Docker::new();
    for name in ["a", "taken"] {
        let out = docker.out(&[
            "create",
            "--name",
            name,
            "--network",
            "none",
            "busybox",
            "true",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = docker.out(&["rename", "a", "b"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ps = docker.out(&["ps", "-a"]).stdout;
    assert!(ps.contains(" b\n") && !ps.contains(" a\n"), "{ps}");
    let clash = docker.out(&["rename", "b", "taken"]);
    assert_ne!(clash.code, 0, "renamed onto a name in use");
    assert!(clash.stderr.contains("already in use"), "{}", clash.stderr);
    assert_ne!(docker.out(&["rename", "b", "bad/name"]).code, 0);
    assert_eq!(
        docker.out(&["start", "-a", "b"]).code,
        0,
        "the renamed container still runs"
    );
}

#[test]
fn ps_filter() {
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    docker.run_detached("up", &["busybox", "sleep", "30"]);
    let names = |args: &[&str]| -> Vec<String> {
        let out = docker.out(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect()
    };
    assert_eq!(names(&["ps", "-a", "--filter", "status=exited"]), ["done"]);
    assert_eq!(names(&["ps", "-a", "--filter", "status=running"]), ["up"]);
    assert_eq!(names(&["ps", "-a", "--filter", "name=do"]), ["done"]);
    assert_ne!(docker.out(&["ps", "--filter", "colour=blue"]).code, 0);
}

#[test]
fn read_only() {
    let docker = Docker::new();
    let out = docker.out(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo wrote /x; touch /tmp/y && echo wrote /tmp/y",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "wrote /tmp/y\n");
}

#[test]
fn cap_add_drop() {
    let docker = Docker::new();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags);
        args.extend(["busybox", "sh", "-c", script]);
        docker.out(&args)
    };
    let effective = "grep CapEff /proc/self/status";
    let only = run(
        &["--cap-drop", "ALL", "--cap-add", "net_bind_service"],
        effective,
    );
    assert_eq!(
        only.stdout, "CapEff:\t0000000000000400\n",
        "{}",
        only.stderr
    );
    // Giving a file away needs CAP_CHOWN.
    let out = run(&["--cap-drop", "CHOWN"], "touch /f && chown 1 /f");
    assert_ne!(out.code, 0, "chown worked without CAP_CHOWN");
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    let out = run(&["--cap-add", "NOT_A_CAP"], "true");
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("no such capability"), "{}", out.stderr);
    // exec gets the container's set, not Docker's default.
    docker.run_detached("c", &["--cap-drop", "ALL", "busybox", "sleep", "30"]);
    let out = docker.out(&["exec", "c", "sh", "-c", effective]);
    assert_eq!(out.stdout, "CapEff:\t0000000000000000\n", "{}", out.stderr);
}

#[test]
fn systempaths_unconfined() {
    let docker = Docker::new();
    // Masked: /dev/null is mounted over it, and reads give nothing.
    let look = "grep -c ' /proc/timer_list ' /proc/self/mountinfo; \
                head -c 10 /proc/timer_list | wc -c";
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags);
        args.extend(["busybox", "sh", "-c", look]);
        docker.out(&args)
    };
    let masked = run(&[]);
    assert_eq!(masked.stdout, "1\n0\n", "{}", masked.stderr);
    let open = run(&["--security-opt", "systempaths=unconfined"]);
    assert_eq!(open.stdout, "0\n10\n", "{}", open.stderr);
}
