//! Locks held with `flock(2)`: a lock goes when its holder drops the guard, or
//! dies (the kernel releases it with the last descriptor), so none is ever stale.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::failure::describe_io;
use crate::{Failure, Result};

/// Hold `dir/lock` exclusively until the returned guard is dropped (waiting for
/// whoever holds it now). `dir` must exist.
pub fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let path = dir.join("lock");
    // 0600: no one else may open it, and so no one else may hold it.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Failure::new(format!("{}: {}", path.display(), describe_io(&e))))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Failure::new(format!("flock({}): {}", path.display(), e.desc())))
}

/// Hold an exclusive lock on the directory itself until the guard is dropped: for
/// directories where no lock file can be made (cgroupfs makes no regular files).
pub fn lock_directory_itself(dir: &Path) -> Result<Flock<File>> {
    let file = File::open(dir)
        .map_err(|e| Failure::new(format!("{}: {}", dir.display(), describe_io(&e))))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Failure::new(format!("flock({}): {}", dir.display(), e.desc())))
}
