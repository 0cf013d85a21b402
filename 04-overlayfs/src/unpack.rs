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
use labkit::failure::Context;
use labkit::narrate;
use labkit::{Failure, Result};
use nix::sys::stat::SFlag;
use tar::{Archive, EntryType};

use crate::pack::{OPAQUE_MARKER, WHITEOUT_PREFIX};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: usize,
    pub whiteouts: usize,
    pub opaque: usize,
}

/// Whether the file is gzipped: its first two bytes say.
pub fn is_gzip(tar: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(tar)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// The layer's tar stream, gunzipped if it is gzipped.
pub fn decompressed(tar: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(tar).context(|| tar.display().to_string())?;
    Ok(match is_gzip(tar) {
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
        let link = entry.link_name().ok().flatten();
        let kind = entry.header().entry_type();
        if let Some(why) = refusal(kind, &path, link.as_deref(), &symlinks, allow_devices) {
            return Err(bad(tar, &raw, &why));
        }
        if kind == EntryType::Symlink {
            symlinks.insert(path);
        }
    }
    Ok(())
}

/// Why an entry at `path` may not be applied, if it may not. `symlinks`: those the
/// layer made before it (a later entry must not write through one of them).
fn refusal(
    kind: EntryType,
    path: &Path,
    link: Option<&Path>,
    symlinks: &BTreeSet<PathBuf>,
    allow_devices: bool,
) -> Option<String> {
    let through = |p: &Path| {
        (p.ancestors().skip(1))
            .find(|a| symlinks.contains(*a))
            .map(Path::to_path_buf)
    };
    // `.wh.NAME` deletes NAME: a name, never the directory itself or its parent.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let deleted = name
        .as_deref()
        .and_then(|n| n.strip_prefix(WHITEOUT_PREFIX));
    if matches!(deleted, Some("" | "." | "..")) {
        return Some("is a whiteout of no name, of its own directory or of its parent".to_string());
    }
    if let Some(link) = through(path) {
        return Some(format!(
            "goes through {link:?}, a symlink made by this same layer"
        ));
    }
    match kind {
        EntryType::Link => match link.map(|l| inside(Path::new(""), l)) {
            None => Some("is a hard link with no target".into()),
            Some(Err(_)) => Some("is a hard link to a path outside the layer".into()),
            Some(Ok(target)) if through(&target.join("x")).is_some() => {
                Some("is a hard link through a symlink".into())
            }
            Some(Ok(_)) => None,
        },
        EntryType::Char | EntryType::Block if !allow_devices => {
            Some("is a device node (add --allow-devices to accept them)".into())
        }
        EntryType::Regular
        | EntryType::Directory
        | EntryType::Symlink
        | EntryType::Fifo
        | EntryType::Char
        | EntryType::Block
        | EntryType::XHeader
        | EntryType::XGlobalHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink
        | EntryType::Continuous
        | EntryType::GNUSparse => None,
        other => Some(format!("has a type this tool does not apply ({other:?})")),
    }
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
        let name = (rel.file_name()).map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name.starts_with(WHITEOUT_PREFIX) {
            match name == OPAQUE_MARKER {
                true => done.opaque += 1,
                false => done.whiteouts += 1,
            }
            match whiteouts {
                Whiteouts::AsOverlay => overlay_whiteout(&mut out, parent, &name)?,
                Whiteouts::Apply => apply_whiteout(&mut out, dir, parent, &name, &made)?,
            }
            continue;
        }
        let at = Path::new("/").join(&rel);
        if write_entry(&mut out, tar, &mut entry, &at)? {
            let host = out.prepare(&at)?;
            owner(&entry, &host)?;
            apply_xattrs(&mut entry, &host);
            made.insert(rel);
            done.entries += 1;
        }
    }
    Ok(done)
}

/// The entry's owner, as the tarball says (`lchown`: a symlink's own). A chown
/// clears setuid and setgid bits, so those are set again after it.
fn owner<R: std::io::Read>(entry: &tar::Entry<R>, host: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let header = entry.header();
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    std::os::unix::fs::lchown(host, Some(uid as u32), Some(gid as u32))
        .context(|| format!("chown {}", host.display()))?;
    let mode = header.mode().unwrap_or(0) & 0o7777;
    if mode & 0o6000 != 0 && header.entry_type() != tar::EntryType::Symlink {
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode))
            .context(|| host.display().to_string())?;
    }
    Ok(())
}

