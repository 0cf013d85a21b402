//! `compose`: a project of services from a compose file, each service a container
//! made with `run`'s own flags (the file is a way of writing them down), on the
//! project's networks (a default one unless told: services find each other by
//! service name there) and with its named volumes. Containers carry Compose's
//! labels, by which every verb finds the project's own.

pub mod model;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use labkit::{Failure, Result};
use sha2::{Digest, Sha256};

use crate::container::{self, Container};
use crate::store::Store;
use model::{DependsOn, Networks, Port, Project, Service, Volume, Words};

const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const HASH: &str = "com.docker.compose.config-hash";

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// The compose file (default: compose.yaml here, or compose.yml,
    /// docker-compose.yaml, docker-compose.yml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The project name (default: the file's `name:`, or its directory's name).
    #[arg(
        short = 'p',
        long = "project-name",
        value_name = "NAME",
        env = "COMPOSE_PROJECT_NAME"
    )]
    project: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Create and start the services' containers (and networks, volumes, images).
    Up {
        /// In the background: return once they run.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Build images first, even those that exist.
        #[arg(long)]
        build: bool,
        services: Vec<String>,
    },
    /// Stop and remove the containers and networks (-v: the named volumes too).
    Down {
        #[arg(short = 'v', long)]
        volumes: bool,
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
    },
    /// The project's containers.
    Ps {
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Their output, each line after its container's name.
    Logs {
        #[arg(short = 'f', long)]
        follow: bool,
        services: Vec<String>,
    },
    /// Run a command in a service's running container.
    Exec {
        /// Accepted, as Compose's: mini-docker's exec has no terminal unless asked.
        #[arg(short = 'T')]
        no_tty: bool,
        service: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Stop services.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
        services: Vec<String>,
    },
    /// Start services' existing containers.
    Start { services: Vec<String> },
    /// Stop, then start services.
    Restart {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
        services: Vec<String>,
    },
    /// Build the services that have `build:`.
    Build { services: Vec<String> },
    /// Pull the images of the services that have no `build:`.
    Pull { services: Vec<String> },
    /// The file as mini-docker reads it: interpolated, short forms made long.
    Config,
}

/// `compose ...`; its exit code.
pub fn compose(store: &Store, args: ComposeArgs) -> Result<i32> {
    let path = model::find_file(args.file.as_deref())?;
    let project = model::load(&path, args.project.as_deref())?;
    match args.verb {
        Verb::Up {
            detach,
            build,
            services,
        } => up(store, &project, &services, build, detach),
        Verb::Down { volumes, timeout } => {
            down(store, &project, volumes, Duration::from_secs(timeout)).map(|()| 0)
        }
        Verb::Ps { all } => {
            print!("{}", ps(store, &project, all));
            Ok(0)
        }
        Verb::Logs { follow, services } => {
            selected(&project, &services)?;
            let shown = prefixed(&containers(store, &project, &services));
            crate::show::logs_of(&shown, follow, false, None)
        }
        Verb::Exec {
            no_tty: _,
            service,
            command,
        } => {
            let c = one(store, &project, &service)?;
            crate::lifecycle::exec(&c, &command, &Default::default())
        }
        Verb::Stop { timeout, services } => each(store, &project, &services, "Stopped", |c| {
            crate::lifecycle::stop(c, Duration::from_secs(timeout))
        }),
        Verb::Start { services } => each(store, &project, &services, "Started", |c| {
            crate::lifecycle::start(store, c, false).map(drop)
        }),
        Verb::Restart { timeout, services } => each(store, &project, &services, "Restarted", |c| {
            crate::lifecycle::stop(c, Duration::from_secs(timeout))?;
            crate::lifecycle::start(store, c, false).map(drop)
        }),
        Verb::Build { services } => {
            for (name, service) in selected(&project, &services)? {
                if service.build.is_some() {
                    build(store, &project, name, service)?;
                }
            }
            Ok(0)
        }
        Verb::Pull { services } => {
            for (name, service) in selected(&project, &services)? {
                if let (Some(image), None) = (&service.image, &service.build) {
                    eprintln!(" Service {name}  Pulling {image}");
                    crate::pull::pull(store, image, None, &mut std::io::stderr())?;
                }
            }
            Ok(0)
        }
        Verb::Config => {
            let mut file = project.file.clone();
            file.name = Some(project.name.clone());
            file.version = None;
            let mut value = yaml_serde::to_value(&file).map_err(|e| Failure::new(e.to_string()))?;
            if let Some(top) = value.as_mapping_mut() {
                // `notes:` alone declares a volume: a null kept at this level.
                for (_, v) in top.iter_mut() {
                    v.as_mapping_mut()
                        .into_iter()
                        .flatten()
                        .for_each(|(_, v)| prune(v));
                }
                top.retain(|_, v| !v.is_null() && v.as_mapping().is_none_or(|m| !m.is_empty()));
            }
            let text = yaml_serde::to_string(&value).map_err(|e| Failure::new(e.to_string()))?;
            print!("{text}");
            Ok(0)
        }
    }
}

