//! `build`: a Dockerfile, step by step, as the classic `docker build` runs it.
//!
//! Each step makes an image, child of the one before (its `parent`): `RUN` runs a
//! container on the previous image and its writable layer becomes the new layer
//! (what `commit` does); `COPY` and `ADD` copy files into a writable layer over the
//! previous image's; the other instructions change only the config. The cache is
//! the images themselves: a step whose parent already has a child made by the same
//! instruction (and, for `COPY`, the same files) is that child.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;
use labkit::failure::Context;
use labkit::{Failure, Result};
use sha2::{Digest, Sha256};

use crate::context::{self, Ignore, Owner};
use crate::dockerfile::{self, Args, Dockerfile, Instruction};
use crate::image::{self, History, Image, ImageConfig};
use crate::store::{Store, now, rfc3339};

pub(crate) mod config;
mod copy;
mod run;

use copy::Copy;
use run::Progress;

/// moby's limit: more layers than this and a build fails with "max depth exceeded".
pub const MAX_LAYERS: usize = 125;

/// `build`'s flags: Docker's names and meanings.
#[derive(ClapArgs, Debug, Clone)]
pub struct BuildArgs {
    /// Name the image NAME[:TAG]; repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A value for an ARG: KEY=VALUE, or KEY to pass ours on; repeatable.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build up to this stage (by its `AS` name) and stop.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step, cached or not.
    #[arg(long)]
    pub no_cache: bool,
    /// plain (every line of every step), tty (a line per step), or auto.
    #[arg(long, value_name = "TYPE", default_value = "auto")]
    pub progress: String,
    /// Print only the image's id.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Let ADD download the URLs a Dockerfile names (mini-docker downloads nothing
    /// during a build unless told).
    #[arg(long)]
    pub allow_add_url: bool,
    /// The network of RUN's containers: bridge (default), none, host.
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    pub network: String,
    /// The directory whose files COPY and ADD can take.
    pub context: PathBuf,
}

/// What a stage is: `FROM` (with its `AS` name) and the instructions after it.
#[derive(Debug)]
struct Stage {
    name: String,
    from: Instruction,
    body: Vec<Instruction>,
}

/// A stage as it goes: its image so far, the ARGs it declared, where it is.
struct State {
    image: Image,
    args: Vec<(String, Option<String>)>,
    /// `CMD` was set in this stage (an `ENTRYPOINT` clears only an inherited one).
    cmd_set: bool,
    label: String,
    step: usize,
    steps: usize,
}

/// What a step does, once planned (and before the cache is asked).
enum Action {
    Config(ImageConfig),
    Run {
        cmd: Vec<String>,
        env: Vec<String>,
        network: String,
    },
    Copy(Box<Copy>),
}

// ANCHOR: build
/// Build the Dockerfile; returns the image. The context is copied once into the
/// build's scratch directory (without what `.dockerignore` names), then each
/// stage the target needs runs, step by step.
pub fn build(store: &Store, args: &BuildArgs) -> Result<Image> {
    for tag in &args.tags {
        crate::reference::Reference::parse(tag)
            .map_err(|e| Failure::new(format!("invalid tag {tag:?}: {e}")))?;
    }
    let mut build = Build::prepare(store, args)?;
    let stages = stages(&build.file)?;
    let target = match &args.target {
        Some(t) => (stages.iter().position(|s| s.name == t.to_lowercase()))
            .ok_or_else(|| Failure::new(format!("target stage \"{t}\" could not be found")))?,
        None => stages.len() - 1,
    };
    let needed = needed(&stages, target)?;
    let mut built: Vec<Option<Image>> = vec![None; stages.len()];
    for (i, stage) in stages
        .iter()
        .enumerate()
        .filter(|(i, _)| needed.contains(i))
    {
        let label = match (stages.len(), stage.name.as_str()) {
            (1, _) => String::new(),
            (_, "") => format!("stage-{i} "),
            (_, name) => format!("{name} "),
        };
        built[i] = Some(build.stage(stage, &stages, &built, label)?);
    }
    let image = built[target].take().expect("the target stage was built");
    build.finish(image)
}
// ANCHOR_END: build

