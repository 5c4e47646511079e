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

/// Whether the container's cgroup is frozen now, whatever its record says (a `pause` that
/// failed half-way can leave it so).
pub fn frozen_now(state: &crate::record::State) -> bool {
    let sys = Kernel::new(false);
    let dirs = crate::record::cgroup_dirs(&state.cgroup);
    let cgroup = ch02_cgroups::CgroupHandle::open(&sys as &dyn ch01_namespaces::Sys, dirs);
    cgroup.frozen().unwrap_or(false)
}

/// Whether the container's cgroup is still there (its monitor removes it after the end).
pub fn cgroup_exists(state: &crate::record::State) -> bool {
    state.cgroup.iter().any(|d| d.path.is_dir())
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
            if let Err(e) = set_frozen(&c, pause) {
                // A freeze that did not finish leaves no half-frozen container behind.
                if pause {
                    let _ = set_frozen(&c, false);
                }
                return Err(e);
            }
            state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
            c.save_state(&state)
        })
    }))
}

/// A running container frozen for a copy; thawed when dropped (see [`freeze_for_copy`]).
#[derive(Debug)]
pub struct Frozen<'a> {
    sys: &'a Kernel,
    keeper: nix::unistd::Pid,
    hold: Option<std::os::fd::OwnedFd>,
}

impl Drop for Frozen<'_> {
    /// Lets the keeper go and waits for it: the container is thawed when this returns.
    fn drop(&mut self) {
        use ch01_namespaces::Sys;
        drop(self.hold.take());
        let _ = self.sys.waitpid(self.keeper, false);
    }
}

/// Freezes a running container while `cp` works on its files, so that nothing inside can
/// swap a directory for a symlink between our looking at a path and our using it (the
/// CVE-2018-15664 class; `podman cp --pause` does the same, and moby#39252 proposed it).
/// cp's own steps also stay inside the container's root (`SafeRoot`); the freeze covers
/// the walks below a directory it has opened.
///
/// The freezing and the thawing are a *keeper*'s: a child in its own session that
/// freezes, reports, and waits on a pipe whose other end only we hold. When we drop the
/// guard, or die in any way (Ctrl-C, SIGKILL), the pipe closes and the keeper thaws the
/// container, so an interrupted `cp` never leaves it frozen (docker/cli#3447 is docker's
/// daemon hanging on one). A paused container stays paused and is not touched; one that
/// is not running has nothing to freeze: None.
pub fn freeze_for_copy<'a>(sys: &'a Kernel, c: &Container) -> Result<Option<Frozen<'a>>, Error> {
    use ch01_namespaces::Sys;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let state = c.live_state()?;
    if state.status != Status::Running {
        return Ok(None);
    }
    let dirs = crate::record::cgroup_dirs(&state.cgroup);
    let (hold_r, hold_w) = ch01_namespaces::sys::pipe()?;
    let (ack_r, ack_w) = ch01_namespaces::sys::pipe()?;
    let keep = [hold_r.as_raw_fd(), ack_w.as_raw_fd()];
    let keeper = sys
        .clone3(nix::sched::CloneFlags::empty(), &mut || {
            // Out of our session and process group: a Ctrl-C or a kill of our group does
            // not reach it, only the pipe's closing does.
            let _ = nix::unistd::setsid();
            if crate::sys::close_all_but(&keep).is_err() {
                return 1;
            }
            let cgroup =
                ch02_cgroups::CgroupHandle::open(sys as &dyn ch01_namespaces::Sys, dirs.clone());
            let mut ack = std::fs::File::from(crate::sys::own_fd(keep[1]));
            let mut hold = std::fs::File::from(crate::sys::own_fd(keep[0]));
            if cgroup.freeze(true).is_err() {
                let _ = cgroup.freeze(false);
                let _ = ack.write_all(b"E");
                return 1;
            }
            let _ = ack.write_all(b"F");
            drop(ack);
            // Until end of file: the guard dropped, or its process gone.
            let mut byte = [0u8; 1];
            while matches!(hold.read(&mut byte), Ok(n) if n > 0) {}
            match cgroup.freeze(false) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        })
        .map_err(|e| Error::Process(e.into()))?;
    drop(hold_r);
    drop(ack_w);
    let mut answer = [0u8; 1];
    let said = std::fs::File::from(ack_r).read(&mut answer).unwrap_or(0);
    if said == 1 && answer[0] == b'F' {
        return Ok(Some(Frozen {
            sys,
            keeper,
            hold: Some(hold_w),
        }));
    }
    let _ = sys.waitpid(keeper, false);
    Err(Error::Conflict(format!(
        "cannot freeze container {} for the copy",
        c.id()
    )))
}
