//! `cargo lab bench`: how fast `mini-docker run` starts a container, next to the
//! tools people would use instead, all measured in one run on this machine.
//!
//! Every tool runs `true` in a container of the same busybox rootfs (chapter 01's
//! builder), and removes it. Rounds are interleaved (each round runs every tool
//! once), so that a slow moment of the machine hits every tool alike. The whole
//! benchmark runs in a network namespace of its own: bridge mode never touches the
//! host's network. It writes `bench/results.md` and `book/src/images/bench.svg` on a
//! hybrid host, `bench/results-v2.md` and `book/src/images/bench-v2.svg` on cgroup v2
//! (`cargo lab vm -- cargo lab bench`): the book shows both.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PODMAN_IMAGE: &str = "localhost/lab-bench-busybox";
/// podman's containers (and conmon) go in this cgroup, in every hierarchy.
const PODMAN_CGROUP: &str = "lab-bench-podman";

/// One thing to measure: a name, and the command line of run number `n` (run in
/// the mount namespace `mount_ns`, if it has one).
struct Tool {
    name: String,
    argv: Box<dyn Fn(usize) -> Vec<String>>,
    mount_ns: Option<std::rc::Rc<OwnedFd>>,
    /// Timed in rounds of its own, after the others: what it leaves running when it
    /// returns (podman's cleanup, started by conmon) would slow the tools after it.
    apart: bool,
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn run_quiet(argv: &[String], env: &[(&str, &Path)]) -> Result<(), String> {
    run_quiet_in(argv, env, None)
}

/// `run_quiet`, the program made in mount namespace `ns` (setns between fork and
/// exec: no program of ours in between, nothing added to what is measured).
fn run_quiet_in(
    argv: &[String],
    env: &[(&str, &Path)],
    ns: Option<&OwnedFd>,
) -> Result<(), String> {
    let mut cmd = Command::new(&argv[0]);
    if let Some(ns) = ns {
        let fd = ns.as_raw_fd();
        // SAFETY: setns in the child, between fork and exec; it touches no memory.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                match libc::setns(fd, libc::CLONE_NEWNS) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
    }
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// Median, min and max, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let median = match ms.len() % 2 {
        1 => ms[ms.len() / 2],
        _ => (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0,
    };
    Stats {
        median,
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

fn which(name: &str) -> Option<PathBuf> {
    labkit::doctor::Host::real().find_program(name)
}

/// runc and crun from the distribution's packages, when they are missing and
/// apt is there (the benchmark's only download; the containers need none).
fn install_runtimes() {
    let missing: Vec<&str> = ["runc", "crun"]
        .into_iter()
        .filter(|r| which(r).is_none())
        .collect();
    if missing.is_empty() || which("apt-get").is_none() {
        return;
    }
    eprintln!(
        "cargo lab bench: installing {} with apt-get",
        missing.join(" ")
    );
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
}

fn timed(tool: &Tool, n: usize, root: &Path) -> Option<f64> {
    let argv = (tool.argv)(n);
    let ns = tool.mount_ns.as_deref();
    let start = Instant::now();
    run_quiet_in(&argv, &[("MINI_DOCKER_ROOT", root)], ns).ok()?;
    Some(start.elapsed().as_secs_f64() * 1000.0)
}

/// A mount namespace for crun and podman: tmpfs over /run and /var/lib, where they
/// keep their state and images by default (gone with the namespace), and on a
/// hybrid host without `/sys/fs/cgroup/unified` (crun refuses a hybrid host:
/// "cgroups in hybrid mode not supported"). Held by a descriptor; the process of
/// ours that made it is gone by then. Also: whether the v2 mount was hidden.
fn contained() -> Result<(OwnedFd, bool), String> {
    use std::io::BufRead;
    let hybrid = Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    let script = "{ [ ! -e /sys/fs/cgroup/unified/cgroup.procs ] || umount /sys/fs/cgroup/unified; } \
        && mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib \
        && echo ready && exec sleep 1000";
    let mut maker = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("unshare: {e}"))?;
    let mut line = String::new();
    let said = (maker.stdout.take()).map(|out| std::io::BufReader::new(out).read_line(&mut line));
    let ns = match (said, line.trim()) {
        (Some(Ok(_)), "ready") => std::fs::File::open(format!("/proc/{}/ns/mnt", maker.id()))
            .map(OwnedFd::from)
            .map_err(|e| e.to_string()),
        _ => Err("could not make a mount namespace for crun and podman".into()),
    };
    let _ = maker.kill();
    let _ = maker.wait();
    ns.map(|ns| (ns, hybrid))
}

#[derive(Debug)]
pub struct Bench {
    pub rounds: usize,
    pub bin: PathBuf,
    pub repo: PathBuf,
    /// Another build of mini-docker to measure in the same rounds (`--against
    /// LABEL=PATH`): an earlier commit, or an exercise's solution.
    pub against: Option<(String, PathBuf)>,
}

impl Bench {
    fn md(&self, args: &str) -> Vec<String> {
        let mut argv = vec![self.bin.join("mini-docker").to_string_lossy().into_owned()];
        argv.extend(words(args));
        argv
    }

    pub fn run(&self) -> Result<String, String> {
        install_runtimes();
        // runc and crun switch on every controller there is, from the v2 root down to
        // their containers' groups, and leave them on: we switch off again what they
        // added, deepest groups first (a parent may not take back what a child hands on).
        let before = handed_on(Path::new("/sys/fs/cgroup"));
        let outcome = self.run_in_a_namespace();
        let mut after = handed_on(Path::new("/sys/fs/cgroup"));
        after.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.components().count()));
        for (dir, controllers) in after {
            let had = before
                .iter()
                .find(|(d, _)| *d == dir)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            for added in controllers.iter().filter(|c| !had.contains(c)) {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("-{added}"));
            }
        }
        outcome
    }

    fn run_in_a_namespace(&self) -> Result<String, String> {
        // A network namespace of our own, inherited by everything we start.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("unshare(CLONE_NEWNET): {}", e.desc()))?;
        run_quiet(&words("ip link set lo up"), &[])?;
        let dir = tempfile::Builder::new()
            .prefix("lab-bench-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let root = dir.path().join("store");
        let result = self.measure(dir.path(), &root);
        // Whatever happened: no container, bridge, image or state left (podman's
        // store is in `dir`, its state in a namespace that is gone; its cgroups:)
        lab_tests::remove_cgroups(PODMAN_CGROUP);
        let _ = run_quiet(&self.md("container prune"), &[("MINI_DOCKER_ROOT", &root)]);
        let _ = run_quiet(&self.md("network rm lab0"), &[("MINI_DOCKER_ROOT", &root)]);
        result
    }

    fn tools(&self, dir: &Path, skipped: &mut Vec<(String, String)>) -> Vec<Tool> {
        let mut tools: Vec<Tool> = Vec::new();
        let none = self.md("run --rm --network none busybox true");
        let bridge = self.md("run --rm busybox true");
        tools.push(Tool {
            name: "mini-docker --network none".into(),
            argv: Box::new(move |_| none.clone()),
            mount_ns: None,
            apart: false,
        });
        tools.push(Tool {
            name: "mini-docker (bridge)".into(),
            argv: Box::new(move |_| bridge.clone()),
            mount_ns: None,
            apart: false,
        });
        // The same container, the monitor driving mini-runc's command line.
        let shim = self.md(&format!(
            "--runtime {} run --rm --network none busybox true",
            self.bin.join("mini-runc").display()
        ));
        tools.push(Tool {
            name: "mini-docker --runtime mini-runc --network none".into(),
            argv: Box::new(move |_| shim.clone()),
            mount_ns: None,
            apart: false,
        });
        if let Some((label, program)) = &self.against {
            // Its own store: an earlier build may keep another layout.
            let store = dir.join("against-store");
            let argv: Vec<String> = [
                "env".to_string(),
                format!("MINI_DOCKER_ROOT={}", store.display()),
                program.to_string_lossy().into_owned(),
            ]
            .into_iter()
            .chain(words("run --rm --network none busybox true"))
            .collect();
            let name = format!("mini-docker {label} --network none");
            match run_quiet(&argv, &[]) {
                Ok(()) => tools.push(Tool {
                    name,
                    argv: Box::new(move |_| argv.clone()),
                    mount_ns: None,
                    apart: false,
                }),
                Err(e) => {
                    // Its last word says why (the lines before are its narration).
                    let why = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    skipped.push((name, format!("cannot run here: {}", why.trim())));
                }
            }
        }
        // runc, crun and mini-runc: an OCI bundle of the same rootfs, `runc spec`'s
        // defaults (pid, net, ipc, uts, mount namespaces), running `true`.
        let bundle = dir.join("bundle");
        let made = run_quiet(
            &[
                self.bin.join("ch01-chroot").to_string_lossy().into_owned(),
                "-q".into(),
                "rootfs".into(),
                bundle.join("rootfs").to_string_lossy().into_owned(),
            ],
            &[],
        );
        let contained = contained().map(|(ns, hybrid)| (std::rc::Rc::new(ns), hybrid));
        if let Err(e) = &contained {
            skipped.push(("crun, podman".into(), e.clone()));
        }
        let contained = contained.ok();
        let hybrid = contained.as_ref().is_some_and(|(_, hybrid)| *hybrid);
        for runtime in ["runc", "crun", "mini-runc"] {
            let mount_ns = (runtime == "crun")
                .then(|| contained.as_ref().map(|(ns, _)| ns.clone()))
                .flatten();
            let found = match runtime {
                "mini-runc" => Some(self.bin.join("mini-runc")).filter(|p| p.exists()),
                _ => which(runtime),
            };
            let Some(program) = found else {
                skipped.push((
                    runtime.into(),
                    "not installed (apt-get install runc crun)".into(),
                ));
                continue;
            };
            let spec = (|| -> Result<(), String> {
                made.clone()?;
                if !bundle.join("config.json").exists() {
                    let out = Command::new(which("runc").unwrap_or(program.clone()))
                        .args(["spec", "--bundle"])
                        .arg(&bundle)
                        .output()
                        .map_err(|e| e.to_string())?;
                    if !out.status.success() {
                        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                    let path = bundle.join("config.json");
                    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                    let mut config: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    config["process"]["terminal"] = false.into();
                    config["process"]["args"] = serde_json::json!(["true"]);
                    std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
                }
                Ok(())
            })();
            if let Err(e) = spec {
                skipped.push((runtime.into(), e));
                continue;
            }
            let program = program.to_string_lossy().into_owned();
            let bundle = bundle.to_string_lossy().into_owned();
            let name = runtime.to_string();
            let argv = move |n: usize| {
                vec![
                    program.clone(),
                    "run".into(),
                    "--bundle".into(),
                    bundle.clone(),
                    format!("bench-{name}-{n}"),
                ]
            };
            match run_quiet_in(&argv(usize::MAX), &[], mount_ns.as_deref()) {
                Ok(()) => tools.push(Tool {
                    name: match runtime == "crun" && hybrid {
                        true => format!("{runtime} (without the v2 mount)"),
                        false => runtime.into(),
                    },
                    argv: Box::new(argv),
                    mount_ns,
                    apart: false,
                }),
                Err(e) => skipped.push((runtime.into(), format!("cannot run here: {e}"))),
            }
        }
        match (which("podman"), contained) {
            (None, _) => skipped.push(("podman".into(), "not installed".into())),
            (Some(_), None) => {}
            (Some(podman), Some((ns, _))) => match self.podman(&podman, dir, &ns) {
                Ok(argv) => tools.push(Tool {
                    name: "podman (crun, conmon; timed apart)".into(),
                    argv: Box::new(move |_| argv.clone()),
                    mount_ns: Some(ns),
                    apart: true,
                }),
                Err(e) => skipped.push(("podman".into(), format!("cannot run here: {e}"))),
            },
        }
        let floor = words("unshare --fork --pid --mount --uts --ipc --net true");
        tools.push(Tool {
            name: "floor: unshare (no rootfs, no cgroup)".into(),
            argv: Box::new(move |_| floor.clone()),
            mount_ns: None,
            apart: false,
        });
        tools
    }

    /// podman: the same rootfs imported as an image, in a store of the bench's own,
    /// cgroupfs (no systemd needed), no network, its cgroups under PODMAN_CGROUP
    /// (removed at the end). Its containers.conf gives the ulimits this sandbox
    /// allows, and keeps its temporary files in `dir`.
    fn podman(&self, podman: &Path, dir: &Path, ns: &OwnedFd) -> Result<Vec<String>, String> {
        let d = dir.display();
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 events_logfile_path = \"{d}/podman-events.log\"\ntmp_dir = \"{d}/podman-tmp\"\n\
                 [network]\nnetwork_config_dir = \"{d}/podman-net\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        // SAFETY: the bench is single-threaded; podman is the only reader.
        unsafe { std::env::set_var("CONTAINERS_CONF", &conf) };
        let tar = dir.join("rootfs.tar");
        let rootfs = dir.join("bundle/rootfs");
        run_quiet(
            &words(&format!(
                "tar -C {} -cf {} .",
                rootfs.display(),
                tar.display()
            )),
            &[],
        )?;
        let podman = format!(
            "{} --root {d}/podman --runroot {d}/podman-run",
            podman.display()
        );
        let import = format!("{podman} import -q {} {PODMAN_IMAGE}", tar.display());
        run_quiet_in(&words(&import), &[], Some(ns))?;
        let run = format!(
            "{podman} run --rm --network none --cgroup-parent /{PODMAN_CGROUP} {PODMAN_IMAGE} true"
        );
        run_quiet_in(&words(&run), &[], Some(ns)).map(|()| words(&run))
    }

    fn measure(&self, dir: &Path, root: &Path) -> Result<String, String> {
        // The image and the bridge first: made once, not measured.
        run_quiet(
            &self.md("run --rm busybox true"),
            &[("MINI_DOCKER_ROOT", root)],
        )?;
        let mut skipped = Vec::new();
        let tools = self.tools(dir, &mut skipped);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
        let warmup = 5;
        for round in 0..self.rounds + warmup {
            // Each round starts with the next tool: what one tool's run leaves
            // behind (warm caches, or the kernel's cgroup locks in their slow
            // mode) falls on every tool alike.
            for k in 0..tools.len() {
                let i = (round + k) % tools.len();
                let tool = &tools[i];
                if tool.apart {
                    continue;
                }
                if let Some(ms) = timed(tool, round, root)
                    && round >= warmup
                {
                    times[i].push(ms);
                }
            }
        }
        for (i, tool) in tools.iter().enumerate().filter(|(_, t)| t.apart) {
            for round in 0..self.rounds + warmup {
                if let Some(ms) = timed(tool, round, root)
                    && round >= warmup
                {
                    times[i].push(ms);
                }
            }
        }
        let results: Vec<(String, Stats)> = tools
            .iter()
            .zip(times)
            .filter(|(_, t)| !t.is_empty())
            .map(|(tool, t)| (tool.name.clone(), stats(t)))
            .collect();
        let scaling = self.scaling(root)?;
        let breakdown = self.breakdown(root)?;
        let report = report(&results, &skipped, &scaling, &breakdown, self.rounds);
        let (results_file, chart_file) = outputs();
        std::fs::write(self.repo.join(results_file), &report).map_err(|e| e.to_string())?;
        std::fs::write(self.repo.join(chart_file), chart(&results)).map_err(|e| e.to_string())?;
        Ok(report)
    }

    /// Start latency with 0, 10, 50, 100 containers running; the monitors' memory;
    /// 50 started at once.
    fn scaling(&self, root: &Path) -> Result<Scaling, String> {
        let env = [("MINI_DOCKER_ROOT", root)];
        let probe = self.md("run --rm --network none busybox true");
        let probe = Tool {
            name: "probe".into(),
            argv: Box::new(move |_| probe.clone()),
            mount_ns: None,
            apart: false,
        };
        let mut latency = Vec::new();
        let mut running = 0;
        for level in [0, 10, 50, 100] {
            while running < level {
                run_quiet(&self.md("run -d --network none busybox sleep 3600"), &env)?;
                running += 1;
            }
            let ms: Vec<f64> = (0..20).filter_map(|n| timed(&probe, n, root)).collect();
            latency.push((level, stats(ms)));
        }
        let pss = self.monitor_pss(root);
        self.remove_all(root)?;
        // 50 at once.
        let start = Instant::now();
        let starts: Vec<_> = (0..50)
            .map(|_| {
                let argv = self.md("run -d --network none busybox sleep 3600");
                Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("MINI_DOCKER_ROOT", root)
                    .stdout(Stdio::null())
                    .spawn()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let ok = starts
            .into_iter()
            .filter_map(|mut c| c.wait().ok())
            .filter(|s| s.success())
            .count();
        let parallel = (start.elapsed(), ok);
        self.remove_all(root)?;
        Ok(Scaling {
            latency,
            pss,
            parallel,
        })
    }

    fn ids(&self, root: &Path) -> Vec<String> {
        let argv = self.md("ps -aq");
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("MINI_DOCKER_ROOT", root)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remove_all(&self, root: &Path) -> Result<(), String> {
        let ids = self.ids(root);
        for chunk in ids.chunks(25) {
            let mut argv = self.md("rm -f");
            argv.extend(chunk.iter().cloned());
            run_quiet(&argv, &[("MINI_DOCKER_ROOT", root)])?;
        }
        Ok(())
    }

    /// Average PSS of the running containers' monitors, in KiB.
    fn monitor_pss(&self, root: &Path) -> Option<f64> {
        let mut argv = self.md("inspect");
        argv.extend(self.ids(root));
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("MINI_DOCKER_ROOT", root)
            .output()
            .ok()?;
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let pss: Vec<f64> = all
            .as_array()?
            .iter()
            .filter_map(|c| c["State"]["MonitorPid"].as_i64())
            .filter_map(|pid| pss_kib(pid as i32))
            .collect();
        (!pss.is_empty()).then(|| pss.iter().sum::<f64>() / pss.len() as f64)
    }

    /// The monitor's own account of where a start's time goes.
    fn breakdown(&self, root: &Path) -> Result<Vec<(String, f64)>, String> {
        let mut sums: Vec<(String, Vec<f64>)> = Vec::new();
        for mode in ["--network none", ""] {
            for _ in 0..20 {
                let argv = self.md(&format!("run -d {mode} busybox true"));
                let out = Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("MINI_DOCKER_ROOT", root)
                    .output()
                    .map_err(|e| e.to_string())?;
                let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let inspect = self.md(&format!("inspect {id}"));
                let out = Command::new(&inspect[0])
                    .args(&inspect[1..])
                    .env("MINI_DOCKER_ROOT", root)
                    .output()
                    .map_err(|e| e.to_string())?;
                let value: serde_json::Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
                for phase in value[0]["State"]["StartTimings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let step = phase["Step"].as_str().unwrap_or("?").to_string();
                    let ms = phase["Ms"].as_f64().unwrap_or(0.0);
                    match sums.iter_mut().find(|(s, _)| *s == step) {
                        Some((_, v)) => v.push(ms),
                        None => sums.push((step, vec![ms])),
                    }
                }
            }
            self.remove_all(root)?;
        }
        Ok(sums
            .into_iter()
            .map(|(s, v)| (s, stats(v).median))
            .collect())
    }
}

/// What every v2 group beneath `dir` hands on to its children.
fn handed_on(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut all = vec![];
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.subtree_control")) {
        all.push((dir.to_path_buf(), words(&text)));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            all.extend(handed_on(&entry.path()));
        }
    }
    all
}

/// Where this host's results go: one pair of files per cgroup lane.
pub fn outputs() -> (String, String) {
    let suffix = match lab_tests::cgroup_lane() {
        "v2" => "-v2",
        _ => "",
    };
    (
        format!("bench/results{suffix}.md"),
        format!("book/src/images/bench{suffix}.svg"),
    )
}

fn pss_kib(pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug)]
pub struct Scaling {
    latency: Vec<(usize, Stats)>,
    pss: Option<f64>,
    parallel: (Duration, usize),
}

fn report(
    results: &[(String, Stats)],
    skipped: &[(String, String)],
    scaling: &Scaling,
    breakdown: &[(String, f64)],
    rounds: usize,
) -> String {
    let base = results.first().map_or(1.0, |(_, s)| s.median);
    let mut out = format!(
        "Written by `cargo lab bench` ({rounds} interleaved rounds after 5 warm-up rounds, \
         each starting with the next tool; each command runs `true` in a container of the \
         same busybox rootfs and removes it).\n\n\
         | command | median | min | max | median / mini-docker's |\n|---|---|---|---|---|\n"
    );
    for (name, s) in results {
        out.push_str(&format!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}x |\n",
            s.median,
            s.min,
            s.max,
            s.median / base
        ));
    }
    for (name, why) in skipped {
        out.push_str(&format!("| {name} | not measured: {why} | | | |\n"));
    }
    out.push_str("\n**With containers already running** (`run --rm --network none busybox true`, 20 runs each):\n\n| running | median | min | max | vs none running |\n|---|---|---|---|---|\n");
    let idle = scaling.latency.first().map_or(1.0, |(_, s)| s.median);
    for (level, s) in &scaling.latency {
        out.push_str(&format!(
            "| {level} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}x |\n",
            s.median,
            s.min,
            s.max,
            s.median / idle
        ));
    }
    out.push_str(&format!(
        "\n**Memory per idle container**: its monitor's PSS, {} (podman's conmon: only where podman runs; see above).\n\n\
         **50 containers started at once** (`run -d`): {:.2} s for all, {} of 50 started.\n",
        scaling.pss.map_or("not measured".into(), |k| format!("{k:.0} KiB on average")),
        scaling.parallel.0.as_secs_f64(),
        scaling.parallel.1
    ));
    out.push_str("\n**Where the time goes**, as the monitor records it (`inspect`'s `StartTimings`, median of 20 starts with each network mode, one line per step):\n\n| step | median |\n|---|---|\n");
    for (step, ms) in breakdown {
        out.push_str(&format!("| {step} | {ms:.2} ms |\n"));
    }
    out
}

