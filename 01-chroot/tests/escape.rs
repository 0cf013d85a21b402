//! `escape`: a root process walks out of a chroot, and nothing is written.

mod common;

use common::*;

#[test]
fn root_walks_out_of_a_chroot() {
    needs_root!();
    let (tmp, rootfs) = busybox_rootfs();
    let before = lab_tests::tree(&rootfs);
    let (code, text) = ch01(tmp.path(), "/tmp/lab-XXXXXX")
        .args(["escape"])
        .args([&rootfs])
        .transcript();
    assert_eq!(code, 0, "{text}");
    // What it lists after the escape is the host's real `/`, entry for entry.
    let host_listing = format!("holds: {}\n", ls(std::path::Path::new("/")).join(" "));
    let after = text
        .lines()
        .find(|l| l.starts_with("After the escape"))
        .expect("an after line");
    assert!(format!("{after}\n").ends_with(&host_listing), "{after}");
    assert_eq!(lab_tests::tree(&rootfs), before, "escape wrote nothing");
    snap(
        "escape",
        &text.replace(&host_listing, "holds: [THE HOST'S / LISTING]\n"),
    );
}
