//! Build a root filesystem: a directory tree with `/bin`, `/etc`, `/proc`, ... that
//! can be the `/` of a process. An image is exactly this, "a distribution without a
//! kernel": the kernel is the host's. Nothing is downloaded; everything comes from
//! the host.

use std::path::{Path, PathBuf};

use labkit::doctor::Host;
use labkit::failure::Context;
use labkit::narrate::{self, shell_line};
use labkit::{Failure, Result};

use crate::busybox::{self, Busybox};
use crate::libraries::LibraryResolver;
use crate::rootfs_writer::{RootfsWriter, relative_target};

/// A file that says "this directory is a rootfs that `ch01-chroot rootfs` made", so
/// that building again into it needs no `--force`.
pub const MARKER: &str = "/etc/lab-rootfs";

/// The host programs a `--from host` rootfs gets: enough for a shell session.
pub const HOST_PROGRAMS: &[&str] = &[
    "sh", "ls", "cat", "echo", "ps", "id", "hostname", "mount", "umount", "sleep", "env", "pwd",
    "mkdir", "rmdir", "rm", "cp", "mv", "ln", "touch", "grep", "head", "tail", "wc", "uname",
    "true", "false", "chroot", "stat", "readlink", "kill", "date",
];

/// What to build: where programs come from, whether to write into a foreign
/// directory, and extra host programs to copy in (with their libraries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `None`: busybox when one is found, otherwise host programs.
    pub source: Option<Source>,
    pub force: bool,
    /// Host programs (a path, or a name looked up on PATH) copied to `/bin`.
    pub add: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A busybox found on the host, with a link per applet.
    Busybox,
    /// Host programs with every library they need.
    Host,
}

/// What `build` made, for the summary a learner reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub dir: PathBuf,
    pub source: Source,
    pub busybox: Option<Busybox>,
    pub applets: Vec<PathBuf>,
    pub programs: Vec<String>,
    /// Programs copied because of `--add`.
    pub added: Vec<String>,
    /// Programs not copied, with why (`ps: not on PATH`).
    pub skipped: Vec<(String, String)>,
    pub libraries: Vec<PathBuf>,
    pub files: usize,
    pub links: usize,
    pub bytes: u64,
}

// ANCHOR: build
/// Build a rootfs in `dir` (busybox when found, else host programs).
pub fn build(dir: &Path, options: &Options) -> Result<Built> {
    let host = Host::real();
    let found_busybox = busybox::find(&host);
    let added = resolve_added(&host, &options.add)?;
    let source = match (options.source, &found_busybox) {
        (Some(Source::Busybox), None) => return Err(no_busybox(&host, dir)),
        (Some(chosen), _) => chosen,
        (None, Some(_)) => Source::Busybox,
        (None, None) => Source::Host,
    };
    let dir = prepare_dir(dir, options.force)?;
    let mut out = RootfsWriter::new(&dir);
    narrate::step(
        format!(
            "mkdir({:?}, ...)",
            dir.join("{bin,etc,proc,sys,dev,tmp,root}")
        ),
        format!(
            "mkdir -p {}/{{bin,etc,proc,sys,dev,tmp,root}}",
            dir.display()
        ),
    );
    // Empty mount points: chapter 02 mounts /proc, /sys and /dev on them.
    for (name, mode) in [
        ("/bin", 0o755),
        ("/etc", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/tmp", 0o1777),
        ("/root", 0o700),
    ] {
        out.dir(name, mode)?;
    }
    let mut built = Built {
        dir: dir.clone(),
        source,
        busybox: None,
        applets: vec![],
        programs: vec![],
        added: vec![],
        skipped: vec![],
        libraries: vec![],
        files: 0,
        links: 0,
        bytes: 0,
    };
    // Dynamically linked programs, whose loader and libraries must come too.
    let mut dynamic = match (source, found_busybox) {
        (Source::Busybox, Some(bb)) => add_busybox(&mut out, &mut built, bb)?,
        _ => add_host_programs(&mut out, &mut built, &host)?,
    };
    for (name, real) in added {
        copy_step(&mut out, &real, &Path::new("/bin").join(&name))?;
        built.added.push(name);
        dynamic.push(real);
    }
    if !dynamic.is_empty() {
        add_libraries(&mut out, &mut built, &dynamic)?;
    }
    add_etc(&mut out, source)?;
    (built.files, built.links, built.bytes) = (out.files, out.links, out.bytes);
    Ok(built)
}
// ANCHOR_END: build

/// `--add` programs as (name in /bin, real host file), or which one is missing.
fn resolve_added(host: &Host, add: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    add.iter()
        .map(|program| {
            let by_name = program.components().count() == 1;
            let found = if by_name {
                host.find_program(&program.to_string_lossy())
            } else {
                Some(program.clone()).filter(|p| p.is_file())
            };
            let real = found
                .and_then(|p| std::fs::canonicalize(p).ok())
                .ok_or_else(|| {
                    Failure::new(format!(
                        "--add {}: no such program{}",
                        program.display(),
                        if by_name { " on PATH" } else { "" }
                    ))
                })?;
            let name = program
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, real))
        })
        .collect()
}

