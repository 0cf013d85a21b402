//! A container: an image, a writable layer, a configuration (what `create` was
//! told) and a state (what happened since), each in its own JSON file.

use std::path::PathBuf;

use ch02_namespaces::plan::DeviceNode;
use ch03_cgroups::devices::DeviceRule;
use ch03_cgroups::limits::Limits;
use ch05_network::args::{Mode, Publish};
use labkit::failure::EXIT_FAILURE;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::store::{Store, read_json, write_json};

/// What `create` (or `run`) was told, and what came from the image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub image: String,
    pub image_id: String,
    pub hostname: String,
    /// The final command: entrypoint + cmd.
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `--network`, as typed (`container:NAME` is found at each start).
    pub network: Mode,
    pub publish: Vec<Publish>,
    /// Chapter 03's limits, parsed once by `create`, under Docker's names.
    #[serde(flatten)]
    pub limits: Limits,
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs DIR`s.
    pub tmpfs: Vec<String>,
    /// `--read-only`: the root is mounted read-only.
    pub read_only: bool,
    pub user: Option<(u32, u32)>,
    /// `-i`: the container reads our stdin.
    pub interactive: bool,
    /// `-t`: a pseudo-terminal.
    pub tty: bool,
    pub auto_remove: bool,
    pub init: bool,
    /// `--security-opt`s, as given (`seccomp=unconfined`).
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// The cgroup the container's group goes into (`--cgroup-parent`), in every
    /// hierarchy: `/mini-docker` unless told.
    #[serde(default = "default_cgroup_parent")]
    pub cgroup_parent: String,
    /// `private` (a cgroup namespace of its own: Docker's default on cgroup v2) or
    /// `host`.
    #[serde(default)]
    pub cgroupns: String,
    /// `--device`s: host devices made in the container and allowed in its cgroup.
    #[serde(default)]
    pub devices: Vec<DeviceMapping>,
    /// `--cap-add`s and `--cap-drop`s, as given.
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--runtime`: the OCI runtime the monitor drives (an absolute path), or
    /// empty: the monitor makes the container itself.
    #[serde(default)]
    pub runtime: String,
    /// `--restart`: what the monitor does when the container ends.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// `--label`s (`compose` finds its containers by theirs).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The user-defined network (`--network NAME`), or empty: `network` says.
    #[serde(default)]
    pub network_name: String,
    /// More user-defined networks (`network connect`): an interface on each.
    #[serde(default)]
    pub extra_networks: Vec<Endpoint>,
    /// `--network-alias`: other names it is found by on that network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: its address on its bridge.
    #[serde(default)]
    pub ip: Option<String>,
    /// `--add-host HOST:IP`s, `--dns` servers, `--dns-search` domains.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `-P`: the image's exposed ports (`80/tcp`), each published on a free host
    /// port at each start.
    #[serde(default)]
    pub publish_all: Vec<String>,
    /// The health check (`--health-cmd` over the image's `HEALTHCHECK`), if any.
    #[serde(default)]
    pub healthcheck: Option<crate::health::Check>,
}

// ANCHOR: restart_policy
/// `--restart no|on-failure[:N]|always|unless-stopped`, under Docker's names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `no` (or empty), `on-failure`, `always`, `unless-stopped`.
    pub name: String,
    /// For `on-failure:N`: at most N restarts (0: no limit).
    pub maximum_retry_count: u32,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Result<RestartPolicy> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let maximum_retry_count = match (name, count) {
            (_, None) => 0,
            ("on-failure", Some(n)) => n.parse().map_err(|_| {
                Failure::new(format!(
                    "invalid restart policy format: maximum retry count must be a number: {n}"
                ))
            })?,
            (name, Some(_)) => {
                return Err(Failure::new(format!(
                    "invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"
                )));
            }
        };
        match name {
            "no" | "" | "on-failure" | "always" | "unless-stopped" => Ok(RestartPolicy {
                name: name.to_string(),
                maximum_retry_count,
            }),
            other => Err(Failure::new(format!(
                "invalid restart policy format: unknown policy {other:?} (use no, on-failure[:N], always or unless-stopped)"
            ))),
        }
    }

    pub fn restarts(&self) -> bool {
        !matches!(self.name.as_str(), "" | "no")
    }
}
// ANCHOR_END: restart_policy

/// `--label KEY=VALUE` flags (of containers, volumes, networks) as a map; a label
/// without `=` has an empty value.
pub fn labels(flags: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    (flags.iter())
        .map(|l| match l.split_once('=').unwrap_or((l, "")) {
            ("", _) => Err(Failure::new(format!("invalid label {l:?}: use KEY=VALUE"))),
            (k, v) => Ok((k.to_string(), v.to_string())),
        })
        .collect()
}

