//! `cargo lab test [ARGS]`: the whole test suite, as CI and the README run it.
//!
//! 1. capture the host (mounts, links, netfilter rules, cgroups, our processes);
//! 2. build every binary, then `cargo test --workspace ARGS`;
//! 3. capture the host again: any difference fails the run, and is shown.
//!
//! `cargo lab exercises`: prove every exercise's check fails on the starting code
//! and passes with its reference solution (`NN-chapter/exercises/K-name.patch`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use lab_tests::host_state::HostState;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("exercises") => exercises(),
        Some("bench") => bench(&args[1..]),
        Some("vm") => vm(&args[1..]),
        // In the VM: set the guest up and run the command (see lab_tests::vm).
        Some("vm-guest") => match args.get(1) {
            Some(run) => ExitCode::from(lab_tests::vm::guest(Path::new(run)).clamp(0, 255) as u8),
            None => ExitCode::from(2),
        },
        Some(verb @ ("check" | "solve" | "unsolve")) => one_exercise(verb, &args[1..]),
        // The measuring half of `bench`, in a process of its own: it leaves the
        // host's network namespace, and the host check must not.
        Some("bench-run") => bench_run(&args[1..]),
        _ => {
            eprintln!("usage: cargo lab test [CARGO TEST ARGS...]");
            eprintln!("         the whole suite, then a check that the host is left as it was");
            eprintln!("       cargo lab exercises");
            eprintln!("         (see below)");
            eprintln!("       cargo lab check CHAPTER N    (e.g. cargo lab check 02 1)");
            eprintln!("         run exercise N's check: it fails until the exercise is solved");
            eprintln!("       cargo lab solve CHAPTER N / cargo lab unsolve CHAPTER N");
            eprintln!("         apply (or take back) the reference solution in this checkout");
            eprintln!(
                "       cargo lab vm [--bare] [--cgroup PATH] [--cpus N] [--memory MIB] [--timeout SECS]"
            );
            eprintln!("                    [--share PATH]... [--setup] -- CMD [ARGS...]");
            eprintln!(
                "         run CMD here in a VM with pure cgroup v2 (systemd's layout unless --bare)"
            );
            eprintln!("       cargo lab bench [ROUNDS] [--against LABEL=PATH]");
            eprintln!(
                "         start latency against runc, crun, unshare; scaling; writes bench/results.md"
            );
            eprintln!(
                "         each exercise check fails on the starting code and passes with its solution"
            );
            ExitCode::from(2)
        }
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

