//! Chapter 02's doctor: chapter 01's checks, plus namespaces, mount propagation
//! and whether unprivileged users may create user namespaces (rootless).

use labkit::doctor::{Finding, Host};

use crate::namespace::Namespace;

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut findings = ch01_chroot::doctor::checks(host);
    findings.extend(namespace_types(host));
    findings.push(root_propagation(host));
    findings.push(unprivileged_userns(host));
    findings
}

fn namespace_types(host: &Host) -> Vec<Finding> {
    let (present, missing): (Vec<Namespace>, Vec<Namespace>) =
        Namespace::ALL.into_iter().partition(|ns| {
            std::fs::symlink_metadata(host.path(format!("/proc/self/ns/{ns}"))).is_ok()
        });
    let mut findings = vec![];
    if !present.is_empty() {
        let names: Vec<_> = present.iter().map(|n| n.proc_name()).collect();
        findings.push(Finding::ok(
            "namespace types",
            format!("{} (in /proc/self/ns)", names.join(" ")),
        ));
    }
    for ns in missing {
        findings.push(Finding::warn(
            format!("{ns} namespaces"),
            format!(
                "this kernel has none (no /proc/self/ns/{ns}): {} will not work",
                ns.option()
            ),
            format!(
                "use Linux {} or newer (and a kernel built with them)",
                ns.since()
            ),
        ));
    }
    findings
}

// ANCHOR: propagation
/// Is `/` a shared mount? systemd makes it one, so that mounts propagate between
/// namespaces; then a new mount namespace still sends its mounts to the host, and
/// pivot_root fails with EINVAL, unless propagation is made private first.
fn root_propagation(host: &Host) -> Finding {
    let check = "mount propagation of /";
    let Some(mountinfo) = host.read("/proc/self/mountinfo") else {
        return Finding::warn(
            check,
            "cannot read /proc/self/mountinfo",
            "mount -t proc proc /proc",
        );
    };
    // Fields: id parent major:minor root mountpoint options [optional...] - type ...
    let root = mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&"/"));
    let Some(fields) = root else {
        return Finding::warn(
            check,
            "no mount at / in /proc/self/mountinfo (inside a chroot?)",
            "run the lab from the real root, not from inside a chroot",
        );
    };
    let optional: Vec<&str> = fields
        .iter()
        .skip(6)
        .take_while(|f| **f != "-")
        .copied()
        .collect();
    match optional.iter().find(|f| f.starts_with("shared:")) {
        Some(group) => Finding::warn(
            check,
            format!(
                "/ is shared ({group}), as systemd sets it: mounts in a new mount namespace would reach the host"
            ),
            "nothing to do for `run`: it makes / private (mount --make-rprivate /) in its own namespace first. \
             By hand, do the same: unshare --mount --propagation private",
        ),
        None => Finding::ok(
            check,
            "/ is private: mounts stay in the namespace that makes them",
        ),
    }
}
// ANCHOR_END: propagation

/// Rootless containers need unprivileged user namespaces, which some distributions
/// switch off.
fn unprivileged_userns(host: &Host) -> Finding {
    let check = "unprivileged user namespaces";
    let read = |path: &str| host.read(path).map(|v| v.trim().to_string());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Finding::warn(
            check,
            "user.max_user_namespaces is 0: no user namespaces at all, so no rootless --user",
            "sysctl -w user.max_user_namespaces=15000",
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Finding::warn(
            check,
            "kernel.unprivileged_userns_clone is 0 (Debian's switch): only root may create them",
            "sysctl -w kernel.unprivileged_userns_clone=1",
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Finding::warn(
            check,
            "kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10+): AppArmor denies them to unconfined programs",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0   (or give ch02-namespaces an AppArmor profile with `userns,`)",
        );
    }
    match read("/proc/sys/user/max_user_namespaces") {
        Some(max) => Finding::ok(
            check,
            format!("allowed (user.max_user_namespaces = {max}): --user works without root"),
        ),
        None => Finding::warn(
            check,
            "no /proc/sys/user/max_user_namespaces: this kernel may lack user namespaces",
            "use a kernel built with CONFIG_USER_NS",
        ),
    }
}
