//! The eight namespaces: what each isolates, its `clone(2)` flag, its handle in
//! `/proc/PID/ns/`, and the `unshare(1)` option that creates it.

use std::collections::BTreeSet;
use std::fmt;

// ANCHOR: table
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Uts,
    Ipc,
    Pid,
    Net,
    Mount,
    User,
    Cgroup,
    Time,
}

impl Namespace {
    /// In the order of the table in the book (and of `show`).
    pub const ALL: [Namespace; 8] = [
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Mount,
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The flag for clone(2), unshare(2) and setns(2).
    pub fn flag(self) -> libc::c_int {
        // ANCHOR: hole_flags
        match self {
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => libc::CLONE_NEWTIME,
        }
        // ANCHOR_END: hole_flags
    }

    pub fn flag_name(self) -> &'static str {
        match self {
            Namespace::Uts => "CLONE_NEWUTS",
            Namespace::Ipc => "CLONE_NEWIPC",
            Namespace::Pid => "CLONE_NEWPID",
            Namespace::Net => "CLONE_NEWNET",
            // The first namespace (2002) got the generic name: nobody expected more.
            Namespace::Mount => "CLONE_NEWNS",
            Namespace::User => "CLONE_NEWUSER",
            Namespace::Cgroup => "CLONE_NEWCGROUP",
            Namespace::Time => "CLONE_NEWTIME",
        }
    }

    /// The name of its handle in `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Mount => "mnt",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The option of `unshare(1)` and `nsenter(1)`: `--uts`.
    pub fn option(self) -> &'static str {
        match self {
            Namespace::Uts => "--uts",
            Namespace::Ipc => "--ipc",
            Namespace::Pid => "--pid",
            Namespace::Net => "--net",
            Namespace::Mount => "--mount",
            Namespace::User => "--user",
            Namespace::Cgroup => "--cgroup",
            Namespace::Time => "--time",
        }
    }

    pub fn isolates(self) -> &'static str {
        match self {
            Namespace::Uts => "hostname and NIS domain name",
            Namespace::Ipc => "System V IPC, POSIX message queues",
            Namespace::Pid => "process IDs (the first process is PID 1)",
            Namespace::Net => "network devices, addresses, routes, firewall, ports",
            Namespace::Mount => "mount points",
            Namespace::User => "user and group IDs, capabilities",
            Namespace::Cgroup => "the cgroup root a process sees",
            Namespace::Time => "CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets",
        }
    }

    /// The Linux version that brought it.
    pub fn since(self) -> &'static str {
        match self {
            Namespace::Uts | Namespace::Ipc => "2.6.19",
            Namespace::Pid => "2.6.24",
            Namespace::Net => "2.6.29",
            Namespace::Mount => "2.4.19",
            Namespace::User => "3.8",
            Namespace::Cgroup => "4.6",
            Namespace::Time => "5.6",
        }
    }
}
// ANCHOR_END: table

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.proc_name())
    }
}

/// A set of namespaces, kept in table order.
pub type Namespaces = BTreeSet<Namespace>;

/// All the flags of `set`, OR-ed together.
pub fn flags(set: &Namespaces) -> libc::c_int {
    set.iter().fold(0, |all, ns| all | ns.flag())
}

/// `CLONE_NEWUTS | CLONE_NEWPID`
pub fn flag_names(set: &Namespaces) -> String {
    let names: Vec<_> = set.iter().map(|ns| ns.flag_name()).collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join(" | ")
    }
}

/// `--uts --pid`
pub fn options(set: &Namespaces) -> String {
    set.iter()
        .map(|ns| ns.option())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The identity of a process's namespace: the inode behind `/proc/PID/ns/NAME`,
/// as `readlink` shows it (`uts:[4026531838]`). Two processes share a namespace
/// exactly when these are equal.
pub fn identity(pid: &str, ns: Namespace) -> std::io::Result<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{}", ns.proc_name()))
        .map(|link| link.to_string_lossy().into_owned())
}
