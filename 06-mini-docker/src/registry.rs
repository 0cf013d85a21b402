//! A registry's HTTP API, as the OCI distribution spec defines it: `/v2/` answers
//! (the ping), manifests and blobs are addressed by repository and digest, and a
//! registry that wants a login says so with `401` and a `WWW-Authenticate` header.
//!
//! Every request is narrated under `--explain` with the `curl` line that sends it.
//! HTTPS is the default, checked against this machine's root certificates; plain HTTP
//! only for localhost, 127.0.0.0/8 and the registries the daemon config calls
//! `insecure-registries`, as Docker allows.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use labkit::narrate;
use labkit::{Failure, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::http::{Response, StatusCode};

use crate::login::Credentials;
use crate::reference::DOCKER_HUB;

/// `/etc/mini-docker/daemon.json`: the part of Docker's `daemon.json` that concerns
/// registries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// Registries reached over plain HTTP (or HTTPS without checking its certificate).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Tried in order before Docker Hub, for Docker Hub's images only.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
}

pub const SETTINGS_FILE: &str = "/etc/mini-docker/daemon.json";

impl Settings {
    /// The file `MINI_DOCKER_CONFIG_FILE` names, or [`SETTINGS_FILE`]; none is empty.
    pub fn load() -> Result<Settings> {
        let path = std::env::var("MINI_DOCKER_CONFIG_FILE").unwrap_or(SETTINGS_FILE.into());
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Failure::new(format!("{path}: not a daemon config ({e})"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Failure::new(format!("{path}: {e}"))),
        }
    }

    /// Plain HTTP allowed: localhost, 127.0.0.0/8, ::1, and the insecure list.
    pub fn insecure(&self, host: &str) -> bool {
        let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
        name == "localhost"
            || name == "[::1]"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self
                .insecure_registries
                .iter()
                .any(|r| r == host || r == name)
    }
}

/// The manifests we read, best first: an index (a list per platform) or one image.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// distribution refuses manifests above 4 MiB; so do we.
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// One repository on one registry, with the authorization to use it.
#[derive(Debug)]
pub struct Registry {
    agent: ureq::Agent,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub base: String,
    pub repository: String,
    auth: Mutex<Auth>,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic(Credentials),
    Bearer(String),
}

/// The outcome of a request that reached the registry.
pub type Answer = Response<ureq::Body>;

