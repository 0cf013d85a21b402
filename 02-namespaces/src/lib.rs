//! Chapter 02: namespaces.
//!
//! - [`cli`]: the isolation flags of `run`, shared with later chapters;
//! - [`namespace`]: the eight namespaces, their flags and `/proc/PID/ns` handles;
//! - [`plan`]: what a `run` request means (implied flags, impossible combinations);
//! - [`spawn`]: the child, by `clone(2)` or by `unshare(2)` + fork;
//! - [`user_ns`]: uid/gid maps, root inside and unprivileged outside;
//! - [`child`]: hostname, mounts, environment, exec, in the new namespaces;
//! - [`extension`]: what a runtime adds to the child (environment, user, its own
//!   last steps, where failures are reported), in one place;
//! - [`container_fs`]: a private mount tree, /proc, /dev, /sys and `pivot_root`;
//! - [`init`]: a tiny PID 1 that forwards signals and reaps orphans;
//! - [`enter`]: `setns(2)` into a running process's namespaces;
//! - [`show`]: a process's namespaces next to the host's;
//! - [`doctor`]: what this chapter needs from the host.

pub mod child;
pub mod cli;
pub mod container_fs;
pub mod doctor;
pub mod enter;
pub mod environment;
pub mod extension;
pub mod init;
pub mod namespace;
pub mod plan;
pub mod show;
pub mod spawn;
pub mod user_ns;
