//! Docker's default seccomp profile: the system calls a container may make.
//!
//! Capabilities decide what a process may do *through* a system call; seccomp
//! decides which system calls it may make at all. A filter (a small BPF program the
//! kernel runs on every system call) allows some 300 of them and answers every
//! other one with `EPERM`: the kernel's keyring (`keyctl`, `add_key`), new
//! namespaces (`unshare`, `clone` with namespace flags), mounting, loading modules,
//! `bpf`, `perf_event_open`, the clock, `reboot`... Most of those need capabilities
//! a container does not have anyway; the filter is the second wall, and it also
//! covers what needs no capability at all (a user namespace, the keyring, which
//! are not namespaced and have had their share of kernel bugs).
//!
//! The list follows moby's `profiles/seccomp/default.json` for a container with
//! Docker's default capabilities, as it is since v25: without io_uring
//! (`io_uring_setup`, `_enter`, `_register`), a whole second system call interface
//! that seccomp cannot see into and that has had many kernel bugs.
//! `--security-opt seccomp=unconfined` goes without.

use std::collections::BTreeMap;

use labkit::narrate;
use labkit::{Failure, Result};
use std::str::FromStr;

use LinuxSeccompOperator as Op;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::SeccompCmpOp as Cmp;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCondition, SeccompFilter, SeccompRule,
    sock_filter,
};
use serde_json::json;
use syscalls::Sysno;

macro_rules! syscalls {
    ($($name:ident),* $(,)?) => { &[$(libc::$name),*] };
}

