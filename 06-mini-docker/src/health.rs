//! Health checks (`HEALTHCHECK`, `--health-cmd`): while the container runs, a thread
//! of its monitor runs the check in it every interval, as `mini-docker exec` would,
//! and keeps the result in `health.json` beside its state: `starting` until the
//! first verdict, then `healthy` or, after `retries` failures in a row,
//! `unhealthy`. Nothing in the kernel knows about health: it is a process that
//! exits 0 or not.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use clap::Args;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::container::Container;
use crate::store::{now, read_json, write_json};

/// The check, under Docker's names (durations in nanoseconds, 0: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Check {
    /// `["CMD", args...]`, `["CMD-SHELL", line]`, or `["NONE"]`.
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: u64,
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub start_period: u64,
    #[serde(default)]
    pub retries: u32,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps the last five results, and their first 4 KiB of output.
const KEPT: usize = 5;
const OUTPUT_MAX: usize = 4096;

fn or(nanos: u64, default: Duration) -> Duration {
    match nanos {
        0 => default,
        n => Duration::from_nanos(n),
    }
}

impl Check {
    /// The command run in the container.
    fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, [line])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), line.clone()])
            }
            _ => None,
        }
    }
}

/// `run`/`create`'s health flags, Docker's.
#[derive(Args, Debug, Clone, Default)]
pub struct HealthArgs {
    /// Command to run to check health (a shell line).
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub cmd: Option<String>,
    /// Time between checks (ms|s|m|h), default 30s.
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub interval: Option<String>,
    /// Longest a check may run, default 30s.
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Failures in a row that make it unhealthy, default 3.
    #[arg(long = "health-retries", value_name = "N")]
    pub retries: Option<u32>,
    /// Time to start, whose failures do not count, default 0s.
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub start_period: Option<String>,
    /// Disable any HEALTHCHECK the image has.
    #[arg(long = "no-healthcheck")]
    pub none: bool,
}

impl HealthArgs {
    /// The flags over the image's check (each flag replaces its field), as Docker
    /// merges them; `None` when there is no check.
    pub fn check(&self, image: Option<&serde_json::Value>) -> Result<Option<Check>> {
        let given = self.cmd.is_some()
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.retries.is_some()
            || self.start_period.is_some();
        if self.none {
            if given {
                return Err(Failure::new(
                    "--no-healthcheck conflicts with --health-* options",
                ));
            }
            return Ok(None);
        }
        let mut check: Check = image
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if let Some(cmd) = &self.cmd {
            check.test = vec!["CMD-SHELL".into(), cmd.clone()];
        }
        for (flag, text, field) in [
            ("--health-interval", &self.interval, &mut check.interval),
            ("--health-timeout", &self.timeout, &mut check.timeout),
            (
                "--health-start-period",
                &self.start_period,
                &mut check.start_period,
            ),
        ] {
            if let Some(text) = text {
                *field = crate::build::config::duration(text)
                    .filter(|n| *n >= 1_000_000 || flag == "--health-start-period")
                    .ok_or_else(|| {
                        Failure::new(format!(
                            "{flag} {text}: use a duration of 1ms or more, such as 30s, 1m30s, 500ms"
                        ))
                    })?;
            }
        }
        if let Some(n) = self.retries {
            check.retries = n;
        }
        if given && check.command().is_none() {
            return Err(Failure::new(
                "--health-* options need a check: --health-cmd, or an image with HEALTHCHECK",
            ));
        }
        Ok(check.command().map(|_| check))
    }
}

/// `State.Health`, as `docker inspect` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// One check's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

fn file(container: &Container) -> std::path::PathBuf {
    container.dir.join("health.json")
}

/// The container's health, if it has a check and it has run since it started.
pub fn read(container: &Container) -> Option<Health> {
    read_json(&file(container)).ok()
}

// ANCHOR: verdict
impl Health {
    /// Docker's rules: a success makes it healthy; a failure counts (unless it is
    /// still starting, in its start period), and `retries` of them make it unhealthy.
    fn record(&mut self, probe: Probe, in_start_period: bool, retries: u32) {
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = "healthy".into();
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(probe);
        if self.log.len() > KEPT {
            self.log.remove(0);
        }
    }
}
// ANCHOR_END: verdict

