//! # Chapter 2: cgroups
//!
//! Namespaces decide what a container can *see*; control groups decide how much it can
//! *use*. A cgroup is a directory in a special filesystem: files in it set limits
//! (`memory.max`, `cpu.max`, `pids.max`) and report usage (`memory.peak`, `cpu.stat`,
//! `pids.events`), and a process joins it by having its pid written to `cgroup.procs`.
//!
//! [`run`] is the chapter's story: create a cgroup, set its limits, start a command in it,
//! wait, read what the kernel counted, clean up. [`layout`] finds where each controller
//! lives (v1, v2, hybrid); [`cgroup`] is the cgroup itself, reused by mini-docker;
//! [`demo`] has the three classic demonstrations.
use std::fmt;
use std::time::{Duration, Instant};

use ch01_namespaces::process::{self, ChildOptions, Exit, Running, SignalBlock};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub mod cgroup;
pub mod cli;
pub mod demo;
pub mod devices;
pub mod layout;
pub mod sys;

pub use cgroup::{Cgroup, CgroupHandle, DeviceRule, IoLimit, IoRate, Limits, Stats, Swap, Tuning};
pub use layout::{Controller, Layout, Mode};

use sys::{Sys, SysError};

/// What can go wrong in this chapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or cgroup file failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// Starting or waiting for the command failed.
    #[error(transparent)]
    Process(#[from] ch01_namespaces::Error),
    /// The host has no hierarchy with this controller.
    #[error("the {0} controller is not available on this host (see `ch02-cgroups info`)")]
    ControllerMissing(&'static str),
    /// A cgroup of that name exists already.
    #[error("cgroup {} exists already", .0.display())]
    Exists(std::path::PathBuf),
    /// Processes did not leave a cgroup in time.
    #[error("{}: processes are still in the cgroup after 5 s", .0.display())]
    Busy(std::path::PathBuf),
    /// Reading the mount table failed.
    #[error("read /proc/self/mountinfo")]
    Mountinfo(#[source] std::io::Error),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit code to leave with: the child's verdict, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// A command running in a cgroup of its own; [`Limited::wait`] ends the story.
#[derive(Debug)]
pub struct Limited<'s> {
    sys: &'s dyn Sys,
    cgroup: Cgroup<'s, dyn Sys + 's>,
    running: Running,
    started: Instant,
    command: String,
    limits: Limits,
    _signals: SignalBlock,
}

/// `ch02-cgroups run`: runs `argv` under `limits` and reports how it went.
pub fn run(
    sys: &dyn Sys,
    layout: &Layout,
    limits: &Limits,
    argv: &[String],
) -> Result<Report, Error> {
    start(sys, layout, limits, argv)?.wait()
}

/// The first half of [`run`]: the command is running in its cgroup when this returns.
pub fn start<'s>(
    sys: &'s dyn Sys,
    layout: &Layout,
    limits: &Limits,
    argv: &[String],
) -> Result<Limited<'s>, Error> {
    // Signals wait until we are ready for them, so a Ctrl-C during set-up cannot kill us
    // between creating the cgroup and removing it.
    let signals = SignalBlock::new(sys)?;
    // 1. A cgroup of our own, in every hierarchy that has a controller we use.
    let name = format!("ch02-{}", std::process::id());
    let cgroup = Cgroup::create(sys, layout, &name, &limits.controllers())?;
    // 2. Its limits, before anything runs in it.
    cgroup.apply(limits)?;
    // 3. Become the reaper of whatever the command leaves behind (orphans come to us, not
    //    to the host's init), so that nothing outlives the report.
    sys.set_child_subreaper()?;
    // 4. The child, cloned and waiting.
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let created = process::create(
        sys,
        CloneFlags::empty(),
        ChildOptions::default(),
        &mut || Err(process::exec(sys, argv, &env)),
    )?;
    // 5. Into the cgroup before it execs: every page and every cycle it uses is counted.
    cgroup.add_process(created.pid())?;
    let running = created.start(sys)?;
    Ok(Limited {
        sys,
        cgroup,
        running,
        started: Instant::now(),
        command: argv.join(" "),
        limits: limits.clone(),
        _signals: signals,
    })
}

