//! Images made from tarballs and from containers: `import`, `load`, `commit`,
//! `export`, and `rmi`, which frees the layers no image uses any more.
//!
//! A layer is stored once, under `layers/SHA256`, the digest of its tarball: two
//! images (or a commit of a commit) that share a layer share its directory. It is
//! unpacked by chapter 04, with its whiteouts kept in overlay's form so that the
//! directory can be stacked as a `lowerdir` as it is.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use labkit::failure::Context;
use labkit::{Failure, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::container::{self, Container};
use crate::image::{self, Image, ImageConfig, normalize};
use crate::store::{Store, new_id, now};

fn sha256_of(path: &Path) -> Result<String> {
    let mut file = File::open(path).context(|| path.display().to_string())?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).context(|| path.display().to_string())?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(format!("{:x}", hash.finalize()))
}

// ANCHOR: add_layer
/// Store the layer tarball `tar` (plain or gzip) once; its id is its digest.
pub fn add_layer(store: &Store, tar: &Path) -> Result<String> {
    let id = sha256_of(tar)?;
    let dir = store.layer(&id);
    if dir.is_dir() {
        return Ok(id); // already stored: shared
    }
    // Unpacked next to its final place, renamed when whole: a crash leaves no
    // half layer under a real id.
    let tmp = store
        .root
        .join("layers")
        .join(format!(".tmp-{}", new_id()?));
    if let Err(failure) = ch04_overlayfs::unpack::unpack_layer(tar, &tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(failure);
    }
    std::fs::rename(&tmp, &dir).context(|| dir.display().to_string())?;
    Ok(id)
}
// ANCHOR_END: add_layer

/// Give `tag` to `image` only: Docker moves a tag, it never shares it.
fn tag(store: &Store, image: &mut Image, tag: &str) -> Result<()> {
    let tag = normalize(tag);
    for mut other in image::list(store) {
        if other.id != image.id && other.tags.contains(&tag) {
            other.tags.retain(|t| t != &tag);
            other.save(store)?;
        }
    }
    if !image.tags.contains(&tag) {
        image.tags.push(tag);
    }
    image.save(store)
}

/// `import TAR NAME[:TAG]`: a root filesystem as a tarball (`docker export`'s
/// output) becomes a one-layer image with no command of its own.
pub fn import(store: &Store, tar: &Path, name: &str) -> Result<Image> {
    let layer = add_layer(store, tar)?;
    let mut image = Image {
        id: new_id()?,
        tags: vec![],
        layers: vec![layer],
        config: ImageConfig::default(),
        created: now(),
        history: vec![format!("import {}", tar.display())],
    };
    tag(store, &mut image, name)?;
    Ok(image)
}

// ANCHOR: commit
/// `commit`: the container's writable layer, packed by chapter 04 into an OCI
/// layer (whiteouts become `.wh.` names), becomes one more layer on its image.
pub fn commit(store: &Store, container: &Container, name: &str) -> Result<Image> {
    let config = container.config()?;
    let base = image::find(store, &config.image_id)
        .ok_or_else(|| Failure::new(format!("the image of {} is gone", container.name)))?;
    let tar = container.dir.join(".commit.tar");
    let packed = ch04_overlayfs::pack::pack(&container.upper(), &tar);
    let layer = packed.and_then(|_| add_layer(store, &tar));
    let _ = std::fs::remove_file(&tar);
    let mut layers = base.layers.clone();
    layers.push(layer?);
    let mut history = base.history.clone();
    history.push(format!(
        "commit of {} ({})",
        container.name,
        labkit::narrate::shell_line(&config.cmd)
    ));
    let mut image = Image {
        id: new_id()?,
        tags: vec![],
        layers,
        config: ImageConfig {
            env: config.env,
            cmd: config.cmd,
            entrypoint: vec![],
            working_dir: config.working_dir,
        },
        created: now(),
        history,
    };
    tag(store, &mut image, name)?;
    Ok(image)
}
// ANCHOR_END: commit

