//! The doctor: checks of the host that explain what a chapter needs.
//!
//! Learners' most common failures are environmental, so every chapter has a
//! `doctor` subcommand. Each [`Finding`] says what was checked, what was found and,
//! when something is missing, the exact fix. Chapter N's doctor runs chapter N-1's
//! checks and adds its own.
//!
//! Checks read the host through a [`Host`]: normally `/`, but tests point it at a
//! fake tree (`proc/`, `sys/`, `etc/`, `usr/bin/`) to show what the doctor says on
//! machines we do not have.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// What was checked, in a few words: `static busybox`.
    pub check: String,
    /// What was found: `/usr/bin/busybox (statically linked)`.
    pub found: String,
    /// The exact fix, a command or a setting; only when something is wrong.
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: impl Into<String>, found: impl Into<String>) -> Self {
        Finding {
            status: Status::Ok,
            check: check.into(),
            found: found.into(),
            fix: None,
        }
    }

    /// Works, but not as well as it could, or one path of the chapter is closed.
    pub fn warn(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            status: Status::Warn,
            check: check.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// The chapter cannot work until this is fixed.
    pub fn fail(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            status: Status::Fail,
            check: check.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// All findings of one `doctor` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub title: String,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(title: impl Into<String>, findings: Vec<Finding>) -> Self {
        Report {
            title: title.into(),
            findings,
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        for f in &self.findings {
            let tag = match f.status {
                Status::Ok => "[ ok ]",
                Status::Warn => "[warn]",
                Status::Fail => "[FAIL]",
            };
            let _ = writeln!(out, "{tag} {}: {}", f.check, f.found);
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "       fix: {fix}");
            }
        }
        let count = |s| self.findings.iter().filter(|f| f.status == s).count();
        let (warnings, problems) = (count(Status::Warn), count(Status::Fail));
        let _ = writeln!(
            out,
            "\n{} checked, {warnings} warning{}, {problems} problem{}.",
            self.findings.len(),
            if warnings == 1 { "" } else { "s" },
            if problems == 1 { "" } else { "s" },
        );
        out
    }

    /// Print the report on stdout; returns the exit code for `doctor`.
    pub fn print(&self) -> i32 {
        print!("{}", self.render());
        self.exit_code()
    }

    /// 0 when nothing failed (warnings are allowed), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.findings.iter().any(|f| f.status == Status::Fail))
    }
}

/// The machine the doctor looks at: the real host at `/`, or a fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    root: PathBuf,
    search_path: String,
}

/// Where programs are looked for when `PATH` is unset, as in `execvp(3)` and sudo.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Host {
    /// The machine we run on, with this process's `PATH`.
    pub fn real() -> Self {
        Host::at("/")
    }

    /// A tree that stands for a machine (its `proc/`, `sys/`, `etc/` ...). Programs
    /// are looked for in the `PATH` directories under it.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Host {
            root: root.into(),
            search_path: std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
        }
    }

    /// Where an absolute host path is in this tree.
    pub fn path(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let rel = absolute
            .as_ref()
            .strip_prefix("/")
            .unwrap_or(absolute.as_ref());
        self.root.join(rel)
    }

    pub fn read(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.path(absolute)).ok()
    }

    pub fn search_path(&self) -> &str {
        &self.search_path
    }

    /// The first `name` on `PATH`, as a host path (`/usr/bin/busybox`).
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        self.search_path
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| Path::new(dir).join(name))
            .find(|candidate| is_executable_file(&self.path(candidate)))
    }

    /// The effective user id, from `/proc/self/status` (so that a fake tree can be
    /// an unprivileged user).
    pub fn effective_uid(&self) -> Option<u32> {
        let status = self.read("/proc/self/status")?;
        let line = status.lines().find(|l| l.starts_with("Uid:"))?;
        line.split_whitespace().nth(2)?.parse().ok()
    }

    pub fn kernel_release(&self) -> Option<String> {
        Some(self.read("/proc/sys/kernel/osrelease")?.trim().to_string())
    }

    /// The distribution's package manager, from `/etc/os-release`, so that a fix can
    /// be the exact command for this machine.
    pub fn package_manager(&self) -> Option<PackageManager> {
        let release = self.read("/etc/os-release")?;
        let field = |key: &str| {
            release
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let ids = format!("{} {}", field("ID"), field("ID_LIKE"));
        let has = |id: &str| ids.split_whitespace().any(|w| w == id);
        if has("debian") || has("ubuntu") {
            Some(PackageManager::Apt)
        } else if has("fedora") || has("rhel") || has("centos") {
            Some(PackageManager::Dnf)
        } else if has("arch") {
            Some(PackageManager::Pacman)
        } else if has("alpine") {
            Some(PackageManager::Apk)
        } else if has("suse") || has("opensuse") {
            Some(PackageManager::Zypper)
        } else {
            None
        }
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Apt,
    Dnf,
    Pacman,
    Apk,
    Zypper,
}

/// One package under the names each family of distributions gives it.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub apt: &'static str,
    pub dnf: &'static str,
    pub pacman: &'static str,
    pub apk: &'static str,
    pub zypper: &'static str,
}