impl<'s> Limited<'s> {
    /// The cgroup the command runs in.
    pub fn cgroup(&self) -> &Cgroup<'s, dyn Sys + 's> {
        &self.cgroup
    }

    /// The command's host pid.
    pub fn pid(&self) -> Pid {
        self.running.pid()
    }

    /// The second half of [`run`]: waits for the command, kills whatever it left in the
    /// cgroup, reads the statistics, removes the cgroup.
    pub fn wait(self) -> Result<Report, Error> {
        self.wait_then(|_| Ok(()))
    }

    /// [`Limited::wait`], calling `after_exit` once the command has ended but before what it
    /// left in the cgroup is killed (a demo looks at the cgroup then).
    pub fn wait_then(
        self,
        after_exit: impl FnOnce(&Cgroup<'s, dyn Sys + 's>) -> Result<(), Error>,
    ) -> Result<Report, Error> {
        let Limited {
            sys,
            cgroup,
            running,
            started,
            command,
            limits,
            _signals,
        } = self;
        // 6. Wait, forwarding signals sent to us.
        let exit = running.wait(sys)?;
        let wall = started.elapsed();
        after_exit(&cgroup)?;
        // 7. Its children may still run: the cgroup knows them all.
        cgroup.kill_all()?;
        reap_orphans(sys);
        // 8. What the kernel counted, then the cgroup goes.
        let stats = cgroup.stats()?;
        cgroup.remove()?;
        Ok(Report {
            command,
            exit,
            limits,
            stats,
            wall,
        })
    }
}

/// Reaps the zombies of orphans that came to us as their subreaper.
fn reap_orphans(sys: &dyn Sys) {
    use nix::sys::wait::WaitStatus;
    while let Ok(status) = sys.waitpid(Pid::from_raw(-1), true) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// How a limited command ended and what it used.
#[derive(Debug, Clone)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// How it ended.
    pub exit: Exit,
    /// The limits it ran under.
    pub limits: Limits,
    /// What the controllers counted.
    pub stats: Stats,
    /// Wall-clock time it ran.
    pub wall: Duration,
}

impl Report {
    /// The command's exit code (128 + N for a signal).
    pub fn code(&self) -> i32 {
        self.exit.code()
    }

    /// True when the OOM killer ended it.
    pub fn oom_killed(&self) -> bool {
        self.exit == Exit::Signal(Signal::SIGKILL) && self.stats.oom_kills.unwrap_or(0) > 0
    }