fn agent(verify: bool) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    // This machine's roots (Debian's ca-certificates), or the ones built in.
    let file = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let roots = std::fs::read(&file)
        .ok()
        .map(|pem| {
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .filter(|certs| !certs.is_empty())
        .map_or(RootCerts::WebPki, |certs| RootCerts::new_with_certs(&certs));
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(!verify)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .user_agent(concat!("mini-docker/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

// ANCHOR: fetch_url
/// `GET url` into `out`, redirects followed (at most 10), for `build`'s `ADD URL`.
pub fn fetch_url(url: &str, out: &mut dyn Write) -> Result<()> {
    let agent = agent(true);
    let mut url = url.to_string();
    for _ in 0..10 {
        labkit::narrate::step(format!("GET {url}"), format!("curl -fsSLO {url}"));
        let answer =
            (agent.get(&url).call()).map_err(|e| Failure::new(format!("Get {url:?}: {e}")))?;
        if answer.status().is_redirection()
            && let Some(to) = answer
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
        {
            url = match to.starts_with('/') {
                true => format!(
                    "{}{to}",
                    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
                ),
                false => to.to_string(),
            };
            continue;
        }
        if !answer.status().is_success() {
            return Err(error_of(&url, answer));
        }
        let mut body = answer.into_body().into_reader();
        std::io::copy(&mut body, out).map_err(|e| Failure::new(format!("{url}: {e}")))?;
        return Ok(());
    }
    Err(Failure::new(format!("{url}: more than 10 redirects")))
}
// ANCHOR_END: fetch_url

/// The registry's own name for its API host: Docker Hub answers at registry-1.
pub fn api_host(registry: &str) -> &str {
    match registry {
        DOCKER_HUB => "registry-1.docker.io",
        other => other,
    }
}

/// `Get "URL": WHY`, as Docker words a request that went nowhere.
fn unreachable(method: &str, url: &str, e: &ureq::Error) -> Failure {
    let why = match e {
        ureq::Error::Io(io) => labkit::failure::describe_io(io),
        other => other.to_string(),
    };
    let method = format!("{}{}", &method[..1], method[1..].to_lowercase());
    Failure::new(format!("{method} \"{url}\": {why}"))
}

// ANCHOR: connect
impl Registry {
    /// Find the registry (its mirrors first, for Docker Hub; HTTPS, then HTTP where
    /// allowed), ping it, and log in the way its `401` asks, for `actions`
    /// (`pull`, `pull,push`) on `repository` and on `also` (`from` repositories
    /// of a cross-repository mount).
    pub fn connect(
        settings: &Settings,
        registry: &str,
        repository: &str,
        actions: &str,
        also: &[String],
        credentials: Option<Credentials>,
        mirrors: bool,
    ) -> Result<Registry> {
        let mut bases: Vec<(String, bool)> = vec![];
        if registry == DOCKER_HUB && mirrors {
            for mirror in &settings.registry_mirrors {
                let host = mirror.split("://").nth(1).unwrap_or(mirror);
                let host = host.trim_end_matches('/');
                bases.push((
                    mirror.trim_end_matches('/').to_string(),
                    !settings.insecure(host),
                ));
            }
        }
        let host = api_host(registry);
        bases.push((format!("https://{host}"), !settings.insecure(registry)));
        if settings.insecure(registry) {
            bases.push((format!("http://{host}"), false));
        }
        let mut failure = None;
        for (base, verify) in bases {
            let mut found = Registry {
                agent: agent(verify),
                base,
                repository: repository.to_string(),
                auth: Mutex::new(Auth::None),
            };
            match found.ping(actions, also, credentials.clone()) {
                Ok(()) => return Ok(found),
                Err(e) if e.code() == UNREACHABLE => {
                    narrate::note(format!("{}: {e}; trying the next", found.base));
                    // A certificate refused says more than the HTTP tried after it.
                    if !failure
                        .as_ref()
                        .is_some_and(|f: &Failure| f.message().contains("certificate"))
                    {
                        failure = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // The last address's failure, as the verb's own (its exit code is the verb's).
        Err(Failure::new(
            failure.map_or("no registry to try".into(), |f| f.message().to_string()),
        ))
    }

    /// `GET /v2/`: 200 is open; 401 says how to log in (Basic, or a token server).
    fn ping(
        &mut self,
        actions: &str,
        also: &[String],
        credentials: Option<Credentials>,
    ) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let answer = self.send("GET", &url, &[], None)?;
        if answer.status() != StatusCode::UNAUTHORIZED {
            // Not a registry here (an HTTP request to an HTTPS port, say): the next.
            return match answer.status().is_success() {
                true => Ok(()),
                false => Err(Failure::new(format!(
                    "{url}: answered {}: not a registry (the /v2/ API)",
                    answer.status()
                ))
                .exit_code(UNREACHABLE)),
            };
        }
        let challenge = header(&answer, "www-authenticate");
        let (scheme, params) = parse_challenge(&challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let Some(credentials) = credentials else {
                    return Err(Failure::new(format!(
                        "Get \"{url}\": no basic auth credentials (mini-docker login {})",
                        self.base.split("://").nth(1).unwrap_or_default()
                    )));
                };
                *lock(&self.auth) = Auth::Basic(credentials);
                let again = self.send("GET", &url, &[], None)?;
                match again.status().is_success() {
                    true => Ok(()),
                    false => Err(error_of(&url, again)),
                }
            }
            "bearer" => {
                // `login` asks for no scope: a token at all means the password is right.
                let mut scopes = vec![];
                if !self.repository.is_empty() {
                    scopes.push(format!("repository:{}:{actions}", self.repository));
                }
                scopes.extend(also.iter().map(|r| format!("repository:{r}:pull")));
                let token = self.token(&params, &scopes, credentials.as_ref())?;
                *lock(&self.auth) = Auth::Bearer(token);
                Ok(())
            }
            _ => Err(Failure::new(format!(
                "{url}: asks for {challenge:?}, an authentication mini-docker does not know"
            ))),
        }
    }
    // ANCHOR_END: connect

    // ANCHOR: token
    /// The token dance: ask the `realm` the 401 named for a token for `service` and
    /// `scope`, anonymously or with the credentials (HTTP Basic); then every request
    /// carries `Authorization: Bearer TOKEN`.
    fn token(
        &self,
        params: &[(String, String)],
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let realm = param("realm").ok_or_else(|| Failure::new("a challenge with no realm"))?;
        let service = param("service").map(|s| format!("service={}", encode(s)));
        let scopes = scopes.iter().map(|s| format!("scope={}", encode(s)));
        let query: Vec<String> = service.into_iter().chain(scopes).collect();
        let url = format!("{realm}?{}", query.join("&"));
        let auth = credentials.map_or(Auth::None, |c| Auth::Basic(c.clone()));
        let answer = self.send_as("GET", &url, &[], None, &auth)?;
        if !answer.status().is_success() {
            return Err(error_of(&url, answer));
        }
        // `{"token": ...}`, or OAuth2's `{"access_token": ...}`.
        let answer: serde_json::Value =
            serde_json::from_slice(&read_limited(answer, 1 << 20, &url)?)
                .map_err(|e| Failure::new(format!("{url}: not a token ({e})")))?;
        let token = answer["token"].as_str().or(answer["access_token"].as_str());
        token
            .map(str::to_string)
            .ok_or_else(|| Failure::new(format!("{url}: the answer has no token")))
    }
    // ANCHOR_END: token

    /// A request with this registry's authorization.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Answer> {
        let auth = lock(&self.auth).clone();
        self.send_as(method, url, headers, body, &auth)
    }

    fn send_as(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Body>,
        auth: &Auth,
    ) -> Result<Answer> {
        let mut curl = vec!["curl".to_string(), "-sS".into()];
        match method {
            "GET" => {}
            "HEAD" => curl.push("--head".into()),
            other => curl.extend(["-X".into(), other.into()]),
        }
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
            curl.extend(["-H".into(), narrate::shell_quote(&format!("{k}: {v}"))]);
        }
        match auth {
            Auth::None => {}
            Auth::Basic(c) => {
                request = request.header("Authorization", c.basic());
                curl.extend(["-u".into(), format!("\"{}:$PASSWORD\"", c.username)]);
            }
            Auth::Bearer(token) => {
                request = request.header("Authorization", format!("Bearer {token}"));
                curl.extend(["-H".into(), "\"Authorization: Bearer $TOKEN\"".into()]);
            }
        }
        if let Some(body) = &body {
            curl.push(match body {
                Body::Bytes(_) => "--data-binary @-".into(),
                Body::File(_, _) => "--data-binary @BLOB".into(),
            });
        }
        curl.push(narrate::shell_quote(url));
        narrate::step(format!("{method} {url}"), curl.join(" "));
        let sent = match body {
            None => request
                .body(())
                .map_err(|e| Failure::new(format!("{url}: {e}")))
                .map(|r| self.agent.run(r)),
            Some(Body::Bytes(bytes)) => request
                .body(bytes)
                .map_err(|e| Failure::new(format!("{url}: {e}")))
                .map(|r| self.agent.run(r)),
            Some(Body::File(file, length)) => request
                .header("Content-Length", length.to_string())
                .body(ureq::SendBody::from_owned_reader(file.take(length)))
                .map_err(|e| Failure::new(format!("{url}: {e}")))
                .map(|r| self.agent.run(r)),
        }?;
        let answer = sent.map_err(|e| unreachable(method, url, &e).exit_code(UNREACHABLE))?;
        narrate::note(format!("-> {}", answer.status()));
        Ok(answer)
    }

    /// `/v2/REPOSITORY/KIND/REF`.
    pub fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }
}

/// A request's body: bytes, or `length` bytes of a file from where it stands.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    File(std::fs::File, u64),
}

/// The code a request that reached nothing fails with inside this module (the next
/// address is tried); mini-docker's own exit code is decided by its verb.
const UNREACHABLE: i32 = 2;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn header(answer: &Answer, name: &str) -> String {
    answer
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = vec![];
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((key, value.to_string()));
        rest = next.trim().trim_start_matches(',');
    }
    (scheme.to_string(), params)
}

/// Percent-encoding for a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// At most `limit` bytes of the answer; more is refused, not cut.
pub fn read_limited(answer: Answer, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut bytes = vec![];
    answer
        .into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(format!("{what}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::new(format!(
            "{what}: larger than {limit} bytes: refused"
        )));
    }
    Ok(bytes)
}