/// `rmi`: refused while a container uses the image; layers no image uses go too.
pub fn remove_image(store: &Store, reference: &str) -> Result<()> {
    let image = image::find(store, reference)
        .ok_or_else(|| Failure::new(format!("No such image: {reference}")))?;
    if let Some(user) = container::list(store)
        .iter()
        .find(|c| c.config().is_ok_and(|cfg| cfg.image_id == image.id))
    {
        return Err(Failure::new(format!(
            "conflict: unable to remove image {reference}: container {} ({}) uses it; \
             remove the container first",
            user.short_id(),
            user.name
        )));
    }
    let path = store.image_file(&image.id);
    std::fs::remove_file(&path).context(|| path.display().to_string())?;
    let used: Vec<String> = image::list(store)
        .into_iter()
        .flat_map(|i| i.layers)
        .collect();
    for layer in image.layers.iter().filter(|l| !used.contains(l)) {
        let _ = std::fs::remove_dir_all(store.layer(layer));
    }
    Ok(())
}

// ANCHOR: load
/// `load -i PATH`: an OCI image layout (a directory or its tar), or a `docker save`
/// archive. A tar is unpacked by chapter 04 first, which refuses `..`, absolute
/// names and symlink tricks before writing anything; then every file of the
/// archive is read as its author may have made it ([`Archive`]).
pub fn load(store: &Store, path: &Path) -> Result<Vec<Image>> {
    let scratch = tempfile::Builder::new()
        .prefix(".load-")
        .tempdir_in(store.root.join("layers"))
        .context(|| store.root.display().to_string())?;
    let dir = match path.is_dir() {
        true => path.to_path_buf(),
        false => {
            ch04_overlayfs::unpack::unpack(path, scratch.path(), false)?;
            scratch.path().to_path_buf()
        }
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().trim_end_matches(".tar").to_string())
        .unwrap_or_else(|| "loaded".into());
    let archive = Archive::open(&dir)?;
    if dir.join("manifest.json").is_file() {
        load_docker_save(store, &archive)
    } else if dir.join("index.json").is_file() {
        load_oci_layout(store, &archive, &stem)
    } else {
        Err(Failure::new(format!(
            "{}: neither an OCI image layout (index.json) nor a docker save archive \
             (manifest.json)",
            path.display()
        )))
    }
}
// ANCHOR_END: load

/// Index, manifests and configs are small; layers are large, but not endless.
const JSON_LIMIT: u64 = 16 << 20;
const LAYER_LIMIT: u64 = 64 << 30;

// ANCHOR: archive
/// An archive's directory, read as an attacker may have made it. Each file is opened
/// beneath the directory with no symlink on the way or at the end (`openat2`
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): a blob that is a link to a host file
/// would make that file a layer, and a link to `/dev/zero` would never end. It must
/// be a regular file of a bounded size, and a blob must hash to its digest.
struct Archive {
    dir: File,
}

impl Archive {
    fn open(dir: &Path) -> Result<Archive> {
        let dir = File::open(dir).context(|| dir.display().to_string())?;
        Ok(Archive { dir })
    }

    fn file(&self, name: &str, limit: u64) -> Result<File> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let refuse = |why: &str| Failure::new(format!("{name} in the archive: {why}"));
        let fd = nix::fcntl::openat2(std::os::fd::AsFd::as_fd(&self.dir), name, how).map_err(
            |e| match e {
                nix::errno::Errno::EXDEV => refuse("a path that leaves the archive"),
                nix::errno::Errno::ELOOP => refuse("a symlink, or a path through one"),
                e => refuse(e.desc()),
            },
        )?;
        let file = File::from(fd);
        let meta = file.metadata().context(|| name.to_string())?;
        if !meta.is_file() {
            return Err(refuse("not a regular file"));
        }
        if meta.len() > limit {
            return Err(refuse(&format!("larger than {limit} bytes")));
        }
        Ok(file)
    }

    fn json(&self, name: &str) -> Result<Value> {
        let mut text = String::new();
        self.file(name, JSON_LIMIT)?
            .read_to_string(&mut text)
            .context(|| name.to_string())?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::new(format!("{name} in the archive: not valid JSON ({e})")))
    }

    /// `blobs/sha256/HEX`, whose content must hash to HEX.
    fn blob(&self, digest: &str, limit: u64) -> Result<File> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Failure::new(format!("{digest}: not a sha256 digest")))?;
        self.checked(&format!("blobs/sha256/{hex}"), hex, limit)
    }

    /// The file `name`, whose content must hash to `hex`; read again from its start.
    fn checked(&self, name: &str, hex: &str, limit: u64) -> Result<File> {
        let file = self.file(name, limit)?;
        let got = sha256_of(&fd_path(&file))?;
        if got != hex {
            return Err(Failure::new(format!(
                "{name} in the archive: its content is sha256:{got}, not the digest it is \
                 named by (sha256:{hex})"
            )));
        }
        Ok(file)
    }
}
// ANCHOR_END: archive

