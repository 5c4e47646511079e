//! `mini-docker top`: the container's processes, as the host's `ps -f` shows them (the
//! pids are the host's), found through the container's cgroup; `top C aux` (any ps(1)
//! options) picks other columns.
use std::path::Path;

use clap::Args;

use crate::record::Status;
use crate::{Error, containers};

/// `top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// The container.
    pub container: String,
    /// Options for ps(1), instead of docker's default `-ef` columns (`aux`, `-o pid,comm`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_options: Vec<String>,
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
    if state.cgroup.is_empty() {
        return Err(Error::Conflict(format!(
            "Container {} has no cgroup",
            c.id()
        )));
    }
    let sys = ch04_unionfs_layers::sys::Kernel::new(false);
    let pids: Vec<String> = ch02_cgroups::CgroupHandle::open(
        &sys as &dyn ch01_namespaces::Sys,
        crate::record::cgroup_dirs(&state.cgroup),
    )
    .procs()?
    .iter()
    .map(|p| p.to_string())
    .collect();
    if !args.ps_options.is_empty() {
        return with_options(&args.ps_options, &pids);
    }
    let out = std::process::Command::new("ps")
        .args([
            "-o",
            // `ps -ef`'s columns, as docker's top runs it: the user's name where the host
            // has one.
            "user,pid,ppid,c,stime,tty,time,cmd",
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
        crate::format::table_min(
            &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            &rows,
            20
        )
    );
    Ok(0)
}

/// `top CONTAINER OPTIONS`, as docker does it: the host's `ps OPTIONS`, then only the rows
/// whose PID is one of the container's (its cgroup's).
fn with_options(options: &[String], pids: &[String]) -> Result<i32, Error> {
    // Options that only format (`-o pid,comm`) select the processes of our own terminal:
    // `-p` with the container's pids selects them instead. Options that select (`aux`,
    // `-e`, `-u root`) are left to do it, and the rows are filtered below.
    let mut cmd = std::process::Command::new("ps");
    cmd.args(options);
    if !selects(options) {
        cmd.args(["-p", &pids.join(",")]);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::io("run", Path::new("ps"), e))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "ps {}: {}",
            options.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let Some(pid_col) = header.iter().position(|h| *h == "PID") else {
        return Err(Error::Usage("Couldn't find PID field in ps output".into()));
    };
    let last = header.len().saturating_sub(1);
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| {
            cols.get(pid_col)
                .is_some_and(|p| pids.iter().any(|x| x == p))
        })
        .map(|cols| {
            // The last column (the command) may hold spaces.
            let mut row: Vec<String> = cols.iter().take(last).map(|s| s.to_string()).collect();
            row.push(cols.get(last..).map(|c| c.join(" ")).unwrap_or_default());
            row
        })
        .collect();
    print!("{}", crate::format::table_min(&header, &rows, 20));
    Ok(0)
}

/// Whether ps(1) options select processes (rather than only format or sort them): a UNIX
/// option among `-e -A -a -d -N -u -U -g -G -C -t -s -p -q` (letters before an `o`/`O`,
/// whose format may be glued on: `-opid,comm`), a long one (`--pid`, `--user`...) or a BSD
/// one among `a x r T U t p`. The argument of `-o`, `-O`, `o`, `O`, `--format`, `--sort`,
/// `k`, `-k` is a format or a sort key, not options.
fn selects(options: &[String]) -> bool {
    let mut skip = false;
    for o in options {
        if std::mem::take(&mut skip) {
            continue;
        }
        if matches!(
            o.as_str(),
            "-o" | "-O" | "o" | "O" | "--format" | "--sort" | "k" | "-k"
        ) {
            skip = true;
            continue;
        }
        let hit = if let Some(long) = o.strip_prefix("--") {
            [
                "pid",
                "ppid",
                "user",
                "User",
                "group",
                "Group",
                "tty",
                "sid",
                "quick-pid",
                "deselect",
            ]
            .iter()
            .any(|l| long.starts_with(l))
        } else if let Some(unix) = o.strip_prefix('-') {
            unix.chars()
                .take_while(|c| !"oOk".contains(*c))
                .any(|c| "eAadNuUgGCtspq".contains(c))
        } else {
            o.chars()
                .take_while(|c| !"oOk".contains(*c))
                .any(|c| "axrTUtp".contains(c))
        };
        if hit {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn formatting_options_do_not_select_but_selecting_ones_do() {
        let s = |o: &str| selects(&o.split(' ').map(str::to_string).collect::<Vec<_>>());
        assert!(!s("-o pid,comm"));
        assert!(!s("-o pid,args -f"));
        assert!(!s("o pid,user"));
        assert!(s("aux"));
        assert!(s("-ef"));
        assert!(s("-u root -o pid"));
        assert!(s("--pid 1"));
        assert!(!s("-o pid,comm --sort pid"));
        assert!(!s("-opid,comm"));
        assert!(!s("-o pid k -rss"));
        assert!(s("-eopid,comm"));
    }
}