    /// CPUs' worth of time used on average: CPU time over wall time.
    pub fn cpu_share(&self) -> Option<f64> {
        let used = self.stats.cpu_usage?.as_secs_f64();
        let wall = self.wall.as_secs_f64();
        (wall > 0.0).then(|| used / wall)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let how = if self.oom_killed() {
            let limit = self.limits.memory.map(format_bytes).unwrap_or_default();
            format!("was killed by the OOM killer (memory limit {limit})")
        } else {
            match self.exit {
                Exit::Code(c) => format!("exited with code {c}"),
                Exit::Signal(sig) => format!("was killed by {sig}"),
            }
        };
        writeln!(f, "ch02-cgroups: {:?} {how}", self.command)?;
        let limit = |l: Option<String>| l.map_or("no limit".to_string(), |l| format!("limit {l}"));
        let mut memory = format!(
            "  memory: peak {}, {}",
            s.memory_peak.map_or("unknown".into(), format_bytes),
            limit(self.limits.memory.map(format_bytes))
        );
        if let Some(n) = s.oom_kills.filter(|&n| n > 0) {
            memory.push_str(&format!(", {n} OOM kill{}", if n == 1 { "" } else { "s" }));
        }
        writeln!(f, "{memory}")?;
        if let Some(used) = s.cpu_usage {
            let mut cpu = format!(
                "  cpu:    {:.2} s of CPU time in {:.2} s",
                used.as_secs_f64(),
                self.wall.as_secs_f64()
            );
            // A share over a few milliseconds says nothing.
            if let Some(share) = self
                .cpu_share()
                .filter(|_| self.wall >= Duration::from_millis(500))
            {
                cpu.push_str(&format!(" = {share:.2} CPUs"));
            }
            cpu.push_str(&format!(
                ", {}",
                limit(self.limits.cpus.map(|c| format!("{c:.2} CPUs")))
            ));
            if let (Some(p), Some(t)) = (s.cpu_periods, s.cpu_throttled_periods)
                && self.limits.cpus.is_some()
            {
                cpu.push_str(&format!(", throttled in {t} of {p} periods"));
            }
            writeln!(f, "{cpu}")?;
        }
        let mut pids = format!(
            "  pids:   {}",
            limit(self.limits.pids.map(|p| p.to_string()))
        );
        if let Some(n) = s.pids_refused.filter(|&n| n > 0) {
            pids.push_str(&format!(
                ", {n} fork{} refused",
                if n == 1 { "" } else { "s" }
            ));
        }
        writeln!(f, "{pids}")?;
        // Block I/O only when limited: where nothing throttles it, cgroup v1 counts none.
        if !self.limits.io.is_empty() {
            let bytes = |b: Option<u64>| b.map_or("unknown".into(), format_bytes);
            let limits: Vec<String> = self
                .limits
                .io
                .iter()
                .map(|l| {
                    let value = match l.rate {
                        IoRate::ReadBps | IoRate::WriteBps => {
                            format!("{}/s", format_bytes(l.value))
                        }
                        IoRate::ReadIops | IoRate::WriteIops => format!("{}/s", l.value),
                    };
                    format!("{}:{} {} {value}", l.major, l.minor, l.rate.v2_key())
                })
                .collect();
            writeln!(
                f,
                "  io:     read {}, written {}, limit {}",
                bytes(s.io_read_bytes),
                bytes(s.io_write_bytes),
                limits.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Parses a size the way Docker does (`64m`, `1.5g`, `512k`, `100`, `64MiB`, `2GB`):
/// binary units, bytes when none is given.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (number, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!(
                "invalid size {text:?}: expected a number with an optional unit b, k, m or g (64m)"
            )
        })?;
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// Parses docker's `--device-write-bps /dev/vda:1mb` (`--device-*-iops` take a plain
/// number): the device is looked up for its numbers, and must be a block device.
pub fn parse_device_rate(spec: &str, rate: IoRate) -> Result<IoLimit, String> {
    let (path, value) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("bad format {spec:?}: expected DEVICE:RATE (/dev/vda:1mb)"))?;
    let value = match rate {
        IoRate::ReadBps | IoRate::WriteBps => parse_bytes(value)?,
        IoRate::ReadIops | IoRate::WriteIops => value
            .parse()
            .map_err(|_| format!("invalid rate {value:?}: expected a number of operations"))?,
    };
    let (major, minor) = device_numbers(std::path::Path::new(path))?;
    Ok(IoLimit {
        major,
        minor,
        rate,
        value,
    })
}

/// The major and minor numbers of the block device at `path` (stat(2)'s `st_rdev`).
pub fn device_numbers(path: &std::path::Path) -> Result<(u64, u64), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Err(format!("{} is not a block device", path.display()));
    }
    let rdev = meta.rdev();
    Ok((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
}

/// Formats bytes for people: `64 MiB`, `31.8 MiB`, `512 KiB`, `100 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() < 0.05 || value.fract() > 0.95 {
        format!("{:.0} {}", value.round(), UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        for (text, bytes) in [
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64MiB", 64 << 20),
            ("64mb", 64 << 20),
            ("1.5g", 3 << 29),
            ("512k", 512 << 10),
            ("100", 100),
            ("100b", 100),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        assert!(
            parse_bytes("lots")
                .unwrap_err()
                .contains("invalid size \"lots\"")
        );
        assert!(parse_bytes("-1m").is_err());
    }

    #[test]
    fn bytes_format_for_people() {
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(33_344_512), "31.8 MiB");
        assert_eq!(format_bytes(100), "100 B");
    }
}
