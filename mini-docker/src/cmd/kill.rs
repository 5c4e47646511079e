//! `mini-docker kill`: a signal (SIGKILL by default) to the container's first process.
use std::path::Path;

use clap::Args;

use crate::record::Status;
use crate::{Error, containers};

/// `kill`.
#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Sends the signal to each container.
pub fn main(root: &Path, args: &KillArgs) -> Result<i32, Error> {
    let signal = super::stop::parse_signal(&args.signal)?;
    Ok(super::each_named(&args.containers, |name| {
        containers::find(root, name).and_then(|c| {
            let state = c.live_state()?;
            if !matches!(state.status, Status::Running | Status::Paused) {
                return Err(Error::Conflict(format!(
                    "Cannot kill container: {name}: Container {} is not running",
                    c.id()
                )));
            }
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), signal).map_err(|e| {
                Error::Sys(ch01_namespaces::SysError::new(
                    format!("kill({}, {signal})", state.pid),
                    e,
                ))
            })
        })
    }))
}
