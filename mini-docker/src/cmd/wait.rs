//! `mini-docker wait`: blocks until each container has stopped, then prints its exit code.
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::record::Status;
use crate::{Error, containers};

/// `wait`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Waits for each container in turn.
pub fn main(root: &Path, args: &WaitArgs) -> Result<i32, Error> {
    for name in &args.containers {
        let c = containers::find(root, name)?;
        loop {
            let state = c.live_state()?;
            // A created container that was never started is waited for, as docker does.
            if state.status == Status::Exited {
                println!("{}", state.exit_code);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(0)
}
