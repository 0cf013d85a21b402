//! What a group used: the same files `docker stats` reads.

use std::fmt::Write as _;

use crate::files::{keyed, read, read_u64};
use crate::group::Group;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_now: Option<u64>,
    /// Page cache the kernel would drop first (`docker stats` leaves it out of usage).
    pub memory_inactive_file: Option<u64>,
    pub memory_peak: Option<u64>,
    pub memory_limit: Option<u64>,
    /// How often usage hit the limit (v1 memory.failcnt, v2 memory.events max).
    pub memory_limit_hits: Option<u64>,
    /// Processes the kernel's OOM killer killed in this group.
    pub oom_kills: Option<u64>,
    pub cpu_usec: Option<u64>,
    /// (periods, periods in which the group was throttled)
    pub throttled: Option<(u64, u64)>,
    pub pids_now: Option<u64>,
    pub pids_peak: Option<u64>,
    /// Forks refused because of pids.max.
    pub forks_refused: Option<u64>,
    /// Bytes read from and written to disks (v2 io.stat, v1 blkio).
    pub io_read: Option<u64>,
    pub io_written: Option<u64>,
    /// The CPUs the group may run on (v2: cpuset.cpus.effective).
    pub cpus: Option<String>,
    pub frozen: Option<bool>,
    pub procs: usize,
}

impl Stats {
    /// Memory in use as `docker stats` counts it: less the inactive page cache.
    pub fn memory_usage(&self) -> Option<u64> {
        Some(
            self.memory_now?
                .saturating_sub(self.memory_inactive_file.unwrap_or(0)),
        )
    }
}

/// Bytes read and written, summed over every disk: v2's `io.stat` has lines like
/// `8:0 rbytes=4096 wbytes=0 rios=1 ...`, v1's `blkio.throttle.io_service_bytes`
/// lines like `8:0 Read 4096`.
fn io_bytes(dir: &std::path::Path) -> Option<(u64, u64)> {
    if let Some(text) = read(&dir.join("io.stat")) {
        let sum = |key: &str| -> u64 {
            text.split_whitespace()
                .filter_map(|w| w.strip_prefix(key)?.parse::<u64>().ok())
                .sum()
        };
        return Some((sum("rbytes="), sum("wbytes=")));
    }
    let text = read(&dir.join("blkio.throttle.io_service_bytes"))?;
    let sum = |kind: &str| -> u64 {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (_dev, k, n) = (w.next()?, w.next()?, w.next()?);
                (k == kind).then(|| n.parse::<u64>().ok())?
            })
            .sum()
    };
    Some((sum("Read"), sum("Write")))
}

// ANCHOR: read_stats
impl Stats {
    pub fn read(group: &Group) -> Stats {
        // The first directory that has the file answers (v1 and v2 names differ).
        let first = |f: &dyn Fn(&std::path::Path) -> Option<u64>| {
            group.dirs.iter().find_map(|d| f(&d.path))
        };
        Stats {
            memory_now: first(&|d| {
                read_u64(&d.join("memory.usage_in_bytes"))
                    .or_else(|| read_u64(&d.join("memory.current")))
            }),
            memory_inactive_file: first(&|d| {
                keyed(&d.join("memory.stat"), "total_inactive_file")
                    .or_else(|| keyed(&d.join("memory.stat"), "inactive_file"))
            }),
            memory_peak: first(&|d| {
                read_u64(&d.join("memory.max_usage_in_bytes"))
                    .or_else(|| read_u64(&d.join("memory.peak")))
            }),
            memory_limit: first(&|d| {
                read_u64(&d.join("memory.limit_in_bytes"))
                    .or_else(|| read_u64(&d.join("memory.max")))
            }),
            memory_limit_hits: first(&|d| {
                read_u64(&d.join("memory.failcnt"))
                    .or_else(|| keyed(&d.join("memory.events"), "max"))
            }),
            oom_kills: first(&|d| {
                keyed(&d.join("memory.oom_control"), "oom_kill")
                    .or_else(|| keyed(&d.join("memory.events"), "oom_kill"))
            }),
            cpu_usec: first(&|d| {
                keyed(&d.join("cpu.stat"), "usage_usec")
                    .or_else(|| read_u64(&d.join("cpuacct.usage")).map(|ns| ns / 1000))
            }),
            throttled: group.dirs.iter().find_map(|d| {
                Some((
                    keyed(&d.path.join("cpu.stat"), "nr_periods")?,
                    keyed(&d.path.join("cpu.stat"), "nr_throttled")?,
                ))
            }),
            pids_now: first(&|d| read_u64(&d.join("pids.current"))),
            pids_peak: first(&|d| read_u64(&d.join("pids.peak"))),
            forks_refused: first(&|d| keyed(&d.join("pids.events"), "max")),
            io_read: group
                .dir_for("io")
                .and_then(|d| io_bytes(&d.path))
                .map(|io| io.0),
            io_written: group
                .dir_for("io")
                .and_then(|d| io_bytes(&d.path))
                .map(|io| io.1),
            cpus: group.dir_for("cpuset").and_then(|d| {
                read(&d.path.join("cpuset.cpus.effective"))
                    .or_else(|| read(&d.path.join("cpuset.cpus")))
                    .map(|c| c.trim().to_string())
            }),
            frozen: group.dirs.iter().find_map(|d| {
                keyed(&d.path.join("cgroup.events"), "frozen")
                    .map(|f| f == 1)
                    .or_else(|| read(&d.path.join("freezer.state")).map(|s| s.trim() == "FROZEN"))
            }),
            procs: group.procs().len(),
        }
    }
}
// ANCHOR_END: read_stats

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Lines of `key: value`, only for what this host can tell.
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<15}{value}");
    };
    if let Some(peak) = stats.memory_peak {
        let limit = stats
            .memory_limit
            .filter(|l| *l < (1 << 60))
            .map(|l| format!(" (limit {})", mib(l)))
            .unwrap_or_default();
        line("memory peak:", format!("{}{limit}", mib(peak)));
    }
    if let Some(hits) = stats.memory_limit_hits {
        line(
            "limit hits:",
            format!("{hits} (times usage reached the limit)"),
        );
    }
    if let Some(kills) = stats.oom_kills {
        line("oom kills:", kills.to_string());
    }
    if let Some(usec) = stats.cpu_usec {
        line("cpu time:", format!("{:.2} s", usec as f64 / 1e6));
    }
    if let Some((periods, throttled)) = stats.throttled.filter(|(periods, _)| *periods > 0) {
        line("throttled:", format!("{throttled} of {periods} periods"));
    }
    if let Some(peak) = stats.pids_peak {
        line("pids peak:", peak.to_string());
    }
    if let Some(refused) = stats.forks_refused {
        line("forks refused:", refused.to_string());
    }
    if let (Some(read), Some(written)) = (stats.io_read, stats.io_written) {
        line(
            "disk I/O:",
            format!("{} read, {} written", mib(read), mib(written)),
        );
    }
    if let Some(cpus) = &stats.cpus {
        line("cpus:", cpus.clone());
    }
    out
}
