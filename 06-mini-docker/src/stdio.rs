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
        mut input: Option<BorrowedFd>,
        mut sink: impl FnMut(&'static str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let pidfd = crate::monitor::open_pidfd(pid)?;
        let Ours {
            input: mut stdin,
            output,
        } = self;
        if input.is_none() {
            stdin = None; // nothing will come: the process reads the end at once
        }
        let mut open = [true, true];
        let mut left = [AFTER_THE_END; 2];
        let mut pending: Vec<u8> = vec![];
        let mut exited = false;
        let mut buf = [0u8; 16384];
        while !exited || open.iter().any(|o| *o) {
            // What we wait for: the output still open; until the end, the end itself,
            // and either more input or room in its pipe for what we hold.
            let mut fds = vec![];
            let mut watched = vec![];
            for i in (0..2).filter(|i| open[*i]) {
                fds.push(PollFd::new(output[i].as_fd(), PollFlags::POLLIN));
                watched.push(Watch::Output(i));
            }
            if !exited {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                watched.push(Watch::End);
                match (&stdin, input, pending.is_empty()) {
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
            let timeout = match exited {
                true => PollTimeout::ZERO,
                false => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(0) => break, // ended, and nothing more is there
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
            for watch in ready {
                match watch {
                    Watch::End => exited = true,
                    Watch::Output(i) => match nix::unistd::read(&output[i], &mut buf) {
                        Ok(0) | Err(_) => open[i] = false,
                        Ok(n) => {
                            sink(STREAMS[i], &buf[..n])?;
                            if exited {
                                left[i] = left[i].saturating_sub(n);
                                open[i] = left[i] > 0;
                            }
                        }
                    },
                    Watch::Input => match input.map(|user| nix::unistd::read(user, &mut buf)) {
                        Some(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
                        // The user's input ended: so does the process's.
                        _ => (input, stdin) = (None, None),
                    },
                    Watch::Room => {
                        if let Some(pipe) = &stdin {
                            match nix::unistd::write(pipe, &pending) {
                                Ok(n) => drop(pending.drain(..n)),
                                Err(Errno::EAGAIN) => {}
                                // Nobody reads its stdin any more: stop taking ours.
                                Err(_) => (input, stdin, pending) = (None, None, vec![]),
                            }
                        }
                        if pending.is_empty() && input.is_none() {
                            stdin = None;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
// ANCHOR_END: relay

/// What a descriptor in the poll stands for.
#[derive(Debug, Clone, Copy)]
enum Watch {
    Output(usize),
    End,
    Input,
    Room,
}
