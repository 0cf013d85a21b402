//! The lab's test harness.
//!
//! - [`Learner`]: run a chapter's binary exactly as a learner types it, and get its
//!   exit code, its streams, and a *transcript* (what a terminal shows) with the
//!   things that change from run to run redacted, ready for an insta snapshot.
//! - [`needs_root!`]: tests run the real kernel as root; without root a test fails,
//!   loudly: a test that did not run never counts as passed. Tests that cannot run
//!   on this host (the other cgroup lane) are listed by `cargo lab test` as not run.
//! - [`holes`]: the exercises, holes cut out of the chapters' code.
//! - [`host_state`]: the host's mounts, links, netfilter rules, cgroups and our
//!   processes, captured before and after a run to prove nothing was left behind.
//! - [`vm`]: `cargo lab vm`, a VM with pure cgroup v2 laid out as systemd does,
//!   for the cgroup v2 lane.

pub mod book_check;
pub mod book_lines;
pub mod holes;
pub mod host_state;
mod learner;
pub mod netns;
pub mod registry;
pub mod vm;

pub use learner::{Learner, Outcome, Redactor, workspace_bin};

/// The test that calls: libtest names each test's thread after it.
fn this_test(fallback: &str) -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map_or_else(|| fallback.to_string(), str::to_string)
}

/// Say loudly that a test did not run here, and why. `cargo lab test` gathers
/// these (through the file named by `LAB_NOT_RUN`) and lists them at the end;
/// anywhere else (plain `cargo test`, `cargo lab check`) nothing would list it, so
/// the test fails instead: a test that did not run never counts as passed.
pub fn not_run(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("{test}: NOT RUN: {why}");
    if std::env::var_os("LAB_NOT_RUN").is_none() {
        panic!("{line} (`cargo lab test` lists such tests as not run instead)");
    }
    // Straight to the descriptor: libtest captures eprintln!, and this must be seen.
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("\n!!! {line}\n\n").as_bytes());
    if let Some(file) = std::env::var_os("LAB_NOT_RUN")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
    {
        // One write: tests running at once append to the same file (O_APPEND).
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// True when this test can go on. Not root, it fails, loudly: a test that did not
/// run must never count as passed. (`cargo lab test` and `cargo lab check` run the
/// tests as root through sudo when you are not root.)
pub fn root_or_explain(test: &str) -> bool {
    if labkit::privilege::is_root() {
        return true;
    }
    panic!(
        "{}: NOT RUN: this test drives the real kernel and needs root. Run the tests \
         with `cargo lab test` or `cargo lab check CH N`: they build as you and run the \
         tests as root through sudo",
        this_test(test)
    );
}

/// Return early from a test unless we are root (see [`root_or_explain`]).
#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::root_or_explain(module_path!()) {
            return;
        }
    };
}

/// True when this host is of the cgroup `lane` the test needs (`"v2"` or
/// `"hybrid"`). Otherwise the test is reported as not run (see [`not_run`]: CI runs
/// it on its other lane) and must return.
pub fn on_lane(test: &str, lane: &str) -> bool {
    let here = cgroup_lane();
    if here == lane {
        return true;
    }
    not_run(
        &this_test(test),
        &format!(
            "it needs a cgroup {lane} host and this one is {here} (CI runs it on its {lane} lane)"
        ),
    );
    false
}

/// Return early from a test unless the host is of this cgroup lane (see [`on_lane`]).
#[macro_export]
macro_rules! only_on_lane {
    ($lane:expr) => {
        if !$crate::on_lane(module_path!(), $lane) {
            return;
        }
    };
}

/// True unless this is the emulated cgroup v2 lane (`LAB_EMULATED`: `cargo lab vm`
/// without KVM). A test of a chapter that touches no cgroup (05's network) learns
/// nothing new there, at a dozen times the cost: it is reported as not run, and runs
/// on the native lane. (With KVM, `cargo lab vm` runs it.)
pub fn off_the_emulated_lane(test: &str) -> bool {
    native_lane_only(
        test,
        "it touches no cgroup, and the emulated cgroup v2 lane leaves it to the native \
         lane, to keep CI within 30 minutes (try_it.rs and doctor.rs still run here)",
    )
}

/// True unless this is the emulated cgroup v2 lane, where the test is reported as not
/// run, for `why`: what it does with cgroups, another test does there already.
pub fn native_lane_only(test: &str, why: &str) -> bool {
    if std::env::var_os("LAB_EMULATED").is_none() {
        return true;
    }
    not_run(&this_test(test), why);
    false
}

/// Return early from a test, reported as not run with `why`, on the emulated cgroup
/// v2 lane (see [`native_lane_only`]).
#[macro_export]
macro_rules! native_lane_only {
    ($why:expr) => {
        if !$crate::native_lane_only(module_path!(), $why) {
            return;
        }
    };
}

/// Return early from a test, reported as not run, on the emulated cgroup v2 lane
/// (see [`off_the_emulated_lane`]).
#[macro_export]
macro_rules! cgroup_free {
    () => {
        if !$crate::off_the_emulated_lane(module_path!()) {
            return;
        }
    };
}

