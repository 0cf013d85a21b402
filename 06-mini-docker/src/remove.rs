//! `rm`: a container's files go; if its monitor is gone too (killed with SIGKILL),
//! what the monitor would have undone is undone here.

use labkit::failure::Context;
use labkit::{Failure, Result};

use crate::container::Container;

/// The container's directory: config, state, log, writable layer.
pub fn remove_files(container: &Container) -> Result<()> {
    match std::fs::remove_dir_all(&container.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(|| container.dir.display().to_string()),
    }
}

/// A cgroup left by a monitor that was killed.
pub fn remove_leftover_cgroup(container: &Container) {
    if let Ok(mut group) = crate::lifecycle::group_of(container) {
        let _ = group.kill();
        group.remove();
    }
}

pub fn in_use(name: &str) -> Failure {
    Failure::new(format!(
        "You cannot remove a running container {name}. Stop the container before \
         attempting removal or force remove (rm -f)"
    ))
}
