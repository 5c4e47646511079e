//! `mini-docker pause` / `unpause`: the cgroup freezer (chapter 2): every process of the
//! container stops being scheduled, without a signal it could notice.
use std::path::Path;

use clap::Args;

use ch04_unionfs_layers::sys::Kernel;

use crate::record::{Container, Status};
use crate::{Error, containers};

/// `pause` and `unpause`.
#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Freezes or thaws the container's cgroup.
pub fn set_frozen(c: &Container, frozen: bool) -> Result<(), Error> {
    let state = c.live_state()?;
    let sys = Kernel::new(false);
    let dirs = crate::record::cgroup_dirs(&state.cgroup);
    // The container owns its cgroup: a handle, which never removes it.
    let cgroup = ch02_cgroups::CgroupHandle::open(&sys as &dyn ch01_namespaces::Sys, dirs);
    cgroup.freeze(frozen)?;
    Ok(())
}

/// Pauses or unpauses each container.
pub fn main(_sys: &Kernel, root: &Path, args: &PauseArgs, pause: bool) -> Result<i32, Error> {
    Ok(super::each_named(&args.containers, |name| {
        containers::find(root, name).and_then(|c| {
            let _guard = c.lock_state()?;
            let mut state = c.live_state()?;
            match (pause, state.status) {
                (true, Status::Running) | (false, Status::Paused) => {}
                (true, Status::Paused) => {
                    return Err(Error::Conflict(format!(
                        "Container {} is already paused",
                        c.id()
                    )));
                }
                (false, _) => {
                    return Err(Error::Conflict(format!(
                        "Container {} is not paused",
                        c.id()
                    )));
                }
                (true, _) => {
                    return Err(Error::Conflict(format!(
                        "Container {} is not running",
                        c.id()
                    )));
                }
            }
            set_frozen(&c, pause)?;
            state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
            c.save_state(&state)
        })
    }))
}
