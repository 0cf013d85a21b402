//! COPY and ADD: sources in the context or another image, copied into a new layer.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use labkit::failure::Context;
use labkit::{Failure, Result};
use sha2::{Digest, Sha256};

use super::{Build, Stage, State, clean, file_name, stage_named};
use crate::context::{self, Owner};
use crate::dockerfile::Instruction;
use crate::image::{self, Image};
use crate::layers::{PrivateMounts, add_layer};

pub(super) struct Copy {
    /// `--from`'s image (another stage, or any image), if any.
    from: Option<Image>,
    /// Where the sources are read: the context, or the `--from` image's root,
    /// mounted (`mounts`) only when a step needs its files ([`Build::open_sources`]).
    root: Option<File>,
    mounts: Option<PrivateMounts>,
    /// The sources as written (relative, globs and all), then as found.
    patterns: Vec<String>,
    sources: Vec<String>,
    /// ADD's URLs, downloaded: a name (the URL's last part) and the file.
    fetched: Vec<(String, File)>,
    pub(super) dest: String,
    /// The destination ends in `/`.
    dest_dir: bool,
    into_dir: bool,
    owner: Owner,
    unpack: bool,
}

impl Build<'_> {
    // ANCHOR: plan_copy
    /// COPY/ADD: the sources, in the context or in the root of `--from` (a stage or
    /// an image, mounted only when its files are needed); ADD's URLs downloaded;
    /// the destination, relative to WORKDIR.
    pub(super) fn plan_copy(
        &self,
        state: &State,
        ins: &Instruction,
        stages: &[Stage],
        built: &[Option<Image>],
    ) -> Result<Copy> {
        let add = ins.keyword == "ADD";
        ins.only_flags(if add {
            &["chown", "chmod"]
        } else {
            &["from", "chown", "chmod", "link"]
        })?;
        let mut words = self.words(state, ins);
        if words.len() < 2 {
            return Err(ins.fail("needs a source and a destination"));
        }
        let dest_word = words.pop().unwrap_or_default();
        let owner = Owner {
            ids: Some(match ins.flag("chown") {
                Some(spec) => crate::create::user(spec)
                    .map_err(|_| ins.fail(format!("--chown={spec}: use UID[:GID], as numbers")))?,
                None => (0, 0),
            }),
            mode: (ins.flag("chmod"))
                .map(|m| {
                    u32::from_str_radix(m, 8)
                        .map_err(|_| ins.fail(format!("--chmod={m}: an octal mode")))
                })
                .transpose()?,
        };
        let from = (ins.flag("from"))
            .map(|name| self.copy_image(ins, name, stages, built))
            .transpose()?;
        let base = if state.image.config.working_dir.is_empty() {
            "/"
        } else {
            &state.image.config.working_dir
        };
        let mut copy = Copy {
            from,
            root: None,
            mounts: None,
            patterns: vec![],
            sources: vec![],
            fetched: vec![],
            dest: clean(&Path::new(base).join(&dest_word)),
            dest_dir: dest_word.ends_with('/'),
            into_dir: false,
            owner,
            unpack: add,
        };
        for word in &words {
            match add && (word.starts_with("http://") || word.starts_with("https://")) {
                true => copy.fetched.push(self.download(ins, word)?),
                false => {
                    (copy.patterns).push(clean(Path::new(word)).trim_start_matches('/').into())
                }
            }
        }
        if copy.from.is_none() {
            self.open_sources(ins, &mut copy)?;
        }
        Ok(copy)
    }
    // ANCHOR_END: plan_copy

    /// `--from=NAME`: an earlier stage's image, or any image.
    fn copy_image(
        &self,
        ins: &Instruction,
        name: &str,
        stages: &[Stage],
        built: &[Option<Image>],
    ) -> Result<Image> {
        let here = stages
            .iter()
            .position(|s| s.body.iter().any(|i| std::ptr::eq(i, ins)));
        match stage_named(stages, name, here.unwrap_or(stages.len())) {
            Some(j) => built[j]
                .clone()
                .ok_or_else(|| ins.fail(format!("stage {name} was not built"))),
            None if stages.iter().any(|s| s.name == name.to_lowercase()) => Err(ins.fail(format!(
                "--from={name}: a stage can only copy from the stages before it"
            ))),
            None => image::resolve(self.store, name, None)
                .map_err(|e| ins.fail(format!("--from={name}: {e}"))),
        }
    }

    /// The sources' root open, and their globs expanded: the context's, or the
    /// `--from` image's, mounted read-only (its overlay, with a throwaway upper) in a
    /// mount namespace of our own.
    fn open_sources(&self, ins: &Instruction, copy: &mut Copy) -> Result<()> {
        if copy.root.is_some() {
            return Ok(());
        }
        let root = match &copy.from {
            None => self.context.try_clone().context(|| "the context".into())?,
            Some(image) => {
                let dir = tempfile::Builder::new()
                    .prefix("from-")
                    .tempdir_in(self.scratch.path())
                    .context(|| "scratch".into())?
                    .keep();
                let merged = dir.join("merged");
                std::fs::create_dir_all(&merged).context(|| merged.display().to_string())?;
                if !image.layers.is_empty() {
                    let overlay = ch04_overlayfs::overlay::Overlay::new(
                        &image.lowers(self.store),
                        &dir.join("upper"),
                        &dir.join("work"),
                        &merged,
                    )?;
                    let mut mounts =
                        PrivateMounts::enter("the image COPY --from reads, seen here only")?;
                    mounts.mount(&overlay)?;
                    copy.mounts = Some(mounts);
                }
                File::open(&merged).context(|| merged.display().to_string())?
            }
        };
        for rel in &copy.patterns {
            match context::has_wildcards(rel) {
                true => copy.sources.extend(glob_paths(&root, rel)?),
                false => copy.sources.push(rel.clone()),
            }
        }
        copy.root = Some(root);
        if copy.sources.is_empty() && copy.fetched.is_empty() {
            return Err(ins.fail("no source files were specified (the patterns match nothing)"));
        }
        let many = copy.patterns.len() + copy.fetched.len() > 1 || copy.sources.len() > 1;
        if many && !copy.dest_dir {
            return Err(ins.fail("when using COPY with more than one source file, the destination must be a directory and end with a /"));
        }
        copy.into_dir = many || copy.dest_dir;
        Ok(())
    }

    // ANCHOR: checksum
    /// A digest of the sources as they will be copied: each path, type, mode, size,
    /// content and link target; not times, not owners (COPY sets its own). Named as
    /// classic Docker names them: `file:`, `dir:`, or `multi:` for several. An image
    /// never changes, so the digest of its files is kept (`build-cache/IMAGE/`): the
    /// next build finds it there without mounting the image.
    pub(super) fn checksum(&self, ins: &Instruction, copy: &mut Copy) -> Result<String> {
        let kept = copy.from.as_ref().map(|image| {
            let key = Sha256::digest(copy.patterns.join("\0").as_bytes());
            self.store.build_cache(&image.id).join(format!("{key:x}"))
        });
        if let Some(sum) = kept.as_ref().and_then(|k| std::fs::read_to_string(k).ok()) {
            return Ok(sum);
        }
        self.open_sources(ins, copy)?;
        let mut hash = Sha256::new();
        let mut kind = "multi";
        for source in &copy.sources {
            let file = self.source(copy, source)?;
            let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
            if copy.sources.len() == 1 {
                kind = if is_dir { "dir" } else { "file" };
            }
            hash.update(format!("{source}\0").as_bytes());
            hash_tree(&mut hash, &file, Path::new(""))?;
        }
        for (name, file) in &copy.fetched {
            hash.update(format!("{name}\0").as_bytes());
            hash_tree(&mut hash, file, Path::new(""))?;
        }
        if copy.sources.is_empty() && copy.fetched.len() == 1 {
            kind = "file";
        }
        let sum = format!("{kind}:{:x}", hash.finalize());
        if let Some(kept) = kept {
            let dir = kept.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).context(|| dir.display().to_string())?;
            crate::store::keep_text(&kept, &sum)?;
        }
        Ok(sum)
    }
    // ANCHOR_END: checksum

    /// A source, opened in its root; in the context, one `.dockerignore` left out is
    /// said to be so.
    fn source(&self, copy: &Copy, rel: &str) -> Result<File> {
        let root = (copy.root.as_ref()).ok_or_else(|| Failure::new("the sources are not open"))?;
        let in_image = copy.from.is_some();
        context::open_in(root.as_fd(), rel, in_image, rel).map_err(|e| {
            match !in_image && self.ignore.ignores(rel) {
                true => Failure::new(format!(
                    "{rel}: not in the build context: .dockerignore leaves it out"
                )),
                false => e,
            }
        })
    }

    // ANCHOR: copy
    /// COPY/ADD, done: an overlay of the image's layers with a new, empty upper
    /// (no overlay on `scratch`: the upper is the root), the sources copied in by
    /// descriptors (the destination's symlinks read inside the image's root), then
    /// the upper packed by chapter 04, as `commit` packs a container's.
    pub(super) fn copy(&self, image: &Image, ins: &Instruction, mut copy: Copy) -> Result<String> {
        self.open_sources(ins, &mut copy)?;
        let dir = tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(self.scratch.path())
            .context(|| "scratch".into())?;
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(&upper).context(|| upper.display().to_string())?;
        let root_path = match image.layers.is_empty() {
            true => upper.clone(),
            false => {
                let merged = dir.path().join("merged");
                std::fs::create_dir_all(&merged).context(|| merged.display().to_string())?;
                let overlay = ch04_overlayfs::overlay::Overlay::new(
                    &image.lowers(self.store),
                    &upper,
                    &dir.path().join("work"),
                    &merged,
                )?;
                match &mut copy.mounts {
                    Some(mounts) => mounts.mount(&overlay)?,
                    None => {
                        let mut mounts =
                            PrivateMounts::enter("the layer COPY writes, seen here only")?;
                        mounts.mount(&overlay)?;
                        copy.mounts = Some(mounts);
                    }
                }
                merged
            }
        };
        let root = File::open(&root_path).context(|| root_path.display().to_string())?;
        for source in &copy.sources {
            self.copy_one(&copy, &root, source, dir.path())
                .map_err(|e| ins.fail(e))?;
        }
        for (name, file) in &copy.fetched {
            copy_file(&copy, &root, file, name).map_err(|e| ins.fail(e))?;
        }
        drop(root);
        drop(copy.mounts.take());
        self.pack(&upper, dir.path())
    }
    // ANCHOR_END: copy

    fn copy_one(&self, copy: &Copy, root: &File, source: &str, scratch: &Path) -> Result<()> {
        let all = |_: &Path, _: bool| true;
        let file = self.source(copy, source)?;
        let meta = file.metadata().context(|| source.to_string())?;
        if meta.is_dir() {
            let into = context::make_dirs(root, &copy.dest)?;
            return context::copy(&file, into.as_fd(), ".", copy.owner, &all);
        }
        if copy.unpack && meta.is_file() && is_tar(&file)? {
            // ADD's local archives: unpacked by chapter 04 (which refuses `..` and
            // links out) into scratch, then copied in like a directory.
            let out = scratch.join("unpacked");
            ch04_overlayfs::unpack::unpack(&crate::layers::fd_path(&file), &out, false)?;
            let into = context::make_dirs(root, &copy.dest)?;
            let unpacked = File::open(&out).context(|| out.display().to_string())?;
            let owner = Owner {
                ids: None,
                ..copy.owner
            };
            context::copy(&unpacked, into.as_fd(), ".", owner, &all)?;
            return std::fs::remove_dir_all(&out).context(|| out.display().to_string());
        }
        copy_file(copy, root, &file, &file_name(Path::new(source)))
    }

    /// A writable layer, packed by chapter 04 and stored: the new layer's id.
    pub(super) fn pack(&self, upper: &Path, scratch: &Path) -> Result<String> {
        let tar = scratch.join("layer.tar");
        let packed = ch04_overlayfs::pack::pack(upper, &tar)?;
        add_layer(self.store, &tar, Some(&packed.digest))
    }

    /// ADD URL: the URL's file, downloaded into the build's scratch directory, when
    /// `--allow-add-url` says so. Its name is the URL's last part.
    fn download(&self, ins: &Instruction, url: &str) -> Result<(String, File)> {
        if !self.args.allow_add_url {
            return Err(ins.fail(format!(
                "{url}: mini-docker downloads nothing during a build unless told: pass \
                 --allow-add-url, or fetch it first (curl -LO) and COPY it"
            )));
        }
        let name = url.split(['?', '#']).next().unwrap_or(url);
        let name = name
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("index.html");
        let mut file = tempfile::tempfile_in(self.scratch.path()).context(|| "scratch".into())?;
        crate::registry::fetch_url(url, &mut file).map_err(|e| ins.fail(e))?;
        // Docker's mode for a downloaded file.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .context(|| name.to_string())?;
        Ok((name.to_string(), file))
    }
}

