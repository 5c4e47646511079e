//! `mini-docker update`: new resource limits for containers, running or not. The record
//! keeps them for the next start, and a running container's cgroup gets them at once
//! (chapter 2's `apply` on its directories): a limit changes under a live process, which
//! is all a cgroup limit is, a number in a file the kernel reads.
use std::path::Path;

use clap::Args;

use ch04_unionfs_layers::sys::Kernel;

use crate::record::{Status, cgroup_dirs};
use crate::{Error, containers};

/// `update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// The limits to change.
    #[command(flatten)]
    pub limits: super::create::LimitFlags,
    /// The finer knobs (shares, CFS period and quota, soft limit, memory nodes).
    #[command(flatten)]
    pub tuning: super::create::CpuMemFlags,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Updates each container; prints each name, as docker does.
pub fn main(sys: &Kernel, root: &Path, update_args: &UpdateArgs) -> Result<i32, Error> {
    let args = &update_args.limits;
    if args.memory.is_none()
        && args.memory_swap.is_none()
        && args.cpus.is_none()
        && args.cpuset_cpus.is_none()
        && args.pids_limit.is_none()
        && !update_args.tuning.any()
    {
        return Err(Error::Usage(
            "You must provide one or more flags when using this command.".into(),
        ));
    }
    let mut status = 0;
    for name in &update_args.containers {
        match update(sys, root, name, update_args) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                crate::say(&e);
                status = 1;
            }
        }
    }
    Ok(status)
}

fn update(sys: &Kernel, root: &Path, name: &str, all: &UpdateArgs) -> Result<(), Error> {
    let args = &all.limits;
    let found = containers::find(root, name)?;
    let _guard = found.lock_state()?;
    // Read again under the lock: a concurrent `update` or `rename` may have changed it.
    let c = found.reload()?;
    let mut config = c.config.clone();
    let h = &mut config.host;
    // As in docker, 0 (or an empty set) leaves a limit as it is.
    if let Some(m) = args.memory.filter(|&m| m > 0) {
        let swap = match &args.memory_swap {
            Some(s) => super::create::memory_swap(s)?,
            None => h.memory_swap,
        };
        if swap > 0 && m as i64 > swap {
            return Err(Error::Usage(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        h.memory = m;
    }
    if let Some(s) = &args.memory_swap {
        let swap = super::create::memory_swap(s)?;
        if swap > 0 && h.memory == 0 {
            return Err(Error::Usage(
                "You should always set the Memory limit when using Memoryswap limit, update the memory limit at the same time".into(),
            ));
        }
        if swap > 0 && swap < h.memory as i64 {
            return Err(Error::Usage(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        h.memory_swap = swap;
    }
    if let Some(cpus) = args.cpus.filter(|&c| c > 0.0) {
        h.nano_cpus = (cpus * 1e9) as u64;
    }
    let state = c.live_state()?;
    let running = matches!(state.status, Status::Running | Status::Paused);
    if let Some(set) = args.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        // A container started without --cpuset-cpus has no cpuset cgroup to write to.
        if running && h.cpuset_cpus.is_empty() {
            return Err(Error::Conflict(format!(
                "{name} was started without --cpuset-cpus, so it has no cpuset cgroup; stop it, update, and start it again"
            )));
        }
        h.cpuset_cpus = set.to_string();
    }
    if let Some(p) = args.pids_limit {
        h.pids_limit = if p > 0 { p as u64 } else { 0 };
    }
    // The finer knobs: chapter 2's Tuning writes each one given.
    all.tuning.apply_to(h);
    let limits = crate::runtime::limits(&config.host)?;
    if running {
        // The cgroup is the container's (its monitor removes it): a handle, not a guard.
        let cgroup = ch02_cgroups::CgroupHandle::open(
            sys as &dyn ch01_namespaces::Sys,
            cgroup_dirs(&state.cgroup),
        );
        cgroup.apply(&limits)?;
        if args.pids_limit.is_some_and(|p| p <= 0) {
            cgroup.unlimit_pids()?;
        }
    }
    c.save_config(&config)
}
