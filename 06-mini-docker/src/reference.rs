//! Image references as Docker reads them: `alpine` is
//! `docker.io/library/alpine:latest`; `user/app` is `docker.io/user/app:latest`;
//! `host:5000/path/app:1.0` names its registry; `@sha256:...` pins a manifest.
//!
//! The first part of a name is a registry only when it looks like a host: it has a
//! `.` or a `:`, or it is `localhost`. Otherwise the image is on Docker Hub, and a
//! one-part name is one of Docker Hub's official images, under `library/`.

use labkit::{Failure, Result};

pub const DOCKER_HUB: &str = "docker.io";

// ANCHOR: reference
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `registry.example.com`.
    pub registry: String,
    /// `library/alpine`, `user/app`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// `sha256:HEX`.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| Failure::new(format!("invalid reference format: {why}"));
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(check_digest(digest).map_err(|e| bad(&e))?)),
            None => (text, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        // `docker.io/alpine` is an official image too.
        let repository = match registry == DOCKER_HUB && !repository.contains('/') {
            true => format!("library/{repository}"),
            false => repository,
        };
        if name.is_empty() || name.len() > 255 {
            return Err(bad("a name must have 1 to 255 characters"));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if !repository.split('/').all(path_component) {
            return Err(bad(&format!("{text:?} is not a valid repository name")));
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(bad(&format!("{tag:?} is not a valid tag")));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
    // ANCHOR_END: reference

    /// `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `docker.io/library/alpine:latest` (or `...@sha256:...`): how it is stored.
    pub fn canonical(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => format!("{}:{tag}", self.name()),
            (None, Some(digest)) => format!("{}@{digest}", self.name()),
            (None, None) => self.name(),
        }
    }

    /// `alpine`, `user/app`, `localhost:5000/app`: the name as Docker prints it.
    pub fn familiar_name(&self) -> String {
        match self.registry.as_str() {
            DOCKER_HUB => self
                .repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string(),
            _ => self.name(),
        }
    }

    /// `alpine:latest`.
    pub fn familiar(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => format!("{}:{tag}", self.familiar_name()),
            (None, Some(digest)) => format!("{}@{digest}", self.familiar_name()),
            (None, None) => self.familiar_name(),
        }
    }

    /// The tag, or the digest: what a manifest is asked for by.
    pub fn version(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn check_digest(digest: &str) -> std::result::Result<String, String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(digest.to_ascii_lowercase())
        }
        _ => Err(format!("{digest:?} is not a sha256 digest")),
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn path_component(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes: Vec<char> = part.chars().collect();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for c in bytes {
        if alnum(c) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.chars().all(|s| s == '-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        Reference::parse(text).expect(text).canonical()
    }

    #[test]
    fn docker_hub_names_are_completed() {
        assert_eq!(canonical("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(canonical("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(canonical("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            canonical("docker.io/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            canonical("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/library/alpine:1")
                .expect("ok")
                .familiar(),
            "alpine:1"
        );
        assert_eq!(
            Reference::parse("user/app").expect("ok").familiar(),
            "user/app:latest"
        );
    }

    #[test]
    fn a_first_part_that_looks_like_a_host_is_the_registry() {
        assert_eq!(canonical("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(canonical("localhost/app:1"), "localhost/app:1");
        assert_eq!(
            canonical("127.0.0.1:5000/a/b/c:v1"),
            "127.0.0.1:5000/a/b/c:v1"
        );
        assert_eq!(canonical("quay.io/x/y"), "quay.io/x/y:latest");
        let r = Reference::parse("registry.example.com:443/x").expect("ok");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.example.com:443", "x")
        );
        assert_eq!(r.familiar(), "registry.example.com:443/x:latest");
    }

    #[test]
    fn a_digest_pins_the_manifest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("alpine@{digest}")).expect("ok");
        assert_eq!((r.tag.as_deref(), r.version()), (None, digest.as_str()));
        let r = Reference::parse(&format!("alpine:3@{digest}")).expect("ok");
        assert_eq!(
            (r.tag.as_deref(), r.version()),
            (Some("3"), digest.as_str())
        );
    }

    #[test]
    fn bad_names_are_refused_in_dockers_words() {
        for bad in [
            "Alpine",
            "alpine:",
            "a//b",
            "-a",
            "a@sha256:12",
            "a:b c",
            "",
            "a:.x",
            "a..b",
        ] {
            let e = Reference::parse(bad).expect_err(bad);
            assert!(
                e.to_string().starts_with("invalid reference format"),
                "{bad}: {e}"
            );
        }
        for good in ["a-b", "a__b", "a.b_c", "a---b", "0/1"] {
            Reference::parse(good).expect(good);
        }
    }
}
