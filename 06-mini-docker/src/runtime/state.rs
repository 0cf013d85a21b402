//! What mini-runc knows of each container, kept under `--root` (default
//! /run/mini-runc, a tmpfs: gone at reboot, as the containers are): a directory
//! per ID with `state.json`, and `exec.fifo` while the container waits for `start`.
//! The status is never stored: it is read off the kernel each time (is the process
//! there, is the fifo, is the cgroup frozen), as runc does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ch03_cgroups::group::Group;
use ch03_cgroups::hierarchy::Layout;
use ch03_cgroups::place::Place;
use labkit::doctor::Host;
use labkit::failure::Context;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::monitor::{is_the_same, start_time};

/// runc's words, which engines match on.
pub const NOT_EXIST: &str = "container does not exist";
pub const EXISTS: &str = "container with given ID already exists";

/// The root directory of all containers.
#[derive(Debug, Clone)]
pub struct Root(pub PathBuf);

/// What `create` recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// 0 until the process exists.
    pub pid: i32,
    /// When `pid` started (a later process may get its number).
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: HashMap<String, String>,
    /// Its cgroup, from each hierarchy's root: parent and leaf.
    pub cgroup: (String, String),
    /// config.json's hooks, for `start` (poststart) and `delete` (poststop).
    pub hooks: crate::runtime::hooks::Hooks,
    /// config.json's `process` and `linux.seccomp`, for `exec`: what a new process
    /// starts from, and the filter it gets.
    pub process: Option<oci_spec::runtime::Process>,
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// The spec's statuses, and runc's `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// One container's directory and what it holds.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub saved: Saved,
}

/// runc's rule: letters, digits, `_`, `+`, `-` and `.`; not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    if id.is_empty() || id == "." || id == ".." || !id.chars().all(fine) {
        return Err(Failure::new(format!("invalid id format: {id}")));
    }
    Ok(())
}

impl Root {
    /// A new container's directory, refused if the ID is taken.
    pub fn make(&self, saved: Saved) -> Result<Container> {
        check_id(&saved.id)?;
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.0)
            .context(|| format!("--root {}", self.0.display()))?;
        let dir = self.0.join(&saved.id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Failure::new(EXISTS));
            }
            other => other.context(|| dir.display().to_string())?,
        }
        let container = Container { dir, saved };
        container.save()?;
        Ok(container)
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = self.0.join(id);
        let text = match std::fs::read_to_string(dir.join("state.json")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Failure::new(NOT_EXIST).exit_code(1));
            }
            other => other.context(|| format!("{}/state.json", dir.display()))?,
        };
        let saved = serde_json::from_str(&text)
            .map_err(|e| Failure::new(format!("{}/state.json: {e}", dir.display())))?;
        Ok(Container { dir, saved })
    }

    /// Every container's ID, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }
}

impl Container {
    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Written whole, then renamed into place: a reader never sees half of it.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.saved).expect("state serializes");
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, text).context(|| tmp.display().to_string())?;
        std::fs::rename(&tmp, self.dir.join("state.json")).context(|| "state.json".into())
    }

    pub fn place(&self) -> Place {
        let (parent, leaf) = self.saved.cgroup.clone();
        Place { parent, leaf }
    }

    /// Its cgroup, if it is still there.
    pub fn group(&self) -> Option<Group> {
        Group::open(&Layout::discover(&Host::real()), &self.place()).ok()
    }

    // ANCHOR: status
    pub fn status(&self) -> Status {
        let Saved {
            pid, start_time, ..
        } = self.saved;
        if pid == 0 {
            return Status::Creating;
        }
        if !is_the_same(pid, start_time) || is_zombie(pid) {
            return Status::Stopped;
        }
        if self.exec_fifo().exists() {
            return Status::Created;
        }
        match self.group().is_some_and(|g| g.is_frozen()) {
            true => Status::Paused,
            false => Status::Running,
        }
    }
    // ANCHOR_END: status

    /// The state as `runc state` prints it: the spec's fields, and runc's
    /// `rootfs`, `created` and `owner`.
    pub fn oci_state(&self) -> serde_json::Value {
        self.oci_state_as(self.status())
    }

    /// The same, with a status the caller knows (a hook's moment).
    pub fn oci_state_as(&self, status: Status) -> serde_json::Value {
        let pid = self.pid_now(status);
        serde_json::json!({
            "ociVersion": crate::runtime::bundle::OCI_VERSION,
            "id": self.saved.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": self.saved.bundle,
            "rootfs": self.saved.rootfs,
            "created": self.saved.created,
            "owner": "",
            "annotations": self.saved.annotations,
        })
    }

    /// The container's PID, while its process lives.
    pub fn pid_now(&self, status: Status) -> i32 {
        match status {
            Status::Stopped => 0,
            _ => self.saved.pid,
        }
    }

    /// The process's start time, read now that it exists.
    pub fn started(&mut self, pid: i32) {
        self.saved.pid = pid;
        self.saved.start_time = start_time(pid).unwrap_or_default();
    }
}

/// A process that has ended but is not yet reaped (its new parent reaps it).
fn is_zombie(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_none_or(|state| state == "Z" || state == "X")
}

/// Remove a container's directory (its fifo, its state).
pub fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