// ANCHOR: allowed
/// Allowed whatever their arguments.
const ALLOWED: &[libc::c_long] = syscalls![
    SYS_accept,
    SYS_accept4,
    SYS_bind,
    SYS_brk,
    SYS_capget,
    SYS_capset,
    SYS_chdir,
    SYS_chroot,
    SYS_clock_adjtime,
    SYS_clock_getres,
    SYS_clock_gettime,
    SYS_clock_nanosleep,
    SYS_close,
    SYS_close_range,
    SYS_connect,
    SYS_copy_file_range,
    SYS_dup,
    SYS_dup3,
    SYS_epoll_create1,
    SYS_epoll_ctl,
    SYS_epoll_pwait,
    SYS_epoll_pwait2,
    SYS_eventfd2,
    SYS_execve,
    SYS_execveat,
    SYS_exit,
    SYS_exit_group,
    SYS_faccessat,
    SYS_faccessat2,
    SYS_fadvise64,
    SYS_fallocate,
    SYS_fanotify_mark,
    SYS_fchdir,
    SYS_fchmod,
    SYS_fchmodat,
    SYS_fchown,
    SYS_fchownat,
    SYS_fcntl,
    SYS_fdatasync,
    SYS_fgetxattr,
    SYS_flistxattr,
    SYS_flock,
    SYS_fremovexattr,
    SYS_fsetxattr,
    SYS_fstat,
    SYS_fstatfs,
    SYS_fsync,
    SYS_ftruncate,
    SYS_futex,
    SYS_futex_waitv,
    SYS_getcpu,
    SYS_getcwd,
    SYS_getdents64,
    SYS_getegid,
    SYS_geteuid,
    SYS_getgid,
    SYS_getgroups,
    SYS_getitimer,
    SYS_getpeername,
    SYS_getpgid,
    SYS_getpid,
    SYS_getppid,
    SYS_getpriority,
    SYS_getrandom,
    SYS_getresgid,
    SYS_getresuid,
    SYS_getrlimit,
    SYS_get_robust_list,
    SYS_getrusage,
    SYS_getsid,
    SYS_getsockname,
    SYS_getsockopt,
    SYS_gettid,
    SYS_gettimeofday,
    SYS_getuid,
    SYS_getxattr,
    SYS_inotify_add_watch,
    SYS_inotify_init1,
    SYS_inotify_rm_watch,
    SYS_io_cancel,
    SYS_ioctl,
    SYS_io_destroy,
    SYS_io_getevents,
    SYS_ioprio_get,
    SYS_ioprio_set,
    SYS_io_setup,
    SYS_io_submit,
    SYS_kill,
    SYS_landlock_add_rule,
    SYS_landlock_create_ruleset,
    SYS_landlock_restrict_self,
    SYS_lgetxattr,
    SYS_linkat,
    SYS_listen,
    SYS_listxattr,
    SYS_llistxattr,
    SYS_lremovexattr,
    SYS_lseek,
    SYS_lsetxattr,
    SYS_madvise,
    SYS_membarrier,
    SYS_memfd_create,
    SYS_memfd_secret,
    SYS_mincore,
    SYS_mkdirat,
    SYS_mknodat,
    SYS_mlock,
    SYS_mlock2,
    SYS_mlockall,
    SYS_mmap,
    SYS_mprotect,
    SYS_mq_getsetattr,
    SYS_mq_notify,
    SYS_mq_open,
    SYS_mq_timedreceive,
    SYS_mq_timedsend,
    SYS_mq_unlink,
    SYS_mremap,
    SYS_msgctl,
    SYS_msgget,
    SYS_msgrcv,
    SYS_msgsnd,
    SYS_msync,
    SYS_munlock,
    SYS_munlockall,
    SYS_munmap,
    SYS_name_to_handle_at,
    SYS_nanosleep,
    SYS_newfstatat,
    SYS_openat,
    SYS_openat2,
    SYS_pidfd_open,
    SYS_pidfd_send_signal,
    SYS_pipe2,
    SYS_pkey_alloc,
    SYS_pkey_free,
    SYS_pkey_mprotect,
    SYS_ppoll,
    SYS_prctl,
    SYS_pread64,
    SYS_preadv,
    SYS_preadv2,
    SYS_prlimit64,
    SYS_process_mrelease,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_pselect6,
    SYS_ptrace,
    SYS_pwrite64,
    SYS_pwritev,
    SYS_pwritev2,
    SYS_read,
    SYS_readahead,
    SYS_readlinkat,
    SYS_readv,
    SYS_recvfrom,
    SYS_recvmmsg,
    SYS_recvmsg,
    SYS_remap_file_pages,
    SYS_removexattr,
    SYS_renameat,
    SYS_renameat2,
    SYS_restart_syscall,
    SYS_rseq,
    SYS_rt_sigaction,
    SYS_rt_sigpending,
    SYS_rt_sigprocmask,
    SYS_rt_sigqueueinfo,
    SYS_rt_sigreturn,
    SYS_rt_sigsuspend,
    SYS_rt_sigtimedwait,
    SYS_rt_tgsigqueueinfo,
    SYS_sched_getaffinity,
    SYS_sched_getattr,
    SYS_sched_getparam,
    SYS_sched_get_priority_max,
    SYS_sched_get_priority_min,
    SYS_sched_getscheduler,
    SYS_sched_rr_get_interval,
    SYS_sched_setaffinity,
    SYS_sched_setattr,
    SYS_sched_setparam,
    SYS_sched_setscheduler,
    SYS_sched_yield,
    SYS_seccomp,
    SYS_semctl,
    SYS_semget,
    SYS_semop,
    SYS_semtimedop,
    SYS_sendfile,
    SYS_sendmmsg,
    SYS_sendmsg,
    SYS_sendto,
    SYS_setfsgid,
    SYS_setfsuid,
    SYS_setgid,
    SYS_setgroups,
    SYS_setitimer,
    SYS_setpgid,
    SYS_setpriority,
    SYS_setregid,
    SYS_setresgid,
    SYS_setresuid,
    SYS_setreuid,
    SYS_setrlimit,
    SYS_set_robust_list,
    SYS_setsid,
    SYS_setsockopt,
    SYS_set_tid_address,
    SYS_setuid,
    SYS_setxattr,
    SYS_shmat,
    SYS_shmctl,
    SYS_shmdt,
    SYS_shmget,
    SYS_shutdown,
    SYS_sigaltstack,
    SYS_signalfd4,
    SYS_socketpair,
    SYS_splice,
    SYS_statfs,
    SYS_statx,
    SYS_symlinkat,
    SYS_sync,
    SYS_sync_file_range,
    SYS_syncfs,
    SYS_sysinfo,
    SYS_tee,
    SYS_tgkill,
    SYS_timer_create,
    SYS_timer_delete,
    SYS_timer_getoverrun,
    SYS_timer_gettime,
    SYS_timer_settime,
    SYS_timerfd_create,
    SYS_timerfd_gettime,
    SYS_timerfd_settime,
    SYS_times,
    SYS_tkill,
    SYS_truncate,
    SYS_umask,
    SYS_uname,
    SYS_unlinkat,
    SYS_utimensat,
    SYS_vmsplice,
    SYS_wait4,
    SYS_waitid,
    SYS_write,
    SYS_writev,
];

