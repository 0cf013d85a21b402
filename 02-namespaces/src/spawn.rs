//! `ch02-namespaces run`: create the child in new namespaces, two ways.
//!
//! - `clone(2)` makes a child that *starts* in the new namespaces (what runc does);
//! - `unshare(2)` moves the caller into new namespaces; the PID (and time) namespace
//!   applies only to the children it makes afterwards, so it must fork anyway.
//!
//! In both, the parent stays in the host's namespaces to write the user
//! namespace's maps, release the child, and wait for it.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ch01_chroot::chroot_run::{IgnoreInterrupts, wait_for};
use labkit::failure::{Context, EXIT_TOOL_FAILED};
use labkit::narrate;
use labkit::{Failure, Result};
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{ForkResult, Pid, fork};

use crate::child::become_container;
use crate::namespace::{Namespace, flag_names, flags, options};
use crate::plan::{IntoCgroup, Plan, Via};
use crate::user_ns::write_maps;

// ANCHOR: clone
/// `fork()` with namespace flags: the raw `clone(2)` system call with no new stack,
/// so the child continues from here on a copy of our memory, exactly like fork.
/// Returns `None` in the child.
pub fn clone_process(flags: libc::c_int) -> nix::Result<Option<Pid>> {
    // ANCHOR: hole_clone
    // SAFETY: this program is single-threaded, and without CLONE_VM the child gets
    // its own copy of our memory (and of the stack we pass as NULL), as with fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
    // ANCHOR_END: hole_clone
}
// ANCHOR_END: clone

