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
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, sock_filter,
};

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

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule> {
    let len = match op {
        SeccompCmpOp::MaskedEq(_) => SeccompCmpArgLen::Qword,
        _ => SeccompCmpArgLen::Dword,
    };
    SeccompCondition::new(arg, len, op, value)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| Failure::new(format!("seccomp rule: {e}")))
}

// ANCHOR: filters
/// The profile: one BPF program, allowing what is listed and answering EPERM to
/// the rest; and, in front of it, `clone3` answered with ENOSYS ("no such call"),
/// which makes the C library fall back to `clone`, whose flags the filter can
/// see (`clone3` passes them in memory, out of a filter's reach).
pub fn default_profile() -> Result<BpfProgram> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| Failure::new(format!("no seccomp profile for {}", std::env::consts::ARCH)))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
        .iter()
        .chain(ALLOWED_ON_THIS_ARCH)
        .map(|nr| (*nr, vec![]))
        .collect();
    // Threads and processes, but no new namespaces.
    rules.insert(
        libc::SYS_clone,
        vec![condition(0, SeccompCmpOp::MaskedEq(NAMESPACE_FLAGS), 0)?],
    );
    // Any socket but AF_VSOCK (talking to the hypervisor).
    rules.insert(
        libc::SYS_socket,
        vec![condition(0, SeccompCmpOp::Ne, libc::AF_VSOCK as u64)?],
    );
    // personality(2) only to ask, or for the harmless Linux/32-bit personas.
    let personas = [0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];
    rules.insert(
        libc::SYS_personality,
        personas
            .iter()
            .map(|p| condition(0, SeccompCmpOp::Eq, *p))
            .collect::<Result<_>>()?,
    );
    let allow_list = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|e| Failure::new(format!("seccomp filter: {e}")))?;
    // seccompiler gives every listed call the same answer: clone3's own is three
    // instructions of BPF put in front: load the call's number, compare, return.
    let instruction = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let clone3 = [
        // A = seccomp_data.nr (at offset 0)
        instruction(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        // if A == clone3 go on, else skip one
        instruction(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_clone3 as u32,
        ),
        // return ERRNO(ENOSYS)
        instruction(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
    ];
    Ok(clone3.into_iter().chain(allow_list).collect())
}

/// Install the profile on this process; exec keeps it, for good. Needs
/// no_new_privs (or CAP_SYS_ADMIN), so it comes after `drop_privileges`.
pub fn apply_default_profile() -> Result<()> {
    let filter = default_profile()?;
    narrate::step(
        format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, {} instructions)   # {} system calls allowed, EPERM for the rest",
            filter.len(),
            ALLOWED.len() + ALLOWED_ON_THIS_ARCH.len() + 3
        ),
        "# no shell equivalent: docker run's default --security-opt seccomp=...",
    );
    seccompiler::apply_filter(&filter)
        .map_err(|e| Failure::new(format!("installing the seccomp filter: {e}")))
}
// ANCHOR_END: filters

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_compiles_and_fits_in_a_bpf_program() {
        let program = default_profile().expect("compiles");
        // BPF_MAXINSNS: the kernel refuses longer programs.
        assert!(program.len() <= 4096, "{} instructions", program.len());
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

    /// What the kernel answers, under the profile, in a forked child.
    #[test]
    fn the_kernel_answers_eperm_enosys_or_lets_through() {
        let filter = default_profile().expect("compiles");
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
                    seccompiler::apply_filter(&filter).expect("install");
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
