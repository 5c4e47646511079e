//! `cargo xtask bench`: mini-docker against its peers, on this machine, in one run.
//!
//! The steps, in order (each module says more):
//!
//! 1. root, signals (`interrupt`), the cgroup layout (`host`; crun's thread on a hybrid
//!    host, `nocgroup2`), the leftovers of a killed run (`peers::sweep_stale`), the peers
//!    installed with apt-get if missing (`host::install_missing`);
//! 2. mini-docker and chapter 5 built in release mode (`cargo build --release`, in the
//!    target directory cargo uses for us: `CARGO_TARGET_DIR` is honoured);
//! 3. the work directory and the busybox image in every store (`peers`), each peer set up
//!    when a row first needs it;
//! 4. the rows (`rows`), each group's commands timed alternately (`cmd::alternate`),
//!    summed up as medians and spreads (`stats`);
//! 5. the teardown (dropping `Peers`), then a check that nothing was left behind;
//! 6. the report (`report`): on the terminal, and in BENCHMARKS.md with `--write`.
//!
//! A row that fails is reported and the next one runs; the exit status is then non-zero.
//! A target missed is not a failure of the benchmark: the table says MISS.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

mod cmd;
mod host;
mod interrupt;
mod nocgroup2;
mod peers;
mod report;
mod rows;
mod stats;
mod timings;

use host::{Layout, Snapshot};
use peers::{Binaries, Peers};
use report::{Header, Report};

/// `cargo xtask bench`'s arguments.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Rows (--filter matches a substring of these):
  run          mini-docker run --rm --network none busybox true, against crun run (with docker's
               seccomp profile, target <= 1.0), podman run (<= 0.1) and docker run (<= 0.1)
  floor        unshare of the same namespaces running true: the kernel's floor under a run
  breakdown    the mean of each step of `mini-docker run --timings`
  bridge       run on the default bridge against --network none (<= 2.0)
  exec         mini-docker exec C true against crun exec (<= 1.0) and docker exec
  many         100 containers: run -d each, ps -a, rm -f all, against podman and docker (<= 0.2)
  monitor-rss  memory of mini-docker's monitor against conmon and containerd-shim (<= 1.0)
  pull         pull of a 100 MB image into an empty store against skopeo copy (<= 0.7)
  extract      chapter 5's extraction of its layer against tar -xzf (<= 0.5)
  pull-rss     peak memory of a pull, 100 MB layer against 10 MB (flat: <= 1.5)
  build        a 5-step Dockerfile, --no-cache, against buildah bud and docker build (<= 0.5)
  rebuild      the same, all cached (<= 0.2)

Runs as root; installs the peers with apt-get when missing; everything it starts lives in one
directory under /tmp and is removed at the end (Ctrl-C included).")]
pub struct BenchArgs {
    /// Only the rows whose id contains this text (see the list below).
    #[arg(long, value_name = "ROW-SUBSTRING")]
    pub filter: Option<String>,
    /// Timed runs of each command [default: 30 for the rows in milliseconds, 5 for the
    /// heavy ones (pull, extract, pull-rss, build, rebuild); with --quick 5 and 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// A rough run: fewer runs, and the slow rows (many, build, rebuild) only if --filter
    /// names them.
    #[arg(long)]
    pub quick: bool,
    /// Also write the results to BENCHMARKS.md at the workspace's root.
    #[arg(long)]
    pub write: bool,
    /// Keep the work directory (its daemons stopped, its mounts undone) to look at it.
    #[arg(long)]
    pub keep_peers: bool,
}

/// Which rows, and how many runs.
#[derive(Debug, Clone)]
pub struct Plan {
    filter: Option<String>,
    quick: bool,
    /// Timed runs of the millisecond rows.
    pub fast_runs: usize,
    /// Their untimed warm-up runs (the page cache, the first cgroup, dockerd's caches).
    pub warmup: usize,
    /// Timed runs of the heavy rows (seconds each).
    pub heavy_runs: usize,
    /// Their warm-up runs.
    pub heavy_warmup: usize,
    /// Passes of the `many` row.
    pub many_passes: usize,
}

