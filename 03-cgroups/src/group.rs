//! A control group as this chapter uses it: one directory per hierarchy it needs
//! (the v2 tree, and each v1 controller's own tree), all named `lab-NAME`, beneath
//! the cgroup the tool itself runs in (or `--parent`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labkit::doctor::Host;
use labkit::failure::EXIT_TOOL_FAILED;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::delegate::{self, Delegation};
use crate::files::{self, procs, write};
use crate::hierarchy::{Layout, join};
use crate::limits::{CPU_PERIOD_US, Limits, weight_to_shares};

/// Every group this chapter makes is named `lab-NAME`, so that `ls` finds them.
pub const PREFIX: &str = "lab-";

/// One directory of a group: in the v2 tree, or in a v1 controller's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    pub version: u8,
    /// v1: the controllers of this hierarchy that we use; v2: those we use there.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub dirs: Vec<Dir>,
    delegation: Option<Delegation>,
}

fn fail(message: String) -> Failure {
    Failure::new(message).exit_code(EXIT_TOOL_FAILED)
}

/// Names are one path component of plain characters: no `/`, no `..`.
pub fn check_name(name: &str) -> Result<()> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if name.is_empty() || name.len() > 64 || !plain || name.starts_with('.') {
        return Err(fail(format!(
            "--name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.' \
             (no '/' or '..': a name is one directory)"
        )));
    }
    Ok(())
}

/// The controllers a set of limits needs.
pub fn needed(limits: &Limits) -> Vec<&'static str> {
    let mut wanted = vec![];
    if limits.memory.is_some() || limits.memory_swap.is_some() {
        wanted.push("memory");
    }
    if limits.cpus.is_some() || limits.cpu_weight.is_some() {
        wanted.push("cpu");
    }
    if limits.cpuset.is_some() {
        wanted.push("cpuset");
    }
    if limits.pids.is_some() {
        wanted.push("pids");
    }
    wanted
}

/// Where `lab-NAME` lives: the v2 directory (when there is a v2 tree) and one per
/// v1 hierarchy of `v1_controllers`, under our own cgroup or `parent`.
fn placement(
    layout: &Layout,
    name: &str,
    parent: Option<&str>,
    v1_controllers: &[&str],
    v2_controllers: &[&str],
) -> Vec<Dir> {
    let leaf = format!("{PREFIX}{name}");
    let mut dirs: Vec<Dir> = vec![];
    if let Some(root) = &layout.v2 {
        let base = parent.map_or_else(
            || layout.own_v2().unwrap_or(root.clone()),
            |p| join(root, p),
        );
        dirs.push(Dir {
            version: 2,
            controllers: v2_controllers.iter().map(|c| c.to_string()).collect(),
            path: base.join(&leaf),
        });
    }
    for controller in v1_controllers {
        let Some(root) = layout.v1.get(*controller) else {
            continue;
        };
        let base = parent.map_or_else(
            || layout.own_v1(controller).unwrap_or(root.clone()),
            |p| join(root, p),
        );
        let path = base.join(&leaf);
        match dirs.iter_mut().find(|d| d.path == path) {
            Some(shared) => shared.controllers.push(controller.to_string()),
            None => dirs.push(Dir {
                version: 1,
                controllers: vec![controller.to_string()],
                path,
            }),
        }
    }
    dirs
}

