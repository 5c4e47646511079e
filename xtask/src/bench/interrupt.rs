//! Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the benchmark *cleanly*: the command being
//! timed dies (it is in our process group, so the terminal's SIGINT reaches it too), no
//! further command is started, and the guards tear everything down as the stack unwinds
//! normally. A default SIGINT would kill us on the spot, leaving dockerd, the registry and
//! containers behind.
//!
//! Without a signal handler (no `unsafe`, no extra crate): the signals are *blocked* in
//! every thread, and one thread waits for them with `sigwait` and raises a flag that the
//! loops check between commands. Children do not inherit the blocked mask: std's `Command`
//! resets it in the child before the `exec`.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use nix::sys::signal::{SigSet, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Starts watching for the signals. Must be called before any other thread is started:
/// threads inherit the blocked mask from the one that creates them, and a thread that does
/// not block the signals would get the default action (the end of the process).
pub fn watch() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("blocking SIGINT/SIGTERM/SIGHUP")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                if INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\n{signal}: still cleaning up, please wait");
                } else {
                    eprintln!("\n{signal}: stopping, then cleaning up");
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Whether a signal came.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error if a signal came: the loops call it before each command.
pub fn check() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}
