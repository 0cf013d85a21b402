//! A Dockerfile, read as Docker's parser reads it: parser directives (`# escape`,
//! `# syntax`), comments, line continuations, one instruction per logical line,
//! `--flags`, and the exec (JSON) and shell forms. Variables (`$X`, `${X:-default}`)
//! are expanded later, step by step, by [`expand`] and [`words`]: their values
//! change as the build goes.

use labkit::{Failure, Result};

/// One instruction, with the line it starts on (1-based) for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    /// Upper case: `RUN`, `COPY`.
    pub keyword: String,
    /// `--from=build`, `--chown=1:1`: the leading flags, name and value.
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The logical line as written (continuations joined), for progress lines.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `RUN echo hi`: the rest of the line, as written.
    Shell(String),
    /// `RUN ["echo", "hi"]`: a JSON array of strings.
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

const KNOWN: [&str; 19] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "#",
];

/// Instructions whose leading `--name=value` words are flags.
const TAKES_FLAGS: [&str; 5] = ["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];

// ANCHOR: parse
pub fn parse(text: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, first) = directives(&lines)?;
    let mut instructions = vec![];
    let mut i = first;
    while i < lines.len() {
        let start = i;
        let mut logical = String::new();
        // A line ending in the escape character goes on with the next one;
        // comment lines and empty lines inside a continuation are dropped.
        loop {
            let line = lines[i];
            i += 1;
            let trimmed = line.trim_start();
            if !logical.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
                if i >= lines.len() {
                    break;
                }
                continue;
            }
            match line.trim_end().strip_suffix(escape) {
                Some(head) if i < lines.len() => logical.push_str(head),
                _ => {
                    logical.push_str(line);
                    break;
                }
            }
        }
        let logical = logical.trim();
        if logical.is_empty() || logical.starts_with('#') {
            continue;
        }
        instructions.push(instruction(start + 1, logical)?);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}
// ANCHOR_END: parse

/// `# escape=\`` and `# syntax=...` lines at the very top, before anything else.
fn directives(lines: &[&str]) -> Result<(char, usize)> {
    let mut escape = '\\';
    for (n, line) in lines.iter().enumerate() {
        let Some(body) = line.trim().strip_prefix('#') else {
            return Ok((escape, n));
        };
        let Some((key, value)) = body.split_once('=') else {
            return Ok((escape, n));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "escape" => {
                escape = match value.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(Failure::new(format!(
                            "Dockerfile:{}: invalid escape token {other:?}: use \\ or `",
                            n + 1
                        )));
                    }
                }
            }
            // BuildKit would fetch this frontend image; mini-docker is its own.
            "syntax" | "check" => {}
            _ => return Ok((escape, n)),
        }
    }
    Ok((escape, lines.len()))
}

fn instruction(line: usize, text: &str) -> Result<Instruction> {
    let (word, mut rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(w, r)| (w, r.trim_start()));
    let keyword = word.to_ascii_uppercase();
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(Failure::new(format!(
            "Dockerfile:{line}: unknown instruction: {word}"
        )));
    }
    let mut flags = vec![];
    while TAKES_FLAGS.contains(&keyword.as_str()) && rest.starts_with("--") {
        let (flag, after) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(f, r)| (f, r.trim_start()));
        let (name, value) = flag[2..].split_once('=').unwrap_or((&flag[2..], ""));
        flags.push((name.to_string(), value.to_string()));
        rest = after;
    }
    let args = match rest.starts_with('[') {
        true => match serde_json::from_str::<Vec<String>>(rest) {
            Ok(list) => Args::Exec(list),
            Err(_) => Args::Shell(rest.to_string()),
        },
        false => Args::Shell(rest.to_string()),
    };
    if args == Args::Shell(String::new()) && !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT") {
        return Err(Failure::new(format!(
            "Dockerfile:{line}: {keyword} requires at least one argument"
        )));
    }
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
        text: text.to_string(),
    })
}

impl Instruction {
    /// The value of `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An error that points at this instruction's line.
    pub fn fail(&self, why: impl std::fmt::Display) -> Failure {
        let mut text = self.text.clone();
        if text.chars().count() > 60 {
            text = text.chars().take(57).collect::<String>() + "...";
        }
        Failure::new(format!("Dockerfile:{}: {text}: {why}", self.line))
    }

    /// Refuse any flag not in `known`.
    pub fn only_flags(&self, known: &[&str]) -> Result<()> {
        match self
            .flags
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            Some((name, _)) => Err(self.fail(format!("unknown flag: --{name}"))),
            None => Ok(()),
        }
    }
}

