//! Look from the host: /proc/PID/ns, lsns and nsenter on a running container.

mod common;

use common::*;

#[test]
fn the_host_sees_the_containers_namespaces() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let container = sleeping_box(&rootfs);
    let pid = container.pid.to_string();
    let mut shown = String::new();
    let commands: [&[&str]; 4] = [
        &[
            "readlink",
            "/proc/PID/ns/uts",
            "/proc/PID/ns/pid",
            "/proc/self/ns/uts",
            "/proc/self/ns/pid",
        ],
        &["cat", "/proc/PID/status"],
        &["nsenter", "--target", "PID", "--uts", "hostname"],
        &[
            "nsenter", "--target", "PID", "--all", "ps", "-o", "pid,comm",
        ],
    ];
    for words in commands {
        let args: Vec<String> = words[1..].iter().map(|w| w.replace("PID", &pid)).collect();
        let (code, text) = Learner::new(words[0])
            .args(&args)
            .redact_path(&pid, "[CONTAINER]")
            .redact_path(tmp.path(), "/tmp/lab-XXXXXX")
            .transcript();
        assert_eq!(code, 0, "{text}");
        let text = if words[0] == "cat" {
            // Only the lines that show the PID in each namespace.
            text.lines()
                .filter(|l| l.starts_with('#') || l.starts_with("NSpid") || l.starts_with("[exit"))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            text
        };
        shown.push_str(&text);
    }
    assert!(shown.contains("NSpid:\t[CONTAINER]\t1\n"), "{shown}");
    assert!(shown.contains("\nbox\n"), "{shown}");
    snap("from-the-host", &letter_inodes(&shown));
}