// ANCHOR: create
impl Group {
    /// Make the group's directories and write its limits.
    pub fn create(
        layout: &Layout,
        host: &Host,
        name: &str,
        parent: Option<&str>,
        limits: &Limits,
    ) -> Result<Group> {
        check_name(name)?;
        let mode = layout.mode().ok_or_else(|| {
            fail("no cgroup filesystem is mounted here (see: ch03-cgroups doctor)".into())
        })?;
        let mut v1 = vec![];
        let mut v2 = vec![];
        for controller in needed(limits) {
            match layout.version_of(controller, host) {
                Some(1) => v1.push(controller),
                Some(_) => v2.push(controller),
                None => {
                    return Err(fail(format!(
                        "the {controller} controller is missing on this host ({mode}): neither a v1 \
                         hierarchy nor the v2 tree offers it (see: ch03-cgroups info)"
                    )));
                }
            }
        }
        // Accounting (peak memory, throttling, pids, CPU time) and freezing, from
        // whichever version runs them here, even without a limit.
        for accounting in ["memory", "cpu", "pids", "cpuacct", "freezer"] {
            if layout.version_of(accounting, host) == Some(1) && !v1.contains(&accounting) {
                v1.push(accounting);
            }
        }
        let dirs = placement(layout, name, parent, &v1, &v2);
        for dir in &dirs {
            let base = dir.path.parent().unwrap_or(&dir.path);
            if !base.is_dir() {
                return Err(fail(format!(
                    "--parent: {} does not exist (the parent must be an existing cgroup)",
                    base.display()
                )));
            }
            if dir.path.exists() {
                return Err(fail(format!(
                    "a group named {name} exists already ({}): choose another --name, or remove it: ch03-cgroups rm {name}",
                    dir.path.display()
                )));
            }
        }
        let mut group = Group {
            name: name.to_string(),
            dirs: vec![],
            delegation: None,
        };
        if let Some(v2dir) = dirs
            .iter()
            .find(|d| d.version == 2 && !d.controllers.is_empty())
        {
            let parent_dir = v2dir.path.parent().unwrap_or(&v2dir.path);
            let is_root = Some(parent_dir) == layout.v2.as_deref();
            group.delegation = delegate::delegate(parent_dir, &v2dir.controllers, is_root)?;
        }
        // From here on, `group` removes what it made if anything fails.
        for dir in dirs {
            narrate::step(
                format!("mkdir({:?})", dir.path),
                format!("mkdir {}", dir.path.display()),
            );
            if let Err(e) = std::fs::create_dir(&dir.path) {
                group.remove();
                return Err(fail(format!(
                    "cannot create {}: {} (see: ch03-cgroups doctor)",
                    dir.path.display(),
                    labkit::failure::describe_io(&e)
                )));
            }
            group.dirs.push(dir);
        }
        if let Err(failure) = group.apply(limits) {
            group.remove();
            return Err(failure);
        }
        Ok(group)
    }
    // ANCHOR_END: create

    fn dir_for(&self, controller: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
    }

