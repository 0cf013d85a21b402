//! A bundle: a directory with `config.json` (read with the `oci-spec` crate) and
//! the root filesystem it names. Everything in it is checked and translated into
//! the chapters' terms before anything is made: chapter 02's plan (namespaces,
//! mounts, the process's last steps), chapter 03's limits and place. A field
//! mini-runc does not honour is refused by name, never ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use caps::CapsHashSet;
use ch02_namespaces::namespace::{Namespace, Namespaces};
use ch02_namespaces::plan::{DeviceNode, Plan, Request, plan};
use ch03_cgroups::devices::DeviceRule;
use ch03_cgroups::limits::{Limits, ThrottleDevice};
use ch03_cgroups::place::Place;
use labkit::doctor::Host;
use labkit::{Failure, Result};
use oci_spec::runtime::{LinuxIdMapping, Spec};
use serde_json::Value;

use crate::runtime::mounts;
use crate::runtime::process::{LastSteps, ProcessSteps};

/// The runtime spec's version we follow.
pub const OCI_VERSION: &str = "1.2.0";

/// Fields of config.json mini-runc does not honour (yet): refused when present,
/// so that a container never runs without what its config asked for.
const NOT_SUPPORTED: [&str; 18] = [
    "/process/apparmorProfile",
    "/process/selinuxLabel",
    "/process/scheduler",
    "/process/ioPriority",
    "/process/execCPUAffinity",
    "/linux/intelRdt",
    "/linux/memoryPolicy",
    "/linux/personality",
    "/linux/timeOffsets",
    "/linux/netDevices",
    "/linux/mountLabel",
    "/linux/resources/hugepageLimits",
    "/linux/resources/network",
    "/linux/resources/rdma",
    "/linux/resources/unified",
    "/linux/resources/memory/kernel",
    "/linux/resources/cpu/realtimeRuntime",
    "/uidMappings",
];

/// A bundle, read and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// What `create` needs from a bundle, in the chapters' terms.
#[derive(Debug)]
pub struct Translated {
    pub plan: Plan,
    pub last_steps: LastSteps,
    pub limits: Limits,
    pub place: Place,
    /// `linux.uidMappings` and `linux.gidMappings`, as /proc/PID/uid_map takes them.
    pub maps: Option<(String, String)>,
}

