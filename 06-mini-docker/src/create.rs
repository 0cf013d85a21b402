//! `create` (and the first half of `run`): check every flag, resolve the image,
//! and write the container's directory. Nothing runs yet.

use ch03_cgroups::limits::{LimitArgs, Limits};
use ch05_network::args::{Mode, Publish};
use clap::Args;
use labkit::failure::Context;
use labkit::{Failure, Result};

use crate::container::{self, Config, Container, DeviceMapping, RestartPolicy, State};
use crate::image;
use crate::store::{Store, lock, new_id, now};

/// `run` and `create`'s flags: Docker's names and meanings.
#[derive(Args, Debug, Clone)]
#[command(mut_arg("pids_limit", |a| a.help(
    "The most processes and threads at once (default 2048; -1 or 0: no limit)"
)))]
pub struct CreateArgs {
    /// mini-docker's global `--runtime`.
    #[arg(skip)]
    pub runtime: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// The container's host name (default: its short id).
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set an environment variable: KEY=VALUE, or KEY to pass ours on; repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from FILE (KEY=VALUE lines, # comments).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// The directory the command starts in.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as UID[:GID] (numbers) instead of root.
    #[arg(short = 'u', long = "user", value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Keep stdin open: the container reads ours.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Set a label: KEY=VALUE; repeatable.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// When the container ends: no, on-failure[:N], always, unless-stopped.
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Run a tiny init as PID 1 (forwards signals, reaps orphans).
    #[arg(long)]
    pub init: bool,
    /// Override the image's entrypoint.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
    /// Add a host device: HOST[:CONTAINER][:PERMISSIONS] (some of r, w, m; default
    /// rwm), e.g. /dev/loop0:/dev/xvda:r; repeatable.
    #[arg(long, value_name = "HOST[:CONTAINER][:rwm]")]
    pub device: Vec<String>,
    /// The cgroup the container's group goes into (default /mini-docker).
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// private: a cgroup namespace of its own (the default on cgroup v2); host: ours.
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// seccomp=unconfined: no seccomp filter. (no-new-privileges is always on.)
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a capability to Docker's 14 (e.g. NET_ADMIN, or ALL); repeatable.
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Take a capability away (e.g. CHOWN, or ALL); repeatable.
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Publish a port: HOSTPORT:CONTAINERPORT[/tcp|/udp]; repeatable.
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<Publish>,
    /// Bind a host path (/HOST:/PATH, made when missing) or a volume (NAME:/PATH,
    /// made when missing; /PATH alone: an anonymous one), [:ro|:rw|:nocopy]; repeatable.
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:PATH[:MODE]")]
    pub volume: Vec<String>,
    /// type=bind|volume|tmpfs,source=SRC,target=PATH[,readonly][,volume-nocopy]
    /// [,tmpfs-size=N][,tmpfs-mode=OCTAL]; a bind's source must exist; repeatable.
    #[arg(long, value_name = "FIELDS")]
    pub mount: Vec<String>,
    /// Mount the binds and volumes of CONTAINER[:ro|:rw] at the same paths; repeatable.
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Mount the container's root read-only (write to volumes and --tmpfs only).
    #[arg(long)]
    pub read_only: bool,
    /// Mount an empty tmpfs at DIR; repeatable.
    #[arg(long, value_name = "DIR")]
    pub tmpfs: Vec<String>,
    /// bridge | none | host | container:NAME | a network made by `network create`
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    pub network: String,
    /// Another name the container is found by on its user-defined network.
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// Its IPv4 address on its bridge.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Add a line to its /etc/hosts: HOST:IP; repeatable.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// A DNS server for its /etc/resolv.conf; repeatable.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// A DNS search domain; repeatable.
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Publish every port the image EXPOSEs, each on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// For an image pulled now: os/arch[/variant] from an index (default: this
    /// machine's).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// The image (pulled when missing; busybox is built from this host instead).
    pub image: String,
    /// The command and its arguments (default: the image's).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// `run`'s flags from words, as if typed: how `build` (its RUN steps) and
/// `compose` (its services) make their containers.
#[derive(clap::Parser)]
#[command(disable_help_flag = true)]
struct Line {
    #[command(flatten)]
    create: CreateArgs,
}

pub fn parse_line(words: &[String]) -> Result<CreateArgs> {
    let argv = std::iter::once("run".to_string()).chain(words.iter().cloned());
    <Line as clap::Parser>::try_parse_from(argv)
        .map(|line| line.create)
        .map_err(|e| Failure::new(e.to_string().trim().to_string()))
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_name(name: &str) -> Result<()> {
    if !container::is_name(name) {
        return Err(Failure::new(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(())
}

/// `-u 1000` or `-u 1000:1000` (numbers: the image has no user database to ask).
pub fn user(spec: &str) -> Result<(u32, u32)> {
    let bad = || Failure::new(format!("-u {spec}: use UID or UID:GID, as numbers"));
    let (uid, gid) = spec.split_once(':').unwrap_or((spec, spec));
    Ok((
        uid.parse().map_err(|_| bad())?,
        gid.parse().map_err(|_| bad())?,
    ))
}

/// `--env-file`: one `KEY=VALUE` (or `KEY`) per line; blank lines and `#` comments
/// skipped. The lines become `-e` flags, before the command line's own.
fn env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut flags = vec![];
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::new(format!(
                "--env-file {}: {}",
                file.display(),
                labkit::failure::describe_io(&e)
            ))
        })?;
        flags.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(flags)
}

/// `-e KEY=VALUE`, or `-e KEY` for our own value of KEY (left out when we have none).
fn environment(image_env: &[String], flags: &[String]) -> Result<Vec<String>> {
    let mut env = image_env.to_vec();
    for flag in flags {
        let (key, value) = match flag.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (flag.as_str(), std::env::var(flag).ok()),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Failure::new(format!(
                "-e {flag:?}: invalid environment variable; use KEY=VALUE"
            )));
        }
        env.retain(|e| e.split('=').next() != Some(key));
        if let Some(value) = value {
            env.push(format!("{key}={value}"));
        }
    }
    Ok(env)
}

// ANCHOR: device
/// `--device HOST[:CONTAINER][:PERMISSIONS]`, parsed as Docker parses it: a second
/// part that is only r, w and m is the permissions. The host's node must be there.
fn device(spec: &str) -> Result<DeviceMapping> {
    let perms = |p: &str| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, permissions) = match spec.split(':').collect::<Vec<_>>()[..] {
        [h] => (h, h, "rwm"),
        [h, p] if perms(p) => (h, h, p),
        [h, c] => (h, c, "rwm"),
        [h, c, p] if perms(p) => (h, c, p),
        _ => {
            return Err(Failure::new(format!(
                "invalid device specification: {spec}"
            )));
        }
    };
    if !host.starts_with('/') || !inside.starts_with('/') {
        return Err(Failure::new(format!(
            "invalid device specification: {spec} (both paths must be absolute)"
        )));
    }
    let mapping = DeviceMapping {
        path_on_host: host.into(),
        path_in_container: inside.into(),
        cgroup_permissions: ["r", "w", "m"]
            .into_iter()
            .filter(|c| permissions.contains(c))
            .collect(),
    };
    mapping.node()?;
    Ok(mapping)
}
// ANCHOR_END: device

