//! `mini-docker doctor`: every chapter's checks in one report (each check once),
//! since `run` needs all of them.

use labkit::doctor::{Finding, Host};

pub fn checks(host: &Host) -> Vec<Finding> {
    let mut all: Vec<Finding> = Vec::new();
    let chapters = [
        ch03_cgroups::doctor::checks(host),
        ch04_overlayfs::doctor::checks(host),
        ch05_network::doctor::checks(host),
    ];
    for finding in chapters.into_iter().flatten() {
        // Chapters 03-05 each repeat chapter 02's (and 01's) checks: keep the first.
        if !all.iter().any(|f| f.check == finding.check) {
            all.push(finding);
        }
    }
    all
}
