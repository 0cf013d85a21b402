//! The build context: the directory `build` is given, sent once (copied into the
//! build's scratch directory, as the Docker CLI sends it to the daemon as a tar)
//! without what `.dockerignore` leaves out; and files copied between directories
//! by descriptors, for the context and for `COPY`.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use ch04_overlayfs::tree;
use labkit::{Failure, Result};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

// ANCHOR: ignore
/// `.dockerignore`: one pattern per line, `#` comments, `!` for an exception.
/// The last pattern that matches a path decides; a pattern that matches a
/// directory matches everything in it.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.strip_prefix('!') {
                Some(rest) => (false, segments(rest.trim())),
                None => (true, segments(l)),
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        Ignore { patterns }
    }

    /// Is `rel` (a path in the context, `/`-separated) left out?
    pub fn ignores(&self, rel: &str) -> bool {
        let path: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let mut ignored = false;
        for (ignore, pattern) in &self.patterns {
            let hit = (1..=path.len()).any(|n| matches(pattern, &path[..n]));
            if hit {
                ignored = *ignore;
            }
        }
        ignored
    }

    /// Some `!` exception could bring back a path under an ignored directory.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(ignore, _)| !ignore)
    }
}
// ANCHOR_END: ignore

/// A pattern cleaned as Go's `filepath.Clean` would, in `/`-separated parts.
fn segments(pattern: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

/// `**` is any number of directories; the other parts are [`glob`]s.
pub fn matches(pattern: &[String], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(p), _) if p == "**" => {
            matches(&pattern[1..], path) || (!path.is_empty() && matches(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => glob(p, s) && matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

/// One path part against a shell pattern: `*`, `?`, `[a-z]`, `[^x]`, `\` escapes.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|n| go(&p[1..], &t[n..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(2).position(|c| *c == ']').map(|e| e + 2) else {
                    return t.first() == Some(&'[') && go(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else { return false };
                let (negate, set) = match p[1] {
                    '^' | '!' => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &t[1..])
            }
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

pub fn has_wildcards(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

// ANCHOR: beneath
/// Open `rel` under `dir`, following symlinks only where they stay inside:
/// `in_root` reads them as if `dir` were `/` (an image's root, where `/bin` may be a
/// link); otherwise one that leads out (`../..`, `/etc`) is refused. Either way no
/// path can reach the host's files.
pub fn open_in(dir: BorrowedFd, rel: &str, in_root: bool, what: &str) -> Result<File> {
    let scope = match in_root {
        true => ResolveFlag::RESOLVE_IN_ROOT,
        false => ResolveFlag::RESOLVE_BENEATH,
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(scope | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let place = if in_root {
        "the image"
    } else {
        "the build context"
    };
    nix::fcntl::openat2(dir, rel, how)
        .map(File::from)
        .map_err(|e| match e {
            nix::errno::Errno::EXDEV => Failure::new(format!(
                "{what}: the path leaves {place} through a symlink: refused"
            )),
            nix::errno::Errno::ENOENT => Failure::new(format!("{what}: not found in {place}")),
            e => Failure::new(format!("{what}: {}", e.desc())),
        })
}
// ANCHOR_END: beneath

/// Who copied files belong to: their own owner (the context's snapshot), or one
/// uid and gid (`COPY`, root unless `--chown`); and `--chmod`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    pub ids: Option<(u32, u32)>,
    pub mode: Option<u32>,
}

/// Copy the file or directory `src` (an `O_PATH` descriptor) to the name `name` in
/// the directory `dest`; a directory's entries for which `keep` says yes (given the
/// path relative to `src`, and whether it is a directory). Symlinks are copied as symlinks, never followed.
pub fn copy(
    src: &File,
    dest: BorrowedFd,
    name: &str,
    owner: Owner,
    keep: &dyn Fn(&Path, bool) -> bool,
) -> Result<()> {
    copy_at(src, dest, name, owner, keep, Path::new(""))
}

fn copy_at(
    src: &File,
    dest: BorrowedFd,
    name: &str,
    owner: Owner,
    keep: &dyn Fn(&Path, bool) -> bool,
    rel: &Path,
) -> Result<()> {
    let failed = |e: nix::errno::Errno| Failure::new(format!("{}: {}", rel.display(), e.desc()));
    let meta = src.metadata().map_err(|e| Failure::new(e.to_string()))?;
    let (uid, gid) = owner.ids.unwrap_or((meta.uid(), meta.gid()));
    let mode = owner.mode.unwrap_or(meta.permissions().mode() & 0o7777);
    let kind = meta.file_type();
    // What was made, open: its owner and mode are set through the descriptor, not
    // the name (a process sharing the destination, as containers share a volume,
    // could swap the name for a symlink to a host file in between).
    let made: OwnedFd = if kind.is_symlink() {
        let target = tree::link_target(src)?;
        let _ = nix::unistd::unlinkat(dest, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(target.as_os_str(), dest, name).map_err(failed)?;
        let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        return nix::unistd::fchownat(dest, name, Some(uid.into()), Some(gid.into()), at)
            .map_err(failed);
    } else if kind.is_dir() {
        match nix::sys::stat::mkdirat(dest, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(failed(e)),
        }
        let to = open_dir(dest, name)?;
        let from = tree::reopen(src)?;
        for (child, entry) in tree::entries(from.as_fd())? {
            let rel = rel.join(&child);
            let is_dir = entry.metadata().is_ok_and(|m| m.is_dir());
            if keep(&rel, is_dir) {
                let child = child.to_string_lossy();
                copy_at(&entry, to.as_fd(), &child, owner, keep, &rel)?;
            }
        }
        // A directory that was there already keeps its mode (Docker's rule).
        if rel.as_os_str().is_empty() && name == "." {
            return Ok(());
        }
        to
    } else if kind.is_file() {
        let mut from = tree::reopen(src)?;
        let _ = nix::unistd::unlinkat(dest, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let fd = nix::fcntl::openat(
            dest,
            name,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(failed)?;
        let mut to = File::from(fd);
        std::io::copy(&mut from, &mut to)
            .map_err(|e| Failure::new(format!("{}: {e}", rel.display())))?;
        to.into()
    } else {
        return Ok(()); // devices, fifos and sockets are not copied
    };
    nix::unistd::fchown(&made, Some(uid.into()), Some(gid.into())).map_err(failed)?;
    nix::sys::stat::fchmod(&made, Mode::from_bits_truncate(mode)).map_err(failed)
}

/// The directory `name` in `dir`, opened without following a symlink.
fn open_dir(dir: BorrowedFd, name: &str) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, name, flags, Mode::empty())
        .map_err(|e| Failure::new(format!("{name}: {}", e.desc())))
}

/// Make the directory `path` under `root`, read as the image's `/`: a symlink on the
/// way is followed inside the root (an absolute one starts again at the root), and
/// what its target lacks is made, as Docker makes it. Returns the directory, open.
pub fn make_dirs(root: &File, path: &str) -> Result<OwnedFd> {
    use nix::sys::stat::{SFlag, fstatat};
    let parts = |p: &str| -> Vec<String> {
        let p = Path::new(p).components();
        p.filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
    };
    let mut todo = std::collections::VecDeque::from(parts(path));
    let mut done = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        let shown = done.join(&part).display().to_string();
        let dir = open_in(root.as_fd(), &done.to_string_lossy(), true, &shown)?;
        match nix::sys::stat::mkdirat(dir.as_fd(), part.as_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Failure::new(format!("{shown}: {}", e.desc()))),
        }
        let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let stat = fstatat(dir.as_fd(), part.as_str(), at)
            .map_err(|e| Failure::new(format!("{shown}: {}", e.desc())))?;
        match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => done.push(&part),
            SFlag::S_IFLNK => {
                links += 1;
                let target = nix::fcntl::readlinkat(dir.as_fd(), part.as_str())
                    .map_err(|e| Failure::new(format!("{shown}: {}", e.desc())))?;
                let target = target.to_string_lossy().into_owned();
                if links > 40 {
                    return Err(Failure::new(format!(
                        "{shown}: too many levels of symlinks"
                    )));
                }
                if target.starts_with('/') {
                    done = PathBuf::from("/");
                }
                for p in parts(&target).into_iter().rev() {
                    todo.push_front(p);
                }
            }
            _ => return Err(Failure::new(format!("{shown}: not a directory"))),
        }
    }
    let dir = open_in(
        root.as_fd(),
        &done.to_string_lossy(),
        true,
        &done.display().to_string(),
    )?;
    // From O_PATH to a descriptor that can hold new entries.
    open_dir(dir.as_fd(), ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let ignore = Ignore::parse(
            "# comment\n*.log\n!keep.log\nsecret/\n**/*.tmp\n/build\ndocs/**/draft*\n",
        );
        for (path, ignored) in [
            ("a.log", true),
            ("keep.log", false),
            ("sub/a.log", false), // `*.log` is for the top only
            ("secret", true),
            ("secret/key", true),
            ("x/y/z.tmp", true),
            ("z.tmp", true),
            ("build/out", true),
            ("docs/a/b/draft1.md", true),
            ("docs/final.md", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(ignore.ignores(path), ignored, "{path}");
        }
        assert!(ignore.has_exceptions());
    }

    #[test]
    fn globs() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.gz"));
        assert!(glob("f?le[0-9]", "file7"));
        assert!(!glob("f[^i]le", "file"));
        assert!(glob("a\\*", "a*"));
    }
}
