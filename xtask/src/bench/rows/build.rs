//! Building a Dockerfile of five steps (FROM a local busybox, RUN, ENV, COPY, CMD):
//!
//! * `build`: cold, `--no-cache`: every step done again;
//! * `rebuild`: the same with the cache: every step found in it.
//!
//! mini-docker against buildah (chroot isolation, its own storage, `--layers` so that it
//! caches each step as docker does) and docker's classic builder (DOCKER_BUILDKIT=0). The
//! RUN step needs no network: mini-docker and docker run it with `--network none`, buildah's
//! chroot isolation uses the host's (the cheapest for each).

use std::fs;

use anyhow::Context;

use super::{Ctx, Entry};

/// The Dockerfile: FROM a local busybox, RUN, ENV, COPY, CMD.
const DOCKERFILE: &str = "FROM busybox\nRUN echo hi > /f\nENV A=1\nCOPY file /file\nCMD [\"sh\"]\n";

/// `build` and `rebuild`.
pub fn rows(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let app = ctx.peers.work.path("build/app");
    fs::create_dir_all(&app)?;
    fs::write(app.join("Dockerfile"), DOCKERFILE)?;
    fs::write(app.join("file"), "data\n")?;
    let md = ctx.peers.md.clone();
    let buildah = ctx.peers.buildah().cloned();
    let buildah = ctx.peer("build", "buildah", buildah);
    let docker = ctx.peers.docker().cloned();
    let docker = ctx.peer("build", "docker", docker);
    let (warmup, runs) = (ctx.plan.heavy_warmup, ctx.plan.heavy_runs);

    for (row, cached, target) in [("build", false, 0.5), ("rebuild", true, 0.2)] {
        if !ctx.plan.wants(row) {
            continue;
        }
        let no_cache: &[&str] = if cached { &[] } else { &["--no-cache"] };
        let mut entries = vec![Entry::new(
            if cached {
                "mini-docker build (cached)"
            } else {
                "mini-docker build --no-cache"
            },
            md.cmd()
                .args(["build", "-q", "--network", "none"])
                .args(no_cache)
                .args(["-t", "app"])
                .arg(&app),
        )];
        if let Some(b) = &buildah {
            entries.push(Entry::new(
                if cached {
                    "buildah bud --layers (cached)"
                } else {
                    "buildah bud --layers --no-cache"
                },
                b.cmd()
                    .args(["bud", "-q", "--layers", "--isolation", "chroot"])
                    .args(no_cache)
                    .args(["-t", "app"])
                    .arg(&app),
            ));
        }
        if let Some(d) = &docker {
            entries.push(Entry::new(
                if cached {
                    "docker build (cached)"
                } else {
                    "docker build --no-cache"
                },
                d.cmd()
                    .env("DOCKER_BUILDKIT", "0")
                    .args(["build", "-q", "--network=none"])
                    .args(no_cache)
                    .args(["-t", "app"])
                    .arg(&app),
            ));
        }
        let results = ctx
            .time(row, entries, warmup, runs)
            .with_context(|| row.to_string())?;
        let (ours, peers) = results.split_first().expect("mini-docker is timed");
        for peer in peers {
            ctx.line(row, ours, peer, Some(target));
        }
    }
    Ok(())
}
