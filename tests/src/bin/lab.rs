//! `cargo lab test [ARGS]`: the whole test suite, as CI and the README run it.
//!
//! 1. capture the host (mounts, links, netfilter rules, cgroups, our processes);
//! 2. build every binary, then `cargo test --workspace ARGS`;
//! 3. capture the host again: any difference fails the run, and is shown.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use lab_tests::host_state::HostState;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        _ => {
            eprintln!("usage: cargo lab test [CARGO TEST ARGS...]");
            eprintln!("  runs the whole suite and checks that the host is left as it was");
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(args)
        .args(extra)
        .current_dir(workspace())
        .status()
        .is_ok_and(|s| s.success())
}

fn test(extra: &[String]) -> ExitCode {
    if !lab_tests::root_or_explain("cargo lab test") {
        return ExitCode::FAILURE;
    }
    // The binaries of this very build live next to this program.
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("our own directory");
    let before = HostState::capture(&bin_dir);
    let built = cargo(&["build", "--workspace", "--bins"], &[]);
    let passed = built && cargo(&["test", "--workspace"], extra);
    let after = HostState::capture(&bin_dir);
    let leaks = before.diff(&after);
    if leaks.is_empty() {
        println!(
            "host check: mounts, links, netfilter rules, cgroups and processes are as before the run"
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
