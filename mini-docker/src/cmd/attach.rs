//! `mini-docker attach`: our stdin, stdout and stderr connected to a running container's,
//! through its monitor's socket (docker's attach). Output without a tty arrives framed:
//! eight bytes of header (stream, length) before each chunk.
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use clap::Args;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::container::Status;
use crate::{Error, containers};

/// `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// The container.
    pub container: String,
}

/// Relays until the container's output ends; returns its exit code.
pub fn main(root: &Path, args: &AttachArgs) -> Result<i32, Error> {
    let c = containers::find(root, &args.container)?;
    if !matches!(c.live_state()?.status, Status::Running | Status::Paused) {
        return Err(Error::Conflict(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    let sock = c.path("attach.sock");
    let (_dir, short) = c.socket_path("attach.sock")?;
    let mut stream = UnixStream::connect(&short).map_err(|e| Error::io("connect to", &sock, e))?;
    let stdin = io::stdin();
    let _raw = if c.config.tty {
        crate::monitor::raw_mode(stdin.as_fd())
    } else {
        None
    };
    let mut send_stdin = !args.no_stdin && c.config.open_stdin;
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut fds = vec![PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        if send_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Sys(ch01_namespaces::SysError::new("poll", e))),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            if c.config.tty {
                let mut out = io::stdout();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            } else {
                pending.extend_from_slice(&buf[..n]);
                while pending.len() >= 8 {
                    let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]])
                        as usize;
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
        }
        if ready.get(1) == Some(&true) {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    send_stdin = false;
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                }
                Ok(n) => {
                    let _ = stream.write_all(&buf[..n]);
                }
            }
        }
    }
    // The output ended with the container: report how it ended.
    for _ in 0..200 {
        let state = c.live_state()?;
        if state.status == Status::Exited {
            return Ok(state.exit_code);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(0)
}
