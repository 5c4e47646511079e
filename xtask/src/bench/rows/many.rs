//! A hundred containers, and the memory each one costs.
//!
//! * `many`: each tool starts 100 `sleep` containers one after the other (`run -d`), lists
//!   them (`ps -a`), and removes them all in one command (`rm -f`); each phase is timed as
//!   a whole. One tool at a time (300 containers at once would measure the machine's
//!   memory), the order reversed on the second pass so that neither tool always runs on
//!   the caches the other warmed.
//! * `monitor-rss`: what stays in memory beside each running container: mini-docker's
//!   monitor (`mini-docker __monitor ID`), podman's conmon, docker's
//!   containerd-shim-runc-v2. Their resident set (VmRSS) once the container runs.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::{Cleanup, Ctx};
use crate::bench::cmd::Cmd;
use crate::bench::host;
use crate::bench::interrupt;
use crate::bench::report::Unit;
use crate::bench::stats::Summary;

/// How many containers.
const MANY: usize = 100;

/// How many times `ps -a` is timed in each pass (one listing is a few ms: one sample
/// would be noise).
const PS_RUNS: usize = 3;

/// One tool's commands for the row.
#[derive(Debug, Clone)]
struct Tool {
    /// The table's name for it.
    name: &'static str,
    /// `run -d ... busybox sleep 1000`, printing the container's id.
    run: Cmd,
    /// `ps -a`.
    ps: Cmd,
    /// `rm -f`, the ids to follow.
    rm: Cmd,
}

/// Each phase's samples for one tool, in ms.
#[derive(Debug, Default, Clone)]
struct Phases {
    run: Vec<f64>,
    ps: Vec<f64>,
    rm: Vec<f64>,
}

/// `many`.
pub fn many(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let md = ctx.peers.md.clone();
    let mut tools = vec![Tool {
        name: "mini-docker",
        run: md
            .cmd()
            .args(["run", "-d", "--network", "none", "busybox", "sleep", "1000"]),
        ps: md.cmd().args(["ps", "-a"]),
        rm: md.cmd().args(["rm", "-f"]),
    }];
    let podman = ctx.peers.podman().cloned();
    if let Some(p) = ctx.peer("many", "podman", podman) {
        tools.push(Tool {
            name: "podman",
            run: p
                .cmd()
                .args(["run", "-d", "--network=none", &p.image, "sleep", "1000"]),
            ps: p.cmd().args(["ps", "-a"]),
            // `-t 0`: kill at once, as docker's and mini-docker's `rm -f` do (podman's
            // would first wait 10 s for `sleep` to heed a SIGTERM it ignores as pid 1).
            rm: p.cmd().args(["rm", "-f", "-t", "0"]),
        });
    }
    let docker = ctx.peers.docker().cloned();
    if let Some(d) = ctx.peer("many", "docker", docker) {
        tools.push(Tool {
            name: "docker",
            run: d
                .cmd()
                .args(["run", "-d", "--network=none", "busybox", "sleep", "1000"]),
            ps: d.cmd().args(["ps", "-a"]),
            rm: d.cmd().args(["rm", "-f"]),
        });
    }
    let passes = ctx.plan.many_passes;
    let mut phases = vec![Phases::default(); tools.len()];
    for pass in 0..passes {
        let mut order: Vec<usize> = (0..tools.len()).collect();
        if pass % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let tool = &tools[i];
            eprintln!(
                "    many: pass {}/{passes}, {} ({MANY} containers)",
                pass + 1,
                tool.name
            );
            match hundred(tool) {
                Ok(p) => {
                    phases[i].run.extend(p.run);
                    phases[i].ps.extend(p.ps);
                    phases[i].rm.extend(p.rm);
                }
                Err(e) => {
                    interrupt::check()?;
                    ctx.report.fail("many", format!("{}: {e:#}", tool.name));
                }
            }
        }
    }
    let phase_names = ["run", "ps", "rm"];
    for (k, phase) in phase_names.iter().enumerate() {
        let pick = |p: &Phases| match k {
            0 => p.run.clone(),
            1 => p.ps.clone(),
            _ => p.rm.clone(),
        };
        let describe = |tool: &Tool, samples: &[f64]| -> Result<_, String> {
            let summary = Summary::of(samples).ok_or("no samples")?;
            let cmd = match k {
                0 => tool.run.clone(),
                1 => tool.ps.clone(),
                _ => tool.rm.clone().arg("ID..."),
            };
            let label = match k {
                0 => format!("{} run -d ×{MANY} (total)", tool.name),
                1 => format!("{} ps -a ({MANY} containers)", tool.name),
                _ => format!("{} rm -f of {MANY} (one command)", tool.name),
            };
            Ok(ctx.measure(&label, &cmd, summary, Unit::Ms))
        };
        let ours = describe(&tools[0], &pick(&phases[0]));
        let peers: Vec<_> = tools
            .iter()
            .zip(&phases)
            .skip(1)
            .map(|(t, p)| describe(t, &pick(p)))
            .collect();
        for peer in &peers {
            ctx.line(&format!("many {phase}"), &ours, peer, Some(0.2));
        }
    }
    let passes_note = format!(
        "many: {passes} pass(es) per tool, one tool at a time (the order reversed on the second pass); \
         ps -a timed {PS_RUNS} times per pass"
    );
    ctx.report.notes.push(passes_note);
    Ok(())
}

