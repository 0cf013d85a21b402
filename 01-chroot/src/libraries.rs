//! Find every shared library a set of programs needs, the way the dynamic loader
//! would: `DT_RUNPATH`/`DT_RPATH`, then the directories of `/etc/ld.so.conf`, then
//! the loader's default directories. Libraries need libraries, so this repeats until
//! nothing new turns up. No `ldd`: it runs the program's loader, and its output is
//! not an interface.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::elf::{ElfNeeds, read_needs};

/// The loader's built-in directories (glibc's and musl's), multiarch ones included.
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

#[derive(Debug, Clone)]
pub struct LibraryResolver {
    dirs: Vec<PathBuf>,
}

/// A library that no directory holds: the rootfs would not run this program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingLibrary {
    pub name: String,
    pub needed_by: PathBuf,
}

impl LibraryResolver {
    /// Directories as this host's loader knows them.
    pub fn for_host() -> Self {
        let mut dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        dirs.extend(DEFAULT_DIRS.iter().map(PathBuf::from));
        let mut seen = BTreeSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        LibraryResolver { dirs }
    }

    // ANCHOR: closure
    /// The loader and every library `programs` need, transitively, as host paths.
    pub fn closure(&self, programs: &[PathBuf]) -> Result<BTreeSet<PathBuf>, MissingLibrary> {
        let mut found = BTreeSet::new();
        let mut todo: Vec<PathBuf> = programs.to_vec();
        let mut seen_names = BTreeSet::new();
        while let Some(file) = todo.pop() {
            let Some(needs) = read_needs(&file) else {
                continue;
            };
            if let Some(interp) = &needs.interpreter
                && found.insert(PathBuf::from(interp))
            {
                todo.push(PathBuf::from(interp));
            }
            for name in &needs.needed {
                if !seen_names.insert(name.clone()) {
                    continue;
                }
                let lib = self
                    .find(name, &needs, &file)
                    .ok_or_else(|| MissingLibrary {
                        name: name.clone(),
                        needed_by: file.clone(),
                    })?;
                if found.insert(lib.clone()) {
                    todo.push(lib);
                }
            }
        }
        Ok(found)
    }
    // ANCHOR_END: closure

    fn find(&self, name: &str, wanted_by: &ElfNeeds, file: &Path) -> Option<PathBuf> {
        let origin = file.parent().unwrap_or(Path::new("/"));
        let own = wanted_by
            .search_dirs
            .iter()
            .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy())));
        own.chain(self.dirs.iter().cloned())
            .map(|dir| dir.join(name))
            .find(|candidate| {
                // A library of the wrong class (32-bit in /lib) is skipped, as ld.so does.
                read_needs(candidate).is_some_and(|lib| {
                    lib.class_64 == wanted_by.class_64 && lib.machine == wanted_by.machine
                })
            })
    }
}

/// `/etc/ld.so.conf`: one directory a line, and `include` lines with a glob.
fn read_ld_so_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: u8) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        if let Some(pattern) = line.strip_prefix("include") {
            if depth < 4 {
                for file in expand_glob(pattern.trim()) {
                    read_ld_so_conf(&file, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// The one glob shape ld.so.conf uses: `DIR/*.conf` (a `*` in the file name).
fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return vec![];
    };
    let name = name.to_string_lossy();
    let (prefix, suffix) = name.split_once('*').unwrap_or((&name, ""));
    let exact = !name.contains('*');
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            if exact {
                n == name
            } else {
                n.starts_with(prefix) && n.ends_with(suffix)
            }
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_in_ld_so_conf() {
        let etc = tempfile::tempdir().expect("temp dir");
        let dir = etc.path().join("ld.so.conf.d");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("a.conf"), "/opt/a/lib\n# comment\n").expect("write");
        std::fs::write(dir.join("b.conf"), "/opt/b/lib\n").expect("write");
        std::fs::write(dir.join("c.txt"), "/not/this\n").expect("write");
        let top = etc.path().join("ld.so.conf");
        std::fs::write(
            &top,
            format!("include {}/*.conf\n/usr/local/lib\n", dir.display()),
        )
        .expect("write");
        let mut dirs = vec![];
        read_ld_so_conf(&top, &mut dirs, 0);
        assert_eq!(
            dirs,
            ["/opt/a/lib", "/opt/b/lib", "/usr/local/lib"].map(PathBuf::from)
        );
    }

    #[test]
    fn the_shell_needs_a_loader_and_libc() {
        let sh = std::fs::canonicalize("/bin/sh").expect("a shell");
        let libs = LibraryResolver::for_host()
            .closure(&[sh])
            .expect("all found");
        if read_needs(Path::new("/bin/sh")).is_some_and(|n| n.is_static()) {
            assert!(libs.is_empty());
        } else {
            assert!(
                libs.iter().any(|l| l.to_string_lossy().contains("ld-")),
                "{libs:?}"
            );
            assert!(
                libs.iter().any(|l| l.to_string_lossy().contains("libc")),
                "{libs:?}"
            );
        }
    }
}
