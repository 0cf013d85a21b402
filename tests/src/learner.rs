use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;

/// A binary of this workspace, for tests outside the package that owns it (inside
/// that package, prefer `env!("CARGO_BIN_EXE_<name>")`, which cargo keeps fresh).
/// `cargo lab test` builds every binary before the tests run.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace` (or `cargo lab test`)",
        bin.display()
    );
    bin
}

/// One command line, as a learner would type it.
#[derive(Debug)]
pub struct Learner {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    uid: Option<u32>,
    /// Run through this command first (e.g. `nsenter --net=...`), unshown.
    wrapper: Vec<OsString>,
    redactor: Redactor,
    /// What is typed on its standard input (none: /dev/null).
    stdin: Option<String>,
    /// The directory it runs in (none: the test's).
    dir: Option<PathBuf>,
}

/// What came out of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Learner {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        // A message that repeats the command line shows the binary as it was typed.
        let name = program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let redactor = Redactor::default().literal(&program.to_string_lossy(), &name);
        Learner {
            program,
            args: vec![],
            env: vec![],
            uid: None,
            wrapper: vec![],
            redactor,
            stdin: None,
            dir: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn arg(self, arg: impl Into<OsString>) -> Self {
        self.args([arg])
    }

    /// `-- CMD ARGS...`: the command a chapter binary runs.
    pub fn cmd(self, words: &[&str]) -> Self {
        self.args(["--"]).args(words)
    }

    /// `text` on its standard input, as if typed (or piped: `echo ... | cmd`).
    pub fn stdin_text(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    /// Start `cmd`, typing [`Self::stdin_text`] into it.
    fn spawn(&self, cmd: &mut Command) -> std::process::Child {
        let mut child = cmd.spawn().expect("the binary runs");
        if let (Some(text), Some(mut stdin)) = (&self.stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = stdin.write_all(text.as_bytes());
        }
        child
    }

    /// Run it in `dir`, as a learner who `cd`s there first.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run as this (unprivileged) user instead of root.
    pub fn as_uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Run the command through `wrapper` (chapter 05 runs every command inside a
    /// network namespace of the test's with `nsenter --net=PATH`); the transcript
    /// shows the command as the learner types it, without the wrapper. A second
    /// wrapper goes around the first (`nsenter --net=... unshare ... bash`).
    pub fn wrapped<I, S>(mut self, wrapper: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let outer: Vec<OsString> = wrapper.into_iter().map(Into::into).collect();
        self.wrapper = outer.into_iter().chain(self.wrapper).collect();
        self
    }

    /// Replace `path` (a temp dir, say) by `name` wherever it appears in the output.
    pub fn redact_path(mut self, path: impl AsRef<Path>, name: &str) -> Self {
        self.redactor = self
            .redactor
            .literal(&path.as_ref().to_string_lossy(), name);
        self
    }

    fn command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&self.program);
                cmd
            }
            None => Command::new(&self.program),
        };
        // The same environment on every machine: the caller's PATH (to find busybox
        // and host tools), C messages, and what the test sets.
        let path = std::env::var("PATH").unwrap_or_else(|_| labkit::doctor::DEFAULT_PATH.into());
        cmd.args(&self.args)
            .stdin(match self.stdin {
                Some(_) => Stdio::piped(),
                None => Stdio::null(),
            })
            .env_clear()
            .env("PATH", path)
            .env("LANG", "C");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        if let Some(uid) = self.uid {
            // std also drops root's supplementary groups when it changes the uid.
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    /// stdout and stderr apart (not redacted), and the exit code.
    pub fn output(&self) -> Outcome {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = self
            .spawn(&mut cmd)
            .wait_with_output()
            .expect("the binary runs");
        Outcome {
            code: exit_code(out.status),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// What a terminal would show: the command line, stdout and stderr interleaved in
    /// the order they were written (both go to one pipe, as to one terminal), and the
    /// exit code; redacted. Returns (exit code, transcript).
    pub fn transcript(&self) -> (i32, String) {
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let mut cmd = self.command();
        cmd.stdout(writer.try_clone().expect("dup")).stderr(writer);
        let mut child = self.spawn(&mut cmd);
        drop(cmd); // close our copies of the write end, or read_to_end never ends
        let mut text = Vec::new();
        reader.read_to_end(&mut text).expect("read");
        let code = exit_code(child.wait().expect("wait"));
        let name = self
            .program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let words: Vec<String> = std::iter::once(name)
            .chain(
                self.args
                    .iter()
                    .map(|a| labkit::narrate::shell_quote(&a.to_string_lossy())),
            )
            .collect();
        let prompt = if self.uid.is_some() { "$" } else { "#" };
        let shown = format!(
            "{prompt} {}\n{}[exit {code}]\n",
            words.join(" "),
            String::from_utf8_lossy(&text)
        );
        (code, self.redactor.apply(&shown))
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Replacements that make a transcript the same from run to run: PIDs, inode and
/// device numbers, and the temp paths a test made.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<(Regex, String)>,
}

impl Default for Redactor {
    fn default() -> Self {
        let rules = [
            (r"fork\(\) = \d+", "fork() = [PID]"),
            (r"(clone\([^)]*\)) = \d+", "$1 = [PID]"),
            (r"(clone3\(\{[^}]*\}\)) = \d+", "$1 = [PID]"),
            // The descriptor of the cgroup directory: whatever number was free.
            (r"(CLONE_INTO_CGROUP, cgroup: )\d+", "$1[FD]"),
            (r"waitpid\(\d+\)", "waitpid([PID])"),
            (r"\bpid \d+", "pid [PID]"),
            (r"/proc/\d+/", "/proc/[PID]/"),
            (r"device \d+:\d+", "device [DEV]"),
            (r"inode \d+", "inode [INODE]"),
        ];
        let redactor = Redactor {
            rules: rules
                .iter()
                .map(|(re, to)| (Regex::new(re).expect("a valid regex"), to.to_string()))
                .collect(),
        };
        // A child given no hostname of its own keeps this machine's.
        match nix::unistd::gethostname() {
            Ok(name) => {
                let name = regex::escape(&name.to_string_lossy());
                redactor.rule(&format!(r"\bHOSTNAME={name}\b"), "HOSTNAME=[HOST]")
            }
            Err(_) => redactor,
        }
    }
}

impl Redactor {
    pub fn literal(mut self, text: &str, name: &str) -> Self {
        // A number (a PID) only as a whole word: PID 837 is not in inode 4026531837.
        let pattern = match !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            true => format!(r"\b{text}\b"),
            false => regex::escape(text),
        };
        // Longest paths first, so that /tmp/x/rootfs wins over /tmp/x.
        self.rules
            .insert(0, (Regex::new(&pattern).expect("escaped"), name.into()));
        self.rules
            .sort_by_key(|(re, _)| std::cmp::Reverse(re.as_str().len()));
        self
    }

    /// What differs between machines in a `doctor` report: the kernel release and
    /// the user namespace limit.
    pub fn doctor() -> Self {
        Redactor::default()
            .rule(r"Linux \S+", "Linux [RELEASE]")
            .rule(r"max_user_namespaces = \d+", "max_user_namespaces = [N]")
            // The shell's session scope holds whatever this machine runs there.
            .rule(r"holds \d+ processes", "holds [N] processes")
    }

    pub fn rule(mut self, pattern: &str, replacement: &str) -> Self {
        self.rules.push((
            Regex::new(pattern).expect("a valid regex"),
            replacement.into(),
        ));
        self
    }

    pub fn apply(&self, text: &str) -> String {
        let redacted = self.rules.iter().fold(text.to_string(), |t, (re, to)| {
            re.replace_all(&t, to.as_str()).into_owned()
        });
        realign_narration(&redacted)
    }
}

/// Narration lines are two columns (`syscall   ~ shell`); a redaction changes the
/// width of the first, so pad them again the way the narrator does.
fn realign_narration(text: &str) -> String {
    let step = Regex::new(r"^(\S.*?) {3,}~ (.*)$").expect("regex");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        match step.captures(body) {
            Some(c) => {
                out.push_str(&labkit::narrate::format_step(&c[1], &c[2]));
                out.push_str(newline);
            }
            None => out.push_str(line),
        }
    }
    out
}
