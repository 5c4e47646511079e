//! The rows of the table, in groups that share their setup:
//!
//! * `start`: starting a container (`run`, `floor`, `breakdown`, `bridge`) and `exec`;
//! * `many`: a hundred containers (`many`), and the memory of a container's monitor
//!   (`monitor-rss`);
//! * `images`: pulling an image (`pull`), extracting its layer (`extract`), the memory of
//!   a pull (`pull-rss`);
//! * `build`: building a Dockerfile, cold (`build`) and cached (`rebuild`).

use std::path::Path;

use super::Plan;
use super::cmd::{Cmd, Timed, alternate};
use super::peers::Peers;
use super::report::{Line, Measure, Report, Unit};
use super::stats::Summary;

mod build;
mod images;
mod many;
mod start;

/// Every row, in the table's order (what `--filter` matches).
pub const ROWS: &[&str] = &[
    "run",
    "floor",
    "breakdown",
    "bridge",
    "exec",
    "many",
    "monitor-rss",
    "pull",
    "extract",
    "pull-rss",
    "build",
    "rebuild",
];

/// The rows `--quick` skips unless `--filter` names them: minutes each.
pub const SLOW_ROWS: &[&str] = &["many", "build", "rebuild"];

/// A function measuring a group of rows.
type Group = fn(&mut Ctx<'_>) -> anyhow::Result<()>;

/// The groups: the rows each measures, and how.
const GROUPS: &[(&[&str], Group)] = &[
    (&["run", "floor", "breakdown"], start::run),
    (&["bridge"], start::bridge),
    (&["exec"], start::exec),
    (&["many"], many::many),
    (&["monitor-rss"], many::monitor_rss),
    (&["pull", "extract", "pull-rss"], images::rows),
    (&["build", "rebuild"], build::rows),
];

/// What a row works with.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The peers (set up on demand).
    pub peers: &'a mut Peers,
    /// How many runs, which rows.
    pub plan: &'a Plan,
    /// Where the lines go.
    pub report: &'a mut Report,
}

/// Runs every selected group; a group that fails is reported and the next one runs.
pub fn run_all(ctx: &mut Ctx<'_>) {
    for (rows, group) in GROUPS {
        let wanted: Vec<&str> = rows.iter().copied().filter(|r| ctx.plan.wants(r)).collect();
        if wanted.is_empty() {
            continue;
        }
        if super::interrupt::interrupted() {
            ctx.report.fail(&wanted.join(", "), "not run: interrupted");
            continue;
        }
        eprintln!("==> {}", wanted.join(", "));
        if let Err(e) = group(ctx) {
            ctx.report.fail(&wanted.join(", "), format!("{e:#}"));
        }
    }
}

/// A command to time, and the label the table gives it.
#[derive(Debug)]
pub struct Entry<'a> {
    /// "crun run (docker's seccomp)".
    pub label: String,
    /// The command and its untimed preparation.
    pub timed: Timed<'a>,
}

impl<'a> Entry<'a> {
    /// `cmd`, labelled.
    pub fn new(label: &str, cmd: Cmd) -> Entry<'a> {
        Entry {
            label: label.into(),
            timed: Timed::plain(cmd),
        }
    }

    /// `cmd`, labelled, with `prepare` before each run.
    pub fn prepared(
        label: &str,
        cmd: Cmd,
        prepare: impl FnMut() -> anyhow::Result<()> + 'a,
    ) -> Entry<'a> {
        Entry {
            label: label.into(),
            timed: Timed {
                cmd,
                prepare: Some(Box::new(prepare)),
            },
        }
    }
}

impl Ctx<'_> {
    /// Times `entries` alternately (see `cmd::alternate`), and returns what each measured
    /// (or its error), in their order.
    pub fn time(
        &self,
        what: &str,
        entries: Vec<Entry<'_>>,
        warmup: usize,
        runs: usize,
    ) -> anyhow::Result<Vec<Result<Measure, String>>> {
        let (labels, mut timed): (Vec<String>, Vec<Timed<'_>>) =
            entries.into_iter().map(|e| (e.label, e.timed)).unzip();
        let results = alternate(what, &mut timed, warmup, runs)?;
        Ok(labels
            .into_iter()
            .zip(&timed)
            .zip(results)
            .map(|((label, t), r)| r.map(|summary| self.measure(&label, &t.cmd, summary, Unit::Ms)))
            .collect())
    }

    /// A measure of `cmd`, its command line shown with `$W` for the work directory.
    pub fn measure(&self, label: &str, cmd: &Cmd, summary: Summary, unit: Unit) -> Measure {
        Measure {
            label: label.into(),
            command: self.shown(&cmd.to_string()),
            summary,
            unit,
        }
    }

    /// `text` with the work directory written `$W`.
    pub fn shown(&self, text: &str) -> String {
        let dir = self.peers.work.dir.to_string_lossy();
        text.replace(dir.as_ref(), "$W")
    }

    /// Adds a line comparing `ours` with `peer` to the table, or reports whichever side
    /// failed (mini-docker's failure once per row, not once per peer).
    pub fn line(
        &mut self,
        row: &str,
        ours: &Result<Measure, String>,
        peer: &Result<Measure, String>,
        target: Option<f64>,
    ) {
        match (ours, peer) {
            (Ok(o), Ok(p)) => self.report.lines.push(Line {
                row: row.into(),
                ours: o.clone(),
                peer: p.clone(),
                target,
            }),
            (Err(e), _) => {
                let already = self.report.failures.iter().any(|(r, f)| r == row && f == e);
                if !already {
                    self.report.fail(row, e);
                }
            }
            (Ok(_), Err(e)) => self.report.fail(row, e),
        }
    }

    /// `setup`'s peer, or the error reported for `row` and `None`: the row goes on with
    /// the other peers.
    pub fn peer<T>(&mut self, row: &str, what: &str, setup: anyhow::Result<T>) -> Option<T> {
        match setup {
            Ok(t) => Some(t),
            Err(e) => {
                self.report.fail(row, format!("{what}: {e:#}"));
                None
            }
        }
    }
}

/// Commands run when dropped: a row's containers are removed however the row ends (an
/// error, a signal), not only when it ends well.
#[derive(Debug, Default)]
pub struct Cleanup(Vec<Cmd>);

impl Cleanup {
    /// Adds a command, run after those added before it.
    pub fn push(&mut self, cmd: Cmd) {
        self.0.push(cmd);
    }
}

impl Cleanup {
    /// Forgets the commands: what they would have removed is gone already.
    pub fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            c.quietly();
        }
    }
}

/// Removes `path` (a directory or a file) if it is there: an empty store before a pull.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