/// One file (or symlink) to DEST: into it when it is a directory (or ends in `/`),
/// else as it.
fn copy_file(copy: &Copy, root: &File, file: &File, name: &str) -> Result<()> {
    let dest_is_dir = copy.into_dir
        || context::open_in(root.as_fd(), &copy.dest, true, &copy.dest)
            .is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_dir()));
    let (dir, name) = match dest_is_dir {
        true => (copy.dest.clone(), name.to_string()),
        false => {
            let dest = Path::new(&copy.dest);
            let parent = dest
                .parent()
                .map_or("/".into(), |p| p.display().to_string());
            (parent, file_name(dest))
        }
    };
    let into = context::make_dirs(root, &dir)?;
    context::copy(file, into.as_fd(), &name, copy.owner, &|_, _| true)
}

/// A tar archive (plain or gzip): `ustar` at byte 257 of what it holds.
fn is_tar(file: &File) -> Result<bool> {
    let path = crate::layers::fd_path(file);
    let mut head = [0u8; 512];
    let mut reader = ch04_overlayfs::unpack::decompressed(&path)?;
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    Ok(got >= 262 && &head[257..262] == b"ustar")
}

/// Everything under the source `file`, fed to the hash in a fixed order.
fn hash_tree(hash: &mut Sha256, file: &File, rel: &Path) -> Result<()> {
    let meta = file.metadata().context(|| rel.display().to_string())?;
    let kind = meta.file_type();
    hash.update(
        format!(
            "{}\0{:o}\0{}\0",
            rel.display(),
            meta.permissions().mode(),
            meta.size()
        )
        .as_bytes(),
    );
    if kind.is_symlink() {
        hash.update(ch04_overlayfs::tree::link_target(file)?.as_encoded_bytes());
    } else if kind.is_file() {
        let mut reader = ch04_overlayfs::tree::reopen(file)?;
        std::io::copy(&mut reader, hash).context(|| rel.display().to_string())?;
    } else if kind.is_dir() {
        let dir = ch04_overlayfs::tree::reopen(file)?;
        for (name, entry) in ch04_overlayfs::tree::entries(dir.as_fd())? {
            hash_tree(hash, &entry, &rel.join(name))?;
        }
    }
    Ok(())
}

/// The paths under `root` a pattern such as `src/*.rs` names, part by part.
fn glob_paths(root: &File, pattern: &str) -> Result<Vec<String>> {
    let mut found = vec![(String::new(), root.try_clone().context(|| "root".into())?)];
    for part in pattern.split('/') {
        let mut next = vec![];
        for (path, dir) in &found {
            if !dir.metadata().is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let dir = ch04_overlayfs::tree::reopen(dir)?;
            for (name, entry) in ch04_overlayfs::tree::entries(dir.as_fd())? {
                let name = name.to_string_lossy();
                if context::glob(part, &name) {
                    let path = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}/{name}")
                    };
                    next.push((path, entry));
                }
            }
        }
        found = next;
    }
    Ok(found.into_iter().map(|(p, _)| p).collect())
}