// ANCHOR: expand
/// Split `text` into words as Docker's shell lexer does: on blanks outside quotes,
/// quotes removed, `$VAR`, `${VAR}`, `${VAR:-word}` and `${VAR:+word}` replaced by
/// `lookup` (nothing inside single quotes), the escape character keeping the next
/// character as it is.
pub fn words(text: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = vec![];
    let mut word = String::new();
    let mut started = false;
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (q, c) if c == escape => match chars.next() {
                // In double quotes the escape only works on what they would end.
                Some(n) if q.is_none() || matches!(n, '"' | '$') || n == escape => word.push(n),
                Some(n) => {
                    word.push(c);
                    word.push(n);
                }
                None => word.push(c),
            },
            (_, '$') => word.push_str(&variable(&mut chars, escape, lookup)),
            (_, c) => word.push(c),
        }
        started = true;
    }
    if started {
        out.push(word);
    }
    out
}

/// `text` with its variables replaced and quotes removed, as one word.
pub fn expand(text: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let quoted = format!("\"{}\"", text.replace('"', &format!("{escape}\"")));
    words(&quoted, escape, lookup).concat()
}

/// After a `$`: `NAME`, `{NAME}`, `{NAME:-word}` or `{NAME:+word}`.
fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> String {
    let name_char = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if chars.peek() != Some(&'{') {
        let mut name = String::new();
        while let Some(c) = chars.next_if(name_char) {
            name.push(c);
        }
        return match name.is_empty() {
            true => "$".into(),
            false => lookup(&name).unwrap_or_default(),
        };
    }
    chars.next();
    let mut inside = String::new();
    let mut depth = 1;
    for c in chars.by_ref() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            _ => {}
        }
        inside.push(c);
    }
    let (name, op, word) = match inside.split_once(":-") {
        Some((n, w)) => (n, "-", w),
        None => match inside.split_once(":+") {
            Some((n, w)) => (n, "+", w),
            None => (inside.as_str(), "", ""),
        },
    };
    let value = lookup(name).filter(|v| !v.is_empty());
    match op {
        "-" => value.unwrap_or_else(|| expand(word, escape, lookup)),
        "+" => value.map_or(String::new(), |_| expand(word, escape, lookup)),
        _ => lookup(name).unwrap_or_default(),
    }
}
// ANCHOR_END: expand

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "SPACE" => Some("a b".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn continuations_comments_and_forms() {
        let text = "# syntax=docker/dockerfile:1\nFROM busybox AS build\n# a comment\nRUN echo a \\\n# inside\n  && echo b\nCMD [\"sh\", \"-c\"]\ncopy --from=build --chown=1:2 /a /b\n";
        let file = parse(text).unwrap();
        let run = &file.instructions[1];
        assert_eq!((run.line, run.keyword.as_str()), (4, "RUN"));
        assert_eq!(run.args, Args::Shell("echo a   && echo b".into()));
        assert_eq!(
            file.instructions[2].args,
            Args::Exec(vec!["sh".into(), "-c".into()])
        );
        let copy = &file.instructions[3];
        assert_eq!(copy.flag("from"), Some("build"));
        assert_eq!(copy.flag("chown"), Some("1:2"));
        assert_eq!(copy.args, Args::Shell("/a /b".into()));
    }

    #[test]
    fn escape_directive_and_errors() {
        let file = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n").unwrap();
        assert_eq!(file.escape, '`');
        assert_eq!(
            file.instructions[1].args,
            Args::Shell("dir c:\\   && echo".into())
        );
        let err = parse("FROM x\n\nRUNN echo\n").unwrap_err().to_string();
        assert_eq!(err, "Dockerfile:3: unknown instruction: RUNN");
        let err = parse("FROM x\nCOPY\n").unwrap_err().to_string();
        assert!(err.contains("Dockerfile:2: COPY requires at least one argument"));
    }

    #[test]
    fn words_and_variables() {
        let w = |t: &str| words(t, '\\', &env);
        assert_eq!(w("A=$A B=\"x y\" 'C=$A'"), ["A=one", "B=x y", "C=$A"]);
        assert_eq!(
            w("${A}s ${NOPE:-dflt} ${A:+set} ${NOPE:+set}x"),
            ["ones", "dflt", "set", "x"]
        );
        assert_eq!(w("${EMPTY:-e} \\$A a\\ b"), ["e", "$A", "a b"]);
        assert_eq!(w("$SPACE"), ["a b"]);
        assert_eq!(expand("/app/$A/\"q\"", '\\', &env), "/app/one/\"q\"");
    }
}
