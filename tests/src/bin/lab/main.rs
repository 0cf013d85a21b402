//! `cargo lab test [ARGS]`: the whole test suite, as CI and the README run it.
//!
//! 1. capture the host (mounts, links, netfilter rules, cgroups, our processes);
//! 2. build every binary, then `cargo test --workspace ARGS`;
//! 3. capture the host again: any difference fails the run, and is shown.
//!
//! `cargo lab start|check|reset CH N`: an exercise, a hole cut out of the chapter's
//! code (`NN-chapter/exercises.txt`, see `lab_tests::holes`).
//! `cargo lab exercises`: prove every hole: its check fails with the hole cut, at
//! the hole, and passes with the reference.
//! `cargo lab install`: build as you, then put every chapter's binary on root's PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use lab_tests::host_state::HostState;

mod bench;

/// The lab's own tool: the test suite with its host check, the exercises, the
/// cgroup v2 VM, the benchmark.
#[derive(Parser, Debug)]
#[command(name = "cargo lab", bin_name = "cargo lab")]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// The whole suite, then a check that the host is left as it was.
    Test {
        /// Passed on to `cargo test` (e.g. -p mini-docker --test security NAME).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CARGO TEST ARGS"
        )]
        args: Vec<String>,
    },
    /// Build as you, then install every chapter's binary into DIR/bin (/usr/local/bin:
    /// on root's PATH, so `sudo ch01-chroot ...` works).
    Install {
        #[arg(long, value_name = "DIR", default_value = "/usr/local")]
        prefix: PathBuf,
    },
    /// Cut exercise N out of the chapter's code: hints and a todo!() (no arguments:
    /// the list).
    Start {
        chapter: Option<String>,
        number: Option<String>,
    },
    /// Run the chapter's tests for that exercise (as root, through sudo).
    Check { chapter: String, number: String },
    /// Put the reference back (your version is kept in .lab/).
    Reset { chapter: String, number: String },
    /// Prove every exercise: its check fails with the hole, passes without.
    Exercises,
    /// Run CMD here in a VM with pure cgroup v2 (systemd's layout unless --bare).
    Vm(VmArgs),
    /// Start latency against runc, crun, unshare; scaling; writes bench/results.md.
    Bench {
        /// Rounds of each measurement.
        #[arg(default_value_t = 100)]
        rounds: usize,
        /// Another build of mini-docker measured in the same rounds: LABEL=PATH.
        #[arg(long, value_name = "LABEL=PATH", value_parser = against)]
        against: Option<(String, PathBuf)>,
    },
    /// In the VM: set the guest up and run the command (see lab_tests::vm).
    #[command(hide = true)]
    VmGuest { run: PathBuf },
    /// The measuring half of `bench`, in a process of its own: it leaves the host's
    /// network namespace, and the host check must not.
    #[command(hide = true)]
    BenchRun {
        rounds: usize,
        #[arg(value_parser = against)]
        against: Option<(String, PathBuf)>,
    },
    /// The host as root sees it, for a `cargo lab test` run by a user (one line per
    /// part, see lab_tests::host_state).
    #[command(hide = true)]
    HostState { bin_dir: PathBuf },
}

