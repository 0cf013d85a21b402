//! `ch03-cgroups run`: a command in a new cgroup, with chapter 02's isolation.

use std::time::Instant;

use ch01_chroot::chroot_run::IgnoreInterrupts;
use ch02_namespaces::plan::Plan;
use ch02_namespaces::spawn;
use labkit::Result;
use labkit::doctor::Host;
use labkit::narrate;

use crate::group::{Group, PREFIX, check_name};
use crate::hierarchy::Layout;
use crate::limits::Limits;
use crate::place::Place;
use crate::stats::{Stats, render};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub limits: Limits,
    pub name: Option<String>,
    /// Where the group goes (`--parent`, by default [`crate::group::DEFAULT_PARENT`]).
    pub parent: String,
    pub keep: bool,
}

// ANCHOR: run
pub fn run(options: &RunOptions, plan: &Plan) -> Result<i32> {
    let host = Host::real();
    let layout = Layout::discover(&host);
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| std::process::id().to_string());
    check_name(&name)?;
    let place = Place::new(&options.parent, &format!("{PREFIX}{name}"))?;
    // Ctrl-C goes to the command; we stay to report and to clean up.
    let _ignoring = IgnoreInterrupts::start()?;
    let mut group = Group::create(&layout, &host, &place, &options.limits)?;
    let started = Instant::now();
    // The child is created in its v2 group (clone3), and moved into the others
    // before it is allowed to exec: it never runs a moment without its limits.
    let mut plan = plan.clone();
    plan.cgroup = Some(group.into_cgroup());
    let outcome = group.removed_if_it_panics(|g| spawn::run_with(&plan, |child| g.join(child)));
    let seconds = started.elapsed().as_secs_f64();
    let stats = Stats::read(&group);
    if let Ok(code) = &outcome {
        eprint!("{}", report(&name, *code, seconds, &stats));
    }
    if options.keep {
        let parent = match options.parent.as_str() {
            crate::group::DEFAULT_PARENT => String::new(),
            other => format!(" --parent {other}"),
        };
        narrate::note(format!(
            "kept: ch03-cgroups stats{parent} {name}; remove it with: ch03-cgroups rm{parent} {name}"
        ));
    } else {
        group.remove();
    }
    outcome
}
// ANCHOR_END: run

/// What happened, from the exit status and the group's own counters.
pub fn report(name: &str, code: i32, seconds: f64, stats: &Stats) -> String {
    let how = match code {
        0..=127 => format!("exited with {code}"),
        _ => format!(
            "was killed by {} (exit {code})",
            nix::sys::signal::Signal::try_from(code - 128).map_or("a signal", |s| s.as_str())
        ),
    };
    let oom = code == 128 + 9 && stats.oom_kills.is_some_and(|k| k > 0);
    let mut out = format!("cgroup {PREFIX}{name}: the command {how} after {seconds:.2} s\n");
    if oom {
        out.push_str(
            "  OOM-killed:    yes: the kernel's OOM killer ended it at the memory limit\n",
        );
    }
    out.push_str(&render(stats));
    out
}