    // ANCHOR: apply
    /// Write each limit into the file its cgroup version uses.
    fn apply(&self, limits: &Limits) -> Result<()> {
        if let (Some(bytes), Some(dir)) = (limits.memory, self.dir_for("memory")) {
            let file = if dir.version == 1 {
                "memory.limit_in_bytes"
            } else {
                "memory.max"
            };
            write(&dir.path.join(file), &bytes.to_string())?;
        }
        if let (Some(total), Some(dir)) = (limits.memory_swap, self.dir_for("memory")) {
            let memory = limits.memory.unwrap_or(0);
            if dir.version == 1 {
                // v1 counts memory+swap together; the kernel wants it after the memory limit.
                let file = dir.path.join("memory.memsw.limit_in_bytes");
                if !file.exists() {
                    return Err(fail("--memory-swap: this kernel keeps no swap accounts in cgroup v1 (no memory.memsw.limit_in_bytes): boot it with swapaccount=1".into()));
                }
                write(&file, &total.to_string())?;
            } else {
                // v2 limits swap on its own: docker's total minus the memory part.
                write(
                    &dir.path.join("memory.swap.max"),
                    &total.saturating_sub(memory).to_string(),
                )?;
            }
        }
        if let (Some(cpus), Some(dir)) = (limits.cpus, self.dir_for("cpu")) {
            let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
            if dir.version == 1 {
                write(
                    &dir.path.join("cpu.cfs_period_us"),
                    &CPU_PERIOD_US.to_string(),
                )?;
                write(&dir.path.join("cpu.cfs_quota_us"), &quota.to_string())?;
            } else {
                write(
                    &dir.path.join("cpu.max"),
                    &format!("{quota} {CPU_PERIOD_US}"),
                )?;
            }
        }
        if let (Some(weight), Some(dir)) = (limits.cpu_weight, self.dir_for("cpu")) {
            match dir.version {
                1 => write(
                    &dir.path.join("cpu.shares"),
                    &weight_to_shares(weight).to_string(),
                )?,
                _ => write(&dir.path.join("cpu.weight"), &weight.to_string())?,
            }
        }
        if let (Some(cpus), Some(dir)) = (&limits.cpuset, self.dir_for("cpuset")) {
            if dir.version == 1 {
                // A new v1 cpuset starts with no memory nodes, and then takes no tasks.
                let parent_mems = files::read(&dir.path.join("../cpuset.mems")).unwrap_or_default();
                write(&dir.path.join("cpuset.mems"), parent_mems.trim())?;
            }
            write(&dir.path.join("cpuset.cpus"), cpus)?;
        }
        if let (Some(max), Some(dir)) = (limits.pids, self.dir_for("pids")) {
            write(&dir.path.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: apply

    /// Find the directories of an existing group.
    pub fn open(layout: &Layout, name: &str, parent: Option<&str>) -> Result<Group> {
        check_name(name)?;
        let all: Vec<&str> = layout.v1.keys().map(String::as_str).collect();
        let dirs: Vec<Dir> = placement(layout, name, parent, &all, &[])
            .into_iter()
            .filter(|d| d.path.is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(Failure::new(format!(
                "no group named {name} here (ch03-cgroups ls lists them)"
            )));
        }
        Ok(Group {
            name: name.to_string(),
            dirs,
            delegation: None,
        })
    }

    /// The names of this chapter's groups under our own cgroup (or `parent`).
    pub fn list(layout: &Layout, parent: Option<&str>) -> Vec<String> {
        let all: Vec<&str> = layout.v1.keys().map(String::as_str).collect();
        let mut names: Vec<String> = placement(layout, "x", parent, &all, &[])
            .iter()
            .filter_map(|d| d.path.parent().map(Path::to_path_buf))
            .flat_map(|base| std::fs::read_dir(base).into_iter().flatten().flatten())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix(PREFIX)
                    .map(str::to_string)
            })
            .filter(|n| !n.starts_with("runner-"))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    // ANCHOR: add
    /// Move a process into every directory of the group: its limits apply from now on.
    pub fn add(&self, pid: Pid) -> Result<()> {
        for dir in &self.dirs {
            write(&dir.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
    // ANCHOR_END: add

    pub fn procs(&self) -> Vec<i32> {
        let mut all: Vec<i32> = self.dirs.iter().flat_map(|d| procs(&d.path)).collect();
        all.sort();
        all.dedup();
        all
    }

    fn v2(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.version == 2)
    }

    // ANCHOR: freeze
    /// Freeze (or thaw) every process of the group: they stay in memory, holding
    /// their state, but get no CPU time until thawed. `docker pause` is this.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = self.v2() {
            write(
                &dir.path.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )?;
            let want = format!("frozen {}", u8::from(frozen));
            return wait(
                || {
                    files::read(&dir.path.join("cgroup.events"))
                        .is_some_and(|e| e.lines().any(|l| l == want))
                },
                "cgroup.events to say it",
            );
        }
        let dir = self.dir_for("freezer").ok_or_else(|| {
            fail("no freezer here: neither cgroup v2 nor the v1 freezer controller".into())
        })?;
        let state = if frozen { "FROZEN" } else { "THAWED" };
        write(&dir.path.join("freezer.state"), state)?;
        wait(
            || files::read(&dir.path.join("freezer.state")).is_some_and(|s| s.trim() == state),
            "freezer.state to say it",
        )
    }
    // ANCHOR_END: freeze

    // ANCHOR: kill
    /// SIGKILL every process of the group, and wait until it is empty.
    pub fn kill(&self) -> Result<()> {
        match self
            .v2()
            .map(|d| d.path.join("cgroup.kill"))
            .filter(|f| f.exists())
        {
            // Linux 5.14+: one write kills them all, with no race against forks.
            Some(file) => write(&file, "1")?,
            None => {
                narrate::step(
                    "kill(PID, SIGKILL) for each PID in cgroup.procs",
                    "kill -9 $(cat cgroup.procs)",
                );
                for pid in self.procs() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // A v1-frozen process cannot act on SIGKILL until thawed.
        if let Some(dir) = self.dir_for("freezer").filter(|d| d.version == 1) {
            let _ = std::fs::write(dir.path.join("freezer.state"), "THAWED");
        }
        wait(
            || {
                let left = self.procs();
                for pid in &left {
                    let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
                }
                left.is_empty()
            },
            "the group to be empty",
        )
    }
    // ANCHOR_END: kill

    /// Kill what is left, and remove every directory (and undo any delegation).
    pub fn remove(&mut self) {
        if !self.procs().is_empty() {
            let _ = self.kill();
        }
        for dir in self.dirs.drain(..).rev() {
            narrate::step(
                format!("rmdir({:?})", dir.path),
                format!("rmdir {}", dir.path.display()),
            );
            // Right after its last process exits, a group can be busy for a moment.
            let _ = wait(
                || std::fs::remove_dir(&dir.path).is_ok() || !dir.path.exists(),
                "rmdir",
            );
        }
        if let Some(delegation) = self.delegation.take() {
            delegate::undo(&delegation);
        }
    }
}

/// Poll (bounded, 5 s) until `done`: used only after the work, never on the start path.
fn wait(mut done: impl FnMut() -> bool, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() > deadline {
            return Err(fail(format!("timed out waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