/// The older calls x86-64 still has (newer architectures only have the `*at` ones).
#[cfg(target_arch = "x86_64")]
const ALLOWED_ON_THIS_ARCH: &[libc::c_long] = syscalls![
    SYS_access,
    SYS_alarm,
    SYS_arch_prctl,
    SYS_chmod,
    SYS_chown,
    SYS_creat,
    SYS_dup2,
    SYS_epoll_create,
    SYS_epoll_ctl_old,
    SYS_epoll_wait,
    SYS_epoll_wait_old,
    SYS_eventfd,
    SYS_fork,
    SYS_futimesat,
    SYS_getdents,
    SYS_getpgrp,
    SYS_get_thread_area,
    SYS_inotify_init,
    SYS_lchown,
    SYS_link,
    SYS_lstat,
    SYS_mkdir,
    SYS_mknod,
    SYS_modify_ldt,
    SYS_open,
    SYS_pause,
    SYS_pipe,
    SYS_poll,
    SYS_readlink,
    SYS_rename,
    SYS_rmdir,
    SYS_select,
    SYS_set_thread_area,
    SYS_signalfd,
    SYS_stat,
    SYS_symlink,
    SYS_time,
    SYS_unlink,
    SYS_utime,
    SYS_utimes,
    SYS_vfork,
];
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_ON_THIS_ARCH: &[libc::c_long] = &[];
// ANCHOR_END: allowed

/// The namespace flags `clone` may not carry (moby's mask, 0x7E020000).
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

// ANCHOR: default_profile
/// Docker's default profile, written in the runtime spec's format (config.json's
/// `linux.seccomp`, as moby hands it to runc): EPERM for every call not named.
pub fn docker_default() -> LinuxSeccomp {
    let allowed: Vec<&str> = (ALLOWED.iter().chain(ALLOWED_ON_THIS_ARCH))
        .filter_map(|nr| Sysno::new(*nr as usize).map(|s| s.name()))
        .collect();
    let mut syscalls = json!([
        {"names": allowed, "action": "SCMP_ACT_ALLOW"},
        // Threads and processes, but no new namespaces.
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        // Any socket but AF_VSOCK (talking to the hypervisor).
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": libc::AF_VSOCK, "op": "SCMP_CMP_NE"}]},
        // clone3 takes its flags in memory, where a filter cannot look: "no such
        // call" (ENOSYS) makes the C library fall back to clone.
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS},
    ]);
    // personality(2) only to ask, or for the harmless Linux/32-bit personas.
    for persona in [0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.as_array_mut().into_iter().for_each(|list| {
            list.push(
                json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}),
            );
        });
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "syscalls": syscalls,
    });
    serde_json::from_value(profile).expect("written in the spec's format (a unit test reads it)")
}
// ANCHOR_END: default_profile

/// A profile, compiled: BPF programs to install in this order.
#[derive(Debug, Clone)]
pub struct Filters {
    programs: Vec<BpfProgram>,
    /// How many calls the profile names, as the narration says.
    calls: usize,
}