/// Split at each `FROM`; the `ARG`s before the first are the build's own.
fn stages(file: &Dockerfile) -> Result<Vec<Stage>> {
    let mut stages: Vec<Stage> = vec![];
    for ins in &file.instructions {
        if ins.keyword == "FROM" {
            let words: Vec<String> = match &ins.args {
                Args::Shell(text) => text.split_whitespace().map(String::from).collect(),
                Args::Exec(list) => list.clone(),
            };
            let name = match &words[..] {
                [_] => String::new(),
                [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => name.to_lowercase(),
                _ => return Err(ins.fail("use FROM IMAGE [AS NAME]")),
            };
            if !name.is_empty() && stages.iter().any(|s| s.name == name) {
                return Err(ins.fail(format!("duplicate stage name {name:?}")));
            }
            stages.push(Stage {
                name,
                from: ins.clone(),
                body: vec![],
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(ins.clone());
        } else if ins.keyword != "ARG" {
            return Err(ins.fail("the first instruction must be FROM (ARG may come before it)"));
        }
    }
    match stages.is_empty() {
        true => Err(Failure::new(
            "Dockerfile: no FROM: there is nothing to build on",
        )),
        false => Ok(stages),
    }
}

/// The stage a `FROM` or a `COPY --from` names, by name or number, before `before`.
fn stage_named(stages: &[Stage], name: &str, before: usize) -> Option<usize> {
    let name = name.to_lowercase();
    match name.parse::<usize>() {
        Ok(n) if n < before => Some(n),
        Ok(_) => None,
        Err(_) => stages[..before].iter().position(|s| s.name == name),
    }
}

/// The target and every stage it takes from, the others skipped.
fn needed(stages: &[Stage], target: usize) -> Result<BTreeSet<usize>> {
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        let from = stages[i].from.args.clone();
        let base = match from {
            Args::Shell(t) => t.split_whitespace().next().unwrap_or_default().to_string(),
            Args::Exec(l) => l.first().cloned().unwrap_or_default(),
        };
        let copies = stages[i].body.iter().filter_map(|ins| ins.flag("from"));
        for name in std::iter::once(base.as_str()).chain(copies) {
            if let Some(j) = stage_named(stages, name, i) {
                todo.push(j);
            }
        }
    }
    Ok(needed)
}

/// One build: its Dockerfile, its context (copied), its flags and its output.
struct Build<'a> {
    store: &'a Store,
    args: &'a BuildArgs,
    file: Dockerfile,
    build_args: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
    /// The store's images, read once: the cache is looked up in them, and each step's
    /// new image joins them.
    images: RefCell<Vec<Image>>,
    /// The ARGs before the first FROM, with their values.
    meta: Vec<(String, Option<String>)>,
    context: File,
    ignore: Ignore,
    scratch: tempfile::TempDir,
    out: Progress,
    epoch: Option<u64>,
}

impl<'a> Build<'a> {
    fn prepare(store: &'a Store, args: &'a BuildArgs) -> Result<Build<'a>> {
        if !args.context.is_dir() {
            return Err(Failure::new(format!(
                "unable to prepare context: path {:?} not found",
                args.context.display().to_string()
            )));
        }
        let mut out = Progress::new(&args.progress, args.quiet)?;
        let path = args.file.clone().unwrap_or(args.context.join("Dockerfile"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::new(format!(
                "failed to read dockerfile {}: {}",
                path.display(),
                labkit::failure::describe_io(&e)
            ))
        })?;
        out.begin(&format!(
            "[internal] load build definition from {}",
            file_name(&path)
        ));
        out.note(&format!("transferring dockerfile: {}B done", text.len()));
        out.done();
        let file = dockerfile::parse(&text)?;
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(v.trim().parse().map_err(|_| {
                Failure::new(format!("SOURCE_DATE_EPOCH={v:?}: use seconds since 1970"))
            })?),
            Err(_) => None,
        };
        let build_args = build_args(&args.build_args)?;
        let scratch = store.scratch(".build-")?;
        let ignore = Ignore::parse(
            &std::fs::read_to_string(args.context.join(".dockerignore")).unwrap_or_default(),
        );
        out.begin("[internal] load build context");
        let context = send_context(&args.context, &ignore, scratch.path())?;
        let bytes = crate::show::bytes_in(&scratch.path().join("context"));
        out.note(&format!(
            "transferring context: {} done",
            crate::pull::human(bytes)
        ));
        out.done();
        let mut build = Build {
            store,
            args,
            file,
            build_args,
            used: RefCell::default(),
            images: RefCell::new(image::list(store)),
            meta: vec![],
            context,
            ignore,
            scratch,
            out,
            epoch,
        };
        build.meta = build.meta_args()?;
        Ok(build)
    }

    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and by `ARG NAME`
    /// (no default) inside a stage.
    fn meta_args(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut meta = vec![];
        for ins in self
            .file
            .instructions
            .iter()
            .take_while(|i| i.keyword != "FROM")
        {
            self.declare(&mut meta, ins, &[])?;
        }
        Ok(meta)
    }

    /// `ARG NAME[=default]...`: its value is the `--build-arg`, else the default.
    fn declare(
        &self,
        scope: &mut Vec<(String, Option<String>)>,
        ins: &Instruction,
        outer: &[(String, Option<String>)],
    ) -> Result<()> {
        let text = shell_text(ins)?;
        let lookup = |name: &str| value_of(scope, name);
        for word in dockerfile::words(&text, self.file.escape, &lookup) {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word.clone(), None),
            };
            let inherited = || {
                outer
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.clone())
            };
            let value = match self.build_args.get(&name) {
                Some(v) => {
                    self.used.borrow_mut().insert(name.clone());
                    Some(v.clone())
                }
                None => default.or_else(inherited),
            };
            scope.retain(|(n, _)| *n != name);
            scope.push((name, value));
        }
        Ok(())
    }
}

