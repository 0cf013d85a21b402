//! Where mini-docker keeps everything: one directory (`--root`, default
//! `/var/lib/mini-docker`), like `/var/lib/docker`.
//!
//! ```text
//! ROOT/layers/ID/            a layer, unpacked: shared by every image and container using it
//! ROOT/images/ID.json        an image: its layers (bottom first), config, names
//! ROOT/blobs/sha256/HEX      blobs as a registry serves them: layer tarballs (the
//!                            layer's id is its tarball's digest), configs, manifests
//! ROOT/containers/ID/        a container: config.json, state.json, json.log,
//!                            upper/ and work/ (its writable layer), lock
//! ROOT/build-cache/ID/       digests of the image ID's files that `build` took
//! ```
//!
//! Every JSON file is written whole to a temp file and renamed over the old one:
//! `rename(2)` is atomic, so a reader (or a crash, or `kill -9`) sees the old file
//! or the new one, never half of one. Commands that change a container hold its
//! lock (`flock`), so two of them never interleave.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use labkit::failure::Context;
use labkit::{Failure, Result};
use nix::fcntl::Flock;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const DEFAULT_ROOT: &str = "/var/lib/mini-docker";

#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    // ANCHOR: open
    /// The store, made root-only if it is not (an older one may be open to all), as
    /// Docker's `/var/lib/docker`: its layers keep setuid programs that any local user
    /// could run through their path (CVE-2021-41091), and its logs keep whatever
    /// containers print.
    pub fn open(root: &Path) -> Result<Store> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        for path in [
            root,
            &root.join("layers"),
            &root.join("images"),
            &root.join("containers"),
            &root.join("blobs/sha256"),
        ] {
            let shown = || path.display().to_string();
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .context(shown)?;
            let mode = fs::metadata(path).context(shown)?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o700)).context(shown)?;
            }
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }
    // ANCHOR_END: open

    pub fn layer(&self, id: &str) -> PathBuf {
        self.root.join("layers").join(id)
    }

    /// `blobs/sha256/HEX`: the content-addressed copy of a blob (`sha256:HEX`).
    pub fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    /// A scratch directory under `blobs/` (removed on drop): what is downloaded or
    /// packed there can be linked into `blobs/sha256/` when it is whole and checked.
    pub fn scratch(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let blobs = self.root.join("blobs");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&blobs)
            .context(|| blobs.display().to_string())
    }

    /// `build-cache/ID/`: what `build` keeps about the image ID (the digests of its
    /// files that a `COPY --from` took), removed with the image.
    pub fn build_cache(&self, id: &str) -> PathBuf {
        self.root.join("build-cache").join(id)
    }

    pub fn image_file(&self, id: &str) -> PathBuf {
        self.root.join("images").join(format!("{id}.json"))
    }

    pub fn container(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The names in one of the store's directories (ids, with `.json` dropped).
    pub fn ids(&self, dir: &str) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(".json")
                    .to_string()
            })
            .filter(|name| !name.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }
}

// ANCHOR: atomic
/// Write `value` as JSON to `path`, atomically: a temp file in the same directory,
/// then renamed over `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::new(e.to_string()))?;
    keep_text(path, &text)
}

/// Write `text` to `path` whole: a temp file in the same directory, renamed over it.
pub fn keep_text(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .context(|| dir.display().to_string())?;
    // No fsync: rename alone is what protects against a process killed midway
    // (the kernel keeps what was written); an fsync per file would be for power
    // loss, and would cost a disk flush on every state change of every container.
    tmp.write_all(text.as_bytes())
        .context(|| path.display().to_string())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .context(|| path.display().to_string())?;
    Ok(())
}
// ANCHOR_END: atomic

/// Read a JSON file written by `write_json`; a damaged one is named as such.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .context(|| path.display().to_string())?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::new(format!(
            "{} is damaged ({e}); `mini-docker rm -f` still removes the container",
            path.display()
        ))
    })
}

/// Hold `dir/lock` exclusively until the returned guard is dropped.
pub fn lock(dir: &Path) -> Result<Flock<File>> {
    labkit::lock::lock_dir(dir)
}

/// 64 random hex digits, like Docker's ids.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Failure::new(format!("/dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `SystemTime` as RFC 3339 in UTC with nanoseconds, as Docker writes times
/// (`2026-11-23T15:14:38.123456789Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

pub fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Seconds since the epoch of a time written by `rfc3339` (for "3 minutes ago").
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.trim_end_matches('Z').split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Civil date to days (Howard Hinnant's algorithm, the inverse of rfc3339's).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// "3 seconds", "2 minutes", "an hour": how long ago `time` was, Docker's way.
pub fn human_since(time: &str) -> String {
    let Some(then) = parse_rfc3339(time) else {
        return "?".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = (now - then).max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_446_878, 5);
        assert_eq!(rfc3339(t), "2026-11-23T15:14:38.000000005Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(1_795_446_878));
        assert_eq!(parse_rfc3339(&rfc3339(leap)), Some(951_782_400));
    }

    #[test]
    fn json_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_json(&path, &vec![1, 2, 3]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&path).unwrap(), vec![1, 2, 3]);
        std::fs::write(&path, "[1, 2").unwrap();
        let err = read_json::<Vec<i32>>(&path).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
    }
}