// ANCHOR: compile
/// Compile a profile in the runtime spec's format. seccompiler gives every call of
/// a filter one answer, so a profile with several answers becomes several filters:
/// the first answers every named call "allow" and the rest the default; then one
/// filter per other answer, with "allow" for everything else. The kernel runs them
/// all and keeps the strictest answer, which is the rule's.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filters> {
    refuse_what_we_cannot_do(profile)?;
    let (errno, default) = (profile.default_errno_ret(), profile.default_action());
    let default = action(default, errno, "defaultAction")?;
    // Every call named, and the calls of each answer.
    let (mut named, mut answers) = (Calls::new(), Vec::<(SeccompAction, Calls)>::new());
    for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let answer = action(syscall.action(), syscall.errno_ret(), &field)?;
        let rules = rules(syscall.args().as_deref().unwrap_or_default(), &field)?;
        if answer == default {
            continue; // says what the default says (runc skips these too)
        }
        let at = match answers.iter().position(|(a, _)| *a == answer) {
            Some(at) => at,
            None => {
                answers.push((answer, Calls::new()));
                answers.len() - 1
            }
        };
        // A name this architecture does not have cannot be called here: skipped.
        for nr in syscall
            .names()
            .iter()
            .filter_map(|n| Sysno::from_str(n).ok())
        {
            add(&mut named, nr.id().into(), &rules);
            add(&mut answers[at].1, nr.id().into(), &rules);
        }
    }
    let arch = (std::env::consts::ARCH.try_into())
        .map_err(|_| Failure::new(format!("no seccomp filter for {}", std::env::consts::ARCH)))?;
    let filter = |calls, other, matched| {
        SeccompFilter::new(calls, other, matched, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|e| Failure::new(format!("linux.seccomp: {e}")))
    };
    let calls = named.len();
    let mut programs: Vec<BpfProgram> = x32_guard().into_iter().collect();
    if default != SeccompAction::Allow {
        programs.push(filter(named, default, SeccompAction::Allow)?);
    }
    for (answer, calls) in answers
        .into_iter()
        .filter(|(a, c)| *a != SeccompAction::Allow && !c.is_empty())
    {
        programs.push(filter(calls, SeccompAction::Allow, answer)?);
    }
    Ok(Filters { programs, calls })
}
// ANCHOR_END: compile

type Calls = BTreeMap<i64, Vec<SeccompRule>>;

/// A call's rules, merged: no rule at all means "whatever its arguments", which
/// stays so whatever else is added.
fn add(calls: &mut Calls, nr: i64, rules: &[SeccompRule]) {
    match calls.get_mut(&nr) {
        Some(existing) if existing.is_empty() => {}
        Some(_) if rules.is_empty() => {
            calls.insert(nr, vec![]);
        }
        Some(existing) => existing.extend(rules.iter().cloned()),
        None => {
            calls.insert(nr, rules.to_vec());
        }
    }
}

/// An answer of the spec's (`SCMP_ACT_...`) as seccompiler's. ERRNO's and TRACE's
/// number is the rule's `errnoRet`, or EPERM.
fn action(action: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<SeccompAction> {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Failure::new(format!(
                "linux.seccomp.{field}: SCMP_ACT_NOTIFY needs a listener mini-runc does not have"
            )));
        }
    })
}

