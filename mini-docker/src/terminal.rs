//! The client's terminal and signals: raw mode while keys go to a container, the signals a
//! client passes on (docker's `--sig-proxy`), and a container's terminal resized from
//! outside. Used by the attached client (`relay`) and `exec -t`; the monitor has no
//! terminal of its own.
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios;
use nix::unistd::Pid;

use crate::sys::{WinSize, set_window_size};

/// The CLI's terminal in raw mode (keys go to the container as typed, Ctrl-C included),
/// restored when dropped.
pub struct RawMode {
    saved: termios::Termios,
}

/// Puts the terminal on `fd` (if it is one) in raw mode until the guard is dropped.
pub fn raw_mode(fd: BorrowedFd<'_>) -> Option<RawMode> {
    if !nix::unistd::isatty(fd).unwrap_or(false) {
        return None;
    }
    let saved = termios::tcgetattr(fd).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw).ok()?;
    Some(RawMode { saved })
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), termios::SetArg::TCSANOW, &self.saved);
    }
}

/// The signals passed on to a container (docker's sig-proxy), and SIGWINCH for the window
/// size: what an attached client (`relay`, `exec -t`) watches; a monitor blocks them.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// Gives the container's terminal our size. The monitor holds the terminal's master side;
/// we reach the same terminal through the container's `/dev/console`, opened via
/// `/proc/PID/root` (a TIOCSWINSZ on either side resizes the pair and signals the
/// container's foreground process group; see ioctl_tty(2)).
pub fn resize(pid: Pid, size: WinSize) {
    let console = format!("/proc/{pid}/root/dev/console");
    if let Ok(tty) = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(console)
    {
        let _ = set_window_size(tty.as_fd(), size);
    }
}
