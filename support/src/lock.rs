//! One lock file per directory, held with `flock(2)`: the lock goes when its holder
//! drops the guard, or dies (the kernel releases it with the last descriptor).

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::failure::describe_io;
use crate::{Failure, Result};

/// Hold `dir/lock` exclusively until the returned guard is dropped (waiting for
/// whoever holds it now). `dir` must exist.
pub fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::new(format!("{}: {}", path.display(), describe_io(&e))))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Failure::new(format!("flock({}): {}", path.display(), e.desc())))
}
