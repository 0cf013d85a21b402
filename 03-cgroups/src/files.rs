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

/// The processes in a cgroup (`cgroup.procs`).
pub fn procs(dir: &Path) -> Vec<i32> {
    read(&dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