fn no_busybox(host: &Host, dir: &Path) -> Failure {
    Failure::new(format!(
        "--from busybox: no busybox on PATH ({}). Install a static one ({}), \
         or build from host programs: ch01-chroot rootfs {} --from host",
        host.search_path(),
        host.install_command(&busybox::PACKAGE),
        dir.display()
    ))
}

/// Check (and create) the target directory: never `/`, never someone else's
/// non-empty directory unless forced, and writable.
fn prepare_dir(dir: &Path, force: bool) -> Result<PathBuf> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Failure::new(format!(
                "{} is a file, not a directory: a rootfs is a directory tree; choose another path",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(_) => {
            narrate::step(
                format!("mkdir({:?})", dir),
                format!("mkdir -p {}", dir.display()),
            );
            std::fs::create_dir_all(dir).context(|| {
                format!(
                    "cannot create {} (choose a directory you can write to)",
                    dir.display()
                )
            })?;
        }
    }
    let dir = std::fs::canonicalize(dir).context(|| format!("cannot resolve {}", dir.display()))?;
    if is_system_dir(&dir) {
        return Err(Failure::new(format!(
            "refusing to build a rootfs over the host's own {}: choose an empty directory such as /tmp/rootfs",
            dir.display()
        )));
    }
    let ours = dir.join(MARKER.trim_start_matches('/')).exists();
    let empty = std::fs::read_dir(&dir)
        .context(|| format!("cannot read {}", dir.display()))?
        .next()
        .is_none();
    if !empty && !ours && !force {
        return Err(Failure::new(format!(
            "{} is not empty and is not a rootfs made by ch01-chroot: \
             choose an empty directory, or add --force to write into it anyway",
            dir.display()
        )));
    }
    nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).context(|| {
        format!(
            "cannot write to {} (choose a directory you can write to, or run as root)",
            dir.display()
        )
    })?;
    Ok(dir)
}