/// A user-defined network a container was connected to, beyond its first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
}

/// A running container's interface on one of its extra networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plugged {
    pub interface: String,
    #[serde(rename = "IPAddress")]
    pub ip: String,
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, as `docker inspect` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of `r`, `w`, `m`.
    pub cgroup_permissions: String,
}

impl DeviceMapping {
    /// The host's node as it is now (numbers may change between boots: read at
    /// each start, as Docker does).
    pub fn node(&self) -> Result<DeviceNode> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let host = &self.path_on_host;
        let gathering = |why: String| {
            Failure::new(format!(
                "error gathering device information while adding custom device \"{host}\": {why}"
            ))
        };
        let meta =
            std::fs::metadata(host).map_err(|e| gathering(labkit::failure::describe_io(&e)))?;
        let kind = meta.file_type();
        if !kind.is_block_device() && !kind.is_char_device() {
            return Err(gathering("not a device node".into()));
        }
        Ok(DeviceNode {
            host: host.into(),
            path: self.path_in_container.clone().into(),
            block: kind.is_block_device(),
            major: nix::sys::stat::major(meta.rdev()),
            minor: nix::sys::stat::minor(meta.rdev()),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }
}

/// Where containers' groups go unless `--cgroup-parent` says otherwise: a group of
/// mini-docker's own at the top of each hierarchy, as Docker's `/docker`.
pub const DEFAULT_CGROUP_PARENT: &str = "/mini-docker";

fn default_cgroup_parent() -> String {
    DEFAULT_CGROUP_PARENT.to_string()
}

impl Config {
    /// The container's group: `/mini-docker/ID` (or beneath `--cgroup-parent`).
    pub fn cgroup(&self, id: &str) -> Result<ch03_cgroups::place::Place> {
        ch03_cgroups::place::Place::new(&self.cgroup_parent, id).map_err(|_| {
            Failure::new(format!(
                "--cgroup-parent {}: not a cgroup path",
                self.cgroup_parent
            ))
        })
    }

    /// The limits chapter 03 writes into the container's group; `devices` (the
    /// `--device` nodes) are allowed on top of Docker's default list.
    pub fn limits_with(&self, devices: &[DeviceNode]) -> Limits {
        let mut allowed = ch03_cgroups::devices::docker_defaults();
        for (node, mapping) in devices.iter().zip(&self.devices) {
            allowed.push(DeviceRule {
                kind: if node.block { 'b' } else { 'c' },
                major: Some(node.major as u32),
                minor: Some(node.minor as u32),
                access: mapping.cgroup_permissions.clone(),
            });
        }
        Limits {
            devices: Some(allowed),
            ..self.limits.clone()
        }
    }

    /// Whether the container gets a cgroup namespace of its own.
    pub fn private_cgroupns(&self) -> bool {
        self.cgroupns == "private"
    }

    /// Whether the container's processes get the default seccomp profile.
    pub fn seccomp(&self) -> bool {
        !self.security_opt.iter().any(|o| o == UNCONFINED)
    }

    /// Whether /proc and /sys are masked (not with `systempaths=unconfined`).
    pub fn masks_paths(&self) -> bool {
        !self
            .security_opt
            .iter()
            .any(|o| o == SYSTEMPATHS_UNCONFINED)
    }
}

/// The `--security-opt` that turns seccomp off.
pub const UNCONFINED: &str = "seccomp=unconfined";

/// The `--security-opt` that leaves /proc and /sys as the kernel shows them.
pub const SYSTEMPATHS_UNCONFINED: &str = "systempaths=unconfined";

// ANCHOR: mount_spec
/// A mount of `-v`, `--mount` or `--volumes-from`, as `docker inspect` lists it: a
/// host path bound in (`bind`), a volume's directory bound in (`volume`), or an
/// empty tmpfs (`tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    #[serde(default = "bind")]
    pub r#type: String,
    /// The volume's name (a `volume` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    /// The options as given (`ro`, `nocopy`, ...).
    #[serde(default)]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// A tmpfs's `size=` and `mode=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs_options: Vec<String>,
}
// ANCHOR_END: mount_spec

fn bind() -> String {
    "bind".into()
}

