//! `pull NAME[:TAG|@DIGEST]`: a manifest (or an index of manifests, one per
//! platform, resolved to this machine's), the image config it names, and its
//! layers, downloaded three at a time, each checked against its digest as it
//! streams. Nothing is stored until every blob and every `diff_id` is checked.

use std::io::Write;
use std::sync::Mutex;

use labkit::{Failure, Result};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use sha2::{Digest, Sha256};

use crate::image::{self, Image};
use crate::layers::{self, Incoming};
use crate::reference::Reference;
use crate::registry::{self, MANIFEST_LIMIT, MANIFEST_TYPES, Registry, Settings};
use crate::store::Store;

/// Docker's `max-concurrent-downloads`.
const DOWNLOADS_AT_ONCE: usize = 3;

/// `linux/amd64`: this machine, in the names images use (Go's).
pub fn this_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    format!("linux/{arch}")
}

/// A manifest as fetched: its bytes (hashed: the digest is of exactly these),
/// its media type, its digest.
struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: String,
}

// ANCHOR: manifest
/// `GET /v2/REPO/manifests/REF` with every manifest type we read in `Accept`.
fn manifest(registry: &Registry, reference: &Reference, version: &str) -> Result<Fetched> {
    let url = registry.url("manifests", version);
    let accept = MANIFEST_TYPES.join(", ");
    let answer = registry.send("GET", &url, &[("Accept", &accept)], None)?;
    if !answer.status().is_success() {
        let failure = registry::error_of(&url, answer);
        let name = reference.familiar_name();
        return Err(match failure.message() {
            m if m.starts_with("manifest unknown") => {
                Failure::new(format!("manifest for {name}:{version} not found: {m}"))
            }
            m if m.starts_with("name unknown")
                || m.starts_with("unauthorized")
                || m.starts_with("denied") =>
            {
                Failure::new(format!(
                    "pull access denied for {name}, repository does not exist or may require \
                     'mini-docker login': {m}"
                ))
            }
            _ => failure,
        });
    }
    let media_type = registry::header(&answer, "content-type");
    let bytes = registry::read_limited(
        answer,
        MANIFEST_LIMIT,
        &format!("the manifest of {name}", name = reference.familiar()),
    )?;
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    if version.starts_with("sha256:") && digest != version {
        return Err(Failure::new(format!(
            "the registry sent a manifest whose digest is {digest}, not the {version} asked for"
        )));
    }
    // The type the document gives itself wins over the header.
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string));
    Ok(Fetched {
        media_type: declared.unwrap_or(media_type),
        bytes,
        digest,
    })
}
// ANCHOR_END: manifest

// ANCHOR: platform
/// From an index, the manifest for `platform` (`os/arch[/variant]`).
fn choose(index: &ImageIndex, platform: &str) -> Result<Descriptor> {
    let mut wanted = platform.split('/');
    let (os, arch, variant) = (wanted.next(), wanted.next(), wanted.next());
    index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                Some(p.os().to_string().as_str()) == os
                    && Some(p.architecture().to_string().as_str()) == arch
                    && (variant.is_none() || p.variant().as_deref() == variant)
            })
        })
        .cloned()
        .ok_or_else(|| {
            Failure::new(format!(
                "no matching manifest for {platform} in the manifest list entries"
            ))
        })
}
// ANCHOR_END: platform

fn is_index(media_type: &str) -> bool {
    media_type.ends_with("image.index.v1+json") || media_type.ends_with("manifest.list.v2+json")
}

