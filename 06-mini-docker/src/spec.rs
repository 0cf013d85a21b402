//! A container's bundle: its `config.json`, what mini-docker hands an OCI runtime
//! (`--runtime runc`, `crun`, `mini-runc`). Everything `create` was told and the
//! monitor worked out (chapter 02's plan, chapter 03's limits and place, the
//! hardening Docker does by default) written in the runtime spec's words. The
//! root is the overlay the monitor mounted: the runtime only pivots into it.

use std::path::{Path, PathBuf};

use ch02_namespaces::namespace::Namespace;
use ch02_namespaces::plan::Plan;
use ch03_cgroups::limits::Limits;
use ch03_cgroups::place::Place;
use labkit::failure::Context;
use labkit::{Failure, Result};
use oci_spec::runtime::{Process, Spec};
use serde_json::{Value, json};

use crate::container::Config;
use crate::hardening::{MASKED, READ_ONLY};
use crate::lifecycle::ExecFlags;

/// Where a container's bundle is: `config.json` in its own directory.
pub fn bundle_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("bundle")
}

// ANCHOR: spec
/// config.json for the container `plan` describes.
pub fn spec(config: &Config, plan: &Plan, limits: &Limits, place: &Place) -> Result<Spec> {
    let rootfs = plan
        .rootfs
        .as_ref()
        .ok_or_else(|| Failure::new("no root"))?;
    let env = ch02_namespaces::environment::container_environment(
        &config.hostname,
        "/root",
        config.tty.then(|| "xterm".to_string()),
        &config.env,
    );
    let mut caps: Vec<String> = (crate::hardening::capabilities(config)?.iter())
        .map(|c| c.to_string())
        .collect();
    caps.sort();
    let (uid, gid) = config.user.unwrap_or((0, 0));
    // As Docker: a user other than root gets nothing effective or permitted (what
    // an exec by that user would keep); the bounding set is the same.
    let granted = if uid == 0 { caps.clone() } else { vec![] };
    let process = json!({
        "terminal": config.tty,
        "user": {"uid": uid, "gid": gid},
        "args": plan.command,
        "env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cwd": if config.working_dir.is_empty() { "/" } else { &config.working_dir },
        "capabilities": {"bounding": caps, "effective": granted, "permitted": granted},
        "noNewPrivileges": true,
    });
    let linux = json!({
        "namespaces": namespaces(plan),
        "cgroupsPath": format!("{}/{}", place.parent.trim_end_matches('/'), place.leaf),
        "resources": resources(limits),
        "devices": plan.devices.iter().map(|d| json!({
            "path": d.path, "type": if d.block { "b" } else { "c" },
            "major": d.major, "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid,
        })).collect::<Vec<_>>(),
        "maskedPaths": if config.masks_paths() { MASKED.to_vec() } else { vec![] },
        "readonlyPaths": if config.masks_paths() { READ_ONLY.to_vec() } else { vec![] },
        "seccomp": config.seccomp().then(crate::seccomp::docker_default),
    });
    let spec = json!({
        // The oldest version with every field written here: older runtimes (crun
        // 1.8) refuse a version they do not know.
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": config.read_only},
        "hostname": config.hostname,
        "process": process,
        "mounts": mounts(config, plan),
        "linux": linux,
    });
    serde_json::from_value(spec).map_err(|e| Failure::new(format!("config.json: {e}")))
}
// ANCHOR_END: spec

/// `exec`'s process: the container's (its environment, user, capabilities), with
/// the command and what `-e`, `-w`, `-u` and `-t` change.
pub fn exec_process(spec: &Spec, command: &[String], flags: &ExecFlags) -> Result<Process> {
    let mut process = (spec.process().clone())
        .ok_or_else(|| Failure::new("the container's config.json has no process"))?;
    process.set_args(Some(command.to_vec()));
    let mut env = process.env().clone().unwrap_or_default();
    let term = flags.tty.then(|| "TERM=xterm".to_string());
    for pair in flags.env.iter().chain(&term) {
        let key = pair.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(pair.clone());
    }
    process.set_env(Some(env));
    if let Some(dir) = &flags.workdir {
        if !dir.starts_with('/') {
            return Err(Failure::new(format!(
                "the working directory '{dir}' is invalid, it needs to be an absolute path"
            )));
        }
        process.set_cwd(dir.into());
    }
    if let Some((uid, gid)) = flags.user {
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        user.set_additional_gids(None);
        process.set_user(user);
        // As for the first process: root gets the bounding set, others nothing.
        if let Some(mut caps) = process.capabilities().clone() {
            let granted = caps.bounding().clone().filter(|_| uid == 0);
            caps.set_effective(granted.clone());
            caps.set_permitted(granted);
            process.set_capabilities(Some(caps));
        }
    }
    process.set_terminal(Some(flags.tty));
    Ok(process)
}

