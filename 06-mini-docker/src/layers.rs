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
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest, Sha256};

use crate::container::{self, Container};
use crate::image::{self, History, Image, ImageConfig};
use crate::reference::Reference;
use crate::store::{Store, new_id, now};

pub fn sha256_of(path: &Path) -> Result<String> {
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
/// Store the layer tarball `tar` (plain or gzip) once; its id is its digest
/// (`digest`, when the caller has already hashed it). The tarball is kept too, under
/// `blobs/`: `push` and `save` send it as it came.
pub fn add_layer(store: &Store, tar: &Path, digest: Option<&str>) -> Result<String> {
    let id = match digest {
        Some(d) => d.trim_start_matches("sha256:").to_string(),
        None => sha256_of(tar)?,
    };
    keep_blob(store, tar, &id)?;
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

/// `blobs/sha256/HEX`: a copy of `from` (a link when it can be), renamed in whole.
pub fn keep_blob(store: &Store, from: &Path, hex: &str) -> Result<()> {
    let blob = store.blob(hex);
    if blob.is_file() || from == blob {
        return Ok(());
    }
    let tmp = store.blob(&format!(".tmp-{}", new_id()?));
    std::fs::hard_link(from, &tmp)
        .or_else(|_| std::fs::copy(from, &tmp).map(|_| ()))
        .and_then(|()| std::fs::rename(&tmp, &blob))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::new(format!("{}: {e}", blob.display()))
        })
}

/// `bytes` as the blob `sha256:HEX`; returns HEX.
pub fn keep_bytes(store: &Store, bytes: &[u8]) -> Result<String> {
    let hex = format!("{:x}", Sha256::digest(bytes));
    let blob = store.blob(&hex);
    if !blob.is_file() {
        let tmp = store.blob(&format!(".tmp-{}", new_id()?));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &blob))
            .context(|| blob.display().to_string())?;
    }
    Ok(hex)
}

/// Give `tag` to `image` only: Docker moves a tag, it never shares it.
pub fn tag(store: &Store, image: &mut Image, tag: &str) -> Result<()> {
    let wanted = Reference::parse(tag)?;
    if wanted.digest.is_some() {
        return Err(Failure::new(format!(
            "refusing to create a tag with a digest reference: {tag}"
        )));
    }
    let tag = wanted.canonical();
    for mut other in image::list(store) {
        if other.id != image.id && other.tags.iter().any(|t| image::canonical(t) == tag) {
            other.tags.retain(|t| image::canonical(t) != tag);
            other.save(store)?;
        }
    }
    if !image.tags.iter().any(|t| image::canonical(t) == tag) {
        image.tags.push(tag);
    }
    image.save(store)
}

/// `import TAR NAME[:TAG]`: a root filesystem as a tarball (`docker export`'s
/// output) becomes a one-layer image with no command of its own.
pub fn import(store: &Store, tar: &Path, name: &str) -> Result<Image> {
    Reference::parse(name)?;
    let layer = add_layer(store, tar, None)?;
    let mut image = Image {
        id: new_id()?,
        tags: vec![],
        layers: vec![layer],
        config: ImageConfig::default(),
        created: now(),
        history: vec![History::layer(format!("import {}", tar.display()))],
        repo_digests: vec![],
        manifest: None,
        platform: None,
        parent: None,
    };
    tag(store, &mut image, name)?;
    Ok(image)
}

// ANCHOR: commit
/// `commit`: the container's writable layer, packed by chapter 04 into an OCI
/// layer (whiteouts become `.wh.` names), becomes one more layer on its image.
pub fn commit(store: &Store, container: &Container, name: &str) -> Result<Image> {
    Reference::parse(name)?;
    let config = container.config()?;
    let base = image::find(store, &config.image_id)
        .ok_or_else(|| Failure::new(format!("the image of {} is gone", container.name)))?;
    let tar = container.dir.join(".commit.tar");
    let packed = ch04_overlayfs::pack::pack(&container.upper(), &tar);
    let layer = packed.and_then(|p| add_layer(store, &tar, Some(&p.digest)));
    let _ = std::fs::remove_file(&tar);
    let mut layers = base.layers.clone();
    layers.push(layer?);
    let mut history = base.history.clone();
    history.push(History::layer(format!(
        "commit of {} ({})",
        container.name,
        labkit::narrate::shell_line(&config.cmd)
    )));
    let mut image = Image {
        id: new_id()?,
        tags: vec![],
        layers,
        config: ImageConfig {
            env: config.env,
            cmd: config.cmd,
            entrypoint: vec![],
            working_dir: config.working_dir,
            ..base.config.clone()
        },
        created: now(),
        history,
        repo_digests: vec![],
        manifest: None,
        platform: base.platform.clone(),
        parent: None,
    };
    tag(store, &mut image, name)?;
    Ok(image)
}
// ANCHOR_END: commit