fn value_of(scope: &[(String, Option<String>)], name: &str) -> Option<String> {
    scope
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The text of a shell-form instruction (refused in exec form).
fn shell_text(ins: &Instruction) -> Result<String> {
    match &ins.args {
        Args::Shell(text) => Ok(text.clone()),
        Args::Exec(_) => Err(ins.fail("takes no JSON form")),
    }
}

/// `--build-arg K=V`, or `K` for our own value of K.
fn build_args(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for flag in flags {
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (flag.clone(), std::env::var(flag).ok()),
        };
        if key.is_empty() {
            return Err(Failure::new(format!("--build-arg {flag:?}: use KEY=VALUE")));
        }
        if let Some(value) = value {
            args.insert(key, value);
        }
    }
    Ok(args)
}

// ANCHOR: send_context
/// The context, "sent" once: copied by descriptors into `scratch/context`, without
/// what `.dockerignore` leaves out (a directory it leaves out is still walked when
/// a `!` exception may bring something back). Symlinks are copied as symlinks;
/// `COPY` refuses to follow one out of the copy. Returns the copy, open.
fn send_context(dir: &Path, ignore: &Ignore, scratch: &Path) -> Result<File> {
    let source = File::open(dir).context(|| dir.display().to_string())?;
    let into = File::open(scratch).context(|| scratch.display().to_string())?;
    let keep = |rel: &Path, is_dir: bool| {
        let rel = rel.to_string_lossy();
        !ignore.ignores(&rel) || (is_dir && ignore.has_exceptions())
    };
    let owner = Owner::default();
    context::copy(&source, into.as_fd(), "context", owner, &keep)?;
    let copy = scratch.join("context");
    File::open(&copy).context(|| copy.display().to_string())
}
// ANCHOR_END: send_context