/// The plan's namespaces, and those it joins (another container's network).
fn namespaces(plan: &Plan) -> Vec<Value> {
    let name = |ns: Namespace| match ns {
        Namespace::Mount => "mount",
        Namespace::Net => "network",
        other => other.option().trim_start_matches("--"),
    };
    let mut list: Vec<Value> = (plan.namespaces.iter())
        .map(|ns| json!({"type": name(*ns)}))
        .collect();
    list.extend((plan.join.iter()).map(|(ns, path)| json!({"type": name(*ns), "path": path})));
    list
}

/// Docker's mounts for every container (as `runc spec` has them), then the
/// container's binds (`-v`, chapter 05's /etc files) and `--tmpfs` directories.
fn mounts(config: &Config, plan: &Plan) -> Vec<Value> {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    for bind in &plan.binds {
        let mode = if bind.read_only { "ro" } else { "rw" };
        mounts.push(
            json!({"destination": bind.target, "type": "bind", "source": bind.source,
                           "options": ["rbind", "rprivate", mode]}),
        );
    }
    for dir in &config.tmpfs {
        mounts.push(
            json!({"destination": dir, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777"]}),
        );
    }
    // `--mount type=tmpfs`: its size and mode, read-only if asked.
    for tmpfs in config.mounts.iter().filter(|m| m.r#type == "tmpfs") {
        let mut options = vec!["nosuid".to_string(), "nodev".into()];
        options.extend(tmpfs.tmpfs_options.iter().cloned());
        if !tmpfs.tmpfs_options.iter().any(|o| o.starts_with("mode=")) {
            options.push("mode=1777".into());
        }
        options.push(if tmpfs.rw { "rw" } else { "ro" }.into());
        mounts.push(json!({"destination": tmpfs.destination, "type": "tmpfs",
                           "source": "tmpfs", "options": options}));
    }
    mounts
}

/// Chapter 03's limits as `linux.resources`.
fn resources(limits: &Limits) -> Value {
    let number = |n: Option<u32>| n.map_or(Value::Null, Value::from);
    let devices: Vec<Value> = [json!({"allow": false, "access": "rwm"})]
        .into_iter()
        .chain(limits.devices.iter().flatten().map(|rule| {
            json!({"allow": true, "type": rule.kind.to_string(), "major": number(rule.major),
                   "minor": number(rule.minor), "access": rule.access})
        }))
        .collect();
    let throttle = |list: &[ch03_cgroups::limits::ThrottleDevice]| -> Vec<Value> {
        use std::os::unix::fs::MetadataExt;
        (list.iter())
            .filter_map(|t| {
                let rdev = std::fs::metadata(&t.path).ok()?.rdev();
                Some(
                    json!({"major": libc::major(rdev), "minor": libc::minor(rdev), "rate": t.rate}),
                )
            })
            .collect()
    };
    json!({
        "devices": devices,
        "memory": {"limit": limits.memory, "swap": limits.memory_swap},
        "cpu": {
            "quota": limits.cpus.map(|c| (c * ch03_cgroups::limits::CPU_PERIOD_US as f64) as i64),
            "period": limits.cpus.map(|_| ch03_cgroups::limits::CPU_PERIOD_US),
            "shares": limits.cpu_weight.map(ch03_cgroups::limits::weight_to_shares),
            "cpus": limits.cpuset,
        },
        "pids": limits.pids.map(|p| json!({"limit": p})),
        "blockIO": {
            "throttleReadBpsDevice": throttle(&limits.device_read_bps),
            "throttleWriteBpsDevice": throttle(&limits.device_write_bps),
            "throttleReadIOPSDevice": throttle(&limits.device_read_iops),
            "throttleWriteIOPSDevice": throttle(&limits.device_write_iops),
        },
    })
}

/// Write `spec` as `DIR/config.json` (whole, then renamed into place).
pub fn write(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).context(|| dir.display().to_string())?;
    let text = serde_json::to_string_pretty(spec).expect("a spec serializes");
    let tmp = dir.join("config.json.tmp");
    std::fs::write(&tmp, text + "\n").context(|| tmp.display().to_string())?;
    let path = dir.join("config.json");
    std::fs::rename(&tmp, &path).context(|| path.display().to_string())?;
    Ok(path)
}