/// One tool's hundred containers: run them, list them, remove them. The containers are
/// removed on the way out whatever happens.
fn hundred(tool: &Tool) -> anyhow::Result<Phases> {
    let mut ids: Vec<String> = Vec::with_capacity(MANY);
    let mut phases = Phases::default();
    let start = Instant::now();
    // Removes what was started if a run fails half-way (the ids so far, in one command).
    let result = (|| -> anyhow::Result<()> {
        for n in 0..MANY {
            interrupt::check()?;
            let id = tool
                .run
                .stdout()
                .with_context(|| format!("container {} of {MANY}", n + 1))?;
            let id = id.lines().last().unwrap_or_default().trim().to_string();
            if id.is_empty() {
                bail!("`run -d` printed no id");
            }
            ids.push(id);
        }
        Ok(())
    })();
    let run_time = start.elapsed();
    let mut cleanup = Cleanup::default();
    if !ids.is_empty() {
        cleanup.push(tool.rm.clone().args(&ids));
    }
    result?;
    phases.run.push(ms(run_time));
    for _ in 0..PS_RUNS {
        phases.ps.push(ms(tool.ps.time()?));
    }
    let rm = tool.rm.clone().args(&ids);
    phases.rm.push(ms(rm.time()?));
    cleanup.disarm(); // removed: nothing left to clean up
    Ok(phases)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `monitor-rss`: the resident memory of what each tool keeps beside a running container.
pub fn monitor_rss(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let md = ctx.peers.md.clone();
    let podman = ctx.peers.podman().cloned();
    let podman = ctx.peer("monitor-rss", "podman", podman);
    let docker = ctx.peers.docker().cloned();
    let docker = ctx.peer("monitor-rss", "docker", docker);
    let mut cleanup = Cleanup::default();
    // A few containers per tool, started in turn; each one's monitor measured.
    let count = ctx.plan.heavy_runs.clamp(1, 5);
    let (mut ours, mut conmon, mut shim) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors: Vec<(&str, String)> = Vec::new();
    let mut started = Vec::new();
    for n in 0..count {
        interrupt::check()?;
        let name = format!("mdk-bench-rss-{n}");
        cleanup.push(md.cmd().args(["rm", "-f", &name]));
        let id = md
            .cmd()
            .args(["run", "-d", "--network", "none", "--name", &name])
            .args(["busybox", "sleep", "1000"])
            .stdout()?;
        started.push(("mini-docker", id));
        if let Some(p) = &podman {
            cleanup.push(p.cmd().args(["rm", "-f", "-t", "0", &name]));
            match p
                .cmd()
                .args(["run", "-d", "--network=none", "--name", &name, &p.image])
                .args(["sleep", "1000"])
                .stdout()
            {
                Ok(id) => started.push(("podman", id)),
                Err(e) => errors.push(("podman", format!("{e:#}"))),
            }
        }
        if let Some(d) = &docker {
            cleanup.push(d.cmd().args(["rm", "-f", &name]));
            match d
                .cmd()
                .args(["run", "-d", "--network=none", "--name", &name, "busybox"])
                .args(["sleep", "1000"])
                .stdout()
            {
                Ok(id) => started.push(("docker", id)),
                Err(e) => errors.push(("docker", format!("{e:#}"))),
            }
        }
    }
    // Let them settle (a monitor frees what it needed to start the container).
    std::thread::sleep(Duration::from_secs(1));
    for (tool, id) in &started {
        let found = match *tool {
            "mini-docker" => monitor_of(id),
            "podman" => podman
                .as_ref()
                .ok_or_else(|| anyhow!("no podman"))
                .and_then(|p| conmon_of(&p.cmd(), id)),
            _ => shim_of(id),
        };
        match found.and_then(|pid| {
            host::status_field(pid, "VmRSS")
                .map(|kib| kib as f64)
                .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
        }) {
            Ok(kib) => match *tool {
                "mini-docker" => ours.push(kib),
                "podman" => conmon.push(kib),
                _ => shim.push(kib),
            },
            Err(e) => errors.push((tool, format!("{e:#}"))),
        }
    }
    drop(cleanup);
    for (tool, e) in errors {
        ctx.report.fail("monitor-rss", format!("{tool}: {e}"));
    }
    let ours_cmd = md.cmd().args(["__monitor", "ID"]);
    let ours = Summary::of(&ours)
        .map(|s| ctx.measure("mini-docker __monitor", &ours_cmd, s, Unit::KiB))
        .ok_or_else(|| "mini-docker: no monitor measured".to_string());
    if podman.is_some() {
        let peer = Summary::of(&conmon)
            .map(|s| ctx.measure("conmon (podman)", &Cmd::new("conmon"), s, Unit::KiB))
            .ok_or_else(|| "podman: no conmon measured".to_string());
        ctx.line("monitor-rss", &ours, &peer, Some(1.0));
    }
    if docker.is_some() {
        let peer = Summary::of(&shim)
            .map(|s| {
                let cmd = Cmd::new("containerd-shim-runc-v2");
                ctx.measure("containerd-shim-runc-v2 (docker)", &cmd, s, Unit::KiB)
            })
            .ok_or_else(|| "docker: no shim measured".to_string());
        ctx.line("monitor-rss", &ours, &peer, Some(1.0));
    }
    Ok(())
}

/// The pid of mini-docker's monitor of container `id`: the process whose command line is
/// `mini-docker --root DIR __monitor ID`.
fn monitor_of(id: &str) -> anyhow::Result<i32> {
    let id = id.trim();
    let found: Vec<i32> = host::processes_with("__monitor")
        .into_iter()
        .filter(|(_, cmdline)| {
            cmdline
                .split_whitespace()
                .last()
                .is_some_and(|last| last.starts_with(id) || id.starts_with(last))
        })
        .map(|(pid, _)| pid)
        .collect();
    match found[..] {
        [pid] => Ok(pid),
        _ => bail!("{} monitors found for {id}", found.len()),
    }
}

/// The pid of podman's conmon for container `id`.
fn conmon_of(podman: &Cmd, id: &str) -> anyhow::Result<i32> {
    let pid: i32 = podman
        .clone()
        .args(["inspect", "--format", "{{.State.ConmonPid}}", id.trim()])
        .stdout()?
        .parse()
        .context("conmon's pid")?;
    check_name(pid, "conmon")
}

/// The pid of the containerd-shim-runc-v2 that runs docker's container `id`: the shim
/// names the container in its command line (`-id ID`).
fn shim_of(id: &str) -> anyhow::Result<i32> {
    let id = id.trim();
    let found: Vec<i32> = host::processes_with(&format!("-id {id}"))
        .into_iter()
        .filter(|(_, c)| c.contains("containerd-shim"))
        .map(|(pid, _)| pid)
        .collect();
    match found[..] {
        [pid] => Ok(pid),
        _ => bail!("{} shims found for {id}", found.len()),
    }
}

/// `pid`, if its command line names `name`.
fn check_name(pid: i32, name: &str) -> anyhow::Result<i32> {
    let cmdline = host::cmdline(pid).unwrap_or_default();
    if !cmdline.contains(name) {
        bail!("pid {pid} is not {name}: {cmdline}");
    }
    Ok(pid)
}