/// The path that reopens exactly this open file (the kernel's magic link), for the
/// functions that take a path: whatever happens to its name since, it is the same file.
fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The OCI image config's `config`: what a container starts with.
fn image_config(config: &Value) -> ImageConfig {
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    ImageConfig {
        env: strings(&c["Env"]),
        cmd: strings(&c["Cmd"]),
        entrypoint: strings(&c["Entrypoint"]),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
    }
}

fn history(config: &Value, layers: usize) -> Vec<String> {
    let made: Vec<String> = config["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|e| !e["empty_layer"].as_bool().unwrap_or(false))
                .map(|e| e["created_by"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    match made.len() == layers {
        true => made,
        false => vec!["loaded".into(); layers],
    }
}

// ANCHOR: diff_ids
/// The image, once every layer's uncompressed digest is the one its config names
/// (`rootfs.diff_ids`): nothing is stored before all of them are checked.
fn make_image(store: &Store, layers: &[File], config: &Value, tags: &[String]) -> Result<Image> {
    let named: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if named.len() != layers.len() {
        return Err(Failure::new(format!(
            "the image config names {} layers (rootfs.diff_ids), the manifest {}",
            named.len(),
            layers.len()
        )));
    }
    for (i, (layer, want)) in layers.iter().zip(&named).enumerate() {
        let got = ch04_overlayfs::unpack::diff_id(&fd_path(layer))?;
        if got != *want {
            return Err(Failure::new(format!(
                "layer {}: its content is {got}, not the {want} its config names",
                i + 1
            )));
        }
    }
    let layers: Vec<String> = layers
        .iter()
        .map(|l| add_layer(store, &fd_path(l)))
        .collect::<Result<_>>()?;
    // ANCHOR_END: diff_ids
    let mut image = Image {
        id: new_id()?,
        tags: vec![],
        history: history(config, layers.len()),
        layers,
        config: image_config(config),
        created: now(),
    };
    image.save(store)?;
    for t in tags {
        tag(store, &mut image, t)?;
    }
    Ok(image)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn load_docker_save(store: &Store, archive: &Archive) -> Result<Vec<Image>> {
    let manifest = archive.json("manifest.json")?;
    let entries = manifest.as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|entry| {
            let name = entry["Config"].as_str().unwrap_or("");
            // Docker names the config by its digest (HEX.json, or blobs/sha256/HEX).
            let hex = name
                .trim_end_matches(".json")
                .rsplit('/')
                .next()
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let config_file = match hex {
                Some(hex) => archive.checked(name, hex, JSON_LIMIT)?,
                None => archive.file(name, JSON_LIMIT)?,
            };
            let mut text = String::new();
            (&config_file)
                .read_to_string(&mut text)
                .context(|| name.to_string())?;
            let config: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::new(format!("{name}: not valid JSON ({e})")))?;
            let layers: Vec<File> = strings(&entry["Layers"])
                .iter()
                .map(|l| archive.file(l, LAYER_LIMIT))
                .collect::<Result<_>>()?;
            make_image(store, &layers, &config, &strings(&entry["RepoTags"]))
        })
        .collect()
}

fn load_oci_layout(store: &Store, archive: &Archive, stem: &str) -> Result<Vec<Image>> {
    let index = archive.json("index.json")?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    manifests
        .iter()
        .map(|m| {
            let blob_json = |digest: &Value| -> Result<Value> {
                let digest = digest.as_str().unwrap_or("");
                let mut text = String::new();
                archive
                    .blob(digest, JSON_LIMIT)?
                    .read_to_string(&mut text)
                    .context(|| digest.to_string())?;
                serde_json::from_str(&text)
                    .map_err(|e| Failure::new(format!("{digest}: not valid JSON ({e})")))
            };
            let manifest = blob_json(&m["digest"])?;
            let config = blob_json(&manifest["config"]["digest"])?;
            let layers: Vec<File> = manifest["layers"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|d| archive.blob(d["digest"].as_str().unwrap_or(""), LAYER_LIMIT))
                        .collect()
                })
                .unwrap_or(Ok(vec![]))?;
            let name = m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(|r| match r.contains(':') {
                    true => r.to_string(),
                    false => format!("{stem}:{r}"),
                });
            make_image(
                store,
                &layers,
                &config,
                &name.into_iter().collect::<Vec<_>>(),
            )
        })
        .collect()
}

