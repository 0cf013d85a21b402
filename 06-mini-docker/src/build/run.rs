//! RUN's container, and what the build prints.

use std::io::Write;
use std::time::Instant;

use labkit::{Failure, Result};

use super::Build;
use crate::dockerfile::Instruction;
use crate::image::Image;

impl Build<'_> {
    // ANCHOR: run
    /// RUN: a container on the image so far, with its ENV, WORKDIR and USER (and the
    /// ARGs as variables), run to its end; its writable layer, packed, is the layer.
    /// It is made exactly as `mini-docker run --network MODE --entrypoint '' -e
    /// ARG=V IMAGE CMD` would make it: the same flags, read by clap.
    pub(super) fn run(
        &mut self,
        image: &Image,
        ins: &Instruction,
        cmd: &[String],
        env: &[String],
        network: &str,
    ) -> Result<String> {
        let mut argv: Vec<String> = ["--network", network, "--entrypoint", ""]
            .map(String::from)
            .into();
        for e in env {
            argv.extend(["-e".to_string(), e.clone()]);
        }
        argv.push(image.id.clone());
        argv.extend(cmd.iter().cloned());
        let line = crate::create::parse_line(&argv).map_err(|e| ins.fail(e))?;
        let container = crate::create::create(self.store, &line).map_err(|e| ins.fail(e))?;
        let ran = crate::lifecycle::start(self.store, &container, false)
            .and_then(|_| crate::lifecycle::wait(&container));
        let lines = crate::logs::read(&container.log()).unwrap_or_default();
        let result = ran.and_then(|code| {
            for line in &lines {
                self.out.output(line.log.trim_end_matches('\n'));
            }
            match code {
                0 => self.pack(&container.upper(), &container.dir),
                code => Err(ins
                    .fail(format!(
                        "process \"{}\" did not complete successfully: exit code: {code}",
                        cmd.join(" ")
                    ))
                    .exit_code(1)),
            }
        });
        let mounts = container.config().map(|c| c.mounts).unwrap_or_default();
        let removed = crate::lifecycle::rm(&container, true);
        // After a VOLUME line, RUN writes under its path into an anonymous volume,
        // thrown away here: such writes are lost, as in Docker's builder.
        crate::volume::remove_anonymous(self.store, &mounts);
        let layer = result?;
        removed?;
        Ok(layer)
    }
    // ANCHOR_END: run
}

/// What the build prints, on stderr: `plain`, every step and every line its
/// container writes (`#5 hello`); `tty`, a line per step and the output only of a
/// step that fails; `-q`, nothing.
pub(super) struct Progress {
    mode: &'static str,
    step: usize,
    title: String,
    started: Instant,
    held: Vec<String>,
}

impl Progress {
    pub(super) fn new(mode: &str, quiet: bool) -> Result<Progress> {
        use std::io::IsTerminal;
        let mode = match (quiet, mode) {
            (true, _) => "quiet",
            (false, "plain") => "plain",
            (false, "tty") => "tty",
            (false, "auto") if std::io::stderr().is_terminal() => "tty",
            (false, "auto") => "plain",
            (false, other) => {
                return Err(Failure::new(format!(
                    "--progress {other}: use auto, plain or tty"
                )));
            }
        };
        Ok(Progress {
            mode,
            step: 0,
            title: String::new(),
            started: Instant::now(),
            held: vec![],
        })
    }

    fn say(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    pub(super) fn begin(&mut self, title: &str) {
        self.step += 1;
        self.title = title.to_string();
        self.started = Instant::now();
        self.held.clear();
        if self.mode == "plain" {
            self.say(&format!("#{} {title}", self.step));
        }
    }

    pub(super) fn note(&mut self, text: &str) {
        self.output(text);
    }

    pub(super) fn output(&mut self, text: &str) {
        match self.mode {
            "plain" => self.say(&format!("#{} {text}", self.step)),
            _ => self.held.push(text.to_string()),
        }
    }

    pub(super) fn cached(&mut self) {
        match self.mode {
            "plain" => self.say(&format!("#{} CACHED", self.step)),
            "tty" => self.say(&format!(" => CACHED {}", self.title)),
            _ => {}
        }
    }

    pub(super) fn done(&mut self) {
        let took = self.started.elapsed().as_secs_f64();
        match self.mode {
            "plain" => self.say(&format!("#{} DONE {took:.1}s", self.step)),
            "tty" => self.say(&format!(" => {} {took:.1}s", self.title)),
            _ => {}
        }
    }

    /// A step that failed (the error follows): on a terminal, its output, held
    /// until now.
    pub(super) fn failed(&mut self) {
        if self.mode == "tty" {
            self.say(&format!(" => ERROR {}", self.title));
            for line in &self.held {
                self.say(&format!("    {line}"));
            }
        } else if self.mode == "plain" {
            self.say(&format!("#{} ERROR", self.step));
        }
    }
}
