//! Images going out: `push` to a registry and `save` to a `docker save` archive.
//!
//! An image that came with a manifest (pulled, or loaded from an OCI layout) goes
//! out with that same manifest, config and layer blobs: it keeps its digest. One
//! made here (`import`, `commit`, the host-built busybox) gets a config and an OCI
//! manifest written for it, its layers packed by chapter 04 where no tarball is kept.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use labkit::{Failure, Result};
use oci_spec::image::ImageManifest;
use serde_json::json;
use sha2::{Digest, Sha256};
use ureq::http::StatusCode;

use crate::image::{self, Image};
use crate::reference::Reference;
use crate::registry::{self, Body, Registry, Settings};
use crate::store::Store;

/// A blob to send: where it is, what it is.
#[derive(Debug, Clone)]
pub struct Blob {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// An image as a registry holds it.
#[derive(Debug)]
pub struct Outgoing {
    pub config: Vec<u8>,
    pub layers: Vec<Blob>,
    pub manifest: Vec<u8>,
    pub manifest_type: String,
}

fn blob_at(path: PathBuf, digest: String, media_type: &str) -> Result<Blob> {
    let size = std::fs::metadata(&path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?
        .len();
    Ok(Blob {
        path,
        digest,
        size,
        media_type: media_type.to_string(),
    })
}

// ANCHOR: outgoing
/// The image's manifest, config and layer blobs; `scratch` holds layers packed now.
pub fn outgoing(store: &Store, image: &Image, scratch: &Path) -> Result<Outgoing> {
    kept(store, image).unwrap_or_else(|| written(store, image, scratch))
}
// ANCHOR_END: outgoing

/// A pulled image's own manifest and config, as they came: it keeps its digest.
fn kept(store: &Store, image: &Image) -> Option<Result<Outgoing>> {
    if let Some(hex) = &image.manifest
        && let Ok(bytes) = std::fs::read(store.blob(hex))
        && let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes)
        && let Ok(config) = std::fs::read(store.blob(manifest.config().digest().as_ref()))
    {
        let layers = manifest
            .layers()
            .iter()
            .map(|l| {
                blob_at(
                    store.blob(l.digest().as_ref()),
                    l.digest().to_string(),
                    l.media_type().as_ref(),
                )
            })
            .collect::<Result<Vec<_>>>();
        let manifest_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or("application/vnd.oci.image.manifest.v1+json".into());
        return Some(layers.map(|layers| Outgoing {
            config,
            layers,
            manifest: bytes,
            manifest_type,
        }));
    }
    None
}

/// An image made here: its layers packed by chapter 04 when they have no blob, an
/// OCI config and manifest written for them.
fn written(store: &Store, image: &Image, scratch: &Path) -> Result<Outgoing> {
    let mut layers = vec![];
    let mut diff_ids = vec![];
    for layer in &image.layers {
        let kept = store.blob(layer);
        let blob = match kept.is_file() {
            true => kept,
            false => {
                let tar = scratch.join(format!("{layer}.tar.gz"));
                ch04_overlayfs::pack::pack(&store.layer(layer), &tar)?;
                tar
            }
        };
        let digest = format!("sha256:{}", crate::layers::sha256_of(&blob)?);
        let media_type = match ch04_overlayfs::unpack::is_gzip(&blob) {
            true => "application/vnd.oci.image.layer.v1.tar+gzip",
            false => "application/vnd.oci.image.layer.v1.tar",
        };
        diff_ids.push(ch04_overlayfs::unpack::diff_id(&blob)?);
        layers.push(blob_at(blob, digest, media_type)?);
    }
    let platform = image
        .platform
        .clone()
        .unwrap_or_else(crate::pull::this_platform);
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", "amd64"));
    let c = &image.config;
    let config = serde_json::to_vec(&json!({
        "created": image.created,
        "architecture": arch.split('/').next().unwrap_or(arch),
        "os": os,
        "config": config_json(c),
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": image.history,
    }))
    .map_err(|e| Failure::new(e.to_string()))?;
    let descriptor = |media_type: &str, digest: &str, size: u64| json!({ "mediaType": media_type, "digest": digest, "size": size });
    let manifest_type = "application/vnd.oci.image.manifest.v1+json".to_string();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(
            "application/vnd.oci.image.config.v1+json",
            &format!("sha256:{:x}", Sha256::digest(&config)),
            config.len() as u64,
        ),
        "layers": layers.iter().map(|l| descriptor(&l.media_type, &l.digest, l.size)).collect::<Vec<_>>(),
    }))
    .map_err(|e| Failure::new(e.to_string()))?;
    Ok(Outgoing {
        config,
        layers,
        manifest,
        manifest_type,
    })
}

