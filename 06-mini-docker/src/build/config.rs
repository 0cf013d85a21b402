//! The steps that change the config, and RUN's plan: what each instruction says.

use std::path::Path;

use labkit::Result;

use super::{Action, Build, Stage, State, clean, shell_text};
use crate::dockerfile::{self, Args, Instruction};
use crate::image::{Image, ImageConfig};

impl Build<'_> {
    // ANCHOR: plan
    /// What the step will do, and the line that names it in the image's history
    /// (and in the cache): the instruction with its variables expanded; for RUN, the
    /// ARGs it sees (`|1 V=2 /bin/sh -c ...`); for COPY and ADD, a digest of the files.
    pub(super) fn plan(
        &self,
        state: &mut State,
        ins: &Instruction,
        stages: &[Stage],
        built: &[Option<Image>],
    ) -> Result<(String, Action)> {
        let keyword = ins.keyword.as_str();
        match keyword {
            "RUN" => self.plan_run(state, ins),
            "COPY" | "ADD" => {
                let mut copy = self.plan_copy(state, ins, stages, built)?;
                let digest = self.checksum(ins, &mut copy).map_err(|e| ins.fail(e))?;
                let mut line = format!("{keyword} ");
                for (flag, value) in &ins.flags {
                    line.push_str(&format!("--{flag}={value} "));
                }
                line.push_str(&format!("{digest} in {}", copy.dest));
                Ok((line, Action::Copy(Box::new(copy))))
            }
            _ => {
                let mut config = state.image.config.clone();
                let shown = self.configure(state, ins, &mut config)?;
                Ok((format!("{keyword} {shown}"), Action::Config(config)))
            }
        }
    }
    // ANCHOR_END: plan

    fn plan_run(&self, state: &State, ins: &Instruction) -> Result<(String, Action)> {
        ins.only_flags(&["network"])?;
        let cmd = command(ins, &state.image.config.shell);
        if state.image.layers.is_empty() {
            return Err(ins.fail("the image is empty (FROM scratch): there is no program to run"));
        }
        let user = &state.image.config.user;
        if !user.is_empty() && crate::create::user(user).is_err() {
            return Err(ins.fail(format!(
                "USER {user}: mini-docker takes numeric users only: USER UID[:GID]"
            )));
        }
        let set = |k: &str| {
            state
                .image
                .config
                .env
                .iter()
                .any(|e| e.split('=').next() == Some(k))
        };
        let args: Vec<String> = (state.args.iter())
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        let env = args
            .iter()
            .filter(|a| !set(a.split('=').next().unwrap_or("")))
            .cloned();
        let network = match ins.flag("network") {
            None | Some("default") => self.args.network.clone(),
            Some(mode @ ("none" | "host")) => mode.to_string(),
            Some(other) => {
                return Err(ins.fail(format!("--network={other}: use none, host or default")));
            }
        };
        let mut line = String::from("RUN ");
        if !args.is_empty() {
            line.push_str(&format!("|{} {} ", args.len(), args.join(" ")));
        }
        line.push_str(&cmd.join(" "));
        Ok((
            line,
            Action::Run {
                cmd,
                env: env.collect(),
                network,
            },
        ))
    }

    /// ENV, LABEL, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL,
    /// HEALTHCHECK, SHELL, MAINTAINER: the config changed; returns the step's words.
    fn configure(
        &self,
        state: &mut State,
        ins: &Instruction,
        c: &mut ImageConfig,
    ) -> Result<String> {
        let words = self.words(state, ins);
        let json = |list: &[String]| serde_json::to_string(list).unwrap_or_default();
        match ins.keyword.as_str() {
            "ENV" | "LABEL" => {
                let pairs = pairs(ins, &words, state, self)?;
                Ok(set_pairs(ins, &pairs, c))
            }
            "WORKDIR" => {
                let dir = words.join(" ");
                let base = if c.working_dir.is_empty() {
                    "/"
                } else {
                    &c.working_dir
                };
                c.working_dir = clean(&Path::new(base).join(dir));
                Ok(c.working_dir.clone())
            }
            "USER" => {
                c.user = words.join(" ");
                Ok(c.user.clone())
            }
            "CMD" => {
                c.cmd = command(ins, &c.shell);
                state.cmd_set = true;
                Ok(json(&c.cmd))
            }
            "ENTRYPOINT" => {
                c.entrypoint = command(ins, &c.shell);
                if !state.cmd_set {
                    c.cmd.clear();
                }
                Ok(json(&c.entrypoint))
            }
            "EXPOSE" => expose(ins, &words, c),
            "VOLUME" => {
                for volume in &words {
                    c.volumes.insert(volume.clone(), serde_json::json!({}));
                }
                Ok(json(&words))
            }
            "STOPSIGNAL" => {
                let signal = words.join(" ");
                crate::lifecycle::parse_signal(&signal).map_err(|e| ins.fail(e))?;
                c.stop_signal = signal.clone();
                Ok(signal)
            }
            "SHELL" => match &ins.args {
                Args::Exec(list) if !list.is_empty() => {
                    c.shell = list.clone();
                    Ok(json(list))
                }
                _ => Err(ins.fail("SHELL requires the arguments to be in JSON form")),
            },
            "HEALTHCHECK" => {
                c.healthcheck = Some(healthcheck(ins)?);
                Ok(ins
                    .text
                    .split_once(char::is_whitespace)
                    .map_or("", |(_, r)| r)
                    .trim()
                    .to_string())
            }
            "MAINTAINER" => Ok(words.join(" ")),
            "ONBUILD" => Err(ins.fail("ONBUILD is not supported by mini-docker")),
            other => Err(ins.fail(format!("{other} cannot come here"))),
        }
    }
}

