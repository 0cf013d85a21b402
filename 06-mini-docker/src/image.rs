//! Images: read-only layers (stored once, under `layers/`) and a config (the
//! environment, command, entrypoint and working directory a container starts with).
//!
//! A fresh machine has no images, and mini-docker downloads nothing: `busybox` is
//! built from this host, by chapter 01's rootfs builder, the first time it is asked for.

use std::path::PathBuf;

use labkit::failure::Context;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::store::{Store, new_id, now, read_json, write_json};

/// What a container of this image starts with, as in an OCI image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    /// `name:tag`, as `docker images` lists them.
    pub tags: Vec<String>,
    /// Layer ids, bottom first.
    pub layers: Vec<String>,
    pub config: ImageConfig,
    pub created: String,
    /// How each layer was made, for `history`.
    pub history: Vec<String>,
}

/// `busybox` means `busybox:latest`.
pub fn normalize(reference: &str) -> String {
    match reference.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => reference.to_string(),
        _ => format!("{reference}:latest"),
    }
}

impl Image {
    /// The layers' directories, top first: overlayfs's `lowerdir` order.
    pub fn lowers(&self, store: &Store) -> Vec<PathBuf> {
        self.layers.iter().rev().map(|l| store.layer(l)).collect()
    }

    pub fn save(&self, store: &Store) -> Result<()> {
        write_json(&store.image_file(&self.id), self)
    }
}

pub fn list(store: &Store) -> Vec<Image> {
    store
        .ids("images")
        .iter()
        .filter_map(|id| read_json(&store.image_file(id)).ok())
        .collect()
}

/// By `name[:tag]`, or by id (or a unique prefix of one).
pub fn find(store: &Store, reference: &str) -> Option<Image> {
    let tag = normalize(reference);
    let images = list(store);
    if let Some(image) = images.iter().find(|i| i.tags.contains(&tag)) {
        return Some(image.clone());
    }
    let by_id: Vec<&Image> = images
        .iter()
        .filter(|i| i.id.starts_with(reference))
        .collect();
    match by_id[..] {
        [one] if reference.len() >= 4 => Some(one.clone()),
        _ => None,
    }
}

// ANCHOR: resolve
/// The image `reference`; `busybox` is built from this host when missing.
pub fn resolve(store: &Store, reference: &str) -> Result<Image> {
    if let Some(image) = find(store, reference) {
        return Ok(image);
    }
    if normalize(reference) == "busybox:latest" {
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
    Err(Failure::new(format!(
        "Unable to find image '{}' locally, and mini-docker pulls nothing: \
         `mini-docker import TAR {reference}` makes one (see: mini-docker images)",
        normalize(reference)
    )))
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
        tags: vec!["busybox:latest".into()],
        layers: vec![layer],
        config: ImageConfig {
            env: vec![format!("PATH={}", labkit::doctor::DEFAULT_PATH)],
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        },
        created: now(),
        history: vec![match built.source {
            ch01_chroot::rootfs::Source::Busybox => {
                "built from this host's static busybox (ch01-chroot rootfs)".into()
            }
            ch01_chroot::rootfs::Source::Host => {
                "built from this host's programs and libraries (no static busybox here)".into()
            }
        }],
    };
    image.save(store)?;
    Ok(image)
}