impl Plan {
    /// From the arguments.
    pub fn new(args: &BenchArgs) -> Plan {
        let given = args.runs.map(|n| n as usize);
        let (fast, heavy) = if args.quick { (5, 2) } else { (30, 5) };
        Plan {
            filter: args.filter.clone(),
            quick: args.quick,
            fast_runs: given.unwrap_or(fast),
            warmup: if args.quick { 1 } else { 3 },
            heavy_runs: given.unwrap_or(heavy),
            heavy_warmup: 1,
            many_passes: given.unwrap_or(if args.quick { 1 } else { 2 }).min(2),
        }
    }

    /// Whether `row` is to be measured.
    pub fn wants(&self, row: &str) -> bool {
        match &self.filter {
            Some(f) => row.contains(f.as_str()),
            None => !(self.quick && rows::SLOW_ROWS.contains(&row)),
        }
    }

    /// The header's lines on how it was measured.
    fn method(&self) -> Vec<String> {
        vec![
            format!(
                "Runs: {} timed after {} warm-up(s) for the rows in ms; {} after {} for pull, \
                 extract, pull-rss, build and rebuild (and monitor-rss containers per tool); \
                 many: {} pass(es).",
                self.fast_runs, self.warmup, self.heavy_runs, self.heavy_warmup, self.many_passes
            ),
            "A row's commands run alternately (A B C A B C ...), their output to /dev/null; \
             wall time from spawn to exit."
                .into(),
            "Values: median (p25–p75: the middle half of the runs); ratio = mini-docker / peer."
                .into(),
        ]
    }
}

/// `cargo xtask bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    host::require_root()?;
    let plan = Plan::new(args);
    if !rows::ROWS.iter().any(|r| plan.wants(r)) {
        bail!(
            "no row matches --filter {:?} (rows: {})",
            args.filter.as_deref().unwrap_or(""),
            rows::ROWS.join(", ")
        );
    }
    // First, before any other thread: the signals (see interrupt.rs).
    interrupt::watch()?;
    let layout = Layout::of_host()?;
    if let Layout::Hybrid { cgroup2 } = &layout
        && let Err(e) = nocgroup2::start(cgroup2)
    {
        // crun's rows will fail and say so; the others need no such thing
        eprintln!("warning: {e:#}");
    }
    peers::sweep_stale()?;
    host::install_missing()?;
    let bins = build()?;

    let mut report = Report {
        header: header(&layout, &plan),
        ..Report::default()
    };
    let before = Snapshot::take();
    let work_dir: PathBuf;
    {
        let mut peers = Peers::setup(&bins, &layout, args.keep_peers)?;
        work_dir = peers.work.dir.clone();
        let mut ctx = rows::Ctx {
            peers: &mut peers,
            plan: &plan,
            report: &mut report,
        };
        rows::run_all(&mut ctx);
        if let Some(driver) = peers.docker_driver() {
            report
                .notes
                .push(format!("dockerd's storage driver: {driver}."));
        }
        if let (Layout::Hybrid { cgroup2 }, true) = (peers.layout(), peers.crun_used()) {
            report.notes.push(format!(
                "crun ran in a mount namespace without {} (crun 1.8 refuses hybrid \
                 cgroups), started and timed from that namespace.",
                cgroup2.display()
            ));
        }
    } // the teardown

    // Nothing must be left: our processes and mounts by the work directory's name; the
    // kernel's shared objects (cgroups, links, tables) by what appeared since the start.
    host::remove_empty_parents(&before);
    let mut left: Vec<String> = host::processes_with(&work_dir.to_string_lossy())
        .into_iter()
        .map(|(pid, c)| format!("process {pid}: {c}"))
        .collect();
    left.extend(
        host::mounts_under(&work_dir)
            .into_iter()
            .map(|m| format!("mount {}", m.display())),
    );
    let shared = Snapshot::take().new_since(&before);
    for l in &left {
        report.fail("cleanup", format!("left behind: {l}"));
    }
    for l in shared {
        report.notes.push(format!(
            "appeared during the run and still there (the machine is shared: maybe not \
             ours): {l}"
        ));
    }

    println!("\n{}", report.text());
    if args.write {
        let path = peers::repo_root().join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, with_kept_analysis(&report.markdown(), &old))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("written: {}", path.display());
    }
    Ok(if interrupt::interrupted() {
        ExitCode::from(130)
    } else if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The line from which BENCHMARKS.md is written by hand (why a target is missed, step by
/// step): `--write` replaces what comes before it and keeps it and what follows.
const KEPT: &str =
    "<!-- kept by cargo xtask bench --write: the analysis below is written by hand -->";

/// `generated`, followed by `old`'s hand-written part (from [`KEPT`] on), if it has one.
fn with_kept_analysis(generated: &str, old: &str) -> String {
    match old.find(KEPT) {
        Some(at) => format!("{}\n{}", generated.trim_end(), &old[at..]),
        None => generated.to_string(),
    }
}

/// `cargo build --release -p mini-docker -p ch05-image-pull`, with the cargo that runs us
/// (and so its target directory, `CARGO_TARGET_DIR` if set); the binaries' paths are read
/// from cargo's own messages rather than guessed.
fn build() -> anyhow::Result<Binaries> {
    eprintln!("==> cargo build --release -p mini-docker -p ch05-image-pull");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(peers::repo_root())
        .args([
            "build",
            "--release",
            "-p",
            "mini-docker",
            "-p",
            "ch05-image-pull",
        ])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build --release failed: {}", out.status);
    }
    let executable = |name: &str| -> anyhow::Result<PathBuf> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .with_context(|| format!("cargo built no {name} binary"))
    };
    Ok(Binaries {
        mini_docker: executable("mini-docker")?,
        ch05: executable("ch05-image-pull")?,
    })
}

