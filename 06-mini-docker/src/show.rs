//! ps, logs, inspect, images: reading the store, as Docker shows it.

use std::io::Write;

use labkit::{Failure, Result};
use serde_json::json;

use crate::container::{self, Container, Status};
use crate::image::{self, Image};
use crate::lifecycle::current_state;
use crate::logs;
use crate::reference::Reference;
use crate::store::{Store, human_since};

/// Columns padded to the widest cell, three spaces apart, as Docker's tables.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn status_text(container: &Container) -> (bool, String) {
    match current_state(container) {
        Err(_) => (false, "Damaged (see: mini-docker rm -f)".into()),
        Ok(state) => match state.status {
            Status::Created => (false, "Created".into()),
            Status::Running => {
                let health = match crate::health::read(container).map(|h| h.status) {
                    Some(s) if s == "starting" => " (health: starting)".to_string(),
                    Some(s) => format!(" ({s})"),
                    None => String::new(),
                };
                (
                    true,
                    format!("Up {}{health}", human_since(&state.started_at)),
                )
            }
            Status::Paused => (
                true,
                format!("Up {} (Paused)", human_since(&state.started_at)),
            ),
            Status::Exited => (
                false,
                format!(
                    "Exited ({}) {} ago",
                    state.exit_code,
                    human_since(&state.finished_at)
                ),
            ),
            Status::Restarting => (
                true,
                format!(
                    "Restarting ({}) {} ago",
                    state.exit_code,
                    human_since(&state.finished_at)
                ),
            ),
            Status::Dead => (false, "Dead".into()),
        },
    }
}

