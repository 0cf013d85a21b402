//! `-v`, `--mount`, `--volumes-from` and an image's `VOLUME`s, read as Docker reads
//! them and turned into the container's list of mounts. Each is a bind mount in
//! the end (chapter 02's `Bind`), of a host path or of a volume's directory, or a
//! tmpfs; the volumes themselves are made by `create`, under the store's lock.

use std::path::{Component, Path, PathBuf};

use labkit::{Failure, Result};

use crate::container::{self, MountSpec};
use crate::store::Store;
use crate::volume;

/// The flags that make mounts.
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    pub volume: &'a [String],
    pub mount: &'a [String],
    pub volumes_from: &'a [String],
}

// ANCHOR: all
/// Every mount of a new container, in Docker's order of precedence: what
/// `--volumes-from` copies and the image's `VOLUME`s give way to `-v` and `--mount`
/// at the same path; two of those at one path are refused.
pub fn all(store: &Store, flags: Flags, image_volumes: &[&String]) -> Result<Vec<MountSpec>> {
    let mut given: Vec<MountSpec> = vec![];
    let parsed = (flags.volume.iter().map(|v| volume_flag(v)))
        .chain(flags.mount.iter().map(|m| mount_flag(m)));
    for mount in parsed {
        let mount = mount?;
        if given.iter().any(|m| m.destination == mount.destination) {
            return Err(Failure::new(format!(
                "Duplicate mount point: {}",
                mount.destination
            )));
        }
        given.push(mount);
    }
    let mut mounts = vec![];
    for from in flags.volumes_from {
        mounts.extend(volumes_from(store, from)?);
    }
    for path in image_volumes {
        // An image's VOLUME: an anonymous volume, made at create.
        mounts.push(volume_mount("", &clean(path, "VOLUME")?, ""));
    }
    mounts.retain(|m| !given.iter().any(|g| g.destination == m.destination));
    let mut seen = std::collections::HashSet::new();
    mounts.retain(|m| seen.insert(m.destination.clone()));
    mounts.extend(given);
    Ok(mounts)
}
// ANCHOR_END: all

fn volume_mount(name: &str, destination: &str, mode: &str) -> MountSpec {
    MountSpec {
        r#type: "volume".into(),
        name: name.into(),
        source: String::new(), // the volume's directory, known once it is made
        destination: destination.into(),
        mode: mode.into(),
        rw: !mode.split(',').any(|o| o == "ro"),
        tmpfs_options: vec![],
    }
}

/// A path in the container: absolute, not `/`, `..` and `.` and doubled slashes
/// taken out.
fn clean(path: &str, what: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(Failure::new(format!(
            "{what}: invalid mount path: '{path}' mount path must be absolute"
        )));
    }
    let mut clean = PathBuf::from("/");
    for part in Path::new(path).components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    if clean == Path::new("/") {
        return Err(Failure::new(format!(
            "{what}: invalid specification: destination can't be '/'"
        )));
    }
    Ok(clean.to_string_lossy().into_owned())
}

// ANCHOR: volume_flag
/// `-v`: `/HOST:/PATH[:MODE]` binds a host path (made as a directory when it is
/// missing: Docker's rule), `NAME:/PATH[:MODE]` a named volume (made when missing),
/// and `/PATH` alone an anonymous volume. MODE: `ro`, `rw`, `nocopy`, comma-separated.
pub fn volume_flag(spec: &str) -> Result<MountSpec> {
    let what = format!("-v {spec}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts[..] {
        [d] => ("", d, ""),
        [d, m] if d.starts_with('/') && modes(m).is_ok() => ("", d, m),
        [s, d] => (s, d, ""),
        [s, d, m] => (s, d, m),
        _ => {
            return Err(Failure::new(format!(
                "{what}: too many colons; use HOST:CONTAINER[:ro] or NAME:CONTAINER[:ro]"
            )));
        }
    };
    modes(mode).map_err(|why| Failure::new(format!("{what}: {why}")))?;
    let destination = clean(destination, &what)?;
    if source.is_empty() || !(source.starts_with('/') || source.starts_with('.')) {
        if !source.is_empty() {
            volume::check_name(source).map_err(|e| Failure::new(format!("{what}: {e}")))?;
        }
        return Ok(volume_mount(source, &destination, mode));
    }
    if mode.split(',').any(|o| o == "nocopy") {
        return Err(Failure::new(format!(
            "{what}: invalid mode: nocopy is for volumes, not host paths"
        )));
    }
    // A relative path is the current directory's (Docker's CLI since 23.0).
    let source = std::path::absolute(source).unwrap_or_else(|_| source.into());
    if !source.exists() {
        let shown = source.display().to_string();
        std::fs::create_dir_all(&source).map_err(|e| {
            Failure::new(format!(
                "{what}: {shown}: {}",
                labkit::failure::describe_io(&e)
            ))
        })?;
    }
    bind_mount(&source, destination, mode, &what)
}
// ANCHOR_END: volume_flag

