//! `layer unpack TAR[.gz] DIR`: apply an OCI layer onto a directory.
//!
//! A layer comes from somewhere else, so every entry is checked *before anything is
//! written*: no absolute paths, no `..`, nothing through a symlink the layer itself
//! made, no hard link to outside, no device nodes unless allowed. Then, while
//! writing, no path goes through an existing symlink either (chapter 01's writer
//! refuses to). Whiteouts are applied: `.wh.x` deletes `x`, `.wh..wh..opq` empties
//! its directory of what earlier layers put there.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use ch01_chroot::rootfs_writer::RootfsWriter;
use labkit::failure::{Context, describe_io};
use labkit::narrate;
use labkit::{Failure, Result};
use tar::{Archive, EntryType};

use crate::pack::{OPAQUE_MARKER, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: usize,
    pub whiteouts: usize,
    pub opaque: usize,
}

/// The layer's tar stream, gunzipped if it is gzipped (its first two bytes say).
fn decompressed(tar: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(tar).context(|| tar.display().to_string())?;
    let mut magic = [0u8; 2];
    let gz = File::open(tar)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b];
    Ok(match gz {
        true => Box::new(flate2::read::GzDecoder::new(file)),
        false => Box::new(file),
    })
}

fn open(tar: &Path) -> Result<Archive<Box<dyn Read>>> {
    Ok(Archive::new(decompressed(tar)?))
}

/// The layer's diff id: the digest of its tar *uncompressed*, which is what an image
/// config's `rootfs.diff_ids` lists (a manifest lists the digest of the blob as it
/// is stored, often gzipped).
pub fn diff_id(tar: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    std::io::copy(&mut decompressed(tar)?, &mut hash).context(|| tar.display().to_string())?;
    Ok(format!("sha256:{:x}", hash.finalize()))
}

fn bad(tar: &Path, entry: &Path, why: &str) -> Failure {
    Failure::new(format!(
        "{}: entry {:?} {why}: refusing the whole layer, nothing was written",
        tar.display(),
        entry
    ))
}

/// A path inside the layer: relative, with no `..`. `./a/b` becomes `a/b`.
fn inside(tar: &Path, raw: &Path) -> Result<PathBuf> {
    let mut clean = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(tar, raw, "is an absolute path"));
            }
            Component::ParentDir => return Err(bad(tar, raw, "climbs out with `..`")),
        }
    }
    Ok(clean)
}

// ANCHOR: validate
/// Pass 1: every header, nothing written.
fn validate(tar: &Path, allow_devices: bool) -> Result<()> {
    let mut symlinks: BTreeSet<PathBuf> = BTreeSet::new();
    let mut archive = open(tar)?;
    let entries = archive
        .entries()
        .map_err(|e| Failure::new(format!("{}: not a tar archive: {e}", tar.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Failure::new(format!("{}: a damaged entry: {e}", tar.display())))?;
        let raw = entry
            .path()
            .map_err(|e| Failure::new(format!("{}: an unreadable name: {e}", tar.display())))?
            .into_owned();
        let path = inside(tar, &raw)?;
        let through = |p: &Path| {
            p.ancestors()
                .skip(1)
                .find(|a| symlinks.contains(*a))
                .map(Path::to_path_buf)
        };
        // `.wh.NAME` deletes NAME: a name, never the directory itself or its parent.
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let deleted = name
            .as_deref()
            .and_then(|n| n.strip_prefix(WHITEOUT_PREFIX));
        if matches!(deleted, Some("" | "." | "..")) {
            return Err(bad(
                tar,
                &raw,
                "is a whiteout of no name, of its own directory or of its parent",
            ));
        }
        if let Some(link) = through(&path) {
            return Err(bad(
                tar,
                &raw,
                &format!("goes through {:?}, a symlink made by this same layer", link),
            ));
        }
        match entry.header().entry_type() {
            EntryType::Symlink => {
                symlinks.insert(path);
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad(tar, &raw, "is a hard link with no target"))?;
                let target = inside(tar, &target)
                    .map_err(|_| bad(tar, &raw, "is a hard link to a path outside the layer"))?;
                if through(&target.join("x")).is_some() {
                    return Err(bad(tar, &raw, "is a hard link through a symlink"));
                }
            }
            EntryType::Char | EntryType::Block if !allow_devices => {
                return Err(bad(
                    tar,
                    &raw,
                    "is a device node (add --allow-devices to accept them)",
                ));
            }
            EntryType::Regular
            | EntryType::Directory
            | EntryType::Fifo
            | EntryType::Char
            | EntryType::Block
            | EntryType::XHeader
            | EntryType::XGlobalHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
            | EntryType::Continuous
            | EntryType::GNUSparse => {}
            other => {
                return Err(bad(
                    tar,
                    &raw,
                    &format!("has a type this tool does not apply ({other:?})"),
                ));
            }
        }
    }
    Ok(())
}
// ANCHOR_END: validate

// ANCHOR: unpack
pub fn unpack(tar: &Path, dir: &Path, allow_devices: bool) -> Result<Unpacked> {
    validate(tar, allow_devices)?;
    apply(tar, dir, Whiteouts::Apply)
}

/// What to do with a layer's `.wh.` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete what they name: DIR becomes the merged tree (`layer unpack`).
    Apply,
    /// Keep them in overlay's form, 0/0 devices and opaque xattrs: DIR becomes
    /// a layer to stack as a `lowerdir` (mini-docker's layer store).
    AsOverlay,
}

