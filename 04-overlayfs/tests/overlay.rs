//! The kernel's overlayfs, seen through this chapter's tools.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::*;

#[test]
fn no_subcommand_explains_the_chapter() {
    let (code, text) = Learner::new(BIN).transcript();
    assert_eq!(code, 0);
    snap("help", &text);
}

/// Two lowers (top, bottom), an upper, and a mount of them at merged, in a private
/// mount namespace; `ops` runs on the merged view, then the script reports.
fn layered(ops: &str, then: &str) -> (tempfile::TempDir, lab_tests::Outcome) {
    let t = open_tempdir();
    let d = t.path();
    write(&d.join("bottom/etc/motd"), "bottom\n");
    write(&d.join("bottom/etc/only-bottom"), "b\n");
    write(&d.join("bottom/var/cache/old"), "stale\n");
    write(&d.join("top/etc/motd"), "top\n");
    write(&d.join("top/etc/hosts"), "127.0.0.1 localhost\n");
    std::fs::create_dir_all(d.join("merged")).expect("mkdir");
    let script = format!(
        "cd {d}; $OV -q mount --lower top:bottom --upper upper --work work merged; cd merged; {ops}; cd {d}; {then}; \
         $OV -q umount merged; ! grep -q ' overlay ' /proc/self/mountinfo",
        d = d.display()
    );
    let out = in_mount_namespace(&script);
    (t, out)
}

#[test]
fn shadowing_the_leftmost_lower_is_on_top_and_the_upper_above_all() {
    needs_root!();
    let (_t, out) = layered(
        "cat etc/motd etc/only-bottom; echo upper > etc/motd; cat etc/motd",
        "true",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "top\nb\nupper\n");
}

#[test]
fn copy_up_leaves_the_lower_file_untouched() {
    needs_root!();
    let (t, out) = layered("echo '10.0.0.2 db' >> etc/hosts", "true");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d = t.path();
    assert_eq!(
        std::fs::read_to_string(d.join("upper/etc/hosts")).expect("copied up"),
        "127.0.0.1 localhost\n10.0.0.2 db\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("top/etc/hosts")).expect("lower"),
        "127.0.0.1 localhost\n"
    );
}

#[test]
fn delete_leaves_a_0_0_whiteout_and_hides_the_lower_file() {
    needs_root!();
    let (t, out) = layered("rm etc/only-bottom; test ! -e etc/only-bottom", "true");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let meta =
        std::fs::symlink_metadata(t.path().join("upper/etc/only-bottom")).expect("a whiteout");
    assert!(
        meta.file_type().is_char_device() && meta.rdev() == 0,
        "a 0/0 character device"
    );
    assert!(
        t.path().join("bottom/etc/only-bottom").exists(),
        "the lower file is still there"
    );
}

#[test]
fn replacing_a_directory_makes_it_opaque() {
    needs_root!();
    let (t, out) = layered(
        "rm -r var/cache; mkdir var/cache; ls -A var/cache | wc -l",
        "true",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "0", "nothing of the lower shows through");
    assert!(ch04_overlayfs::changes::is_opaque(
        &t.path().join("upper/var/cache")
    ));
}

const OPS: &str = "echo more >> etc/hosts; rm etc/only-bottom; echo new > new.txt; \
    rm -r var/cache; mkdir var/cache; ln -s /etc/motd motd-link; \
    mkdir -p opt/app; echo conf > opt/app/conf; chmod 600 opt/app/conf; setfattr -n user.lab -v yes new.txt";

#[test]
fn diff_reports_exactly_the_changes_made() {
    needs_root!();
    let (t, out) = layered(OPS, "true");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d = t.path();
    let (code, text) = Learner::new(BIN)
        .args(["diff"])
        .args([d.join("upper")])
        .args([
            "--lower",
            &format!("{}:{}", d.join("top").display(), d.join("bottom").display()),
        ])
        .redact_path(d, "/tmp/lab-XXXXXX")
        .transcript();
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| ["A ", "C ", "D "].iter().any(|p| l.starts_with(p)))
        .collect();
    assert_eq!(
        lines,
        [
            "C /etc",
            "C /etc/hosts",
            "D /etc/only-bottom",
            "A /motd-link",
            "A /new.txt",
            "A /opt",
            "A /opt/app",
            "A /opt/app/conf",
            "C /var",
            "C /var/cache"
        ]
    );
    snap("diff", &text);
}

