//! `run --timings`: where a container start spends its time, step by step.
//!
//! A foreground `run` happens in three processes: the CLI (image lookup, the record), the
//! monitor it clones (cgroup, namespaces, network, state, teardown) and the container's own
//! child, cloned by the monitor (mounts, pivot_root, confinement) until its execve. Each
//! step appends one line, `NAME START END` in CLOCK_MONOTONIC nanoseconds (the same clock
//! in every process), to one memfd that all three share: the clones inherit it, and it is
//! close-on-exec, so the container's program never sees it. A single write(2) to an
//! `O_APPEND` file is atomic, so lines from different processes never interleave.
//! When the run ends, the CLI reads the lines back and prints each step's duration, in
//! the order they happened, with what no step covers shown as `other`.
//!
//! Without `--timings` nothing is created and a span costs one atomic load.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use nix::time::{ClockId, clock_gettime};

static SINK: OnceLock<File> = OnceLock::new();

/// Now, on the clock every process of a run shares, in nanoseconds.
pub fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Turns timings on for this process and whatever it clones from now on.
pub fn enable() -> std::io::Result<()> {
    let fd = nix::sys::memfd::memfd_create(
        "mini-docker-timings",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_APPEND),
    )
    .map_err(std::io::Error::from)?;
    let _ = SINK.set(File::from(fd));
    Ok(())
}

/// The descriptor a cloned monitor must keep open (it closes every other one), if on.
pub fn raw_fd() -> Option<i32> {
    use std::os::fd::AsRawFd;
    SINK.get().map(|f| f.as_raw_fd())
}

/// Records that step `name` ran from `start` (see [`now_ns`]) until now.
pub fn record(name: &str, start: u64) {
    if let Some(mut f) = SINK.get() {
        let line = format!("{name} {start} {}\n", now_ns());
        // One write: atomic under O_APPEND. A lost line only loses a timing.
        let _ = f.write_all(line.as_bytes());
    }
}

/// A step that ends when the span is dropped: `let _t = timings::span("cgroup");`.
#[derive(Debug)]
pub struct Span {
    name: &'static str,
    start: u64,
}

/// Starts timing the step `name` (nothing when timings are off).
pub fn span(name: &'static str) -> Option<Span> {
    SINK.get().map(|_| Span {
        name,
        start: now_ns(),
    })
}

impl Drop for Span {
    fn drop(&mut self) {
        record(self.name, self.start);
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its name.
    pub name: String,
    /// When it began and ended, in nanoseconds of CLOCK_MONOTONIC.
    pub start: u64,
    /// See `start`.
    pub end: u64,
}

/// Reads back every step recorded so far, by any process of the run.
pub fn steps() -> Vec<Step> {
    let Some(mut f) = SINK.get() else {
        return Vec::new();
    };
    let mut text = String::new();
    if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    parse(&text)
}

/// The `NAME START END` lines, in the order the steps began.
pub fn parse(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let (name, start, end) = (w.next()?, w.next()?, w.next()?);
            Some(Step {
                name: name.to_string(),
                start: start.parse().ok()?,
                end: end.parse().ok()?,
            })
        })
        .collect();
    steps.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    steps
}

/// The table `run --timings` prints: each step's milliseconds, in order, from `begin` to
/// `end`. A step that encloses others (the monitor's `start`, which waits while the child
/// sets itself up and execs) is shown as what is left of it once they are taken out,
/// under its own name; time that no step covers is `other`.
pub fn report(steps: &[Step], begin: u64, end: u64) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut rows: Vec<(String, u64)> = Vec::new();
    let mut covered = 0;
    for (i, s) in steps.iter().enumerate() {
        // Inner steps: those that began and ended within this one.
        let inner: u64 = steps
            .iter()
            .enumerate()
            .filter(|(j, o)| *j != i && o.start >= s.start && o.end <= s.end)
            .map(|(_, o)| o.end - o.start)
            .sum();
        let outer = steps
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && s.start >= o.start && s.end <= o.end);
        let own = (s.end - s.start).saturating_sub(inner);
        if !outer {
            covered += s.end - s.start;
        }
        match rows.iter_mut().find(|(n, _)| *n == s.name) {
            Some(row) => row.1 += own,
            None => rows.push((s.name.clone(), own)),
        }
    }
    let total = end.saturating_sub(begin);
    rows.push(("other".into(), total.saturating_sub(covered)));
    let mut out = String::from("timings (ms):\n");
    for (name, ns) in rows {
        out.push_str(&format!("  {name:<16} {:>8.3}\n", ms(ns)));
    }
    out.push_str(&format!("  {:<16} {:>8.3}\n", "total", ms(total)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_steps_are_taken_out_of_the_one_around_them() {
        // The monitor's exec (1..4 ms) waits while the child mounts its overlay (1.5..2.5);
        // what is left of it is the exec itself. 4..5 ms is no step's.
        let steps =
            parse("exec 1000000 4000000\noverlay-mount 1500000 2500000\nlookup 0 1000000\n");
        assert_eq!(steps[0].name, "lookup");
        assert_eq!(steps[1].name, "exec");
        assert_eq!(
            report(&steps, 0, 5_000_000),
            "timings (ms):\n  lookup              1.000\n  exec                2.000\n  overlay-mount       1.000\n  other               1.000\n  total               5.000\n"
        );
    }

    #[test]
    fn a_malformed_line_is_skipped() {
        assert_eq!(parse("x 1\ny 2 3\n").len(), 1);
    }
}
