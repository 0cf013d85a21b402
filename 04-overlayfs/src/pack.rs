//! `layer pack UPPER OUT.tar[.gz]`: a writable layer as an OCI layer tarball.
//!
//! OCI layers cannot hold overlay's whiteouts (device nodes need privileges to
//! create, and tar has no xattr in its core format), so they say it with names:
//! a deleted `x` is an empty file `.wh.x`, an opaque directory holds `.wh..wh..opq`.
//! Entries are sorted, times and owner names fixed, so the same upper always packs to
//! the same bytes, and so to the same sha256 digest.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use labkit::failure::describe_io;
use labkit::narrate;
use labkit::{Failure, Result};
use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header};
use xattr::FileExt;

use crate::changes::{OPAQUE_XATTR, is_whiteout};
use crate::tree;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Counts what was packed, and the blob's digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    pub entries: usize,
    pub whiteouts: usize,
    pub opaque: usize,
    pub bytes: u64,
    pub digest: String,
}

/// A writer that hashes what goes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(format!("{what}: {}", describe_io(&e)))
}

// ANCHOR: pack
pub fn pack(upper: &Path, out: &Path) -> Result<Packed> {
    if !upper.is_dir() {
        return Err(Failure::new(format!(
            "{}: not a directory (an upper layer is one)",
            upper.display()
        )));
    }
    let gzip = out.extension().is_some_and(|e| e == "gz" || e == "tgz");
    narrate::step(
        format!(
            "tar of {:?}: whiteouts -> .wh.NAME, opaque -> .wh..wh..opq",
            upper
        ),
        format!(
            "tar --sort=name --mtime=@0 -C {} -c{}f {} .",
            upper.display(),
            if gzip { "z" } else { "" },
            out.display()
        ),
    );
    let file = File::create(out).map_err(io("creating the layer file"))?;
    let mut hashing = Hashing {
        inner: file,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut packed = Packed::default();
    {
        // A gzip header with no name and no time: the same input, the same bytes.
        let sink: Box<dyn Write + '_> = if gzip {
            Box::new(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut hashing, flate2::Compression::default()),
            )
        } else {
            Box::new(&mut hashing)
        };
        let mut tar = Builder::new(sink);
        let top = File::open(upper).map_err(io("opening the upper"))?;
        add_dir(&mut tar, top.as_fd(), Path::new(""), &mut packed)?;
        tar.into_inner()
            .map_err(io("writing the layer"))?
            .flush()
            .map_err(io("writing the layer"))?;
    }
    packed.bytes = hashing.bytes;
    packed.digest = format!("sha256:{:x}", hashing.hash.finalize());
    Ok(packed)
}
// ANCHOR_END: pack

fn header(kind: EntryType, meta: &std::fs::Metadata, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.permissions().mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Everything beneath the directory `dir` (a descriptor), at `rel` in the tarball:
/// walked by descriptors (chapter 04's [`tree`](crate::tree)), so a container that
/// renames things in its upper while it is packed cannot point the walk elsewhere.
fn add_dir<W: Write>(
    tar: &mut Builder<W>,
    dir: std::os::fd::BorrowedFd,
    rel: &Path,
    packed: &mut Packed,
) -> Result<()> {
    for (name, entry) in tree::entries(dir)? {
        let path = rel.join(&name);
        let meta = entry.metadata().map_err(io("reading the upper"))?;
        if is_whiteout(&meta) {
            let mut wh = OsString::from(WHITEOUT_PREFIX);
            wh.push(&name);
            let mut h = header(EntryType::Regular, &meta, 0);
            h.set_mode(0o644);
            tar.append_data(&mut h, rel.join(wh), std::io::empty())
                .map_err(io("writing a whiteout"))?;
            packed.whiteouts += 1;
        } else if meta.is_dir() {
            let opened = tree::reopen(&entry)?;
            add_xattrs(tar, &opened)?;
            let mut h = header(EntryType::Directory, &meta, 0);
            tar.append_data(&mut h, &path, std::io::empty())
                .map_err(io("writing a directory"))?;
            packed.entries += 1;
            if opened.get_xattr(OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y") {
                let mut h = header(EntryType::Regular, &meta, 0);
                h.set_mode(0o644);
                tar.append_data(&mut h, path.join(OPAQUE_MARKER), std::io::empty())
                    .map_err(io("writing an opaque marker"))?;
                packed.opaque += 1;
            }
            add_dir(tar, entry.as_fd(), &path, packed)?;
        } else if meta.file_type().is_symlink() {
            let target = tree::link_target(&entry)?;
            let mut h = header(EntryType::Symlink, &meta, 0);
            tar.append_link(&mut h, &path, &target)
                .map_err(io("writing a symlink"))?;
            packed.entries += 1;
        } else if meta.is_file() {
            let file = tree::reopen(&entry)?;
            add_xattrs(tar, &file)?;
            let mut h = header(EntryType::Regular, &meta, meta.len());
            tar.append_data(&mut h, &path, file)
                .map_err(io("writing a file"))?;
            packed.entries += 1;
        } else {
            return Err(Failure::new(format!(
                "{}: a device, fifo or socket: not packed into a layer",
                path.display()
            )));
        }
    }
    Ok(())
}

/// User xattrs travel as PAX records (`SCHILY.xattr.NAME`); overlay's own trusted.*
/// ones are its format, not the file's, and never do.
fn add_xattrs<W: Write>(tar: &mut Builder<W>, file: &File) -> Result<()> {
    let mut records: Vec<(String, Vec<u8>)> = file
        .list_xattr()
        .into_iter()
        .flatten()
        .filter_map(|name| {
            let name = name.to_string_lossy().into_owned();
            if !name.starts_with("user.") {
                return None;
            }
            let value = file.get_xattr(&name).ok().flatten()?;
            Some((format!("SCHILY.xattr.{name}"), value))
        })
        .collect();
    records.sort();
    if !records.is_empty() {
        tar.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(io("writing xattrs"))?;
    }
    Ok(())
}