fn is_system_dir(dir: &Path) -> bool {
    const SYSTEM: &[&str] = &[
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root",
        "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    ];
    SYSTEM.iter().any(|s| dir == Path::new(s))
}

// ANCHOR: busybox
/// Returns the programs that need libraries: none for a static busybox.
fn add_busybox(out: &mut RootfsWriter, built: &mut Built, bb: Busybox) -> Result<Vec<PathBuf>> {
    let inside = Path::new("/bin/busybox");
    copy_step(out, &bb.path, inside)?;
    // A dynamic busybox needs its loader and libraries, just like host programs.
    let dynamic = if bb.is_static {
        vec![]
    } else {
        vec![bb.path.clone()]
    };
    let applets = bb.applets()?;
    narrate::step(
        format!(
            "symlink(\"busybox\", \"{}/bin/ls\") x {}",
            built.dir.display(),
            applets.len()
        ),
        format!(
            "for a in $(busybox --list-full); do ln -s /bin/busybox {}/$a; done",
            built.dir.display()
        ),
    );
    for applet in &applets {
        out.symlink(&relative_target(applet, inside), applet)?;
    }
    built.applets = applets;
    built.busybox = Some(bb);
    Ok(dynamic)
}
// ANCHOR_END: busybox

// ANCHOR: host
/// Returns the programs copied, which all need their libraries.
fn add_host_programs(
    out: &mut RootfsWriter,
    built: &mut Built,
    host: &Host,
) -> Result<Vec<PathBuf>> {
    let mut sources = vec![];
    for name in HOST_PROGRAMS {
        let Some(on_path) = host.find_program(name) else {
            built.skipped.push((name.to_string(), "not on PATH".into()));
            continue;
        };
        // /bin/sh is often a link (to dash or bash): copy what it points to.
        let real = std::fs::canonicalize(&on_path).unwrap_or(on_path);
        if crate::elf::read_needs(&real).is_none() {
            built.skipped.push((
                name.to_string(),
                format!("{} is a script, not a program", real.display()),
            ));
            continue;
        }
        copy_step(out, &real, &Path::new("/bin").join(name))?;
        built.programs.push(name.to_string());
        sources.push(real);
    }
    if !built.programs.iter().any(|p| p == "sh") {
        return Err(Failure::new(
            "no usable /bin/sh on this host: cannot make a rootfs --from host",
        ));
    }
    Ok(sources)
}

/// Copy the loader and every library `programs` need, each to the same path it has on
/// the host, which is where the loader inside the chroot will look for it.
fn add_libraries(out: &mut RootfsWriter, built: &mut Built, programs: &[PathBuf]) -> Result<()> {
    narrate::step(
        format!(
            "read ELF PT_INTERP and DT_NEEDED of {} program(s)",
            programs.len()
        ),
        "readelf --program-headers --dynamic PROGRAM",
    );
    let libraries = LibraryResolver::for_host().closure(programs).map_err(|m| {
        Failure::new(format!(
            "{} needs {}, which is in none of the loader's directories: is it installed?",
            m.needed_by.display(),
            m.name
        ))
    })?;
    for lib in &libraries {
        copy_step(out, lib, lib)?;
    }
    // The host's loader cache maps library names to the paths we kept, so libraries
    // from directories the loader does not search by default are found too.
    if Path::new("/etc/ld.so.cache").exists() {
        out.copy(Path::new("/etc/ld.so.cache"), Path::new("/etc/ld.so.cache"))?;
    }
    built.libraries = libraries.into_iter().collect();
    Ok(())
}
// ANCHOR_END: host

fn copy_step(out: &mut RootfsWriter, from: &Path, inside: &Path) -> Result<()> {
    let to = format!("{}{}", out.root().display(), inside.display());
    narrate::step(
        format!("copy_file_range({:?} -> {:?})", from, to),
        shell_line(&["cp", &from.to_string_lossy(), &to]),
    );
    out.copy(from, inside)
}

/// The files every Unix userland expects: who root is, and what the machine is called.
fn add_etc(out: &mut RootfsWriter, source: Source) -> Result<()> {
    narrate::step(
        "write(\"/etc/{passwd,group,hostname}\")",
        "echo 'root:x:0:0:root:/root:/bin/sh' > etc/passwd  # and group, hostname",
    );
    out.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    out.write("/etc/group", "root:x:0:\nnogroup:x:65534:\n")?;
    out.write("/etc/hostname", "rootfs\n")?;
    let source = match source {
        Source::Busybox => "busybox",
        Source::Host => "host",
    };
    out.write(
        MARKER,
        &format!(
            "# A root filesystem made by `ch01-chroot rootfs --from {source}`.\nsource={source}\n"
        ),
    )
}
