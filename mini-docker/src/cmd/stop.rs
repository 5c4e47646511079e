//! `mini-docker stop` (and `restart`): the stop signal (the image's STOPSIGNAL, SIGTERM by
//! default) to the container's first process, SIGKILL if it is still there after the
//! timeout. A PID 1 without a handler ignores SIGTERM: that is the ten seconds everyone
//! has waited for on `docker stop`.
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::Args;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::record::{Container, Status};
use crate::{Error, containers};

/// `stop` and `restart`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: its --stop-timeout, or 10).
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// Signal to send to the container (default: its stop signal).
    #[arg(short, long)]
    pub signal: Option<String>,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<Signal, Error> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Usage(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| Error::Usage(format!("Invalid signal: {s}")))
}

/// Waits until the container's monitor has recorded the end, up to `timeout`.
pub fn wait_stopped(c: &Container, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if !c.monitor_alive() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    !c.monitor_alive()
}

/// Stops one container: signal, wait, SIGKILL. A container whose monitor died is cleaned up.
pub fn stop(c: &Container, signal: Option<Signal>, timeout: Duration) -> Result<(), Error> {
    let state = c.live_state()?;
    if !matches!(state.status, Status::Running | Status::Paused) {
        if !state.cgroup.is_empty() {
            // The monitor died: whatever it left goes now, and the record says so.
            containers::release_cgroup(&state.cgroup)?;
            let _guard = c.lock_state()?;
            let mut fixed = state.clone();
            fixed.cgroup.clear();
            c.save_state(&fixed)?;
        }
        return Ok(());
    }
    let pid = Pid::from_raw(state.pid);
    let signal = match signal {
        Some(s) => s,
        None => parse_signal(&c.config.stop_signal).unwrap_or(Signal::SIGTERM),
    };
    if state.status == Status::Paused || super::pause::frozen_now(&state) {
        // A frozen process cannot handle its signal: thaw it first.
        super::pause::set_frozen(c, false)?;
    }
    let _ = nix::sys::signal::kill(pid, signal);
    if !wait_stopped(c, timeout) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        wait_stopped(c, Duration::from_secs(10));
    }
    Ok(())
}

/// `stop` / `restart`.
pub fn main(root: &Path, args: &StopArgs, restart: bool) -> Result<i32, Error> {
    let signal = args.signal.as_deref().map(parse_signal).transpose()?;
    Ok(super::each_named(&args.containers, |name| {
        let c = containers::find(root, name)?;
        let wait = args.time.or(c.config.stop_timeout).unwrap_or(10);
        stop(&c, signal, Duration::from_secs(wait))?;
        if restart {
            super::start::start_one(root, name)?;
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_or_number() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