/// A bind of the host path `source`, found now (its links resolved, as Docker does).
fn bind_mount(source: &Path, destination: String, mode: &str, what: &str) -> Result<MountSpec> {
    let source = std::fs::canonicalize(source).map_err(|e| {
        Failure::new(format!(
            "{what}: {}: {}",
            source.display(),
            labkit::failure::describe_io(&e)
        ))
    })?;
    Ok(MountSpec {
        r#type: "bind".into(),
        name: String::new(),
        source: source.to_string_lossy().into_owned(),
        destination,
        mode: mode.into(),
        rw: !mode.split(',').any(|o| o == "ro"),
        tmpfs_options: vec![],
    })
}

fn modes(mode: &str) -> std::result::Result<(), String> {
    let mut seen_rw = false;
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "rw" if seen_rw => return Err(format!("invalid mode: {mode}")),
            "ro" | "rw" => seen_rw = true,
            "nocopy" => {}
            other => {
                return Err(format!(
                    "invalid mode: {other} (mini-docker knows ro, rw and nocopy)"
                ));
            }
        }
    }
    Ok(())
}

// ANCHOR: mount_flag
/// `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly]`, field by field
/// as Docker reads it. Unlike `-v`, a bind's missing source is an error.
pub fn mount_flag(spec: &str) -> Result<MountSpec> {
    let mut fields = Fields::default();
    for field in spec.split(',') {
        fields.read(field)?;
    }
    let kind = fields.kind.clone().unwrap_or_else(|| "volume".into());
    let invalid =
        |why: &str| Failure::new(format!("invalid mount config for type {kind:?}: {why}"));
    let Some(target) = &fields.target else {
        return Err(invalid("field Target must not be empty"));
    };
    let destination = clean(target, "--mount")
        .map_err(|e| invalid(e.message().trim_start_matches("--mount: ")))?;
    let mode = [(fields.readonly, "ro"), (fields.nocopy, "nocopy")]
        .iter()
        .filter_map(|(on, word)| on.then_some(*word))
        .collect::<Vec<_>>()
        .join(",");
    let source = fields.source.clone().unwrap_or_default();
    match kind.as_str() {
        "bind" if source.is_empty() => Err(invalid("field Source must not be empty")),
        "bind" if !source.starts_with('/') => Err(invalid(&format!(
            "invalid mount path: '{source}' mount path must be absolute"
        ))),
        "bind" if !Path::new(&source).exists() => Err(invalid(&format!(
            "bind source path does not exist: {source}"
        ))),
        "bind" if fields.nocopy => Err(invalid("volume-nocopy is for volumes")),
        "bind" => bind_mount(Path::new(&source), destination, &mode, "--mount"),
        "volume" => {
            if !source.is_empty() {
                volume::check_name(&source).map_err(|e| invalid(e.message()))?;
            }
            Ok(volume_mount(&source, &destination, &mode))
        }
        "tmpfs" if !source.is_empty() => Err(invalid("field Source must not be specified")),
        "tmpfs" => Ok(MountSpec {
            r#type: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination,
            mode,
            rw: !fields.readonly,
            tmpfs_options: fields.tmpfs,
        }),
        _ => Err(invalid("mount type unknown (use bind, volume or tmpfs)")),
    }
}
// ANCHOR_END: mount_flag

/// `--mount`'s fields so far.
#[derive(Debug, Default)]
struct Fields {
    kind: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: bool,
    nocopy: bool,
    tmpfs: Vec<String>,
}

