//! mini-docker: Docker's verbs over chapters 02-05.
//!
//! The CLI (`main.rs`, one function per verb) reads and writes the [`store`];
//! `run` and `start` fork a [`monitor`] per container, which sets the container
//! up from the chapters and stays as its parent.
//!
//! - [`store`]: `/var/lib/mini-docker`: images, layers, containers, one lock;
//! - [`image`], [`layers`]: images, their layers (chapter 04), `import`, `load`,
//!   `commit`, `export`, `rmi`;
//! - [`container`]: a container's config (what `create` was told) and state;
//! - [`create`]: `run`/`create`'s flags checked and turned into a config;
//! - [`volume`], [`mounts`]: volumes in the store, and `-v`/`--mount`/
//!   `--volumes-from` read as a container's mounts;
//! - [`compose`]: projects of services from a compose file, made with `run`'s flags;
//! - [`network`]: `--network` and `-p` as chapter 05's options;
//! - [`lifecycle`]: start, stop, kill, wait, pause, exec, rm;
//! - [`monitor`]: the container's parent (Docker's containerd-shim): cgroup (03),
//!   overlay (04), namespaces and root (02), network (05), then the output relay;
//!   [`restart`]: its `--restart` rules and back-off; [`health`]: its checks;
//! - [`stdio`], [`tty`], [`logs`]: pipes or a pseudo-terminal, and the json-file log;
//! - [`hardening`], [`seccomp`], [`sealed`]: capabilities, masked paths,
//!   no_new_privs, Docker's seccomp profile, and a binary a container cannot reach;
//! - [`remove`]: what a container leaves, removed; [`cp`]: files in and out;
//! - [`show`]: ps, logs, inspect, images, stats, as Docker prints them;
//! - [`doctor`]: every chapter's checks in one report;
//! - [`shim`]: with `--runtime`, the monitor drives an OCI runtime's command line;
//! - [`spec`]: a container's bundle (`config.json`), which the monitor writes at
//!   each start and hands to an OCI runtime with `--runtime`;
//! - [`runtime`]: mini-runc's library, an OCI runtime (bundles, create/start/
//!   state/kill/delete) over the same chapters (`src/bin/mini-runc.rs`).

pub mod build;
pub mod compose;
pub mod container;
pub mod context;
pub mod cp;
pub mod create;
pub mod dockerfile;
pub mod doctor;
pub mod hardening;
pub mod health;
pub mod image;
pub mod layers;
pub mod lifecycle;
pub mod login;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod network;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod restart;
pub mod runtime;
pub mod sealed;
pub mod seccomp;
pub mod shim;
pub mod show;
pub mod spec;
pub mod stdio;
pub mod store;
pub mod tty;
pub mod volume;
