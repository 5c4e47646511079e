//! Starting a container, and a command in one.
//!
//! * `run`: `mini-docker run --rm --network none busybox true` against `crun run` of a
//!   bundle (docker's seccomp profile, the same defences), `podman run --rm
//!   --network=none` and `docker run --rm --network=none`: everything it takes to start a
//!   container that does nothing, and remove it.
//! * `floor`: `unshare` of the same namespaces running `true`: what the kernel alone
//!   costs, the floor under any run.
//! * `breakdown`: mini-docker's own timings of its steps (`run --timings`).
//! * `bridge`: the same run on the default bridge against `--network none`: the network's
//!   own cost (a veth pair, an address, the names) with a container already on the bridge,
//!   as on a host where containers run.
//! * `exec`: `mini-docker exec C true` against `crun exec` and `docker exec`.

use anyhow::Context;

use super::{Cleanup, Ctx, Entry};
use crate::bench::cmd::Cmd;
use crate::bench::report::Breakdown;
use crate::bench::timings;

/// The crun container ids (see `peers::CRUN_IDS`, which the teardown deletes).
const CRUN_RUN: &str = "mdk-bench-crun-run";
const CRUN_EXEC: &str = "mdk-bench-crun-exec";

/// `run`, `floor` and `breakdown`.
pub fn run(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let plan = ctx.plan;
    if plan.wants("run") || plan.wants("floor") {
        let md_run =
            ctx.peers
                .md
                .cmd()
                .args(["run", "--rm", "--network", "none", "busybox", "true"]);
        let mut entries = vec![Entry::new("mini-docker run", md_run)];
        let mut targets = Vec::new();
        if plan.wants("run") {
            let crun = ctx.peers.crun().cloned();
            if let Some(crun) = ctx.peer("run", "crun", crun) {
                let cmd = crun
                    .cmd()
                    .arg("run")
                    .arg("-b")
                    .arg(&crun.bundle)
                    .arg(CRUN_RUN);
                entries.push(Entry::new("crun run (docker's seccomp)", cmd));
                targets.push(("run", Some(1.0)));
            }
            let podman = ctx.peers.podman().cloned();
            if let Some(podman) = ctx.peer("run", "podman", podman) {
                let cmd =
                    podman
                        .cmd()
                        .args(["run", "--rm", "--network=none", &podman.image, "true"]);
                entries.push(Entry::new("podman run --rm --network=none", cmd));
                targets.push(("run", Some(0.1)));
            }
            let docker = ctx.peers.docker().cloned();
            if let Some(docker) = ctx.peer("run", "docker", docker) {
                let cmd = docker
                    .cmd()
                    .args(["run", "--rm", "--network=none", "busybox", "true"]);
                entries.push(Entry::new("docker run --rm --network=none", cmd));
                targets.push(("run", Some(0.1)));
            }
        }
        if plan.wants("floor") {
            // The namespaces of a container, nothing else: no image, no overlay, no cgroup.
            let cmd = Cmd::new("unshare").args([
                "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--cgroup", "true",
            ]);
            entries.push(Entry::new(
                "unshare --pid --fork --mount --uts --ipc --net --cgroup true",
                cmd,
            ));
            targets.push(("floor", None));
        }
        let results = ctx.time("run", entries, plan.warmup, plan.fast_runs)?;
        let (ours, peers) = results.split_first().expect("mini-docker is timed");
        for ((row, target), peer) in targets.into_iter().zip(peers) {
            ctx.line(row, ours, peer, target);
        }
    }
    if plan.wants("breakdown") {
        ctx.report.breakdown = breakdown(ctx).context("breakdown")?;
    }
    Ok(())
}

