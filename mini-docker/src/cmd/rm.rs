//! `mini-docker rm`: removes stopped containers (`-f` stops them first with SIGKILL; `-v`
//! removes their anonymous volumes too).
use std::path::Path;
use std::time::Duration;

use clap::Args;
use nix::sys::signal::Signal;

use crate::record::Status;
use crate::{Error, containers};

/// `rm`.
#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Removes each container. On a full disk too: nothing is written before the container's
/// writable layer is gone, but for a state or a network's leases, for which room is made
/// (`space`).
pub fn main(root: &Path, args: &RmArgs) -> Result<i32, Error> {
    let mut status = 0;
    for name in &args.containers {
        match remove(root, name, args.force, args.volumes) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                crate::say(&e);
                // `rm -f` of what is not there is still said, but is not a failure: the
                // container is gone, as asked (docker's cli/command/container/rm.go).
                if !(args.force && matches!(e, Error::NoSuchContainer(_))) {
                    status = 1;
                }
            }
        }
    }
    crate::space::keep_ballast(root);
    Ok(status)
}

fn remove(root: &Path, name: &str, force: bool, volumes: bool) -> Result<(), Error> {
    let c = containers::find(root, name)?;
    let removed = crate::space::with_room(root, || {
        // Only a running container is stopped: stopping one that is not would write its
        // state, which is about to go.
        if force && matches!(c.live_state()?.status, Status::Running | Status::Paused) {
            super::stop::stop(&c, Some(Signal::SIGKILL), Duration::from_secs(10))?;
        }
        let _guard = c.lock_state()?;
        containers::remove(root, &c, volumes)
    });
    match removed {
        // A `--rm` container's monitor removes it as it ends: the kill above can race it
        // to the record, and then the container is gone, which is what was asked.
        Err(_) if c.config.host.auto_remove && !c.dir.exists() => Ok(()),
        // Another `rm` removed it meanwhile: that one says so; this one says what docker
        // says of a container that is not there.
        Err(_) if !c.dir.exists() => Err(Error::NoSuchContainer(name.to_string())),
        r => r,
    }
}
