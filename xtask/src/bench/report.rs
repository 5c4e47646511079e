//! What the benchmark found, as a table on the terminal and as Markdown (BENCHMARKS.md).
//!
//! Each line of the table compares mini-docker with one peer on one row: both medians with
//! their spread (p25–p75: the middle half of the runs), their ratio (mini-docker / peer,
//! the number the issue's targets are written in) and whether it meets the target.

use std::fmt::Write as _;

use super::stats::{Summary, ratio};
use super::timings::StepMean;

/// What the samples measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Wall time, in milliseconds.
    Ms,
    /// Memory, in KiB.
    KiB,
}

/// One side of a comparison: a command and its samples.
#[derive(Debug, Clone)]
pub struct Measure {
    /// What the table calls it ("crun run (docker's seccomp)").
    pub label: String,
    /// The command line, the work directory written `$W`.
    pub command: String,
    /// Its samples, summed up.
    pub summary: Summary,
    /// Their unit.
    pub unit: Unit,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Line {
    /// The row's id (`run`, `exec`, ...), as `--filter` matches it.
    pub row: String,
    /// mini-docker's side.
    pub ours: Measure,
    /// The peer's side.
    pub peer: Measure,
    /// The largest ratio that meets the target; `None` for a line shown for information.
    pub target: Option<f64>,
}

impl Line {
    /// mini-docker's median over the peer's.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.ours.summary.median, self.peer.summary.median)
    }

    /// Whether the target is met (`None`: no target).
    pub fn met(&self) -> Option<bool> {
        let target = self.target?;
        Some(self.ratio().is_some_and(|r| r <= target))
    }
}

/// The averaged `run --timings` steps, or why there are none.
#[derive(Debug, Clone, Default)]
pub enum Breakdown {
    /// The row did not run.
    #[default]
    NotRun,
    /// This mini-docker has no `--timings`.
    Unavailable(String),
    /// The mean of each step over `runs` runs.
    Steps {
        /// How many runs.
        runs: usize,
        /// The steps.
        steps: Vec<StepMean>,
    },
}

/// The header's facts.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// When (local time, with its offset).
    pub date: String,
    /// The machine, one line.
    pub machine: String,
    /// Tool: version, one each.
    pub versions: Vec<(String, String)>,
    /// mini-docker's git revision.
    pub revision: String,
    /// The exact command.
    pub command: String,
    /// How many runs, and what the spread is.
    pub method: Vec<String>,
}

/// Everything to print.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The header.
    pub header: Header,
    /// The table.
    pub lines: Vec<Line>,
    /// The breakdown of a run.
    pub breakdown: Breakdown,
    /// Rows (or peers of a row) that failed, with their error.
    pub failures: Vec<(String, String)>,
    /// Remarks on the setup (dockerd's storage driver, what podman's rm was given...).
    pub notes: Vec<String>,
}

impl Report {
    /// Records that `row` (or one of its peers) failed, and says so now.
    pub fn fail(&mut self, row: &str, error: impl std::fmt::Display) {
        let error = error.to_string();
        eprintln!("!!! {row}: {error}");
        self.failures.push((row.to_string(), error));
    }

