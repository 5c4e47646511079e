//! `mini-docker logs`: the container's output from its json-file log, stdout to stdout and
//! stderr to stderr, as it was written; `-f` keeps following until the container stops.
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::container::Status;
use crate::{Error, containers};

/// `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container.
    pub container: String,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

fn show(line: &str, timestamps: bool) {
    let Ok(e) = serde_json::from_str::<Entry>(line) else {
        return;
    };
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log
    };
    if e.stream == "stderr" {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Prints the log.
pub fn main(root: &Path, args: &LogsArgs) -> Result<i32, Error> {
    let c = containers::find(root, &args.container)?;
    let path = c.log_path();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    while reader
        .read_line(&mut line)
        .map_err(|e| Error::io("read", &path, e))?
        > 0
    {
        if line.ends_with('\n') {
            lines.push(std::mem::take(&mut line));
        } else {
            break;
        }
    }
    let skip = match args.tail.as_str() {
        "all" => 0,
        n => lines.len().saturating_sub(
            n.parse::<usize>()
                .map_err(|_| Error::Usage(format!("invalid value for --tail: {n}")))?,
        ),
    };
    for l in &lines[skip..] {
        show(l, args.timestamps);
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read", &path, e))?;
        if n > 0 && line.ends_with('\n') {
            show(&line, args.timestamps);
            line.clear();
            continue;
        }
        if !matches!(
            c.live_state()?.status,
            Status::Running | Status::Paused | Status::Created
        ) {
            // One last look: the monitor writes the last lines before it records the end.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    show(&line, args.timestamps);
                    line.clear();
                }
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
