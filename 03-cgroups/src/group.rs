//! A control group as this chapter uses it: one directory per hierarchy it needs
//! (the v2 tree, and each v1 controller's own tree), each at the same [`Place`]:
//! `/ch03-cgroups/lab-NAME` by default (mini-docker's: `/mini-docker/ID`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ch02_namespaces::plan::IntoCgroup;
use ch02_namespaces::spawn::Started;
use labkit::doctor::Host;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::delegate::RUNNER_PREFIX;
use crate::device_filter;
use crate::devices::DeviceRule;
use crate::files::{self, procs, write};
use crate::hierarchy::Layout;
use crate::limits::{CPU_PERIOD_US, Limits, device_number, weight_to_shares};
use crate::place::{self, Place};

/// Every group this chapter makes is named `lab-NAME`, so that `ls` finds them.
pub const PREFIX: &str = "lab-";

/// Where `ch03-cgroups` puts its groups unless told `--parent`: a group of its own at
/// the top of each hierarchy, as Docker's `/docker`.
pub const DEFAULT_PARENT: &str = "/ch03-cgroups";

/// One directory of a group: in the v2 tree, or in a v1 controller's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    pub version: u8,
    /// v1: the controllers of this hierarchy that we use; v2: those we use there.
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// The root of its hierarchy.
    pub root: PathBuf,
}

#[derive(Debug)]
pub struct Group {
    /// The group's own directory name (`lab-NAME`, or a container's id).
    pub name: String,
    pub dirs: Vec<Dir>,
    /// The v2 directory, open: `clone3(CLONE_INTO_CGROUP)` starts a child in it.
    v2_dir: Option<File>,
    /// The directory whose lock is held while levels are made or removed.
    lock_root: Option<PathBuf>,
}