/// Nulls and empty lists taken out: what the file did not say.
fn prune(value: &mut yaml_serde::Value) {
    match value {
        yaml_serde::Value::Mapping(map) => {
            map.retain(|_, v| !v.is_null() && v.as_sequence().is_none_or(|s| !s.is_empty()));
            map.iter_mut().for_each(|(_, v)| prune(v));
        }
        yaml_serde::Value::Sequence(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// The services named (all when none), in the file's order; an unknown one is an error.
fn selected<'a>(project: &'a Project, names: &[String]) -> Result<Vec<(&'a String, &'a Service)>> {
    if let Some(bad) = names
        .iter()
        .find(|n| !project.file.services.contains_key(*n))
    {
        return Err(Failure::new(format!("no such service: {bad}")));
    }
    Ok((project.file.services.iter())
        .filter(|(name, _)| names.is_empty() || names.contains(name))
        .collect())
}

/// The name of a service's container: `container_name`, or `PROJECT-SERVICE-1`.
fn container_name(project: &Project, name: &str, service: &Service) -> String {
    (service.container_name.clone()).unwrap_or_else(|| format!("{}-{name}-1", project.name))
}

/// The project's containers (of these services, or all), by their labels.
fn containers(store: &Store, project: &Project, services: &[String]) -> Vec<(String, Container)> {
    (container::list(store).into_iter())
        .filter_map(|c| {
            let labels = c.config().ok()?.labels;
            let service = labels.get(SERVICE)?.clone();
            let ours = labels.get(PROJECT) == Some(&project.name)
                && (services.is_empty() || services.contains(&service));
            ours.then_some((service, c))
        })
        .collect()
}

fn one(store: &Store, project: &Project, service: &str) -> Result<Container> {
    selected(project, &[service.to_string()])?;
    let found = containers(store, project, &[service.to_string()]);
    found
        .into_iter()
        .map(|(_, c)| c)
        .next()
        .ok_or_else(|| Failure::new(format!("service {service:?} is not running")))
}

/// `web-1  | `: Compose's prefix, padded to the longest name.
fn prefixed(found: &[(String, Container)]) -> Vec<(String, Container)> {
    let width = found.iter().map(|(_, c)| c.name.len()).max().unwrap_or(0);
    (found.iter())
        .map(|(_, c)| (format!("{:<width$}  | ", c.name), c.clone()))
        .collect()
}

fn each(
    store: &Store,
    project: &Project,
    services: &[String],
    done: &str,
    action: impl Fn(&Container) -> Result<()>,
) -> Result<i32> {
    selected(project, services)?;
    for (_, c) in containers(store, project, services) {
        action(&c)?;
        eprintln!(" Container {}  {done}", c.name);
    }
    Ok(0)
}

/// Services in an order where each comes after what it depends on.
fn ordered(project: &Project) -> Result<Vec<&String>> {
    let mut done: Vec<&String> = vec![];
    let services = &project.file.services;
    while done.len() < services.len() {
        let ready = (services.iter())
            .filter(|(name, _)| !done.contains(name))
            .find(|(_, s)| dependencies(s).keys().all(|d| done.contains(&d)));
        match ready {
            Some((name, _)) => done.push(name),
            None => {
                let left: Vec<&String> = services.keys().filter(|n| !done.contains(n)).collect();
                return Err(Failure::new(format!(
                    "dependency cycle, or a dependency on no service, among: {}",
                    left.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(done)
}

fn dependencies(service: &Service) -> BTreeMap<String, String> {
    match &service.depends_on {
        None => BTreeMap::new(),
        Some(DependsOn::List(list)) => (list.iter())
            .map(|d| (d.clone(), "service_started".to_string()))
            .collect(),
        Some(DependsOn::Map(map)) => (map.iter())
            .map(|(d, dep)| (d.clone(), dep.condition.clone()))
            .collect(),
    }
}

/// The project's network names on the host: `PROJECT_NAME`, or an external one's.
fn network_name(project: &Project, name: &str) -> String {
    match project.file.networks.get(name).cloned().flatten() {
        Some(r) if r.external => r.name.unwrap_or_else(|| name.to_string()),
        Some(model::Resource { name: Some(n), .. }) => n,
        _ => format!("{}_{name}", project.name),
    }
}

fn volume_name(project: &Project, name: &str) -> String {
    match project.file.volumes.get(name).cloned().flatten() {
        Some(r) if r.external => r.name.unwrap_or_else(|| name.to_string()),
        Some(model::Resource { name: Some(n), .. }) => n,
        _ => format!("{}_{name}", project.name),
    }
}

/// A service's networks: its own, or the project's `default`.
fn service_networks(service: &Service) -> Vec<(String, Vec<String>, Option<String>)> {
    match &service.networks {
        None => vec![("default".into(), vec![], None)],
        Some(Networks::List(list)) => list.iter().map(|n| (n.clone(), vec![], None)).collect(),
        Some(Networks::Map(map)) => (map.iter())
            .map(|(n, s)| {
                let s = s.clone().unwrap_or_default();
                (n.clone(), s.aliases.unwrap_or_default(), s.ipv4_address)
            })
            .collect(),
    }
}

// ANCHOR: up
/// `up`: networks and volumes first, then each service in dependency order: its
/// image (built or pulled), its dependencies' conditions waited for, its container
/// created and started, or kept when it runs with the same configuration.
fn up(
    store: &Store,
    project: &Project,
    only: &[String],
    rebuild: bool,
    detach: bool,
) -> Result<i32> {
    selected(project, only)?;
    check(project)?;
    make_networks(store, project)?;
    make_volumes(store, project)?;
    for name in ordered(project)? {
        let service = &project.file.services[name];
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        for (dependency, condition) in dependencies(service) {
            wait_for(store, project, &dependency, &condition)?;
        }
        let image = image_for(store, project, name, service, rebuild)?;
        start_service(store, project, name, service, &image)?;
    }
    if detach {
        return Ok(0);
    }
    let shown = prefixed(&containers(store, project, only));
    crate::show::logs_of(&shown, true, false, None)
}
// ANCHOR_END: up

/// Everything the file says checked before anything is made: no half-made project
/// is left by a mistake in its last service.
fn check(project: &Project) -> Result<()> {
    ordered(project)?;
    for (name, service) in &project.file.services {
        let refused = |why: String| Failure::new(format!("service {name}: {why}"));
        if service.image.is_none() && service.build.is_none() {
            return Err(refused("has neither an image nor a build context".into()));
        }
        for (net, _, _) in service_networks(service) {
            if net != "default" && !project.file.networks.contains_key(&net) {
                return Err(refused(format!("refers to undefined network {net}")));
            }
        }
        for volume in &service.volumes {
            if let Volume::Short(text) = volume
                && let Some((source, _)) = text.split_once(':')
                && !source.starts_with(['.', '/', '~'])
                && !project.file.volumes.contains_key(source)
            {
                return Err(refused(format!("refers to undefined volume {source}")));
            }
        }
        for port in &service.ports {
            port_text(port).map_err(|e| refused(e.message().to_string()))?;
        }
        if let Some(policy) = &service.restart {
            crate::container::RestartPolicy::parse(policy)
                .map_err(|e| refused(e.message().to_string()))?;
        }
    }
    Ok(())
}

fn make_networks(store: &Store, project: &Project) -> Result<()> {
    let mut wanted: Vec<String> = (project.file.services.values())
        .flat_map(service_networks)
        .map(|(n, _, _)| n)
        .collect();
    wanted.sort();
    wanted.dedup();
    for name in wanted {
        let declared = project
            .file
            .networks
            .get(&name)
            .cloned()
            .flatten()
            .unwrap_or_default();
        if name != "default" && !project.file.networks.contains_key(&name) {
            return Err(Failure::new(format!(
                "service refers to undefined network {name}: invalid compose project"
            )));
        }
        let host_name = network_name(project, &name);
        if crate::network::find(store, &host_name).is_ok() {
            continue;
        }
        if declared.external {
            return Err(Failure::new(format!(
                "network {host_name} declared as external, but could not be found"
            )));
        }
        let mut labels = vec![format!("{PROJECT}={}", project.name)];
        labels.extend(declared.labels.map(|l| l.items()).unwrap_or_default());
        let args = crate::network::CreateArgs {
            subnet: None,
            gateway: None,
            internal: declared.internal,
            driver: "bridge".into(),
            labels,
            name: host_name.clone(),
        };
        crate::network::create(store, &args)?;
        eprintln!(" Network {host_name}  Created");
    }
    Ok(())
}

fn make_volumes(store: &Store, project: &Project) -> Result<()> {
    for (name, declared) in &project.file.volumes {
        let declared = declared.clone().unwrap_or_default();
        let host_name = volume_name(project, name);
        if crate::volume::find(store, &host_name).is_ok() {
            continue;
        }
        if declared.external {
            return Err(Failure::new(format!(
                "external volume \"{host_name}\" not found"
            )));
        }
        let _locked = crate::store::lock(&store.root)?;
        let mut labels = vec![format!("{PROJECT}={}", project.name)];
        labels.extend(declared.labels.map(|l| l.items()).unwrap_or_default());
        crate::volume::create(store, Some(&host_name), &labels)?;
        eprintln!(" Volume \"{host_name}\"  Created");
    }
    Ok(())
}

/// The service's image: built (when asked, or missing) or named.
fn image_for(
    store: &Store,
    project: &Project,
    name: &str,
    service: &Service,
    rebuild: bool,
) -> Result<String> {
    match &service.build {
        Some(_) if rebuild || !image_exists(store, project, name, service) => {
            build(store, project, name, service)
        }
        Some(_) => Ok(built_tag(project, name, service)),
        None => service.image.clone().ok_or_else(|| {
            Failure::new(format!(
                "service {name} has neither an image nor a build context"
            ))
        }),
    }
}

fn built_tag(project: &Project, name: &str, service: &Service) -> String {
    (service.image.clone()).unwrap_or_else(|| format!("{}-{name}", project.name))
}

fn image_exists(store: &Store, project: &Project, name: &str, service: &Service) -> bool {
    crate::image::find(store, &built_tag(project, name, service)).is_some()
}

/// `build:`: `mini-docker build` of its context, tagged `PROJECT-SERVICE` (or its
/// `image:`).
fn build(store: &Store, project: &Project, name: &str, service: &Service) -> Result<String> {
    let tag = built_tag(project, name, service);
    let (context, dockerfile, args, target) = match &service.build {
        Some(model::Build::Context(c)) => (c.clone(), None, vec![], None),
        Some(model::Build::Long {
            context,
            dockerfile,
            args,
            target,
        }) => (
            context.clone().unwrap_or_else(|| ".".into()),
            dockerfile.clone(),
            args.as_ref().map(|a| a.items()).unwrap_or_default(),
            target.clone(),
        ),
        None => return Ok(tag),
    };
    let context = project.dir.join(context);
    let mut argv = vec![
        "build".to_string(),
        "-t".into(),
        tag.clone(),
        "--progress".into(),
        "plain".into(),
    ];
    if let Some(file) = dockerfile {
        argv.extend(["-f".into(), context.join(file).display().to_string()]);
    }
    for arg in args {
        argv.extend(["--build-arg".into(), arg]);
    }
    if let Some(target) = target {
        argv.extend(["--target".into(), target]);
    }
    argv.push(context.display().to_string());
    let args = <BuildLine as clap::Parser>::try_parse_from(&argv)
        .map_err(|e| Failure::new(e.to_string().trim().to_string()))?;
    eprintln!(" Service {name}  Building");
    crate::build::build(store, &args.build)?;
    Ok(tag)
}

#[derive(clap::Parser)]
struct BuildLine {
    #[command(flatten)]
    build: crate::build::BuildArgs,
}

// ANCHOR: wait_for
/// `depends_on`'s conditions: started (running), healthy (its check says so), or
/// completed successfully (ended with 0). A dependency that cannot get there fails
/// the `up`, as Compose's "dependency failed to start".
fn wait_for(store: &Store, project: &Project, dependency: &str, condition: &str) -> Result<()> {
    let found = containers(store, project, &[dependency.to_string()]);
    let Some((_, c)) = found.first() else {
        return Err(Failure::new(format!(
            "dependency {dependency} has no container"
        )));
    };
    let failed = |why: &str| {
        Failure::new(format!(
            "dependency failed to start: container {} {why}",
            c.name
        ))
    };
    loop {
        let state = crate::lifecycle::current_state(c)?;
        let health = crate::health::read(c).map(|h| h.status);
        match condition {
            "service_started" => return Ok(()),
            "service_healthy" if health.as_deref() == Some("healthy") => return Ok(()),
            "service_healthy" if health.as_deref() == Some("unhealthy") => {
                return Err(failed("is unhealthy"));
            }
            "service_healthy" if c.config()?.healthcheck.is_none() => {
                return Err(failed("has no healthcheck configured"));
            }
            "service_completed_successfully" if !state.running && !state.restarting => {
                return match state.exit_code {
                    0 => Ok(()),
                    code => Err(failed(&format!("exited ({code})"))),
                };
            }
            "service_healthy" | "service_completed_successfully" => {}
            other => {
                return Err(Failure::new(format!(
                    "depends_on condition {other:?}: use service_started, service_healthy or \
                     service_completed_successfully"
                )));
            }
        }
        if !state.running && !state.restarting {
            return Err(failed(&format!("exited ({})", state.exit_code)));
        }
        // Health is written by the container's monitor: look again shortly.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
// ANCHOR_END: wait_for

// ANCHOR: start_service
/// The service's container: kept when it runs with the same configuration (the
/// digest of its `run` flags, in a label), started when it is stopped, made again
/// when the file changed.
fn start_service(
    store: &Store,
    project: &Project,
    name: &str,
    service: &Service,
    image: &str,
) -> Result<()> {
    let words = run_words(project, name, service, image)?;
    let networks = format!("{:?}", service_networks(service));
    let hash = format!(
        "{:x}",
        Sha256::digest((words.join("\0") + &networks).as_bytes())
    );
    let existing = containers(store, project, &[name.to_string()]);
    if let Some((_, c)) = existing.first() {
        let same = c.config()?.labels.get(HASH) == Some(&hash);
        let running = crate::lifecycle::current_state(c)?.running;
        match (same, running) {
            (true, true) => {
                eprintln!(" Container {}  Running", c.name);
                return Ok(());
            }
            (true, false) => {
                crate::lifecycle::start(store, c, false)?;
                eprintln!(" Container {}  Started", c.name);
                return Ok(());
            }
            (false, _) => {
                crate::lifecycle::rm(c, true)?;
                eprintln!(" Container {}  Recreated", c.name);
            }
        }
    }
    let mut all = vec!["--label".to_string(), format!("{HASH}={hash}")];
    all.extend(words);
    let args = crate::create::parse_line(&all)
        .map_err(|e| Failure::new(format!("service {name}: {e}")))?;
    let c = crate::create::create(store, &args)?;
    let mut config = c.config()?;
    for (network, aliases, ip) in service_networks(service).into_iter().skip(1) {
        config.extra_networks.push(crate::container::Endpoint {
            network: network_name(project, &network),
            aliases: std::iter::once(name.to_string()).chain(aliases).collect(),
            ip,
        });
    }
    c.save_config(&config)?;
    crate::lifecycle::start(store, &c, false)?;
    eprintln!(" Container {}  Started", c.name);
    Ok(())
}
// ANCHOR_END: start_service

// ANCHOR: run_words
/// A service as `run`'s flags: what `mini-docker run -d` would be typed with.
fn run_words(project: &Project, name: &str, service: &Service, image: &str) -> Result<Vec<String>> {
    let mut w: Vec<String> = vec![];
    let mut flag = |f: &str, v: String| w.extend([f.to_string(), v]);
    flag("--name", container_name(project, name, service));
    flag("--label", format!("{PROJECT}={}", project.name));
    flag("--label", format!("{SERVICE}={name}"));
    for label in service
        .labels
        .as_ref()
        .map(|l| l.items())
        .unwrap_or_default()
    {
        flag("--label", label);
    }
    // Its first network here; the others are connected before it starts.
    let networks = service_networks(service);
    let Some((network, aliases, ip)) = networks.first() else {
        return Err(Failure::new(format!("service {name}: no network")));
    };
    flag("--network", network_name(project, network));
    // On its networks a service is found by its name.
    for alias in std::iter::once(name).chain(aliases.iter().map(String::as_str)) {
        flag("--network-alias", alias.to_string());
    }
    if let Some(ip) = ip {
        flag("--ip", ip.clone());
    }
    if let Some(host) = &service.hostname {
        flag("--hostname", host.clone());
    }
    for file in words_of(&service.env_file) {
        flag("--env-file", project.dir.join(file).display().to_string());
    }
    for item in service
        .environment
        .as_ref()
        .map(|e| e.items())
        .unwrap_or_default()
    {
        flag("-e", item);
    }
    for port in &service.ports {
        flag("-p", port_text(port)?);
    }
    for volume in &service.volumes {
        flag("--mount", mount_text(project, volume)?);
    }
    if let Some(policy) = &service.restart {
        flag("--restart", policy.clone());
    }
    if let Some(user) = &service.user {
        flag("--user", user.clone());
    }
    if let Some(dir) = &service.working_dir {
        flag("--workdir", dir.clone());
    }
    health_words(service.healthcheck.as_ref(), &mut flag);
    let entrypoint = service.entrypoint.as_ref().map(command_words);
    if let Some(entry) = &entrypoint {
        flag("--entrypoint", entry.first().cloned().unwrap_or_default());
    }
    w.push(image.to_string());
    w.extend(entrypoint.iter().flat_map(|e| e.iter().skip(1).cloned()));
    w.extend(
        service
            .command
            .as_ref()
            .map(command_words)
            .unwrap_or_default(),
    );
    Ok(w)
}
// ANCHOR_END: run_words

fn words_of(words: &Option<Words>) -> Vec<String> {
    match words {
        None => vec![],
        Some(Words::One(one)) => vec![one.clone()],
        Some(Words::Many(many)) => many.clone(),
    }
}

/// A command as a string is split as a shell would split it (no shell runs it).
fn command_words(words: &Words) -> Vec<String> {
    match words {
        Words::Many(many) => many.clone(),
        Words::One(line) => crate::dockerfile::words(line, '\\', &|n| Some(format!("${n}"))),
    }
}

fn health_words(check: Option<&model::Healthcheck>, flag: &mut impl FnMut(&str, String)) {
    let Some(check) = check else {
        return;
    };
    if check.disable
        || matches!(&check.test, Some(Words::Many(t)) if t.first().map(String::as_str) == Some("NONE"))
    {
        flag("--no-healthcheck", String::new());
        return;
    }
    let line = match &check.test {
        Some(Words::One(line)) => Some(line.clone()),
        Some(Words::Many(test)) => match test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => Some(rest.join(" ")),
            Some((kind, rest)) if kind == "CMD" => Some(
                rest.iter()
                    .map(|w| labkit::narrate::shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        },
        None => None,
    };
    if let Some(line) = line {
        flag("--health-cmd", line);
    }
    let optional = [
        ("--health-interval", &check.interval),
        ("--health-timeout", &check.timeout),
        ("--health-start-period", &check.start_period),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            flag(name, value.clone());
        }
    }
    if let Some(retries) = check.retries {
        flag("--health-retries", retries.to_string());
    }
}

fn port_text(port: &Port) -> Result<String> {
    Ok(match port {
        Port::Short(text) => match text.split_once(':') {
            Some(_) => text.clone(),
            None => {
                return Err(Failure::new(format!(
                    "ports: {text:?}: mini-docker publishes HOST:CONTAINER; give the host port"
                )));
            }
        },
        Port::Number(n) => {
            return Err(Failure::new(format!(
                "ports: {n}: mini-docker publishes HOST:CONTAINER; give the host port"
            )));
        }
        Port::Long {
            target,
            published,
            protocol,
        } => {
            let published = published.as_ref().map(|p| match p {
                yaml_serde::Value::String(s) => s.clone(),
                other => yaml_serde::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            });
            let Some(host) = published else {
                return Err(Failure::new(format!(
                    "ports: target {target}: give `published:`"
                )));
            };
            format!(
                "{host}:{target}/{}",
                protocol.clone().unwrap_or_else(|| "tcp".into())
            )
        }
    })
}

/// A volume entry as `--mount`: a named volume of the project (its host name), or
/// a host path (relative to the project's directory: made when missing, as `-v`).
fn mount_text(project: &Project, volume: &Volume) -> Result<String> {
    let (kind, source, target, read_only) = match volume {
        Volume::Long {
            kind,
            source,
            target,
            read_only,
        } => (
            kind.clone(),
            source.clone().unwrap_or_default(),
            target.clone(),
            read_only.unwrap_or(false),
        ),
        Volume::Short(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            let (source, target, mode) = match parts[..] {
                [t] => ("", t, ""),
                [s, t] => (s, t, ""),
                [s, t, m] => (s, t, m),
                _ => {
                    return Err(Failure::new(format!(
                        "volumes: {text:?}: use SOURCE:TARGET[:ro]"
                    )));
                }
            };
            let kind = match source {
                "" => "volume",
                s if s.starts_with(['.', '/', '~']) => "bind",
                _ => "volume",
            };
            (
                kind.to_string(),
                source.to_string(),
                target.to_string(),
                mode.split(',').any(|m| m == "ro"),
            )
        }
    };
    let source = match kind.as_str() {
        "volume" if source.is_empty() => String::new(),
        "volume" if !project.file.volumes.contains_key(&source) => {
            return Err(Failure::new(format!(
                "service refers to undefined volume {source}: invalid compose project"
            )));
        }
        "volume" => volume_name(project, &source),
        "bind" => {
            let path = project.dir.join(&source);
            std::fs::create_dir_all(&path).map_err(|e| {
                Failure::new(format!(
                    "{}: {}",
                    path.display(),
                    labkit::failure::describe_io(&e)
                ))
            })?;
            path.canonicalize().unwrap_or(path).display().to_string()
        }
        other => other.to_string(), // tmpfs, or refused by --mount
    };
    let mut text = format!("type={kind},target={target}");
    if !source.is_empty() {
        text = format!("{text},source={source}");
    }
    if read_only {
        text.push_str(",readonly");
    }
    Ok(text)
}

// ANCHOR: down
/// `down`: the project's containers stopped and removed, then its networks; with
/// `-v`, its named volumes and the containers' anonymous ones.
fn down(store: &Store, project: &Project, volumes: bool, timeout: Duration) -> Result<()> {
    for (_, c) in containers(store, project, &[]) {
        let mounts = c.config()?.mounts;
        crate::lifecycle::stop(&c, timeout)?;
        crate::lifecycle::rm(&c, true)?;
        eprintln!(" Container {}  Removed", c.name);
        if volumes {
            crate::volume::remove_anonymous(store, &mounts);
        }
    }
    for network in crate::network::list(store) {
        if network.labels.get(PROJECT) == Some(&project.name) {
            crate::network::remove(store, &network.name)?;
            eprintln!(" Network {}  Removed", network.name);
        }
    }
    if volumes {
        for volume in crate::volume::list(store) {
            let ours = volume.labels.as_ref().and_then(|l| l.get(PROJECT)) == Some(&project.name);
            if ours {
                crate::volume::remove(store, &volume.name, false)?;
                eprintln!(" Volume {}  Removed", volume.name);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: down

/// `ps`: Compose's columns.
fn ps(store: &Store, project: &Project, all: bool) -> String {
    let mut rows = vec![
        ["NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"]
            .map(String::from)
            .to_vec(),
    ];
    for (service, c) in containers(store, project, &[]) {
        let config = c.config().unwrap_or_default();
        let state = crate::lifecycle::current_state(&c).unwrap_or_default();
        if !all && !state.running && !state.restarting {
            continue;
        }
        let status = crate::show::status_of(&c);
        let ports = crate::show::ports_text(&state.ports);
        rows.push(vec![c.name.clone(), config.image, service, status, ports]);
    }
    crate::show::table(&rows)
}