/// A value that is there: not null, not an empty string, list or object, not false.
fn present(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Refuse what `raw` asks that mini-runc does not honour: `raw` is config.json
/// (`base` ""), or a part of it (a process for `exec`: `base` "/process").
pub fn refuse_unsupported(raw: &Value, base: &str, said: &str) -> Result<()> {
    for field in NOT_SUPPORTED.iter().filter(|f| f.starts_with(base)) {
        if raw.pointer(&field[base.len()..]).is_some_and(present) {
            return Err(Failure::new(format!(
                "{said}{} is not supported by mini-runc",
                &field[1..].replace('/', ".")
            )));
        }
    }
    Ok(())
}

impl Bundle {
    // ANCHOR: load
    pub fn load(dir: &Path) -> Result<Bundle> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::new(format!(
                "JSON specification file {} not found",
                path.display()
            )),
            _ => Failure::new(format!("{}: {e}", path.display())),
        })?;
        let raw: Value =
            serde_json::from_str(&text).map_err(|e| Failure::new(format!("config.json: {e}")))?;
        refuse_unsupported(&raw, "", "config.json: ")?;
        let spec: Spec =
            serde_json::from_value(raw).map_err(|e| Failure::new(format!("config.json: {e}")))?;
        if !spec.version().starts_with("1.") {
            return Err(Failure::new(format!(
                "config.json: ociVersion {:?}: mini-runc follows the runtime spec 1.x",
                spec.version()
            )));
        }
        let root = spec.root().as_ref().map(|r| r.path().clone());
        let root = root.ok_or_else(|| Failure::new("config.json: root.path is missing"))?;
        let rootfs = dir.join(root);
        let rootfs = rootfs.canonicalize().map_err(|e| {
            Failure::new(format!("config.json: root.path {}: {e}", rootfs.display()))
        })?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            spec,
            rootfs,
        })
    }
    // ANCHOR_END: load

    pub fn annotations(&self) -> HashMap<String, String> {
        self.spec.annotations().clone().unwrap_or_default()
    }

    // ANCHOR: translate
    /// Into the chapters' terms, every value checked.
    pub fn translate(&self, id: &str) -> Result<Translated> {
        let linux = self.spec.linux().clone().unwrap_or_default();
        let (namespaces, joined) = namespaces(&linux)?;
        if joined.iter().any(|(ns, _)| *ns == Namespace::User) && linux.uid_mappings().is_some() {
            return Err(Failure::new(
                "config.json: linux.uidMappings: a joined user namespace has its maps already",
            ));
        }
        let process = (self.spec.process().clone())
            .ok_or_else(|| Failure::new("config.json: process is missing"))?;
        crate::runtime::lifecycle::check_process(&process, "config.json: process")?;
        let args = process.args().clone().unwrap_or_default();
        check_hooks(&self.spec)?;
        // A uts namespace made or joined (then the names are set there, as runc does).
        let uts = namespaces.contains(&Namespace::Uts)
            || joined.iter().any(|(ns, _)| *ns == Namespace::Uts);
        if (self.spec.hostname().is_some() || self.spec.domainname().is_some()) && !uts {
            return Err(Failure::new(
                "config.json: hostname and domainname need a uts namespace in linux.namespaces",
            ));
        }
        let request = Request {
            namespaces: namespaces.clone(),
            hostname: self.spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: self.spec.domainname().clone().filter(|d| !d.is_empty()),
            rootfs: Some(self.rootfs.clone()),
            command: args.clone(),
            ..Request::default()
        };
        let mut plan = plan(request, &Host::real())?;
        plan.mapping = None; // written from config.json's maps instead
        plan.join = joined;
        let v2 = ch02_namespaces::container_fs::host_is_cgroup_v2();
        plan.mounts = Some(
            (self.spec.mounts().iter().flatten().enumerate())
                .map(|(i, m)| {
                    mounts::translate(i, m, v2)
                        .map_err(|e| Failure::new(format!("config.json: {}", e.message())))
                })
                .collect::<Result<_>>()?,
        );
        plan.devices = devices_to_make(&linux)?;
        plan.extension.workdir = Some(process.cwd().clone());
        let last_steps = self.last_steps(&process, &linux, &namespaces)?;
        Ok(Translated {
            maps: maps(&linux, &namespaces)?,
            limits: limits(&linux)?,
            place: place(&linux, id)?,
            plan,
            last_steps,
        })
    }
    // ANCHOR_END: translate

    /// What the child does last, in its root: `process`'s settings, sysctl, masks.
    fn last_steps(
        &self,
        process: &oci_spec::runtime::Process,
        linux: &oci_spec::runtime::Linux,
        namespaces: &Namespaces,
    ) -> Result<LastSteps> {
        let readonly_root = self.spec.root().as_ref().and_then(|r| r.readonly());
        Ok(LastSteps {
            loopback: namespaces.contains(&Namespace::Net),
            sysctl: sysctl(linux, namespaces)?,
            rootfs_propagation: match linux.rootfs_propagation().as_deref() {
                None | Some("") => None,
                Some(word) => Some(mounts::propagation(word).ok_or_else(|| {
                    Failure::new(format!(
                        "config.json: linux.rootfsPropagation {word:?}: not a propagation"
                    ))
                })?),
            },
            masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            readonly_root: readonly_root.unwrap_or(false),
            process: process_steps(process, linux)?,
            create_container: (self.spec.hooks().as_ref())
                .and_then(|h| h.create_container().clone())
                .unwrap_or_default(),
            start_container: (self.spec.hooks().as_ref())
                .and_then(|h| h.start_container().clone())
                .unwrap_or_default(),
        })
    }
}