// ANCHOR: pids
/// Unlike Docker, a container may not start more processes than this unless told:
/// a fork bomb inside then stops at the limit instead of taking the host down.
pub const DEFAULT_PIDS_LIMIT: u64 = 2048;
// ANCHOR_END: pids

/// The `--security-opt`s mini-docker knows.
fn security_opt(option: &str) -> Result<()> {
    match option {
        container::UNCONFINED | container::SYSTEMPATHS_UNCONFINED => Ok(()),
        // Always on here: accepted, as Docker accepts it.
        "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => Ok(()),
        o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => Err(Failure::new(format!(
            "--security-opt {o}: only seccomp=unconfined is supported (mini-docker has one \
             profile, Docker's default, in seccomp.rs)"
        ))),
        o => Err(Failure::new(format!(
            "--security-opt {o}: unknown option (mini-docker knows seccomp=unconfined and \
             no-new-privileges)"
        ))),
    }
}

// ANCHOR: cgroupns
/// `--cgroupns`: Docker's default is a cgroup namespace of the container's own on a
/// cgroup v2 host, and the host's on v1 (where a private one would show little).
fn cgroupns(flag: Option<&str>) -> Result<String> {
    match flag {
        Some(mode @ ("host" | "private")) => Ok(mode.to_string()),
        Some(other) => Err(Failure::new(format!(
            "--cgroupns {other}: use host or private"
        ))),
        None => {
            let layout = ch03_cgroups::hierarchy::Layout::discover(&labkit::doctor::Host::real());
            let v2 = layout.mode() == Some(ch03_cgroups::hierarchy::Mode::V2);
            Ok(if v2 { "private" } else { "host" }.to_string())
        }
    }
}
// ANCHOR_END: cgroupns

