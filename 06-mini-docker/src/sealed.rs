//! Never let a container reach this program's file (CVE-2019-5736).
//!
//! The processes that go into a container (the container's first process before it
//! execs, and `exec`'s) are this program. A container that makes its `/bin/sh` the
//! script `#!/proc/self/exe` turns the next `exec sh` into *this program*, running
//! in the container; a process there can then open `/proc/PID/exe`, the host's
//! `mini-docker`, and write into it once nothing runs it any more (until then the
//! kernel answers "text file busy"). The next root who runs it runs the
//! container's code.
//!
//! So, before making any container process, `run`, `start`, `restart`, `exec` and
//! `build` (whose RUN steps are containers) re-execute themselves from a view of
//! their file that cannot be written: a read-only bind mount of it that is attached
//! nowhere (`open_tree` + `mount_setattr`, Linux 5.12), or, where that is not
//! allowed, a sealed copy in memory (`memfd_create` + `F_SEAL_WRITE`), as runc does. Every process forked
//! from here on has that as its `/proc/self/exe`.

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};

/// `struct mount_attr`, for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn last_error(what: &str) -> Failure {
    Failure::new(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Is the file we run from one that cannot be written: on a read-only mount, or a
/// memfd sealed against writes?
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    let read_only = nix::sys::statvfs::fstatvfs(&exe)
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    // SAFETY: F_GET_SEALS only reads the descriptor's seals.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    read_only || (seals > 0 && seals & libc::F_SEAL_WRITE != 0)
}

// ANCHOR: read_only_view
/// A file (our own: `/proc/self/exe`) seen through a read-only bind mount made for
/// us alone: cloned with `open_tree(OPEN_TREE_CLONE)`, it is attached to no mount
/// namespace, so nobody can see it, and it goes away with the last process
/// running from it.
pub fn read_only_view(file: &CStr) -> Result<OwnedFd> {
    // SAFETY: a valid C string; the kernel returns a new descriptor or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            file.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if tree < 0 {
        return Err(last_error(&format!("open_tree({file:?}, OPEN_TREE_CLONE)")));
    }
    // SAFETY: the kernel just gave us this descriptor.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: our descriptor, an empty path and a struct of the size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(last_error("mount_setattr(MOUNT_ATTR_RDONLY)"));
    }
    Ok(tree)
}
// ANCHOR_END: read_only_view

// ANCHOR: sealed_copy
/// Our file copied into memory, then sealed: no write, no resize, no new seals.
pub fn sealed_copy() -> Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: a valid C string; the kernel returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"mini-docker".as_ptr(), flags) };
    if fd < 0 {
        return Err(last_error("memfd_create"));
    }
    // SAFETY: the kernel just gave us this descriptor.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    let mut exe = File::open("/proc/self/exe").context(|| "/proc/self/exe".to_string())?;
    std::io::copy(&mut exe, &mut copy).context(|| "copying /proc/self/exe".to_string())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(last_error("fcntl(F_ADD_SEALS)"));
    }
    Ok(copy.into())
}
// ANCHOR_END: sealed_copy

// ANCHOR: reexec
/// Re-execute this program, same arguments and environment, from a file nobody can
/// write; return at once if that is already what runs.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        // exec from a descriptor names us after it ("3"): take our name back.
        let _ = nix::sys::prctl::set_name(c"mini-docker");
        return Ok(());
    }
    let (fd, how) = match read_only_view(c"/proc/self/exe") {
        Ok(fd) => (fd, "a read-only bind mount of it, attached nowhere"),
        Err(_) => (sealed_copy()?, "a sealed memfd copy of it"),
    };
    narrate::step(
        format!("execveat(fd, \"\", argv, environ, AT_EMPTY_PATH)   # ourselves, from {how}"),
        "# no shell equivalent",
    );
    let cstrings = |items: Vec<OsString>| -> Result<Vec<CString>> {
        items
            .into_iter()
            .map(|s| CString::new(s.as_bytes()).map_err(|_| Failure::new("a NUL byte in argv")))
            .collect()
    };
    let argv = cstrings(std::env::args_os().collect())?;
    let env = cstrings(
        std::env::vars_os()
            .map(|(k, v)| [k, "=".into(), v].into_iter().collect())
            .collect(),
    )?;
    let errno = match nix::unistd::fexecve(&fd, &argv, &env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    Err(Failure::new(format!(
        "re-executing from a sealed copy: {}",
        errno.desc()
    )))
}
// ANCHOR_END: reexec

#[cfg(test)]
mod tests {
    use super::*;

    /// What a container process would try: open the file for writing, and write.
    fn write_through(fd: &OwnedFd) -> std::io::Result<()> {
        use std::io::Write;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(b"pwned")
    }

    #[test]
    fn the_read_only_view_cannot_be_opened_for_writing() {
        // Not our own file: the kernel would answer "text file busy" first, while
        // we run it; a container's process waits until nothing does.
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("program");
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let name = CString::new(file.as_os_str().as_bytes()).expect("path");
        let view = read_only_view(&name).expect("open_tree and mount_setattr (as root)");
        let err = write_through(&view).expect_err("must not be writable");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    }

    #[test]
    fn the_sealed_copy_cannot_be_written() {
        let copy = sealed_copy().expect("memfd");
        let err = write_through(&copy).expect_err("must not be writable");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        let exe = std::fs::metadata("/proc/self/exe").expect("exe");
        let copied = nix::sys::stat::fstat(&copy).expect("fstat");
        assert_eq!(copied.st_size as u64, exe.len(), "a whole copy");
    }
}
