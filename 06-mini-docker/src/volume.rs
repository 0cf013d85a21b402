//! Volumes: directories of mini-docker's own, `volumes/NAME/_data` in the store,
//! bound into containers as `-v HOST:PATH` binds a host directory. A volume outlives
//! the containers that use it; that is all that makes it a volume. Docker's `local`
//! driver keeps them the same way, under `/var/lib/docker/volumes/NAME/_data`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use labkit::failure::{Context, EXIT_FAILURE};
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::container::{self, MountSpec};
use crate::store::{Store, lock, new_id, now, read_json, write_json};

/// The label Docker puts on a volume made for one container (`-v /path`, an image's
/// `VOLUME`): `rm -v` and `--rm` remove those, `volume prune` takes them by default.
pub const ANONYMOUS: &str = "com.docker.volume.anonymous";

/// A volume, as `docker volume inspect` shows it (its fields in Docker's order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS))
    }
}

fn dir(store: &Store, name: &str) -> PathBuf {
    store.root.join("volumes").join(name)
}

/// Where a volume's files are: the source of its bind mounts.
pub fn data(store: &Store, name: &str) -> PathBuf {
    dir(store, name).join("_data")
}

/// Docker's rule for volume names: a name, two characters at least.
pub fn check_name(name: &str) -> Result<()> {
    if !container::is_name(name) {
        return Err(Failure::new(format!(
            "{name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )));
    }
    if name.len() < 2 {
        return Err(Failure::new(format!(
            "volume name is too short, names should be at least two alphanumeric \
             characters: {name}"
        )));
    }
    Ok(())
}

// ANCHOR: create
/// `volume create`, and `-v NAME:/path` for a name not made yet: a directory. An
/// existing volume is returned as it is (Docker's `create` is idempotent). Made
/// aside and renamed into place, so that two creates at once make one volume.
pub fn create(store: &Store, name: Option<&str>, labels: &[String]) -> Result<Volume> {
    let (name, mut labels) = match name {
        Some(name) => (name.to_string(), container::labels(labels)?),
        None => (
            new_id()?,
            BTreeMap::from([(ANONYMOUS.into(), String::new())]),
        ),
    };
    check_name(&name)?;
    if let Ok(volume) = find(store, &name) {
        return Ok(volume);
    }
    let volumes = store.root.join("volumes");
    std::fs::create_dir_all(&volumes).context(|| volumes.display().to_string())?;
    let aside = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(&volumes)
        .context(|| volumes.display().to_string())?;
    std::fs::create_dir(aside.path().join("_data")).context(|| "_data".into())?;
    let volume = Volume {
        created_at: now(),
        driver: "local".into(),
        labels: (!labels.is_empty()).then(|| std::mem::take(&mut labels)),
        mountpoint: data(store, &name).display().to_string(),
        name: name.clone(),
        options: None,
        scope: "local".into(),
    };
    write_json(&aside.path().join("volume.json"), &volume)?;
    // rename(2) of a directory onto a non-empty one fails: the first one made wins.
    match std::fs::rename(aside.path(), dir(store, &name)) {
        Ok(()) => {
            let _ = aside.keep();
            Ok(volume)
        }
        Err(_) => find(store, &name),
    }
}
// ANCHOR_END: create

/// The volume `name`; "No such volume" (exit 1) when there is none.
pub fn find(store: &Store, name: &str) -> Result<Volume> {
    let missing = || Failure::new(format!("No such volume: {name}")).exit_code(EXIT_FAILURE);
    if !container::is_name(name) {
        return Err(missing());
    }
    read_json(&dir(store, name).join("volume.json")).map_err(|_| missing())
}

/// Every volume, by name.
pub fn list(store: &Store) -> Vec<Volume> {
    (store.ids("volumes").iter())
        .filter_map(|name| find(store, name).ok())
        .collect()
}

/// The containers (any state: Docker's rule) whose config names the volume.
pub fn users(store: &Store, name: &str) -> Vec<String> {
    (container::list(store).into_iter())
        .filter(|c| {
            c.config()
                .is_ok_and(|config| config.mounts.iter().any(|m| m.volume() == Some(name)))
        })
        .map(|c| c.id)
        .collect()
}

// ANCHOR: remove
/// `volume rm`: refused while a container uses it, running or not. `force` only
/// makes a missing volume no error (as Docker's `-f`).
pub fn remove(store: &Store, name: &str, force: bool) -> Result<()> {
    let _locked = lock(&store.root)?;
    remove_unlocked(store, name, force)
}

fn remove_unlocked(store: &Store, name: &str, force: bool) -> Result<()> {
    let volume = match find(store, name) {
        Err(_) if force => return Ok(()),
        found => found?,
    };
    let users = users(store, &volume.name);
    if !users.is_empty() {
        return Err(Failure::new(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        ))
        .exit_code(EXIT_FAILURE));
    }
    let path = dir(store, &volume.name);
    std::fs::remove_dir_all(&path).context(|| path.display().to_string())
}
// ANCHOR_END: remove

/// `volume prune`: the volumes no container uses, anonymous ones only unless `all`
/// (Docker's rule since 23.0); their names and the bytes freed.
pub fn prune(store: &Store, all: bool) -> Result<(Vec<String>, u64)> {
    let _locked = lock(&store.root)?;
    let mut gone = (vec![], 0);
    for volume in list(store) {
        if (all || volume.is_anonymous()) && users(store, &volume.name).is_empty() {
            let path = dir(store, &volume.name);
            gone.1 += crate::show::bytes_in(&path);
            std::fs::remove_dir_all(&path).context(|| path.display().to_string())?;
            gone.0.push(volume.name);
        }
    }
    Ok(gone)
}

/// `rm -v` and `--rm`: the container's anonymous volumes go with it, unless another
/// container uses one too (`--volumes-from`). Named volumes stay.
pub fn remove_anonymous(store: &Store, mounts: &[MountSpec]) {
    if let Ok(_locked) = lock(&store.root) {
        remove_anonymous_unlocked(store, mounts);
    }
}

/// The same, for a caller that holds the store's lock.
pub fn remove_anonymous_unlocked(store: &Store, mounts: &[MountSpec]) {
    for name in mounts.iter().filter_map(MountSpec::volume) {
        if find(store, name).is_ok_and(|v| v.is_anonymous()) {
            let _ = remove_unlocked(store, name, true);
        }
    }
}

// ANCHOR: copy_up
/// Docker's copy-up: a volume that is empty when its container starts gets what
/// the image has at that path (files, owners, modes), so that a database's volume
/// starts with the image's initial files. `root` is the container's root, open;
/// the path is resolved inside it, symlinks and all, never on the host.
pub fn copy_up(root: &File, mounts: &[MountSpec]) -> Result<()> {
    for mount in mounts
        .iter()
        .filter(|m| m.volume().is_some() && m.copy_up())
    {
        let data = Path::new(&mount.source);
        let empty = std::fs::read_dir(data).context(|| mount.source.clone())?;
        if empty.count() > 0 {
            continue;
        }
        // ANCHOR: hole_copy_up
        let what = format!("copy-up of {}", mount.destination);
        let Ok(image) = crate::context::open_in(root.as_fd(), &mount.destination, true, &what)
        else {
            continue; // nothing there in the image: the volume starts empty
        };
        let meta = image.metadata().context(|| what.clone())?;
        if !meta.is_dir() {
            continue;
        }
        let volume = File::open(data).context(|| mount.source.clone())?;
        let all = |_: &Path, _: bool| true;
        crate::context::copy(&image, volume.as_fd(), ".", Default::default(), &all)?;
        // The volume's root takes the directory's owner and mode too.
        std::os::unix::fs::fchown(&volume, Some(meta.uid()), Some(meta.gid()))
            .context(|| what.clone())?;
        let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        volume.set_permissions(mode).context(|| what)?;
        // ANCHOR_END: hole_copy_up
    }
    Ok(())
}
// ANCHOR_END: copy_up

/// `volume ...`: Docker's verbs for volumes.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a volume (a name of 64 random hex digits unless given); print its name.
    Create {
        #[arg(value_name = "NAME")]
        given: Option<String>,
        /// The name, as a flag.
        #[arg(long, conflicts_with = "given")]
        name: Option<String>,
        /// Set a label: KEY=VALUE; repeatable.
        #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Only `local`: a directory in mini-docker's store.
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
    },
    /// List volumes.
    Ls {
        /// Only the names.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// dangling=true|false, name=PART, label=KEY[=VALUE]; repeatable.
        #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
    },
    /// Everything about volumes, as JSON.
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one, running or not).
    Rm {
        /// A missing volume is no error.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove the anonymous volumes no container uses (-a: every unused volume).
    Prune {
        /// Named volumes too.
        #[arg(short = 'a', long)]
        all: bool,
        /// Accepted, as Docker's: mini-docker does not ask.
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// Run one `volume` verb; its exit code.
pub fn command(store: &Store, command: Command) -> Result<i32> {
    match command {
        Command::Create {
            given,
            name,
            labels,
            driver,
        } => {
            if driver != "local" {
                return Err(Failure::new(format!(
                    "create: driver {driver:?} not found: mini-docker has `local` only"
                )));
            }
            let made = {
                let _locked = lock(&store.root)?;
                let name = given.or(name);
                create(store, name.as_deref(), &labels)?
            };
            println!("{}", made.name);
            Ok(0)
        }
        Command::Ls { quiet, filter } => {
            print!("{}", ls(store, quiet, &filter)?);
            Ok(0)
        }
        Command::Inspect { volumes } => {
            let found: Vec<Volume> = volumes.iter().filter_map(|n| find(store, n).ok()).collect();
            let text = serde_json::to_string_pretty(&found).unwrap_or_default();
            println!("{text}");
            let missing: Vec<&String> = (volumes.iter())
                .filter(|n| !found.iter().any(|v| &v.name == *n))
                .collect();
            for name in &missing {
                eprintln!("Error response from mini-docker: No such volume: {name}");
            }
            Ok(i32::from(!missing.is_empty()))
        }
        Command::Rm { force, volumes } => {
            let mut failed = false;
            for name in volumes {
                match remove(store, &name, force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error response from mini-docker: {e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        Command::Prune { all, force: _ } => {
            let (names, bytes) = prune(store, all)?;
            let names: String = names.iter().map(|n| format!("{n}\n")).collect();
            let bytes = crate::pull::human(bytes);
            print!("Deleted Volumes:\n{names}\nTotal reclaimed space: {bytes}\n");
            Ok(0)
        }
    }
}

/// `volume ls -f`: what a volume must be to be listed.
#[derive(Debug, Default)]
struct Filter {
    dangling: Option<bool>,
    names: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

impl Filter {
    fn parse(flags: &[String]) -> Result<Filter> {
        let mut filter = Filter::default();
        for flag in flags {
            let bad = || {
                Failure::new(format!(
                    "invalid filter {flag:?}: use dangling=true|false, name=PART or label=KEY[=VALUE]"
                ))
            };
            match flag.split_once('=').ok_or_else(bad)? {
                ("dangling", "true" | "1") => filter.dangling = Some(true),
                ("dangling", "false" | "0") => filter.dangling = Some(false),
                ("name", part) => filter.names.push(part.into()),
                ("label", label) => filter.labels.push(match label.split_once('=') {
                    Some((k, v)) => (k.into(), Some(v.into())),
                    None => (label.into(), None),
                }),
                _ => return Err(bad()),
            }
        }
        Ok(filter)
    }

    fn keeps(&self, store: &Store, volume: &Volume) -> bool {
        let labels = volume.labels.clone().unwrap_or_default();
        self.names.iter().all(|n| volume.name.contains(n))
            && (self.labels.iter()).all(|(k, v)| {
                labels
                    .get(k)
                    .is_some_and(|l| v.as_ref().is_none_or(|v| v == l))
            })
            && (self.dangling).is_none_or(|d| d == users(store, &volume.name).is_empty())
    }
}

/// `volume ls`, as Docker prints it.
fn ls(store: &Store, quiet: bool, filters: &[String]) -> Result<String> {
    let filter = Filter::parse(filters)?;
    let shown: Vec<Volume> = (list(store).into_iter())
        .filter(|v| filter.keeps(store, v))
        .collect();
    if quiet {
        return Ok(shown.iter().map(|v| format!("{}\n", v.name)).collect());
    }
    let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
    rows.extend(shown.into_iter().map(|v| vec![v.driver, v.name]));
    Ok(crate::show::table(&rows))
}