/// `cargo lab check 02 1`: chapter 02's exercise 1, as a learner works on it.
fn one_exercise(verb: &str, args: &[String]) -> ExitCode {
    let root = workspace();
    let (Some(chapter), Some(number)) = (args.first(), args.get(1)) else {
        eprintln!("usage: cargo lab {verb} CHAPTER N   (e.g. cargo lab {verb} 02 1)");
        return ExitCode::from(2);
    };
    // `2` or `02` both mean the folder 02-namespaces.
    let chapter = format!("{:02}", chapter.parse::<u32>().unwrap_or(0));
    let found = find_exercises(&root).into_iter().find(|ex| {
        let folder = ex
            .patch
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name);
        let in_chapter =
            folder.is_some_and(|f| f.to_string_lossy().starts_with(&format!("{chapter}-")));
        let name = ex
            .patch
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        in_chapter && name.split('-').next() == Some(number.as_str())
    });
    let Some(ex) = found else {
        eprintln!("cargo lab {verb}: chapter {chapter} has no exercise {number} with a check");
        return ExitCode::from(2);
    };
    let ok = match verb {
        "check" => cargo(&ex.check_args(&[]), &[]),
        _ => {
            let mut git = Command::new("git");
            git.arg("apply").current_dir(&root);
            if verb == "unsolve" {
                git.arg("-R");
            }
            git.arg(&ex.patch).status().is_ok_and(|s| s.success())
        }
    };
    println!(
        "cargo lab {verb}: {} {} ({}): {}",
        ex.package,
        number,
        ex.test,
        if ok { "ok" } else { "not yet" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cargo lab vm [OPTIONS] -- CMD...`: see `lab_tests::vm`.
fn vm(args: &[String]) -> ExitCode {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let host_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(4096, |kib| kib / 1024);
    let mut vm = lab_tests::vm::Vm {
        dir: workspace(),
        cgroup: Some(lab_tests::vm::SESSION_SCOPE.to_string()),
        cpus,
        memory_mib: (host_mib * 3 / 4).min(8192),
        timeout: None,
        shares: vec![],
    };
    let mut setup_only = false;
    let mut rest = args.iter();
    let usage = || {
        eprintln!(
            "usage: cargo lab vm [--bare] [--cgroup PATH] [--cpus N] [--memory MIB] [--timeout SECS] [--share PATH]... [--setup] -- CMD [ARGS...]"
        );
        ExitCode::from(2)
    };
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().cloned();
        match arg.as_str() {
            "--bare" => vm.cgroup = None,
            "--setup" => setup_only = true,
            "--cgroup" => match value() {
                Some(p) if p.starts_with('/') => vm.cgroup = Some(p),
                _ => return usage(),
            },
            "--cpus" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => vm.cpus = n,
                None => return usage(),
            },
            "--memory" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => vm.memory_mib = n,
                None => return usage(),
            },
            "--timeout" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => vm.timeout = Some(std::time::Duration::from_secs(n)),
                None => return usage(),
            },
            "--share" => match value() {
                Some(p) => vm.shares.push(p.into()),
                None => return usage(),
            },
            "--" => break,
            _ => return usage(),
        }
    }
    let command: Vec<String> = rest.cloned().collect();
    if !lab_tests::root_or_explain("cargo lab vm") {
        return ExitCode::FAILURE;
    }
    let outcome = match setup_only {
        true => lab_tests::vm::setup().map(|k| {
            eprintln!("lab vm: ready: kernel {}", k.release);
            0
        }),
        false if command.is_empty() => return usage(),
        false => lab_tests::vm::run(&vm, &command),
    };
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("lab vm: {e}");
            ExitCode::from(125)
        }
    }
}

fn bench(args: &[String]) -> ExitCode {
    let rounds = args
        .iter()
        .find(|a| a.parse::<usize>().is_ok())
        .cloned()
        .unwrap_or_else(|| "100".into());
    // --against LABEL=PATH: another build measured in the same rounds.
    let against: Vec<String> = args
        .iter()
        .position(|a| a == "--against")
        .and_then(|i| args.get(i + 1))
        .map(|a| vec![a.clone()])
        .unwrap_or_default();
    if !against.iter().all(|a| a.contains('=')) {
        eprintln!("usage: cargo lab bench [ROUNDS] [--against LABEL=PATH-TO-MINI-DOCKER]");
        return ExitCode::from(2);
    }
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
                Command::new(me)
                    .args(["bench-run", &rounds])
                    .args(&against)
                    .status()
                    .ok()
            })
            .is_some_and(|s| s.success())
    })
}

fn bench_run(args: &[String]) -> ExitCode {
    let bench = lab_tests::bench::Bench {
        rounds: args.first().and_then(|r| r.parse().ok()).unwrap_or(100),
        bin: workspace().join("target/release"),
        repo: workspace(),
        against: args.get(1).and_then(|a| {
            let (label, path) = a.split_once('=')?;
            Some((label.to_string(), PathBuf::from(path)))
        }),
    };
    match bench.run() {
        Ok(report) => {
            println!("{report}");
            let (results, chart) = lab_tests::bench::outputs();
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
        cargo(&["build", "--workspace", "--bins"], &[])
            && cargo(&["test", "--workspace", "--no-fail-fast"], extra)
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

/// Run `work` as root between two captures of the host; fail on any difference.
fn with_host_check(what: &str, work: impl FnOnce() -> bool) -> ExitCode {
    if !lab_tests::root_or_explain(what) {
        return ExitCode::FAILURE;
    }
    // The binaries of this very build live next to this program.
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("our own directory");
    for gone in HostState::forget_vanished_network_state() {
        println!("host check: removed {gone}: state of a network namespace that is gone");
    }
    let before = HostState::capture(&bin_dir);
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
    let after = HostState::capture(&bin_dir);
    let leaks = before.diff(&after);
    if leaks.is_empty() {
        println!(
            "host check: mounts, links, netfilter rules, cgroups, processes and temp dirs are as before the run"
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

/// One exercise: its chapter's package, the check's test name, and the solution.
struct Exercise {
    package: String,
    test: String,
    patch: PathBuf,
}

impl Exercise {
    /// `cargo test` after `options`, running this exercise's check alone.
    fn check_args<'a>(&'a self, options: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["test"];
        args.extend(options);
        args.extend(["-p", &self.package, "--test", "exercises", "--"]);
        args.extend(["--ignored", "--exact", &self.test]);
        args
    }
}

fn find_exercises(root: &Path) -> Vec<Exercise> {
    let mut found = vec![];
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("exercises").is_dir())
        .collect();
    chapters.sort();
    for chapter in chapters {
        let manifest = std::fs::read_to_string(chapter.join("Cargo.toml")).unwrap_or_default();
        let Some(package) = manifest.lines().find_map(|l| {
            let value = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        }) else {
            continue;
        };
        let mut patches: Vec<PathBuf> = std::fs::read_dir(chapter.join("exercises"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "patch"))
            .collect();
        patches.sort();
        for patch in patches {
            // 2-drop-chroot-cap.patch checks with the test `drop_chroot_cap`.
            let stem = patch
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let name = stem.split_once('-').map_or(stem.as_str(), |(_, n)| n);
            found.push(Exercise {
                package: package.clone(),
                test: name.replace('-', "_"),
                patch,
            });
        }
    }
    found
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
    // One copy of the workspace, kept between exercises and runs, and one target
    // directory for its builds: each exercise rebuilds only what its patch touched.
    let place = root.join("target/lab-exercises");
    let scratch = place.join("workspace");
    let target = place.join("target").to_string_lossy().into_owned();
    let mut failures = 0;
    let list = find_exercises(&root);
    for ex in &list {
        let label = format!(
            "{} {}",
            ex.package,
            ex.patch.file_name().unwrap_or_default().to_string_lossy()
        );
        if let Err(e) = sync_sources(&root, &scratch) {
            println!("{label}: cannot copy the workspace: {e}");
            failures += 1;
            continue;
        }
        let check = |dir: &Path| {
            cargo_command(
                dir,
                &ex.check_args(&["--quiet", "--target-dir", &target]),
                &[],
            )
        };
        println!("== {label}: the check must fail on the starting code");
        // Its failure is expected: keep its output out of the log.
        let fails_before = !check(&scratch)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        println!("== {label}: applying the reference solution; the check must pass");
        // The copy is inside this repository: git must not find it (it would take the
        // patch's paths from the repository's top), so it stops looking above the copy.
        let applied = Command::new("git")
            .args(["apply", "--verbose"])
            .arg(&ex.patch)
            .env("GIT_CEILING_DIRECTORIES", &place)
            .current_dir(&scratch)
            .status()
            .is_ok_and(|s| s.success());
        let passes_after = applied && check(&scratch).status().is_ok_and(|s| s.success());
        let verdict = match (fails_before, applied, passes_after) {
            (true, true, true) => "ok: fails on the starting code, passes with the solution",
            (false, _, _) => "WRONG: the check already passes on the starting code",
            (_, false, _) => "WRONG: the solution no longer applies to the code",
            (_, _, false) => "WRONG: the check fails with the solution",
        };
        if !verdict.starts_with("ok") {
            failures += 1;
        }
        println!("== {label}: {verdict}");
    }
    println!(
        "exercises: {} passed, {failures} failed",
        list.len() - failures
    );
    failures == 0 && !list.is_empty()
}