/// `process`, with the container's seccomp profile: for its first process and for
/// each one `exec` adds.
pub fn process_steps(
    process: &oci_spec::runtime::Process,
    linux: &oci_spec::runtime::Linux,
) -> Result<ProcessSteps> {
    let user = process.user();
    let seccomp = (linux.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()
        .map_err(|e| Failure::new(format!("config.json: {}", e.message())))?;
    Ok(ProcessSteps {
        oom_score_adj: process.oom_score_adj(),
        rlimits: rlimits(process)?,
        env: process.env().clone().unwrap_or_default(),
        user: (
            user.uid(),
            user.gid(),
            user.additional_gids().clone().unwrap_or_default(),
        ),
        umask: user.umask(),
        capabilities: capabilities(process)?,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp,
        terminal: process.terminal().unwrap_or(false).then(|| {
            let size = process.console_size().map(|s| nix::pty::Winsize {
                ws_row: s.height() as u16,
                ws_col: s.width() as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            });
            (size, -1)
        }),
        program: (process.args().iter().flatten().next().cloned()).unwrap_or_default(),
    })
}

/// `linux.devices`: nodes made in the container (whether it may use them is
/// `resources.devices`' to say). Those every container gets are made anyway.
fn devices_to_make(linux: &oci_spec::runtime::Linux) -> Result<Vec<DeviceNode>> {
    use oci_spec::runtime::LinuxDeviceType as Type;
    let standard = |path: &Path| {
        (ch02_namespaces::container_fs::DEVICES.iter())
            .any(|(name, ..)| path == Path::new("/dev").join(name))
    };
    (linux.devices().iter().flatten().enumerate())
        .filter(|(_, d)| !standard(d.path()))
        .map(|(i, d)| {
            let bad = |why: &str| {
                Failure::new(format!(
                    "config.json: linux.devices[{i}] {}: {why}",
                    d.path().display()
                ))
            };
            if !d.path().is_absolute()
                || d.path()
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(bad("must be an absolute path, without '..'"));
            }
            let block = match d.typ() {
                Type::C | Type::U => false,
                Type::B => true,
                Type::A | Type::P => return Err(bad("only c, u and b nodes can be made")),
            };
            let number = |n: i64| u64::try_from(n).map_err(|_| bad("a negative device number"));
            Ok(DeviceNode {
                // In a user namespace, where mknod is refused, the host's node is bound.
                host: d.path().clone(),
                path: d.path().clone(),
                block,
                major: number(d.major())?,
                minor: number(d.minor())?,
                mode: d.file_mode().unwrap_or(0o666),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            })
        })
        .collect()
}

/// Every hook's path is absolute (the spec's rule: no PATH lookup).
#[allow(deprecated)] // prestart: still what engines send
fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    let lists = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (field, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(Failure::new(format!(
                    "config.json: hooks.{field}[{i}].path {:?}: must be an absolute path",
                    hook.path()
                )));
            }
        }
    }
    Ok(())
}

/// `linux.namespaces`: each type once, made new, or joined when it has a `path`; a
/// type not listed is the runtime's own.
fn namespaces(linux: &oci_spec::runtime::Linux) -> Result<(Namespaces, Vec<(Namespace, PathBuf)>)> {
    let (mut new, mut joined) = (Namespaces::new(), vec![]);
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let name = serde_json::to_value(ns.typ()).unwrap_or_default();
        let name = name.as_str().unwrap_or("?").to_string();
        let bad =
            |why: &str| Failure::new(format!("config.json: linux.namespaces[{i}] {name}: {why}"));
        let flag = ns.typ() as libc::c_int;
        let found = Namespace::ALL.into_iter().find(|n| n.flag() == flag);
        let found = found.ok_or_else(|| bad("not a namespace of this kernel"))?;
        if new.contains(&found) || joined.iter().any(|(n, _)| *n == found) {
            return Err(bad("listed twice"));
        }
        match ns.path() {
            None => {
                new.insert(found);
            }
            Some(path) if path.as_os_str().is_empty() => {
                new.insert(found);
            }
            Some(_) if found == Namespace::Mount => {
                return Err(bad(
                    "joining a mount namespace is not supported by mini-runc (the root is set up in a new one)",
                ));
            }
            Some(path) if !path.is_absolute() => return Err(bad("path must be absolute")),
            Some(path) => joined.push((found, path.clone())),
        }
    }
    Ok((new, joined))
}

