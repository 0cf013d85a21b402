//! Reading and writing cgroup files, narrated: a cgroup is configured by writing
//! text into files, exactly as `echo 64M > memory.max` would.

use std::path::Path;

use labkit::failure::describe_io;
use labkit::narrate;
use labkit::{Failure, Result};

/// `echo VALUE > PATH`, narrated.
pub fn write(path: &Path, value: &str) -> Result<()> {
    narrate::step(
        format!("write({:?}, {value:?})", path),
        format!(
            "echo {} > {}",
            labkit::narrate::shell_quote(value),
            path.display()
        ),
    );
    std::fs::write(path, value).map_err(|e| {
        Failure::new(format!(
            "writing {value:?} to {}: {}",
            path.display(),
            describe_io(&e)
        ))
    })
}

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
