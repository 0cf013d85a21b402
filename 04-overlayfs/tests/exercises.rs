//! The features behind chapter 04's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 04 N` cuts it out for a
//! learner to write again, and `cargo lab check 04 N` runs these tests.

mod common;

use common::*;

#[test]
fn read_only_overlay() {
    needs_root!();
    let t = open_tempdir();
    let d = t.path();
    write(&d.join("a/one"), "1\n");
    write(&d.join("b/two"), "2\n");
    std::fs::create_dir(d.join("merged")).expect("mkdir");
    let out = in_mount_namespace(&format!(
        "cd {}; $OV -q mount --lower a:b merged; cat merged/one merged/two; if echo x > merged/three; then echo WROTE; fi",
        d.display()
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "1\n2\n",
        "both lowers show; nothing can be written"
    );
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
}
