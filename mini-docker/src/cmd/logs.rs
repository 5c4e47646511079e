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
    // The rotated files first, oldest first (`logfile`).
    let files = crate::logfile::files(&path);
    // Bounded memory whatever the log's size: `--tail N` starts N complete lines before
    // the end, found by reading backwards (through the rotated files if need be); then
    // every line streams through one buffer.
    let (first, start) = match args.tail.as_str() {
        "all" => (0, 0),
        n => {
            let n = n
                .parse::<usize>()
                .map_err(|_| Error::Usage(format!("invalid value for --tail: {n}")))?;
            tail_start(&files, n)?
        }
    };
    let mut line = String::new();
    let (older, current) = files.split_at(files.len() - 1);
    for (i, f) in older.iter().enumerate().skip(first) {
        // Rotated away meanwhile: its lines are gone.
        let Ok(mut file) = std::fs::File::open(f) else {
            continue;
        };
        if i == first {
            file.seek(SeekFrom::Start(start))
                .map_err(|e| Error::io("seek", f, e))?;
        }
        let mut reader = BufReader::new(file);
        while reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read", f, e))?
            > 0
        {
            show(&line, filter);
            line.clear();
        }
        line.clear();
    }
    let mut file = match std::fs::File::open(&current[0]) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    if first == older.len() {
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("seek", &path, e))?;
    }
    let mut reader = BufReader::new(file);
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
        // At the end of what we read: the monitor may have rotated it (a new file by the
        // log's name: read that from its start) or, with max-file=1, emptied it.
        if let Some(next) = rotated_away(&path, reader.get_ref()) {
            // What was written to the old file before it was renamed comes first.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    show(&line, filter);
                    line.clear();
                }
            }
            // Rotated more than once while we slept: the files between ours and the new
            // one, in order (all the rotated ones if ours was deleted as the oldest).
            for f in newer_rotated(&path, reader.get_ref(), &next) {
                let Ok(file) = std::fs::File::open(&f) else {
                    continue;
                };
                let mut between = BufReader::new(file);
                line.clear();
                while between.read_line(&mut line).unwrap_or(0) > 0 {
                    show(&line, filter);
                    line.clear();
                }
            }
            reader = BufReader::new(next);
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

/// The file now at `path` if it is not the one `reading` (rotated: renamed to `.1`), or
/// `reading` rewound if the log was emptied under us (max-file=1); None if neither.
fn rotated_away(path: &Path, reading: &std::fs::File) -> Option<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let ours = reading.metadata().ok()?;
    let now = std::fs::metadata(path).ok()?;
    if now.ino() != ours.ino() || now.dev() != ours.dev() {
        return std::fs::File::open(path).ok();
    }
    let mut again = reading.try_clone().ok()?;
    let at = again.stream_position().ok()?;
    if ours.len() < at {
        again.seek(SeekFrom::Start(0)).ok()?;
        return Some(again);
    }
    None
}

/// The rotated files newer than the one `reading` and older than `next` (the file the
/// caller reads after them), oldest first. `next` was opened by the log's name a moment
/// ago and may itself have been rotated since (to `.1`): it is not among them then, or it
/// would be read twice.
fn newer_rotated(
    path: &Path,
    reading: &std::fs::File,
    next: &std::fs::File,
) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(ours), Ok(upto)) = (reading.metadata(), next.metadata()) else {
        return Vec::new();
    };
    let same = |f: &std::path::PathBuf, m: &std::fs::Metadata| {
        std::fs::metadata(f).is_ok_and(|n| n.ino() == m.ino() && n.dev() == m.dev())
    };
    let mut files = crate::logfile::files(path);
    files.pop(); // the one being written now: `next` or newer
    let mut after = match files.iter().position(|f| same(f, &ours)) {
        Some(i) => files.split_off(i + 1),
        None => files,
    };
    if let Some(j) = after.iter().position(|f| same(f, &upto)) {
        after.truncate(j);
    }
    after
}

/// Where the last `n` complete lines of the log `files` (oldest first) start: the file's
/// index and the offset in it.
fn tail_start(files: &[std::path::PathBuf], n: usize) -> Result<(usize, u64), Error> {
    let mut need = n;
    for (i, f) in files.iter().enumerate().rev() {
        let mut file = match std::fs::File::open(f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("open", f, e)),
        };
        match tail_offset(&mut file, need).map_err(|e| Error::io("read", f, e))? {
            Tail::At(offset) => return Ok((i, offset)),
            Tail::Short(lines) => need -= lines,
        }
    }
    Ok((0, 0))
}

/// Where a file's last `n` lines start, or how many complete lines it has if fewer.
#[derive(Debug, PartialEq)]
enum Tail {
    At(u64),
    Short(usize),
}

/// Where the last `n` complete lines of `file` start: after the `n + 1`-th newline from
/// the end, counted backwards a block at a time. A last line with no newline yet is not
/// complete and not counted.
fn tail_offset(file: &mut std::fs::File, n: usize) -> std::io::Result<Tail> {
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
                    return Ok(Tail::At(start + i as u64 + 1));
                }
            }
        }
        end = start;
    }
    // Every newline ends a complete line; the file starts the n-th from the end only if
    // it has exactly n.
    if seen == n {
        return Ok(Tail::At(0));
    }
    Ok(Tail::Short(seen))
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
        assert_eq!(offset("a\nb\nc\n", 2), Tail::At(2));
        assert_eq!(offset("a\nb\nc\n", 0), Tail::At(6));
        assert_eq!(offset("a\nb\nc\n", 3), Tail::At(0));
        assert_eq!(offset("a\nb\nc\n", 9), Tail::Short(3));
        // The unfinished last line is not one of them.
        assert_eq!(offset("a\nb\nc", 1), Tail::At(2));
        assert_eq!(offset("", 3), Tail::Short(0));
        // Across blocks: 200 000 lines of 10 bytes.
        let big: String = (0..200_000).map(|i| format!("{i:09}\n")).collect();
        assert_eq!(offset(&big, 3), Tail::At(10 * 199_997));
    }

    #[test]
    fn the_tail_reaches_back_into_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = ["log.2", "log.1", "log"]
            .iter()
            .map(|n| dir.path().join(n))
            .collect();
        std::fs::write(&files[0], "a\nb\n").unwrap();
        std::fs::write(&files[1], "c\nd\n").unwrap();
        std::fs::write(&files[2], "e\n").unwrap();
        assert_eq!(tail_start(&files, 1).unwrap(), (2, 0));
        assert_eq!(tail_start(&files, 2).unwrap(), (1, 2));
        assert_eq!(tail_start(&files, 3).unwrap(), (1, 0));
        assert_eq!(tail_start(&files, 4).unwrap(), (0, 2));
        assert_eq!(tail_start(&files, 99).unwrap(), (0, 0));
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