impl PackageManager {
    pub fn install(self, package: &Package) -> String {
        match self {
            PackageManager::Apt => format!("apt-get install {}", package.apt),
            PackageManager::Dnf => format!("dnf install {}", package.dnf),
            PackageManager::Pacman => format!("pacman -S {}", package.pacman),
            PackageManager::Apk => format!("apk add {}", package.apk),
            PackageManager::Zypper => format!("zypper install {}", package.zypper),
        }
    }
}

impl Host {
    /// `apt-get install busybox-static` on Debian, `dnf install busybox` on Fedora...
    /// or every family's command when the distribution is unknown.
    pub fn install_command(&self, package: &Package) -> String {
        match self.package_manager() {
            Some(pm) => pm.install(package),
            None => format!(
                "install it with your package manager ({}; {}; {})",
                PackageManager::Apt.install(package),
                PackageManager::Dnf.install(package),
                PackageManager::Pacman.install(package)
            ),
        }
    }
}

/// The checks every chapter starts with: privileges and the kernel.
pub fn base_checks(host: &Host) -> Vec<Finding> {
    let root = match host.effective_uid() {
        Some(0) => Finding::ok("privileges", "running as root (uid 0)"),
        Some(uid) => Finding::fail(
            "privileges",
            format!("running as uid {uid}, not root"),
            "run the chapters as root: sudo <command>",
        ),
        None => Finding::warn(
            "privileges",
            "cannot read /proc/self/status (is /proc mounted?)",
            "mount -t proc proc /proc",
        ),
    };
    let kernel = match host.kernel_release() {
        Some(release) => Finding::ok("kernel", format!("Linux {release}")),
        None => Finding::fail(
            "kernel",
            "cannot read /proc/sys/kernel/osrelease: this does not look like Linux",
            "run the lab on Linux, natively or in a VM (see the book's setup page)",
        ),
    };
    vec![root, kernel]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    #[test]
    fn an_unprivileged_fedora_host() {
        let dir = fake(&[
            (
                "proc/self/status",
                "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n",
            ),
            ("proc/sys/kernel/osrelease", "6.8.0-1\n"),
            ("etc/os-release", "ID=fedora\nVERSION_ID=40\n"),
        ]);
        let host = Host::at(dir.path());
        let findings = base_checks(&host);
        assert_eq!(findings[0].status, Status::Fail);
        assert_eq!(findings[0].found, "running as uid 1000, not root");
        assert_eq!(findings[1], Finding::ok("kernel", "Linux 6.8.0-1"));
        assert_eq!(host.package_manager(), Some(PackageManager::Dnf));
        let report = Report::new("doctor", findings);
        assert_eq!(report.exit_code(), 1);
        assert!(
            report
                .render()
                .ends_with("2 checked, 0 warnings, 1 problem.\n")
        );
    }

    #[test]
    fn ubuntu_is_known_through_id_like() {
        let dir = fake(&[("etc/os-release", "ID=ubuntu\nID_LIKE=debian\n")]);
        assert_eq!(
            Host::at(dir.path()).package_manager(),
            Some(PackageManager::Apt)
        );
    }
}