#[test]
fn pack_then_unpack_onto_the_lowers_reproduces_the_merged_view() {
    needs_root!();
    // Inside the namespace, while mounted: copy the merged view out for comparison.
    let (t, out) = layered(OPS, "cp -a merged expected");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d = t.path();
    let layer = d.join("layer.tar.gz");
    let packed = Learner::new(BIN)
        .args(["-q", "layer", "pack"])
        .args([d.join("upper"), layer.clone()])
        .output();
    assert_eq!(packed.code, 0, "{}", packed.stderr);
    // The same upper, packed again: the same bytes, so the same digest.
    let again = Learner::new(BIN)
        .args(["-q", "layer", "pack"])
        .args([d.join("upper"), d.join("again.tar.gz")])
        .output();
    assert_eq!(packed.stdout, again.stdout, "reproducible digest");
    assert!(
        packed.stdout.starts_with("sha256:") && packed.stdout.trim().len() == 71,
        "{}",
        packed.stdout
    );
    // The lowers flattened, bottom first, then the layer applied on top.
    let applied = d.join("applied");
    let copy = |from: &str| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(d.join(from).join("."))
            .arg(&applied)
            .status()
            .expect("cp");
        assert!(status.success());
    };
    std::fs::create_dir(&applied).expect("mkdir");
    copy("bottom");
    copy("top");
    let unpacked = Learner::new(BIN)
        .args(["-q", "layer", "unpack"])
        .args([layer, applied.clone()])
        .output();
    assert_eq!(unpacked.code, 0, "{}", unpacked.stderr);
    assert_eq!(
        view(&applied),
        view(&d.join("expected")),
        "byte for byte: content, modes, symlinks, xattrs"
    );
}

#[test]
fn run_leaves_no_mount_and_no_temp_dir_behind() {
    needs_root!();
    labkit::narrate::set_quiet(true);
    let t = open_tempdir();
    let base = t.path().join("base");
    ch01_chroot::rootfs::build(&base, &Default::default()).expect("rootfs");
    let (code, text) = Learner::new(BIN)
        .redact_path(t.path(), "/tmp/lab-XXXXXX")
        .args(["run", "--lower"])
        .args([&base])
        .args(["--upper"])
        .args([t.path().join("upper")])
        .args([
            "--pid",
            "--",
            "/bin/sh",
            "-c",
            "echo hi > /hello; rm /bin/ls; cat /hello",
        ])
        .transcript();
    assert_eq!(code, 0, "{text}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(" overlay "), "no overlay left: {mounts}");
    let scratch = regex::Regex::new(r"/tmp/ch04-\w+")
        .expect("re")
        .find(&text)
        .expect("the scratch dir")
        .as_str()
        .to_string();
    assert!(
        !std::path::Path::new(&scratch).exists(),
        "{scratch} is left behind"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("upper/hello")).expect("kept upper"),
        "hi\n"
    );
    assert!(
        !base.join("hello").exists() && base.join("bin/ls").exists(),
        "the lower is untouched"
    );
    let text = regex::Regex::new(r"/tmp/ch04-\w+")
        .expect("re")
        .replace_all(&text, "/tmp/ch04-XXXXXX")
        .into_owned();
    snap("run", &text);
}

/// A layer kept for overlay (mini-docker's image store): the tarball's `.wh.NAME`
/// becomes what overlay itself writes, a 0/0 character device NAME.
#[test]
fn a_layers_whiteout_becomes_a_0_0_device_for_overlay() {
    needs_root!(); // mknod of a character device
    let t = open_tempdir();
    let layer = t.path().join("layer.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&layer).expect("create"));
    for (path, data) in [("etc/motd", &b"hi\n"[..]), ("etc/.wh.gone", &b""[..])] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, data).expect("append");
    }
    tar.finish().expect("finish");
    drop(tar);
    let dir = t.path().join("unpacked");
    std::fs::create_dir(&dir).expect("mkdir");
    let unpacked = ch04_overlayfs::unpack::unpack_layer(&layer, &dir).expect("unpack_layer");
    assert_eq!(unpacked.whiteouts, 1);
    let gone = std::fs::symlink_metadata(dir.join("etc/gone")).expect("the whiteout");
    assert!(gone.file_type().is_char_device(), "{gone:?}");
    assert_eq!(gone.rdev(), 0, "device 0/0");
    assert!(
        !dir.join("etc/.wh.gone").exists(),
        "the marker file itself is not kept"
    );
    assert_eq!(std::fs::read(dir.join("etc/motd")).expect("motd"), b"hi\n");
}

/// The copy-up exercise, run as the page writes it (in a mount namespace of its own,
/// so that a failure half-way leaves no mount on the host): the first append through
/// the merged view copies the whole file up, the second does not.
#[test]
fn the_books_copy_up_exercise_runs_as_written() {
    needs_root!();
    let lines =
        lab_tests::book_lines::sh_block("ch04/exercises.md", "Without a check: what copy-up costs");
    let script = lab_tests::book_lines::script(&lines);
    let programs = std::path::Path::new(BIN).parent().expect("target/debug");
    let out = Learner::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/bash",
            "-e",
            "-c",
        ])
        .args([&script])
        .env("PATH", &lab_tests::book_lines::path_with(programs))
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr.matches("real").count(), 2, "{}", out.stderr);
    assert!(
        !std::path::Path::new("/tmp/cu").exists(),
        "the page cleans up"
    );
}