// ANCHOR: export
/// `export`: the container's whole filesystem, as one tarball.
pub fn export(store: &Store, container: &Container, out: &mut dyn std::io::Write) -> Result<()> {
    with_root(store, container, |root| write_tree(root, out))
}

/// Call `work` with the container's root directory open: a running container's
/// through `/proc/PID/root`; a stopped one's through its overlay, mounted for the
/// occasion in a mount namespace that only this (single-threaded) process enters,
/// and leaves again after.
pub fn with_root<T>(
    store: &Store,
    container: &Container,
    work: impl FnOnce(&File) -> Result<T>,
) -> Result<T> {
    let state = crate::lifecycle::current_state(container)?;
    let open_dir = |path: &Path| File::open(path).context(|| path.display().to_string());
    if state.running {
        return work(&open_dir(Path::new(&format!("/proc/{}/root", state.pid)))?);
    }
    let config = container.config()?;
    let image = image::find(store, &config.image_id)
        .ok_or_else(|| Failure::new(format!("the image of {} is gone", container.name)))?;
    let merged = container.dir.join("merged");
    let overlay = ch04_overlayfs::overlay::Overlay::new(
        &image.lowers(store),
        &container.upper(),
        &container.dir.join("work"),
        &merged,
    )?;
    let host_ns = open_dir(Path::new("/proc/thread-self/ns/mnt"))?;
    let done = overlay
        .mount_privately("the container's files, seen here only")
        .and_then(|()| work(&open_dir(&merged)?));
    let _ = ch04_overlayfs::overlay::umount(&merged);
    nix::sched::setns(&host_ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .context(|| "setns back".into())?;
    done
}
// ANCHOR_END: export

// ANCHOR: write_tree
/// Everything under `root` as a tar stream, walked by descriptors (chapter 04's
/// `tree`): even unfrozen, a container could not point the walk outside its root.
/// The contents of /proc, /sys and /dev (kernel views and devices, not files of the
/// container) are left out, and sockets, as Docker leaves them out.
fn write_tree(root: &File, out: &mut dyn std::io::Write) -> Result<()> {
    use ch04_overlayfs::tree;
    let mut tar = tar::Builder::new(out);
    fn walk(
        tar: &mut tar::Builder<&mut dyn std::io::Write>,
        dir: std::os::fd::BorrowedFd,
        rel: &Path,
    ) -> Result<()> {
        for (name, entry) in tree::entries(dir)? {
            let rel = rel.join(&name);
            let failed = |e: std::io::Error| Failure::new(format!("{}: {e}", rel.display()));
            let meta = entry.metadata().map_err(failed)?;
            let kind = meta.file_type();
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&meta);
            if kind.is_symlink() {
                let target = tree::link_target(&entry)?;
                tar.append_link(&mut header, &rel, target).map_err(failed)?;
            } else if kind.is_file() {
                let file = tree::reopen(&entry)?;
                tar.append_data(&mut header, &rel, file).map_err(failed)?;
            } else if !kind.is_socket() {
                if kind.is_char_device() || kind.is_block_device() {
                    let rdev = meta.rdev();
                    let numbers = header
                        .set_device_major(nix::sys::stat::major(rdev) as u32)
                        .and_then(|()| header.set_device_minor(nix::sys::stat::minor(rdev) as u32));
                    numbers.map_err(failed)?;
                }
                tar.append_data(&mut header, &rel, std::io::empty())
                    .map_err(failed)?;
            }
            let skip = ["proc", "sys", "dev"].iter().any(|s| rel == Path::new(s));
            if kind.is_dir() && !skip {
                walk(tar, entry.as_fd(), &rel)?;
            }
        }
        Ok(())
    }
    walk(&mut tar, root.as_fd(), Path::new(""))?;
    tar.finish().map_err(|e| Failure::new(format!("tar: {e}")))
}
// ANCHOR_END: write_tree
