//! BusyBox: one static program that is ~400 Unix tools. Which tool it plays is
//! chosen by the name it is called under (`argv[0]`), so a rootfs needs one file and
//! a link per tool ("applet").

use std::path::{Path, PathBuf};
use std::process::Command;

use labkit::doctor::{Host, Package};

use crate::elf::read_needs;

/// The busybox package under each distribution's name: Debian and Alpine split off
/// the static build; Fedora's and Arch's `busybox` is static already.
pub const PACKAGE: Package = Package {
    apt: "busybox-static",
    dnf: "busybox",
    pacman: "busybox",
    apk: "busybox-static",
    zypper: "busybox-static",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busybox {
    /// Where it is on the host, as found on `PATH` (`/usr/bin/busybox`).
    pub path: PathBuf,
    /// A static build needs no loader and no libraries in the rootfs.
    pub is_static: bool,
}

/// The first busybox on `PATH`.
pub fn find(host: &Host) -> Option<Busybox> {
    let path = host.find_program("busybox")?;
    let needs = read_needs(&host.path(&path));
    Some(Busybox {
        is_static: needs.is_some_and(|n| n.is_static()),
        path,
    })
}

impl Busybox {
    /// Where each applet goes, as absolute paths inside the rootfs (`/bin/ls`,
    /// `/usr/bin/env`), from `busybox --list-full`; older builds only know `--list`,
    /// and then every applet goes to `/bin`.
    pub fn applets(&self) -> labkit::Result<Vec<PathBuf>> {
        let list = |flag: &str| {
            Command::new(&self.path)
                .arg(flag)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let as_paths = |text: String, dir: &str| -> Vec<PathBuf> {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains(".."))
                .map(|l| Path::new(dir).join(l))
                // linuxrc is the init of an initrd, not a tool: a rootfs has no use for it.
                .filter(|p| p != Path::new("/bin/busybox") && p != Path::new("/linuxrc"))
                .collect()
        };
        if let Some(full) = list("--list-full") {
            return Ok(as_paths(full, "/"));
        }
        if let Some(names) = list("--list") {
            return Ok(as_paths(names, "/bin"));
        }
        Err(labkit::Failure::new(format!(
            "{} does not list its applets (busybox --list failed): is it really busybox?",
            self.path.display()
        )))
    }
}
