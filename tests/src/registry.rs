//! A real registry for tests: Debian's `docker-registry` (distribution v2) serving
//! on port 5000 (127.0.0.1, and any address the test gives the namespace) inside a
//! test's own network namespace, its storage in a temp
//! directory; optionally with token authentication, the tokens coming from a small
//! token server of ours on 127.0.0.1:5001 (RS256 JWTs signed by `openssl`, a key
//! and certificate made for the occasion). Nothing outside the namespace is reached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::netns::Namespace;
use crate::wait_until;

pub const USER: &str = "learner";
pub const PASSWORD: &str = "s3cret";
pub const REGISTRY: &str = "127.0.0.1:5000";
const TOKENS: &str = "127.0.0.1:5001";

/// An HTTP request as a tiny server sees it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status line, headers, body.
pub type Answer = (&'static str, Vec<(String, String)>, Vec<u8>);

/// A one-thread HTTP/1.1 server inside `ns`, one request per connection, until
/// dropped. For the token server, and for registries that misbehave on purpose.
#[derive(Debug)]
pub struct TinyServer {
    stop: Arc<AtomicBool>,
    at: SocketAddr,
    ns: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TinyServer {
    pub fn start(
        ns: &Namespace,
        at: &str,
        handler: impl Fn(&Request) -> Answer + Send + 'static,
    ) -> TinyServer {
        let at: SocketAddr = at.parse().expect("an address");
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let stopping = stop.clone();
        let thread = ns.on_thread(move || {
            let listener = TcpListener::bind(at).expect("bind the tiny server");
            let _ = ready_tx.send(());
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let _ = serve_one(stream, &handler);
                }
            }
        });
        ready.recv().expect("the server listens");
        TinyServer {
            stop,
            at,
            ns: ns.path(),
            thread: Some(thread),
        }
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept with one connection of our own, from inside the namespace.
        let (ns, at) = (std::fs::File::open(&self.ns), self.at);
        let _ = std::thread::spawn(move || {
            if let Ok(ns) = ns {
                let _ = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET);
                let _ = TcpStream::connect(at);
            }
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(stream: TcpStream, handler: &dyn Fn(&Request) -> Answer) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let request = Request {
        method,
        target,
        headers,
    };
    if let Some(n) = request
        .header("content-length")
        .and_then(|n| n.parse::<u64>().ok())
    {
        std::io::copy(&mut reader.by_ref().take(n), &mut std::io::sink())?;
    }
    let (status, headers, body) = handler(&request);
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )?;
    for (k, v) in headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    write!(out, "\r\n")?;
    if request.method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

/// Base64 (standard, or URL-safe without padding for JWTs).
pub fn base64(bytes: &[u8], url: bool) -> String {
    let table: &[u8] = match url {
        false => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new RSA key and a certificate for it, signed by itself.
fn self_signed(key: &Path, cert: &Path, args: &[&str]) {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(args)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl req");
    let why = String::from_utf8_lossy(&made.stderr);
    assert!(made.status.success(), "openssl req: {why}");
}

/// The token server: `GET /token?service=S&scope=repository:NAME:ACTIONS`. Anyone
/// may pull; pushing needs USER:PASSWORD (HTTP Basic); a wrong password is a 401.
fn token_server(ns: &Namespace, dir: &Path) -> TinyServer {
    let key = dir.join("token.key");
    let cert = dir.join("token.pem");
    self_signed(&key, &cert, &["-subj", "/CN=lab-token-server"]);
    let der = openssl(
        &["x509", "-outform", "der", "-in", &cert.to_string_lossy()],
        b"",
    );
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","x5c":["{}"]}}"#,
        base64(&der, false)
    );
    let key = key.to_string_lossy().to_string();
    TinyServer::start(ns, TOKENS, move |request| {
        let deny = |why: &str| -> Answer {
            (
                "401 Unauthorized",
                vec![],
                format!(r#"{{"details":"{why}"}}"#).into_bytes(),
            )
        };
        let basic = format!(
            "Basic {}",
            base64(format!("{USER}:{PASSWORD}").as_bytes(), false)
        );
        let user = match request.header("authorization") {
            None => "",
            Some(given) if given == basic => USER,
            Some(_) => return deny("incorrect username or password"),
        };
        let query = request.target.split_once('?').map_or("", |(_, q)| q);
        let access: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(|s| {
                s.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
            })
            .filter_map(|scope| {
                let mut parts = scope.rsplitn(2, ':');
                let actions = parts.next()?;
                let name = parts.next()?.strip_prefix("repository:")?.to_string();
                let granted: Vec<String> = actions
                    .split(',')
                    .filter(|a| *a == "pull" || !user.is_empty())
                    .map(|a| format!("\"{a}\""))
                    .collect();
                Some(format!(
                    r#"{{"type":"repository","name":"{name}","actions":[{}]}}"#,
                    granted.join(",")
                ))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = format!(
            r#"{{"iss":"lab-token-server","sub":"{user}","aud":"lab-registry","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
            now + 600,
            now - 60,
            std::process::id(),
            access.join(",")
        );
        let signed = format!(
            "{}.{}",
            base64(header.as_bytes(), true),
            base64(claims.as_bytes(), true)
        );
        let signature = openssl(&["dgst", "-sha256", "-sign", &key], signed.as_bytes());
        let token = format!("{signed}.{}", base64(&signature, true));
        (
            "200 OK",
            vec![("Content-Type".into(), "application/json".into())],
            format!(r#"{{"token":"{token}"}}"#).into_bytes(),
        )
    })
}

/// `docker-registry serve` in `ns`, killed (it is ours, by PID) on drop.
#[derive(Debug)]
pub struct LocalRegistry {
    process: Child,
    pub dir: tempfile::TempDir,
    ns: String,
    _tokens: Option<TinyServer>,
}

impl LocalRegistry {
    /// With `tokens`, the registry asks for a bearer token from our token server.
    pub fn start(ns: &Namespace, tokens: bool) -> LocalRegistry {
        LocalRegistry::start_with(ns, tokens, false)
    }

    /// Serving HTTPS only, with a certificate of its own for 127.0.0.1 and
    /// 192.0.2.2 (`dir/registry.pem`), which no root on this machine signed.
    pub fn start_tls(ns: &Namespace) -> LocalRegistry {
        LocalRegistry::start_with(ns, false, true)
    }

    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("registry.pem")
    }

    fn start_with(ns: &Namespace, tokens: bool, tls: bool) -> LocalRegistry {
        let dir = tempfile::Builder::new()
            .prefix("lab-registry-")
            .tempdir()
            .expect("tempdir");
        let tokens = tokens.then(|| token_server(ns, dir.path()));
        let auth = match tokens {
            Some(_) => format!(
                "auth:\n  token:\n    realm: http://{TOKENS}/token\n    service: lab-registry\n    issuer: lab-token-server\n    rootcertbundle: {}\n",
                dir.path().join("token.pem").display()
            ),
            None => String::new(),
        };
        let tls = match tls {
            true => {
                let (key, cert) = (
                    dir.path().join("registry.key"),
                    dir.path().join("registry.pem"),
                );
                self_signed(
                    &key,
                    &cert,
                    &[
                        "-subj",
                        "/CN=lab-registry",
                        "-addext",
                        "subjectAltName=IP:127.0.0.1,IP:192.0.2.2",
                        // A server's certificate, not a CA's (rustls refuses a CA one).
                        "-addext",
                        "basicConstraints=critical,CA:FALSE",
                        "-addext",
                        "extendedKeyUsage=serverAuth",
                    ],
                );
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                )
            }
            false => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 0.0.0.0:5000\n{tls}{auth}",
                dir.path().join("data").display()
            ),
        )
        .expect("write config.yml");
        let process = Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .args(["docker-registry", "serve"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
            .spawn()
            .expect("docker-registry (Debian's package docker-registry)");
        let registry = LocalRegistry {
            process,
            dir,
            ns: ns.path(),
            _tokens: tokens,
        };
        let ns_file = ns.path();
        wait_until("the registry to listen on 127.0.0.1:5000", || {
            let ns_file = ns_file.clone();
            std::thread::spawn(move || {
                let ns = std::fs::File::open(ns_file).ok()?;
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                TcpStream::connect(REGISTRY).ok().map(|_| ())
            })
            .join()
            .ok()
            .flatten()
        });
        registry
    }

    /// `skopeo ARGS` inside the namespace (plain HTTP to the local registry); its stdout.
    pub fn skopeo(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.ns))
            .arg("skopeo")
            .args(args)
            .output()
            .expect("skopeo (Debian's package skopeo)");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where the registry keeps the blob `sha256:HEX` (distribution's filesystem layout).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