/// What `ps` says in its PORTS column: `0.0.0.0:8080->80/tcp, ...`.
pub fn ports_text(ports: &[ch05_network::args::Publish]) -> String {
    (ports.iter())
        .map(|p| {
            format!(
                "0.0.0.0:{}->{}/{}",
                p.host_port, p.container_port, p.protocol
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `ps` says in its STATUS column.
pub fn status_of(container: &Container) -> String {
    status_text(container).1
}

/// `ps --filter`: every condition must hold.
#[derive(Debug, Default)]
pub struct Filter {
    status: Vec<String>,
    name: Vec<String>,
}

impl Filter {
    pub fn parse(flags: &[String]) -> Result<Filter> {
        let mut filter = Filter::default();
        for flag in flags {
            match flag.split_once('=') {
                Some(("status", value)) => filter.status.push(value.to_string()),
                Some(("name", value)) => filter.name.push(value.to_string()),
                _ => {
                    return Err(Failure::new(format!(
                        "--filter {flag}: use status=STATE or name=PART"
                    )));
                }
            }
        }
        Ok(filter)
    }

    fn keeps(&self, c: &Container) -> bool {
        // ANCHOR: hole_ps_filter
        let status = current_state(c)
            .map(|s| s.status.to_string())
            .unwrap_or_default();
        (self.status.is_empty() || self.status.contains(&status))
            && self.name.iter().all(|part| c.name.contains(part.as_str()))
        // ANCHOR_END: hole_ps_filter
    }
}

// ANCHOR: ps
pub fn ps(store: &Store, all: bool, quiet: bool, filter: &Filter) -> String {
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut ids = String::new();
    for c in container::list(store).iter().rev() {
        let (running, status) = status_text(c);
        if (!all && !running) || !filter.keeps(c) {
            continue;
        }
        ids.push_str(&format!("{}\n", c.short_id()));
        let config = c.config().unwrap_or_default();
        let mut command = labkit::narrate::shell_line(&config.cmd);
        if command.chars().count() > 20 {
            command = format!("{}…", command.chars().take(19).collect::<String>());
        }
        // What this run published (-P's ports are chosen at each start).
        let state = current_state(c).unwrap_or_default();
        let published = if running {
            &state.ports
        } else {
            &config.publish
        };
        let ports = ports_text(published);
        rows.push(vec![
            c.short_id().to_string(),
            config.image,
            format!("\"{command}\""),
            format!("{} ago", human_since(&c.created)),
            status,
            ports,
            c.name.clone(),
        ]);
    }
    if quiet { ids } else { table(&rows) }
}
// ANCHOR_END: ps

/// The log, as the container wrote it: stdout to stdout, stderr to stderr.
pub fn logs(
    container: &Container,
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
) -> Result<i32> {
    logs_of(
        &[(String::new(), container.clone())],
        follow,
        timestamps,
        tail,
    )
}

/// The logs of several containers, each line after its prefix (`compose logs`:
/// `web-1  | `); with `follow`, until none of them runs (or restarts) any more.
pub fn logs_of(
    containers: &[(String, Container)],
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
) -> Result<i32> {
    let mut shown = vec![None; containers.len()];
    loop {
        let mut live = false;
        for ((prefix, container), shown) in containers.iter().zip(&mut shown) {
            let lines = logs::read(&container.log()).unwrap_or_default();
            let start = match (*shown, tail) {
                (Some(n), _) => n,
                (None, Some(n)) => lines.len().saturating_sub(n),
                (None, None) => 0,
            };
            for line in lines.iter().skip(start) {
                let text = match timestamps {
                    true => format!("{prefix}{} {}", line.time, line.log),
                    false => format!("{prefix}{}", line.log),
                };
                let _ = match line.stream.as_str() {
                    "stderr" => std::io::stderr().write_all(text.as_bytes()),
                    _ => std::io::stdout().write_all(text.as_bytes()),
                };
            }
            *shown = Some(lines.len());
            live |= current_state(container).is_ok_and(|s| s.running || s.restarting);
        }
        let _ = std::io::stdout().flush();
        if !follow || !live {
            return Ok(0);
        }
        // `logs -f` is a reader, not the start path: a short nap between looks.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

// ANCHOR: inspect
pub fn inspect(store: &Store, names: &[String]) -> Result<i32> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in names {
        let container = container::find(store, name);
        if container.is_err()
            && let Some(image) = image::find(store, name)
        {
            out.push(image_json(&image));
            continue;
        }
        let found = container.and_then(|c| {
            let state = current_state(&c)?;
            let config = c.config()?;
            Ok(json!({
                "Id": c.id,
                "Created": c.created,
                "Name": format!("/{}", c.name),
                "Image": config.image_id,
                "RestartCount": state.restart_count,
                "State": with_health(&c, &state),
                "Config": config,
                "NetworkSettings": {
                    "IPAddress": state.ip_address,
                    "Ports": config.publish,
                },
                "Mounts": config.mounts,
                "LogPath": c.log(),
                // config.json, written at each start (what --runtime is handed).
                "Bundle": crate::spec::bundle_dir(&c.dir),
            }))
        });
        match found {
            Ok(value) => out.push(value),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    let text = serde_json::to_string_pretty(&out).map_err(|e| Failure::new(e.to_string()))?;
    println!("{text}");
    Ok(i32::from(failed))
}
// ANCHOR_END: inspect

/// Untagged images that are the parent of another (a build's steps) are left out
/// unless `all`, as `docker images` leaves them out.
pub fn images(store: &Store, digests: bool, all: bool) -> String {
    let mut head = vec!["REPOSITORY", "TAG"];
    if digests {
        head.push("DIGEST");
    }
    head.extend(["IMAGE ID", "CREATED", "LAYERS"]);
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    let images = image::list(store);
    let is_parent = |id: &str| images.iter().any(|i| i.parent.as_deref() == Some(id));
    for image in images
        .iter()
        .filter(|i| all || !i.tags.is_empty() || !is_parent(&i.id))
    {
        let named: Vec<(String, String)> = image
            .tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| (r.familiar_name(), r.name(), r.tag.unwrap_or_default()))
            .map(|(shown, name, tag)| (format!("{shown}\0{tag}"), name))
            .collect();
        let untagged = [("<none>\0<none>".to_string(), String::new())];
        let names = if named.is_empty() {
            &untagged[..]
        } else {
            &named[..]
        };
        for (shown, name) in names {
            let (repo, tag) = shown.split_once('\0').unwrap_or((shown, ""));
            let mut row = vec![repo.to_string(), tag.to_string()];
            if digests {
                let pinned = image
                    .repo_digests
                    .iter()
                    .find_map(|d| d.strip_prefix(&format!("{name}@")));
                row.push(pinned.unwrap_or("<none>").to_string());
            }
            row.extend([
                image.id[..12].to_string(),
                format!("{} ago", human_since(&image.created)),
                image.layers.len().to_string(),
            ]);
            rows.push(row);
        }
    }
    table(&rows)
}

/// The processes in the container's cgroup, with their host PIDs.
pub fn top(container: &Container) -> Result<String> {
    let group = crate::lifecycle::group_of(container)
        .map_err(|_| Failure::new(format!("Container {} is not running", container.name)))?;
    let mut rows = vec![vec!["PID".to_string(), "PPID".into(), "CMD".into()]];
    for pid in group.procs() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        rows.push(vec![pid.to_string(), ppid, cmd]);
    }
    Ok(table(&rows))
}

/// Chapter 03's counters, as `docker stats --no-stream` shows them.
pub fn stats(store: &Store, names: &[String]) -> Result<String> {
    let mut rows = vec![
        [
            "CONTAINER ID",
            "NAME",
            "CPU TIME",
            "MEM USAGE / LIMIT",
            "BLOCK I/O",
            "PIDS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let chosen: Vec<Container> = match names.is_empty() {
        true => container::list(store)
            .into_iter()
            .filter(|c| current_state(c).is_ok_and(|s| s.running))
            .collect(),
        false => names
            .iter()
            .map(|n| container::find(store, n))
            .collect::<Result<_>>()?,
    };
    // No limit shows as the host's memory, as in `docker stats`.
    let host = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kib = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
        Some(
            kib.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()?
                * 1024,
        )
    });
    for c in chosen {
        let Ok(group) = crate::lifecycle::group_of(&c) else {
            continue;
        };
        let mut s = ch03_cgroups::stats::Stats::read(&group);
        s.memory_limit = s.memory_limit.filter(|l| Some(*l) < host).or(host);
        let mib = |b: Option<u64>| b.map_or("-".into(), ch03_cgroups::stats::mib);
        rows.push(vec![
            c.short_id().into(),
            c.name.clone(),
            s.cpu_usec
                .map_or("-".into(), |u| format!("{:.2}s", u as f64 / 1e6)),
            // As `docker stats`: usage less the page cache the kernel drops first.
            format!("{} / {}", mib(s.memory_usage()), mib(s.memory_limit)),
            format!("{} / {}", mib(s.io_read), mib(s.io_written)),
            s.pids_now.map_or("-".into(), |p| p.to_string()),
        ]);
    }
    Ok(table(&rows))
}

/// Newest step first, as `docker history`: the layer each step made and its size
/// (the bytes of its files), or `-` and 0B for a step that changed only the config.
pub fn history(store: &Store, reference: &str) -> Result<String> {
    let image = image::find(store, reference)
        .ok_or_else(|| Failure::new(format!("No such image: {reference}")))?;
    let mut rows = vec![vec![
        "LAYER".to_string(),
        "CREATED BY".into(),
        "SIZE".into(),
    ]];
    let mut layers = image.layers.iter();
    let mut lines = vec![];
    for step in &image.history {
        let layer = match step.empty_layer {
            true => None,
            false => layers.next(),
        };
        let size = layer.map_or(0, |l| bytes_in(&store.layer(l)));
        lines.push(vec![
            layer.map_or("-".into(), |l| l[..12].to_string()),
            step.created_by.clone(),
            crate::pull::human(size),
        ]);
    }
    rows.extend(lines.into_iter().rev());
    Ok(table(&rows))
}

/// The bytes of the files under `dir` (what `du --apparent-size` counts, roughly).
pub fn bytes_in(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_in(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `port`: what the running container publishes, `80/tcp -> 0.0.0.0:8080`, for
/// one container port (`80`, `80/udp`) or all.
pub fn port(container: &Container, which: Option<&str>) -> Result<String> {
    let state = current_state(container)?;
    let mut out = String::new();
    for p in state.ports.iter().filter(|_| state.running) {
        let private = format!("{}/{}", p.container_port, p.protocol);
        let wanted = which.is_none_or(|w| w == private || format!("{w}/tcp") == private);
        if wanted {
            out.push_str(&format!("{private} -> 0.0.0.0:{}\n", p.host_port));
        }
    }
    match (which, out.is_empty()) {
        (Some(w), true) => Err(Failure::new(format!(
            "No public port '{w}' published for {}",
            container.name
        ))),
        _ => Ok(out),
    }
}

/// The state, with `Health` when the container has a check.
fn with_health(container: &Container, state: &crate::container::State) -> serde_json::Value {
    let mut value = json!(state);
    if container.config().is_ok_and(|c| c.healthcheck.is_some()) {
        value["Health"] = json!(crate::health::read(container));
    }
    value
}

/// `inspect IMAGE`, under `docker image inspect`'s names.
fn image_json(image: &Image) -> serde_json::Value {
    json!({
        "Id": image.digest_id(),
        "RepoTags": image.tags.iter().map(|t| image::familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests.iter().map(|t| image::familiar(t)).collect::<Vec<_>>(),
        "Created": image.created,
        "Config": image.config,
        "Os": image.platform.as_deref().unwrap_or(&crate::pull::this_platform()).split('/').next(),
        "Architecture": image.platform.as_deref().unwrap_or(&crate::pull::this_platform()).split('/').nth(1),
        "RootFS": { "Type": "layers", "LayerBlobs": image.layers.iter().map(|l| format!("sha256:{l}")).collect::<Vec<_>>() },
    })
}
