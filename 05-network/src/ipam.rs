//! IP address management: which container has which address of a bridge's subnet,
//! and which host ports are published.
//!
//! The kernel keeps no such list, so we do, the way CNI's `host-local` plugin does:
//! one small file per address in use (a *lease*), created under a lock, removed when
//! the container ends. A lease names the process that holds it; a lease whose holder
//! is gone (killed with SIGKILL, say) is stale and taken back.
//!
//! The state lives under `/run/ch05-network/net-INODE/`, INODE being the network
//! namespace's: bridges, addresses and ports belong to one network namespace.

use std::fs::{self, File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::Flock;
use nix::unistd::Pid;

use crate::args::Publish;

pub const STATE_ROOT: &str = "/run/ch05-network";

/// The state of the network namespace we are in.
#[derive(Debug, Clone)]
pub struct State {
    pub dir: PathBuf,
}

impl State {
    pub fn here() -> Result<Self> {
        let ns = Path::new("/proc/self/ns/net");
        let inode = fs::metadata(ns).context(|| ns.display().to_string())?.ino();
        Ok(State {
            dir: Path::new(STATE_ROOT).join(format!("net-{inode}")),
        })
    }

    pub fn bridge_dir(&self, bridge: &str) -> PathBuf {
        self.dir.join(bridge)
    }

    /// The bridges we have state for.
    pub fn bridges(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // ANCHOR: lock
    /// One lock for the whole namespace: allocations take a few microseconds, and
    /// holding it serialises every `run` that starts at the same moment.
    pub fn lock(&self) -> Result<Flock<File>> {
        if !self.dir.exists() {
            // A namespace's first use: a moment to forget namespaces that are gone.
            forget_vanished();
        }
        fs::create_dir_all(&self.dir).context(|| self.dir.display().to_string())?;
        labkit::lock::lock_dir(&self.dir)
    }
    // ANCHOR_END: lock

    /// Forget a bridge; forget the namespace when it has no bridge left.
    pub fn remove_bridge(&self, bridge: &str) {
        let _ = fs::remove_dir_all(self.bridge_dir(bridge));
        self.tidy();
    }

    /// Remove the namespace's directory (and lock) if it holds no bridge.
    pub fn tidy(&self) {
        if self.bridges().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ANCHOR: vanished
/// State of network namespaces that are gone: their last process ended (killed,
/// say) before anyone took their bridges down. Nothing can use it any more, so it
/// never blocks anything: it is removed.
pub fn forget_vanished() {
    if !sees_every_holder() {
        narrate::note(
            "not looking for vanished namespaces' state: this process is in a PID or mount \
             namespace of its own, where a namespace still in use may look gone",
        );
        return;
    }
    let alive = live_network_namespaces();
    for entry in fs::read_dir(STATE_ROOT).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let inode = name
            .strip_prefix("net-")
            .and_then(|i| i.parse::<u64>().ok());
        if inode.is_some_and(|i| !alive.contains(&i)) {
            narrate::note(format!(
                "forgetting {}: its network namespace is gone",
                entry.path().display()
            ));
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `live_network_namespaces` sees everything that can hold a namespace: every
/// process (we are in the host's PID namespace, whose inode the kernel fixes at
/// 0xEFFFFFFC) and every bind mount (we share init's mount namespace, where init's
/// is ours to read: some hosts keep PID 1 out of reach even of root).
fn sees_every_holder() -> bool {
    const HOST_PID_NAMESPACE: u64 = 0xEFFF_FFFC;
    let inode = |path: &str| fs::metadata(path).map(|m| m.ino()).ok();
    let init_mounts = inode("/proc/1/ns/mnt");
    inode("/proc/self/ns/pid") == Some(HOST_PID_NAMESPACE)
        && init_mounts.is_none_or(|init| inode("/proc/self/ns/mnt") == Some(init))
}

/// The inodes of every network namespace something still holds: a thread in it
/// (each thread has its own, after setns), or a bind mount of it (`ip netns add`).
pub fn live_network_namespaces() -> std::collections::HashSet<u64> {
    let mut alive = std::collections::HashSet::new();
    for process in fs::read_dir("/proc").into_iter().flatten().flatten() {
        for task in fs::read_dir(process.path().join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(meta) = fs::metadata(task.path().join("ns/net")) {
                alive.insert(meta.ino());
            }
        }
    }
    // nsfs bind mounts show "net:[INODE]" as their root.
    for line in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if let Some(inode) = line
            .split(' ')
            .nth(3)
            .and_then(|root| root.strip_prefix("net:["))
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse().ok())
        {
            alive.insert(inode);
        }
    }
    alive
}
// ANCHOR_END: vanished

/// An address (and the host ports) held by one container; released when dropped.
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub veth: String,
    /// The `run` that took it.
    pub holder: Pid,
    /// The container's first process, once it exists.
    pub container: Option<Pid>,
    pub ports: Vec<Publish>,
    path: PathBuf,
}

/// The name of a container's end of the veth pair on the host: `veth` and the
/// address in hex (10.77.0.2 = 0a4d0002), unique while the address is.
pub fn veth_name(ip: Ipv4Addr) -> String {
    format!("veth{:08x}", u32::from(ip))
}

impl Lease {
    fn read(path: &Path) -> Option<Lease> {
        let text = fs::read_to_string(path).ok()?;
        let ip: Ipv4Addr = path.file_name()?.to_str()?.parse().ok()?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        Some(Lease {
            ip,
            veth: veth_name(ip),
            holder: Pid::from_raw(field("pid").parse().ok()?),
            container: field("container").parse().ok().map(Pid::from_raw),
            ports: field("ports")
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect(),
            path: PathBuf::new(), // a lease read back is never released by dropping it
        })
    }

    /// Held while its `run` or its container lives: a `run` killed with SIGKILL
    /// leaves a container that still uses the address.
    fn is_live(&self) -> bool {
        alive(self.holder) || self.container.is_some_and(alive)
    }

    fn write(&self) -> Result<()> {
        let ports: Vec<String> = self.ports.iter().map(Publish::to_string).collect();
        let container = self.container.map(|p| p.to_string()).unwrap_or_default();
        fs::write(
            &self.path,
            format!(
                "pid={}\ncontainer={container}\nports={}\n",
                self.holder,
                ports.join(",")
            ),
        )
        .context(|| self.path.display().to_string())
    }

    /// Keep the lease when this value goes: it is then its holder's for as long as
    /// that process lives (a second interface, whose holder is the container).
    pub fn keep(mut self) {
        self.path = PathBuf::new();
    }

    /// Note the container's process in the lease.
    pub fn record_container(&mut self, pid: Pid) -> Result<()> {
        self.container = Some(pid);
        self.write()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() && fs::remove_file(&self.path).is_ok() {
            narrate::step(
                format!("unlink({:?})", self.path),
                format!("rm {}   # release {}", self.path.display(), self.ip),
            );
        }
    }
}

/// Give back the address `ip` of `bridge` (its lease and its files).
pub fn release(state: &State, bridge: &str, ip: Ipv4Addr) {
    let _ = fs::remove_file(state.bridge_dir(bridge).join("leases").join(ip.to_string()));
    let _ = fs::remove_dir_all(files_dir(state, bridge, ip));
}

/// Where a container's /etc files live while it holds `ip`.
pub fn files_dir(state: &State, bridge: &str, ip: Ipv4Addr) -> PathBuf {
    state.bridge_dir(bridge).join("etc").join(ip.to_string())
}

/// Is `pid` a running process? A zombie (dead, not yet reaped by its parent) is not.
fn alive(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // pid (comm) STATE ...: comm may hold spaces and parentheses, so look after the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// The live leases of a bridge, by address; stale ones are removed on the way.
pub fn leases(state: &State, bridge: &str) -> Vec<Lease> {
    take_back_stale(state, bridge).0
}

/// The live leases, and the stale ones, which are removed: their holders are gone.
fn take_back_stale(state: &State, bridge: &str) -> (Vec<Lease>, Vec<Lease>) {
    let (mut live, stale): (Vec<Lease>, Vec<Lease>) =
        fs::read_dir(state.bridge_dir(bridge).join("leases"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Lease::read(&entry.path()))
            .partition(Lease::is_live);
    for lease in &stale {
        narrate::note(format!(
            "{} was held by process {}, which is gone: taken back",
            lease.ip, lease.holder
        ));
        let _ = fs::remove_file(
            state
                .bridge_dir(bridge)
                .join("leases")
                .join(lease.ip.to_string()),
        );
        let _ = fs::remove_dir_all(files_dir(state, bridge, lease.ip));
    }
    live.sort_by_key(|l| l.ip);
    (live, stale)
}

// ANCHOR: allocate
/// Take an address of `subnet` for process `holder` (the requested one, or the next
/// free one after the last given out, round robin, as CNI's host-local does: a
/// released address is not handed out again at once, while other hosts may still
/// have it in their ARP caches), and record the host ports it publishes.
/// Also returns the stale leases it took back, whose rules the caller removes.
pub fn allocate(
    state: &State,
    bridge: &str,
    (subnet, gateway): (Ipv4Net, Ipv4Addr),
    requested: Option<Ipv4Addr>,
    ports: &[Publish],
    holder: Pid,
) -> Result<(Lease, Vec<Lease>)> {
    let _locked = state.lock()?;
    let dir = state.bridge_dir(bridge).join("leases");
    fs::create_dir_all(&dir).context(|| dir.display().to_string())?;
    let (live, stale) = take_back_stale(state, bridge);
    check_ports_free(state, ports)?;
    let taken: Vec<Ipv4Addr> = live.iter().map(|l| l.ip).collect();
    let ip = match requested {
        Some(ip) if taken.contains(&ip) => {
            return Err(Failure::new(format!(
                "--ip: {ip} is already in use on {bridge}; see: ch05-network show"
            )));
        }
        Some(ip) => ip,
        None => next_free(state, bridge, (subnet, gateway), &taken)?,
    };
    let path = dir.join(ip.to_string());
    narrate::step(
        format!("open({path:?}, O_CREAT|O_EXCL)"),
        format!("echo pid={holder} > {}   # lease {ip}", path.display()),
    );
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .context(|| path.display().to_string())?;
    let lease = Lease {
        ip,
        veth: veth_name(ip),
        holder,
        container: None,
        ports: ports.to_vec(),
        path,
    };
    lease.write()?;
    let last = state.bridge_dir(bridge).join("last");
    fs::write(&last, ip.to_string()).context(|| last.display().to_string())?;
    Ok((lease, stale))
}
// ANCHOR_END: allocate

fn next_free(
    state: &State,
    bridge: &str,
    (subnet, gateway): (Ipv4Net, Ipv4Addr),
    taken: &[Ipv4Addr],
) -> Result<Ipv4Addr> {
    let usable: Vec<Ipv4Addr> = subnet.hosts().filter(|ip| *ip != gateway).collect();
    let last: Option<Ipv4Addr> = fs::read_to_string(state.bridge_dir(bridge).join("last"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let start = last
        .and_then(|l| usable.iter().position(|ip| *ip == l))
        .map_or(0, |i| i + 1);
    (0..usable.len())
        .map(|i| usable[(start + i) % usable.len()])
        .find(|ip| !taken.contains(ip))
        .ok_or_else(|| {
            Failure::new(format!(
                "no free address left in {subnet} on {bridge}: {} containers hold them all",
                taken.len()
            ))
        })
}

/// A host port can be published once per network namespace and protocol.
fn check_ports_free(state: &State, ports: &[Publish]) -> Result<()> {
    for (i, wanted) in ports.iter().enumerate() {
        let clash = |p: &Publish| p.host_port == wanted.host_port && p.protocol == wanted.protocol;
        if ports[..i].iter().any(clash) {
            return Err(Failure::new(format!(
                "-p {wanted}: host port {}/{} is given twice",
                wanted.host_port, wanted.protocol
            )));
        }
        for bridge in state.bridges() {
            if let Some(holder) = leases(state, &bridge)
                .into_iter()
                .find(|l| l.ports.iter().any(clash))
            {
                return Err(Failure::new(format!(
                    "-p {wanted}: host port {}/{} is already published by the container {} \
                     (process {}) on {bridge}",
                    wanted.host_port, wanted.protocol, holder.ip, holder.holder
                )));
            }
        }
    }
    Ok(())
}