/// mini-docker's own account of its steps, averaged over the runs.
fn breakdown(ctx: &mut Ctx<'_>) -> anyhow::Result<Breakdown> {
    let cmd = ctx.peers.md.cmd().args([
        "run",
        "--timings",
        "--rm",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let runs = ctx.plan.fast_runs;
    eprintln!("    breakdown: {runs} runs of `run --timings`");
    let mut all = Vec::with_capacity(runs);
    for i in 0..runs {
        crate::bench::interrupt::check()?;
        let done = cmd.execute(true)?;
        let stderr = String::from_utf8_lossy(&done.stderr);
        match timings::parse(&stderr).map_err(anyhow::Error::msg)? {
            Some(steps) if done.status.success() => all.push(steps),
            // The flag is not there yet (or says nothing): not a failure of the benchmark.
            None if i == 0 => {
                let why = if stderr.contains("--timings") {
                    "mini-docker has no --timings"
                } else {
                    "mini-docker printed no `timings (ms):` block"
                };
                eprintln!("    breakdown: not available ({why})");
                return Ok(Breakdown::Unavailable(why.into()));
            }
            _ => anyhow::bail!(
                "{}: {}: {}",
                ctx.shown(&cmd.to_string()),
                done.status,
                crate::bench::cmd::tail(&stderr)
            ),
        }
    }
    Ok(Breakdown::Steps {
        runs: all.len(),
        steps: timings::average(&all),
    })
}

/// `bridge`: the default bridge against `--network none`, a `keeper` container on the
/// bridge all along so that the bridge and the firewall table stay up (mini-docker removes
/// them with the last container on them), as on a host where containers run.
pub fn bridge(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let md = ctx.peers.md.clone();
    let mut cleanup = Cleanup::default();
    cleanup.push(md.cmd().args(["rm", "-f", "keeper"]));
    md.cmd()
        .args(["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"])
        .run()
        .context("starting the keeper container on the bridge")?;
    let entries = vec![
        Entry::new(
            "mini-docker run (bridge)",
            md.cmd().args(["run", "--rm", "busybox", "true"]),
        ),
        Entry::new(
            "mini-docker run --network none",
            md.cmd()
                .args(["run", "--rm", "--network", "none", "busybox", "true"]),
        ),
    ];
    let results = ctx.time("bridge", entries, ctx.plan.warmup, ctx.plan.fast_runs)?;
    ctx.line("bridge", &results[0], &results[1], Some(2.0));
    drop(cleanup); // the keeper goes, and the bridge and table with it
    Ok(())
}

/// `exec`: a command in a running container (`sleep 1000`, no network) of each tool.
pub fn exec(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let md = ctx.peers.md.clone();
    let mut cleanup = Cleanup::default();
    cleanup.push(md.cmd().args(["rm", "-f", "execbench"]));
    md.cmd()
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "execbench",
            "busybox",
            "sleep",
            "1000",
        ])
        .run()
        .context("starting mini-docker's exec container")?;
    let mut entries = vec![Entry::new(
        "mini-docker exec",
        md.cmd().args(["exec", "execbench", "true"]),
    )];
    let mut targets = Vec::new();
    let crun = ctx.peers.crun().cloned();
    if let Some(crun) = ctx.peer("exec", "crun", crun) {
        cleanup.push(crun.cmd().args(["delete", "-f", CRUN_EXEC]));
        // Its output to /dev/null: a detached crun container keeps the descriptors given.
        let started = crun
            .cmd()
            .args(["run", "-d", "-b"])
            .arg(&crun.bundle_sleep)
            .arg(CRUN_EXEC)
            .run_detached();
        if let Some(()) = ctx.peer("exec", "crun run -d", started) {
            entries.push(Entry::new(
                "crun exec",
                crun.cmd().args(["exec", CRUN_EXEC, "/bin/true"]),
            ));
            targets.push(Some(1.0));
        }
    }
    let docker = ctx.peers.docker().cloned();
    if let Some(docker) = ctx.peer("exec", "docker", docker) {
        cleanup.push(docker.cmd().args(["rm", "-f", "execbench"]));
        let started = docker
            .cmd()
            .args([
                "run",
                "-d",
                "--network=none",
                "--name",
                "execbench",
                "busybox",
                "sleep",
                "1000",
            ])
            .run();
        if let Some(()) = ctx.peer("exec", "docker run -d", started) {
            entries.push(Entry::new(
                "docker exec",
                docker.cmd().args(["exec", "execbench", "true"]),
            ));
            targets.push(None);
        }
    }
    let results = ctx.time("exec", entries, ctx.plan.warmup, ctx.plan.fast_runs)?;
    let (ours, peers) = results.split_first().expect("mini-docker is timed");
    for (target, peer) in targets.into_iter().zip(peers) {
        ctx.line("exec", ours, peer, target);
    }
    Ok(())
}
