//! What every chapter 05 test shares: a network namespace that plays the host.
//!
//! No test touches the machine's own network. Each one makes a namespace (held
//! open by a sleeping `unshare --net`), runs `ch05-network` inside it with
//! `nsenter --net`, and, when it needs other hosts, makes more namespaces joined to
//! it by veth pairs. Traffic goes only between these namespaces.
#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use lab_tests::{Learner, Outcome, needs_root, open_tempdir, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_ch05-network");

pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

/// What changes from run to run in chapter 05's output.
pub fn redact(text: &str) -> String {
    lab_tests::Redactor::default()
        .rule(r"netns \d+", "netns [PID]")
        .rule(r"nsenter -t \d+", "nsenter -t [PID]")
        .rule(r"process \d+", "process [PID]")
        .rule(r"pid=\d+", "pid=[PID]")
        .rule(r"net-\d+", "net-[INODE]")
        .rule(r"/tmp/ch05-\w+", "/tmp/ch05-XXXXXX")
        .rule(r"/tmp/lab-\w+", "/tmp/lab-XXXXXX")
        .apply(text)
}

/// A busybox rootfs (chapter 01's library) with a web page in /www.
pub fn rootfs() -> (tempfile::TempDir, PathBuf) {
    labkit::narrate::set_quiet(true);
    let tmp = open_tempdir();
    let rootfs = tmp.path().join("rootfs");
    let options = ch01_chroot::rootfs::Options {
        source: Some(ch01_chroot::rootfs::Source::Busybox),
        force: false,
        add: vec![],
    };
    ch01_chroot::rootfs::build(&rootfs, &options)
        .expect("a busybox rootfs (apt-get install busybox-static)");
    std::fs::create_dir(rootfs.join("www")).expect("mkdir www");
    std::fs::write(rootfs.join("www/index.html"), "hello from the container\n").expect("page");
    (tmp, rootfs)
}

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

/// The sandbox: a namespace that plays the host, and its state directory.
#[derive(Debug)]
pub struct Sandbox {
    pub host: Namespace,
    /// Other hosts, joined to this one: see `add_neighbour`.
    pub neighbours: Vec<Namespace>,
}

/// The sandbox host's address on its LAN, and its neighbours' (TEST-NET-1,
/// reserved for documentation: nothing real answers there).
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            host: Namespace::new(),
            neighbours: vec![],
        }
    }

    /// `ch05-network ...` inside the sandbox, shown as typed.
    pub fn ch05(&self) -> Learner {
        // nsenter by its full path: a test may give the tool an empty PATH.
        let nsenter = labkit::doctor::Host::real()
            .find_program("nsenter")
            .expect("nsenter (util-linux)");
        Learner::new(BIN).wrapped([
            nsenter.into_os_string(),
            format!("--net={}", self.host.path()).into(),
        ])
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/ch05-network/net-{}", self.host.inode()))
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

    /// A `ch05-network run` left running in the background, and its container's
    /// first process (a PID of ours) once that runs `comm`. Killed on drop.
    pub fn background(&self, args: &[&str], comm: &str) -> Background {
        let tool = Command::new("nsenter")
            .arg(format!("--net={}", self.host.path()))
            .arg(BIN)
            .arg("-q")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let tool_pid = tool.id();
        let pid = wait_until("the container's first process", || {
            children(tool_pid)
                .into_iter()
                .find(|c| self::comm(*c) == comm)
        });
        Background { tool, pid }
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

    /// The rules `ch05-network` left, in both tables.
    pub fn our_rules(&self) -> Vec<String> {
        let text = self.host.sh("iptables -w -t nat -S; iptables -w -S");
        text.lines()
            .filter(|l| l.contains("ch05-network") || l.contains("CH05"))
            .map(str::to_string)
            .collect()
    }

    /// The leases of a bridge.
    pub fn leases(&self, bridge: &str) -> Vec<String> {
        let dir = self.state_dir().join(bridge).join("leases");
        match dir.is_dir() {
            true => lab_tests::ls(&dir),
            false => vec![],
        }
    }

    /// After a test: no veth, no published port rule, no lease is left.
    pub fn assert_clean(&self, bridge: &str) {
        // The kernel removes a container's veth with its namespace, in the background.
        wait_until("the veths to go with their namespaces", || {
            (!self.links().iter().any(|l| l.starts_with("veth"))).then_some(())
        });
        let dnat: Vec<String> = self
            .our_rules()
            .into_iter()
            .filter(|r| r.contains("DNAT") || r.contains("--dport"))
            .collect();
        assert_eq!(dnat, Vec::<String>::new(), "published port rules left");
        assert_eq!(self.leases(bridge), Vec::<String>::new(), "leases left");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Take down every bridge the test made, then forget the namespace's state
        // (the namespace goes with the holder: its state would mean nothing).
        for entry in std::fs::read_dir(self.state_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().is_dir() {
                let _ = Command::new("nsenter")
                    .arg(format!("--net={}", self.host.path()))
                    .args([BIN, "-q", "down", "--bridge"])
                    .arg(entry.file_name())
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(self.state_dir());
    }
}

pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A background `run`: its container is killed on drop, and the tool, which then
/// cleans up as it does after any exit, is waited for.
#[derive(Debug)]
pub struct Background {
    pub tool: Child,
    pub pid: u32,
}

impl Background {
    /// End the container and wait for `run` to finish cleaning up.
    pub fn stop(&mut self) -> i32 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        self.tool
            .wait()
            .map(|s| s.code().unwrap_or(-1))
            .unwrap_or(-1)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.tool.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Connect to `to` from inside `ns`, send `request`, return the whole answer.
pub fn fetch(ns: &Namespace, to: SocketAddr, request: &'static str) -> std::io::Result<String> {
    ns.on_thread(move || {
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
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
        let deadline = Instant::now() + Duration::from_secs(10);
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