/// How many times to try a race that a test repeats `n` times natively. Under
/// emulation (`cargo lab vm` without KVM sets `LAB_EMULATED`), each try takes tens of
/// times longer, and the window it races over is as much wider: an eighth of the
/// tries, at least 5, keeps the lane within CI's time and the race as likely (the
/// native lane tries all `n`).
pub fn tries(n: usize) -> usize {
    match std::env::var_os("LAB_EMULATED") {
        Some(_) => (n / 8).max(5).min(n),
        None => n,
    }
}

/// How long a test waits for an event before it gives up: long, because machines
/// may be loaded or emulated (a CI lane runs under qemu's TCG, many times slower),
/// and the bound only turns a hang into a failure; success never waits for it.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Every path under `dir` (relative), to show that a failed command wrote nothing.
pub fn tree(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path.clone());
            }
            found.insert(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
        }
    }
    found
}

/// A temp dir `/tmp/lab-XXXXXX` that an unprivileged user can enter (tempfile makes
/// them 0700). Always in /tmp, whatever TMPDIR says, so that its path has the same
/// length everywhere and redacted transcripts line up the same.
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("lab-")
        .rand_bytes(6)
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Snapshot a transcript as `DIR/NAME.snap`, with no expression in the header so
/// that the book can include the body: it starts on line 4. Each chapter passes its
/// own `tests/snapshots` directory (an absolute path).
pub fn snap(dir: &str, name: &str, text: &str) {
    insta::with_settings!({ omit_expression => true, prepend_module_to_snapshot => false, snapshot_path => dir }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The kind of cgroup host this is, as CI's two lanes name them: `v2` (one cgroup2
/// tree at /sys/fs/cgroup, as systemd laptops have), `hybrid` (v1 controllers plus
/// a cgroup2 mount), `v1`.
pub fn cgroup_lane() -> &'static str {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let fstype_at = |point: Option<&str>| {
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-");
            let fstype = dash.and_then(|d| f.get(d + 1)).copied();
            fstype == Some("cgroup2") && point.is_none_or(|p| f.get(4) == Some(&p))
        })
    };
    match (fstype_at(Some("/sys/fs/cgroup")), fstype_at(None)) {
        (true, _) => "v2",
        (false, true) => "hybrid",
        (false, false) => "v1",
    }
}

/// Snapshot output that depends on the host's cgroup layout once per CI lane:
/// `NAME` on hybrid hosts, `NAME-v2` on cgroup v2 hosts. On a v1-only host (no
/// lane) it is checked without a snapshot, and says so.
pub fn snap_per_lane(dir: &str, name: &str, text: &str) {
    match cgroup_lane() {
        "hybrid" => snap(dir, name, text),
        "v2" => snap(dir, &format!("{name}-v2"), text),
        lane => {
            eprintln!("{name}: not snapshotted on a {lane} host (CI's lanes are hybrid and v2)")
        }
    }
}

/// The names in a directory, sorted: what `ls` prints.
pub fn ls(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Poll, bounded by [`PATIENCE`], until `check` gives a value: for tests that watch a
/// process from outside (a container starting, a counter moving), never for timing.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// End a tool a test started in the background, and wait for it: through its
/// container's first process `first` (a PID of ours; the tool then cleans up as it
/// does after any exit), or, when that never appeared (0), the tool's children and
/// the tool itself. Never `kill(0)`: that is the test's own process group.
pub fn end_background(tool: &mut std::process::Child, first: u32) -> i32 {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let victims = match first {
        0 => {
            let mut all = children(tool.id());
            all.push(tool.id());
            all
        }
        pid => vec![pid],
    };
    for pid in victims.into_iter().filter(|p| *p > 0) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    tool.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1)
}

/// The whole disk a path is on, as `/dev/NAME` (the kernel throttles disks, not
/// partitions); `None` when it is on no disk (tmpfs, overlay, 9p).
pub fn whole_disk_of(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let sys = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    let real = std::fs::canonicalize(sys).ok()?;
    let disk = match real.join("partition").exists() {
        true => real.parent()?.to_path_buf(),
        false => real,
    };
    let node = format!("/dev/{}", disk.file_name()?.to_string_lossy());
    std::path::Path::new(&node).exists().then_some(node)
}

/// The children of process `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// The command name of process `pid`.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Remove cgroup `name` from every hierarchy, what is in it first.
pub fn remove_cgroups(name: &str) {
    fn below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut all = vec![];
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                all.extend(below(&entry.path()));
                all.push(entry.path());
            }
        }
        all
    }
    let base = std::path::Path::new("/sys/fs/cgroup");
    let roots = match base.join("cgroup.procs").exists() {
        true => vec![base.to_path_buf()],
        false => (std::fs::read_dir(base).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|d| d.join("cgroup.procs").exists())
            .collect(),
    };
    for root in roots {
        let top = root.join(name);
        if top.exists() {
            for dir in below(&top).into_iter().chain([top]) {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}
