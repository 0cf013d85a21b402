//! The shell lines of the chapter's pages beyond "Try it", run as the pages write
//! them: a line marked `# v1` or `# v2` on that cgroup version (CI's two lanes run
//! both), `NAME` a group of the test's own.

mod common;

use common::*;
use lab_tests::book_lines::{
    exit_codes, for_this_host, replaced, sh_block, shell, with_exit_codes,
};

fn programs() -> &'static std::path::Path {
    std::path::Path::new(BIN).parent().expect("target/debug")
}

/// With a group kept (`run --keep --name NAME`), the tree and its files.
#[test]
fn look_from_the_host() {
    needs_root!();
    let name = unique("book");
    let group = KeptGroup::new(&name, &["--memory", "32m"]);
    let lines = for_this_host(replaced(
        sh_block("ch03/from-the-host.md", "Look from the host"),
        &[("NAME", &name)],
    ));
    let out = shell(&lines, programs()).output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Control group /"), "{}", out.stdout);
    if lab_tests::cgroup_lane() == "v2" {
        assert!(
            out.stdout.contains("usage_usec"),
            "cpu.stat: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("user.lab.made-by"),
            "getfattr: {}",
            out.stdout
        );
    }
    assert_eq!(group.remove().code, 0, "a frozen, empty group is removed");
    assert_eq!(leftovers(&name), Vec::<std::path::PathBuf>::new());
}

/// The troubleshooting page's three ways to tell the cgroup layout: each says what
/// its comment says on this lane (`unified/` is there on a hybrid host only).
#[test]
fn troubleshooting_which_cgroup_version() {
    needs_root!();
    let lines = with_exit_codes(&sh_block("troubleshooting.md", "cgroup v1, v2, or hybrid?"));
    let out = shell(&lines, programs()).output();
    let codes = exit_codes(&out.stdout);
    match lab_tests::cgroup_lane() {
        "v2" => {
            assert_eq!(codes, [0, 0, 2], "{}\n{}", out.stdout, out.stderr);
            assert!(out.stdout.starts_with("cgroup2fs\n"), "{}", out.stdout);
            assert!(out.stdout.contains("\n0::/"), "one line: {}", out.stdout);
        }
        _ => {
            assert_eq!(codes, [0, 0, 0], "{}\n{}", out.stdout, out.stderr);
            assert!(out.stdout.starts_with("tmpfs\n"), "{}", out.stdout);
            assert!(
                out.stdout.contains("\n1:"),
                "numbered lines: {}",
                out.stdout
            );
        }
    }
}
