//! A compose file, read as the Compose Specification says for the part of it
//! people use: variables interpolated, then each short form brought to its long
//! one, so that the rest of `compose` reads one shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

/// A string, or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Words {
    One(String),
    Many(Vec<String>),
}

/// `KEY: value` pairs, or `KEY=value` items (a value may be a number or a bool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pairs {
    Map(BTreeMap<String, Option<yaml_serde::Value>>),
    List(Vec<String>),
}

impl Pairs {
    /// As `KEY=value` items; a key with no value is kept alone (taken from the
    /// environment, as `-e KEY`).
    pub fn items(&self) -> Vec<String> {
        match self {
            Pairs::List(list) => list.clone(),
            Pairs::Map(map) => (map.iter())
                .map(|(k, v)| match v.as_ref().map(scalar) {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect(),
        }
    }
}

fn scalar(value: &yaml_serde::Value) -> String {
    match value {
        yaml_serde::Value::String(s) => s.clone(),
        yaml_serde::Value::Null => String::new(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Build {
    Context(String),
    Long {
        context: Option<String>,
        dockerfile: Option<String>,
        args: Option<Pairs>,
        target: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Short(String),
    Number(u16),
    Long {
        target: u16,
        published: Option<yaml_serde::Value>,
        protocol: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Volume {
    Short(String),
    Long {
        #[serde(rename = "type")]
        kind: String,
        source: Option<String>,
        target: String,
        read_only: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Networks {
    List(Vec<String>),
    Map(BTreeMap<String, Option<ServiceNetwork>>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    pub aliases: Option<Vec<String>>,
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, Dependency>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> String {
    "service_started".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Option<Words>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    #[serde(default)]
    pub disable: bool,
}

/// A service: what its containers are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Words>,
    pub entrypoint: Option<Words>,
    pub environment: Option<Pairs>,
    pub env_file: Option<Words>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<yaml_serde::Value>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    pub networks: Option<Networks>,
    pub depends_on: Option<DependsOn>,
    pub restart: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub container_name: Option<String>,
    pub labels: Option<Pairs>,
}

/// A top-level network or volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub name: Option<String>,
    #[serde(default)]
    pub external: bool,
    pub driver: Option<String>,
    #[serde(default)]
    pub internal: bool,
    pub labels: Option<Pairs>,
    pub ipam: Option<yaml_serde::Value>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub name: Option<String>,
    /// Obsolete: read and ignored, as Compose does (with a warning).
    pub version: Option<yaml_serde::Value>,
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Resource>>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Resource>>,
}

/// A project: its file read, its name, its directory (relative paths start there).
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub file: File,
}

// ANCHOR: find_file
/// The file: `-f`, or the first of Compose's names in the current directory.
pub fn find_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let names = [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ];
    names
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Failure::new(
                "no configuration file provided: not found (compose.yaml, compose.yml, \
                 docker-compose.yaml or docker-compose.yml here, or -f FILE)",
            )
        })
}
// ANCHOR_END: find_file

// ANCHOR: load
/// Read the project: the YAML parsed, `${VAR}`s replaced (from our environment,
/// then the project directory's `.env`), each short form made long; the name from
/// `-p`, the file's `name:`, or the directory, as Compose picks it.
pub fn load(path: &Path, name: Option<&str>) -> Result<Project> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("{shown}: {}", labkit::failure::describe_io(&e))))?;
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let dotenv = dotenv(&dir.join(".env"));
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv.get(name).cloned())
    };
    let mut value: yaml_serde::Value =
        yaml_serde::from_str(&text).map_err(|e| Failure::new(format!("{shown}: {e}")))?;
    interpolate_all(&mut value, &lookup)?;
    let file: File = yaml_serde::from_value(value).map_err(|e| {
        // serde's words for a value of the wrong shape, in the file's words.
        let said = e.to_string().replace(
            "data did not match any variant of untagged enum Words",
            "a value that should be a string or a list of strings is neither",
        );
        Failure::new(format!("{shown}: {said}"))
    })?;
    let name = match name.map(str::to_string).or(file.name.clone()) {
        Some(name) => name,
        None => normalize(&dir.file_name().unwrap_or_default().to_string_lossy()),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(Failure::new(format!(
            "project name {name:?}: must contain only lowercase letters, digits, dashes and \
             underscores, and begin with a letter or a digit"
        )));
    }
    if let Some(bad) = file.services.keys().find(|s| !crate::container::is_name(s)) {
        return Err(Failure::new(format!(
            "{shown}: service name {bad:?} is not a name"
        )));
    }
    Ok(Project { name, dir, file })
}
// ANCHOR_END: load

/// A directory's name as a project name: lowercase, only `[a-z0-9_-]` kept.
fn normalize(text: &str) -> String {
    (text.to_lowercase().chars())
        .filter(|c| c.is_ascii_alphanumeric() || "_-".contains(*c))
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .to_string()
}

/// `.env`: `KEY=VALUE` lines, `#` comments, optional quotes around the value.
fn dotenv(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    (text.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = (v.len() >= 2
                && (v.starts_with('"') && v.ends_with('"')
                    || v.starts_with('\'') && v.ends_with('\'')))
            .then(|| &v[1..v.len() - 1]);
            (k.trim().to_string(), unquoted.unwrap_or(v).to_string())
        })
        .collect()
}