// ANCHOR: pull
/// Pull `reference` into the store, printing progress to `out`, as `docker pull`.
pub fn pull(
    store: &Store,
    reference: &str,
    platform: Option<&str>,
    out: &mut (dyn Write + Send),
) -> Result<Image> {
    let wanted = Reference::parse(reference)?;
    let platform = platform.map_or_else(this_platform, str::to_string);
    fn say(out: &mut (dyn Write + Send), line: String) {
        let _ = writeln!(out, "{line}");
    }
    let settings = Settings::load()?;
    let credentials = crate::login::stored(&wanted.registry)?;
    let registry = Registry::connect(
        &settings,
        &wanted.registry,
        &wanted.repository,
        "pull",
        &[],
        credentials,
        true,
    )?;
    let version = wanted.version().to_string();
    let (top, chosen, parsed) = resolve(&registry, &wanted, reference, &platform)?;
    say(
        out,
        format!(
            "{}: Pulling from {}",
            wanted.tag.as_deref().unwrap_or(&version),
            wanted.repository
        ),
    );
    let (config, actual) = config_of(&registry, &parsed, reference, &platform, &top)?;
    let scratch = store.scratch(".pull-")?;
    let before = image::find(store, &wanted.canonical());
    let progress = Progress::new(parsed.layers(), out);
    let (files, fetched) =
        download_layers(store, &registry, parsed.layers(), scratch.path(), &progress)?;
    let pulled = layers::make_image(
        store,
        Incoming {
            config,
            layers: files,
            tags: match wanted.tag {
                Some(_) => vec![wanted.canonical()],
                None => vec![],
            },
            repo_digest: Some(format!("{}@{}", wanted.name(), top.digest)),
            manifest: Some(chosen.bytes),
            platform: (platform != this_platform()).then(|| actual.clone()),
        },
    )?;
    for i in fetched {
        progress.set(i, "Pull complete".into(), true);
    }
    drop(progress);
    say(out, format!("Digest: {}", top.digest));
    let status = match before.is_some_and(|b| b.id == pulled.id) {
        true => "Image is up to date for",
        false => "Downloaded newer image for",
    };
    say(out, format!("Status: {status} {}", wanted.familiar()));
    say(out, wanted.canonical());
    Ok(pulled)
}
// ANCHOR_END: pull

/// The manifest asked for (its digest is the one pulled by), and the one for
/// `platform` when it is an index, parsed.
fn resolve(
    registry: &Registry,
    wanted: &Reference,
    reference: &str,
    platform: &str,
) -> Result<(Fetched, Fetched, ImageManifest)> {
    let top = manifest(registry, wanted, wanted.version())?;
    let chosen = match is_index(&top.media_type) {
        true => {
            let index: ImageIndex = serde_json::from_slice(&top.bytes)
                .map_err(|e| Failure::new(format!("the index of {reference}: {e}")))?;
            let one = choose(&index, platform)?;
            manifest(registry, wanted, one.digest().as_ref())?
        }
        false => top.clone_of(),
    };
    let parsed: ImageManifest = serde_json::from_slice(&chosen.bytes).map_err(|e| {
        Failure::new(format!(
            "the manifest of {reference} ({}): {e}",
            chosen.media_type
        ))
    })?;
    Ok((top, chosen, parsed))
}

/// The image config (bounded in size, checked by digest), and its os/arch, which
/// must be the platform an index was asked for.
fn config_of(
    registry: &Registry,
    parsed: &ImageManifest,
    reference: &str,
    platform: &str,
    top: &Fetched,
) -> Result<(Vec<u8>, String)> {
    let mut config = vec![];
    let cd = parsed.config();
    if cd.size() > 16 << 20 {
        return Err(Failure::new(format!(
            "the image config is {} bytes: refused",
            cd.size()
        )));
    }
    registry::download(
        registry,
        cd.digest().as_ref(),
        cd.size(),
        &mut config,
        &mut |_| {},
    )?;
    let config_read = layers::parse_config(&config, "the image config")?;
    let actual = format!("{}/{}", config_read.os(), config_read.architecture());
    if !platform.starts_with(&actual) && is_index(&top.media_type) {
        return Err(Failure::new(format!(
            "image with reference {reference} was found but does not match the specified \
             platform: wanted {platform}, actual: {actual}"
        )));
    }
    Ok((config, actual))
}

impl Fetched {
    fn clone_of(&self) -> Fetched {
        Fetched {
            bytes: self.bytes.clone(),
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
        }
    }
}