/// The thread that checks; stopped (and joined) when dropped.
#[derive(Debug)]
pub struct Checker {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ANCHOR: checker
/// Start checking `container` (whose process just started), `starting` until the
/// first verdict. `store` is handed to `mini-docker exec`.
pub fn start(store: &Path, container: &Container, check: Check) -> Checker {
    let mut health = Health {
        status: "starting".into(),
        ..Health::default()
    };
    let _ = write_json(&file(container), &health);
    let (stop, stopped) = channel();
    let container = container.clone();
    let store = store.to_path_buf();
    let started = Instant::now();
    let thread = std::thread::spawn(move || {
        let retries = match check.retries {
            0 => DEFAULT_RETRIES,
            n => n,
        };
        while !wait(&stopped, or(check.interval, DEFAULT_INTERVAL)) {
            let probe = probe(&store, &container, &check);
            let starting = started.elapsed() < Duration::from_nanos(check.start_period);
            health.record(probe, starting, retries);
            let _ = write_json(&file(&container), &health);
        }
    });
    Checker {
        stop: Some(stop),
        thread: Some(thread),
    }
}
// ANCHOR_END: checker

/// Wait `interval`; true when told to stop meanwhile.
fn wait(stopped: &Receiver<()>, interval: Duration) -> bool {
    !matches!(
        stopped.recv_timeout(interval),
        Err(RecvTimeoutError::Timeout)
    )
}

// ANCHOR: probe
/// Run the check once, through `mini-docker exec` (a process of its own: joining
/// the container's namespaces and cgroup is not for the monitor). Past the timeout
/// the check's process in the container is killed, and the result is -1.
fn probe(store: &Path, container: &Container, check: &Check) -> Probe {
    let start = now();
    let command = check.command().unwrap_or_default();
    let (mut reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed(start, format!("pipe: {e}")),
    };
    let spawned = std::process::Command::new("/proc/self/exe")
        .arg("--root")
        .arg(store)
        .arg("exec")
        .arg(&container.id)
        .args(&command)
        .stdin(std::process::Stdio::null())
        .stdout(
            writer
                .try_clone()
                .map_or(std::process::Stdio::null(), Into::into),
        )
        .stderr(writer)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return failed(start, format!("mini-docker exec: {e}")),
    };
    let output = std::thread::spawn(move || {
        let mut bytes = vec![];
        let _ = reader
            .by_ref()
            .take(OUTPUT_MAX as u64)
            .read_to_end(&mut bytes);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let timeout = or(check.timeout, DEFAULT_TIMEOUT);
    let in_time = crate::lifecycle::wait_pid(child.id() as i32, Some(timeout));
    if !in_time {
        // The exec's process in the container, which the exec then reaps (were the
        // exec killed first, it would be left to the container's PID 1: a zombie
        // there, unless that reaps); the exec itself only if it does not end then.
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        for pid in std::fs::read_to_string(children)
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(pid) = pid.parse() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !crate::lifecycle::wait_pid(child.id() as i32, Some(Duration::from_secs(5))) {
            let _ = child.kill();
        }
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    let output = output.join().unwrap_or_default();
    match in_time {
        true => Probe {
            start,
            end: now(),
            exit_code: code,
            output,
        },
        false => failed(
            start,
            format!("Health check exceeded timeout ({})", shown(timeout)),
        ),
    }
}
// ANCHOR_END: probe

fn failed(start: String, output: String) -> Probe {
    Probe {
        start,
        end: now(),
        exit_code: -1,
        output,
    }
}

/// A duration as Go prints it: 500ms, 2s, 1m30s.
fn shown(d: Duration) -> String {
    match d.as_millis() {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms % 1000 == 0 && ms < 60_000 => format!("{}s", ms / 1000),
        ms => format!("{}s", ms as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_as_docker_gives_them() {
        let probe = |code| Probe {
            exit_code: code,
            ..Probe::default()
        };
        let mut h = Health {
            status: "starting".into(),
            ..Health::default()
        };
        h.record(probe(1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(probe(1), false, 2);
        h.record(probe(1), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        h.record(probe(0), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..7 {
            h.record(probe(0), false, 2);
        }
        assert_eq!(h.log.len(), KEPT);
    }

    #[test]
    fn flags_over_the_image() {
        let image = serde_json::json!({"Test": ["CMD", "true"], "Retries": 5});
        let flags = HealthArgs {
            interval: Some("100ms".into()),
            ..HealthArgs::default()
        };
        let check = flags.check(Some(&image)).unwrap().unwrap();
        assert_eq!((check.retries, check.interval), (5, 100_000_000));
        assert_eq!(HealthArgs::default().check(None).unwrap(), None);
        let none = HealthArgs {
            none: true,
            ..HealthArgs::default()
        };
        assert_eq!(none.check(Some(&image)).unwrap(), None);
        for bad in [
            HealthArgs {
                interval: Some("soon".into()),
                cmd: Some("true".into()),
                ..HealthArgs::default()
            },
            HealthArgs {
                retries: Some(2),
                ..HealthArgs::default()
            },
            HealthArgs {
                none: true,
                cmd: Some("true".into()),
                ..HealthArgs::default()
            },
        ] {
            assert!(bad.check(None).is_err(), "{bad:?}");
        }
    }
}
