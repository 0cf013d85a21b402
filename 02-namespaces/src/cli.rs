//! The isolation flags of `run`, as a clap argument group, so that later chapters
//! (`ch03-cgroups run`) offer exactly the same ones.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::namespace::{Namespace, Namespaces};
use crate::plan::{Request, Via};

/// One flag per namespace type.
#[derive(Args, Debug, Default, Clone)]
pub struct NamespaceFlags {
    /// Hostname and domain name (UTS).
    #[arg(long)]
    pub uts: bool,
    /// Process IDs: the command is PID 1 and gets a fresh /proc.
    #[arg(long)]
    pub pid: bool,
    /// Mount points.
    #[arg(long)]
    pub mount: bool,
    /// System V IPC and POSIX message queues.
    #[arg(long)]
    pub ipc: bool,
    /// Network devices, addresses, routes, firewall (only `lo`, down).
    #[arg(long)]
    pub net: bool,
    /// User and group IDs: root inside can be anyone outside.
    #[arg(long)]
    pub user: bool,
    /// The cgroup root the process sees.
    #[arg(long)]
    pub cgroup: bool,
    /// CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets.
    #[arg(long)]
    pub time: bool,
    /// Every namespace type this kernel has.
    #[arg(long)]
    pub all: bool,
}

impl NamespaceFlags {
    pub fn chosen(&self) -> Namespaces {
        [
            (self.uts, Namespace::Uts),
            (self.pid, Namespace::Pid),
            (self.mount, Namespace::Mount),
            (self.ipc, Namespace::Ipc),
            (self.net, Namespace::Net),
            (self.user, Namespace::User),
            (self.cgroup, Namespace::Cgroup),
            (self.time, Namespace::Time),
        ]
        .into_iter()
        .filter_map(|(on, ns)| on.then_some(ns))
        .collect()
    }
}

/// Everything `run` takes besides the command: namespaces, names, the root.
#[derive(Args, Debug, Clone)]
pub struct IsolationArgs {
    #[command(flatten)]
    pub namespaces: NamespaceFlags,
    /// The hostname inside (implies --uts).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// The NIS domain name inside (implies --uts).
    #[arg(long, value_name = "NAME")]
    pub domainname: Option<String>,
    /// Make DIR the root: pivot_root, with /proc, /dev and /sys mounted (implies --mount).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Map the caller to root inside a user namespace (implies --user): rootless.
    #[arg(long)]
    pub map_root: bool,
    /// Run a tiny init as PID 1 that forwards signals and reaps orphans (implies --pid).
    #[arg(long)]
    pub init: bool,
    /// How to create the namespaces: clone(2) the child into them, or unshare(2) then fork.
    #[arg(long, value_enum, default_value = "clone")]
    pub via: ViaArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ViaArg {
    Clone,
    Unshare,
}

impl IsolationArgs {
    pub fn request(self, command: Vec<String>) -> Request {
        Request {
            namespaces: self.namespaces.chosen(),
            all: self.namespaces.all,
            hostname: self.hostname,
            domainname: self.domainname,
            rootfs: self.rootfs,
            map_root: self.map_root,
            init: self.init,
            via: match self.via {
                ViaArg::Clone => Via::Clone,
                ViaArg::Unshare => Via::Unshare,
            },
            command,
        }
    }
}