#[derive(clap::Args, Debug)]
struct VmArgs {
    /// No systemd layout: the guest's own cgroup root.
    #[arg(long)]
    bare: bool,
    /// The cgroup the command runs in [default: systemd's session scope].
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
    #[arg(long, value_name = "N")]
    cpus: Option<usize>,
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// A host path the guest sees too; repeatable.
    #[arg(long, value_name = "PATH")]
    share: Vec<PathBuf>,
    /// Only make the VM's kernel and image ready.
    #[arg(long)]
    setup: bool,
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn against(text: &str) -> Result<(String, PathBuf), String> {
    let (label, path) = text
        .split_once('=')
        .ok_or("use LABEL=PATH-TO-MINI-DOCKER")?;
    Ok((label.to_string(), PathBuf::from(path)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.verb {
        Verb::Test { args } => test(&args),
        Verb::Exercises => exercises(),
        Verb::Bench { rounds, against } => bench(rounds, against),
        Verb::Vm(args) => vm(args),
        Verb::VmGuest { run } => ExitCode::from(lab_tests::vm::guest(&run).clamp(0, 255) as u8),
        Verb::Start { chapter, number } => match (chapter, number) {
            (Some(chapter), Some(number)) => one_exercise("start", &chapter, &number),
            _ => {
                list_exercises(&workspace());
                ExitCode::SUCCESS
            }
        },
        Verb::Check { chapter, number } => one_exercise("check", &chapter, &number),
        Verb::Reset { chapter, number } => one_exercise("reset", &chapter, &number),
        Verb::Install { prefix } => install(&prefix),
        Verb::BenchRun { rounds, against } => bench_run(rounds, against),
        Verb::HostState { bin_dir } if labkit::privilege::is_root() => {
            for gone in HostState::forget_vanished_network_state() {
                eprintln!("host check: removed {gone}: state of a network namespace that is gone");
            }
            for line in HostState::capture(&bin_dir).lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Verb::HostState { .. } => ExitCode::from(2),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn cargo(args: &[&str], extra: &[String]) -> bool {
    cargo_in(&workspace(), args, extra)
}

fn cargo_in(dir: &Path, args: &[&str], extra: &[String]) -> bool {
    cargo_command(dir, args, extra)
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo_command(dir: &Path, args: &[&str], extra: &[String]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).args(extra).current_dir(dir);
    cmd
}

/// `cargo lab start 02 1`, `check`, `reset`: chapter 02's exercise 1, as a learner
/// works on it.
fn one_exercise(verb: &str, chapter: &str, number: &str) -> ExitCode {
    let root = workspace();
    let hole = match lab_tests::holes::find(&root, chapter, number) {
        Ok(hole) => hole,
        Err(e) => {
            eprintln!("cargo lab {verb}: {e}");
            list_exercises(&root);
            return ExitCode::from(2);
        }
    };
    let label = format!("exercise {} ({})", hole.label(), hole.title);
    let done = match verb {
        "start" => hole.start(&root).map(|()| {
            format!(
                "{label}: cut out of {}: write it where the todo!() is, then \
                 `cargo lab check {} {}`",
                hole.source().display(),
                hole.chapter,
                hole.number
            )
        }),
        "reset" => hole.reset(&root).map(|mine| {
            format!(
                "{label}: the reference is back in {}; what was there is kept in {}",
                hole.source().display(),
                mine.display()
            )
        }),
        _ => {
            let (passed, output) = run_check(&hole, &root, None);
            print!("{output}");
            let missing = hole.not_passed(&output);
            match passed && missing.is_empty() {
                true => Ok(format!("{label}: solved: its tests pass")),
                false => Err(format!(
                    "{label}: not yet: {} did not pass",
                    missing.join(", ")
                )),
            }
        }
    };
    match done {
        Ok(line) => {
            println!("cargo lab {verb}: {line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("cargo lab {verb}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list_exercises(root: &Path) {
    match lab_tests::holes::all(root) {
        Ok(holes) => {
            println!("exercises (cargo lab start CHAPTER N):");
            for h in holes {
                println!("  {} {}  {}", h.chapter, h.number, h.title);
            }
        }
        Err(e) => eprintln!("{e}"),
    }
}

/// Run a hole's tests in `dir` (the workspace, or CI's scratch copy with its own
/// target directory); true when cargo succeeded, and what it printed. Not root:
/// cargo builds as you and runs the tests through `sudo` (so that nothing in
/// target/ or ~/.cargo becomes root's).
fn run_check(hole: &lab_tests::holes::Hole, dir: &Path, target: Option<&str>) -> (bool, String) {
    let mut args = hole.check_args();
    if let Some(target) = target {
        args.splice(1..1, ["--target-dir".to_string(), target.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Some tests run other chapters' programs (workspace_bin): all are built first.
    // (`cargo lab exercises` builds them once, before its checks.)
    if target.is_none() && !cargo_in(dir, &["build", "--workspace", "--bins"], &[]) {
        return (false, "the workspace does not build\n".into());
    }
    let mut cargo = cargo_command(dir, &args, &[]);
    if !root_runner(&mut cargo) {
        return (false, String::new());
    }
    match cargo.output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => (false, format!("cargo: {e}\n")),
    }
}

/// `x86_64-unknown-linux-gnu`: what cargo calls this machine.
fn host_triple() -> Option<String> {
    let out = Command::new("rustc").arg("-vV").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
}

/// `cargo lab install [--prefix DIR]`: build every chapter's binary as you, then
/// copy them into DIR/bin (default /usr/local/bin, which is on root's PATH, so the
/// book's `sudo ch01-chroot ...` works); the copy goes through `sudo install` when
/// you are not root.
fn install(prefix: &Path) -> ExitCode {
    let root = workspace();
    let packages = chapter_binaries(&root);
    let mut build = vec!["build", "--bins"];
    for p in &packages {
        build.extend(["-p", p]);
    }
    if !cargo(&build, &[]) {
        return ExitCode::FAILURE;
    }
    let bin = prefix.join("bin");
    let built: Vec<String> = packages
        .iter()
        .map(|p| {
            root.join("target/debug")
                .join(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut install = Command::new("install");
    if !labkit::privilege::is_root() {
        install = Command::new("sudo");
        install.arg("install");
    }
    install
        .args(["-m", "0755", "-D", "-t"])
        .arg(&bin)
        .args(&built);
    println!(
        "cargo lab install: {}",
        labkit::narrate::shell_line(
            &std::iter::once(install.get_program())
                .chain(install.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        )
    );
    match install.status() {
        Ok(s) if s.success() => {
            println!(
                "cargo lab install: {} installed in {}; run them as the book does, e.g. \
                 `sudo ch01-chroot doctor`",
                packages.join(", "),
                bin.display()
            );
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}

/// The chapters' programs: each `NN-name/` package's binary of the same name.
fn chapter_binaries(root: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('0'))
        .filter_map(|e| lab_tests::holes::package_name(&e.path()))
        .collect();
    found.sort();
    found
}

/// `cargo lab vm [OPTIONS] -- CMD...`: see `lab_tests::vm`.
fn vm(args: VmArgs) -> ExitCode {
    let host_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(4096, |kib| kib / 1024);
    let default_cgroup = Some(lab_tests::vm::SESSION_SCOPE.to_string());
    let vm = lab_tests::vm::Vm {
        dir: workspace(),
        cgroup: if args.bare {
            None
        } else {
            args.cgroup.or(default_cgroup)
        },
        cpus: (args.cpus)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        memory_mib: args.memory.unwrap_or((host_mib * 3 / 4).min(8192)),
        timeout: args.timeout.map(std::time::Duration::from_secs),
        shares: args.share,
    };
    if vm.cgroup.as_ref().is_some_and(|c| !c.starts_with('/')) {
        eprintln!("cargo lab vm: --cgroup takes an absolute cgroup path, e.g. /lab.slice");
        return ExitCode::from(2);
    }
    if !labkit::privilege::is_root() {
        // Built already (by cargo, as you): only this program runs as root.
        eprintln!("cargo lab vm: not root: running it again through `sudo -E`");
        let status = std::env::current_exe().and_then(|me| {
            Command::new("sudo")
                .args(["-E", "--"])
                .arg(me)
                .args(std::env::args_os().skip(1))
                .status()
        });
        return match status.map(|s| s.code()) {
            Ok(Some(code)) => ExitCode::from(code.clamp(0, 255) as u8),
            _ => ExitCode::FAILURE,
        };
    }
    let outcome = match args.setup {
        true => lab_tests::vm::setup().map(|k| {
            eprintln!("lab vm: ready: kernel {}", k.release);
            0
        }),
        false if args.command.is_empty() => {
            eprintln!("cargo lab vm: which command? cargo lab vm [OPTIONS] -- CMD [ARGS...]");
            return ExitCode::from(2);
        }
        false => lab_tests::vm::run(&vm, &args.command),
    };
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("lab vm: {e}");
            ExitCode::from(125)
        }
    }
}

fn bench(rounds: usize, against: Option<(String, PathBuf)>) -> ExitCode {
    let against: Vec<String> = (against.iter())
        .map(|(label, path)| format!("{label}={}", path.display()))
        .collect();
    let rounds = rounds.to_string();
    with_host_check("cargo lab bench", || {
        cargo(
            &[
                "build",
                "--release",
                "-p",
                "mini-docker",
                "-p",
                "ch01-chroot",
            ],
            &[],
        ) && std::env::current_exe()
            .ok()
            .and_then(|me| {
                let mut run = Command::new("sudo");
                match labkit::privilege::is_root() {
                    true => run = Command::new(me),
                    false => _ = run.args(["-E", "--"]).arg(me),
                }
                run.args(["bench-run", &rounds])
                    .args(&against)
                    .status()
                    .ok()
            })
            .is_some_and(|s| s.success())
    })
}

fn bench_run(rounds: usize, against: Option<(String, PathBuf)>) -> ExitCode {
    let bench = bench::Bench {
        rounds,
        bin: workspace().join("target/release"),
        repo: workspace(),
        against,
    };
    match bench.run() {
        Ok(report) => {
            println!("{report}");
            let (results, chart) = bench::outputs();
            println!("written: {results}, {chart}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cargo lab bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> ExitCode {
    // Tests that cannot run here say so into this file; they are listed at the end.
    let not_run = tempfile::NamedTempFile::new().expect("a temp file");
    // SAFETY: single-threaded still: no other thread reads the environment.
    unsafe { std::env::set_var("LAB_NOT_RUN", not_run.path()) };
    let code = with_host_check("cargo lab test", || {
        // Every test binary runs, even after a failure: CI shows them all at once.
        // `cargo lab test -p mini-docker --test security`: that package alone.
        let mut args = vec!["test", "--no-fail-fast"];
        if !extra
            .iter()
            .any(|a| a == "-p" || a.starts_with("--package"))
        {
            args.push("--workspace");
        }
        let mut test = cargo_command(&workspace(), &args, extra);
        cargo(&["build", "--workspace", "--bins"], &[])
            && root_runner(&mut test)
            && test.status().is_ok_and(|s| s.success())
    });
    let listed = std::fs::read_to_string(not_run.path()).unwrap_or_default();
    if !listed.is_empty() {
        println!(
            "\n{} test(s) did NOT RUN on this host (cgroup {}):",
            listed.lines().count(),
            lab_tests::cgroup_lane()
        );
        for line in listed.lines() {
            println!("  {line}");
        }
    }
    code
}

/// Run `work` between two captures of the host; fail on any difference. Not root:
/// the captures run through `sudo` (and `work` runs its tests so, see [`root_runner`]).
fn with_host_check(what: &str, work: impl FnOnce() -> bool) -> ExitCode {
    if !labkit::privilege::is_root() {
        println!(
            "{what}: not root: cargo builds as you; the tests and the host check run as root through `sudo -E`"
        );
    }
    // This program, by the path it has now: the build below may replace it (the
    // replaced one then reads "lab (deleted)"), and a user's captures run it by path.
    // The binaries of this very build live next to it.
    let me = std::env::current_exe().expect("our own path");
    let bin_dir = me.parent().expect("our own directory").to_path_buf();
    let Some(before) = capture_host(&me, &bin_dir) else {
        return ExitCode::FAILURE;
    };
    let left = before.ours();
    if !left.is_empty() {
        println!("host check FAILED before the run: an earlier run left these behind:");
        for line in &left {
            println!("  {line}");
        }
        println!(
            "remove them first (ch05-network down; ch03-cgroups rm NAME; umount; kill PID; \
             rm -r /tmp/lab-* /tmp/ch0*-*), so that this run's own leaks can be seen"
        );
        return ExitCode::FAILURE;
    }
    let passed = work();
    let Some(after) = capture_host(&me, &bin_dir) else {
        return ExitCode::FAILURE;
    };
    let leaks = before.diff(&after);
    if leaks.is_empty() {
        println!(
            "host check: mounts, links, forwarding sysctls, netfilter rules, cgroups, processes and temp dirs are as before the run"
        );
    } else {
        println!(
            "host check FAILED: the run left the host changed ({} difference(s)):",
            leaks.len()
        );
        for line in &leaks {
            println!("  {line}");
        }
    }
    if passed && leaks.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The host as root sees it, our garbage of gone network namespaces removed first.
/// Not root: this program does it again as root (`host-state`), through sudo.
fn capture_host(me: &Path, bin_dir: &Path) -> Option<HostState> {
    if labkit::privilege::is_root() {
        for gone in HostState::forget_vanished_network_state() {
            println!("host check: removed {gone}: state of a network namespace that is gone");
        }
        return Some(HostState::capture(bin_dir));
    }
    let out = Command::new("sudo")
        .args(["-E", "--"])
        .arg(me)
        .arg("host-state")
        .arg(bin_dir)
        .stderr(std::process::Stdio::inherit())
        .output();
    match out {
        Ok(out) if out.status.success() => Some(HostState {
            lines: String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
        }),
        _ => {
            println!("host check: could not look at the host as root (sudo failed)");
            None
        }
    }
}

/// Not root: cargo (run by `cmd`) builds as you and runs each test binary through
/// `sudo -E`, so that nothing in target/ or ~/.cargo becomes root's; insta writes no
/// snapshot file as root.
fn root_runner(cmd: &mut Command) -> bool {
    if labkit::privilege::is_root() {
        return true;
    }
    let Some(triple) = host_triple() else {
        println!("cannot ask rustc for this machine's target");
        return false;
    };
    let var = format!(
        "CARGO_TARGET_{}_RUNNER",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    cmd.env(var, "sudo -E --").env("INSTA_UPDATE", "no");
    true
}

/// Make `to` a copy of the workspace's sources in `from` (all but target/ and .git/),
/// writing only the files that differ and removing what `from` does not have: cargo
/// goes by modification times, so each exercise rebuilds only what its patch touched.
fn sync_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let skipped = |name: &std::ffi::OsStr| [".git", "target"].iter().any(|s| name == *s);
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name) || std::fs::symlink_metadata(from.join(&name)).is_ok() {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name) {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        // A directory that became a file, or a file that became a link: gone first.
        if let Ok(was) = std::fs::symlink_metadata(&target).map(|m| m.file_type()) {
            if was.is_dir() && !kind.is_dir() {
                std::fs::remove_dir_all(&target)?;
            } else if (was.is_dir(), was.is_symlink()) != (kind.is_dir(), kind.is_symlink()) {
                std::fs::remove_file(&target)?;
            }
        }
        if kind.is_dir() {
            sync_sources(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source)?;
            if std::fs::read_link(&target).ok() != Some(link.clone()) {
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(link, &target)?;
            }
        } else if std::fs::read(&target).ok() != Some(std::fs::read(&source)?) {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

fn exercises() -> ExitCode {
    with_host_check("cargo lab exercises", check_exercises)
}

fn check_exercises() -> bool {
    let root = workspace();
    let total = match lab_tests::holes::all(&root) {
        Ok(holes) => holes.len(),
        Err(e) => {
            println!("exercises: {e}");
            return false;
        }
    };
    // One copy of the workspace, kept between runs, and one target directory for its
    // builds: each hole rebuilds only the chapter it is cut from.
    let place = root.join("target/lab-exercises");
    let scratch = place.join("workspace");
    let target = place.join("target").to_string_lossy().into_owned();
    if let Err(e) = sync_sources(&root, &scratch) {
        println!("exercises: cannot copy the workspace: {e}");
        return false;
    }
    let _ = std::fs::remove_dir_all(scratch.join(".lab"));
    // Some tests run other chapters' programs (workspace_bin): the reference's, built once.
    let build = [
        "build",
        "--quiet",
        "--workspace",
        "--bins",
        "--target-dir",
        &target,
    ];
    if !cargo_in(&scratch, &build, &[]) {
        println!("exercises: the workspace does not build");
        return false;
    }
    let holes = lab_tests::holes::all(&scratch).unwrap_or_default();
    // With the reference, every check passes: every test it names ran and passed.
    // (All first: the reference is built once per chapter.)
    let mut wrong: Vec<Option<String>> = holes
        .iter()
        .map(|hole| {
            let (passed, output) = run_check(hole, &scratch, Some(&target));
            let missing = hole.not_passed(&output);
            println!(
                "== exercise {}: with the reference: {}",
                hole.label(),
                match passed && missing.is_empty() {
                    true => "passes",
                    false => "FAILS",
                }
            );
            (!passed || !missing.is_empty()).then(|| {
                print!("{output}");
                format!("with the reference, {} did not pass", missing.join(", "))
            })
        })
        .collect();
    // With the hole cut, the check fails, and at the hole (its todo!()).
    for (hole, wrong) in holes.iter().zip(wrong.iter_mut()) {
        let marker = lab_tests::holes::marker(&hole.chapter, hole.number);
        let (passed, output) = match hole.start(&scratch) {
            Ok(()) => run_check(hole, &scratch, Some(&target)),
            Err(e) => (false, e),
        };
        let restored = hole.reset(&scratch).is_ok();
        println!(
            "== exercise {}: with the hole cut: {}",
            hole.label(),
            match (passed, output.contains(&marker)) {
                (false, true) => "fails at the hole",
                (false, false) => "FAILS, but not at the hole",
                (true, _) => "PASSES",
            }
        );
        if wrong.is_some() {
            continue;
        }
        *wrong = match () {
            _ if !restored => Some("the reference did not go back".into()),
            _ if passed => Some("the check passes with the hole cut".into()),
            _ if !output.contains(&marker) => {
                print!("{output}");
                Some("with the hole cut the check fails, but not at the hole".into())
            }
            _ => None,
        };
    }
    let mut failures = 0;
    for (hole, wrong) in holes.iter().zip(&wrong) {
        let label = format!("{} {} ({})", hole.package, hole.label(), hole.title);
        match wrong {
            None => println!("== {label}: ok: fails at the hole, passes with the reference"),
            Some(why) => {
                failures += 1;
                println!("== {label}: WRONG: {why}");
            }
        }
    }
    println!("exercises: {} proved, {failures} wrong", total - failures);
    failures == 0 && total > 0
}
