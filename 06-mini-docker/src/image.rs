//! Images: read-only layers (stored once, under `layers/`) and a config (the
//! environment, command, entrypoint and working directory a container starts with).
//!
//! A fresh machine has no images. `busybox` is built from this host, by chapter 01's
//! rootfs builder, the first time it is asked for: no download. Any other image that
//! `run` or `create` misses is pulled from its registry (`pull.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use labkit::Result;
use labkit::failure::Context;
use serde::{Deserialize, Serialize};

use crate::reference::Reference;
use crate::store::{Store, new_id, now, read_json, write_json};

/// What a container of this image starts with, as in an OCI image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    /// `USER`: who the command runs as (`-u` overrides it).
    #[serde(default)]
    pub user: String,
    /// What a Dockerfile can say besides (kept, shown by `inspect`, and sent by
    /// `push` in the image config): `EXPOSE`, `VOLUME`, `LABEL`, `STOPSIGNAL`,
    /// `HEALTHCHECK`, `SHELL`.
    /// `{"8080/tcp": {}}`: sets, kept as Docker's JSON keeps them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

/// One line of an image's history: how a layer was made, or a step that changed
/// only the config (`ENV`, `CMD`: `empty_layer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HistoryJson")]
pub struct History {
    pub created_by: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Stores written before builds kept only the line.
#[derive(Deserialize)]
#[serde(untagged)]
enum HistoryJson {
    Line(String),
    Step {
        created_by: String,
        #[serde(default)]
        empty_layer: bool,
    },
}

impl From<HistoryJson> for History {
    fn from(json: HistoryJson) -> History {
        match json {
            HistoryJson::Line(created_by) => History {
                created_by,
                empty_layer: false,
            },
            HistoryJson::Step {
                created_by,
                empty_layer,
            } => History {
                created_by,
                empty_layer,
            },
        }
    }
}

impl History {
    pub fn layer(created_by: impl Into<String>) -> History {
        History {
            created_by: created_by.into(),
            empty_layer: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The digest of its config (`sha256:` dropped) for an image that came with one
    /// (pulled, loaded): the same image always has the same id. Random otherwise.
    pub id: String,
    /// `docker.io/library/alpine:latest`: whole references, printed as `alpine`.
    pub tags: Vec<String>,
    /// Layer ids, bottom first.
    pub layers: Vec<String>,
    pub config: ImageConfig,
    pub created: String,
    /// How each layer was made, and the steps that made none, for `history`.
    pub history: Vec<History>,
    /// `docker.io/library/alpine@sha256:...`: the manifests it was pulled by.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The digest (hex) of its own manifest, kept in `blobs/`, when it came with one:
    /// `push` sends it as it is, so the image keeps its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// `linux/arm64` when it is not for this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The image this one was built on, one step before (`build`): its cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A stored name, whole: `busybox:latest` (as older stores kept it) is
/// `docker.io/library/busybox:latest`.
pub fn canonical(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.canonical())
}

/// As Docker prints a stored name: `busybox:latest`, `localhost:5000/app:1`.
pub fn familiar(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.familiar())
}

impl Image {
    /// The layers' directories, top first: overlayfs's `lowerdir` order.
    pub fn lowers(&self, store: &Store) -> Vec<PathBuf> {
        self.layers.iter().rev().map(|l| store.layer(l)).collect()
    }

    pub fn save(&self, store: &Store) -> Result<()> {
        write_json(&store.image_file(&self.id), self)
    }

    /// `sha256:ID`, as Docker shows an image's id in full.
    pub fn digest_id(&self) -> String {
        format!("sha256:{}", self.id)
    }
}

pub fn list(store: &Store) -> Vec<Image> {
    store
        .ids("images")
        .iter()
        .filter_map(|id| read_json(&store.image_file(id)).ok())
        .collect()
}

// ANCHOR: find
/// By name (`alpine` is `docker.io/library/alpine:latest`), by `NAME@DIGEST`, or by
/// id (`sha256:` optional; a unique prefix of at least 4 digits).
pub fn find(store: &Store, reference: &str) -> Option<Image> {
    find_in(&list(store), reference)
}

/// [`find`] among `images`, read already.
pub fn find_in(images: &[Image], reference: &str) -> Option<Image> {
    if let Ok(wanted) = Reference::parse(reference) {
        let found = match &wanted.digest {
            Some(digest) => {
                let pinned = format!("{}@{digest}", wanted.name());
                images.iter().find(|i| i.repo_digests.contains(&pinned))
            }
            None => {
                let name = wanted.canonical();
                images
                    .iter()
                    .find(|i| i.tags.iter().any(|t| canonical(t) == name))
            }
        };
        if let Some(image) = found {
            return Some(image.clone());
        }
    }
    let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
    let by_id: Vec<&Image> = images.iter().filter(|i| i.id.starts_with(prefix)).collect();
    match by_id[..] {
        [one] if prefix.len() >= 4 => Some(one.clone()),
        _ => None,
    }
}
// ANCHOR_END: find

// ANCHOR: resolve
/// The image `reference`: `busybox` is built from this host when missing; any
/// other image is pulled (its progress on stderr, as `docker run` shows it).
pub fn resolve(store: &Store, reference: &str, platform: Option<&str>) -> Result<Image> {
    if let Some(image) = find(store, reference) {
        return Ok(image);
    }
    let wanted = Reference::parse(reference)?;
    if wanted.canonical() == "docker.io/library/busybox:latest" {
        // Ten `run busybox` at once on a fresh machine must build it once.
        let _locked = crate::store::lock(&store.root)?;
        if let Some(image) = find(store, reference) {
            return Ok(image);
        }
        eprintln!(
            "Unable to find image 'busybox:latest' locally: building it from this host \
             (its static busybox, or its programs): nothing is downloaded"
        );
        return busybox_from_host(store);
    }
    eprintln!("Unable to find image '{}' locally", wanted.familiar());
    crate::pull::pull(store, reference, platform, &mut std::io::stderr())
}
// ANCHOR_END: resolve

/// One layer made by chapter 01's rootfs builder, and an image of it.
pub fn busybox_from_host(store: &Store) -> Result<Image> {
    let layer = new_id()?;
    let tmp = store.root.join("layers").join(format!(".tmp-{layer}"));
    let quiet = labkit::narrate::is_quiet();
    labkit::narrate::set_quiet(true);
    let options = ch01_chroot::rootfs::Options {
        source: None, // a static busybox when there is one, else host programs
        force: false,
        add: vec![],
    };
    let built = ch01_chroot::rootfs::build(&tmp, &options);
    labkit::narrate::set_quiet(quiet);
    let built = match built {
        Ok(built) => built,
        Err(failure) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(failure);
        }
    };
    std::fs::rename(&tmp, store.layer(&layer)).context(|| tmp.display().to_string())?;
    let image = Image {
        id: new_id()?,
        tags: vec!["docker.io/library/busybox:latest".into()],
        layers: vec![layer],
        config: ImageConfig {
            env: vec![format!("PATH={}", labkit::doctor::DEFAULT_PATH)],
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        },
        created: now(),
        history: vec![History::layer(match built.source {
            ch01_chroot::rootfs::Source::Busybox => {
                "built from this host's static busybox (ch01-chroot rootfs)"
            }
            ch01_chroot::rootfs::Source::Host => {
                "built from this host's programs and libraries (no static busybox here)"
            }
        })],
        repo_digests: vec![],
        manifest: None,
        platform: None,
        parent: None,
    };
    image.save(store)?;
    Ok(image)
}
