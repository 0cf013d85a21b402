//! Reading and writing cgroup files, narrated: a cgroup is configured by writing
//! text into files, exactly as `echo 64M > memory.max` would.

use std::path::Path;

use labkit::failure::describe_io;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;

// ANCHOR: write
/// `echo VALUE > PATH`, narrated, and written as crun writes cgroup files: the
/// group's directory is opened first (`O_DIRECTORY | O_NOFOLLOW`), then the file
/// relative to it with `O_NOFOLLOW`. A symlink put in the way (in place of the
/// directory or of the file) makes the write fail instead of sending the value
/// somewhere else.
pub fn write(path: &Path, value: &str) -> Result<()> {
    narrate::step(
        format!("write({:?}, {value:?})", path),
        format!(
            "echo {} > {}",
            labkit::narrate::shell_quote(value),
            path.display()
        ),
    );
    let failed =
        |why: String| Failure::new(format!("writing {value:?} to {}: {why}", path.display()));
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(failed("not a file in a cgroup".into()));
    };
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dir =
        open(dir, flags | OFlag::O_PATH, Mode::empty()).map_err(|e| failed(e.desc().into()))?;
    let flags = OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let file = openat(&dir, name, flags, Mode::empty()).map_err(|e| failed(e.desc().into()))?;
    nix::unistd::write(&file, value.as_bytes())
        .map(drop)
        .map_err(|e| failed(e.desc().into()))
}
// ANCHOR_END: write

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

pub fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// A value from a `key value` file (`cpu.stat`, `memory.events`, `pids.events`).
pub fn keyed(path: &Path, key: &str) -> Option<u64> {
    read(path)?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `mkdir PATH`, narrated.
pub fn mkdir(path: &Path) -> Result<()> {
    narrate::step(
        format!("mkdir({path:?})"),
        format!("mkdir {}", path.display()),
    );
    std::fs::create_dir(path).map_err(|e| {
        Failure::new(format!(
            "cannot create {}: {}",
            path.display(),
            describe_io(&e)
        ))
    })
}

/// `rmdir PATH`, narrated; false when the kernel refuses (the group is not empty).
pub fn rmdir(path: &Path) -> bool {
    narrate::step(
        format!("rmdir({path:?})"),
        format!("rmdir {}", path.display()),
    );
    std::fs::remove_dir(path).is_ok() || !path.exists()
}

/// A `user.` extended attribute of a cgroup directory (Linux 5.7+ keeps them on
/// cgroupfs; systemd marks the groups it delegates with `user.delegate` this way).
pub fn label(path: &Path, name: &str) -> Option<String> {
    let value = xattr::get(path, name).ok()??;
    String::from_utf8(value).ok()
}

/// Set a `user.` extended attribute, narrated: `setfattr -n NAME -v VALUE PATH`.
pub fn set_label(path: &Path, name: &str, value: &str) -> Result<()> {
    narrate::step(
        format!("setxattr({path:?}, {name:?}, {value:?})"),
        format!(
            "setfattr -n {name} -v {} {}",
            labkit::narrate::shell_quote(value),
            path.display()
        ),
    );
    xattr::set(path, name, value.as_bytes()).map_err(|e| {
        Failure::new(format!(
            "labelling {} ({name}): {}",
            path.display(),
            describe_io(&e)
        ))
    })
}

/// Remove a `user.` extended attribute, narrated.
pub fn remove_label(path: &Path, name: &str) {
    narrate::step(
        format!("removexattr({path:?}, {name:?})"),
        format!("setfattr -x {name} {}", path.display()),
    );
    let _ = xattr::remove(path, name);
}

/// The words of a file such as `cgroup.subtree_control`.
pub fn words(path: &Path) -> Vec<String> {
    read(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The processes in a cgroup (`cgroup.procs`).
pub fn procs(dir: &Path) -> Vec<i32> {
    read(&dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_in_the_way_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (group, elsewhere) = (tmp.path().join("group"), tmp.path().join("elsewhere"));
        std::fs::create_dir(&group).unwrap();
        std::fs::write(&elsewhere, "untouched").unwrap();
        // In place of the file: O_NOFOLLOW.
        std::os::unix::fs::symlink(&elsewhere, group.join("memory.max")).unwrap();
        let refused = write(&group.join("memory.max"), "64M").unwrap_err();
        assert!(refused.message().contains("symbolic links"), "{refused}");
        // In place of the group's directory: O_DIRECTORY | O_NOFOLLOW.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&group, &link).unwrap();
        let refused = write(&link.join("cgroup.procs"), "1").unwrap_err();
        assert!(refused.message().contains("Not a directory"), "{refused}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "untouched");
        // A file that is there is written (cgroup files are never created).
        std::fs::write(group.join("pids.max"), "max").unwrap();
        write(&group.join("pids.max"), "10").unwrap();
        assert_eq!(
            std::fs::read_to_string(group.join("pids.max")).unwrap(),
            "10"
        );
    }
}
