//! Chapter 03: control groups.
//!
//! - [`limits`]: sizes, CPUs, lists, counts, parsed as docker does and checked;
//! - [`hierarchy`]: v1, v2 or hybrid; which version runs which controller;
//! - [`place`]: where groups go (a group of the tool's own at the top, or beneath
//!   ours), the levels made on the way, and leaving the host as it was;
//! - [`group`]: a group's directories, its limits, add, freeze, kill, remove;
//! - [`delegate`]: cgroup v2 delegation and the no-internal-processes rule;
//! - [`devices`], [`device_filter`]: which devices a group may open (v1's files,
//!   v2's BPF program);
//! - [`stats`]: what a group used;
//! - [`run`]: a command in a new group, with chapter 02's isolation;
//! - [`stress`]: a load generator for memory, CPU and forks;
//! - [`info`], [`doctor`]: what this host has, and what it lacks.

pub mod delegate;
pub mod device_filter;
pub mod devices;
pub mod doctor;
pub mod files;
pub mod group;
pub mod hierarchy;
pub mod info;
pub mod limits;
pub mod place;
pub mod run;
pub mod stats;
pub mod stress;
