//! `mini-docker attach`: our stdin, stdout and stderr connected to a running container's,
//! through its monitor's socket (docker's attach). With a tty, `Ctrl-P Ctrl-Q` (or
//! `--detach-keys`) leaves the container running: docker's client then says "read escape
//! sequence" and exits 1, which we copy.
use std::os::unix::net::UnixStream;
use std::path::Path;

use clap::Args;
use nix::unistd::Pid;

use crate::record::Status;
use crate::relay::{Ended, Relay};
use crate::{Error, containers, detach};

/// `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "bool")]
    pub sig_proxy: bool,
    /// The container.
    pub container: String,
}

/// Relays until the container's output ends; returns its exit code.
pub fn main(root: &Path, args: &AttachArgs) -> Result<i32, Error> {
    let keys = detach_keys(args.detach_keys.as_deref())?;
    let c = containers::find(root, &args.container)?;
    let state = c.live_state()?;
    match state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::Conflict(
                "You cannot attach to a paused container, unpause it first".into(),
            ));
        }
        _ => {
            return Err(Error::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
    }
    let sock = c.path("attach.sock");
    let (_dir, short) = c.socket_path("attach.sock")?;
    let stream = UnixStream::connect(&short).map_err(|e| Error::io("connect to", &sock, e))?;
    let relay = Relay {
        stream,
        tty: c.config.tty,
        stdin: !args.no_stdin && c.config.open_stdin,
        detach_keys: keys,
        pid: Some(Pid::from_raw(state.pid)),
        // docker passes signals on only without a tty: with one, Ctrl-C is a key.
        sig_proxy: args.sig_proxy && !c.config.tty,
    };
    match relay.run()? {
        Ended::Detached => {
            eprintln!("read escape sequence");
            return Ok(1);
        }
        Ended::Signal(s) => return Ok(128 + s as i32),
        Ended::Output => {}
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

/// The detach sequence: `--detach-keys`, else (or if empty, as docker) Ctrl-P Ctrl-Q.
pub fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>, Error> {
    flag.filter(|f| !f.is_empty())
        .map_or_else(|| Ok(detach::DEFAULT.to_vec()), detach::parse)
}
