//! mini-runc's library: an OCI runtime over the chapters, as runc is one.
//!
//! - [`bundle`]: config.json (the `oci-spec` crate) checked and translated into
//!   chapter 02's plan, chapter 03's limits and place; unsupported fields refused;
//! - [`hooks`]: createRuntime (and prestart), poststart and poststop, the state on
//!   their stdin;
//! - [`mounts`]: the bundle's mount options as mount(2)'s flags and data;
//! - [`process`]: the child's last steps inside its root (sysctl, masked paths,
//!   rlimits, user, capabilities) and the wait for `start` on the exec fifo;
//! - [`state`]: `--root`: a directory per container, its status read off the kernel;
//! - [`lifecycle`]: create, start, kill, delete, pause, resume, run, ps.

pub mod bundle;
pub mod hooks;
pub mod lifecycle;
pub mod mounts;
pub mod process;
pub mod state;
