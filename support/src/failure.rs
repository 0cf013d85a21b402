//! Errors a learner can act on.
//!
//! A [`Failure`] is one sentence that names the input and the fix. Chapters return
//! `labkit::Result` from everything that can fail and let [`exit_with`] print it
//! once, at the top, where the binary's [`ExitCodes`] policy turns it into an exit
//! code. A failure carries a code of its own only where the code means something
//! (126 and 127 from exec; a container's exit code relayed).

use std::fmt::{self, Display};

/// Exit code of a tool that failed on its own (bad input, missing privilege).
pub const EXIT_FAILURE: i32 = 1;
/// The conventions of `chroot(1)`, `env(1)` and `docker run` for commands that run
/// another command: 125 when the tool itself fails, 126 when the command was found
/// but could not be run, 127 when it was not found.
pub const EXIT_TOOL_FAILED: i32 = 125;
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    /// `None`: the binary's policy decides.
    exit_code: Option<i32>,
}

/// How a binary turns its failures into exit codes: one policy per verb, chosen at
/// the top of `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCodes {
    /// 1 for any failure: a verb that runs nothing of the user's.
    Plain,
    /// `chroot(1)`, `env(1)`, `docker run`: 125 when the tool itself fails, so that
    /// the command's own codes (126 cannot execute, 127 not found, or whatever it
    /// exits with) stay its own.
    RunsACommand,
}

impl ExitCodes {
    pub fn of(self, failure: &Failure) -> i32 {
        failure.exit_code.unwrap_or(match self {
            ExitCodes::Plain => EXIT_FAILURE,
            ExitCodes::RunsACommand => EXIT_TOOL_FAILED,
        })
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: None,
        }
    }

    /// The same failure, with an exit code of its own whatever the policy.
    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = Some(code);
        self
    }

    /// The code under the plain policy (1 unless it has its own).
    pub fn code(&self) -> i32 {
        ExitCodes::Plain.of(self)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Describe an I/O error the way `ls` or `cp` would, with the C library's words and
/// without Rust's "(os error 2)" suffix: `No such file or directory`.
pub fn describe_io(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// Add what we were doing to a low-level error: `cannot create /x: Permission denied`.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Failure::new(format!("{}: {}", what(), describe_io(&e))))
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Failure::new(format!("{}: {}", what(), e.desc())))
    }
}

/// This program's name, as its messages start (`mini-docker: ...`): the file name
/// it was started as. A forked child of a chapter's library speaks as that program.
pub fn program() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "container".into())
}

/// End the process: with the code the work returned, or with the failure's message
/// (prefixed by the tool's name, as Unix tools do) and its code under `codes`.
pub fn exit_with(tool: &str, codes: ExitCodes, outcome: Result<i32>) -> ! {
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(failure) => {
            eprintln!("{tool}: {failure}");
            std::process::exit(codes.of(&failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_like_unix_tools() {
        let err = std::fs::read("/nonexistent/file")
            .context(|| "cannot read /nonexistent/file".into())
            .unwrap_err();
        assert_eq!(
            err.message(),
            "cannot read /nonexistent/file: No such file or directory"
        );
        assert_eq!(err.code(), EXIT_FAILURE);
        assert_eq!(ExitCodes::RunsACommand.of(&err), EXIT_TOOL_FAILED);
        let not_found = err.exit_code(EXIT_NOT_FOUND);
        assert_eq!(ExitCodes::RunsACommand.of(&not_found), EXIT_NOT_FOUND);
    }
}
