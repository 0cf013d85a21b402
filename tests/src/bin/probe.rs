//! `probe`: what an attacker's program inside a container would try, for the
//! security tests. Copied into a test image with its libraries (chapter 01's
//! `rootfs --add`).
//!
//! - `probe syscalls`: make system calls the default seccomp profile forbids, and
//!   print what the kernel answered.
//! - `probe watch SECONDS`: look for processes of the runtime joining this
//!   container (`mini-docker exec`, before it has become the command) and try to
//!   read their environment and descriptors, as a process that may ptrace them could.

use std::collections::BTreeSet;

/// Make one call, and say what the kernel answered (read errno at once: the next
/// call would overwrite it).
fn answer(call: impl FnOnce() -> libc::c_long) -> String {
    if call() >= 0 {
        return "allowed".to_string();
    }
    let err = std::io::Error::last_os_error();
    let name = match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EINVAL) => "EINVAL",
        _ => "other",
    };
    format!("{name} ({err})")
}

fn syscalls() {
    // SAFETY (all): integers or valid C strings, and nothing changes outside this
    // process (a key in its own keyring, a user namespace of its own).
    println!(
        "getppid(): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_getppid) })
    );
    println!(
        "keyctl(KEYCTL_GET_KEYRING_ID): {}",
        // The session keyring's id.
        answer(|| unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) })
    );
    println!(
        "add_key(\"user\", \"probe\"): {}",
        answer(|| unsafe {
            let (kind, name, data) = (c"user", c"probe", c"x");
            // -2: the process keyring.
            libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                name.as_ptr(),
                data.as_ptr(),
                1,
                -2,
            )
        })
    );
    println!(
        "unshare(CLONE_NEWUSER): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) })
    );
    // A size of 0 is invalid: EINVAL from the kernel itself, if the call reaches it.
    println!(
        "clone3(NULL, 0): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_clone3, 0, 0) })
    );
}

/// Every process here whose name is `mini-docker`: the runtime, come in.
fn joining() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "mini-docker")
        })
        .collect()
}

/// Watch until the file `stop` exists (the test makes it when its `exec`s are
/// over: a loaded or emulated machine takes any time). For each joining process: read its environment (the
/// runtime's own, from its command line, is recognised by MINI_DOCKER_ROOT) and its
/// descriptors above stdio, and take hold of its program (`/proc/PID/exe`). At
/// the end, when the `exec`s are over and nothing runs that program, try to write
/// into each one held (CVE-2019-5736). During exec, the new program can be seen
/// under the old name for a moment: its environment is the container's and it
/// holds only stdio, so that is no leak; its program is the container's own.
fn watch(stop: &str) {
    let (mut seen, mut environ, mut fds) = (BTreeSet::new(), 0, 0);
    let mut held: Vec<std::fs::File> = vec![];
    println!("watching");
    while !std::path::Path::new(stop).exists() {
        for pid in joining() {
            seen.insert(pid);
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if env.windows(17).any(|w| w == b"MINI_DOCKER_ROOT=") {
                environ += 1;
            }
            let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten();
            let above_stdio = open
                .flatten()
                .filter(|e| e.file_name().to_str().and_then(|n| n.parse().ok()) > Some(2))
                .any(|e| std::fs::read_link(e.path()).is_ok());
            if above_stdio {
                fds += 1;
            }
            if let Ok(exe) = std::fs::File::open(format!("/proc/{pid}/exe")) {
                use std::os::unix::fs::MetadataExt;
                let id = |m: std::fs::Metadata| (m.dev(), m.ino());
                let ours = std::fs::metadata("/bin/busybox").map(id).ok();
                if exe.metadata().map(id).ok() != ours && held.len() < 10 {
                    held.push(exe);
                }
            }
        }
    }
    let mut wrote = 0;
    let mut refused = BTreeSet::new();
    for file in &held {
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
        match std::fs::OpenOptions::new().append(true).open(&path) {
            Ok(mut f) => match std::io::Write::write_all(&mut f, b"pwned") {
                Ok(()) => {
                    wrote += 1;
                    eprintln!("wrote into {:?}", std::fs::read_link(&path));
                }
                Err(e) => drop(refused.insert(e.to_string())),
            },
            Err(e) => drop(refused.insert(e.to_string())),
        }
    }
    println!(
        "saw {} joining processes; read the runtime's environment {environ} times, \
         its descriptors {fds} times; held its program {} times, wrote into it {wrote} \
         times; refused: {refused:?}",
        seen.len(),
        held.len(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["syscalls"] => syscalls(),
        ["watch", stop] => watch(stop),
        _ => {
            eprintln!("usage: probe syscalls | probe watch SECONDS");
            std::process::exit(2);
        }
    }
}
