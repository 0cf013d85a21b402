//! Where the cgroup hierarchies are, and which version runs which controller.
//!
//! - **v1**: one hierarchy per controller (or a few co-mounted), each a directory tree
//!   under `/sys/fs/cgroup/<controller>/`;
//! - **v2**: one unified tree at `/sys/fs/cgroup`, its controllers listed in
//!   `cgroup.controllers` and switched on for children in `cgroup.subtree_control`;
//! - **hybrid**: v1 controllers plus a v2 mount (often `/sys/fs/cgroup/unified`) that has
//!   few or no controllers, but still groups processes, freezes and kills them.
//!
//! A controller is in one version or the other, never both. This chapter calls the
//! block I/O controller by its v2 name, `io`, on v1 too (where it is `blkio`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use labkit::doctor::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    V2,
    Hybrid,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::V1 => "cgroup v1",
            Mode::V2 => "cgroup v2 (unified)",
            Mode::Hybrid => "hybrid (cgroup v1 controllers plus a cgroup v2 mount)",
        })
    }
}

/// The controllers this chapter uses.
pub const CONTROLLERS: [&str; 8] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "io", "freezer", "devices",
];

/// The v1 name of a controller: v1's `blkio` became v2's `io`.
pub fn v1_name(controller: &str) -> &str {
    match controller {
        "io" => "blkio",
        other => other,
    }
}

/// This chapter's name for a v1 controller.
fn from_v1_name(controller: &str) -> &str {
    match controller {
        "blkio" => "io",
        other => other,
    }
}

/// What is mounted where, and where this process sits in each hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The v2 mount point, if any.
    pub v2: Option<PathBuf>,
    /// v1: controller -> mount point (co-mounted controllers share one).
    pub v1: BTreeMap<String, PathBuf>,
    /// Our own cgroup: "" for v2, or a v1 controller name -> path inside its hierarchy.
    pub own: BTreeMap<String, String>,
}

// ANCHOR: discover
impl Layout {
    /// Read the mount table and `/proc/self/cgroup` of `host`.
    pub fn discover(host: &Host) -> Self {
        let mut layout = Layout::default();
        for line in host
            .read("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            // ... mountpoint options [optional] - fstype source superoptions
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(point), Some(fstype)) = (fields.get(4), fields.get(dash + 1)) else {
                continue;
            };
            match *fstype {
                "cgroup2" => layout.v2 = Some(PathBuf::from(point)),
                "cgroup" => {
                    let options = fields.get(dash + 3).copied().unwrap_or("");
                    for controller in options
                        .split(',')
                        .map(from_v1_name)
                        .filter(|o| CONTROLLERS.contains(o))
                    {
                        layout
                            .v1
                            .insert(controller.to_string(), PathBuf::from(point));
                    }
                }
                _ => {}
            }
        }
        // Lines are "ID:controllers:path"; v2's has ID 0 and no controllers.
        for line in host.read("/proc/self/cgroup").unwrap_or_default().lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                layout.own.insert(String::new(), path.to_string());
            }
            for c in controllers.split(',').map(from_v1_name) {
                layout.own.insert(c.to_string(), path.to_string());
            }
        }
        layout
    }
    // ANCHOR_END: discover

    pub fn mode(&self) -> Option<Mode> {
        match (self.v2.is_some(), self.v1.is_empty()) {
            (true, true) => Some(Mode::V2),
            (true, false) => Some(Mode::Hybrid),
            (false, false) => Some(Mode::V1),
            (false, true) => None,
        }
    }

    /// The controllers the v2 hierarchy offers at its root.
    pub fn v2_controllers(&self, host: &Host) -> Vec<String> {
        self.v2
            .as_ref()
            .and_then(|root| host.read(&root.join("cgroup.controllers").to_string_lossy()))
            .map(|text| text.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Which version runs `controller` here, if any.
    pub fn version_of(&self, controller: &str, host: &Host) -> Option<u8> {
        // v2 has no cpuacct, freezer or devices controllers: CPU time is in every
        // group's cpu.stat, freezing is cgroup.freeze, built into every v2 group, and
        // devices are a BPF program attached to one. With a v2 tree mounted, those
        // come from it, even on a hybrid host.
        let built_into_v2 =
            self.v2.is_some() && matches!(controller, "cpuacct" | "freezer" | "devices");
        if built_into_v2 || self.v2_controllers(host).iter().any(|c| c == controller) {
            Some(2)
        } else if self.v1.contains_key(controller) {
            Some(1)
        } else {
            None
        }
    }

    /// Our own cgroup in the v2 tree (`None` without a v2 mount).
    pub fn own_v2(&self) -> Option<PathBuf> {
        let root = self.v2.as_ref()?;
        Some(join(root, self.own.get("").map_or("/", String::as_str)))
    }

    /// The root of every hierarchy: the v2 tree first, then each v1 mount once.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.v2.iter().cloned().collect();
        for root in self.v1.values() {
            if !roots.contains(root) {
                roots.push(root.clone());
            }
        }
        roots
    }

    /// Our own cgroup in the v1 hierarchy of `controller`.
    pub fn own_v1(&self, controller: &str) -> Option<PathBuf> {
        let root = self.v1.get(controller)?;
        Some(join(
            root,
            self.own.get(controller).map_or("/", String::as_str),
        ))
    }
}