// ANCHOR: rmi
/// `rmi NAME` takes a name off its image; the image goes with its last name. `rmi
/// ID` removes the image, refused when other names still point at it unless
/// `force`, and always while a container uses it. Layers and blobs that no image
/// uses any more go too. Returns what was done, as Docker prints it.
pub fn remove_image(store: &Store, reference: &str, force: bool) -> Result<Vec<String>> {
    let mut image = image::find(store, reference)
        .ok_or_else(|| Failure::new(format!("No such image: {reference}")).exit_code(1))?;
    let mut done = vec![];
    let by_name = Reference::parse(reference)
        .ok()
        .and_then(|r| match &r.digest {
            Some(d) => Some(format!("{}@{d}", r.name())).filter(|n| image.repo_digests.contains(n)),
            None => {
                Some(r.canonical()).filter(|n| image.tags.iter().any(|t| image::canonical(t) == *n))
            }
        });
    if let Some(name) = &by_name {
        image.tags.retain(|t| image::canonical(t) != *name);
        image.repo_digests.retain(|d| d != name);
        if !image.tags.is_empty() || (name.contains('@') && !image.repo_digests.is_empty()) {
            image.save(store)?;
            return Ok(vec![format!("Untagged: {}", image::familiar(name))]);
        }
        done.push(format!("Untagged: {}", image::familiar(name)));
    } else if image.tags.len() > 1 && !force {
        return Err(Failure::new(format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple \
             repositories",
            &image.id[..12]
        )));
    }
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
    if image::list(store)
        .iter()
        .any(|i| i.parent.as_ref() == Some(&image.id))
    {
        return Err(Failure::new(format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            &image.id[..12]
        )));
    }
    for name in image.tags.iter().chain(&image.repo_digests) {
        done.push(format!("Untagged: {}", image::familiar(name)));
    }
    let mut gone = vec![image];
    // A build's steps go with the image they led to, while nothing else needs them.
    while let Some(parent) = gone.last().and_then(|i| i.parent.as_deref()) {
        let others = image::list(store);
        let Some(parent) = others.iter().find(|i| i.id == parent) else {
            break;
        };
        let children = others
            .iter()
            .filter(|i| i.parent.as_ref() == Some(&parent.id));
        if !parent.tags.is_empty() || children.count() > 1 || in_use(store, &parent.id) {
            break;
        }
        gone.push(parent.clone());
    }
    for image in &gone {
        let path = store.image_file(&image.id);
        std::fs::remove_file(&path).context(|| path.display().to_string())?;
        let _ = std::fs::remove_dir_all(store.build_cache(&image.id));
        done.push(format!("Deleted: {}", image.digest_id()));
    }
    free_blobs(store, &gone);
    Ok(done)
}
// ANCHOR_END: rmi

/// `image prune`: every image with no name and no child that no container uses (a
/// build's old result, and the steps that led only to it).
pub fn prune_images(store: &Store) -> Result<Vec<String>> {
    let images = image::list(store);
    let dangling = images.iter().filter(|i| {
        i.tags.is_empty()
            && !images.iter().any(|c| c.parent.as_ref() == Some(&i.id))
            && !in_use(store, &i.id)
    });
    let mut done = vec![];
    for image in dangling {
        // One prune may have taken another's steps already.
        if store.image_file(&image.id).is_file() {
            done.extend(remove_image(store, &image.id, true)?);
        }
    }
    Ok(done)
}

fn in_use(store: &Store, image: &str) -> bool {
    container::list(store)
        .iter()
        .any(|c| c.config().is_ok_and(|cfg| cfg.image_id == image))
}