impl Build<'_> {
    // ANCHOR: stage
    /// One stage: its base, then each instruction, as a step that makes an image.
    fn stage(
        &mut self,
        stage: &Stage,
        stages: &[Stage],
        built: &[Option<Image>],
        label: String,
    ) -> Result<Image> {
        let steps = 1 + stage.body.iter().filter(|i| i.keyword != "ARG").count();
        let mut state = State {
            image: Image::default(),
            args: vec![],
            cmd_set: false,
            label,
            step: 1,
            steps,
        };
        let base = self.from(stage, stages, built, &state)?;
        state.image = base;
        for ins in &stage.body {
            match ins.keyword.as_str() {
                "ARG" => self.declare(&mut state.args, ins, &self.meta.clone())?,
                _ => {
                    state.step += 1;
                    if let Err(failure) = self.step(&mut state, ins, stages, built) {
                        self.out.failed();
                        return Err(failure);
                    }
                }
            }
        }
        Ok(state.image)
    }
    // ANCHOR_END: stage

    /// `FROM IMAGE|STAGE|scratch [AS NAME]`, with the build's ARGs expanded.
    fn from(
        &mut self,
        stage: &Stage,
        stages: &[Stage],
        built: &[Option<Image>],
        state: &State,
    ) -> Result<Image> {
        let ins = &stage.from;
        let lookup = |name: &str| value_of(&self.meta, name);
        let text = shell_text(ins)?;
        let words = dockerfile::words(&text, self.file.escape, &lookup);
        let name = words.first().cloned().unwrap_or_default();
        let index = stages
            .iter()
            .position(|s| std::ptr::eq(s, stage))
            .unwrap_or(0);
        let title = format!("[{}1/{}] FROM {name}", state.label, state.steps);
        self.out.begin(&title);
        let image = if name == "scratch" {
            Image::default()
        } else if let Some(j) = stage_named(stages, &name, index) {
            built[j]
                .clone()
                .ok_or_else(|| ins.fail("that stage was not built"))?
        } else if let Some(found) = image::find_in(&self.images.borrow(), &name) {
            found
        } else {
            image::resolve(self.store, &name, ins.flag("platform")).map_err(|e| ins.fail(e))?
        };
        if image.layers.len() > MAX_LAYERS {
            return Err(too_deep(ins, image.layers.len()));
        }
        self.out.done();
        Ok(image)
    }

    // ANCHOR: step
    /// One step: planned (its `created_by` line, and what it will do), then taken
    /// from the cache when the image on which it runs has a child made by that same
    /// line, else done, and made an image.
    fn step(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        stages: &[Stage],
        built: &[Option<Image>],
    ) -> Result<()> {
        let title = format!(
            "[{}{}/{}] {}",
            state.label, state.step, state.steps, ins.text
        );
        self.out.begin(&title);
        let (created_by, action) = self.plan(state, ins, stages, built)?;
        let makes_layer = !matches!(action, Action::Config(_));
        if makes_layer && state.image.layers.len() >= MAX_LAYERS {
            return Err(too_deep(ins, state.image.layers.len() + 1));
        }
        if !self.args.no_cache
            && let Some(hit) = self.cached(&state.image, &created_by)
        {
            self.out.cached();
            state.image = hit;
            return Ok(());
        }
        let (config, layer) = match action {
            Action::Config(config) => (config, None),
            Action::Run { cmd, env, network } => {
                let layer = self.run(&state.image, ins, &cmd, &env, &network)?;
                (state.image.config.clone(), Some(layer))
            }
            Action::Copy(copy) => {
                let layer = self.copy(&state.image, ins, *copy)?;
                (state.image.config.clone(), Some(layer))
            }
        };
        state.image = self.derive(&state.image, config, created_by, layer)?;
        self.out.done();
        Ok(())
    }
    // ANCHOR_END: step

    // ANCHOR: cached
    /// The child of `parent` made by `created_by`, with its layers still stored.
    fn cached(&self, parent: &Image, created_by: &str) -> Option<Image> {
        // ANCHOR: hole_cached
        let images = self.images.borrow();
        let images = images.iter();
        images
            .filter(|i| i.parent.as_deref() == Some(parent.id.as_str()))
            .find(|i| {
                i.history.last().is_some_and(|h| h.created_by == created_by)
                    && i.layers.iter().all(|l| self.store.layer(l).is_dir())
            })
            .cloned()
        // ANCHOR_END: hole_cached
    }
    // ANCHOR_END: cached

    // ANCHOR: derive
    /// The image one step after `parent`. Its id is the digest of what it is (layers,
    /// config, history, time, parent): with SOURCE_DATE_EPOCH as its time, the same
    /// steps on the same parent make the same id.
    fn derive(
        &self,
        parent: &Image,
        config: ImageConfig,
        created_by: String,
        layer: Option<String>,
    ) -> Result<Image> {
        let mut image = parent.clone();
        image.history.push(History {
            created_by,
            empty_layer: layer.is_none(),
        });
        image.layers.extend(layer);
        image.config = config;
        image.created = match self.epoch {
            Some(s) => rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)),
            None => now(),
        };
        image.parent = Some(parent.id.clone());
        (image.id, image.tags, image.repo_digests, image.manifest) =
            (String::new(), vec![], vec![], None);
        let bytes = serde_json::to_vec(&image).map_err(|e| Failure::new(e.to_string()))?;
        image.id = format!("{:x}", Sha256::digest(&bytes));
        if let Some(same) = self.images.borrow().iter().find(|i| i.id == image.id) {
            return Ok(same.clone());
        }
        image.save(self.store)?;
        self.images.borrow_mut().push(image.clone());
        Ok(image)
    }
    // ANCHOR_END: derive

    /// The variables a step sees: the image's ENV first, then the ARGs in scope.
    fn lookup<'s>(&self, state: &'s State) -> impl Fn(&str) -> Option<String> + 's {
        move |name: &str| {
            let env = state.image.config.env.iter().find_map(|e| {
                e.split_once('=')
                    .filter(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            });
            env.or_else(|| value_of(&state.args, name))
        }
    }

    /// The instruction's words, variables expanded (exec form: each element).
    fn words(&self, state: &State, ins: &Instruction) -> Vec<String> {
        let lookup = self.lookup(state);
        match &ins.args {
            Args::Shell(text) => dockerfile::words(text, self.file.escape, &lookup),
            Args::Exec(list) => list
                .iter()
                .map(|w| dockerfile::expand(w, self.file.escape, &lookup))
                .collect(),
        }
    }

    /// The image, named; the build-args nobody used, said.
    fn finish(&mut self, image: Image) -> Result<Image> {
        let unused: Vec<&String> = (self.build_args.keys())
            .filter(|k| !self.used.borrow().contains(*k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "[Warning] One or more build-args [{}] were not consumed",
                names.join(" ")
            );
        }
        self.out.begin("exporting to image");
        self.out
            .note(&format!("writing image sha256:{} done", image.id));
        let mut image = image;
        for tag in &self.args.tags {
            crate::layers::tag(self.store, &mut image, tag)?;
            let name = crate::reference::Reference::parse(tag)?.canonical();
            self.out.note(&format!("naming to {name} done"));
        }
        self.out.done();
        if self.args.quiet {
            println!("sha256:{}", image.id);
        }
        Ok(image)
    }
}

/// "max depth exceeded", said before overlayfs would fail, with what to do.
fn too_deep(ins: &Instruction, layers: usize) -> Failure {
    ins.fail(format!(
        "max depth exceeded: this step would make layer {layers}, and an image has at most \
         {MAX_LAYERS} (moby's limit). Join RUN lines with &&, COPY whole directories, or \
         copy what you need into a small final stage (multi-stage)"
    ))
}

/// `/a/./b/../c` as `/a/c`.
fn clean(path: &Path) -> String {
    let mut parts: Vec<String> = vec![];
    for part in path.components() {
        match part {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}
