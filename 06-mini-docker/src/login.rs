//! `login` and `logout`: credentials kept as Docker keeps them, in
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), under
//! `"auths": {"SERVER": {"auth": base64("USER:PASSWORD")}}`: not encrypted, only
//! encoded, so the file is made readable by its owner alone (0600, in a 0700
//! directory). Docker Hub's key is `https://index.docker.io/v1/`, for history.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use labkit::failure::Context;
use labkit::{Failure, Result};
use serde_json::{Value, json};

use crate::reference::DOCKER_HUB;
use crate::registry::{Registry, Settings};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// `Authorization: Basic base64(USER:PASSWORD)`.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

fn config_file() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or("/root".into())).join(".docker")
        });
    dir.join("config.json")
}

/// The key a registry's credentials are kept under.
fn key(registry: &str) -> String {
    match registry {
        DOCKER_HUB => "https://index.docker.io/v1/".into(),
        other => other.into(),
    }
}

fn read_config() -> Result<Value> {
    let path = config_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Failure::new(format!("{}: not valid JSON ({e})", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Failure::new(format!("{}: {e}", path.display()))),
    }
}

/// The credentials stored for `registry`, if any.
pub fn stored(registry: &str) -> Result<Option<Credentials>> {
    let config = read_config()?;
    let Some(auth) = config["auths"][key(registry)]["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((username, password)) => Ok(Some(Credentials {
            username: username.into(),
            password: password.into(),
        })),
        None => Err(Failure::new(format!(
            "{}: the auth of {registry} is not base64 of USER:PASSWORD",
            config_file().display()
        ))),
    }
}

// ANCHOR: write_config
/// Written whole and renamed, owner-only from the start.
fn write_config(config: &Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = config_file();
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .context(|| dir.display().to_string())?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .context(|| tmp.display().to_string())?;
    let text = serde_json::to_string_pretty(config).unwrap_or_default();
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, &path).context(|| path.display().to_string())
}
// ANCHOR_END: write_config

/// `login SERVER`: the credentials are tried (a token asked for with them, or the
/// ping with Basic auth) before they are kept.
pub fn login(registry: &str, credentials: Credentials) -> Result<PathBuf> {
    let settings = Settings::load()?;
    Registry::connect(
        &settings,
        registry,
        "",
        "",
        &[],
        Some(credentials.clone()),
        false,
    )
    .map_err(|e| Failure::new(format!("login to {registry} failed: {e}")))?;
    let mut config = read_config()?;
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    config["auths"][key(registry)] = json!({
        "auth": STANDARD.encode(format!("{}:{}", credentials.username, credentials.password))
    });
    write_config(&config)?;
    Ok(config_file())
}

/// `logout SERVER`: false when there was nothing to remove.
pub fn logout(registry: &str) -> Result<bool> {
    let mut config = read_config()?;
    let removed = config["auths"]
        .as_object_mut()
        .and_then(|auths| auths.remove(&key(registry)))
        .is_some();
    if removed {
        write_config(&config)?;
    }
    Ok(removed)
}
