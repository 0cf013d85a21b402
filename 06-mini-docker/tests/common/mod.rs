//! What every mini-docker test shares: a store of its own (MINI_DOCKER_ROOT in a
//! temp dir), emptied with `rm -f` when the test ends, pass or fail.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use lab_tests::netns::{GET, HOST_IP, Sandbox, fetch};
pub use lab_tests::{
    Learner, Outcome, cgroup_free, native_lane_only, needs_root, open_tempdir, wait_until,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_mini-docker");

pub fn snap(name: &str, text: &str) {
    lab_tests::snap(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

/// Output that depends on the host's cgroup layout, once per CI lane (`NAME` on
/// hybrid hosts, `NAME-v2` on cgroup v2).
pub fn snap_per_lane(name: &str, text: &str) {
    lab_tests::snap_per_lane(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        name,
        text,
    );
}

/// Ids, generated names, times and durations. Table columns are as wide as their
/// widest cell, which a redaction changes: in tables, columns are just three spaces
/// apart.
pub fn redact(text: &str) -> String {
    let redacted = redactor().apply(text);
    let columns = regex::Regex::new(r" {2,}").expect("regex");
    redacted
        .lines()
        .map(
            |line| match line.starts_with("CONTAINER ID") || line.starts_with("[SHORT ID]") {
                true => columns.replace_all(line, "   ").into_owned(),
                false => line.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn redactor() -> lab_tests::Redactor {
    lab_tests::Redactor::default()
        .rule(r"\b[0-9a-f]{64}\b", "[ID]")
        .rule(r"\b[0-9a-f]{12}\b", "[SHORT ID]")
        .rule(r"\bc-[0-9a-f]{6}\b", "c-[ID]")
        // The suite's namespaces have no network: how a lookup of Docker Hub fails
        // depends on the machine's resolver.
        .rule(
            r#"(Get "https://registry-1.docker.io/v2/"): .*"#,
            "$1: [NO NETWORK IN THE TEST'S NAMESPACE]",
        )
        .rule(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "[TIME]")
        .rule(
            r"(Less than a second|\d+ seconds?|About a minute|\d+ minutes)( ago)?",
            "[SINCE]$2",
        )
}

/// A store for one test, and a network namespace that plays the host: whatever
/// a test runs (even a bridge it did not mean to make) stays off the real network.
#[derive(Debug)]
pub struct Docker {
    dir: tempfile::TempDir,
    pub sandbox: Sandbox,
}

impl Default for Docker {
    fn default() -> Self {
        Docker::new()
    }
}

impl Docker {
    pub fn new() -> Docker {
        Docker {
            dir: open_tempdir(),
            sandbox: Sandbox::new(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `mini-docker ...`, as typed (run in the sandbox).
    pub fn md(&self) -> Learner {
        self.sandbox.enter(
            Learner::new(BIN)
                .env("MINI_DOCKER_ROOT", &self.root().to_string_lossy())
                .redact_path(self.dir.path(), "/tmp/lab-XXXXXX"),
        )
    }

    /// The command line of `mini-docker ARGS` in the sandbox, for a test that
    /// needs the process itself (to kill it, say).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("nsenter");
        cmd.arg(format!("--net={}", self.sandbox.host.path()))
            .arg(BIN)
            .args(args)
            .env("MINI_DOCKER_ROOT", self.root());
        cmd
    }

    /// Run it; stdout, stderr and the code.
    pub fn out(&self, args: &[&str]) -> Outcome {
        self.md().args(args).output()
    }

    /// `run -d --name NAME --network none ARGS...` (image and command), which must
    /// start; what it printed (the id).
    pub fn run_detached(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name, "--network", "none"];
        all.extend(args);
        let out = self.out(&all);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout.trim().to_string()
    }

    /// A container's full id, from `inspect`.
    pub fn id(&self, name: &str) -> String {
        let inspect = self.out(&["inspect", name]).stdout;
        inspect
            .split("\"Id\": \"")
            .nth(1)
            .and_then(|s| s.get(..64))
            .unwrap_or_else(|| panic!("no id for {name}: {inspect}"))
            .to_string()
    }

    /// The container directories left in the store.
    pub fn containers(&self) -> Vec<String> {
        let dir = self.root().join("containers");
        match dir.is_dir() {
            true => lab_tests::ls(&dir),
            false => vec![],
        }
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.out(&args);
        }
        // The sandbox's bridge, if a test made one, and its state.
        if std::path::Path::new(&self.network_state()).exists() {
            let _ = self.out(&["network", "rm", "lab0"]);
            let _ = std::fs::remove_dir_all(self.network_state());
        }
    }
}

impl Docker {
    /// Chapter 05's state for the sandbox's namespace.
    pub fn network_state(&self) -> String {
        format!("/run/ch05-network/net-{}", self.sandbox.host.inode())
    }
}

/// The cgroups of container `id` (`/mini-docker/ID` in each hierarchy, or wherever
/// `--cgroup-parent` put them).
pub fn cgroups_of(id: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, name: &str, depth: usize, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() || path.is_symlink() {
                continue;
            }
            if entry.file_name().to_string_lossy() == name {
                found.push(path.display().to_string());
            } else if depth > 0 {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = vec![];
    walk(std::path::Path::new("/sys/fs/cgroup"), id, 5, &mut found);
    found
}

/// A pseudo-terminal that a test types into, as a user would, and reads back: its
/// "screen" is everything the other side wrote.
#[derive(Debug)]
pub struct Terminal {
    user: std::fs::File,
    slave: std::fs::File,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    pub fn new(size: Option<nix::pty::Winsize>) -> Terminal {
        use std::io::Read;
        let pty = nix::pty::openpty(size.as_ref(), None).expect("openpty");
        let user = std::fs::File::from(pty.master);
        let mut reader = user.try_clone().expect("dup");
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shown = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Until EIO: every process holding the slave end is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .expect("the screen")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            user,
            slave: std::fs::File::from(pty.slave),
            screen,
        }
    }

    /// Give `command` this terminal as its stdin, stdout and stderr.
    pub fn attach(&self, command: &mut std::process::Command) {
        let copy = || self.slave.try_clone().expect("dup");
        command.stdin(copy()).stdout(copy()).stderr(copy());
    }

    pub fn screen(&self) -> String {
        self.screen.lock().expect("the screen").clone()
    }

    pub fn type_keys(&mut self, keys: &str) {
        use std::io::Write;
        self.user.write_all(keys.as_bytes()).expect("type");
    }

    /// Wait until `shows` appears on the screen after the last `after` (anywhere,
    /// when `after` is empty).
    pub fn wait_for(&self, after: &str, shows: &str) {
        wait_until(shows, || {
            let screen = self.screen();
            let rest = match after.is_empty() {
                true => Some(screen.as_str()),
                false => screen.rsplit_once(after).map(|(_, rest)| rest),
            };
            rest.is_some_and(|r| r.contains(shows)).then_some(())
        });
    }
}
