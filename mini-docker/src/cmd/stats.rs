//! `mini-docker stats`: what the kernel counts for each container's cgroup (chapter 2):
//! CPU time (sampled twice to give a percentage), memory, processes, block I/O (what
//! cgroup v1 counts only on devices with a rate limit, v2 always); network bytes from the
//! container's own network namespace.
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;

use ch04_unionfs_layers::sys::Kernel;

use crate::format::{binary_size, short_size, table};
use crate::record::{Container, Status, cgroup_dirs};
use crate::{Error, containers};

/// `stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template (`table`, `table TEMPLATE`, `json`).
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// The containers (default: all running ones).
    pub containers: Vec<String>,
}

fn host_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Received and sent bytes of the container's interfaces (loopback aside).
fn net_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter(|l| !l.trim_start().starts_with("lo:"))
        .fold((0, 0), |(rx, tx), l| {
            let f: Vec<&str> = l
                .split(':')
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            (
                rx + f.first().and_then(|v| v.parse().ok()).unwrap_or(0),
                tx + f.get(8).and_then(|v| v.parse().ok()).unwrap_or(0),
            )
        })
}

struct Sample {
    cpu: Duration,
    at: Instant,
}

fn sample(sys: &Kernel, c: &Container) -> Option<(Sample, ch02_cgroups::Stats)> {
    let state = c.live_state().ok()?;
    let cg = ch02_cgroups::CgroupHandle::open(
        sys as &dyn ch01_namespaces::Sys,
        cgroup_dirs(&state.cgroup),
    );
    let stats = cg.stats().ok()?;
    Some((
        Sample {
            cpu: stats.cpu_usage.unwrap_or_default(),
            at: Instant::now(),
        },
        stats,
    ))
}

/// Prints one table (or refreshes it every second without `--no-stream`).
pub fn main(sys: &Kernel, root: &Path, args: &StatsArgs) -> Result<i32, Error> {
    let chosen = choose_containers(root, args)?;
    let total = host_memory();
    let format = crate::format::Format::parse(args.format.as_deref())?;
    loop {
        let rows = measure(sys, &chosen, total)?;
        let out = render(&format, &chosen, rows, args)?;
        if args.no_stream {
            print!("{out}");
            return Ok(0);
        }
        // Clear the screen and draw again, as docker stats does on a terminal.
        print!("\x1b[2J\x1b[H{out}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

/// The containers named, or without names the running (and paused) ones, every one with
/// `-a`, as docker's default.
fn choose_containers(root: &Path, args: &StatsArgs) -> Result<Vec<Container>, Error> {
    Ok(if args.containers.is_empty() {
        containers::list(root)?
            .into_iter()
            .filter(|c| {
                args.all
                    || c.live_state()
                        .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused))
            })
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| containers::find(root, n))
            .collect::<Result<_, _>>()?
    })
}

/// One table: every container's counters sampled, half a second apart, twice: CPU time
/// is a counter, and a percentage needs two readings of it.
fn measure(sys: &Kernel, chosen: &[Container], total: u64) -> Result<Vec<Vec<String>>, Error> {
    let first: Vec<Option<(Sample, ch02_cgroups::Stats)>> =
        chosen.iter().map(|c| sample(sys, c)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut rows = Vec::new();
    for (c, before) in chosen.iter().zip(first) {
        let state = c.live_state()?;
        let after = sample(sys, c);
        rows.push(match (before, after) {
            (Some((b, _)), Some((a, s))) => usage_row(c, state.pid, &b, &a, &s, total),
            _ => idle_row(c),
        });
    }
    Ok(rows)
}

/// docker's table, or `--format` over docker's fields (`.Container` is what was asked
/// for: the name given, else the short ID).
fn render(
    format: &crate::format::Format,
    chosen: &[Container],
    mut rows: Vec<Vec<String>>,
    args: &StatsArgs,
) -> Result<String, Error> {
    if args.no_trunc {
        for (row, c) in rows.iter_mut().zip(chosen) {
            row[0] = c.id().to_string();
        }
    }
    let keys = [
        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
    ];
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut m: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .zip(row)
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect();
            let asked = args
                .containers
                .get(i)
                .cloned()
                .unwrap_or_else(|| row[0].clone());
            m.insert("Container".into(), serde_json::json!(asked));
            serde_json::Value::Object(m)
        })
        .collect();
    let headers = [
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ];
    if let Some(out) = format.render(&objects, &headers)? {
        return Ok(out);
    }
    Ok(table(
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ],
        &rows,
    ))
}

/// A container's row from two samples: CPU time over wall time, memory against its limit
/// (the host's memory when it has none, as docker shows it), and its network and block I/O.
fn usage_row(
    c: &Container,
    pid: i32,
    before: &Sample,
    after: &Sample,
    s: &ch02_cgroups::Stats,
    total: u64,
) -> Vec<String> {
    let dt = after.at.duration_since(before.at).as_secs_f64();
    let cpu = (after.cpu.saturating_sub(before.cpu)).as_secs_f64() / dt * 100.0;
    let used = s.memory_current.unwrap_or(0);
    let limit = s
        .memory_limit
        .filter(|&l| l > 0 && l < total)
        .unwrap_or(total);
    let (rx, tx) = net_io(pid);
    vec![
        c.short_id().to_string(),
        c.config.name.clone(),
        format!("{cpu:.2}%"),
        format!("{} / {}", binary_size(used), binary_size(limit)),
        format!("{:.2}%", used as f64 / limit.max(1) as f64 * 100.0),
        format!("{} / {}", short_size(rx), short_size(tx)),
        match (s.io_read_bytes, s.io_write_bytes) {
            (Some(r), Some(w)) => format!("{} / {}", short_size(r), short_size(w)),
            _ => "--".into(),
        },
        s.pids_current.map_or("--".into(), |p| p.to_string()),
    ]
}

/// A container with nothing to sample (stopped, or its cgroup gone between samples): zeros,
/// as docker shows a stopped container.
fn idle_row(c: &Container) -> Vec<String> {
    vec![
        c.short_id().to_string(),
        c.config.name.clone(),
        "0.00%".into(),
        "0B / 0B".into(),
        "0.00%".into(),
        "0B / 0B".into(),
        "--".into(),
        "0".into(),
    ]
}