/// ENV's pairs into the environment (replacing a variable of the same name), or
/// LABEL's into the labels; returns them as the step shows them.
fn set_pairs(ins: &Instruction, pairs: &[(String, String)], c: &mut ImageConfig) -> String {
    for (k, v) in pairs {
        if ins.keyword == "ENV" {
            c.env.retain(|e| e.split('=').next() != Some(k.as_str()));
            c.env.push(format!("{k}={v}"));
        } else {
            c.labels.insert(k.clone(), v.clone());
        }
    }
    let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.join(" ")
}

/// A command in exec form as it is, in shell form after the SHELL (`/bin/sh -c`).
pub(super) fn command(ins: &Instruction, shell: &[String]) -> Vec<String> {
    match &ins.args {
        Args::Exec(list) => list.clone(),
        Args::Shell(text) => {
            let shell = match shell.is_empty() {
                true => vec!["/bin/sh".to_string(), "-c".into()],
                false => shell.to_vec(),
            };
            shell.into_iter().chain([text.clone()]).collect()
        }
    }
}

/// `EXPOSE 80 53/udp`: `80/tcp` and `53/udp` in the config.
fn expose(ins: &Instruction, words: &[String], c: &mut ImageConfig) -> Result<String> {
    for port in words {
        let port = match port.contains('/') {
            true => port.to_lowercase(),
            false => format!("{port}/tcp"),
        };
        let (number, proto) = port.split_once('/').unwrap_or_default();
        if number.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(ins.fail(format!("invalid port {port:?}: use PORT[/tcp|/udp]")));
        }
        c.exposed_ports.insert(port, serde_json::json!({}));
    }
    Ok(words.join(" "))
}

/// `ENV K=V K2="v 2"`, or the old `ENV K the rest`.
fn pairs(
    ins: &Instruction,
    words: &[String],
    state: &State,
    build: &Build,
) -> Result<Vec<(String, String)>> {
    if let Some(first) = words.first().filter(|w| !w.contains('='))
        && let Args::Shell(text) = &ins.args
    {
        let rest = text.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(ins.fail(format!("{} names {first} but gives no value", ins.keyword)));
        }
        let value = dockerfile::expand(rest, build.file.escape, &build.lookup(state));
        return Ok(vec![(first.clone(), value)]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ins.fail(format!("{w:?}: use KEY=VALUE"))),
        })
        .collect()
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD ...`
/// or `HEALTHCHECK NONE`, as the image config keeps it (durations in nanoseconds).
fn healthcheck(ins: &Instruction) -> Result<serde_json::Value> {
    ins.only_flags(&[
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ])?;
    let text = shell_text(ins).map_err(|_| ins.fail("use HEALTHCHECK [OPTIONS] CMD command"))?;
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(serde_json::json!({ "Test": ["NONE"] }));
    }
    let Some(command) = text.trim().strip_prefix("CMD").map(str::trim) else {
        return Err(ins.fail("use HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE"));
    };
    let test: Vec<String> = match serde_json::from_str::<Vec<String>>(command) {
        Ok(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
        Err(_) => vec!["CMD-SHELL".into(), command.to_string()],
    };
    let mut check = serde_json::json!({ "Test": test });
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
    ] {
        if let Some(value) = ins.flag(flag) {
            let nanos = duration(value).ok_or_else(|| {
                ins.fail(format!(
                    "--{flag}={value}: use a duration such as 30s, 1m30s, 500ms"
                ))
            })?;
            check[key] = nanos.into();
        }
    }
    if let Some(n) = ins.flag("retries") {
        check["Retries"] = n
            .parse::<u64>()
            .map_err(|_| ins.fail(format!("--retries={n}: a number")))?
            .into();
    }
    Ok(check)
}

/// Go's durations: `1h2m3s`, `1.5s`, `500ms`, in nanoseconds.
pub(crate) fn duration(text: &str) -> Option<u64> {
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..digits].parse().ok()?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| i + digits);
        let scale = match &rest[digits..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(total as u64)
}
