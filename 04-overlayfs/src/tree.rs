//! Walking a directory tree by descriptors, never by path.
//!
//! A tree that someone else can change while we walk it (a running container's
//! files, its writable layer) must not be walked as `dir/a/b/c`: rename a directory
//! to a symlink between two steps, and the next path goes wherever the link points
//! (CVE-2018-15664). Here each entry is opened beneath the descriptor of its
//! directory with `O_PATH|O_NOFOLLOW`: a symlink is opened as itself, and whatever
//! is renamed later, the descriptors we hold still name what we looked at.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use labkit::{Failure, Result};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

fn fail(what: &str, e: nix::errno::Errno) -> Failure {
    Failure::new(format!("{what}: {}", e.desc()))
}

// ANCHOR: entries
/// The entries of the directory `dir`, sorted by name (so that every walk is
/// reproducible), each opened beneath it as itself (`O_PATH|O_NOFOLLOW`): its
/// `metadata()` is an `fstat`, a symlink is not followed.
pub fn entries(dir: BorrowedFd) -> Result<Vec<(OsString, File)>> {
    let listing = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("opening a directory", e))?;
    let mut names: Vec<OsString> = nix::dir::Dir::from_fd(listing)
        .map_err(|e| fail("reading a directory", e))?
        .iter()
        .flatten()
        .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(dir, name.as_os_str(), flags, Mode::empty())
                .map_err(|e| fail(&name.to_string_lossy(), e))?;
            Ok((name, File::from(fd)))
        })
        .collect()
}
// ANCHOR_END: entries

/// What the `O_PATH` descriptor `file` names, opened for reading: the same inode,
/// reached through the descriptor (`/proc/self/fd/N`), not through a path.
pub fn reopen(file: &File) -> Result<File> {
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| Failure::new(format!("reopening a file: {e}")))
}

/// The target of the symlink `file` (an `O_PATH|O_NOFOLLOW` descriptor) names.
pub fn link_target(file: &File) -> Result<OsString> {
    nix::fcntl::readlinkat(file.as_fd(), "").map_err(|e| fail("reading a symlink", e))
}
