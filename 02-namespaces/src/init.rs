//! `--init`: a tiny PID 1, the job `docker run --init` (tini) does.
//!
//! PID 1 of a PID namespace is special in two ways. The kernel gives it no default
//! signal actions: a SIGTERM or Ctrl-C it has no handler for is simply dropped, so
//! a plain program as PID 1 often cannot be stopped. And every orphaned process of
//! the namespace is re-parented to it, so it must `wait` for them, or they stay
//! zombies. This init runs the command as its child, forwards signals to it, reaps
//! everything, and exits with the command's status.

use std::path::Path;

use labkit::Result;
use labkit::failure::{Context, ExitCodes};
use labkit::narrate;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Signals passed on to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

// ANCHOR: init
/// Run `command` under a tiny init; returns its exit code (128 + N for signal N).
pub fn run_init(command: &[String], host_root: &Path) -> Result<i32> {
    let_go_of_the_runtime()?;
    // Blocked signals are queued, even for a PID 1 without handlers, and a
    // signalfd lets us read them one by one in a plain loop.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    FORWARDED.iter().for_each(|s| mask.add(*s));
    let mut previous = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut previous))
        .context(|| "sigprocmask".into())?;
    let signals =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context(|| "signalfd".into())?;

    // SAFETY: single-threaded: the child may do anything before exec.
    let child = match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => {
            narrate::step(
                format!(
                    "fork() = {}   # the command; init stays PID 1",
                    nix::unistd::getpid()
                ),
                "tini -- CMD",
            );
            // The command must not inherit our blocked signals.
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
            let failure = ch01_chroot::exec::exec_with_path(command, host_root);
            eprintln!("{}: {failure}", labkit::failure::program());
            // SAFETY: _exit ends the child without running exit handlers.
            unsafe { libc::_exit(ExitCodes::RunsACommand.of(&failure)) }
        }
        ForkResult::Parent { child } => child,
    };
    loop {
        let Ok(Some(info)) = signals.read_signal() else {
            continue;
        };
        let signal = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGCHLD);
        if signal != Signal::SIGCHLD {
            narrate::step(
                format!("kill({child}, {signal})   # init passes it on"),
                format!(
                    "kill -{} {child}",
                    signal.as_str().trim_start_matches("SIG")
                ),
            );
            let _ = kill(child, signal);
            continue;
        }
        if let Some(code) = reap_all(child) {
            return Ok(code);
        }
    }
}

// ANCHOR: let_go
/// This init is the runtime's own code, forked and never exec'd: it still holds the
/// runtime's descriptors, and the environment the runtime was started with (the
/// kernel shows the original one in /proc/1/environ, whatever setenv did since).
/// Container root could read both through /proc/1 for the container's whole life.
/// So: every descriptor but 0-2 closed, and the process made non-dumpable, which
/// leaves /proc/1/environ, fd and mem to CAP_SYS_PTRACE, which containers lack.
fn let_go_of_the_runtime() -> Result<()> {
    narrate::step(
        "close_range(3, ~0, 0); prctl(PR_SET_DUMPABLE, 0)",
        "(what the runtime leaves behind in its init: nothing)",
    );
    ch01_chroot::exec::close_above_stdio(true);
    nix::sys::prctl::set_dumpable(false).context(|| "prctl(PR_SET_DUMPABLE)".into())
}
// ANCHOR_END: let_go

/// Wait for every child that has ended; the command's exit code once it has.
fn reap_all(command: Pid) -> Option<i32> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => ended = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                ended = Some(128 + sig as i32)
            }
            Ok(WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)) => {
                narrate::step(
                    format!("waitpid(-1) = {pid}   # an orphan, reaped by init"),
                    "(what every PID 1 must do)",
                );
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(_) => {}
        }
    }
}
// ANCHOR_END: init