/// Names are one path component of plain characters: no `/`, no `..`.
pub fn check_name(name: &str) -> Result<()> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if name.is_empty() || name.len() > 64 || !plain || name.starts_with('.') {
        return Err(Failure::new(format!(
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
    if limits
        .throttles()
        .iter()
        .any(|(_, _, list)| !list.is_empty())
    {
        wanted.push("io");
    }
    wanted
}

/// Where the group's directories go: the v2 one (when there is a v2 tree) and one
/// per v1 hierarchy of `v1_controllers`.
fn placement(
    layout: &Layout,
    place: &Place,
    v1_controllers: &[&str],
    v2_controllers: &[&str],
) -> Vec<Dir> {
    let mut dirs: Vec<Dir> = vec![];
    if let Some(root) = &layout.v2 {
        let own = layout.own.get("").map_or("/", String::as_str);
        dirs.push(Dir {
            version: 2,
            controllers: v2_controllers.iter().map(|c| c.to_string()).collect(),
            path: place.parent_in(root, own).join(&place.leaf),
            root: root.clone(),
        });
    }
    for controller in v1_controllers {
        let Some(root) = layout.v1.get(*controller) else {
            continue;
        };
        let own = layout.own.get(*controller).map_or("/", String::as_str);
        let path = place.parent_in(root, own).join(&place.leaf);
        match dirs.iter_mut().find(|d| d.path == path) {
            Some(shared) => shared.controllers.push(controller.to_string()),
            None => dirs.push(Dir {
                version: 1,
                controllers: vec![controller.to_string()],
                path,
                root: root.clone(),
            }),
        }
    }
    dirs
}

// ANCHOR: create
impl Group {
    /// Make the group's directories (and the levels above them that are missing),
    /// and write its limits.
    pub fn create(layout: &Layout, host: &Host, place: &Place, limits: &Limits) -> Result<Group> {
        let mode = layout.mode().ok_or_else(|| {
            Failure::new("no cgroup filesystem is mounted here (see: ch03-cgroups doctor)")
        })?;
        let mut v1 = vec![];
        let mut v2 = vec![];
        for controller in needed(limits) {
            match layout.version_of(controller, host) {
                Some(1) => v1.push(controller),
                Some(_) => v2.push(controller),
                None => {
                    return Err(Failure::new(format!(
                        "the {controller} controller is missing on this host ({mode}): neither a v1 \
                         hierarchy nor the v2 tree offers it (see: ch03-cgroups info)"
                    )));
                }
            }
        }
        // Accounting (peak memory, throttling, pids, CPU time, I/O) and freezing,
        // from whichever version runs them here, even without a limit.
        for accounting in ["memory", "cpu", "pids", "io", "cpuacct", "freezer"] {
            if layout.version_of(accounting, host) == Some(1) && !v1.contains(&accounting) {
                v1.push(accounting);
            }
        }
        // v1 has a devices controller; v2 has none (a BPF program instead).
        if limits.devices.is_some() && layout.version_of("devices", host) == Some(1) {
            v1.push("devices");
        }
        let mut group = Group {
            name: place.leaf.clone(),
            dirs: vec![],
            v2_dir: None,
            lock_root: layout.roots().first().cloned(),
        };
        let lock = place::lock(layout)?;
        let made = group.make(placement(layout, place, &v1, &v2));
        drop(lock);
        // From here on, `group` removes what it made if anything fails.
        if let Err(failure) = group.removed_if_it_panics(|g| made.and_then(|()| g.apply(limits))) {
            group.remove();
            return Err(failure);
        }
        group.v2_dir = group.v2().and_then(|d| File::open(&d.path).ok());
        Ok(group)
    }

    /// Under the lock: each directory, after the levels above it.
    fn make(&mut self, dirs: Vec<Dir>) -> Result<()> {
        for dir in dirs {
            if dir.path.exists() {
                return Err(exists(&dir.path));
            }
            let parent = dir.path.parent().unwrap_or(&dir.path).to_path_buf();
            // Counted as ours first: if a step below fails, `remove` takes away the
            // levels made for it.
            self.dirs.push(dir.clone());
            let needed = match dir.version {
                2 => dir.controllers.clone(),
                _ => vec![],
            };
            place::prepare(&dir.root, &parent, &needed)?;
            files::mkdir(&dir.path)?;
            if !place::is_ours(&parent) {
                // Directly beneath a level we did not make: labelled, so that what we
                // switched on there stays while it is there.
                place::mark(&dir.path);
            }
            if let (2, Some(made)) = (dir.version, self.dirs.last_mut()) {
                // What the group really has: the needed ones and those that account.
                made.controllers = v2_controllers_of(&dir.path);
            }
        }
        Ok(())
    }
    // ANCHOR_END: create

    /// The directory where `controller` is used.
    pub fn dir_for(&self, controller: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
    }

    // ANCHOR: apply
    /// Write each limit into the file its cgroup version uses.
    fn apply(&self, limits: &Limits) -> Result<()> {
        // ANCHOR: hole_memory
        if let (Some(bytes), Some(dir)) = (limits.memory, self.dir_for("memory")) {
            let file = if dir.version == 1 {
                "memory.limit_in_bytes"
            } else {
                "memory.max"
            };
            write(&dir.path.join(file), &bytes.to_string())?;
        }
        // ANCHOR_END: hole_memory
        if let (Some(total), Some(dir)) = (limits.memory_swap, self.dir_for("memory")) {
            let memory = limits.memory.unwrap_or(0);
            if dir.version == 1 {
                // v1 counts memory+swap together; the kernel wants it after the memory limit.
                let file = dir.path.join("memory.memsw.limit_in_bytes");
                if !file.exists() {
                    return Err(Failure::new(
                        "--memory-swap: this kernel keeps no swap accounts in cgroup v1 (no memory.memsw.limit_in_bytes): boot it with swapaccount=1",
                    ));
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
        // ANCHOR: hole_pids
        if let (Some(max), Some(dir)) = (limits.pids, self.dir_for("pids")) {
            write(&dir.path.join("pids.max"), &max.to_string())?;
        }
        // ANCHOR_END: hole_pids
        if let Some(dir) = self.dir_for("io") {
            self.apply_throttles(dir, limits)?;
        }
        if let Some(rules) = &limits.devices {
            self.apply_devices(rules)?;
        }
        Ok(())
    }
    // ANCHOR_END: apply

    // ANCHOR: devices
    /// The device allow-list: v1 refuses everything (`devices.deny a`), then allows
    /// each rule; v2 attaches a BPF program that answers the same.
    fn apply_devices(&self, rules: &[DeviceRule]) -> Result<()> {
        if let Some(dir) = self.dir_for("devices") {
            write(&dir.path.join("devices.deny"), "a")?;
            for rule in rules {
                write(&dir.path.join("devices.allow"), &rule.to_v1())?;
            }
            return Ok(());
        }
        match self.v2() {
            Some(dir) => device_filter::attach(&dir.path, rules),
            None => Err(Failure::new(
                "no device controller here: neither v1's devices hierarchy nor a v2 tree",
            )),
        }
    }
    // ANCHOR_END: devices

    // ANCHOR: throttles
    /// Disk throttles: v2 takes one line per disk in `io.max` (`8:0 wbps=1048576`),
    /// v1 one file per kind (`blkio.throttle.write_bps_device`: `8:0 1048576`).
    fn apply_throttles(&self, dir: &Dir, limits: &Limits) -> Result<()> {
        for (key, v1_file, list) in limits.throttles() {
            for device in list {
                let flag = format!("--device-{}", key.replace("bps", "-bps"));
                let number = device_number(&flag, &device.path)?;
                match dir.version {
                    1 => write(
                        &dir.path.join(v1_file),
                        &format!("{number} {}", device.rate),
                    )?,
                    _ => write(
                        &dir.path.join("io.max"),
                        &format!("{number} {key}={}", device.rate),
                    )?,
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: throttles

    /// Find the directories of an existing group.
    pub fn open(layout: &Layout, place: &Place) -> Result<Group> {
        let all: Vec<&str> = layout.v1.keys().map(String::as_str).collect();
        let dirs: Vec<Dir> = placement(layout, place, &all, &[])
            .into_iter()
            .filter(|d| d.path.is_dir())
            .map(|mut d| {
                if d.version == 2 {
                    d.controllers = v2_controllers_of(&d.path);
                }
                d
            })
            .collect();
        if dirs.is_empty() {
            let name = place.leaf.strip_prefix(PREFIX).unwrap_or(&place.leaf);
            return Err(Failure::new(format!(
                "no group named {name} here (ch03-cgroups ls lists them)"
            )));
        }
        Ok(Group {
            name: place.leaf.clone(),
            dirs,
            v2_dir: None,
            lock_root: layout.roots().first().cloned(),
        })
    }

    /// The names of this chapter's groups (`lab-NAME`) in `parent`.
    pub fn list(layout: &Layout, parent: &str) -> Result<Vec<String>> {
        let place = Place::new(parent, "x")?;
        let all: Vec<&str> = layout.v1.keys().map(String::as_str).collect();
        let mut names: Vec<String> = placement(layout, &place, &all, &[])
            .iter()
            .filter_map(|d| d.path.parent().map(Path::to_path_buf))
            .flat_map(|base| std::fs::read_dir(base).into_iter().flatten().flatten())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                match name.starts_with(RUNNER_PREFIX) {
                    true => None,
                    false => name.strip_prefix(PREFIX).map(str::to_string),
                }
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    // ANCHOR: into_cgroup
    /// For chapter 02's plan: the v2 directory the child can be created in
    /// (`clone3(CLONE_INTO_CGROUP)`), and whether v1 groups must still be joined.
    pub fn into_cgroup(&self) -> IntoCgroup {
        IntoCgroup {
            v2: self.v2_dir.as_ref().map(AsRawFd::as_raw_fd),
            v1: self.dirs.iter().any(|d| d.version == 1),
        }
    }

    /// Before the child may go on: into every directory it was not created in.
    pub fn join(&self, child: &Started) -> Result<()> {
        // ANCHOR: hole_join
        for dir in &self.dirs {
            if !(dir.version == 2 && child.in_cgroup) {
                write(&dir.path.join("cgroup.procs"), &child.pid.to_string())?;
            }
        }
        Ok(())
        // ANCHOR_END: hole_join
    }
    // ANCHOR_END: into_cgroup

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
        // ANCHOR: hole_freeze
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
            Failure::new("no freezer here: neither cgroup v2 nor the v1 freezer controller")
        })?;
        let state = if frozen { "FROZEN" } else { "THAWED" };
        write(&dir.path.join("freezer.state"), state)?;
        wait(
            || files::read(&dir.path.join("freezer.state")).is_some_and(|s| s.trim() == state),
            "freezer.state to say it",
        )
        // ANCHOR_END: hole_freeze
    }
    // ANCHOR_END: freeze

    /// Whether the group is frozen now (`cgroup.events` or `freezer.state` says it).
    pub fn is_frozen(&self) -> bool {
        match (self.v2(), self.dir_for("freezer")) {
            (Some(dir), _) => files::read(&dir.path.join("cgroup.events"))
                .is_some_and(|e| e.lines().any(|l| l == "frozen 1")),
            (None, Some(dir)) => {
                files::read(&dir.path.join("freezer.state")).is_some_and(|s| s.trim() == "FROZEN")
            }
            (None, None) => false,
        }
    }

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

    /// Send `sig` (TERM, SIGTERM or 15) to every process of the group. cgroup.kill
    /// only knows SIGKILL, so this walks cgroup.procs.
    pub fn signal(&self, sig: &str) -> Result<()> {
        // ANCHOR: hole_signal
        let signal = parse_signal(sig).ok_or_else(|| {
            Failure::new(format!(
                "--signal {sig:?}: not a signal; use e.g. TERM, HUP or 15"
            ))
        })?;
        narrate::step(
            format!("kill(PID, {signal}) for each PID in cgroup.procs"),
            format!("kill -{} $(cat cgroup.procs)", &signal.as_str()[3..]),
        );
        for pid in self.procs() {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        Ok(())
        // ANCHOR_END: hole_signal
    }

    /// `step(self)`; should it panic (an exercise's `todo!()`, say), the group is
    /// removed before the panic goes on, so that nothing is left on the host.
    pub fn removed_if_it_panics<T>(&mut self, step: impl FnOnce(&mut Group) -> T) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(self))) {
            Ok(done) => done,
            Err(panic) => {
                self.remove();
                std::panic::resume_unwind(panic)
            }
        }
    }

    // ANCHOR: remove
    /// Kill what is left, remove every directory, then the levels above them that
    /// we made and that are empty now, and switch off what we switched on.
    pub fn remove(&mut self) {
        self.v2_dir = None;
        if !self.procs().is_empty() {
            let _ = self.kill();
        }
        for dir in self.dirs.iter().rev().filter(|d| d.path.exists()) {
            // Right after its last process exits, a group can be busy for a moment.
            if !files::rmdir(&dir.path) {
                let _ = wait(
                    || std::fs::remove_dir(&dir.path).is_ok() || !dir.path.exists(),
                    "rmdir",
                );
            }
        }
        let _lock = self
            .lock_root
            .as_ref()
            .map(|root| labkit::lock::lock_directory_itself(root));
        for dir in self.dirs.drain(..) {
            place::tidy(&dir.root, dir.path.parent().unwrap_or(&dir.path));
        }
    }
    // ANCHOR_END: remove
}

/// The controllers a v2 group has (its `cgroup.controllers`).
fn v2_controllers_of(path: &Path) -> Vec<String> {
    files::words(&path.join("cgroup.controllers"))
}

/// The refusal to make a group twice.
fn exists(path: &Path) -> Failure {
    let leaf = path.file_name().unwrap_or_default().to_string_lossy();
    match leaf.strip_prefix(PREFIX) {
        Some(name) => Failure::new(format!(
            "a group named {name} exists already ({}): choose another --name, or remove it: \
             ch03-cgroups rm {name}",
            path.display()
        )),
        None => Failure::new(format!("{} exists already", path.display())),
    }
}

/// Poll until `done`, bounded (30 s: a loaded or emulated machine is slow, and the
/// bound only turns a hang into an error): used only after the work, never on the
/// start path.
fn wait(mut done: impl FnMut() -> bool, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            return Err(Failure::new(format!("timed out waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A signal as `kill` takes it: `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse_signal(sig: &str) -> Option<Signal> {
    let upper = sig.to_ascii_uppercase();
    let named = match upper.starts_with("SIG") {
        true => upper,
        false => format!("SIG{upper}"),
    };
    (named.parse::<Signal>().ok()).or_else(|| Signal::try_from(sig.parse::<i32>().ok()?).ok())
}
