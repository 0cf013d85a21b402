//! Chapter 04's doctor: chapter 02's checks (and 01's), plus overlayfs itself and
//! whether the filesystem of the upper layers can hold what overlay writes there.

use std::path::Path;

use labkit::doctor::{Finding, Host};

use crate::changes::OPAQUE_XATTR;

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = ch02_namespaces::doctor::checks(host);
    let filesystems = host.read("/proc/filesystems").unwrap_or_default();
    if filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        findings.push(Finding::ok("overlayfs", "listed in /proc/filesystems"));
    } else {
        findings.push(Finding::fail(
            "overlayfs",
            "not in /proc/filesystems",
            "modprobe overlay   (Linux 3.18 or newer, CONFIG_OVERLAY_FS)",
        ));
    }
    findings.push(upper_filesystem(&host.path("/tmp")));
    findings
}

// ANCHOR: probe
/// Can the filesystem of `dir` (where `run` puts its writable layers) hold
/// whiteouts (0/0 character devices) and trusted xattrs? Try it, in a throwaway dir.
fn upper_filesystem(dir: &Path) -> Finding {
    let check = "upper layer filesystem";
    let Ok(probe) = tempfile::Builder::new()
        .prefix("ch04-probe-")
        .tempdir_in(dir)
    else {
        return Finding::warn(
            check,
            format!("cannot make a test directory in {}", dir.display()),
            "check that /tmp exists and is writable",
        );
    };
    let kind = nix::sys::statfs::statfs(probe.path())
        .map(|s| s.filesystem_type())
        .ok();
    let name = match kind.map(|k| k.0) {
        Some(0x0102_1994) => "tmpfs",
        Some(0xEF53) => "ext4",
        Some(0x5846_5342) => "xfs",
        Some(0x9123_683E) => "btrfs",
        Some(0x794C_7630) => "overlay",
        _ => "another filesystem",
    };
    if name == "overlay" {
        return Finding::fail(
            check,
            format!(
                "{} is itself on overlayfs (inside a container?): an upper layer cannot be",
                dir.display()
            ),
            "mount a tmpfs for the layers: mount -t tmpfs tmpfs /tmp   (or docker run -v /some/dir:/tmp)",
        );
    }
    let whiteout = nix::sys::stat::mknod(
        &probe.path().join("wh"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .is_ok();
    let xattrs = xattr::set(probe.path(), OPAQUE_XATTR, b"y").is_ok();
    match (whiteout, xattrs) {
        (true, true) => Finding::ok(
            check,
            format!(
                "{} is {name}: whiteouts and trusted xattrs work",
                dir.display()
            ),
        ),
        _ => Finding::fail(
            check,
            format!(
                "{} is {name}: whiteouts {}, trusted xattrs {}",
                dir.display(),
                if whiteout { "work" } else { "fail" },
                if xattrs { "work" } else { "fail" }
            ),
            "run as root, with the layers on ext4, xfs, btrfs or tmpfs",
        ),
    }
}
// ANCHOR_END: probe
