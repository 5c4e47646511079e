//! `mini-docker logs`: the container's output from its json-file log, stdout to stdout and
//! stderr to stderr, as it was written; `-f` keeps following until the container stops.
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::record::Status;
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
    /// Show extra details provided to logs: the attributes `--log-opt labels=…` adds to
    /// each line (none here: the line is printed after an empty set and its space).
    #[arg(long)]
    pub details: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes).
    #[arg(long)]
    pub until: Option<String>,
    /// The container.
    pub container: String,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// What to show: the entries in a time window, with or without their timestamps.
#[derive(Debug, Clone, Copy, Default)]
struct Filter {
    timestamps: bool,
    /// `--details`: each line after its attributes (none here) and a space.
    details: bool,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
}

/// A point in time as docker's `--since`/`--until` take it: RFC 3339, Unix seconds, or a
/// Go duration before now (`10m`, `1h30m`, `2.5s`).
fn point(flag: &str, text: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, Error> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return jiff::Timestamp::from_nanosecond((secs * 1e9) as i128)
            .map_err(|e| Error::Usage(format!("invalid value for --{flag}: {e}")));
    }
    let nanos = go_duration(text).ok_or_else(|| {
        Error::Usage(format!(
            "invalid value for --{flag}: {text:?} is not a timestamp (2013-01-02T13:23:37Z), Unix seconds or a duration (42m)"
        ))
    })?;
    now.checked_sub(jiff::SignedDuration::from_nanos(nanos as i64))
        .map_err(|e| Error::Usage(format!("invalid value for --{flag}: {e}")))
}

/// Go's time.ParseDuration: numbers with units h, m, s, ms, us (or µs), ns.
fn go_duration(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    Some(total)
}

fn show(line: &str, filter: Filter) {
    let timestamps = filter.timestamps;
    let Ok(e) = serde_json::from_str::<Entry>(line) else {
        return;
    };
    if filter.since.is_some() || filter.until.is_some() {
        let Ok(at) = e.time.parse::<jiff::Timestamp>() else {
            return;
        };
        if filter.since.is_some_and(|s| at < s) || filter.until.is_some_and(|u| at >= u) {
            return;
        }
    }
    // docker's order: the time, the details (the log's attributes, `k=v,…`, empty here),
    // the line.
    let details = if filter.details { " " } else { "" };
    let text = if timestamps {
        format!("{} {details}{}", e.time, e.log)
    } else {
        format!("{details}{}", e.log)
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
    let now = jiff::Timestamp::now();
    let filter = Filter {
        timestamps: args.timestamps,
        details: args.details,
        since: args
            .since
            .as_deref()
            .map(|t| point("since", t, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| point("until", t, now))
            .transpose()?,
    };
    let c = containers::find(root, &args.container)?;
    let path = c.log_path();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    // Bounded memory whatever the log's size: `--tail N` starts N complete lines before
    // the end, found by reading backwards; then every line streams through one buffer.
    let mut file = file;
    let start = match args.tail.as_str() {
        "all" => 0,
        n => {
            let n = n
                .parse::<usize>()
                .map_err(|_| Error::Usage(format!("invalid value for --tail: {n}")))?;
            tail_offset(&mut file, n).map_err(|e| Error::io("read", &path, e))?
        }
    };
    file.seek(SeekFrom::Start(start))
        .map_err(|e| Error::io("seek", &path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    while reader
        .read_line(&mut line)
        .map_err(|e| Error::io("read", &path, e))?
        > 0
    {
        if !line.ends_with('\n') {
            // A line still being written: it is finished (and shown) by -f, or not at all.
            break;
        }
        show(&line, filter);
        line.clear();
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read", &path, e))?;
        if n > 0 && line.ends_with('\n') {
            show(&line, filter);
            line.clear();
            continue;
        }
        // Past --until, nothing more can show: stop, as docker does.
        if filter.until.is_some_and(|u| jiff::Timestamp::now() >= u) {
            return Ok(0);
        }
        if !matches!(
            c.live_state()?.status,
            Status::Running | Status::Paused | Status::Created
        ) {
            // One last look: the monitor writes the last lines before it records the end.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    show(&line, filter);
                    line.clear();
                }
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the last `n` complete lines of `file` start (0 if it has fewer): after the
/// `n + 1`-th newline from the end, counted backwards a block at a time. A last line with
/// no newline yet is not complete and not counted.
fn tail_offset(file: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut end = file.metadata()?.len();
    let mut seen = 0;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b == b'\n' {
                seen += 1;
                if seen == n + 1 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_starts_n_complete_lines_before_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let offset = |text: &str, n| {
            std::fs::write(&path, text).unwrap();
            tail_offset(&mut std::fs::File::open(&path).unwrap(), n).unwrap()
        };
        assert_eq!(offset("a\nb\nc\n", 2), 2);
        assert_eq!(offset("a\nb\nc\n", 0), 6);
        assert_eq!(offset("a\nb\nc\n", 9), 0);
        // The unfinished last line is not one of them.
        assert_eq!(offset("a\nb\nc", 1), 2);
        assert_eq!(offset("", 3), 0);
        // Across blocks: 200 000 lines of 10 bytes.
        let big: String = (0..200_000).map(|i| format!("{i:09}\n")).collect();
        assert_eq!(offset(&big, 3), 10 * 199_997);
    }

    #[test]
    fn points_in_time_as_docker_reads_them() {
        let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let p = |t: &str| point("since", t, now).unwrap().to_string();
        assert_eq!(p("2026-11-29T11:00:00Z"), "2026-11-29T11:00:00Z");
        assert_eq!(p("10m"), "2026-11-29T11:50:00Z");
        assert_eq!(p("1h30m"), "2026-11-29T10:30:00Z");
        assert_eq!(p("1.5s"), "2026-11-29T11:59:58.5Z");
        assert_eq!(p("1795960800"), "2026-11-29T14:00:00Z");
        let e = point("until", "soon", now).unwrap_err().to_string();
        assert!(e.starts_with("invalid value for --until: \"soon\""), "{e}");
    }
}
