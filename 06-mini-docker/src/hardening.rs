//! What Docker takes away from a container's root by default, on top of the
//! namespaces: most capabilities, the right to gain privileges through exec (setuid
//! binaries), and the files of /proc and /sys that reach into the host's kernel.
//! Applied by the child inside the new root, just before exec (chapter 02's
//! `Plan::before_exec`).

use std::path::Path;

use caps::{CapSet, Capability};
use ch02_namespaces::plan::Hook;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::mount::{MsFlags, mount};

/// The capabilities Docker leaves a container (moby's `DefaultCapabilities`).
pub const DOCKER_CAPABILITIES: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Paths hidden from the container: files get /dev/null bound over them,
/// directories an empty read-only tmpfs (moby's `DefaultSpec` masked paths).
pub const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write (the host's kernel settings).
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn failed(what: &str, path: &str, e: nix::errno::Errno) -> Failure {
    Failure::new(format!("{what} {path}: {}", e.desc()))
}

// ANCHOR: mounts
/// Mask and make read-only, inside the container's root (after `pivot_root`).
pub fn protect_paths() -> Result<()> {
    narrate::note(format!(
        "masking {} paths of /proc and /sys, {} more read-only (Docker's defaults)",
        MASKED.len(),
        READ_ONLY.len()
    ));
    for path in MASKED {
        let target = Path::new(path);
        if !target.exists() {
            continue;
        }
        if target.is_dir() {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            narrate::step(
                format!("mount(\"tmpfs\", {path:?}, \"tmpfs\", MS_RDONLY)"),
                format!("mount -t tmpfs -o ro tmpfs {path}"),
            );
            mount(Some("tmpfs"), target, Some("tmpfs"), flags, None::<&str>)
                .map_err(|e| failed("mask", path, e))?;
        } else {
            narrate::step(
                format!("mount(\"/dev/null\", {path:?}, NULL, MS_BIND)"),
                format!("mount --bind /dev/null {path}"),
            );
            mount(
                Some("/dev/null"),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| failed("mask", path, e))?;
        }
    }
    for path in READ_ONLY {
        if !Path::new(path).exists() {
            continue;
        }
        narrate::step(
            format!("mount({path:?}, {path:?}, MS_BIND|MS_REC), remount MS_RDONLY"),
            format!("mount --bind {path} {path}; mount -o remount,bind,ro {path}"),
        );
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| failed("bind", path, e))?;
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, path, None::<&str>, ro, None::<&str>)
            .map_err(|e| failed("read-only", path, e))?;
    }
    Ok(())
}
// ANCHOR_END: mounts

// ANCHOR: last_steps
/// What the child does last, inside its root, before exec: with `-t`, make its
/// console; mount the `--tmpfs` directories; then Docker's protections. In this
/// order: each step needs what the next one takes away.
pub fn last_steps(tty: bool, tmpfs: Vec<String>) -> Hook {
    Hook(std::sync::Arc::new(move || {
        if tty {
            crate::tty::make_console()?;
        }
        for dir in &tmpfs {
            mount_tmpfs(dir)?;
        }
        protect_paths()?;
        drop_privileges()
    }))
}
// ANCHOR_END: last_steps

/// What an `exec`'d process gets: the container's capabilities and no_new_privs
/// (the mounts are the container's already).
pub fn exec_steps(tty: bool) -> Hook {
    Hook(std::sync::Arc::new(move || {
        if tty {
            crate::tty::make_console()?;
        }
        drop_privileges()
    }))
}

/// `--tmpfs DIR`: a fresh, empty, memory-backed directory (mode 1777, like /tmp).
fn mount_tmpfs(dir: &str) -> Result<()> {
    narrate::step(
        format!("mount(\"tmpfs\", {dir:?}, \"tmpfs\", MS_NOSUID|MS_NODEV)"),
        format!("mount -t tmpfs -o mode=1777 tmpfs {dir}"),
    );
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("--tmpfs {dir}: {e}")))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some("mode=1777"))
        .map_err(|e| failed("--tmpfs", dir, e))
}

// ANCHOR: process
/// Keep only Docker's capabilities (bounding, permitted, effective), none
/// inheritable or ambient, and set no_new_privs: exec can never give more.
pub fn drop_privileges() -> Result<()> {
    let keep: caps::CapsHashSet = DOCKER_CAPABILITIES.into_iter().collect();
    narrate::step(
        format!(
            "prctl(PR_CAPBSET_DROP) x{}, capset()",
            caps::all().len() - keep.len()
        ),
        "capsh --drop=... (all but Docker's 14)",
    );
    let fail = |e: caps::errors::CapsError| Failure::new(format!("capabilities: {e}"));
    for cap in caps::all().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(fail)?;
    }
    caps::clear(None, CapSet::Ambient).map_err(fail)?;
    caps::clear(None, CapSet::Inheritable).map_err(fail)?;
    caps::set(None, CapSet::Effective, &keep).map_err(fail)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(fail)?;
    narrate::step("prctl(PR_SET_NO_NEW_PRIVS, 1)", "setpriv --no-new-privs");
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Failure::new(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
// ANCHOR_END: process
