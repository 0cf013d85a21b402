//! `-t`: a pseudo-terminal for the container.
//!
//! The pty must come from the container's own devpts (chapter 02 mounts a new
//! instance on its /dev/pts): a pty of the host's would be a `/dev/pts/N` that
//! does not exist inside, and `tty`, `ssh` or `sudo` would fail there. So the
//! container makes it itself, just before exec: it opens its `/dev/ptmx`, makes the
//! slave its stdin, stdout, stderr and controlling terminal, and sends the master
//! to the monitor over a unix socket (`SCM_RIGHTS`), as runc does with its
//! `--console-socket`. The monitor copies between the master and the user's
//! terminal, which the CLI has put in raw mode so that every key goes through.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use labkit::{Failure, Result};
use nix::fcntl::{OFlag, open};
use nix::pty::Winsize;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// The fd number the container finds the console socket on (runc passes its
/// number in an environment variable; a fixed number keeps this simple).
pub const CONSOLE_SOCKET_FD: RawFd = 200;

fn fail(what: &str, e: nix::errno::Errno) -> Failure {
    Failure::new(format!("{what}: {}", e.desc()))
}

/// The size of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into `size`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0).then_some(size)
}

/// Give the pty on `fd` that size (the kernel sends SIGWINCH to its foreground job).
pub fn set_window_size(fd: BorrowedFd, size: &Winsize) {
    // SAFETY: TIOCSWINSZ reads one struct winsize.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
}

// ANCHOR: console
/// In the container, just before exec: a pty from its own devpts; the slave as
/// stdio and controlling terminal (in a session of its own); the master sent away.
/// No path the container could have replaced is trusted: the master is opened as
/// `/dev/pts/ptmx` (devpts, where nothing can be made) without following a
/// symlink, and checked to be the pty multiplexer; the slave comes from the master
/// itself (`TIOCGPTPEER`), not from a `/dev/pts/N` looked up by name.
pub fn make_console(socket: RawFd, size: Option<Winsize>) -> Result<()> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let master =
        open("/dev/pts/ptmx", flags, Mode::empty()).map_err(|e| fail("open /dev/pts/ptmx", e))?;
    if !crate::hardening::is_char_device(&master, 5, 2) {
        return Err(Failure::new(
            "/dev/pts/ptmx is not the pty multiplexer (5:2)",
        ));
    }
    // SAFETY: unlockpt takes the master's descriptor.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(Failure::new(format!(
            "unlockpt: {}",
            std::io::Error::last_os_error()
        )));
    }
    nix::unistd::setsid().map_err(|e| fail("setsid", e))?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor, or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    if slave < 0 {
        return Err(Failure::new(format!(
            "ioctl(TIOCGPTPEER): {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: the kernel just gave us this descriptor.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some(size) = size {
        set_window_size(master.as_fd(), &size);
    }
    for target in 0..3 {
        // SAFETY: dup2 onto our own stdio descriptors.
        unsafe { libc::dup2(slave.as_raw_fd(), target) };
    }
    // A session leader with no terminal takes this one as its controlling terminal.
    // SAFETY: TIOCSCTTY takes an integer argument.
    unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    // SAFETY: left open for us by our parent; we own it from here.
    let socket = unsafe { OwnedFd::from_raw_fd(socket) };
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[std::io::IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| fail("sending the pty's master", e))?;
    Ok(())
}
// ANCHOR_END: console

/// In the monitor: the master the container sent, or `None` if it never did.
pub fn receive_console(socket: &OwnedFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut io = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut io,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    for cmsg in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: a descriptor the kernel just gave us.
            return fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    None
}

// ANCHOR: copy
/// Copy between a pty's `master` and the user's terminal until process `pid` ends:
/// what the container writes goes to `out` and to `record` (the log); the keys
/// from `input` go in; on `resized` (a SIGWINCH), the terminal's size goes to the pty.
pub fn copy_terminal(
    master: &OwnedFd,
    pid: nix::unistd::Pid,
    mut input: Option<BorrowedFd>,
    out: Option<BorrowedFd>,
    resized: Option<&nix::sys::signalfd::SignalFd>,
    mut record: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let pidfd = crate::monitor::open_pidfd(pid)?;
    let terminal = input;
    let mut exited = false;
    let mut buf = [0u8; 16384];
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(resized.map(|r| PollFd::new(r.as_fd(), PollFlags::POLLIN)));
        let keys_at = fds.len();
        fds.extend(input.map(|i| PollFd::new(i, PollFlags::POLLIN)));
        // Once the container has ended, only drain what is already there.
        let timeout = if exited {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(fail("poll", e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            match nix::unistd::read(master, &mut buf) {
                // EIO: every process holding the slave end is gone.
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    record(&buf[..n])?;
                    if let Some(out) = out {
                        let _ = nix::unistd::write(out, &buf[..n]);
                    }
                }
            }
        }
        exited |= ready[1];
        if let Some(resized) = resized.filter(|_| ready[2]) {
            let _ = resized.read_signal();
            if let Some(size) = terminal.and_then(window_size) {
                set_window_size(master.as_fd(), &size);
            }
        }
        if ready.get(keys_at) == Some(&true) {
            match input.map(|i| nix::unistd::read(i, &mut buf)) {
                Some(Ok(n)) if n > 0 => {
                    let _ = nix::unistd::write(master, &buf[..n]);
                }
                _ => input = None, // the user's side closed: no more keys
            }
        }
    }
}
// ANCHOR_END: copy

/// `exec -t`: our own terminal, raw, relayed to the process's pty until it ends.
pub fn relay(master: OwnedFd, pid: nix::unistd::Pid) -> Result<()> {
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    if let Some(size) = window_size(stdin.as_fd()) {
        set_window_size(master.as_fd(), &size);
    }
    let _raw = RawMode::enter();
    copy_terminal(
        &master,
        pid,
        Some(stdin.as_fd()),
        Some(stdout.as_fd()),
        None,
        |_| Ok(()),
    )
}

/// The user's terminal changed while it lives, restored when dropped.
#[derive(Debug)]
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw: no line editing, no echo, no signals from keys; the container's pty
    /// does all of that.
    pub fn enter() -> RawMode {
        RawMode::with(cfmakeraw)
    }

    /// No echo: a password prompt.
    pub fn no_echo() -> RawMode {
        RawMode::with(|t| t.local_flags.remove(nix::sys::termios::LocalFlags::ECHO))
    }

    fn with(change: impl FnOnce(&mut Termios)) -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None }; // not a terminal: nothing to do
        };
        let mut changed = saved.clone();
        change(&mut changed);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &changed);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}