/// `.wh.NAME` deletes NAME from the tree; `.wh..wh..opq` hides what earlier layers
/// put in its directory (not what this layer adds: `made`).
fn apply_whiteout(
    out: &mut RootfsWriter,
    dir: &Path,
    parent: &Path,
    name: &str,
    made: &BTreeSet<PathBuf>,
) -> Result<()> {
    if name == OPAQUE_MARKER {
        let host = out.prepare(&Path::new("/").join(parent).join("x"))?;
        for child in crate::changes::sorted_entries(host.parent().unwrap_or(dir)) {
            if !made.contains(&parent.join(child.file_name().unwrap_or_default())) {
                remove(&child)?;
            }
        }
        return Ok(());
    }
    let deleted = name.trim_start_matches(WHITEOUT_PREFIX);
    remove(&out.prepare(&Path::new("/").join(parent).join(deleted))?)
}

/// Write one entry at `at` (a path in the layer) through `out`, which refuses to
/// follow symlinks out of the tree; false for the entry types that make nothing.
fn write_entry<R: Read>(
    out: &mut RootfsWriter,
    tar: &Path,
    entry: &mut tar::Entry<R>,
    at: &Path,
) -> Result<bool> {
    let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
    let link = entry
        .link_name()
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_owned();
    let kind = entry.header().entry_type();
    if kind == EntryType::Directory {
        out.dir(&at.to_string_lossy(), mode)?;
        return Ok(true);
    }
    if kind == EntryType::Symlink {
        out.symlink(&link, at)?;
        return Ok(true);
    }
    use EntryType::{Block, Char, Continuous, Fifo, Link, Regular};
    if !matches!(kind, Link | Regular | Continuous | Fifo | Char | Block) {
        return Ok(false);
    }
    let source = match kind {
        EntryType::Link => Some(out.prepare(&Path::new("/").join(inside(tar, &link)?))?),
        _ => None,
    };
    let host = out.prepare(at)?;
    RootfsWriter::clear(&host)?;
    let shown = || at.display().to_string();
    let (node, dev) = match kind {
        EntryType::Link => {
            let source = source.unwrap_or_default();
            std::fs::hard_link(&source, &host).context(|| format!("hard link {}", shown()))?;
            return Ok(true);
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut file = (std::fs::OpenOptions::new().write(true).create_new(true))
                .open(&host)
                .context(shown)?;
            std::io::copy(entry, &mut file).context(shown)?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                .context(shown)?;
            return Ok(true);
        }
        EntryType::Fifo => (SFlag::S_IFIFO, 0),
        EntryType::Char => (SFlag::S_IFCHR, device(entry)),
        EntryType::Block => (SFlag::S_IFBLK, device(entry)),
        _ => return Ok(false),
    };
    nix::sys::stat::mknod(
        &host,
        node,
        nix::sys::stat::Mode::from_bits_truncate(mode),
        dev,
    )
    .context(shown)?;
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer of `(path, type, link target)` headers, with no contents.
    fn layer(entries: &[(&str, EntryType, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        for (name, kind, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(0);
            header.set_mode(0o644);
            // Set the raw name: `append_data` would refuse `..` and absolute paths.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !link.is_empty() {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
        }
        builder.finish().unwrap();
        (dir, path)
    }

    fn refused(entries: &[(&str, EntryType, &str)]) -> String {
        let (_dir, tar) = layer(entries);
        match validate(&tar, false) {
            Ok(()) => String::new(),
            Err(failure) => failure.message().to_string(),
        }
    }

    #[test]
    fn a_plain_layer_passes() {
        use EntryType::*;
        let ok = [
            ("etc/", Directory, ""),
            ("etc/motd", Regular, ""),
            ("etc/link", Symlink, "/etc/motd"),
            ("etc/hard", Link, "etc/motd"),
            ("etc/.wh.old", Regular, ""),
        ];
        assert_eq!(refused(&ok), "");
    }

    #[test]
    fn entries_that_would_write_outside_are_refused() {
        use EntryType::*;
        let cases = [
            (vec![("../escaped", Regular, "")], "climbs out with `..`"),
            (vec![("/etc/passwd", Regular, "")], "is an absolute path"),
            (vec![("a/.wh..", Regular, "")], "is a whiteout of no name"),
            (
                vec![("lib", Symlink, "/etc"), ("lib/passwd", Regular, "")],
                "goes through \"lib\"",
            ),
            (
                vec![("x", Link, "../../etc/shadow")],
                "hard link to a path outside",
            ),
            (
                vec![("lib", Symlink, "/etc"), ("x", Link, "lib/shadow")],
                "hard link through a symlink",
            ),
            (vec![("dev/sda", Block, "")], "is a device node"),
        ];
        for (entries, why) in cases {
            let message = refused(&entries);
            assert!(message.contains(why), "{entries:?}: {message:?}");
            assert!(message.contains("nothing was written"), "{message}");
        }
    }

    #[test]
    fn devices_pass_when_allowed() {
        let (_dir, tar) = layer(&[("dev/null", EntryType::Char, "")]);
        assert!(validate(&tar, true).is_ok());
    }
}
