//! User namespaces: who is who inside.
//!
//! A new user namespace starts with no mapping at all: every id shows as 65534
//! ("nobody"). A process in the *parent* namespace writes the maps, one line each,
//! `INSIDE OUTSIDE COUNT`. An unprivileged user may write one line that maps its own
//! uid (and gid, after writing `deny` to `setgroups`, so that it can never drop a
//! group to gain access): that is all rootless containers need.

use labkit::Result;
use labkit::failure::Context;
use labkit::narrate;
use nix::unistd::{Gid, Uid, getegid, geteuid};

/// Who the caller becomes inside: root with `--map-root`, else itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub outside_uid: Uid,
    pub outside_gid: Gid,
}

impl Mapping {
    pub fn for_caller(map_root: bool) -> Self {
        let (uid, gid) = (geteuid(), getegid());
        Mapping {
            inside_uid: if map_root { 0 } else { uid.as_raw() },
            inside_gid: if map_root { 0 } else { gid.as_raw() },
            outside_uid: uid,
            outside_gid: gid,
        }
    }
}

// ANCHOR: write_maps
/// Write the maps of the user namespace `pid` lives in (`"self"` after unshare).
pub fn write_maps(pid: &str, mapping: &Mapping) -> Result<()> {
    // ANCHOR: hole_maps
    let proc = format!("/proc/{pid}");
    let uid_line = format!("{} {} 1", mapping.inside_uid, mapping.outside_uid);
    narrate::step(
        format!("write(\"{proc}/uid_map\", \"{uid_line}\")"),
        format!("echo '{uid_line}' > {proc}/uid_map"),
    );
    std::fs::write(format!("{proc}/uid_map"), &uid_line)
        .context(|| format!("writing {proc}/uid_map"))?;
    if !mapping.outside_uid.is_root() {
        // Without CAP_SETGID outside, the kernel wants setgroups(2) disabled first.
        narrate::step(
            format!("write(\"{proc}/setgroups\", \"deny\")"),
            format!("echo deny > {proc}/setgroups"),
        );
        std::fs::write(format!("{proc}/setgroups"), "deny")
            .context(|| format!("writing {proc}/setgroups"))?;
    }
    let gid_line = format!("{} {} 1", mapping.inside_gid, mapping.outside_gid);
    narrate::step(
        format!("write(\"{proc}/gid_map\", \"{gid_line}\")"),
        format!("echo '{gid_line}' > {proc}/gid_map"),
    );
    std::fs::write(format!("{proc}/gid_map"), &gid_line)
        .context(|| format!("writing {proc}/gid_map"))
    // ANCHOR_END: hole_maps
}
// ANCHOR_END: write_maps
