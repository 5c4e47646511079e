//! The client end of a container's attach socket: our terminal (or pipes) on one side, the
//! monitor on the other. `attach` uses it, and so do `run -it` and `start -ai`, whose
//! monitor is a process of its own so that the container can outlive a detach.
//!
//! Output without a tty arrives framed (eight bytes of header: stream, length; see
//! `monitor::frame`); with a tty it is the terminal's bytes as they are. With a tty and
//! stdin, the detach keys are watched (see `detach`), our terminal is in raw mode, and a
//! change of our window size (SIGWINCH) is passed on to the container's terminal.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;

use ch01_namespaces::process::SignalBlock;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::Error;
use crate::detach::Escape;
use crate::sys::{WinSize, set_window_size, window_size};

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended (it exited).
    Output,
    /// The detach keys were typed; the container goes on.
    Detached,
    /// A signal that is not passed on (no sig-proxy: with a tty, or `--sig-proxy=false`)
    /// ended the relay, as it would end docker's client; the container goes on.
    Signal(Signal),
}

/// What to relay.
#[derive(Debug)]
pub struct Relay {
    /// The attach socket.
    pub stream: UnixStream,
    /// The container has a terminal.
    pub tty: bool,
    /// Send our stdin.
    pub stdin: bool,
    /// The detach sequence (watched with a tty and stdin only, as docker does).
    pub detach_keys: Vec<u8>,
    /// The container's first process: signals we get are passed to it (docker's
    /// `--sig-proxy`), and with a tty our window size goes to its terminal.
    pub pid: Option<Pid>,
    /// Pass on the signals we get.
    pub sig_proxy: bool,
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

impl Relay {
    /// Relays until the output ends or the user detaches.
    pub fn run(mut self) -> Result<Ended, Error> {
        let stdin = io::stdin();
        let sys_err =
            |call: &str, e: nix::errno::Errno| Error::Sys(ch01_namespaces::SysError::new(call, e));
        // Signals that came meanwhile were passed on to the container: drained on the way out.
        let _signals = SignalBlock::of(
            &ch04_unionfs_layers::sys::Kernel::new(false),
            &crate::monitor::forwarded_signals(),
        )?;
        let sigfd = SignalFd::with_flags(
            &crate::monitor::forwarded_signals(),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(|e| sys_err("signalfd", e))?;
        let _raw = if self.tty && self.stdin {
            crate::monitor::raw_mode(stdin.as_fd())
        } else {
            None
        };
        let resize_now = |pid: Option<Pid>| {
            if let (true, Some(pid), Some(size)) = (self.tty, pid, window_size(stdin.as_fd())) {
                resize(pid, size);
            }
        };
        resize_now(self.pid);
        let mut escape = (self.tty && self.stdin).then(|| Escape::new(self.detach_keys.clone()));
        let mut send_stdin = self.stdin;
        let mut buf = vec![0u8; 32 * 1024];
        let mut typed = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let mut fds = vec![
                PollFd::new(self.stream.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            if send_stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                let n = self.stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return Ok(Ended::Output);
                }
                if self.tty {
                    let mut out = io::stdout();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                } else {
                    pending.extend_from_slice(&buf[..n]);
                    unframe(&mut pending);
                }
            }
            if ready[1] {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGWINCH) => resize_now(self.pid),
                        Ok(s) if self.sig_proxy => {
                            if let Some(pid) = self.pid {
                                let _ = nix::sys::signal::kill(pid, s);
                            }
                        }
                        // Ours, then: leave (restoring the terminal on the way out).
                        Ok(s) => return Ok(Ended::Signal(s)),
                        _ => {}
                    }
                }
            }
            if ready.get(2) == Some(&true) {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        send_stdin = false;
                        let _ = self.stream.shutdown(std::net::Shutdown::Write);
                    }
                    Ok(n) => {
                        typed.clear();
                        let detach = match &mut escape {
                            Some(e) => e.feed(&buf[..n], &mut typed),
                            None => {
                                typed.extend_from_slice(&buf[..n]);
                                false
                            }
                        };
                        let _ = self.stream.write_all(&typed);
                        if detach {
                            return Ok(Ended::Detached);
                        }
                    }
                }
            }
        }
    }
}

/// Writes out every complete frame in `pending`: stream 2 to our stderr, 1 to stdout.
fn unframe(pending: &mut Vec<u8>) {
    while pending.len() >= 8 {
        let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
        if pending.len() < 8 + len {
            break;
        }
        let chunk: Vec<u8> = pending.drain(..8 + len).collect();
        if chunk[0] == 2 {
            let _ = io::stderr().write_all(&chunk[8..]);
        } else {
            let mut out = io::stdout();
            let _ = out.write_all(&chunk[8..]);
            let _ = out.flush();
        }
    }
}
