//! Replace this process with the user's command, and explain failure the way
//! `chroot(1)` and `docker run` number it: 127 when the command is not there, 126
//! when it is there but cannot be run.
//!
//! Called *after* `chroot`, so every path here is resolved inside the new root; the
//! messages name that path, and the host path it corresponds to.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use labkit::Failure;
use labkit::doctor::DEFAULT_PATH;
use labkit::failure::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND};
use labkit::narrate::{self, c_array, shell_line};
use nix::errno::Errno;

/// Find `name` the way `execvp(3)` does: as given when it holds a `/`, otherwise in
/// each directory of `PATH`.
pub fn resolve(name: &str, path_var: &str) -> Result<PathBuf, Failure> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::new(format!(
                "{name}: not found in the new root (looked in PATH={path_var})"
            ))
            .exit_code(EXIT_NOT_FOUND)
        })
}

// ANCHOR: cloexec
/// Only stdin, stdout and stderr go through exec: every other descriptor this
/// process has (inherited from whoever started the tool, or opened by it) is marked
/// close-on-exec. A descriptor that leaked into a container was CVE-2024-21626.
/// `now`: closed at once instead (for a process that will not exec: chapter 02's init).
pub fn close_above_stdio(now: bool) {
    close_from(3, now)
}

/// From descriptor `first` on (those below it, after stderr, are passed on on
/// purpose: runc's `--preserve-fds`, as systemd's socket activation uses it).
fn close_from(first: u32, now: bool) {
    let flags = if now { 0 } else { libc::CLOSE_RANGE_CLOEXEC };
    // SAFETY: close_range on our own descriptors, which nothing uses after this.
    let done = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if done == 0 {
        return;
    }
    // Before Linux 5.11: one at a time.
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in open {
        // SAFETY: our own descriptors (the one read_dir used is closed already).
        unsafe {
            match now {
                true => libc::close(fd),
                false => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            }
        };
    }
}
// ANCHOR_END: cloexec

// ANCHOR: exec
/// `execve(2)` the command; returns only if that failed, with the reason.
/// `host_root` is where the new root is on the host, for the messages.
pub fn exec_command(command: &[String], host_root: &Path) -> Failure {
    // The host's PATH names host directories (~/.cargo/bin ...) that mean nothing in
    // the new root: use the standard one there, as docker does.
    // SAFETY: single-threaded (we are a freshly forked child about to exec).
    unsafe { std::env::set_var("PATH", DEFAULT_PATH) };
    exec_with_path(command, host_root)
}

/// Like `exec_command`, with the `PATH` the caller has set (a container's own
/// environment: the image's, or `-e PATH=...`).
pub fn exec_with_path(command: &[String], host_root: &Path) -> Failure {
    exec_keeping(command, host_root, 0)
}

/// Like `exec_with_path`, passing on the `keep` descriptors after stderr (3, 4...).
pub fn exec_keeping(command: &[String], host_root: &Path, keep: u32) -> Failure {
    let Some(name) = command.first() else {
        return Failure::new("no command given");
    };
    let search = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    close_from(3 + keep, false);
    for fd in 3..3 + keep as i32 {
        // SAFETY: descriptors passed to us to pass on: they go through exec.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    let path = match resolve(name, &search) {
        Ok(path) => path,
        Err(failure) => return failure,
    };
    let (Ok(c_path), Ok(argv)) = (
        CString::new(path.as_os_str().as_encoded_bytes()),
        command
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>(),
    ) else {
        return Failure::new("the command contains a NUL byte");
    };
    // ANCHOR: hole_execve
    narrate::step(
        format!("execve({:?}, {}, environ)", path, c_array(command)),
        format!("exec {}", shell_line(command)),
    );
    let errno = match nix::unistd::execv(&c_path, &argv) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    explain_exec_failure(&path, errno, host_root)
    // ANCHOR_END: hole_execve
}
// ANCHOR_END: exec

fn explain_exec_failure(path: &Path, errno: Errno, host_root: &Path) -> Failure {
    let on_host = host_root.join(path.strip_prefix("/").unwrap_or(path));
    let shown = path.display();
    match errno {
        Errno::ENOENT => match std::fs::symlink_metadata(path) {
            Err(_) => Failure::new(format!(
                "{shown}: no such file inside the new root (on the host: {})",
                on_host.display()
            )),
            Ok(m) if m.file_type().is_symlink() && !path.exists() => Failure::new(format!(
                "{shown} is a symlink to {}, which does not exist inside the new root",
                std::fs::read_link(path).unwrap_or_default().display()
            )),
            // The file is there, so what is missing is what the kernel starts first:
            // its program interpreter (the dynamic loader).
            Ok(_) => {
                let loader = crate::elf::read_needs(path).and_then(|n| n.interpreter);
                Failure::new(match loader {
                    Some(loader) => format!(
                        "{shown} is here, but its loader {loader} is not: a dynamically linked \
                         program needs its loader and libraries inside the root too \
                         (ch01-chroot rootfs --from host copies them)"
                    ),
                    None => format!("{shown} is here, but its interpreter (#! line) is not"),
                })
            }
        }
        .exit_code(EXIT_NOT_FOUND),
        Errno::EACCES => Failure::new(format!(
            "{shown}: permission denied: not an executable file (on the host: {})",
            on_host.display()
        ))
        .exit_code(EXIT_CANNOT_EXECUTE),
        Errno::ENOEXEC => Failure::new(format!(
            "{shown}: exec format error: neither a program for this machine nor a #! script"
        ))
        .exit_code(EXIT_CANNOT_EXECUTE),
        other => Failure::new(format!("{shown}: cannot execute: {}", other.desc()))
            .exit_code(EXIT_CANNOT_EXECUTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_searches_path_only_for_bare_names() {
        assert_eq!(
            resolve("/x/y", "/bin").expect("as given"),
            Path::new("/x/y")
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tool"), "").expect("write");
        let path_var = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(
            resolve("tool", &path_var).expect("found"),
            dir.path().join("tool")
        );
        let missing = resolve("nosuch", "/nonexistent").unwrap_err();
        assert_eq!(missing.code(), 127);
        assert_eq!(
            missing.message(),
            "nosuch: not found in the new root (looked in PATH=/nonexistent)"
        );
    }
}
