//! config.json's hooks: programs of the host's that the runtime runs at points of
//! the lifecycle, in the runtime's namespaces, each given the container's state
//! (the JSON of `mini-runc state`) on its stdin. This is how engines plug in what is
//! not the runtime's job (podman's network setup was once a prestart hook).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;

use labkit::narrate;
use labkit::{Failure, Result};
use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

/// The hooks mini-runc runs, kept in the container's state for `start` and `delete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hooks {
    /// `prestart` (deprecated) then `createRuntime`: once the namespaces exist and
    /// before the process goes on to `pivot_root`. A failure fails `create`.
    pub create_runtime: Vec<Hook>,
    /// After `start`: a failure is a warning.
    pub poststart: Vec<Hook>,
    /// At `delete`, once the process has ended: a failure is a warning.
    pub poststop: Vec<Hook>,
}

impl Hooks {
    #[allow(deprecated)] // prestart: still what engines send, and still in the spec
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Hooks {
        let Some(h) = spec.hooks() else {
            return Hooks::default();
        };
        let list = |l: &Option<Vec<Hook>>| l.clone().unwrap_or_default();
        Hooks {
            create_runtime: [list(h.prestart()), list(h.create_runtime())].concat(),
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
        }
    }
}

// ANCHOR: run_hooks
/// Run `hooks` one after the other, each with `state` on its stdin; the first that
/// fails (a code other than 0, or too slow for its `timeout`) ends it.
pub fn run(field: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state).map_err(|why| {
            Failure::new(format!(
                "hooks.{field}[{i}] {}: {why}",
                hook.path().display()
            ))
        })?;
    }
    Ok(())
}
// ANCHOR_END: run_hooks

/// One hook: its own argv[0], only its own environment, the state written to its
/// stdin, waited for on a pidfd (with its timeout, if any); its stderr is the why.
fn run_one(hook: &Hook, state: &serde_json::Value) -> std::result::Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    narrate::step(
        format!(
            "fork(); execve({:?}, {args:?}); write(stdin, state)",
            hook.path()
        ),
        format!("mini-runc state ID | {}", args.join(" ")),
    );
    let mut command = std::process::Command::new(hook.path());
    if let Some((argv0, rest)) = args.split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for pair in hook.env().iter().flatten() {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        command.env(key, value);
    }
    let mut child = (command.stdin(std::process::Stdio::piped()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pidfd = crate::monitor::open_pidfd(pid).map_err(|e| e.to_string())?;
    let timeout = hook.timeout().filter(|t| *t > 0);
    let wait = match timeout {
        Some(seconds) => {
            nix::poll::PollTimeout::try_from((seconds * 1000).min(i32::MAX as i64) as i32)
                .unwrap_or(nix::poll::PollTimeout::NONE)
        }
        None => nix::poll::PollTimeout::NONE,
    };
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ended = loop {
        match nix::poll::poll(&mut fds, wait) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) => break n > 0,
            Err(e) => return Err(e.desc().to_string()),
        }
    };
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("timed out after {}s", timeout.unwrap_or_default()));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    match out.status.code() {
        Some(0) => Ok(()),
        code => Err(format!(
            "exited with {}: {}",
            code.map_or("a signal".to_string(), |c| c.to_string()),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}