/// The layers and blobs of `gone` that no image still uses, removed.
fn free_blobs(store: &Store, gone: &[Image]) {
    let others = image::list(store);
    let used = |blob: &str| {
        others.iter().any(|i| {
            i.id == blob
                || i.layers.iter().any(|l| l == blob)
                || i.manifest.as_deref() == Some(blob)
        })
    };
    for image in gone {
        for layer in image.layers.iter().filter(|l| !used(l)) {
            let _ = std::fs::remove_dir_all(store.layer(layer));
            let _ = std::fs::remove_file(store.blob(layer));
        }
        for blob in std::iter::once(&image.id).chain(&image.manifest) {
            if !used(blob) {
                let _ = std::fs::remove_file(store.blob(blob));
            }
        }
    }
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
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The OCI image config's `config`: what a container starts with.
fn image_config(config: &ImageConfiguration) -> ImageConfig {
    let Some(c) = config.config() else {
        return ImageConfig::default();
    };
    ImageConfig {
        env: c.env().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        exposed_ports: set(c.exposed_ports()),
        volumes: set(c.volumes()),
        labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
        stop_signal: c.stop_signal().clone().unwrap_or_default(),
        ..ImageConfig::default()
    }
}

/// oci-spec's list of ports or volumes as the JSON set it came as.
fn set(list: &Option<Vec<String>>) -> std::collections::BTreeMap<String, serde_json::Value> {
    let keys = list.iter().flatten();
    keys.map(|k| (k.clone(), serde_json::json!({}))).collect()
}

fn history(config: &ImageConfiguration, layers: usize) -> Vec<History> {
    let steps: Vec<History> = config
        .history()
        .iter()
        .flatten()
        .map(|h| History {
            created_by: h.created_by().clone().unwrap_or_default(),
            empty_layer: h.empty_layer().unwrap_or(false),
        })
        .collect();
    match steps.iter().filter(|h| !h.empty_layer).count() == layers {
        true => steps,
        false => vec![History::layer("loaded"); layers],
    }
}

/// An image config's JSON, read into oci-spec's type.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::new(format!("{what}: not an image config ({e})")))
}

/// A layer's tarball, open, and its digest when it has been checked already.
pub type LayerFile = (File, Option<String>);

/// What a pull or a load brings: the image config as its bytes (its digest is the
/// image's id), its layer tarballs (and their digests when already checked), names.
#[derive(Debug, Default)]
pub struct Incoming {
    pub config: Vec<u8>,
    pub layers: Vec<LayerFile>,
    pub tags: Vec<String>,
    pub repo_digest: Option<String>,
    pub manifest: Option<Vec<u8>>,
    pub platform: Option<String>,
}

// ANCHOR: diff_ids
/// The image, once every layer's uncompressed digest is the one its config names
/// (`rootfs.diff_ids`): nothing is stored before all of them are checked.
pub fn make_image(store: &Store, incoming: Incoming) -> Result<Image> {
    let config = parse_config(&incoming.config, "the image config")?;
    let named = config.rootfs().diff_ids();
    let layers = &incoming.layers;
    if named.len() != layers.len() {
        return Err(Failure::new(format!(
            "the image config names {} layers (rootfs.diff_ids), the manifest {}",
            named.len(),
            layers.len()
        )));
    }
    for (i, ((layer, _), want)) in layers.iter().zip(named).enumerate() {
        let got = ch04_overlayfs::unpack::diff_id(&fd_path(layer))?;
        if got != *want {
            return Err(Failure::new(format!(
                "layer {}: its content is {got}, not the {want} its config names",
                i + 1
            )));
        }
    }
    let ids: Vec<String> = layers
        .iter()
        .map(|(l, digest)| add_layer(store, &fd_path(l), digest.as_deref()))
        .collect::<Result<_>>()?;
    // ANCHOR_END: diff_ids
    let id = keep_bytes(store, &incoming.config)?;
    let manifest = incoming
        .manifest
        .as_deref()
        .map(|m| keep_bytes(store, m))
        .transpose()?;
    let mut image = image::list(store)
        .into_iter()
        .find(|i| i.id == id)
        .unwrap_or(Image {
            id,
            tags: vec![],
            history: history(&config, ids.len()),
            layers: ids,
            config: image_config(&config),
            created: config.created().clone().unwrap_or_else(now),
            repo_digests: vec![],
            manifest: None,
            platform: incoming.platform,
            parent: None,
        });
    if manifest.is_some() {
        image.manifest = manifest;
    }
    if let Some(pinned) = incoming.repo_digest {
        let name = pinned.split('@').next().unwrap_or_default().to_string();
        image
            .repo_digests
            .retain(|d| !d.starts_with(&format!("{name}@")));
        image.repo_digests.push(pinned);
    }
    image.save(store)?;
    for t in &incoming.tags {
        tag(store, &mut image, t)?;
    }
    Ok(image)
}

