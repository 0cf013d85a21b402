//! Chapter 01's doctor: the base checks, plus where a rootfs can come from.

use labkit::doctor::{Finding, Host, base_checks};

use crate::busybox;

/// Every check chapter 01 needs; later chapters start from these.
pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = base_checks(host);
    findings.push(busybox_check(host));
    findings
}

// ANCHOR: busybox_check
fn busybox_check(host: &Host) -> Finding {
    let install = host.install_command(&busybox::PACKAGE);
    match busybox::find(host) {
        Some(bb) if bb.is_static => Finding::ok(
            "static busybox",
            format!(
                "{} (statically linked): `rootfs` uses it by default",
                bb.path.display()
            ),
        ),
        Some(bb) => Finding::warn(
            "static busybox",
            format!(
                "{} is dynamically linked: `rootfs --from busybox` copies its libraries too",
                bb.path.display()
            ),
            format!("{install}   (a static busybox makes the smallest rootfs)"),
        ),
        None => Finding::warn(
            "static busybox",
            format!(
                "none on PATH ({}): `rootfs` will copy host programs instead",
                host.search_path()
            ),
            format!("{install}   (or use: ch01-chroot rootfs DIR --from host)"),
        ),
    }
}
// ANCHOR_END: busybox_check