/// The resources part of the flags: chapter 03's limits (with mini-docker's
/// default pids limit), where the group goes, and the devices let in.
fn resources(args: &CreateArgs) -> Result<(Limits, String, String, Vec<DeviceMapping>)> {
    let mut limits = args.limits.limits()?;
    if args.limits.pids_limit.is_none() {
        limits.pids = Some(DEFAULT_PIDS_LIMIT);
    }
    let cgroup_parent = args
        .cgroup_parent
        .clone()
        .unwrap_or_else(|| container::DEFAULT_CGROUP_PARENT.to_string());
    ch03_cgroups::place::Place::new(&cgroup_parent, "x").map_err(|_| {
        Failure::new(format!(
            "--cgroup-parent {cgroup_parent:?}: use a cgroup path such as /mini-docker or \
             /system.slice/web (no '..')"
        ))
    })?;
    let cgroupns = cgroupns(args.cgroupns.as_deref())?;
    let devices = args
        .device
        .iter()
        .map(|d| device(d))
        .collect::<Result<_>>()?;
    Ok((limits, cgroup_parent, cgroupns, devices))
}

/// `-u`, or the image's USER (numbers only: the image has no user database to ask).
fn user_of(args: &CreateArgs, image: &image::Image) -> Result<Option<(u32, u32)>> {
    match (&args.user, image.config.user.as_str()) {
        (Some(flag), _) => user(flag).map(Some),
        (None, "") => Ok(None),
        (None, named) => user(named).map(Some).map_err(|_| {
            Failure::new(format!(
                "the image's USER {named:?}: mini-docker takes numeric users only (UID[:GID]); \
                 give one with -u"
            ))
        }),
    }
}

/// `--network` (a mode or a user-defined network) and the flags that go with it.
fn networking(store: &Store, args: &CreateArgs) -> Result<(Mode, String)> {
    let (network, network_name) = crate::network::mode_of(store, &args.network)?;
    crate::network::options(network.clone(), &args.publish)?;
    names_and_servers(args, &network, &network_name)?;
    if let Some(ip) = &args.ip {
        crate::network::check_ip(&crate::network::find(store, &network_name)?, ip)?;
    }
    Ok((network, network_name))
}