/// A horizontal bar chart of the medians, as SVG.
fn chart(results: &[(String, Stats)]) -> String {
    let max = results
        .iter()
        .map(|(_, s)| s.max.min(s.median * 3.0))
        .fold(1.0_f64, f64::max);
    let (left, width, row) = (300.0, 500.0, 36.0);
    let height = 50.0 + row * results.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"{height}\" viewBox=\"0 0 860 {height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <title>Start a container that runs true, and remove it: median (bar) and min-max (line)</title>\n\
         <rect width=\"860\" height=\"{height}\" fill=\"#ffffff\"/>\n\
         <text x=\"20\" y=\"24\" font-weight=\"bold\">run true, then remove (ms; bar: median, line: min to max)</text>\n"
    );
    for (i, (name, s)) in results.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let scale = |v: f64| left + width * v.min(max) / max;
        let colour = if name.starts_with("mini-docker") {
            "#7fb8e6"
        } else {
            "#c9c9c9"
        };
        svg.push_str(&format!(
            "<text x=\"20\" y=\"{:.0}\">{name}</text>\n\
             <rect x=\"{left}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"20\" fill=\"{colour}\"/>\n\
             <line x1=\"{:.1}\" y1=\"{:.0}\" x2=\"{:.1}\" y2=\"{:.0}\" stroke=\"#333\" stroke-width=\"1.5\"/>\n\
             <text x=\"{:.1}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"middle\">{:.1}</text>\n",
            y + 15.0,
            scale(s.median) - left,
            scale(s.min),
            y + 10.0,
            scale(s.max),
            y + 10.0,
            // The median's figure above the end of its bar (past the whisker it
            // could leave the chart, and read as the max).
            scale(s.median),
            y - 3.0,
            s.median
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