/// `linux.uidMappings`/`gidMappings`: only with a user namespace, and needed by one.
fn maps(linux: &oci_spec::runtime::Linux, ns: &Namespaces) -> Result<Option<(String, String)>> {
    let lines = |list: &Option<Vec<LinuxIdMapping>>| {
        (list.iter().flatten())
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let (uid, gid) = (lines(linux.uid_mappings()), lines(linux.gid_mappings()));
    match (
        ns.contains(&Namespace::User),
        uid.is_empty() || gid.is_empty(),
    ) {
        (true, true) => Err(Failure::new(
            "config.json: a user namespace needs linux.uidMappings and linux.gidMappings",
        )),
        (true, false) => Ok(Some((uid, gid))),
        (false, _) if !uid.is_empty() || !gid.is_empty() => Err(Failure::new(
            "config.json: linux.uidMappings and gidMappings need a user namespace in linux.namespaces",
        )),
        (false, _) => Ok(None),
    }
}

/// `linux.sysctl`: only the namespaced ones, which cannot change the host's kernel.
fn sysctl(linux: &oci_spec::runtime::Linux, ns: &Namespaces) -> Result<Vec<(String, String)>> {
    let mut settings: Vec<_> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    settings.sort();
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    (settings.into_iter())
        .map(|(key, value)| {
            let namespace = match key.as_str() {
                k if ipc.contains(&k) || k.starts_with("fs.mqueue.") => Some(Namespace::Ipc),
                k if k.starts_with("net.") => Some(Namespace::Net),
                "kernel.hostname" | "kernel.domainname" => Some(Namespace::Uts),
                _ => None,
            };
            match namespace {
                Some(n) if ns.contains(&n) && !key.contains("..") => {
                    Ok((format!("/proc/sys/{}", key.replace('.', "/")), value))
                }
                Some(n) => Err(Failure::new(format!(
                    "config.json: linux.sysctl {key}: needs a {} namespace of the container's own",
                    n.option().trim_start_matches("--")
                ))),
                None => Err(Failure::new(format!(
                    "config.json: linux.sysctl {key}: not a namespaced setting (it would change the host's kernel)"
                ))),
            }
        })
        .collect()
}

/// `process.rlimits`: `RLIMIT_NOFILE` and the rest, soft at most hard.
fn rlimits(process: &oci_spec::runtime::Process) -> Result<Vec<(u32, u64, u64)>> {
    (process.rlimits().iter().flatten())
        .map(|r| {
            let name = serde_json::to_value(r.typ()).ok();
            let name = name
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let resource = RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
            let resource = resource.ok_or_else(|| {
                Failure::new(format!(
                    "config.json: process.rlimits: {name} is not supported"
                ))
            })?;
            if r.soft() > r.hard() {
                return Err(Failure::new(format!(
                    "config.json: process.rlimits {name}: soft {} is above hard {}",
                    r.soft(),
                    r.hard()
                )));
            }
            Ok((resource, r.soft(), r.hard()))
        })
        .collect()
}

const RLIMITS: [(&str, u32); 16] = [
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// `process.capabilities`: the five sets; none at all when it is absent.
fn capabilities(process: &oci_spec::runtime::Process) -> Result<[CapsHashSet; 5]> {
    let Some(c) = process.capabilities() else {
        return Ok(Default::default());
    };
    let set = |name: &str, list: &Option<oci_spec::runtime::Capabilities>| {
        (list.iter().flatten())
            .map(|cap| {
                let text = serde_json::to_value(cap).ok();
                let text = text
                    .as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                text.parse::<caps::Capability>().map_err(|_| {
                    Failure::new(format!(
                        "config.json: process.capabilities.{name}: {text} is not known here"
                    ))
                })
            })
            .collect::<Result<CapsHashSet>>()
    };
    Ok([
        set("bounding", c.bounding())?,
        set("effective", c.effective())?,
        set("inheritable", c.inheritable())?,
        set("permitted", c.permitted())?,
        set("ambient", c.ambient())?,
    ])
}

/// `linux.cgroupsPath` as chapter 03 places a group: absolute from each
/// hierarchy's root, or beneath our own group when relative; `/mini-runc/ID` when
/// absent. systemd's `slice:prefix:name` form is another driver's.
fn place(linux: &oci_spec::runtime::Linux, id: &str) -> Result<Place> {
    let path = (linux.cgroups_path().as_ref()).map(|p| p.to_string_lossy().to_string());
    let path = path.unwrap_or_else(|| format!("/mini-runc/{id}"));
    let bad = |why: &str| Failure::new(format!("config.json: linux.cgroupsPath {path:?}: {why}"));
    if path.contains(':') {
        return Err(bad(
            "slice:prefix:name is for the systemd cgroup driver; mini-runc drives cgroupfs (give a path such as /mini-runc/ID)",
        ));
    }
    let p = Path::new(&path);
    let leaf = p
        .file_name()
        .and_then(|l| l.to_str())
        .ok_or_else(|| bad("names no group"))?;
    let parent = match p.parent().map(|p| p.to_string_lossy().to_string()) {
        Some(parent) if !parent.is_empty() => parent,
        _ if path.starts_with('/') => "/".to_string(),
        _ => ".".to_string(),
    };
    Place::new(&parent, leaf).map_err(|_| bad("use plain names, no '..'"))
}

// ANCHOR: limits
/// `linux.resources` as chapter 03's limits (-1 and 0: no limit, as runc reads them).
fn limits(linux: &oci_spec::runtime::Linux) -> Result<Limits> {
    let mut limits = Limits::default();
    let Some(r) = linux.resources() else {
        return Ok(limits);
    };
    let positive = |v: Option<i64>| v.filter(|v| *v > 0).map(|v| v as u64);
    if let Some(m) = r.memory() {
        limits.memory = positive(m.limit());
        limits.memory_swap = positive(m.swap());
        for (name, set) in [
            ("reservation", m.reservation().is_some()),
            ("kernelTCP", m.kernel_tcp().is_some()),
            ("swappiness", m.swappiness().is_some()),
            ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ] {
            if set {
                return Err(Failure::new(format!(
                    "config.json: linux.resources.memory.{name} is not supported by mini-runc"
                )));
            }
        }
    }
    if let Some(cpu) = r.cpu() {
        let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
        limits.cpus = positive(cpu.quota()).map(|q| q as f64 / period as f64);
        // cgroup v1's shares (2..262144, default 1024) on v2's weight (1..10000), as runc maps them.
        limits.cpu_weight = cpu
            .shares()
            .filter(|s| *s > 0)
            .map(|s| 1 + ((s.max(2) - 2) * 9999) / 262142);
        limits.cpuset = cpu.cpus().clone().filter(|c| !c.is_empty());
        if cpu.mems().as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(Failure::new(
                "config.json: linux.resources.cpu.mems is not supported by mini-runc",
            ));
        }
    }
    limits.pids = r.pids().as_ref().and_then(|p| positive(Some(p.limit())));
    limits.devices = devices(r.devices())?;
    if let Some(io) = r.block_io() {
        block_io(io, &mut limits)?;
    }
    Ok(limits)
}
// ANCHOR_END: limits

/// `linux.resources.blockIO`: the throttles (chapter 03 names a disk by its node:
/// the kernel's name for MAJOR:MINOR, from /sys/dev/block). Weights are refused.
fn block_io(io: &oci_spec::runtime::LinuxBlockIo, limits: &mut Limits) -> Result<()> {
    let weights = io.weight().is_some()
        || io.leaf_weight().is_some()
        || io.weight_device().as_ref().is_some_and(|w| !w.is_empty());
    if weights {
        return Err(Failure::new(
            "config.json: linux.resources.blockIO weights are not supported by mini-runc (throttles are)",
        ));
    }
    let throttles = |field: &str, list: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
        (list.iter().flatten().enumerate())
            .map(|(i, t)| {
                let number = format!("{}:{}", t.major(), t.minor());
                let disk = std::fs::read_link(format!("/sys/dev/block/{number}")).ok();
                let name = disk.as_ref().and_then(|d| d.file_name()).ok_or_else(|| {
                    Failure::new(format!(
                        "config.json: linux.resources.blockIO.{field}[{i}]: no block device {number} here"
                    ))
                })?;
                Ok(ThrottleDevice {
                    path: format!("/dev/{}", name.to_string_lossy()),
                    rate: t.rate(),
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    limits.device_read_bps = throttles("throttleReadBpsDevice", io.throttle_read_bps_device())?;
    limits.device_write_bps = throttles("throttleWriteBpsDevice", io.throttle_write_bps_device())?;
    limits.device_read_iops = throttles("throttleReadIOPSDevice", io.throttle_read_iops_device())?;
    limits.device_write_iops =
        throttles("throttleWriteIOPSDevice", io.throttle_write_iops_device())?;
    Ok(())
}

/// `linux.resources.devices`, evaluated in order (the last rule that matches
/// wins). Chapter 03 keeps an allow-list: a list that starts by denying everything,
/// then only allows, is one; anything else is refused. As runc does, the nodes every
/// container gets (null, zero, tty, ptmx, /dev/pts...) and mknod of any node are
/// allowed on top: the container's /dev is made inside its group.
fn devices(
    rules: &Option<Vec<oci_spec::runtime::LinuxDeviceCgroup>>,
) -> Result<Option<Vec<DeviceRule>>> {
    let Some(rules) = rules.as_ref().filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let deny_all = |d: &oci_spec::runtime::LinuxDeviceCgroup| {
        !d.allow()
            && d.major().is_none()
            && d.minor().is_none()
            && d.typ().is_none_or(|t| t.as_str() == "a")
    };
    if !deny_all(&rules[0]) {
        return Err(Failure::new(
            "config.json: linux.resources.devices: mini-runc keeps an allow-list: the first rule must deny all ({\"allow\": false, \"access\": \"rwm\"})",
        ));
    }
    (rules.iter().enumerate().skip(1))
        .map(|(i, d)| {
            if !d.allow() {
                return Err(Failure::new(format!(
                    "config.json: linux.resources.devices[{i}]: only the first rule may deny"
                )));
            }
            let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
            let kind = d.typ().map_or("a".to_string(), |t| t.as_str().to_string());
            let access = d.access().clone().unwrap_or_else(|| "rwm".into());
            let text = format!(
                "{kind} {}:{} {access}",
                number(d.major()),
                number(d.minor())
            );
            DeviceRule::parse(&text).map_err(|e| {
                Failure::new(format!("config.json: linux.resources.devices[{i}]: {e}"))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|allowed| Some([ch03_cgroups::devices::docker_defaults(), allowed].concat()))
}