    /// The terminal's version.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let h = &self.header;
        let _ = writeln!(out, "mini-docker benchmark, {}", h.date);
        let _ = writeln!(out, "machine:  {}", h.machine);
        let _ = writeln!(out, "revision: {}", h.revision);
        for (tool, v) in &h.versions {
            let _ = writeln!(out, "  {tool:<11} {v}");
        }
        let _ = writeln!(out, "command:  {}", h.command);
        for m in &h.method {
            let _ = writeln!(out, "  {m}");
        }
        let _ = writeln!(out);
        let head = [
            "row",
            "mini-docker (p25–p75)",
            "peer",
            "peer median (p25–p75)",
            "ratio",
            "target",
            "met",
        ];
        let rows: Vec<[String; 7]> = self.lines.iter().map(cells).collect();
        let mut widths = head.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - c.chars().count();
                // numbers right-aligned, words left-aligned
                if matches!(i, 1 | 3 | 4) {
                    let _ = write!(s, "{}{c}  ", " ".repeat(pad));
                } else {
                    let _ = write!(s, "{c}{}  ", " ".repeat(pad));
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&head.map(String::from)));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r));
        }
        if self.lines.is_empty() {
            let _ = writeln!(out, "(no row measured)");
        }
        let _ = writeln!(out);
        if let Some(floor) = self.floor_text() {
            let _ = writeln!(out, "{floor}");
        }
        match &self.breakdown {
            Breakdown::NotRun => {}
            Breakdown::Unavailable(why) => {
                let _ = writeln!(out, "breakdown: not available ({why})");
            }
            Breakdown::Steps { runs, steps } => {
                let _ = writeln!(
                    out,
                    "breakdown of `mini-docker run --rm --network none busybox true` (mean of {runs} runs of `run --timings`):"
                );
                let _ = writeln!(out, "  ({BREAKDOWN_CLOCKS})");
                let _ = writeln!(out, "  {:<16} {:>9}  {:>6}", "step", "mean ms", "share");
                for s in steps {
                    let _ = writeln!(
                        out,
                        "  {:<16} {:>9.2}  {:>5.1}%",
                        s.name,
                        s.mean_ms,
                        s.share * 100.0
                    );
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "commands (median, p25–p75, runs; $W is the work directory under /tmp):"
        );
        for (row, m) in self.commands() {
            let _ = writeln!(out, "  {row:<11} {:>32}  {}", long(m), m.command);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for (row, e) in &self.failures {
            let _ = writeln!(out, "FAILED {row}: {e}");
        }
        out
    }

    /// The floor beside the run row: how much of a run is the kernel's bare minimum.
    fn floor_text(&self) -> Option<String> {
        let floor = self.lines.iter().find(|l| l.row == "floor")?;
        Some(format!(
            "floor: `{}` takes {} (the namespaces alone, no image, no cgroup); \
             mini-docker's run takes {}, {:.1}x that",
            floor.peer.label,
            value(floor.peer.summary.median, floor.peer.unit),
            value(floor.ours.summary.median, floor.ours.unit),
            floor.ratio().unwrap_or(f64::NAN)
        ))
    }

    /// Each distinct command once, with its row, in the table's order.
    fn commands(&self) -> Vec<(&str, &Measure)> {
        let mut seen: Vec<(&str, &Measure)> = Vec::new();
        for l in &self.lines {
            for m in [&l.ours, &l.peer] {
                if !seen
                    .iter()
                    .any(|(r, s)| *r == l.row && s.command == m.command)
                {
                    seen.push((&l.row, m));
                }
            }
        }
        seen
    }

    /// BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let h = &self.header;
        let _ = writeln!(out, "# Benchmarks: mini-docker and its peers\n");
        let _ = writeln!(
            out,
            "Measured on {} by `{}` (written by `--write`; `cargo xtask bench --help` says \
             what each row does).\n",
            h.date, h.command
        );
        let _ = writeln!(out, "* Machine: {}", h.machine);
        let _ = writeln!(out, "* mini-docker: {}", h.revision);
        let versions: Vec<String> = h
            .versions
            .iter()
            .map(|(t, v)| format!("{t}: {v}"))
            .collect();
        let _ = writeln!(out, "* Peers: {}", versions.join("; "));
        for m in &h.method {
            let _ = writeln!(out, "* {m}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| row | mini-docker | peer | peer median | ratio | target | met |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---|");
        for l in &self.lines {
            let c = cells(l);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c[0],
                c[1],
                c[2].replace('|', "\\|"),
                c[3],
                c[4],
                c[5],
                c[6]
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Medians, with the spread p25–p75 (the middle half of the runs) in brackets; \
             ratio = mini-docker / peer.\n"
        );
        if let Some(floor) = self.floor_text() {
            let _ = writeln!(out, "{floor}.\n");
        }
        match &self.breakdown {
            Breakdown::NotRun => {}
            Breakdown::Unavailable(why) => {
                let _ = writeln!(out, "Breakdown: not available ({why}).\n");
            }
            Breakdown::Steps { runs, steps } => {
                let _ = writeln!(
                    out,
                    "## Where a run goes\n\n`mini-docker run --timings --rm --network none busybox true`, \
                     the mean of {runs} runs. {BREAKDOWN_CLOCKS}\n"
                );
                let _ = writeln!(out, "| step | mean ms | share of total |");
                let _ = writeln!(out, "|---|---:|---:|");
                for s in steps {
                    let _ = writeln!(
                        out,
                        "| {} | {:.2} | {:.1}% |",
                        s.name,
                        s.mean_ms,
                        s.share * 100.0
                    );
                }
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(out, "## Commands\n");
        let _ = writeln!(out, "`$W` is the benchmark's work directory.\n");
        for (row, m) in self.commands() {
            let _ = writeln!(out, "* {row}: `{}`: {}", m.command, long(m));
        }
        if !self.notes.is_empty() || !self.failures.is_empty() {
            let _ = writeln!(out);
        }
        for n in &self.notes {
            let _ = writeln!(out, "* Note: {n}");
        }
        for (row, e) in &self.failures {
            let _ = writeln!(out, "* Failed: {row}: {e}");
        }
        let _ = writeln!(
            out,
            "\n## How to reproduce\n\nAs root, on Debian 12 or Ubuntu (the peers are installed \
             with apt-get if missing): `cargo xtask bench --write` (about five minutes on two cores; \
             `--quick` for a rough one, `--filter ROW` for one row)."
        );
        out
    }
}

/// Why the breakdown's total is not the run row's median.
const BREAKDOWN_CLOCKS: &str = "The steps are mini-docker's own clocks, `total` included; \
    the run row's median is the wall time from spawn to exit, which adds the process's own \
    start and exit, and a median is not a mean.";

/// A table line's cells.
fn cells(l: &Line) -> [String; 7] {
    [
        l.row.clone(),
        short(&l.ours),
        l.peer.label.clone(),
        short(&l.peer),
        l.ratio().map_or("–".into(), |r| {
            if r < 0.1 {
                format!("{r:.3}")
            } else {
                format!("{r:.2}")
            }
        }),
        l.target.map_or("–".into(), |t| format!("≤ {t:.1}")),
        match l.met() {
            Some(true) => "PASS".into(),
            Some(false) => "MISS".into(),
            None => "(info)".into(),
        },
    ]
}

/// `12.3 ms (11.9–13.0)`.
fn short(m: &Measure) -> String {
    let s = &m.summary;
    format!(
        "{} ({}–{})",
        value(s.median, m.unit),
        number(s.p25, m.unit),
        number(s.p75, m.unit)
    )
}

/// `12.3 ms (11.9–13.0, 30 runs)`.
fn long(m: &Measure) -> String {
    let s = &m.summary;
    format!(
        "{} ({}–{}, {} run{})",
        value(s.median, m.unit),
        number(s.p25, m.unit),
        number(s.p75, m.unit),
        s.n,
        if s.n == 1 { "" } else { "s" }
    )
}

/// A value with its unit: ms, or s from 1 s up; KiB, or MiB from 10 MiB up.
pub fn value(v: f64, unit: Unit) -> String {
    format!("{} {}", number(v, unit), unit_name(v, unit))
}

fn unit_name(v: f64, unit: Unit) -> &'static str {
    match unit {
        Unit::Ms if v >= 1_000.0 => "s",
        Unit::Ms => "ms",
        Unit::KiB if v >= 10_240.0 => "MiB",
        Unit::KiB => "KiB",
    }
}

/// The number alone, scaled as [`value`] does, with as many digits as it deserves.
pub fn number(v: f64, unit: Unit) -> String {
    let scaled = match unit_name(v, unit) {
        "s" => v / 1000.0,
        "MiB" => v / 1024.0,
        _ => v,
    };
    if unit == Unit::KiB && scaled == v {
        return format!("{v:.0}");
    }
    match scaled.abs() {
        a if a >= 100.0 => format!("{scaled:.0}"),
        a if a >= 10.0 => format!("{scaled:.1}"),
        _ => format!("{scaled:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(label: &str, samples: &[f64]) -> Measure {
        Measure {
            label: label.into(),
            command: format!("{label} true"),
            summary: Summary::of(samples).unwrap(),
            unit: Unit::Ms,
        }
    }

    #[test]
    fn a_line_meets_its_target_when_the_ratio_is_at_most_it() {
        let mut l = Line {
            row: "run".into(),
            ours: measure("mini-docker", &[10.0]),
            peer: measure("crun", &[10.0]),
            target: Some(1.0),
        };
        assert_eq!(l.met(), Some(true), "equal is met");
        l.ours = measure("mini-docker", &[10.5]);
        assert_eq!(l.met(), Some(false));
        l.target = None;
        assert_eq!(l.met(), None);
    }

    #[test]
    fn values_are_scaled_to_readable_units() {
        assert_eq!(value(4.567, Unit::Ms), "4.57 ms");
        assert_eq!(value(45.67, Unit::Ms), "45.7 ms");
        assert_eq!(value(456.7, Unit::Ms), "457 ms");
        assert_eq!(value(45_670.0, Unit::Ms), "45.7 s");
        assert_eq!(value(2_617.0, Unit::Ms), "2.62 s");
        assert_eq!(value(2048.0, Unit::KiB), "2048 KiB");
        assert_eq!(value(20_480.0, Unit::KiB), "20.0 MiB");
    }

    #[test]
    fn the_markdown_table_has_the_issue_s_columns() {
        let report = Report {
            lines: vec![Line {
                row: "run".into(),
                ours: measure("mini-docker", &[9.0, 10.0, 11.0]),
                peer: measure("podman", &[300.0]),
                target: Some(0.1),
            }],
            ..Report::default()
        };
        let md = report.markdown();
        assert!(md.contains("| row | mini-docker | peer | peer median | ratio | target | met |"));
        assert!(
            md.contains(
                "| run | 10.0 ms (9.50–10.5) | podman | 300 ms (300–300) | 0.033 | ≤ 0.1 | PASS |"
            ),
            "{md}"
        );
    }
}