/// A layer unpacked into its own (new) directory, whiteouts in overlay's form.
pub fn unpack_layer(tar: &Path, dir: &Path) -> Result<Unpacked> {
    validate(tar, false)?;
    apply(tar, dir, Whiteouts::AsOverlay)
}

/// Write the entries of a validated layer.
fn apply(tar: &Path, dir: &Path, whiteouts: Whiteouts) -> Result<Unpacked> {
    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    narrate::step(
        format!("untar {:?} into {:?}, applying .wh. whiteouts", tar, dir),
        format!(
            "tar -xf {} -C {}   # then: rm what each .wh.NAME names",
            tar.display(),
            dir.display()
        ),
    );
    let mut out = RootfsWriter::new(dir);
    let mut done = Unpacked::default();
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let mut archive = open(tar)?;
    for entry in archive.entries().map_err(|e| Failure::new(e.to_string()))? {
        let mut entry = entry.map_err(|e| Failure::new(format!("{}: {e}", tar.display())))?;
        let rel = inside(tar, &entry.path().map_err(|e| Failure::new(e.to_string()))?)?;
        if rel.as_os_str().is_empty() {
            continue; // `./`: the directory we unpack into
        }
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rel.parent().unwrap_or(Path::new(""));
        let at = Path::new("/").join(&rel);
        if whiteouts == Whiteouts::AsOverlay && name.starts_with(WHITEOUT_PREFIX) {
            overlay_whiteout(&mut out, parent, &name)?;
            if name == OPAQUE_MARKER {
                done.opaque += 1;
            } else {
                done.whiteouts += 1;
            }
            continue;
        }
        if name == OPAQUE_MARKER {
            // Hide what earlier layers put in this directory (not what this one adds).
            let host = out.prepare(&Path::new("/").join(parent).join("x"))?;
            for child in crate::changes::sorted_entries(host.parent().unwrap_or(dir)) {
                if !made.contains(&parent.join(child.file_name().unwrap_or_default())) {
                    remove(&child)?;
                }
            }
            done.opaque += 1;
            continue;
        }
        if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
            let host = out.prepare(&Path::new("/").join(parent).join(deleted))?;
            remove(&host)?;
            done.whiteouts += 1;
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            EntryType::Directory => out.dir(&at.to_string_lossy(), mode)?,
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .into_owned();
                out.symlink(&target, &at)?;
            }
            EntryType::Link => {
                let target = inside(tar, &entry.link_name().ok().flatten().unwrap_or_default())?;
                let source = out.prepare(&Path::new("/").join(&target))?;
                let host = out.prepare(&at)?;
                RootfsWriter::clear(&host)?;
                std::fs::hard_link(&source, &host).map_err(|e| {
                    Failure::new(format!("hard link {}: {}", at.display(), describe_io(&e)))
                })?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let host = out.prepare(&at)?;
                RootfsWriter::clear(&host)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&host)
                    .context(|| at.display().to_string())?;
                std::io::copy(&mut entry, &mut file).context(|| at.display().to_string())?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                    .context(|| at.display().to_string())?;
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let host = out.prepare(&at)?;
                RootfsWriter::clear(&host)?;
                let (kind, dev) = match entry.header().entry_type() {
                    EntryType::Fifo => (nix::sys::stat::SFlag::S_IFIFO, 0),
                    EntryType::Char => (nix::sys::stat::SFlag::S_IFCHR, device(&entry)),
                    _ => (nix::sys::stat::SFlag::S_IFBLK, device(&entry)),
                };
                nix::sys::stat::mknod(
                    &host,
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    dev,
                )
                .context(|| at.display().to_string())?;
            }
            _ => continue,
        }
        apply_xattrs(&mut entry, &out.prepare(&at)?);
        made.insert(rel);
        done.entries += 1;
    }
    Ok(done)
}
// ANCHOR_END: unpack

/// `.wh.NAME` as overlay writes it (a 0/0 character device NAME), `.wh..wh..opq`
/// as overlay's opaque mark on the directory.
fn overlay_whiteout(out: &mut RootfsWriter, parent: &Path, name: &str) -> Result<()> {
    if name == OPAQUE_MARKER {
        let host = out.prepare(&Path::new("/").join(parent).join("x"))?;
        let dir = host.parent().unwrap_or(&host);
        std::fs::create_dir_all(dir).context(|| dir.display().to_string())?;
        return xattr::set(dir, crate::changes::OPAQUE_XATTR, b"y")
            .map_err(|e| Failure::new(format!("{}: opaque xattr: {e}", dir.display())));
    }
    // ANCHOR: hole_whiteout
    let deleted = name.trim_start_matches(WHITEOUT_PREFIX);
    let host = out.prepare(&Path::new("/").join(parent).join(deleted))?;
    RootfsWriter::clear(&host)?;
    nix::sys::stat::mknod(
        &host,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .context(|| format!("whiteout {}", host.display()))
    // ANCHOR_END: hole_whiteout
}

fn device<R: Read>(entry: &tar::Entry<R>) -> u64 {
    let h = entry.header();
    nix::sys::stat::makedev(
        h.device_major().ok().flatten().unwrap_or(0).into(),
        h.device_minor().ok().flatten().unwrap_or(0).into(),
    )
}

/// Remove a file, a symlink (never what it points to), or a whole directory.
fn remove(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.context(|| format!("removing {}", path.display()))
}

fn apply_xattrs<R: Read>(entry: &mut tar::Entry<R>, path: &Path) {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return;
    };
    for ext in extensions.flatten() {
        if let (Ok(key), value) = (ext.key(), ext.value_bytes())
            && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            && name.starts_with("user.")
            && !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        {
            let _ = xattr::set(path, name, value);
        }
    }
}