/// The registry's own words for a failure: `{"errors":[{"code","message"}]}`.
pub fn error_of(url: &str, answer: Answer) -> Failure {
    let status = answer.status();
    let body = read_limited(answer, 64 << 10, url).unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        code: String,
        #[serde(default)]
        message: String,
    }
    let words = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message));
    match (status, words) {
        (StatusCode::UNAUTHORIZED, None) => Failure::new(format!("Get \"{url}\": unauthorized")),
        (_, Some(words)) => Failure::new(words),
        (status, None) => Failure::new(format!("{url}: {status}")),
    }
}

// ANCHOR: blob
/// Copy the blob `digest` (`size` bytes) to `out`, hashing as it streams: more bytes
/// than `size`, fewer, or a different digest fail it. Redirects are followed by
/// hand (the `Authorization` stays behind when the host changes: a storage bucket
/// must not see the registry's token). `seen` is told the bytes so far.
pub fn download(
    registry: &Registry,
    digest: &str,
    size: u64,
    out: &mut dyn Write,
    seen: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut url = registry.url("blobs", digest);
    let mut answer = registry.send("GET", &url, &[], None)?;
    for _ in 0..5 {
        if !answer.status().is_redirection() {
            break;
        }
        let next = join_url(&url, &header(&answer, "location"));
        let same_host = host_of(&next) == host_of(&url);
        url = next;
        answer = match same_host {
            true => registry.send("GET", &url, &[], None)?,
            false => registry.send_as("GET", &url, &[], None, &Auth::None)?,
        };
    }
    if !answer.status().is_success() {
        return Err(error_of(&url, answer));
    }
    let reader = answer.into_body().into_reader().take(size + 1);
    stream_checked(reader, digest, size, out, seen)
}
// ANCHOR_END: blob