/// `--ip`, `--network-alias`, `--add-host`, `--dns`, checked: each needs a bridge,
/// aliases and `--ip` a network of one's own (Docker's rules).
fn names_and_servers(args: &CreateArgs, mode: &Mode, network: &str) -> Result<()> {
    let bridge = *mode == Mode::Bridge;
    let needs = |flag: &str, ok: bool, what: &str| match ok {
        true => Ok(()),
        false => Err(Failure::new(format!("{flag}: {what}"))),
    };
    let user = !network.is_empty();
    needs(
        "--network-alias",
        args.network_alias.is_empty() || user,
        "network-scoped aliases are only supported for user-defined networks",
    )?;
    needs(
        "--ip",
        args.ip.is_none() || user,
        "user specified IP address is supported on user defined networks only",
    )?;
    let files = args.add_host.is_empty() && args.dns.is_empty() && args.dns_search.is_empty();
    needs(
        "--add-host, --dns, --dns-search",
        files || bridge,
        "mini-docker writes /etc/hosts and /etc/resolv.conf for bridge networks only",
    )?;
    needs(
        "-P",
        !args.publish_all || bridge,
        "only applies to bridge networks",
    )?;
    for alias in &args.network_alias {
        needs(
            "--network-alias",
            container::is_name(alias),
            &format!("{alias:?} is not a name"),
        )?;
    }
    for extra in &args.add_host {
        let ok = extra
            .split_once(':')
            .is_some_and(|(h, ip)| !h.is_empty() && ip.parse::<std::net::IpAddr>().is_ok());
        needs(
            "--add-host",
            ok,
            &format!("invalid argument {extra:?}: use HOST:IP"),
        )?;
    }
    for server in &args.dns {
        needs(
            "--dns",
            server.parse::<std::net::IpAddr>().is_ok(),
            &format!("{server} is not an IP address"),
        )?;
    }
    Ok(())
}

/// Docker's rule: `--entrypoint` replaces the image's, and then drops the image's
/// command too; `--entrypoint ''` clears it.
fn command_line(args: &CreateArgs, image: &image::Image) -> Result<Vec<String>> {
    let entrypoint = match args.entrypoint.as_deref() {
        Some("") => vec![],
        Some(e) => vec![e.to_string()],
        None => image.config.entrypoint.clone(),
    };
    let cmd = match (args.command.is_empty(), args.entrypoint.is_some()) {
        (false, _) => args.command.clone(),
        (true, false) => image.config.cmd.clone(),
        (true, true) => vec![],
    };
    let cmd: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if cmd.is_empty() {
        return Err(Failure::new("No command specified"));
    }
    Ok(cmd)
}

/// Every flag checked and the image resolved: the container's configuration.
fn configure(store: &Store, args: &CreateArgs, id: &str) -> Result<Config> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    let (limits, cgroup_parent, cgroupns, devices) = resources(args)?;
    for option in &args.security_opt {
        security_opt(option)?;
    }
    for name in args.cap_add.iter().chain(&args.cap_drop) {
        crate::hardening::capability(name)?;
    }
    let (network, network_name) = networking(store, args)?;
    // Docker's TERM comes with a terminal, and only then; --env-file before -e.
    let mut env_flags = vec!["TERM=xterm".to_string(); usize::from(args.tty)];
    env_flags.extend(env_files(&args.env_file)?);
    env_flags.extend(args.env.iter().cloned());
    if let Some(bad) = args.tmpfs.iter().find(|d| !d.starts_with('/')) {
        return Err(Failure::new(format!(
            "--tmpfs {bad}: the path must be absolute"
        )));
    }
    let restart_policy = RestartPolicy::parse(&args.restart)?;
    if restart_policy.restarts() && args.rm {
        return Err(Failure::new(
            "Conflicting options: cannot specify both --restart and --rm",
        ));
    }
    let image = image::resolve(store, &args.image, args.platform.as_deref())?;
    let user = user_of(args, &image)?;
    let flags = crate::mounts::Flags {
        volume: &args.volume,
        mount: &args.mount,
        volumes_from: &args.volumes_from,
    };
    let image_volumes: Vec<&String> = image.config.volumes.keys().collect();
    let mounts = crate::mounts::all(store, flags, &image_volumes)?;
    Ok(Config {
        image: args.image.clone(),
        image_id: image.id.clone(),
        hostname: (args.hostname.clone()).unwrap_or_else(|| id[..12].to_string()),
        cmd: command_line(args, &image)?,
        env: environment(&image.config.env, &env_flags)?,
        working_dir: (args.workdir.clone()).unwrap_or_else(|| image.config.working_dir.clone()),
        network,
        publish: args.publish.clone(),
        limits,
        mounts,
        tmpfs: args.tmpfs.clone(),
        read_only: args.read_only,
        user,
        interactive: args.interactive,
        tty: args.tty,
        auto_remove: args.rm,
        init: args.init,
        security_opt: args.security_opt.clone(),
        cgroup_parent,
        cgroupns,
        devices,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        runtime: (args.runtime.as_deref())
            .map(|r| runtime_path(r, args.init))
            .transpose()?
            .unwrap_or_default(),
        restart_policy,
        labels: container::labels(&args.label)?,
        network_name,
        extra_networks: vec![],
        aliases: args.network_alias.clone(),
        ip: args.ip.clone(),
        extra_hosts: args.add_host.clone(),
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        publish_all: match args.publish_all {
            true => image.config.exposed_ports.keys().cloned().collect(),
            false => vec![],
        },
        healthcheck: args.health.check(image.config.healthcheck.as_ref())?,
    })
}

