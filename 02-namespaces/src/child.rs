//! What the child does inside its new namespaces, in order: name the host, make
//! mounts private, enter the rootfs (or mount a fresh /proc), set the environment,
//! then become the command (or its init).

use std::path::Path;

use labkit::failure::{Context, ExitCodes};
use labkit::narrate;
use labkit::{Failure, Result};
use nix::unistd::{getpid, sethostname};

use crate::container_fs;
use crate::init::run_init;
use crate::namespace::Namespace;
use crate::plan::Plan;

/// Never returns: execs the command, or exits with the reason it could not.
/// `late_cgroupns`: make the new cgroup namespace now, in our group at last.
pub fn become_container(plan: &Plan, late_cgroupns: bool) -> ! {
    ch01_chroot::chroot_run::IgnoreInterrupts::restore_defaults();
    let code = match cgroup_namespace_now(late_cgroupns).and_then(|()| setup(plan)) {
        Ok(code) => code,
        Err(failure) => {
            // A step of ours failed (125), unless exec gave its own 126/127.
            let code = ExitCodes::RunsACommand.of(&failure);
            plan.extension.report(code, &failure);
            code
        }
    };
    // SAFETY: _exit ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

// ANCHOR: late_cgroupns
/// A new cgroup namespace takes the group its creator is in as its root, so it is
/// made once the parent has moved us into our group (unless clone3 put us there).
fn cgroup_namespace_now(late: bool) -> Result<()> {
    if !late {
        return Ok(());
    }
    narrate::step("unshare(CLONE_NEWCGROUP)", "unshare --cgroup");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .context(|| "unshare(CLONE_NEWCGROUP)".into())?;
    narrate::note("in our own group now: it is the root of the cgroup tree we see");
    Ok(())
}
// ANCHOR_END: late_cgroupns

/// A new user namespace keeps the ids we were made with, the host's, which its
/// maps may not hold (`0 -> 1000`: the host's root is nobody in there, and a file
/// made by nobody fails with EOVERFLOW). The parent has written the maps by now:
/// become the namespace's root, as runc does (with `0 -> 0`, nothing changes).
fn become_root_of_user_namespace() -> Result<()> {
    use nix::unistd::{Gid, Uid, setresgid, setresuid};
    narrate::step(
        "setresgid(0, 0, 0); setresuid(0, 0, 0)   # root of the new user namespace",
        "setpriv --reuid=0 --regid=0",
    );
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).context(|| "setresgid(0) in the user namespace".into())?;
    setresuid(root.1, root.1, root.1).context(|| "setresuid(0) in the user namespace".into())
}

// ANCHOR: setup
fn setup(plan: &Plan) -> Result<i32> {
    if plan.has(Namespace::User) {
        become_root_of_user_namespace()?;
    }
    // Namespaces joined by path (but PID and time: our parent made us in them).
    crate::enter::join_paths(&plan.join, |ns| {
        !matches!(ns, Namespace::Pid | Namespace::Time)
    })?;
    if plan.has(Namespace::Pid) {
        narrate::step(
            format!("getpid() = {}   # in the new PID namespace", getpid()),
            "echo $$",
        );
    }
    if let Some(name) = &plan.hostname {
        narrate::step(format!("sethostname({name:?})"), format!("hostname {name}"));
        sethostname(name).context(|| "sethostname".into())?;
    }
    // ANCHOR: hole_domainname
    if let Some(name) = &plan.domainname {
        narrate::step(
            format!("setdomainname({name:?})"),
            format!("domainname {name}"),
        );
        // SAFETY: a pointer and the length of a live string.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(Failure::new(format!(
                "setdomainname: {}",
                nix::errno::Errno::last().desc()
            )));
        }
    }
    // ANCHOR_END: hole_domainname
    if plan.has(Namespace::Mount) {
        container_fs::make_private()?;
    }
    match &plan.rootfs {
        Some(rootfs) => container_fs::enter_rootfs(plan, rootfs)?,
        None => {
            if plan.has(Namespace::Pid) {
                container_fs::mount_fresh_proc()?
            }
            container_fs::bind_all(Path::new("/"), &plan.binds)?
        }
    }
    if let Some(dir) = &plan.extension.workdir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new(format!("working directory {}: {e}", dir.display())))?;
    }
    plan.extension.apply()?;
    let host_root = plan.rootfs.as_deref().unwrap_or(Path::new("/"));
    if plan.init {
        // From here the init is the command, as far as whoever started us knows.
        if let Some(fd) = plan.extension.report_failure {
            let _ = nix::unistd::close(fd);
        }
        return Ok(
            run_init(&plan.command, host_root).unwrap_or_else(|failure| {
                eprintln!("{}: {failure}", labkit::failure::program());
                ExitCodes::RunsACommand.of(&failure)
            }),
        );
    }
    let keep = plan.extension.preserve_fds;
    Err(ch01_chroot::exec::exec_keeping(
        &plan.command,
        host_root,
        keep,
    ))
}
// ANCHOR_END: setup
