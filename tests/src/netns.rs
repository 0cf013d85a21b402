//! Network namespaces for tests: every network test builds its own "host" (a
//! namespace held open by a sleeping `unshare --net`) and works only inside it, so
//! that the machine's own network is never touched. Other hosts are more
//! namespaces, joined by veth pairs; traffic goes only between them.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::learner::Learner;
use crate::wait_until;

/// The sandbox host's address on its LAN (TEST-NET-1, reserved for documentation:
/// nothing real answers there); its neighbours are 192.0.2.10 and up.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn netns_inode(pid: u32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// A network namespace held open by a sleeping process, killed on drop.
#[derive(Debug)]
pub struct Namespace {
    holder: Child,
    pub pid: u32,
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::new()
    }
}

impl Namespace {
    pub fn new() -> Namespace {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare --net");
        let pid = holder.id();
        let ours = netns_inode(std::process::id());
        wait_until("the new network namespace", || {
            netns_inode(pid).filter(|ino| Some(*ino) != ours)
        });
        let ns = Namespace { holder, pid };
        ns.sh("ip link set lo up");
        ns
    }

    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }

    pub fn inode(&self) -> u64 {
        netns_inode(self.pid).expect("the namespace")
    }

    /// A shell script run inside; panics if it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .args(["sh", "-ec", script])
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `f` on a thread that has entered this namespace (`setns` applies to the
    /// calling thread only, so the test's other threads stay where they are).
    pub fn on_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let ns = std::fs::File::open(self.path()).expect("open netns");
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A namespace that plays the host, and the namespaces that play its neighbours.
#[derive(Debug)]
pub struct Sandbox {
    pub host: Namespace,
    pub neighbours: Vec<Namespace>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            host: Namespace::new(),
            neighbours: vec![],
        }
    }

    /// `learner`, run inside the sandbox host (`nsenter --net`, unshown).
    pub fn enter(&self, learner: Learner) -> Learner {
        // nsenter by its full path: a test may give the program an empty PATH.
        let nsenter = labkit::doctor::Host::real()
            .find_program("nsenter")
            .expect("nsenter (util-linux)");
        learner.wrapped([
            nsenter.into_os_string(),
            format!("--net={}", self.host.path()).into(),
        ])
    }

    /// `program ARGS` inside the sandbox host, in the background.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new("nsenter")
            .arg(format!("--net={}", self.host.path()))
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn")
    }

    /// Another host on the sandbox host's LAN, at 192.0.2.(10+n), the sandbox
    /// host being 192.0.2.2. Its default route goes through the sandbox host when
    /// `via_host` (a client that reaches containers' published ports), not otherwise
    /// ("the outside": it knows nothing of the containers' subnet).
    pub fn add_neighbour(&mut self) -> (Ipv4Addr, usize) {
        let n = self.neighbours.len();
        let ns = Namespace::new();
        let ip = Ipv4Addr::new(192, 0, 2, 10 + n as u8);
        let (ours, theirs) = (format!("lan{n}"), format!("lan{n}peer"));
        let out = Command::new("ip")
            .args(["link", "add", &ours, "netns", &self.host.pid.to_string()])
            .args([
                "type",
                "veth",
                "peer",
                "name",
                &theirs,
                "netns",
                &ns.pid.to_string(),
            ])
            .output()
            .expect("ip link add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if n == 0 {
            self.host.sh("ip link add lan type bridge && ip addr add 192.0.2.2/24 dev lan && ip link set lan up");
        }
        self.host.sh(&format!("ip link set {ours} master lan up"));
        ns.sh(&format!(
            "ip addr add {ip}/24 dev {theirs} && ip link set {theirs} up"
        ));
        self.neighbours.push(ns);
        (ip, n)
    }

    /// The names of the interfaces in the sandbox host.
    pub fn links(&self) -> Vec<String> {
        let text = self.host.sh("ip -o link show");
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        names.sort();
        names
    }

    /// Netfilter rules in the sandbox host that mention `word`.
    pub fn rules_with(&self, word: &str) -> Vec<String> {
        let text = self
            .host
            .sh("iptables -w -t raw -S; iptables -w -t nat -S; iptables -w -S");
        text.lines()
            .filter(|l| l.contains(word))
            .map(str::to_string)
            .collect()
    }
}

/// Connect to `to` from inside `ns`, send `request`, return the whole answer.
pub fn fetch(ns: &Namespace, to: SocketAddr, request: &'static str) -> std::io::Result<String> {
    ns.on_thread(move || {
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(30))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    })
    .join()
    .expect("the client thread")
}

/// Listen on `at` inside `ns` for one connection; the handle gives its source.
pub fn accept_one(
    ns: &Namespace,
    at: SocketAddr,
) -> std::thread::JoinHandle<std::io::Result<SocketAddr>> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let handle = ns.on_thread(move || {
        let listener = TcpListener::bind(at)?;
        listener.set_nonblocking(true)?;
        let _ = ready_tx.send(());
        let deadline = Instant::now() + crate::PATIENCE;
        loop {
            match listener.accept() {
                Ok((_, peer)) => return Ok(peer),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
    });
    let _ = ready.recv();
    handle
}

/// GET / from a busybox httpd.
pub const GET: &str = "GET /index.html HTTP/1.0\r\n\r\n";