impl MountSpec {
    /// The volume's name, for a volume.
    pub fn volume(&self) -> Option<&str> {
        (self.r#type == "volume").then_some(self.name.as_str())
    }

    /// Whether an empty volume is filled from the image (not with `nocopy`).
    pub fn copy_up(&self) -> bool {
        !self.mode.split(',').any(|o| o == "nocopy")
    }
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    /// Ended, and waiting for its restart (`--restart`).
    Restarting,
    Exited,
    Dead,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// What happened: the fields of `docker inspect`'s `State`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub pid: i32,
    /// The monitor that waits for the container (its parent).
    pub monitor_pid: i32,
    /// When each of the two started (`/proc/PID/stat`): a PID alone may name another
    /// process later (reused after they end, or after a reboot), the pair never does.
    #[serde(default)]
    pub start_time: u64,
    #[serde(default)]
    pub monitor_start_time: u64,
    pub exit_code: i32,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// The address on the bridge, when it has one.
    pub ip_address: String,
    /// Its interface on each of its `extra_networks`, while it runs.
    #[serde(default)]
    pub plugged: std::collections::BTreeMap<String, Plugged>,
    /// The ports published by this run (`-p`, and `-P`'s, chosen at the start).
    #[serde(default)]
    pub ports: Vec<Publish>,
    /// How long each step of the last start took, in the monitor.
    pub start_timings: Vec<Phase>,
    /// Between an end and the restart the policy asked for.
    #[serde(default)]
    pub restarting: bool,
    /// How many times the monitor restarted it since the last `start`.
    #[serde(default)]
    pub restart_count: u32,
}

/// One step of a start and its duration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Phase {
    pub step: String,
    pub ms: f64,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub dir: PathBuf,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    id: String,
    name: String,
    created: String,
}

impl Container {
    pub fn new(store: &Store, id: String, name: String, created: String) -> Container {
        Container {
            dir: store.container(&id),
            id,
            name,
            created,
        }
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    pub fn config(&self) -> Result<Config> {
        read_json(&self.dir.join("config.json"))
    }

    pub fn state(&self) -> Result<State> {
        read_json(&self.dir.join("state.json"))
    }

    pub fn save_config(&self, config: &Config) -> Result<()> {
        write_json(
            &self.dir.join("meta.json"),
            &Meta {
                id: self.id.clone(),
                name: self.name.clone(),
                created: self.created.clone(),
            },
        )?;
        write_json(&self.dir.join("config.json"), config)
    }

    pub fn save_state(&self, state: &State) -> Result<()> {
        write_json(&self.dir.join("state.json"), state)
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("json.log")
    }

    /// Made by `stop` and `kill` (Docker's HasBeenManuallyStopped): the restart
    /// policy rests until the next `start`.
    pub fn stopped_by_hand(&self) -> PathBuf {
        self.dir.join("stopped-by-hand")
    }
}

/// Every container, oldest first (as read from their `meta.json`).
pub fn list(store: &Store) -> Vec<Container> {
    let mut all: Vec<Container> = store
        .ids("containers")
        .into_iter()
        .filter_map(|id| {
            let meta: Meta = read_json(&store.container(&id).join("meta.json")).ok()?;
            Some(Container::new(store, meta.id, meta.name, meta.created))
        })
        .collect();
    all.sort_by(|a, b| a.created.cmp(&b.created));
    all
}

/// By name, full id, or a unique id prefix, as Docker resolves them.
// ANCHOR: find
/// Docker's rule for names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (ids are names too): one
/// plain path component, never `..` or a `/`.
pub fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn find(store: &Store, reference: &str) -> Result<Container> {
    // A name or (a prefix of) an id, nothing else: a reference is never a path
    // (`rm -f ../../somewhere` would remove a directory outside the store).
    // Not finding one is 1 whatever the verb, as Docker's "No such container".
    let not_found = |why: String| Err(Failure::new(why).exit_code(EXIT_FAILURE));
    if !is_name(reference) {
        return not_found(format!("No such container: {reference}"));
    }
    // ANCHOR_END: find
    let all = list(store);
    if let Some(c) = all
        .iter()
        .find(|c| c.name == reference || c.id == reference)
    {
        return Ok(c.clone());
    }
    let matches: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(reference)).collect();
    match matches[..] {
        [one] => Ok(one.clone()),
        [] => {
            // A container whose meta.json is damaged is still found by its directory.
            let dir = store.container(reference);
            if !reference.is_empty() && dir.is_dir() && reference.len() == 64 {
                return Ok(Container::new(
                    store,
                    reference.into(),
                    String::new(),
                    String::new(),
                ));
            }
            not_found(format!("No such container: {reference}"))
        }
        _ => not_found(format!(
            "{reference} matches several containers: give more of the id"
        )),
    }
}
