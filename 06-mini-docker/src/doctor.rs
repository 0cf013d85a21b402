//! `mini-docker doctor`: every chapter's checks in one report (each check once),
//! since `run` needs all of them; then mini-docker's own: what its defences need.

use labkit::doctor::{Finding, Host};

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut all: Vec<Finding> = Vec::new();
    let chapters = [
        ch03_cgroups::doctor::checks_for(host, crate::container::DEFAULT_CGROUP_PARENT),
        ch04_overlayfs::doctor::checks(host),
        ch05_network::doctor::checks(host),
    ];
    for finding in chapters.into_iter().flatten() {
        // Chapters 03-05 each repeat chapter 02's (and 01's) checks: keep the first.
        if !all.iter().any(|f| f.check == finding.check) {
            all.push(finding);
        }
    }
    all.push(seccomp(host));
    all.push(sealing(host));
    all
}

/// Seccomp filters: the kernel must have them, and we had better not be under a
/// filter ourselves (inside a Docker container, say), which refuses the mounts,
/// namespaces and `open_tree` a runtime needs.
fn seccomp(host: &Host) -> Finding {
    let status = host.read("/proc/self/status").unwrap_or_default();
    let mode = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(str::trim);
    match mode {
        None => Finding::fail(
            "seccomp",
            "this kernel has no seccomp (no Seccomp: line in /proc/self/status)",
            "a kernel built with CONFIG_SECCOMP_FILTER=y; until then: run --security-opt seccomp=unconfined",
        ),
        Some("0") => Finding::ok(
            "seccomp",
            "filters available: containers get Docker's default profile",
        ),
        Some(_) => Finding::warn(
            "seccomp",
            "mini-docker itself runs under a seccomp filter (inside a container?): mounts, \
             namespaces and open_tree may be refused",
            "run mini-docker on the host or in a VM (or: docker run --privileged --security-opt seccomp=unconfined)",
        ),
    }
}

/// `run` and `exec` re-execute themselves from a read-only bind mount of their
/// file (`mount_setattr`, Linux 5.12), or else from a sealed memfd copy.
fn sealing(host: &Host) -> Finding {
    let release = host.kernel_release().unwrap_or_default();
    let mut numbers = release
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    match version >= (5, 12) {
        true => Finding::ok(
            "sealed binary",
            "containers are entered from a read-only mount of mini-docker's file (open_tree, mount_setattr)",
        ),
        false => Finding::warn(
            "sealed binary",
            format!(
                "Linux {release} has no mount_setattr (5.12): each start copies mini-docker into a sealed memfd"
            ),
            "a kernel of 5.12 or later (the copy costs time and memory, nothing else)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(status: &str, release: &str) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in [
            ("proc/self/status", status),
            ("proc/sys/kernel/osrelease", release),
        ] {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, text).expect("write");
        }
        let host = Host::at(dir.path());
        (dir, host)
    }

    #[test]
    fn seccomp_present_absent_or_already_on() {
        use labkit::doctor::Status;
        let (_d, host) = host_with("Name:\tx\nSeccomp:\t0\n", "6.1.0\n");
        assert_eq!(seccomp(&host).status, Status::Ok);
        let (_d, host) = host_with("Name:\tx\n", "6.1.0\n");
        assert_eq!(seccomp(&host).status, Status::Fail);
        let (_d, host) = host_with("Seccomp:\t2\n", "6.1.0\n");
        assert_eq!(seccomp(&host).status, Status::Warn);
    }

    #[test]
    fn sealing_needs_5_12_for_the_read_only_mount() {
        use labkit::doctor::Status;
        let (_d, host) = host_with("", "5.12.0-1-amd64\n");
        assert_eq!(sealing(&host).status, Status::Ok);
        let (_d, host) = host_with("", "5.4.0-150-generic\n");
        assert_eq!(sealing(&host).status, Status::Warn);
    }
}