/// The OCI image config's `config`, under its names (empty ones left out).
fn config_json(c: &crate::image::ImageConfig) -> serde_json::Value {
    let mut config = json!({
        "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint,
        "WorkingDir": c.working_dir, "User": c.user,
        "ExposedPorts": (!c.exposed_ports.is_empty()).then_some(&c.exposed_ports),
        "Volumes": (!c.volumes.is_empty()).then_some(&c.volumes),
        "Labels": (!c.labels.is_empty()).then_some(&c.labels),
        "StopSignal": (!c.stop_signal.is_empty()).then_some(&c.stop_signal),
        "Healthcheck": c.healthcheck, "Shell": (!c.shell.is_empty()).then_some(&c.shell),
    });
    if let Some(map) = config.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    config
}

/// Blobs above this go up in chunks (`PATCH` with `Content-Range`), the rest in one `PUT`.
pub const CHUNK: u64 = 4 << 20;

// ANCHOR: push
/// `push NAME[:TAG]`: each blob the registry lacks (asked with `HEAD`), mounted from
/// another repository of the same registry when the image came from one, else
/// uploaded; then the manifest, under the tag.
pub fn push(store: &Store, reference: &str, out: &mut dyn Write) -> Result<String> {
    let wanted = Reference::parse(reference)?;
    let Some(tag) = wanted.tag.clone().filter(|_| wanted.digest.is_none()) else {
        return Err(Failure::new(format!(
            "{reference}: push needs a tag, not a digest"
        )));
    };
    let image = image::find(store, reference)
        .filter(|i| {
            i.tags
                .iter()
                .any(|t| image::canonical(t) == wanted.canonical())
        })
        .ok_or_else(|| {
            Failure::new(format!(
                "An image does not exist locally with the tag: {}",
                wanted.familiar_name()
            ))
        })?;
    let _ = writeln!(out, "The push refers to repository [{}]", wanted.name());
    // Repositories of the same registry this image was pulled from: blobs to mount.
    let sources: Vec<String> = image
        .repo_digests
        .iter()
        .filter_map(|d| Reference::parse(d).ok())
        .filter(|r| r.registry == wanted.registry && r.repository != wanted.repository)
        .map(|r| r.repository)
        .collect();
    let registry = Registry::connect(
        &Settings::load()?,
        &wanted.registry,
        &wanted.repository,
        "pull,push",
        &sources,
        crate::login::stored(&wanted.registry)?,
        false,
    )?;
    let scratch = store.scratch(".push-")?;
    let going = outgoing(store, &image, scratch.path())?;
    let config_path = scratch.path().join("config.json");
    std::fs::write(&config_path, &going.config).map_err(|e| Failure::new(e.to_string()))?;
    let config = blob_at(
        config_path,
        format!("sha256:{:x}", Sha256::digest(&going.config)),
        "application/vnd.oci.image.config.v1+json",
    )?;
    for blob in going.layers.iter().rev().chain([&config]) {
        let short = &blob.digest["sha256:".len()..][..12];
        let done = send_blob(&registry, blob, &sources)?;
        if blob.digest != config.digest {
            let _ = writeln!(out, "{short}: {done}");
        }
    }
    let url = registry.url("manifests", &tag);
    let answer = registry.send(
        "PUT",
        &url,
        &[("Content-Type", &going.manifest_type)],
        Some(Body::Bytes(going.manifest.clone())),
    )?;
    if !answer.status().is_success() {
        return Err(registry::error_of(&url, answer));
    }
    let digest = format!("sha256:{:x}", Sha256::digest(&going.manifest));
    let _ = writeln!(
        out,
        "{tag}: digest: {digest} size: {}",
        going.manifest.len()
    );
    let mut image = image;
    let pinned = format!("{}@{digest}", wanted.name());
    if !image.repo_digests.contains(&pinned) {
        image.repo_digests.push(pinned);
        image.save(store)?;
    }
    Ok(digest)
}
// ANCHOR_END: push

