//! Without `-t`, a container's stdin, stdout and stderr are pipes that the runtime
//! owns, and the runtime copies between them and the user's own (Docker: the FIFOs
//! of containerd's shim). The process never gets the user's descriptors: with them,
//! a process it leaves behind after `exec` keeps reading the admin's terminal, and
//! any process can reopen `/proc/self/fd/0`, a file the admin redirected in, for
//! writing. When the process ends, we close our ends: what is left behind reads the
//! end of its input and writes into a pipe nobody reads.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use labkit::{Failure, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

fn fail(what: &str, e: Errno) -> Failure {
    Failure::new(format!("{what}: {}", e.desc()))
}

/// The three pipes of a process: its ends and ours.
#[derive(Debug)]
pub struct Pipes {
    /// What the process takes as its 0, 1 and 2 (stdin is /dev/null without `-i`).
    pub theirs: [OwnedFd; 3],
    pub ours: Ours,
}

/// The runtime's ends: stdin's write end (with `-i`), stdout's and stderr's read ends.
#[derive(Debug)]
pub struct Ours {
    input: Option<OwnedFd>,
    output: [OwnedFd; 2],
}

/// The streams as `json.log` names them.
pub const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// After the process has ended, what we still copy of each stream: what a pipe
/// holds (64 KiB). A process left behind that goes on writing cannot keep us.
const AFTER_THE_END: usize = 64 * 1024;

// ANCHOR: pipes
impl Pipes {
    /// `interactive` (`-i`): a pipe for stdin too; otherwise stdin is /dev/null.
    pub fn new(interactive: bool) -> Result<Pipes> {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e));
        let (stdin, input) = match interactive {
            true => {
                let (read, write) = pipe()?;
                // Never blocked by a process that does not read: we would stop
                // copying its output.
                fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                    .map_err(|e| fail("fcntl", e))?;
                (read, Some(write))
            }
            false => {
                let null = std::fs::File::open("/dev/null")
                    .map_err(|e| Failure::new(format!("/dev/null: {e}")))?;
                (OwnedFd::from(null), None)
            }
        };
        let ((out_r, out_w), (err_r, err_w)) = (pipe()?, pipe()?);
        Ok(Pipes {
            theirs: [stdin, out_w, err_w],
            ours: Ours {
                input,
                output: [out_r, err_r],
            },
        })
    }
}
// ANCHOR_END: pipes

// ANCHOR: relay
impl Ours {
    /// Copy until process `pid` has ended: the user's `input` into its stdin (closed
    /// when `input` ends), its stdout and stderr to `sink`. Then what is already in
    /// the pipes, and we let go of them.
    pub fn relay(
        self,
        pid: Pid,
        input: Option<BorrowedFd>,
        mut sink: impl FnMut(&'static str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut relay = Relay {
            pidfd: crate::monitor::open_pidfd(pid)?,
            // Nothing will come without input: the process reads the end at once.
            stdin: self.input.filter(|_| input.is_some()),
            output: self.output,
            input,
            pending: vec![],
            open: [true, true],
            left: [AFTER_THE_END; 2],
            exited: false,
        };
        while !relay.exited || relay.open.iter().any(|o| *o) {
            let (mut fds, watched) = relay.watched();
            // Once it has ended, only what is already there.
            let timeout = match relay.exited {
                true => PollTimeout::ZERO,
                false => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(0) => break,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(fail("poll", e)),
            }
            let ready: Vec<Watch> = watched
                .into_iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(w, _)| w)
                .collect();
            drop(fds);
            for watch in ready {
                match watch {
                    Watch::End => relay.exited = true,
                    Watch::Output(i) => relay.copy_output(i, &mut sink)?,
                    Watch::Input => relay.take_input(),
                    Watch::Room => relay.give_input(),
                }
            }
        }
        Ok(())
    }
}
// ANCHOR_END: relay

/// A relay under way.
struct Relay<'a> {
    pidfd: OwnedFd,
    stdin: Option<OwnedFd>,
    output: [OwnedFd; 2],
    input: Option<BorrowedFd<'a>>,
    /// Input read from the user that the process's stdin has no room for yet.
    pending: Vec<u8>,
    open: [bool; 2],
    left: [usize; 2],
    exited: bool,
}

/// What a descriptor in the poll stands for.
#[derive(Debug, Clone, Copy)]
enum Watch {
    Output(usize),
    End,
    Input,
    Room,
}

impl Relay<'_> {
    /// What we wait for: the output still open; until the end, the end itself, and
    /// either more input or room in its pipe for what we hold.
    fn watched(&self) -> (Vec<PollFd<'_>>, Vec<Watch>) {
        let mut fds = vec![];
        let mut watched = vec![];
        for i in (0..2).filter(|i| self.open[*i]) {
            fds.push(PollFd::new(self.output[i].as_fd(), PollFlags::POLLIN));
            watched.push(Watch::Output(i));
        }
        if !self.exited {
            fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
            watched.push(Watch::End);
            match (&self.stdin, self.input, self.pending.is_empty()) {
                (Some(pipe), _, false) => {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
                    watched.push(Watch::Room);
                }
                (Some(_), Some(user), true) => {
                    fds.push(PollFd::new(user, PollFlags::POLLIN));
                    watched.push(Watch::Input);
                }
                _ => {}
            }
        }
        (fds, watched)
    }

    fn copy_output(
        &mut self,
        i: usize,
        sink: &mut impl FnMut(&'static str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut buf = [0u8; 16384];
        match nix::unistd::read(&self.output[i], &mut buf) {
            Ok(0) | Err(_) => self.open[i] = false,
            Ok(n) => {
                sink(STREAMS[i], &buf[..n])?;
                if self.exited {
                    self.left[i] = self.left[i].saturating_sub(n);
                    self.open[i] = self.left[i] > 0;
                }
            }
        }
        Ok(())
    }

    fn take_input(&mut self) {
        let mut buf = [0u8; 16384];
        match self.input.map(|user| nix::unistd::read(user, &mut buf)) {
            Some(Ok(n)) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
            // The user's input ended: so does the process's.
            _ => (self.input, self.stdin) = (None, None),
        }
    }

    fn give_input(&mut self) {
        if let Some(pipe) = &self.stdin {
            match nix::unistd::write(pipe, &self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(Errno::EAGAIN) => {}
                // Nobody reads its stdin any more: stop taking ours.
                Err(_) => (self.input, self.pending) = (None, vec![]),
            }
        }
        if self.pending.is_empty() && self.input.is_none() {
            self.stdin = None;
        }
    }
}
