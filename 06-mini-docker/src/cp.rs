//! `cp`: files between the host and a container, either way.
//!
//! A path inside the container is the container's to define: a symlink in it may
//! point at `/etc` or `../../..`, and it must mean the container's `/etc`, never the
//! host's (CVE-2018-15664 was `docker cp` following such a link onto the host). So
//! every container path is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)`,
//! which treats the container's root as `/` for every component, symlinks
//! included; below that, we only ever open names relative to descriptors we hold,
//! with `O_NOFOLLOW`.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use labkit::{Failure, Result};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstatat};

use crate::container::{self, Container};
use crate::store::Store;

/// One end of a `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Host(PathBuf),
    Container(String, PathBuf),
}

/// `NAME:/path` is in a container; anything else is on the host.
pub fn parse(arg: &str) -> End {
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') && !name.starts_with('.') => {
            End::Container(name.to_string(), PathBuf::from(path))
        }
        _ => End::Host(PathBuf::from(arg)),
    }
}

fn fail(what: &Path, e: nix::errno::Errno) -> Failure {
    Failure::new(format!("{}: {}", what.display(), e.desc()))
}

// ANCHOR: resolve
/// `path` inside the container whose root is `root`, resolved by the kernel as if
/// `root` were `/`: `..` stops at it, absolute symlinks start from it.
fn resolve(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, path, how)
}
// ANCHOR_END: resolve

pub fn cp(store: &Store, from: &str, to: &str) -> Result<()> {
    match (parse(from), parse(to)) {
        (End::Container(name, inside), End::Host(host)) => {
            let c = container::find(store, &name)?;
            crate::layers::with_root(store, &c, |root| copy_out(root, &inside, &host))
        }
        (End::Host(host), End::Container(name, inside)) => {
            let c: Container = container::find(store, &name)?;
            crate::layers::with_root(store, &c, |root| copy_in(&host, root, &inside))
        }
        _ => Err(Failure::new(
            "cp: one side must be CONTAINER:PATH and the other a host path",
        )),
    }
}

/// The name a copy takes: the source's last component.
fn base_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::new(format!("{}: names no file", path.display())))
}

fn copy_out(root: &File, inside: &Path, host: &Path) -> Result<()> {
    // O_PATH|O_NOFOLLOW: a symlink named by the last component is copied as itself.
    let source = resolve(root.as_fd(), inside, OFlag::O_PATH | OFlag::O_NOFOLLOW)
        .map_err(|e| fail(inside, e))?;
    let target = match host.is_dir() {
        true => host.join(base_name(inside)?),
        false => host.to_path_buf(),
    };
    out_tree(source.as_fd(), &target)
}

/// Copy what `fd` (an O_PATH descriptor) refers to, to the host path `to`.
fn out_tree(fd: BorrowedFd, to: &Path) -> Result<()> {
    let stat = fstatat(fd, "", nix::fcntl::AtFlags::AT_EMPTY_PATH).map_err(|e| fail(to, e))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    let mode = stat.st_mode & 0o7777;
    let io = |e: std::io::Error| {
        Failure::new(format!(
            "{}: {}",
            to.display(),
            labkit::failure::describe_io(&e)
        ))
    };
    if kind == SFlag::S_IFDIR {
        std::fs::create_dir_all(to).map_err(io)?;
        for (name, entry) in ch04_overlayfs::tree::entries(fd)? {
            out_tree(entry.as_fd(), &to.join(name))?;
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(io)
    } else if kind == SFlag::S_IFLNK {
        let target = nix::fcntl::readlinkat(fd, "").map_err(|e| fail(to, e))?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to).map_err(io)
    } else if kind == SFlag::S_IFREG {
        // Reopen the very inode we resolved, for reading.
        let mut from = File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(io)?;
        let mut file = File::create(to).map_err(io)?;
        std::io::copy(&mut from, &mut file).map_err(io)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)
    } else {
        Err(Failure::new(format!(
            "{}: not a file, directory or symlink: not copied",
            to.display()
        )))
    }
}

// ANCHOR: copy_in
fn copy_in(host: &Path, root: &File, inside: &Path) -> Result<()> {
    // Into an existing directory: under the source's name. Otherwise the last
    // component is the new name, in its parent (which must exist).
    let (parent, name) = match resolve(root.as_fd(), inside, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(dir) => (dir, base_name(host)?),
        Err(_) => {
            let parent = inside.parent().unwrap_or(Path::new("/"));
            let dir = resolve(root.as_fd(), parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(|e| fail(parent, e))?;
            (dir, base_name(inside)?)
        }
    };
    in_tree(host, parent.as_fd(), &name)
}
// ANCHOR_END: copy_in

/// Copy the host path `from` to `name` inside the directory `dir` (a descriptor).
fn in_tree(from: &Path, dir: BorrowedFd, name: &str) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)
        .map_err(|e| Failure::new(format!("{}: {e}", from.display())))?;
    let here = Path::new(name);
    let mode = Mode::from_bits_truncate(meta.mode() & 0o7777);
    if meta.is_dir() {
        match nix::sys::stat::mkdirat(dir, name, mode) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(fail(here, e)),
        }
        let sub = openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(here, e))?;
        let mut entries: Vec<_> = std::fs::read_dir(from)
            .map_err(|e| Failure::new(format!("{}: {e}", from.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            in_tree(
                &entry.path(),
                sub.as_fd(),
                &entry.file_name().to_string_lossy(),
            )?;
        }
        Ok(())
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)
            .map_err(|e| Failure::new(format!("{}: {e}", from.display())))?;
        let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(&target, dir, name).map_err(|e| fail(here, e))
    } else if meta.is_file() {
        let mut to = regular_file_in(dir, name, mode)?;
        let mut source =
            File::open(from).map_err(|e| Failure::new(format!("{}: {e}", from.display())))?;
        std::io::copy(&mut source, &mut to)
            .and_then(|_| to.flush())
            .map_err(|e| Failure::new(format!("{name}: {e}")))
    } else {
        Err(Failure::new(format!(
            "{}: not a file, directory or symlink: not copied",
            from.display()
        )))
    }
}

// ANCHOR: regular_file_in
/// `name` in the container's directory `dir`, open for writing, and surely a regular
/// file: a new one (`O_EXCL`), or one already there, checked on a descriptor of its
/// own (`O_PATH|O_NOFOLLOW`) and reopened through it. Whatever the container put
/// there, a FIFO (whose open would hang us), a device node (whose open would write
/// to a device of the host's: our process is not in the container's device cgroup)
/// or a symlink, is refused, never opened.
fn regular_file_in(dir: BorrowedFd, name: &str, mode: Mode) -> Result<File> {
    let here = Path::new(name);
    let new = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    match openat(dir, name, new | OFlag::O_CLOEXEC, mode) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(fail(here, e)),
    }
    let there = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(here, e))?;
    let stat = fstatat(there.as_fd(), "", nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .map_err(|e| fail(here, e))?;
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(Failure::new(format!(
            "{name}: not a regular file in the container (a device, FIFO, socket or \
             symlink): not overwritten"
        )));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(format!("/proc/self/fd/{}", there.as_raw_fd()))
        .map_err(|e| Failure::new(format!("{name}: {e}")))
}
// ANCHOR_END: regular_file_in
