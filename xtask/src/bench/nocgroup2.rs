//! A thread whose mount namespace lacks the cgroup2 mount of a hybrid host, for crun.
//!
//! crun 1.8 refuses to start on a host whose cgroups are "hybrid" (v1 controllers plus a
//! cgroup2 mount at `/sys/fs/cgroup/unified`): `cgroups in hybrid mode not supported, drop
//! all controllers from cgroupv2`, whatever `--cgroup-manager` says. The peers' scripts
//! run it as `unshare --mount --propagation private sh -c 'umount -l
//! /sys/fs/cgroup/unified; exec crun ...'`: crun then sees a cgroup v1 host. The host's
//! own mount table is untouched, and crun does the same work either way.
//!
//! Here the same is done once, for one thread of ours: the mount namespace is a property
//! of each thread (task) in Linux, so `unshare(CLONE_NEWNS)` in a thread gives that thread
//! alone a private copy of the mount table, and every process it starts inherits that copy.
//! crun's commands are started from this thread and timed there, so the measured time is
//! crun's alone, without an `unshare` and a shell around each run.
//!
//! On a pure cgroup v2 or v1 host the thread is not started and crun runs as it is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};

use anyhow::Context;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

type Job = Box<dyn FnOnce() + Send>;

/// Where jobs for the thread are sent, once it runs.
static JOBS: OnceLock<Sender<Job>> = OnceLock::new();

/// Starts the thread, with `cgroup2` (the hybrid host's cgroup2 mount point) detached from
/// its mount table. Call it early, before the benchmark mounts anything: the thread's copy
/// of the mount table is taken now, and later mounts of the host do not reach it.
pub fn start(cgroup2: &Path) -> anyhow::Result<()> {
    let cgroup2: PathBuf = cgroup2.to_path_buf();
    let (jobs, receive) = mpsc::channel::<Job>();
    let (ready, is_ready) = mpsc::channel::<nix::Result<()>>();
    std::thread::Builder::new()
        .name("no-cgroup2".into())
        .spawn(move || {
            let hidden = hide(&cgroup2);
            let ok = hidden.is_ok();
            let _ = ready.send(hidden);
            if ok {
                for job in receive {
                    job();
                }
            }
        })
        .context("starting the thread for crun")?;
    is_ready
        .recv()
        .context("the thread for crun ended")?
        .context("a mount namespace without the cgroup2 mount (for crun)")?;
    let _ = JOBS.set(jobs);
    Ok(())
}

/// This thread's own mount namespace, private (nothing done in it propagates to the
/// host), without the cgroup2 mount.
fn hide(cgroup2: &Path) -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    umount2(cgroup2, MntFlags::MNT_DETACH)
}

/// Runs `f` on the thread and returns what it returns; `None` if the thread was not
/// started (the host is not hybrid: run it where you are).
pub fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let jobs = JOBS.get()?;
    let (reply, answer) = mpsc::channel();
    jobs.send(Box::new(move || {
        let _ = reply.send(f());
    }))
    .ok()?;
    answer.recv().ok()
}
