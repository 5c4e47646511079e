//! `mini-docker kill`: a signal (SIGKILL by default) to the container's first process.
use std::path::Path;

use clap::Args;
use nix::sys::signal::Signal;

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
            // Under the state lock: a monitor recording the exit waits for our `Running`.
            let _guard = c.lock_state()?;
            let mut state = c.live_state()?;
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
            })?;
            // A frozen process handles no signal, and on cgroup v1 not even SIGKILL ends
            // it. Docker thaws a paused container after the signal, so that it arrives
            // (moby daemon/kill.go, "kill signal will be sent once resume is finished").
            let paused = state.status == Status::Paused || super::pause::frozen_now(&state);
            if paused && thaws(&c.config.stop_signal, signal) {
                match super::pause::set_frozen(&c, false) {
                    Ok(()) => {
                        state.status = Status::Running;
                        c.save_state(&state)?;
                    }
                    // On cgroup v2 SIGKILL ends even a frozen process, and its monitor may
                    // have removed the cgroup already: the signal did its work, and the
                    // monitor records the exit once we let go of the lock.
                    Err(_) if !c.monitor_alive() || !super::pause::cgroup_exists(&state) => {}
                    // Docker only warns when the resume fails: the signal was sent.
                    Err(e) => crate::warn(&format!("cannot unpause container {}: {e}", c.id())),
                }
            }
            Ok(())
        })
    }))
}

/// Whether `kill -s signal` thaws a paused container, as docker decides it: always for
/// SIGKILL and for the container's stop signal; for any signal when the container has no
/// stop signal of its own. mini-docker records docker's default, SIGTERM, when none was
/// set, and takes SIGTERM however spelled for "none" (so an explicit `--stop-signal
/// SIGTERM` thaws for any signal, where docker would thaw only for SIGTERM and SIGKILL).
fn thaws(stop_signal: &str, signal: Signal) -> bool {
    let own = super::stop::parse_signal(stop_signal).unwrap_or(Signal::SIGTERM);
    signal == Signal::SIGKILL || own == Signal::SIGTERM || own == signal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_thaws_a_paused_container_as_docker_decides() {
        // No stop signal of its own: every signal thaws.
        assert!(thaws("SIGTERM", Signal::SIGHUP));
        assert!(thaws("SIGTERM", Signal::SIGKILL));
        assert!(thaws("15", Signal::SIGUSR1));
        // Its own stop signal: that one and SIGKILL, no other.
        assert!(thaws("SIGQUIT", Signal::SIGQUIT));
        assert!(thaws("3", Signal::SIGQUIT));
        assert!(thaws("SIGQUIT", Signal::SIGKILL));
        assert!(!thaws("SIGQUIT", Signal::SIGHUP));
    }
}
