//! What every chapter 05 test shares: the sandbox from the harness (a network
//! namespace that plays the host), and `ch05-network` run inside it.
#![allow(dead_code, unused_imports)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub use lab_tests::netns::{GET, HOST_IP, Namespace, accept_one, fetch};
pub use lab_tests::{Learner, Outcome, needs_root, open_tempdir, wait_until};
pub use lab_tests::{children, comm};

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

/// The harness's sandbox, with chapter 05's state and checks.
#[derive(Debug, Default)]
pub struct Sandbox(pub lab_tests::netns::Sandbox);

impl std::ops::Deref for Sandbox {
    type Target = lab_tests::netns::Sandbox;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Sandbox {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox(lab_tests::netns::Sandbox::new())
    }

    /// `ch05-network ...` inside the sandbox, shown as typed.
    pub fn ch05(&self) -> Learner {
        self.enter(Learner::new(BIN))
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/ch05-network/net-{}", self.host.inode()))
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
        // From here on, dropped (a timeout's panic included) means ended.
        let mut started = Background { tool, pid: 0 };
        let pid = wait_until("the container's first process", || {
            // Ended before its container ran: no use waiting (its message is above).
            if let Ok(Some(status)) = started.tool.try_wait() {
                panic!("ch05-network ended ({status}) before its container ran {comm}");
            }
            children(tool_pid)
                .into_iter()
                .find(|c| self::comm(*c) == comm)
        });
        started.pid = pid;
        started
    }

    /// A container at `ip` of `rootfs` that answers `reply` to whoever connects to
    /// `port` (busybox `nc -l -e echo`), left running in the background.
    pub fn echo_server(&self, rootfs: &str, ip: &str, port: &str, reply: &str) -> Background {
        let server = ["--", "nc", "-l", "-p", port, "-e", "echo", reply];
        let mut args = vec!["run", "--ip", ip, "--rootfs", rootfs];
        args.extend(server);
        self.background(&args, "nc")
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
        lab_tests::end_background(&mut self.tool, self.pid)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.tool.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}
