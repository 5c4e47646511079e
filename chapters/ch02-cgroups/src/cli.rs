//! The command line, exported so that mini-docker can flatten the same limit flags.
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{IoLimit, IoRate, Limits, Swap, parse_bytes, parse_device_rate};

/// Chapter 2: run a command under memory, CPU and process limits, and see what they do.
#[derive(Debug, Parser)]
#[command(name = "ch02-cgroups", version)]
pub struct Cli {
    /// Print every cgroup file written and every system call made.
    #[arg(long, global = true)]
    pub trace: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD in a new cgroup with the given limits, then report how it ended.
    Run(RunArgs),
    /// The classic demonstrations: an OOM kill, CPU throttling, a fork bomb stopped.
    Demo {
        /// Which one.
        which: DemoKind,
    },
    /// Which cgroup mode this host runs and where each controller lives.
    Info,
    /// The workloads the demos run (inside the limited cgroup).
    #[command(hide = true)]
    Hog(HogArgs),
}

/// The demonstrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoKind {
    /// Allocate past a memory limit: the OOM killer ends it.
    Memory,
    /// Spin under half a CPU: the scheduler throttles it.
    Cpu,
    /// Fork until the pids limit: fork fails with EAGAIN.
    Pids,
}

/// The limits, as `ch02-cgroups run` and `mini-docker run` spell them.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Memory limit (64m, 1g); swap is not allowed on top of it, so going past it means
    /// an OOM kill.
    #[arg(short, long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// CPU limit in CPUs (0.5 is half of one CPU's time).
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,
    /// Maximum number of processes (and threads).
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// CPUs it may run on (0, 0-1, 0,2).
    #[arg(long, value_name = "CPUS")]
    pub cpuset: Option<String>,
    /// Block I/O rates.
    #[command(flatten)]
    pub devices: DeviceRateArgs,
}

/// Block I/O rates per device, as `ch02-cgroups run` and `mini-docker run` spell them.
#[derive(Debug, Clone, Default, Args)]
pub struct DeviceRateArgs {
    /// Limit read rate (bytes per second) from a device (/dev/vda:1mb).
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device (/dev/vda:1mb).
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device (/dev/vda:100).
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device (/dev/vda:100).
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_iops: Vec<String>,
}

impl DeviceRateArgs {
    /// Every rate given, checked (the device must be a block device): the device's path
    /// as given, and the limit.
    pub fn rates(&self) -> Result<Vec<(String, IoLimit)>, String> {
        let mut out = Vec::new();
        for (specs, rate) in [
            (&self.device_read_bps, IoRate::ReadBps),
            (&self.device_write_bps, IoRate::WriteBps),
            (&self.device_read_iops, IoRate::ReadIops),
            (&self.device_write_iops, IoRate::WriteIops),
        ] {
            for spec in specs {
                let limit = parse_device_rate(spec, rate).map_err(|e| {
                    format!(
                        "invalid argument {spec:?} for \"--{}\" flag: {e}",
                        rate.flag()
                    )
                })?;
                let path = spec.rsplit_once(':').map_or("", |(p, _)| p);
                out.push((path.to_string(), limit));
            }
        }
        Ok(out)
    }
}

impl LimitArgs {
    /// The limits these flags ask for.
    pub fn limits(&self) -> Result<Limits, String> {
        if let Some(c) = self.cpus
            && !(c > 0.0 && c.is_finite())
        {
            return Err(format!("invalid --cpus {c}: must be a positive number"));
        }
        let io = self.devices.rates()?.into_iter().map(|(_, l)| l).collect();
        Ok(Limits {
            memory: self.memory,
            swap: Swap::None,
            cpus: self.cpus,
            pids: self.pids,
            cpuset: self.cpuset.clone(),
            io,
            devices: None,
            tuning: Default::default(),
        })
    }
}

/// `ch02-cgroups run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `ch02-cgroups hog`: the demos' workloads.
#[derive(Debug, Clone, Args)]
pub struct HogArgs {
    /// What to consume.
    pub what: HogKind,
    /// memory: how much to allocate at a time.
    #[arg(long, default_value = "4m", value_parser = parse_bytes)]
    pub step: u64,
    /// memory: stop (and fail) after this much; the limit should end it long before.
    #[arg(long, default_value = "512m", value_parser = parse_bytes)]
    pub max_memory: u64,
    /// cpu: how long to spin, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// fork: stop (and fail) after this many children.
    #[arg(long, default_value_t = 1000)]
    pub max_forks: u32,
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HogKind {
    /// Allocate and touch memory.
    Memory,
    /// Spin.
    Cpu,
    /// Fork children that sleep.
    Fork,
}
