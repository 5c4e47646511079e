//! `mini-docker top`: the container's processes, as the host's `ps -f` shows them (the
//! pids are the host's), found through the container's cgroup.
use std::path::Path;

use clap::Args;

use crate::container::Status;
use crate::{Error, containers};

/// `top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// The container.
    pub container: String,
}

/// Prints the processes.
pub fn main(root: &Path, args: &TopArgs) -> Result<i32, Error> {
    let c = containers::find(root, &args.container)?;
    let state = c.live_state()?;
    if !matches!(state.status, Status::Running | Status::Paused) {
        return Err(Error::Conflict(format!(
            "Container {} is not running",
            c.id()
        )));
    }
    let Some(dir) = state.cgroup.first() else {
        return Err(Error::Conflict(format!(
            "Container {} has no cgroup",
            c.id()
        )));
    };
    let procs = dir.path.join("cgroup.procs");
    let pids: Vec<String> = std::fs::read_to_string(&procs)
        .map_err(|e| Error::io("read", &procs, e))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let out = std::process::Command::new("ps")
        .args([
            "-o",
            "uid,pid,ppid,c,stime,tty,time,cmd",
            "-p",
            &pids.join(","),
        ])
        .output()
        .map_err(|e| Error::io("run", Path::new("ps"), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let mut row: Vec<String> = cols.iter().take(7).map(|s| s.to_string()).collect();
            row.push(cols.get(7..).map(|c| c.join(" ")).unwrap_or_default());
            row
        })
        .collect();
    print!(
        "{}",
        crate::format::table(
            &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            &rows
        )
    );
    Ok(0)
}