// ANCHOR: send_blob
/// One blob: `HEAD` (there already?), a mount from `sources`, or an upload session
/// (`POST`, then one `PUT ?digest=`, or `PATCH` chunks and a closing `PUT`).
fn send_blob(registry: &Registry, blob: &Blob, sources: &[String]) -> Result<String> {
    let head = registry.send("HEAD", &registry.url("blobs", &blob.digest), &[], None)?;
    if head.status().is_success() {
        return Ok("Layer already exists".into());
    }
    let uploads = format!(
        "{}/v2/{}/blobs/uploads/",
        registry.base, registry.repository
    );
    let mut session = None;
    for from in sources {
        let url = format!("{uploads}?mount={}&from={from}", blob.digest);
        let answer = registry.send("POST", &url, &[], None)?;
        match answer.status() {
            StatusCode::CREATED => return Ok(format!("Mounted from {from}")),
            StatusCode::ACCEPTED => session = Some(registry::header(&answer, "location")),
            _ => return Err(registry::error_of(&url, answer)),
        }
    }
    let mut location = match session {
        Some(location) => registry::join_url(&uploads, &location),
        None => {
            let answer = registry.send("POST", &uploads, &[], None)?;
            if answer.status() != StatusCode::ACCEPTED {
                return Err(registry::error_of(&uploads, answer));
            }
            registry::join_url(&uploads, &registry::header(&answer, "location"))
        }
    };
    let open = || {
        File::open(&blob.path).map_err(|e| Failure::new(format!("{}: {e}", blob.path.display())))
    };
    let mut last = Some(Body::File(open()?, blob.size));
    if blob.size > CHUNK {
        let mut at = 0;
        while at < blob.size {
            let n = CHUNK.min(blob.size - at);
            let mut file = open()?;
            file.seek(std::io::SeekFrom::Start(at))
                .map_err(|e| Failure::new(e.to_string()))?;
            let range = format!("{at}-{}", at + n - 1);
            let answer = registry.send(
                "PATCH",
                &location,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Some(Body::File(file, n)),
            )?;
            if answer.status() != StatusCode::ACCEPTED {
                return Err(registry::error_of(&location, answer));
            }
            location = registry::join_url(&location, &registry::header(&answer, "location"));
            at += n;
        }
        last = None;
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={}", blob.digest);
    let answer = match last {
        Some(body) => registry.send(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Some(body),
        )?,
        None => registry.send("PUT", &url, &[], None)?,
    };
    if answer.status() != StatusCode::CREATED {
        return Err(registry::error_of(&url, answer));
    }
    Ok("Pushed".into())
}
// ANCHOR_END: send_blob

// ANCHOR: save
/// `save IMAGE...`: a `docker save` archive (`manifest.json`, each config, each layer
/// uncompressed and named by its diff_id), as `docker load` and skopeo read it.
pub fn save(store: &Store, references: &[String], out: &mut dyn Write) -> Result<()> {
    let mut images: Vec<(Image, Vec<String>)> = vec![];
    for reference in references {
        let image = image::find(store, reference)
            .ok_or_else(|| Failure::new(format!("No such image: {reference}")))?;
        let tag = Reference::parse(reference)
            .ok()
            .filter(|r| {
                r.digest.is_none()
                    && image
                        .tags
                        .iter()
                        .any(|t| image::canonical(t) == r.canonical())
            })
            .map(|r| r.familiar());
        match images.iter_mut().find(|(i, _)| i.id == image.id) {
            Some((_, tags)) => tags.extend(tag),
            None => images.push((image, tag.into_iter().collect())),
        }
    }
    let scratch = store.scratch(".save-")?;
    let mut tar = tar::Builder::new(out);
    let fail = |e: std::io::Error| Failure::new(format!("the archive: {e}"));
    let mut entries = vec![];
    let mut written = std::collections::HashSet::new();
    for (image, tags) in &images {
        let going = outgoing(store, image, scratch.path())?;
        let config_name = format!("blobs/sha256/{:x}", Sha256::digest(&going.config));
        let mut layer_names = vec![];
        for layer in &going.layers {
            let plain = scratch.path().join("layer.tar");
            let mut file = File::create(&plain).map_err(fail)?;
            let mut hash = Sha256::new();
            let mut reader = ch04_overlayfs::unpack::decompressed(&layer.path)?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = reader.read(&mut buf).map_err(fail)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(fail)?;
            }
            let name = format!("blobs/sha256/{:x}", hash.finalize());
            if written.insert(name.clone()) {
                tar.append_path_with_name(&plain, &name).map_err(fail)?;
            }
            layer_names.push(name);
        }
        if written.insert(config_name.clone()) {
            append_bytes(&mut tar, &config_name, &going.config).map_err(fail)?;
        }
        entries.push(crate::layers::SavedImage {
            config: config_name,
            repo_tags: Some(tags.clone()),
            layers: layer_names,
        });
    }
    let manifest = serde_json::to_vec(&entries).map_err(|e| Failure::new(e.to_string()))?;
    append_bytes(&mut tar, "manifest.json", &manifest).map_err(fail)?;
    tar.into_inner().and_then(|w| w.flush()).map_err(fail)
}
// ANCHOR_END: save

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
}