/// A rule's `args`, all of which must hold. Several on the same argument are
/// alternatives instead (libseccomp cannot AND them; runc makes one rule of each).
fn rules(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<SeccompRule>> {
    let condition = |a: &LinuxSeccompArg| {
        let op = match a.op() {
            Op::ScmpCmpNe => Cmp::Ne,
            Op::ScmpCmpLt => Cmp::Lt,
            Op::ScmpCmpLe => Cmp::Le,
            Op::ScmpCmpEq => Cmp::Eq,
            Op::ScmpCmpGe => Cmp::Ge,
            Op::ScmpCmpGt => Cmp::Gt,
            // (argument & value) == valueTwo
            Op::ScmpCmpMaskedEq => Cmp::MaskedEq(a.value()),
        };
        let value = match op {
            Cmp::MaskedEq(_) => a.value_two().unwrap_or(0),
            _ => a.value(),
        };
        let index = u8::try_from(a.index()).unwrap_or(u8::MAX);
        SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
            .map_err(|e| Failure::new(format!("linux.seccomp.{field}.args: {e}")))
    };
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>>>()?;
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort();
    indexes.dedup();
    let groups = match indexes.len() < args.len() {
        true => conditions.into_iter().map(|c| vec![c]).collect(),
        false if conditions.is_empty() => vec![],
        false => vec![conditions],
    };
    (groups.into_iter())
        .map(|g| {
            SeccompRule::new(g).map_err(|e| Failure::new(format!("linux.seccomp.{field}: {e}")))
        })
        .collect()
}

/// What the kernel offers that seccompiler does not: refused, never ignored.
fn refuse_what_we_cannot_do(profile: &LinuxSeccomp) -> Result<()> {
    if profile.listener_path().is_some() {
        return Err(Failure::new(
            "linux.seccomp.listenerPath is not supported by mini-runc",
        ));
    }
    for flag in profile.flags().iter().flatten() {
        if *flag != LinuxSeccompFilterFlag::SeccompFilterFlagTsync {
            let name = serde_json::to_value(flag).unwrap_or_default();
            return Err(Failure::new(format!(
                "linux.seccomp.flags: {} is not supported by mini-runc",
                name.as_str().unwrap_or("?")
            )));
        }
    }
    Ok(())
}

/// x86-64's x32 calls carry the architecture's own audit number, with bit 30 set
/// in the call's: no rule names them, so they would get a filter's default answer
/// ("allow", in a deny-list). Killed, as calls of other architectures are.
fn x32_guard() -> Option<BpfProgram> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let instruction = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    Some(vec![
        // A = seccomp_data.nr (at offset 0)
        instruction(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        // if A >= 0x40000000 go on, else skip one
        instruction(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            0,
            1,
            0x4000_0000,
        ),
        instruction(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_KILL_PROCESS,
        ),
        instruction(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ])
}

impl Filters {
    /// Install them on this process with seccomp(2); exec keeps them, for good.
    /// Without no_new_privs, the kernel asks for CAP_SYS_ADMIN: this sets nothing
    /// itself (seccompiler's own apply sets no_new_privs, which a profile with
    /// `noNewPrivileges: false` must not get).
    pub fn apply(&self) -> Result<()> {
        let instructions: usize = self.programs.iter().map(Vec::len).sum();
        narrate::step(
            format!(
                "seccomp(SECCOMP_SET_MODE_FILTER) x{}   # {instructions} instructions; {} calls named, the rest get the default answer",
                self.programs.len(),
                self.calls
            ),
            "# no shell equivalent: docker run's --security-opt seccomp=...",
        );
        for program in &self.programs {
            let prog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: the kernel copies the program; `prog` and `program` outlive the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                )
            };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Failure::new(format!("installing the seccomp filter: {e}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_compiles_and_fits_in_a_bpf_program() {
        let filters = compile(&docker_default()).expect("compiles");
        for program in &filters.programs {
            // BPF_MAXINSNS: the kernel refuses longer programs.
            assert!(program.len() <= 4096, "{} instructions", program.len());
        }
    }

    #[test]
    fn no_call_is_listed_twice() {
        let mut all: Vec<_> = ALLOWED.iter().chain(ALLOWED_ON_THIS_ARCH).collect();
        let listed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), listed);
        for special in [
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_socket,
            libc::SYS_personality,
        ] {
            assert!(!all.contains(&&special));
        }
    }

    /// The answers a forked child gets under `filters` to `calls` (errno, 0 for
    /// success), and the signal that ended it, if one did.
    fn answers(filters: &Filters, calls: &[&dyn Fn() -> libc::c_long]) -> (Vec<u8>, Option<i32>) {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child makes system calls, writes to a pipe, and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: integer arguments only.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                filters.apply().expect("install");
                for call in calls {
                    let answer = match call() {
                        -1 => std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) as u8,
                        _ => 0,
                    };
                    let _ = nix::unistd::write(&write, &[answer]);
                }
                // SAFETY: end the child here.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                let mut answers = vec![];
                std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut answers)
                    .expect("read");
                let signal = match status {
                    nix::sys::wait::WaitStatus::Signaled(_, signal, _) => Some(signal as i32),
                    _ => None,
                };
                (answers, signal)
            }
        }
    }

    /// A deny-list in config.json's format: everything allowed but what is named.
    #[test]
    fn a_profile_in_the_spec_format_answers_as_written() {
        let profile: LinuxSeccomp = serde_json::from_str(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
                ]
            }"#,
        )
        .expect("a profile");
        let filters = compile(&profile).expect("compiles");
        // SAFETY (in the closures): system calls with integer or constant arguments.
        let (answers, signal) = answers(
            &filters,
            &[
                &|| unsafe { libc::syscall(libc::SYS_getppid) },
                &|| unsafe {
                    libc::syscall(
                        libc::SYS_mkdirat,
                        libc::AT_FDCWD,
                        c"/nonexistent/x".as_ptr(),
                        0o755,
                    )
                },
                // either of two values of the same argument: refused
                &|| unsafe { libc::syscall(libc::SYS_getpriority, 1, 0) },
                &|| unsafe { libc::syscall(libc::SYS_getpriority, 2, 0) },
                &|| unsafe { libc::syscall(libc::SYS_getpriority, 0, 0) },
                // the x32 numbering of getppid: killed
                #[cfg(target_arch = "x86_64")]
                &|| unsafe { libc::syscall(libc::SYS_getppid | 0x4000_0000) },
            ],
        );
        let (eacces, eperm) = (libc::EACCES as u8, libc::EPERM as u8);
        assert_eq!(answers[..5], [0, eacces, eperm, eperm, 0]);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(signal, Some(libc::SIGSYS), "an x32 call is killed");
        }
    }

    #[test]
    fn what_the_kernel_has_and_seccompiler_lacks_is_refused() {
        let refused = |json: &str| {
            let profile: LinuxSeccomp = serde_json::from_str(json).expect("a profile");
            compile(&profile)
                .expect_err("refused")
                .message()
                .to_string()
        };
        assert_eq!(
            refused(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY needs a listener mini-runc does not have"
        );
        assert_eq!(
            refused(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#),
            "linux.seccomp.flags: SECCOMP_FILTER_FLAG_LOG is not supported by mini-runc"
        );
    }

    /// What the kernel answers, under the profile, in a forked child.
    #[test]
    fn the_kernel_answers_eperm_enosys_or_lets_through() {
        let filters = compile(&docker_default()).expect("compiles");
        let (read, write) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child makes system calls, writes to a pipe, and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let errno = |rc: libc::c_long| match rc {
                    -1 => std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) as u8,
                    _ => 0,
                };
                // SAFETY: integer arguments only; nothing outlives the child.
                let answers = unsafe {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    filters.apply().expect("install");
                    [
                        errno(libc::syscall(libc::SYS_getppid)),
                        errno(libc::syscall(libc::SYS_keyctl, 0, -3, 0)),
                        errno(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)),
                        errno(libc::syscall(libc::SYS_clone3, 0, 0)),
                        errno(libc::syscall(
                            libc::SYS_socket,
                            libc::AF_VSOCK,
                            libc::SOCK_STREAM,
                            0,
                        )),
                        errno(libc::syscall(libc::SYS_personality, 0x0040000)),
                    ]
                };
                let _ = nix::unistd::write(&write, &answers);
                // SAFETY: end the child here.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                nix::sys::wait::waitpid(child, None).expect("wait");
                let mut answers = [0u8; 6];
                nix::unistd::read(&read, &mut answers).expect("read");
                let (eperm, enosys) = (libc::EPERM as u8, libc::ENOSYS as u8);
                assert_eq!(answers, [0, eperm, eperm, enosys, eperm, eperm]);
            }
        }
    }
}
