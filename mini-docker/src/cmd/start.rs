//! `mini-docker start`: a created or exited container runs again, with the same writable
//! layer (what it wrote before is still there).
use std::path::Path;

use clap::Args;

use crate::monitor;
use crate::record::Status;
use crate::{Error, containers};

/// `start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Starts each container; with `-a`, stays attached to the (single) container.
pub fn main(root: &Path, args: &StartArgs) -> Result<i32, Error> {
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            return Err(Error::Usage(
                "you cannot start and attach multiple containers at once".into(),
            ));
        };
        let keys = super::attach::detach_keys(args.detach_keys.as_deref())?;
        let mut c = containers::find(root, name)?;
        c.config.open_stdin &= args.interactive;
        if matches!(c.live_state()?.status, Status::Running | Status::Paused) {
            return Err(Error::Conflict(format!(
                "container {name} is already running"
            )));
        }
        return monitor::run_attached(root, &c, keys, true);
    }
    let mut failed = None;
    for name in &args.containers {
        match start_one(root, name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                crate::say(&e);
                failed = Some(e.exit_code());
            }
        }
    }
    Ok(failed.map_or(0, |_| 1))
}

/// Starts one container in the background (nothing to do if it runs).
pub fn start_one(root: &Path, name: &str) -> Result<(), Error> {
    let c = containers::find(root, name)?;
    // No state lock here: the monitor takes it to record the start. Two starts at once
    // meet at monitor.lock, which only one monitor gets.
    if matches!(c.live_state()?.status, Status::Running | Status::Paused) {
        return Ok(());
    }
    monitor::spawn_detached(root, &c).map(drop)
}