fn interpolate_all(
    value: &mut yaml_serde::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    match value {
        yaml_serde::Value::String(s) => *s = interpolate(s, lookup)?,
        yaml_serde::Value::Sequence(items) => {
            for item in items {
                interpolate_all(item, lookup)?;
            }
        }
        yaml_serde::Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                interpolate_all(item, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

// ANCHOR: interpolate
/// Compose's interpolation: `$$` is a `$`; `${VAR}` and `$VAR` its value (empty
/// when unset); `${VAR:-default}` when unset or empty, `${VAR-default}` when
/// unset; `${VAR:?error}` fails when unset or empty.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').ok_or_else(|| {
                Failure::new(format!("invalid interpolation format for {text:?}"))
            })?;
            out.push_str(&substitute(&braced[..end], lookup)?);
            rest = &braced[end + 1..];
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            match len {
                0 => out.push('$'),
                _ => out.push_str(&lookup(&rest[..len]).unwrap_or_default()),
            }
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(inside: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let split = inside.find([':', '-', '?']).unwrap_or(inside.len());
    let (name, op) = inside.split_at(split);
    let value = lookup(name);
    let set_and_full = value.clone().filter(|v| !v.is_empty());
    Ok(match op {
        "" => value.unwrap_or_default(),
        _ if op.starts_with(":-") => set_and_full.unwrap_or_else(|| op[2..].to_string()),
        _ if op.starts_with('-') => value.unwrap_or_else(|| op[1..].to_string()),
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let why = op.trim_start_matches(':')[1..].to_string();
            let missing = match op.starts_with(':') {
                true => set_and_full.is_none(),
                false => value.is_none(),
            };
            if missing {
                return Err(Failure::new(format!(
                    "required variable {name} is missing a value: {why}"
                )));
            }
            value.unwrap_or_default()
        }
        _ => {
            return Err(Failure::new(format!(
                "invalid interpolation format for ${{{inside}}}"
            )));
        }
    })
}
// ANCHOR_END: interpolate

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_as_compose_does_it() {
        let env = |n: &str| match n {
            "TAG" => Some("1.2".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            ("web:${TAG}", "web:1.2"),
            ("$TAG/x", "1.2/x"),
            ("$$HOME", "$HOME"),
            ("${NOPE:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${NOPE}", ""),
        ];
        for (text, want) in cases {
            assert_eq!(interpolate(text, &env).unwrap(), want, "{text}");
        }
        assert!(interpolate("${NOPE:?set it}", &env).is_err());
        assert!(interpolate("${TAG", &env).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(normalize("My App.v2"), "myappv2");
        assert_eq!(normalize("_x"), "x");
    }
}
