//! `run`: each namespace, seen from inside and from the host.

mod common;

use common::*;

fn quiet_run(args: &[&str]) -> lab_tests::Outcome {
    Learner::new(BIN).args(["-q", "run"]).args(args).output()
}

#[test]
fn no_subcommand_explains_the_chapter() {
    let (code, text) = Learner::new(BIN).transcript();
    assert_eq!(code, 0);
    snap("help", &text);
}

#[test]
fn uts_the_hostname_changes_inside_only() {
    needs_root!();
    let host = nix::unistd::gethostname().expect("hostname");
    let (code, text) = Learner::new(BIN)
        .args(["run", "--hostname", "box", "--", "/bin/hostname"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\nbox\n"), "{text}");
    assert_eq!(
        nix::unistd::gethostname().expect("hostname"),
        host,
        "the host's name is unchanged"
    );
    snap("run-uts", &text);
}

#[test]
fn pid_the_command_is_pid_1_and_sees_only_its_own_processes() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let (code, text) = ch02(tmp.path())
        .args(["run", "--pid", "--hostname", "box", "--rootfs"])
        .args([&rootfs])
        .cmd(&[
            "/bin/sh",
            "-c",
            "echo \"I am PID $$ on $(hostname)\"; ps -o pid,comm; exit 0",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("I am PID 1 on box\nPID   COMMAND\n    1 sh\n    3 ps\n"),
        "{text}"
    );
    snap("run-pid-rootfs", &text);
}

#[test]
fn mount_a_mount_inside_is_invisible_on_the_host() {
    needs_root!();
    let tag = format!("lab-invisible-{}", std::process::id());
    let script =
        format!("mount -t tmpfs {tag} /mnt && grep -c {tag} /proc/self/mountinfo && exec sleep 30");
    let container = Background::start(
        &["run", "--mount", "--", "/bin/sh", "-c", &script],
        None,
        "sleep",
    );
    let inside = std::fs::read_to_string(format!("/proc/{}/mountinfo", container.pid))
        .expect("its mountinfo");
    let host = std::fs::read_to_string("/proc/self/mountinfo").expect("ours");
    assert!(inside.contains(&tag), "the container sees its mount");
    assert!(!host.contains(&tag), "the host does not");
}

#[test]
fn net_sees_only_lo() {
    needs_root!();
    let out = quiet_run(&["--net", "--", "cat", "/proc/net/dev"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let links: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(links, ["lo"]);
}

/// A System V message queue of the host's, removed when dropped.
struct MessageQueue(i32);

impl MessageQueue {
    fn new() -> Self {
        // SAFETY: plain syscall wrappers; IPC_PRIVATE makes a new queue.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "msgget");
        MessageQueue(id)
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: removes the queue we created.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

#[test]
fn ipc_system_v_objects_are_not_shared() {
    needs_root!();
    let queue = MessageQueue::new();
    let listed = |flags: &[&str]| {
        let out = quiet_run(&[flags, &["--", "cat", "/proc/sysvipc/msg"]].concat());
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&queue.0.to_string()))
    };
    assert!(listed(&[]), "without --ipc the host's queue is visible");
    assert!(!listed(&["--ipc"]), "with --ipc it is not");
}

#[test]
fn time_a_namespace_of_its_own() {
    needs_root!();
    let ours = std::fs::read_link("/proc/self/ns/time").expect("time ns");
    for via in ["clone", "unshare"] {
        let out = quiet_run(&[
            "--time",
            "--via",
            via,
            "--",
            "readlink",
            "/proc/self/ns/time",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_ne!(out.stdout.trim(), ours.to_string_lossy(), "--via {via}");
    }
}

#[test]
fn via_unshare_the_caller_moves_and_forks() {
    needs_root!();
    let (code, text) = Learner::new(BIN)
        .args([
            "run",
            "--via",
            "unshare",
            "--pid",
            "--hostname",
            "u",
            "--",
            "/bin/sh",
            "-c",
            "echo $$; hostname",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\n1\nu\n"), "{text}");
    snap("run-via-unshare", &text);
}

#[test]
fn all_namespaces_at_once() {
    needs_root!();
    let out = quiet_run(&[
        "--all",
        "--",
        "/bin/sh",
        "-c",
        "id -u; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "lo"]
    );
}

#[test]
fn exit_codes_and_signals_propagate() {
    needs_root!();
    let code = |flags: &[&str], script: &str| {
        quiet_run(&[flags, &["--", "/bin/sh", "-c", script]].concat()).code
    };
    assert_eq!(code(&[], "exit 7"), 7);
    assert_eq!(code(&[], "kill -9 $$"), 137, "128 + SIGKILL");
    // PID 1 cannot be killed from inside its own namespace, not even by SIGKILL.
    assert_eq!(code(&["--pid"], "kill -9 $$; exit 3"), 3);
    // Under --init the command is not PID 1, and dies like any process.
    assert_eq!(code(&["--init"], "kill -9 $$; exit 3"), 137);
}

/// Send Ctrl-C as a terminal does (to the whole process group) once the command runs.
fn ctrl_c(flags: &[&str]) -> i32 {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(BIN)
        .args(["-q", "run"])
        .args(flags)
        .args(["--", "sleep", "2"])
        .process_group(0)
        .spawn()
        .expect("spawn");
    let tool = child.id();
    wait_until("sleep to run", || {
        let pids: Vec<u32> = children(tool)
            .into_iter()
            .flat_map(|c| [vec![c], children(c)].concat())
            .collect();
        pids.into_iter().any(|p| comm(p) == "sleep").then_some(())
    });
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(tool as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    child.wait().expect("wait").code().expect("an exit code")
}

#[test]
fn ctrl_c_pid_1_ignores_it_and_init_passes_it_on() {
    needs_root!();
    assert_eq!(
        ctrl_c(&[]),
        130,
        "an ordinary process dies of SIGINT: 128 + 2"
    );
    assert_eq!(
        ctrl_c(&["--pid"]),
        0,
        "PID 1 has no default action for SIGINT: sleep ignores it and finishes"
    );
    assert_eq!(
        ctrl_c(&["--init"]),
        130,
        "init forwards SIGINT to the command, which dies of it"
    );
}

#[test]
fn rootless_root_inside_is_the_caller_outside() {
    needs_root!(); // to become an unprivileged user
    let (tmp, rootfs) = busybox_rootfs();
    let (code, text) = ch02(tmp.path())
        .as_uid(USER)
        .args([
            "run",
            "--user",
            "--map-root",
            "--pid",
            "--hostname",
            "rootless",
            "--rootfs",
        ])
        .args([&rootfs])
        .cmd(&["/bin/sh", "-c", "id; cat /proc/self/uid_map; hostname"])
        .transcript();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("uid=0(root) gid=0(root)"), "{text}");
    snap("run-rootless", &text);

    // From the host, the same process is the unprivileged user.
    let rootfs = rootfs.to_string_lossy().into_owned();
    let args = [
        "run",
        "--user",
        "--map-root",
        "--pid",
        "--rootfs",
        &rootfs,
        "--",
        "sleep",
        "30",
    ];
    let container = Background::start(&args, Some(USER), "sleep");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", container.pid)).expect("status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(USER.to_string().as_str()),
        "{uid_line}"
    );
}

#[test]
fn nothing_stays_mounted_afterwards() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let out = Learner::new(BIN)
        .args(["-q", "run", "--pid", "--rootfs"])
        .args([&rootfs])
        .cmd(&["true"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&*tmp.path().to_string_lossy()), "{mounts}");
}