// ANCHOR: download_layers
/// Every layer: the stored blob when there is one ("Already exists"), else
/// downloaded into `scratch`, `DOWNLOADS_AT_ONCE` at a time. The first failure
/// stops the others, and nothing is kept.
fn download_layers(
    store: &Store,
    registry: &Registry,
    wanted: &[Descriptor],
    scratch: &std::path::Path,
    progress: &Progress,
) -> Result<(Vec<layers::LayerFile>, Vec<usize>)> {
    let next = Mutex::new(0usize);
    let failed: Mutex<Option<Failure>> = Mutex::new(None);
    let paths: Vec<_> = wanted
        .iter()
        .map(|d| (d.digest().to_string(), scratch.join(d.digest().digest())))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..DOWNLOADS_AT_ONCE.min(wanted.len()) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                        *n += 1;
                        *n - 1
                    };
                    if i >= wanted.len() || failed.lock().is_ok_and(|f| f.is_some()) {
                        return;
                    }
                    let (digest, path) = &paths[i];
                    if store.blob(digest).is_file() {
                        progress.set(i, "Already exists".into(), true);
                        continue;
                    }
                    if let Err(e) = fetch_one(registry, &wanted[i], path, i, progress) {
                        progress.set(i, "Download failed".into(), true);
                        let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let fetched = (0..paths.len()).filter(|i| paths[*i].1.is_file()).collect();
    let files = paths
        .iter()
        .map(|(digest, path)| {
            let at = match path.is_file() {
                true => path.clone(),
                false => store.blob(digest),
            };
            let file = std::fs::File::open(&at)
                .map_err(|e| Failure::new(format!("{}: {e}", at.display())))?;
            Ok((file, Some(digest.clone())))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((files, fetched))
}
// ANCHOR_END: download_layers

fn fetch_one(
    registry: &Registry,
    layer: &Descriptor,
    path: &std::path::Path,
    i: usize,
    progress: &Progress,
) -> Result<()> {
    let mut file = std::fs::File::create(path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let size = layer.size();
    progress.set(i, "Pulling fs layer".into(), true);
    registry::download(
        registry,
        layer.digest().as_ref(),
        size,
        &mut file,
        &mut |got| {
            progress.set(i, format!("Downloading {}", bar(got, size)), false);
        },
    )?;
    progress.set(i, "Verifying Checksum".into(), true);
    progress.set(i, "Download complete".into(), true);
    Ok(())
}

/// `[=====>      ]  1.2MB/3.4MB`, as Docker draws it.
fn bar(got: u64, size: u64) -> String {
    let width = 50u64;
    let filled = (got * width).checked_div(size).unwrap_or(width).min(width);
    let mut line = "=".repeat(filled as usize);
    if filled < width {
        line.push('>');
        line.push_str(&" ".repeat((width - filled - 1) as usize));
    }
    format!("[{line}]  {}/{}", human(got), human(size))
}

/// Sizes as Docker prints them: 1.2MB, 3.4kB, 12B.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1}MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1}kB", b as f64 / 1e3),
        b => format!("{b}B"),
    }
}

// ANCHOR: progress
/// One line per layer, `SHORTID: STATUS`. On a terminal the lines are redrawn in
/// place (the cursor goes up over them: `ESC [ N A`), bars and all; otherwise each
/// change of step is printed once, as a line of its own.
struct Progress<'a> {
    out: Mutex<(&'a mut (dyn Write + Send), Vec<String>)>,
    ids: Vec<String>,
    terminal: bool,
}

impl<'a> Progress<'a> {
    fn new(layers: &[Descriptor], out: &'a mut (dyn Write + Send)) -> Progress<'a> {
        use std::io::IsTerminal;
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let ids: Vec<String> = layers
            .iter()
            .map(|d| d.digest().digest()[..12].to_string())
            .collect();
        if terminal {
            for id in &ids {
                let _ = writeln!(out, "{id}: Waiting");
            }
        }
        Progress {
            out: Mutex::new((out, vec!["Waiting".into(); ids.len()])),
            ids,
            terminal,
        }
    }

    /// `step`: a change worth a line of its own when not on a terminal.
    fn set(&self, i: usize, status: String, step: bool) {
        let mut guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let (out, lines) = &mut *guard;
        if lines[i] == status {
            return;
        }
        lines[i] = status.clone();
        if self.terminal {
            let _ = write!(out, "\x1b[{}A", lines.len());
            for (id, line) in self.ids.iter().zip(lines.iter()) {
                let _ = writeln!(out, "\x1b[2K{id}: {line}");
            }
        } else if step {
            let _ = writeln!(out, "{}: {status}", self.ids[i]);
        }
        let _ = out.flush();
    }
}
// ANCHOR_END: progress