/// The header: when, where, what.
fn header(layout: &Layout, plan: &Plan) -> Header {
    let repo = peers::repo_root();
    let git = |args: &[&str]| {
        cmd::Cmd::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .quietly()
    };
    let mut revision = git(&["rev-parse", "--short", "HEAD"])
        .map(|r| format!("git {}", r.trim()))
        .unwrap_or_else(|| "unknown revision".into());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.trim().is_empty())
    {
        revision.push_str(" with uncommitted changes");
    }
    let words: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if a.contains(char::is_whitespace) || a.is_empty() {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect();
    Header {
        date: jiff::ZonedDateTime::now()
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        machine: host::Machine::describe(layout).line(),
        versions: peers::versions()
            .into_iter()
            .map(|(t, v)| (t.to_string(), v))
            .collect(),
        revision,
        command: format!("cargo xtask {}", words.join(" ")),
        method: plan.method(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_keeps_the_hand_written_analysis() {
        let old = format!("# old table\n\n{KEPT}\n## Why\nbecause\n");
        assert_eq!(
            with_kept_analysis("# new table\n", &old),
            format!("# new table\n{KEPT}\n## Why\nbecause\n")
        );
        assert_eq!(with_kept_analysis("# new\n", "# old\n"), "# new\n");
    }

    fn args(line: &[&str]) -> BenchArgs {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("bench").chain(line.iter().copied()),
        )
        .unwrap();
        cli.bench
    }

    #[test]
    fn the_default_plan_measures_every_row() {
        let plan = Plan::new(&args(&[]));
        assert!(rows::ROWS.iter().all(|r| plan.wants(r)));
        assert_eq!(
            (plan.fast_runs, plan.heavy_runs, plan.many_passes),
            (30, 5, 2)
        );
    }

    #[test]
    fn quick_skips_the_slow_rows_unless_filtered_in() {
        let plan = Plan::new(&args(&["--quick"]));
        assert!(plan.wants("run") && !plan.wants("many") && !plan.wants("rebuild"));
        assert_eq!(
            (plan.fast_runs, plan.heavy_runs, plan.many_passes),
            (5, 2, 1)
        );
        let plan = Plan::new(&args(&["--quick", "--filter", "build"]));
        assert!(plan.wants("build") && plan.wants("rebuild") && !plan.wants("run"));
    }

    #[test]
    fn runs_applies_to_every_row() {
        let plan = Plan::new(&args(&["--runs", "3", "--filter", "pull"]));
        assert_eq!(
            (plan.fast_runs, plan.heavy_runs, plan.many_passes),
            (3, 3, 2)
        );
        assert!(plan.wants("pull") && plan.wants("pull-rss") && !plan.wants("extract"));
    }
}
