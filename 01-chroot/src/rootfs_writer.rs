//! Writing into a rootfs without ever writing outside it.
//!
//! A rootfs may already hold symlinks such as `lib -> /usr/lib`. Inside a chroot that
//! points into the rootfs; from the host it points at the host's own `/usr/lib`.
//! So every path is created one component at a time, and a symlink on the way is
//! refused rather than followed. An existing file is unlinked before it is replaced,
//! so that writing `bin/sh` never writes *through* an old `bin/sh -> busybox` link.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use labkit::failure::Context;
use labkit::{Failure, Result};

#[derive(Debug)]
pub struct RootfsWriter {
    root: PathBuf,
    /// Regular files written, and their bytes; symlinks made.
    pub files: usize,
    pub bytes: u64,
    pub links: usize,
}

impl RootfsWriter {
    pub fn new(root: &Path) -> Self {
        RootfsWriter {
            root: root.to_path_buf(),
            files: 0,
            bytes: 0,
            links: 0,
        }
    }

    /// The rootfs, as a host path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `inside` (an absolute path as seen from inside the rootfs),
    /// with every directory before it created and checked.
    pub fn prepare(&self, inside: &Path) -> Result<PathBuf> {
        let mut host = self.root.clone();
        let parts: Vec<Component> = inside.components().collect();
        let Some((last, dirs)) = parts
            .split_last()
            .filter(|(last, _)| matches!(last, Component::Normal(_)))
        else {
            // Never the root itself: `host` would then be the host path above it all.
            return Err(Failure::new(format!(
                "{:?}: not a path below the root",
                inside
            )));
        };
        for part in dirs {
            match part {
                Component::RootDir => continue,
                Component::Normal(name) => host.push(name),
                _ => {
                    return Err(Failure::new(format!(
                        "{}: no `..` allowed",
                        inside.display()
                    )));
                }
            }
            self.ensure_real_dir(&host, 0o755)?;
        }
        host.push(last.as_os_str());
        Ok(host)
    }

    // ANCHOR: ensure_real_dir
    fn ensure_real_dir(&self, host: &Path, mode: u32) -> Result<()> {
        match std::fs::symlink_metadata(host) {
            Ok(m) if m.file_type().is_symlink() => Err(Failure::new(format!(
                "{} is a symlink; refusing to write through it (it could lead out of the rootfs)",
                host.display()
            ))),
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Failure::new(format!(
                "{} is a file where a directory is needed",
                host.display()
            ))),
            Err(_) => std::fs::DirBuilder::new()
                .mode(mode)
                .create(host)
                .context(|| format!("cannot create {}", host.display())),
        }
    }
    // ANCHOR_END: ensure_real_dir

    /// Remove whatever non-directory sits at `host`, so that we replace it.
    pub fn clear(host: &Path) -> Result<()> {
        match std::fs::symlink_metadata(host) {
            Ok(m) if m.is_dir() => Err(Failure::new(format!(
                "{} is a directory where a file is needed",
                host.display()
            ))),
            Ok(_) => {
                std::fs::remove_file(host).context(|| format!("cannot replace {}", host.display()))
            }
            Err(_) => Ok(()),
        }
    }

    /// `mkdir -p` inside the rootfs, with `mode` for the last directory (`/tmp` is 1777).
    pub fn dir(&mut self, inside: &str, mode: u32) -> Result<()> {
        let host = self.prepare(Path::new(inside))?;
        self.ensure_real_dir(&host, mode)?;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
            .context(|| format!("cannot chmod {}", host.display()))
    }

    /// Copy a host file (following symlinks: we want its content) to `inside`.
    pub fn copy(&mut self, from_host: &Path, inside: &Path) -> Result<()> {
        let host = self.prepare(inside)?;
        Self::clear(&host)?;
        let bytes = std::fs::copy(from_host, &host)
            .context(|| format!("cannot copy {} to {}", from_host.display(), host.display()))?;
        self.files += 1;
        self.bytes += bytes;
        Ok(())
    }

    pub fn write(&mut self, inside: &str, contents: &str) -> Result<()> {
        let host = self.prepare(Path::new(inside))?;
        Self::clear(&host)?;
        std::fs::write(&host, contents).context(|| format!("cannot write {}", host.display()))?;
        self.files += 1;
        self.bytes += contents.len() as u64;
        Ok(())
    }

    /// A symlink at `inside` whose target is `target`, exactly as given.
    pub fn symlink(&mut self, target: &Path, inside: &Path) -> Result<()> {
        let host = self.prepare(inside)?;
        Self::clear(&host)?;
        symlink(target, &host).context(|| format!("cannot link {}", host.display()))?;
        self.links += 1;
        Ok(())
    }
}

/// The relative link target from `link` to `target`, both absolute inside the rootfs:
/// `/usr/bin/env` -> `/bin/busybox` gives `../../bin/busybox`. Relative links resolve
/// the same from the host and from inside the chroot.
pub fn relative_target(link: &Path, target: &Path) -> PathBuf {
    let from: Vec<_> = link
        .parent()
        .unwrap_or(Path::new("/"))
        .components()
        .collect();
    let to: Vec<_> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for part in &to[common..] {
        rel.push(part.as_os_str());
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links() {
        let rel = |a: &str, b: &str| relative_target(Path::new(a), Path::new(b));
        assert_eq!(rel("/bin/ls", "/bin/busybox"), Path::new("busybox"));
        assert_eq!(
            rel("/usr/bin/env", "/bin/busybox"),
            Path::new("../../bin/busybox")
        );
        assert_eq!(rel("/linuxrc", "/bin/busybox"), Path::new("bin/busybox"));
    }

    #[test]
    fn never_the_root_itself() {
        let root = tempfile::tempdir().expect("temp dir");
        let mut w = RootfsWriter::new(root.path());
        assert!(w.dir("/", 0o700).is_err());
        assert!(w.write("", "x").is_err());
    }

    #[test]
    fn never_writes_through_a_symlink() {
        let outside = tempfile::tempdir().expect("temp dir");
        let root = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("lib")).expect("link");
        let mut w = RootfsWriter::new(root.path());
        let err = w.write("/lib/libc.so.6", "x").unwrap_err();
        assert!(err.message().contains("is a symlink; refusing"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).expect("read").count(), 0);
    }

    #[test]
    fn replacing_a_link_does_not_write_through_it() {
        let root = tempfile::tempdir().expect("temp dir");
        let mut w = RootfsWriter::new(root.path());
        w.write("/bin/busybox", "the real one").expect("write");
        w.symlink(Path::new("busybox"), Path::new("/bin/sh"))
            .expect("link");
        w.write("/bin/sh", "a shell").expect("write");
        let busybox = std::fs::read_to_string(root.path().join("bin/busybox")).expect("read");
        assert_eq!(busybox, "the real one");
    }
}