// ANCHOR: stream_checked
/// `size` bytes from `reader` to `out`, hashed on the way: refused when longer,
/// shorter, or of another digest than `digest`.
fn stream_checked(
    mut reader: impl Read,
    digest: &str,
    size: u64,
    out: &mut dyn Write,
    seen: &mut dyn FnMut(u64),
) -> Result<()> {
    // ANCHOR: hole_digest
    let mut hash = Sha256::new();
    let (mut got, mut buf) = (0u64, vec![0u8; 1 << 16]);
    loop {
        let at = got;
        let failed = |e: std::io::Error| Failure::new(format!("{digest}: {e} at byte {at}"));
        let n = reader.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > size {
            return Err(Failure::new(format!(
                "{digest}: longer than its {size} bytes"
            )));
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(failed)?;
        seen(got);
    }
    if got < size {
        let why = format!("{digest}: truncated: {got} of {size} bytes");
        return Err(Failure::new(why));
    }
    let computed = format!("sha256:{:x}", hash.finalize());
    if computed != digest {
        return Err(Failure::new(format!(
            "filesystem layer verification failed for digest {digest}: the content is {computed}"
        )));
    }
    Ok(())
    // ANCHOR_END: hole_digest
}
// ANCHOR_END: stream_checked

/// `scheme://host` of a URL.
fn host_of(url: &str) -> &str {
    let after = url.split_once("://").map_or(url, |(_, r)| r);
    after.split('/').next().unwrap_or(after)
}

/// A `Location` may be absolute, or a path on the same host.
pub fn join_url(from: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = from.split_once("://").map_or("https", |(s, _)| s);
    format!("{scheme}://{}{location}", host_of(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_read_as_docker_hub_writes_it() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/alpine:pull".into()),
            ]
        );
        assert_eq!(parse_challenge(r#"Basic realm="basic-realm""#).0, "Basic");
    }

    #[test]
    fn http_is_for_loopback_and_the_insecure_list() {
        let settings = Settings {
            insecure_registries: vec!["lab.test:5000".into()],
            registry_mirrors: vec![],
        };
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "lab.test:5000",
        ] {
            assert!(settings.insecure(host), "{host}");
        }
        for host in [
            "docker.io",
            "10.0.0.1:5000",
            "lab.test:5001",
            "localhost.evil.com",
        ] {
            assert!(!settings.insecure(host), "{host}");
        }
    }

    #[test]
    fn locations_are_joined_to_their_request() {
        assert_eq!(
            join_url("http://a:5000/v2/x", "/v2/x/blobs/uploads/1?s=2"),
            "http://a:5000/v2/x/blobs/uploads/1?s=2"
        );
        assert_eq!(join_url("http://a/v2/", "https://b/c"), "https://b/c");
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
