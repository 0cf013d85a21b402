//! Chapter 01: a root filesystem and `chroot(2)`.
//!
//! - [`rootfs`]: build a rootfs from the host (a static busybox, or host programs
//!   with the libraries their ELF headers name);
//! - [`chroot_run`]: fork, `chroot`, `chdir("/")`, `execve`;
//! - [`escape`]: why chroot is not isolation;
//! - [`doctor`]: what this chapter needs from the host.

pub mod busybox;
pub mod chroot_run;
pub mod doctor;
pub mod elf;
pub mod escape;
pub mod exec;
pub mod libraries;
pub mod rootfs;
pub mod rootfs_writer;
