//! The client end of a container's attach socket: our terminal (or pipes) on one side, the
//! monitor on the other. `attach` uses it, and so do `run -it` and `start -ai`, whose
//! monitor is a process of its own so that the container can outlive a detach.
//!
//! Output without a tty arrives framed (eight bytes of header: stream, length; see
//! `monitor::frame`); with a tty it is the terminal's bytes as they are. With a tty and
//! stdin, the detach keys are watched (see `detach`), our terminal is in raw mode, and a
//! change of our window size (SIGWINCH) is passed on to the container's terminal.
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use ch01_namespaces::process::SignalBlock;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::Duration;

use crate::Error;
use crate::detach::Escape;
use crate::pump::{Event, Pump, dup};
use crate::sys::window_size;
use crate::terminal::resize;

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

/// The relay's pump slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// What the monitor sends: the container's output.
    Output,
    /// What we send the monitor: what is typed.
    Input,
    /// Our stdin.
    Stdin,
    /// Our stdout.
    Stdout,
    /// Our stderr.
    Stderr,
}

/// How far our own stdout may fall behind before we stop reading the socket: then the
/// monitor queues for us, and past its own bound drops us (the container never waits).
const BACKLOG: usize = 1 << 20;

impl Relay {
    /// Relays until the output ends or the user detaches.
    pub fn run(self) -> Result<Ended, Error> {
        let sys = ch04_unionfs_layers::sys::Kernel::new(false);
        // Signals that came meanwhile were passed on to the container: drained on the way out.
        let _signals = SignalBlock::of(&sys, &crate::terminal::forwarded_signals())?;
        let mut pump = Pump::new(Some(&crate::terminal::forwarded_signals()))?;
        let socket = |s: &UnixStream| -> Result<OwnedFd, Error> {
            s.try_clone()
                .map(OwnedFd::from)
                .map_err(|e| Error::io("dup", std::path::Path::new("attach socket"), e))
        };
        pump.source(Slot::Output, socket(&self.stream)?)?;
        pump.sink(Slot::Stdout, dup(io::stdout().as_fd())?)?;
        pump.sink(Slot::Stderr, dup(io::stderr().as_fd())?)?;
        if self.stdin {
            pump.source(Slot::Stdin, dup(io::stdin().as_fd())?)?;
            pump.sink(Slot::Input, socket(&self.stream)?)?;
        }
        let _raw = if self.tty && self.stdin {
            crate::terminal::raw_mode(io::stdin().as_fd())
        } else {
            None
        };
        let resize_now = |pid: Option<Pid>| {
            if let (true, Some(pid), Some(size)) = (self.tty, pid, window_size(io::stdin().as_fd()))
            {
                resize(pid, size);
            }
        };
        resize_now(self.pid);
        let mut escape = (self.tty && self.stdin).then(|| Escape::new(self.detach_keys.clone()));
        let mut frames: Vec<u8> = Vec::new();
        let mut typed = Vec::new();
        let mut input_ended = false;
        let behind = |pump: &Pump<Slot>| pump.queued(Slot::Stdout) + pump.queued(Slot::Stderr);
        let ended = loop {
            match pump.next(None)? {
                Event::Data(Slot::Output, bytes) => {
                    if self.tty {
                        pump.send(Slot::Stdout, &bytes);
                    } else {
                        frames.extend_from_slice(&bytes);
                        unframe(&mut frames, &mut pump);
                    }
                    if behind(&pump) > BACKLOG {
                        pump.pause(Slot::Output, true);
                    }
                }
                Event::Drained(Slot::Stdout | Slot::Stderr) if behind(&pump) <= BACKLOG => {
                    pump.pause(Slot::Output, false);
                }
                Event::Eof(Slot::Output) => break Ended::Output,
                Event::Data(Slot::Stdin, bytes) => {
                    let detach = crate::detach::typed(escape.as_mut(), &bytes, &mut typed);
                    if pump.send(Slot::Input, &typed).unwrap_or(0) > BACKLOG {
                        pump.pause(Slot::Stdin, true);
                    }
                    if detach {
                        break Ended::Detached;
                    }
                }
                Event::Eof(Slot::Stdin) => {
                    input_ended = true;
                    if pump.queued(Slot::Input) == 0 {
                        let _ = self.stream.shutdown(std::net::Shutdown::Write);
                    }
                }
                Event::Drained(Slot::Input) => {
                    pump.pause(Slot::Stdin, false);
                    if input_ended {
                        let _ = self.stream.shutdown(std::net::Shutdown::Write);
                    }
                }
                Event::Signal(Signal::SIGWINCH) => resize_now(self.pid),
                Event::Signal(s) if self.sig_proxy => {
                    if let Some(pid) = self.pid {
                        let _ = nix::sys::signal::kill(pid, s);
                    }
                }
                // Ours, then: leave (restoring the terminal on the way out).
                Event::Signal(s) => break Ended::Signal(s),
                _ => {}
            }
        };
        // Every byte of the container's output that reached us goes out before we leave; a
        // detach or a signal waits a moment only.
        let limit = match ended {
            Ended::Output => None,
            _ => Some(Duration::from_millis(500)),
        };
        pump.finish(limit);
        Ok(ended)
    }
}

/// Sends out every complete frame in `pending`: stream 2 to our stderr, 1 to stdout.
fn unframe(pending: &mut Vec<u8>, pump: &mut Pump<Slot>) {
    let mut start = 0;
    while pending.len() - start >= 8 {
        let header = &pending[start..start + 8];
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if pending.len() - start < 8 + len {
            break;
        }
        let slot = if header[0] == 2 {
            Slot::Stderr
        } else {
            Slot::Stdout
        };
        pump.send(slot, &pending[start + 8..start + 8 + len]);
        start += 8 + len;
    }
    pending.drain(..start);
}