impl Fields {
    fn read(&mut self, field: &str) -> Result<()> {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let flag = |value: Option<&str>| match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(Failure::new(format!(
                "invalid value for {key}: {other} (use true or false)"
            ))),
        };
        match (key.as_str(), value) {
            ("readonly" | "ro", v) => self.readonly = flag(v)?,
            ("volume-nocopy", v) => self.nocopy = flag(v)?,
            (_, None) => {
                return Err(Failure::new(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            }
            ("type", Some(v)) => self.kind = Some(v.to_ascii_lowercase()),
            ("source" | "src", Some(v)) => self.source = Some(v.into()),
            ("target" | "destination" | "dst", Some(v)) => self.target = Some(v.into()),
            ("tmpfs-size", Some(v)) => self.tmpfs.push(format!("size={}", size(v)?)),
            ("tmpfs-mode", Some(v)) => match u32::from_str_radix(v, 8) {
                Ok(mode) if mode <= 0o7777 => self.tmpfs.push(format!("mode={mode:o}")),
                _ => return Err(Failure::new(format!("invalid tmpfs-mode {v:?}: use octal"))),
            },
            _ => {
                return Err(Failure::new(format!("unexpected key '{key}' in '{field}'")));
            }
        }
        Ok(())
    }
}

/// `tmpfs-size`: bytes, or with k, m or g.
fn size(text: &str) -> Result<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.trim_end_matches('b').char_indices().last() {
        Some((i, c @ ('k' | 'm' | 'g'))) => (&lower[..i], c),
        _ => (lower.trim_end_matches('b'), ' '),
    };
    let shift = match unit {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => 0,
    };
    (digits.parse::<u64>().ok())
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::new(format!("invalid tmpfs-size {text:?}: use bytes, or 64m")))
}

// ANCHOR: volumes_from
/// `--volumes-from CONTAINER[:ro|:rw]`: the other container's binds and volumes,
/// at the same paths (read-only or read-write as given, or as they were there).
fn volumes_from(store: &Store, spec: &str) -> Result<Vec<MountSpec>> {
    let (name, mode) = match spec.rsplit_once(':') {
        Some((name, mode @ ("ro" | "rw"))) => (name, Some(mode)),
        Some(_) => {
            return Err(Failure::new(format!(
                "--volumes-from {spec}: use CONTAINER[:ro|:rw]"
            )));
        }
        None => (spec, None),
    };
    // Not found is a failure to create (125), not the lookup's 1.
    let other = container::find(store, name).map_err(|e| Failure::new(e.message()))?;
    let mounts = other.config()?.mounts;
    Ok((mounts.into_iter())
        .filter(|m| m.r#type != "tmpfs")
        .map(|mut m| {
            if let Some(mode) = mode {
                m.rw = mode == "rw";
                m.mode = mode.into();
            }
            m
        })
        .collect())
}
// ANCHOR_END: volumes_from

/// Make the volumes `mounts` name (and a fresh one for each anonymous one), and
/// give each its directory. Under the store's lock, so that `volume rm` cannot
/// take one away before the container's config names it.
pub fn make_volumes(store: &Store, mounts: &mut [MountSpec]) -> Result<()> {
    for mount in mounts.iter_mut().filter(|m| m.r#type == "volume") {
        let name = (!mount.name.is_empty()).then_some(mount.name.as_str());
        let made = volume::create(store, name, &[])?;
        mount.source = volume::data(store, &made.name).display().to_string();
        mount.name = made.name;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_reads_as_docker_reads_it() {
        let anonymous = volume_flag("/data").unwrap();
        assert_eq!(
            (anonymous.r#type.as_str(), anonymous.name.as_str()),
            ("volume", "")
        );
        let named = volume_flag("db:/var/lib/db:ro,nocopy").unwrap();
        assert_eq!(named.volume(), Some("db"));
        assert!(!named.rw && !named.copy_up());
        assert!(!volume_flag("/data:ro").unwrap().rw);
        for bad in [
            "db:rel",
            "x:/y",
            "db:/y:rx",
            "db:/",
            "/a:/b:c:d",
            "/tmp:/y:nocopy",
        ] {
            assert!(volume_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_reads_field_by_field() {
        let m = mount_flag("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770,ro").unwrap();
        assert_eq!(m.tmpfs_options, ["size=67108864", "mode=1770"]);
        assert!(!m.rw);
        let v = mount_flag("source=db,target=/db/../data").unwrap();
        assert_eq!((v.volume(), v.destination.as_str()), (Some("db"), "/data"));
        for (bad, says) in [
            ("type=bind,target=/x", "field Source must not be empty"),
            ("type=bind,src=/nonexistent-here,dst=/x", "does not exist"),
            ("type=tmpfs,src=a,dst=/x", "must not be specified"),
            ("type=volume", "field Target must not be empty"),
            ("type=nfs,dst=/x", "mount type unknown"),
            ("type=bind,nonsense", "must be a key=value pair"),
            ("colour=blue,dst=/x", "unexpected key 'colour'"),
            ("dst=/x,tmpfs-size=lots", "invalid tmpfs-size"),
        ] {
            let e = mount_flag(bad).unwrap_err();
            assert!(e.message().contains(says), "{bad}: {e}");
        }
    }
}
