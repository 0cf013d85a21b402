//! Errors a learner can act on.
//!
//! A [`Failure`] is one sentence that names the input and the fix, plus the exit
//! code the tool ends with. Chapters return `labkit::Result` from everything that
//! can fail and let [`exit_with`] print it once, at the top.

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
    exit_code: i32,
}

pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: EXIT_FAILURE,
        }
    }

    /// The same failure, ending the tool with another exit code.
    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = code;
        self
    }

    pub fn code(&self) -> i32 {
        self.exit_code
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
/// (prefixed by the tool's name, as Unix tools do) and its exit code.
pub fn exit_with(tool: &str, outcome: Result<i32>) -> ! {
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(failure) => {
            eprintln!("{tool}: {failure}");
            std::process::exit(failure.code())
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
        assert_eq!(err.exit_code(EXIT_TOOL_FAILED).code(), 125);
    }
}