// ANCHOR: clone3
/// `clone3(2)`'s arguments (`struct clone_args`, Linux 5.7's size: with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Create the child in the cgroup v2 directory `cgroup` (an open descriptor), fork
/// -like: no migration afterwards, so it never runs a moment outside its group.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `fork()` with namespace flags, into a cgroup: `clone3(2)` with `CLONE_INTO_CGROUP`
/// (Linux 5.7). Returns `None` in the child.
pub fn clone3_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> nix::Result<Option<Pid>> {
    let args = CloneArgs {
        flags: flags as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: single-threaded, no CLONE_VM and no stack: the child gets a copy of
    // our memory and continues from here, as with fork(2). `args` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}
// ANCHOR_END: clone3

pub fn run(plan: &Plan) -> Result<i32> {
    run_with(plan, |_| Ok(()))
}

// ANCHOR: run_with
/// Create the child, then, before it may go on, write its user namespace maps and
/// call `before_go` (chapter 03 puts the child into the groups it was not created
/// in, so that the command never runs a moment without its limits). Then wait.
pub fn run_with(plan: &Plan, mut before_go: impl FnMut(&Started) -> Result<()>) -> Result<i32> {
    let _ignoring = IgnoreInterrupts::start()?;
    let child = start(plan)?;
    if let Err(failure) = before_go(&child) {
        child.abandon();
        return Err(failure);
    }
    wait_for(child.go())
}
// ANCHOR_END: run_with

/// A child made in its namespaces, waiting for our word before it does anything.
#[derive(Debug)]
pub struct Started {
    pub pid: Pid,
    /// Created in its cgroup v2 group (`CLONE_INTO_CGROUP`): nothing to move.
    pub in_cgroup: bool,
    go: OwnedFd,
}

impl Started {
    /// Let the child go on to become the command.
    pub fn go(self) -> Pid {
        let _ = std::fs::File::from(self.go).write_all(b"1");
        self.pid
    }

    /// Give up: the child reads EOF and exits; reap it.
    pub fn abandon(self) {
        drop(self.go);
        let _ = wait_for(self.pid);
    }
}

/// Create the child (and write its maps), stopped before it does anything: callers
/// who need several children at once (chapter 05's `p2p`) use this directly.
pub fn start(plan: &Plan) -> Result<Started> {
    for note in &plan.notes {
        narrate::note(note);
    }
    // The child blocks on this pipe until the parent says go.
    let (go_read, go) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context(|| "pipe".into())?;
    let for_children = crate::enter::ForChildren::enter(&plan.join)?;
    let (pid, in_cgroup) = match plan.via {
        Via::Clone => spawn_with_clone(plan, go_read, go.as_raw_fd())?,
        Via::Unshare => spawn_with_unshare(plan, go_read, go.as_raw_fd())?,
    };
    drop(for_children);
    let child = Started { pid, in_cgroup, go };
    if let (Some(mapping), Via::Clone) = (&plan.mapping, plan.via)
        && let Err(failure) = write_maps(&pid.to_string(), mapping)
    {
        child.abandon();
        return Err(failure);
    }
    Ok(child)
}
// ANCHOR_END: run_with

// ANCHOR: spawn_clone
fn spawn_with_clone(plan: &Plan, go: OwnedFd, parents_end: RawFd) -> Result<(Pid, bool)> {
    let mut namespaces = plan.namespaces.clone();
    if namespaces.remove(&Namespace::Time) {
        // CLONE_NEWTIME's bit is inside the byte where clone() takes the child's exit
        // signal, so a time namespace can only come from unshare (or clone3).
        unshare_step(
            &[Namespace::Time].into(),
            "a time namespace for our children: clone(2) cannot make one",
        )?;
    }
    let cgroup = plan.cgroup;
    // A new cgroup namespace's root is the group its creator is in: made with the
    // child only if clone3 puts it straight into its one and only group.
    let mut late_cgroupns =
        cgroup.is_some_and(|c| c.v1 || c.v2.is_none()) && namespaces.remove(&Namespace::Cgroup);
    if let Some(IntoCgroup { v2: Some(fd), .. }) = cgroup {
        let call = format!(
            "clone3({{ {} | CLONE_INTO_CGROUP, cgroup: {fd} }})",
            clone_flags(&namespaces)
        );
        match clone3_into_cgroup(flags(&namespaces), fd) {
            Ok(None) => child_after_go(plan, go, parents_end, late_cgroupns),
            Ok(Some(child)) => {
                narrate::step(format!("{call} = {child}"), fork_shell(&namespaces, true));
                return Ok((child, true));
            }
            // Before Linux 5.3 no clone3 (ENOSYS, as under some seccomp filters);
            // before 5.7 no cgroup field (E2BIG): the parent moves the child.
            Err(Errno::ENOSYS | Errno::E2BIG) => {
                narrate::note(
                    "no clone3(CLONE_INTO_CGROUP) here (Linux 5.7+): clone, then the child is moved into its cgroup",
                );
                late_cgroupns |= namespaces.remove(&Namespace::Cgroup);
            }
            Err(errno) => return Err(explain_creation(&call, errno)),
        }
    }
    let call = format!("clone({})", clone_flags(&namespaces));
    match clone_process(flags(&namespaces)) {
        Ok(None) => child_after_go(plan, go, parents_end, late_cgroupns),
        Ok(Some(child)) => {
            narrate::step(format!("{call} = {child}"), fork_shell(&namespaces, false));
            Ok((child, false))
        }
        Err(errno) => Err(explain_creation(&call, errno)),
    }
}
// ANCHOR_END: spawn_clone

/// `CLONE_NEWNS | CLONE_NEWPID | SIGCHLD`, or `SIGCHLD` alone.
fn clone_flags(namespaces: &crate::namespace::Namespaces) -> String {
    match namespaces.is_empty() {
        true => "SIGCHLD".to_string(),
        false => format!("{} | SIGCHLD", flag_names(namespaces)),
    }
}

/// The shell's way to a child in new namespaces (`in_cgroup`: and in its cgroup).
fn fork_shell(namespaces: &crate::namespace::Namespaces, in_cgroup: bool) -> String {
    let how = match namespaces.is_empty() {
        true => "( ... ) &",
        false => &format!("unshare {} --fork", options(namespaces)),
    };
    match (in_cgroup, namespaces.is_empty()) {
        (true, _) => format!("{how}   # born in its cgroup: nothing to move"),
        (false, true) => format!("{how}   # no new namespaces: this is fork()"),
        (false, false) => how.to_string(),
    }
}

/// In the child: wait for the parent's word, make the cgroup namespace if it had to
/// wait until we were in our group, and become the container. Never returns.
/// `parents_end`: our copy of the pipe's write end, closed first: otherwise a parent
/// that dies before it says go (a crash, a kill) would leave us waiting for ever,
/// holding whatever the caller reads from open.
fn child_after_go(plan: &Plan, go: OwnedFd, parents_end: RawFd, late_cgroupns: bool) -> ! {
    let _ = nix::unistd::close(parents_end);
    wait_for_go(go);
    become_container(plan, late_cgroupns)
}

// ANCHOR: spawn_unshare
fn spawn_with_unshare(plan: &Plan, go: OwnedFd, parents_end: RawFd) -> Result<(Pid, bool)> {
    let mut namespaces = plan.namespaces.clone();
    // Our own cgroup would be its root: the child makes it, once in its group.
    let late_cgroupns = plan.cgroup.is_some() && namespaces.remove(&Namespace::Cgroup);
    if !namespaces.is_empty() {
        unshare_step(
            &namespaces,
            "we are now in the new namespaces, except PID and time",
        )?;
    }
    if let Some(mapping) = &plan.mapping {
        // We are inside the new user namespace ourselves: write our own maps.
        write_maps("self", mapping)?;
    }
    if plan.has(Namespace::Pid) {
        narrate::note(
            "unshare(CLONE_NEWPID) put our *children* in the new PID namespace: fork one",
        );
    }
    if let Some(fd) = plan.cgroup.and_then(|c| c.v2) {
        match clone3_into_cgroup(0, fd) {
            Ok(None) => child_after_go(plan, go, parents_end, late_cgroupns),
            Ok(Some(child)) => {
                narrate::step(
                    format!("clone3({{ SIGCHLD | CLONE_INTO_CGROUP, cgroup: {fd} }}) = {child}"),
                    "(the --fork of unshare --fork, born in its cgroup)",
                );
                return Ok((child, true));
            }
            Err(Errno::ENOSYS | Errno::E2BIG) => {}
            Err(errno) => return Err(explain_creation("clone3", errno)),
        }
    }
    // SAFETY: single-threaded, so the child may do anything.
    match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => child_after_go(plan, go, parents_end, late_cgroupns),
        ForkResult::Parent { child } => {
            narrate::step(
                format!("fork() = {child}"),
                "(the --fork of unshare --fork)",
            );
            Ok((child, false))
        }
    }
}
// ANCHOR_END: spawn_unshare

fn unshare_step(namespaces: &crate::namespace::Namespaces, why: &str) -> Result<()> {
    let call = format!("unshare({})", flag_names(namespaces));
    narrate::step(&call, format!("unshare {}", options(namespaces)));
    unshare(CloneFlags::from_bits_retain(flags(namespaces)))
        .map_err(|e| explain_creation(&call, e))?;
    narrate::note(why);
    Ok(())
}

/// In the child: block until the parent says go (EOF means it gave up).
fn wait_for_go(go: OwnedFd) {
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        // SAFETY: _exit ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(EXIT_TOOL_FAILED) }
    }
}

fn explain_creation(call: &str, errno: Errno) -> Failure {
    let why = match errno {
        Errno::EPERM => {
            ": not allowed. As root this works; rootless, user namespaces may be \
                         disabled here (see: ch02-namespaces doctor)"
        }
        Errno::ENOSPC => ": too many namespaces of this kind (see /proc/sys/user/max_*_namespaces)",
        Errno::EINVAL => ": the kernel rejects this combination of flags",
        Errno::EUSERS => ": user namespaces nested too deep",
        _ => "",
    };
    Failure::new(format!("{call}: {}{why}", errno.desc()))
}