/// `/sys/fs/cgroup/memory` + `/a/b` -> `/sys/fs/cgroup/memory/a/b`
pub fn join(root: &Path, inside: &str) -> PathBuf {
    root.join(inside.trim_start_matches('/'))
}

/// Whether a v2 directory is the real root of the hierarchy, the only group exempt
/// from the no-internal-processes rule. Inside a container with a cgroup namespace
/// of its own, `/sys/fs/cgroup` is some group of the host's, and it is not: every
/// group but the real root has a `cgroup.type` file.
pub fn is_true_root(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists() && !dir.join("cgroup.type").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(mountinfo: &str, cgroup: &str) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("proc/self")).expect("mkdir");
        std::fs::write(dir.path().join("proc/self/mountinfo"), mountinfo).expect("write");
        std::fs::write(dir.path().join("proc/self/cgroup"), cgroup).expect("write");
        let host = Host::at(dir.path());
        (dir, host)
    }

    #[test]
    fn a_hybrid_host() {
        let (_d, h) = host(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "4:memory:/user.slice\n1:cpu,cpuacct:/\n0::/user.slice/session-1.scope\n",
        );
        let layout = Layout::discover(&h);
        assert_eq!(layout.mode(), Some(Mode::Hybrid));
        assert_eq!(
            layout.v1["cpuacct"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            layout.own_v1("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/user.slice"))
        );
        assert_eq!(
            layout.own_v2(),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/user.slice/session-1.scope"
            ))
        );
        assert_eq!(layout.version_of("memory", &h), Some(1));
        assert_eq!(layout.version_of("freezer", &h), Some(2));
        assert_eq!(
            layout.version_of("cpuacct", &h),
            Some(2),
            "cpu.stat of the v2 group"
        );
        assert_eq!(layout.version_of("pids", &h), None);
        assert_eq!(layout.roots().len(), 3, "unified, memory, cpu,cpuacct");
    }

    #[test]
    fn blkio_is_called_io() {
        let (_d, h) = host(
            "36 31 0:33 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n",
            "7:blkio:/user.slice\n",
        );
        let layout = Layout::discover(&h);
        assert_eq!(layout.v1["io"], PathBuf::from("/sys/fs/cgroup/blkio"));
        assert_eq!(
            layout.own_v1("io"),
            Some(PathBuf::from("/sys/fs/cgroup/blkio/user.slice"))
        );
        assert_eq!(layout.version_of("io", &h), Some(1));
        assert_eq!(v1_name("io"), "blkio");
    }

    #[test]
    fn a_pure_v2_host() {
        let (d, h) = host(
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/user.slice\n",
        );
        std::fs::create_dir_all(d.path().join("sys/fs/cgroup")).expect("mkdir");
        std::fs::write(
            d.path().join("sys/fs/cgroup/cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        let layout = Layout::discover(&h);
        assert_eq!(layout.mode(), Some(Mode::V2));
        assert_eq!(layout.version_of("memory", &h), Some(2));
        assert_eq!(layout.version_of("cpuacct", &h), Some(2));
    }
}
