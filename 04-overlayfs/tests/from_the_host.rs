//! Look from the host: the container's root is an overlay, and a whiteout is a file.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn the_host_sees_the_overlay_and_the_whiteout() {
    needs_root!();
    labkit::narrate::set_quiet(true);
    let t = open_tempdir();
    let base = t.path().join("base");
    ch01_chroot::rootfs::build(&base, &Default::default()).expect("rootfs");
    let upper = t.path().join("upper");
    let mut run = Command::new(BIN)
        .args(["-q", "run", "--lower"])
        .arg(&base)
        .arg("--upper")
        .arg(&upper)
        .args(["--pid", "--", "/bin/sh", "-c", "rm /bin/ls; exec sleep 30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let tool = run.id();
    let sleeper = lab_tests::wait_until("the container's sleep", || {
        let children =
            std::fs::read_to_string(format!("/proc/{tool}/task/{tool}/children")).ok()?;
        let first: u32 = children.split_whitespace().next()?.parse().ok()?;
        (std::fs::read_to_string(format!("/proc/{first}/comm"))
            .ok()?
            .trim()
            == "sleep")
            .then_some(first)
    });
    let mut shown = String::new();
    let commands: [Vec<String>; 2] = [
        vec![
            "grep".into(),
            " - overlay ".into(),
            format!("/proc/{sleeper}/mountinfo"),
        ],
        vec![
            "stat".into(),
            "-c".into(),
            "%F %t:%T %A".into(),
            upper.join("bin/ls").display().to_string(),
        ],
    ];
    for words in commands {
        let (code, text) = Learner::new(&words[0])
            .args(&words[1..])
            .redact_path(t.path(), "/tmp/lab-XXXXXX")
            .redact_path(sleeper.to_string(), "[PID]")
            .transcript();
        assert_eq!(code, 0, "{text}");
        shown.push_str(&text);
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = run.wait();
    // Mount IDs and device numbers differ from run to run.
    let shown = regex::Regex::new(r"(?m)^\d+ \d+ \d+:\d+ ")
        .expect("re")
        .replace_all(&shown, "[ID] [PARENT] [DEV] ")
        .into_owned();
    // Linux 6.6 and later also print the default ",uuid=on"; 6.1 does not.
    let shown = shown.replace(",uuid=on\n", "\n");
    let shown = regex::Regex::new(r"/tmp/ch04-\w+")
        .expect("re")
        .replace_all(&shown, "/tmp/ch04-XXXXXX")
        .into_owned();
    assert!(shown.contains("character special file 0:0"), "{shown}");
    assert!(shown.contains("upperdir=/tmp/lab-XXXXXX/upper"), "{shown}");
    snap("from-the-host", &shown);
}
