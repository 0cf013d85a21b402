//! The json-file log, Docker's default: one JSON object per line of output,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-23T15:14:38.123456789Z"}`.
//! The monitor writes it; `logs` reads it, even long after the container ended.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use labkit::failure::Context;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::store::now;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Whole lines per stream: a chunk read from a pipe may end mid-line.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    pending: [Vec<u8>; 2],
}

fn index(stream: &str) -> usize {
    usize::from(stream == "stderr")
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        // Root's alone (0600): a container's output can hold its secrets.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .context(|| path.display().to_string())?;
        Ok(LogWriter {
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    pub fn write(&mut self, stream: &str, bytes: &[u8]) -> Result<()> {
        let pending = &mut self.pending[index(stream)];
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            Self::emit(&mut self.file, stream, &line)?;
        }
        Ok(())
    }

    /// The last line of each stream, even without its newline.
    pub fn finish(&mut self) -> Result<()> {
        for (i, stream) in ["stdout", "stderr"].iter().enumerate() {
            let rest = std::mem::take(&mut self.pending[i]);
            if !rest.is_empty() {
                Self::emit(&mut self.file, stream, &rest)?;
            }
        }
        Ok(())
    }

    fn emit(file: &mut File, stream: &str, bytes: &[u8]) -> Result<()> {
        // ANCHOR: hole_log_line
        let line = Line {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.to_string(),
            time: now(),
        };
        let mut text = serde_json::to_string(&line).map_err(|e| Failure::new(e.to_string()))?;
        text.push('\n');
        // One write per line (O_APPEND): a reader never sees half a line's JSON.
        file.write_all(text.as_bytes())
            .map_err(|e| Failure::new(format!("json.log: {e}")))
        // ANCHOR_END: hole_log_line
    }
}

/// Every line of the log, in order.
pub fn read(path: &Path) -> Result<Vec<Line>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).context(|| path.display().to_string()),
    };
    Ok(BufReader::new(file)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_and_streams_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut log = LogWriter::open(&path).unwrap();
        log.write("stdout", b"hel").unwrap();
        log.write("stderr", b"oops\n").unwrap();
        log.write("stdout", b"lo\nbye").unwrap();
        log.finish().unwrap();
        let lines: Vec<(String, String)> = read(&path)
            .unwrap()
            .into_iter()
            .map(|l| (l.stream, l.log))
            .collect();
        assert_eq!(
            lines,
            [
                ("stderr".into(), "oops\n".into()),
                ("stdout".into(), "hello\n".into()),
                ("stdout".into(), "bye".into())
            ]
        );
    }
}