/// `docker save`'s `manifest.json`: one entry per image.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SavedImage {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

fn read_all(mut file: File, name: &str) -> Result<Vec<u8>> {
    let mut bytes = vec![];
    file.read_to_end(&mut bytes).context(|| name.to_string())?;
    Ok(bytes)
}

fn load_docker_save(store: &Store, archive: &Archive) -> Result<Vec<Image>> {
    let entries: Vec<SavedImage> = serde_json::from_slice(&read_all(
        archive.file("manifest.json", JSON_LIMIT)?,
        "manifest.json",
    )?)
    .map_err(|e| Failure::new(format!("manifest.json in the archive: {e}")))?;
    entries
        .into_iter()
        .map(|entry| {
            let name = &entry.config;
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
            let layers = entry
                .layers
                .iter()
                .map(|l| Ok((archive.file(l, LAYER_LIMIT)?, None)))
                .collect::<Result<_>>()?;
            make_image(
                store,
                Incoming {
                    config: read_all(config_file, name)?,
                    layers,
                    tags: entry.repo_tags.unwrap_or_default(),
                    ..Incoming::default()
                },
            )
        })
        .collect()
}

fn load_oci_layout(store: &Store, archive: &Archive, stem: &str) -> Result<Vec<Image>> {
    let read = |name: &str| read_all(archive.file(name, JSON_LIMIT)?, name);
    let blob = |d: &oci_spec::image::Descriptor, limit| archive.blob(d.digest().as_ref(), limit);
    let index: ImageIndex = serde_json::from_slice(&read("index.json")?)
        .map_err(|e| Failure::new(format!("index.json in the archive: {e}")))?;
    index
        .manifests()
        .iter()
        .map(|m| {
            let manifest_bytes = read_all(blob(m, JSON_LIMIT)?, "the manifest")?;
            let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
                Failure::new(format!("{}: not an image manifest ({e})", m.digest()))
            })?;
            let layers = manifest
                .layers()
                .iter()
                .map(|l| Ok((blob(l, LAYER_LIMIT)?, Some(l.digest().to_string()))))
                .collect::<Result<_>>()?;
            let name = m
                .annotations()
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .map(|r| match r.contains(':') || r.contains('/') {
                    true => r.to_string(),
                    false => format!("{stem}:{r}"),
                });
            make_image(
                store,
                Incoming {
                    config: read_all(blob(manifest.config(), JSON_LIMIT)?, "the config")?,
                    layers,
                    tags: name.into_iter().collect(),
                    manifest: Some(manifest_bytes),
                    ..Incoming::default()
                },
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
    let mut mounts = PrivateMounts::enter("the container's files, seen here only")?;
    mounts.mount(&overlay)?;
    work(&open_dir(&merged)?)
}
// ANCHOR_END: export

/// Overlays mounted in a mount namespace that only this thread enters (and leaves
/// again when this is dropped, the overlays unmounted): no other process sees them,
/// and a crash takes them away with the namespace.
#[derive(Debug)]
pub struct PrivateMounts {
    host: File,
    mounted: Vec<PathBuf>,
}

impl PrivateMounts {
    pub fn enter(why: &str) -> Result<PrivateMounts> {
        let host =
            File::open("/proc/thread-self/ns/mnt").context(|| "our mount namespace".into())?;
        labkit::narrate::step("unshare(CLONE_NEWNS)", format!("unshare --mount   # {why}"));
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .context(|| "unshare(CLONE_NEWNS)".into())?;
        let mounts = PrivateMounts {
            host,
            mounted: vec![],
        };
        ch02_namespaces::container_fs::make_private()?;
        Ok(mounts)
    }

    pub fn mount(&mut self, overlay: &ch04_overlayfs::overlay::Overlay) -> Result<()> {
        overlay.mount()?;
        self.mounted.push(overlay.merged.clone());
        Ok(())
    }
}

impl Drop for PrivateMounts {
    fn drop(&mut self) {
        for merged in self.mounted.iter().rev() {
            let _ = ch04_overlayfs::overlay::umount(merged);
        }
        let _ = nix::sched::setns(&self.host, nix::sched::CloneFlags::CLONE_NEWNS);
    }
}

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