/// `--runtime`: an executable, by path or on PATH, found now (as dockerd checks
/// its runtimes); the absolute path is what the container keeps.
fn runtime_path(name: &str, init: bool) -> Result<String> {
    if init {
        return Err(Failure::new(
            "--init with --runtime: the init is chapter 02's own, not a program an OCI runtime can run",
        ));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = match name.contains('/') {
        true => Some(std::path::PathBuf::from(name)),
        false => (path.split(':'))
            .map(|dir| std::path::Path::new(dir).join(name))
            .find(|p| p.is_file()),
    };
    let found = found
        .and_then(|p| p.canonicalize().ok())
        .filter(|p| p.is_file());
    found
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::new(format!("unknown or invalid runtime name: {name}")))
}

/// Names are unique: checked and taken under the store's lock (held by the caller).
fn free_name(store: &Store, name: &str) -> Result<()> {
    match container::list(store).iter().find(|c| c.name == name) {
        Some(other) => Err(Failure::new(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \
             \"{}\". You have to remove (or rename) that container to be able to reuse \
             that name.",
            other.id
        ))),
        None => Ok(()),
    }
}

// ANCHOR: create
pub fn create(store: &Store, args: &CreateArgs) -> Result<Container> {
    let id = new_id()?;
    let mut config = configure(store, args, &id)?;
    let _locked = lock(&store.root)?;
    let name = match &args.name {
        Some(name) => free_name(store, name).map(|()| name.clone())?,
        None => format!("c-{}", &id[..6]),
    };
    let container = Container::new(store, id, name, now());
    let made = (|| {
        crate::mounts::make_volumes(store, &mut config.mounts)?;
        for dir in ["upper", "work", "merged"] {
            let path = container.dir.join(dir);
            std::fs::create_dir_all(&path).context(|| path.display().to_string())?;
        }
        container.save_config(&config)?;
        container.save_state(&State::default())
    })();
    if let Err(failure) = made {
        let _ = std::fs::remove_dir_all(&container.dir);
        crate::volume::remove_anonymous_unlocked(store, &config.mounts);
        return Err(failure);
    }
    Ok(container)
}
// ANCHOR_END: create

/// `rename`: under the store's lock, as `create` takes a name.
pub fn rename(store: &Store, container: &Container, name: &str) -> Result<()> {
    // ANCHOR: hole_rename
    check_name(name)?;
    let _locked = lock(&store.root)?;
    free_name(store, name)?;
    let renamed = Container::new(
        store,
        container.id.clone(),
        name.to_string(),
        container.created.clone(),
    );
    renamed.save_config(&container.config()?)
    // ANCHOR_END: hole_rename
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("web-1.a_b").is_ok());
        for bad in ["", "-web", "we b", "we/b", ".x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_merges_over_the_image() {
        let image = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let env = environment(&image, &["A=2".into(), "B=x=y".into()]).unwrap();
        assert_eq!(env, ["PATH=/bin", "A=2", "B=x=y"]);
        assert!(environment(&image, &["=x".into()]).is_err());
    }
}
