//! The overlay mount: several directories shown as one.
//!
//! `lowerdir` (read-only, several joined by `:`, the leftmost on top), `upperdir`
//! (where every change goes), `workdir` (overlay's scratch space, on the same
//! filesystem as the upper), and the mount point, which shows the merged view.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use labkit::failure::{Context, describe_io};
use labkit::narrate;
use labkit::{Failure, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// overlayfs stacks at most this many lower layers (OVL_MAX_STACK in the kernel).
pub const MAX_LOWERS: usize = 500;
/// The options of one mount(2) call must fit in one page.
const MAX_OPTIONS: usize = 4095;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Top first, as the kernel wants them.
    pub lowers: Vec<PathBuf>,
    /// None: a read-only overlay of the lowers alone.
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    pub merged: PathBuf,
    /// Mounted `volatile` (Linux 5.10): see `Overlay::volatile`.
    pub volatile: bool,
}

fn canonical(what: &str, path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .map_err(|e| Failure::new(format!("{what} {}: {}", path.display(), describe_io(&e))))
}

/// Is `path` itself a mount point (a line of /proc/self/mountinfo)?
pub fn is_mount_point(path: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let wanted = path.to_string_lossy().replace(' ', "\\040");
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

impl Overlay {
    /// Check everything the kernel would refuse, and say why, before mounting.
    /// `upper` and `work` are created when missing.
    pub fn new(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<Overlay> {
        if lowers.is_empty() {
            return Err(Failure::new(
                "--lower: at least one lower directory is needed",
            ));
        }
        if lowers.len() > MAX_LOWERS {
            return Err(Failure::new(format!(
                "--lower: {} lower directories, but overlayfs stacks at most {MAX_LOWERS}: merge some layers first",
                lowers.len()
            )));
        }
        let lowers = lowers
            .iter()
            .map(|l| {
                let dir = canonical("--lower", l)?;
                if !dir.is_dir() {
                    return Err(Failure::new(format!(
                        "--lower {}: not a directory",
                        l.display()
                    )));
                }
                Ok(dir)
            })
            .collect::<Result<Vec<_>>>()?;
        for dir in [upper, work] {
            std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        let (upper, work) = (canonical("--upper", upper)?, canonical("--work", work)?);
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).unwrap_or(0);
        if dev(&upper) != dev(&work) {
            return Err(Failure::new(format!(
                "--work {} is on another filesystem than --upper {}: overlayfs renames files from one to \
                 the other, so they must share a filesystem (put both under one directory)",
                work.display(),
                upper.display()
            )));
        }
        let merged = canonical("the mount point", merged)?;
        if is_mount_point(&merged) {
            return Err(Failure::new(format!(
                "{} is already a mount point: mount the overlay on an empty directory (or, if it \
                 is an overlay of yours, unmount it first: ch04-overlayfs umount {0})",
                merged.display()
            )));
        }
        let overlay = Overlay {
            lowers,
            upper: Some(upper),
            work: Some(work),
            merged,
            volatile: false,
        };
        let short = overlay.linked().options();
        if short.len() > MAX_OPTIONS {
            return Err(Failure::new(format!(
                "the mount options are {} bytes, more than the {MAX_OPTIONS} one mount(2) call takes: \
                 use shorter paths (or fewer lowers)",
                short.len()
            )));
        }
        Ok(overlay)
    }

    /// No upper layer: the merged view is read-only (the kernel wants two lowers then).
    pub fn read_only(lowers: &[PathBuf], merged: &Path) -> Result<Overlay> {
        // ANCHOR: hole_read_only
        if lowers.len() < 2 {
            return Err(Failure::new(
                "--lower: a read-only overlay (no --upper) needs at least two lowers",
            ));
        }
        let lowers = lowers
            .iter()
            .map(|l| canonical("--lower", l))
            .collect::<Result<Vec<_>>>()?;
        let merged = canonical("the mount point", merged)?;
        Ok(Overlay {
            lowers,
            upper: None,
            work: None,
            merged,
            volatile: false,
        })
        // ANCHOR_END: hole_read_only
    }

    // ANCHOR: volatile
    /// Never flushed to disk: no `fsync` reaches the upper's filesystem, and the
    /// unmount does not wait for a sync of it. For a writable layer that is thrown
    /// away after use (`mini-docker run --rm`, as Podman does): after a crash the
    /// kernel refuses to mount that upper again, which is fine for a layer nobody keeps.
    pub fn volatile(self) -> Overlay {
        Overlay {
            volatile: self.upper.is_some(),
            ..self
        }
    }
    // ANCHOR_END: volatile

    /// The mount options: the layers, and `volatile` when asked.
    pub fn options(&self) -> String {
        let volatile = if self.volatile { ",volatile" } else { "" };
        format!("{}{volatile}", self.layers())
    }

    /// `lowerdir=L1:L2,upperdir=U,workdir=W`
    fn layers(&self) -> String {
        // ANCHOR: hole_options
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect();
        match (&self.upper, &self.work) {
            (Some(upper), Some(work)) => {
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lowers.join(":"),
                    upper.display(),
                    work.display()
                )
            }
            _ => format!("lowerdir={}", lowers.join(":")),
        }
        // ANCHOR_END: hole_options
    }

    /// The same overlay with its lowers named `0`, `1`, ...: links, made by
    /// [`Overlay::mount`] in a directory of their own, which is the working directory
    /// while mounting.
    fn linked(&self) -> Overlay {
        Overlay {
            lowers: (0..self.lowers.len())
                .map(|i| PathBuf::from(i.to_string()))
                .collect(),
            ..self.clone()
        }
    }

    // ANCHOR: short_lowers
    /// Mount options must fit in one page (4 KiB): about 40 layers named by their
    /// full paths. Past that, each lower is given by a short link (`0`, `1`, ...) in a
    /// directory made for the mount, relative to it as the working directory; the
    /// kernel follows the links once, at mount time (Docker's overlay2 keeps such
    /// links in `/var/lib/docker/overlay2/l/`).
    pub fn mount(&self) -> Result<()> {
        if self.options().len() <= MAX_OPTIONS {
            return self.mount_now();
        }
        let base = (self.work.as_deref().and_then(Path::parent)).unwrap_or(Path::new("/tmp"));
        let links = tempfile::Builder::new()
            .prefix(".lowers-")
            .tempdir_in(base)
            .context(|| base.display().to_string())?;
        for (i, lower) in self.lowers.iter().enumerate() {
            let link = links.path().join(i.to_string());
            std::os::unix::fs::symlink(lower, &link).context(|| link.display().to_string())?;
        }
        let here = std::fs::File::open(".").context(|| "the working directory".into())?;
        narrate::step(
            format!("chdir({:?})", links.path()),
            format!(
                "cd {}   # {} links: 0 -> {}, ...",
                links.path().display(),
                self.lowers.len(),
                self.lowers[0].display()
            ),
        );
        nix::unistd::chdir(links.path()).context(|| links.path().display().to_string())?;
        let mounted = self.linked().mount_now();
        nix::unistd::fchdir(&here).context(|| "fchdir back".into())?;
        mounted
    }
    // ANCHOR_END: short_lowers

    // ANCHOR: mount
    fn mount_now(&self) -> Result<()> {
        // ANCHOR: hole_mount
        let options = self.options();
        narrate::step(
            format!(
                "mount(\"overlay\", {:?}, \"overlay\", 0, {options:?})",
                self.merged
            ),
            format!(
                "mount -t overlay overlay -o {options} {}",
                self.merged.display()
            ),
        );
        mount(
            Some("overlay"),
            &self.merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|e| {
            Failure::new(format!(
                "mounting the overlay on {}: {} (see: ch04-overlayfs doctor)",
                self.merged.display(),
                e.desc()
            ))
        })
        // ANCHOR_END: hole_mount
    }
    // ANCHOR_END: mount

    // ANCHOR: mount_privately
    /// Mount it in a mount namespace of this process's own, with private propagation:
    /// no other process sees the overlay, and it goes away with the process whatever
    /// happens. `why` ends the narrated `unshare --mount` line.
    pub fn mount_privately(&self, why: &str) -> Result<()> {
        narrate::step("unshare(CLONE_NEWNS)", format!("unshare --mount   # {why}"));
        unshare(CloneFlags::CLONE_NEWNS).context(|| "unshare(CLONE_NEWNS)".into())?;
        ch02_namespaces::container_fs::make_private()?;
        self.mount().or_else(|failure| match self.volatile {
            // A kernel before 5.10 knows no `volatile`: then synced, as usual.
            true => Overlay {
                volatile: false,
                ..self.clone()
            }
            .mount(),
            false => Err(failure),
        })
    }
    // ANCHOR_END: mount_privately
}

/// Unmount an overlay (and only an overlay) mounted on `merged`.
pub fn umount(merged: &Path) -> Result<()> {
    let merged = canonical("umount", merged)?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let wanted = merged.to_string_lossy().replace(' ', "\\040");
    let is_overlay = text.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.get(4) == Some(&wanted.as_str())
            && f.iter().skip_while(|x| **x != "-").nth(1) == Some(&"overlay")
    });
    if !is_overlay {
        return Err(Failure::new(format!(
            "{}: no overlay is mounted there",
            merged.display()
        )));
    }
    narrate::step(
        format!("umount2({merged:?}, 0)"),
        format!("umount {}", merged.display()),
    );
    umount2(&merged, MntFlags::empty()).context(|| format!("umount {}", merged.display()))
}
