//! Images: pulling one, extracting its layer, and the memory a pull takes.
//!
//! The image: one layer of about 100 MB, 60% random
//! bytes (which gzip cannot shrink) and 40% text (which it can), plus busybox; built with
//! umoci, pushed to the local registry with skopeo. A 10 MB one beside it for `pull-rss`.
//!
//! * `pull`: into an empty store, `mini-docker pull` (which also extracts the layer, in
//!   the same pass as the download) against `skopeo copy docker:// oci:` (which only
//!   stores it).
//! * `extract`: the layer alone: chapter 5's pull with the blobs already in its store and
//!   the extracted layer removed (so: gunzip, sha256 of the result, chapter 4's apply)
//!   against GNU `tar -xzf` of the same blob.
//! * `pull-rss`: the peak resident memory of a pull (GNU time's `%M`), 100 MB layer
//!   against 10 MB: it must stay flat, the blobs are streamed, never held whole.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use super::{Ctx, Entry, remove};
use crate::bench::cmd::Cmd;
use crate::bench::interrupt;
use crate::bench::report::Unit;
use crate::bench::stats::Summary;

/// The big layer, in MB.
const BIG_MB: usize = 100;
/// The small one, for `pull-rss`.
const SMALL_MB: usize = 10;

/// `pull`, `extract` and `pull-rss`.
pub fn rows(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let registry = ctx.peers.registry()?.addr.clone();
    let layout = ctx.peers.work.path("image/oci");
    let tmp = ctx.peers.work.path("tmp");
    fs::create_dir_all(&tmp)?;
    make_image(&layout, "big", BIG_MB, &registry, &tmp)?;
    let big = format!("{registry}/bench:big");
    let (warmup, runs) = (ctx.plan.heavy_warmup, ctx.plan.heavy_runs);
    let md = ctx.peers.md.clone();

    if ctx.plan.wants("pull") {
        let md_store = ctx.peers.work.path("pull/mini-docker");
        let oci_dir = ctx.peers.work.path("pull/skopeo");
        let entries = vec![
            Entry::prepared(
                "mini-docker pull (download + extract)",
                md.with_root(md_store.clone())
                    .cmd()
                    .args(["pull", "-q", &big]),
                || remove(&md_store),
            ),
            Entry::prepared(
                "skopeo copy docker:// oci: (download)",
                Cmd::new("skopeo")
                    .env("TMPDIR", &tmp)
                    .args(["copy", "-q", "--src-tls-verify=false"])
                    .arg(format!("docker://{big}"))
                    .arg(format!("oci:{}:big", oci_dir.display())),
                || remove(&oci_dir),
            ),
        ];
        let results = ctx.time("pull", entries, warmup, runs)?;
        ctx.line("pull", &results[0], &results[1], Some(0.7));
    }

    if ctx.plan.wants("extract") {
        extract(ctx, &layout, &big, warmup, runs).context("extract")?;
    }

    if ctx.plan.wants("pull-rss") {
        make_image(&layout, "small", SMALL_MB, &registry, &tmp)?;
        let small = format!("{registry}/bench:small");
        let store = ctx.peers.work.path("pull/rss");
        let report = ctx.peers.work.path("pull/rss.txt");
        fs::create_dir_all(ctx.peers.work.path("pull"))?;
        let (mut big_kib, mut small_kib) = (Vec::new(), Vec::new());
        // GNU time reports the peak RSS of the command it waits for, in KiB.
        let timed = |image: &str| {
            Cmd::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&report)
                .arg(&md.bin)
                .arg("--root")
                .arg(&store)
                .args(["pull", "-q", image])
        };
        let pull = |image: &str| -> anyhow::Result<f64> {
            remove(&store)?;
            timed(image).run()?;
            let text = fs::read_to_string(&report)?;
            text.trim()
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .ok_or_else(|| anyhow!("/usr/bin/time wrote {text:?}"))
        };
        eprintln!("    pull-rss: {runs} pulls of each image, alternating");
        for _ in 0..runs.max(1) {
            interrupt::check()?;
            small_kib.push(pull(&small)?);
            big_kib.push(pull(&big)?);
        }
        let ours = Summary::of(&big_kib)
            .map(|s| ctx.measure(&format!("{BIG_MB} MB layer"), &timed(&big), s, Unit::KiB))
            .ok_or_else(|| "no sample".to_string());
        let peer = Summary::of(&small_kib)
            .map(|s| {
                ctx.measure(
                    &format!("mini-docker pull, {SMALL_MB} MB layer (peak RSS)"),
                    &timed(&small),
                    s,
                    Unit::KiB,
                )
            })
            .ok_or_else(|| "no sample".to_string());
        ctx.line("pull-rss", &ours, &peer, Some(1.5));
    }
    Ok(())
}

/// `extract`: chapter 5's layer path against `tar -xzf`, on the same gzip blob.
fn extract(
    ctx: &mut Ctx<'_>,
    layout: &Path,
    image: &str,
    warmup: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let store = ctx.peers.work.path("extract/store");
    let into = ctx.peers.work.path("extract/tar");
    let ch05 = Cmd::new(&ctx.peers.ch05)
        .arg("--root")
        .arg(&store)
        .args(["pull", "-q", image]);
    // A first pull fills the store; then each timed one finds the blobs there and only
    // extracts the layer again.
    ch05.run()?;
    let layer_digest = only_layer(layout, "big")?;
    let blob = store.join("images/blobs/sha256").join(&layer_digest);
    if !blob.is_file() {
        bail!("chapter 5's store has no {}", blob.display());
    }
    let extracted: Vec<PathBuf> = fs::read_dir(store.join("layers"))?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    let [layer_dir] = &extracted[..] else {
        bail!("expected one extracted layer in chapter 5's store, found {extracted:?}");
    };
    let entries = vec![
        Entry::prepared(
            "ch05-image-pull pull, blobs present (gunzip + sha256 + apply)",
            ch05.clone(),
            || remove(layer_dir),
        ),
        Entry::prepared(
            "tar -xzf (GNU tar)",
            Cmd::new("tar").arg("-xzf").arg(&blob).arg("-C").arg(&into),
            || {
                remove(&into)?;
                fs::create_dir_all(&into).map_err(Into::into)
            },
        ),
    ];
    let results = ctx.time("extract", entries, warmup, runs)?;
    ctx.line("extract", &results[0], &results[1], Some(0.5));
    Ok(())
}

/// Builds `layout:tag` (one layer of `mb` MB: 60% random, 40% text, plus busybox) with
/// umoci and pushes it to `registry` as `bench:tag`.
fn make_image(
    layout: &Path,
    tag: &str,
    mb: usize,
    registry: &str,
    tmp: &Path,
) -> anyhow::Result<()> {
    eprintln!("    image bench:{tag} ({mb} MB layer) with umoci, pushed with skopeo");
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        Cmd::new("umoci")
            .args(["init", "--layout"])
            .arg(layout)
            .run()?;
    }
    Cmd::new("umoci").args(["new", "--image", &image]).run()?;
    let bundle = layout.with_file_name(format!("bundle-{tag}"));
    Cmd::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle)
        .run()?;
    let rootfs = bundle.join("rootfs");
    write_random(&rootfs.join("random.bin"), mb * 600_000)?;
    write_text(&rootfs.join("text.txt"), mb * 400_000)?;
    fs::copy("/usr/bin/busybox", rootfs.join("busybox"))?;
    Cmd::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle)
        .run()?;
    remove(&bundle)?;
    Cmd::new("umoci")
        .args(["config", "--image", &image, "--config.cmd", "/busybox"])
        .args(["--architecture", goarch(), "--os", "linux"])
        .run()?;
    Cmd::new("skopeo")
        .env("TMPDIR", tmp)
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{registry}/bench:{tag}"))
        .run()?;
    Ok(())
}

/// The OCI name of this machine's architecture.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `len` bytes from /dev/urandom.
fn write_random(path: &Path, len: usize) -> anyhow::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    let mut random = fs::File::open("/dev/urandom")?.take(len as u64);
    std::io::copy(&mut random, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `len` bytes of the same line of text over and over.
fn write_text(path: &Path, len: usize) -> anyhow::Result<()> {
    let line = b"the quick brown fox jumps over the lazy dog\n";
    let mut out = BufWriter::new(fs::File::create(path)?);
    let mut left = len;
    while left > 0 {
        let n = left.min(line.len());
        out.write_all(&line[..n])?;
        left -= n;
    }
    out.flush()?;
    Ok(())
}

/// The hex digest of the only layer of `layout:tag`, from the layout's index and manifest.
fn only_layer(layout: &Path, tag: &str) -> anyhow::Result<String> {
    let read = |p: PathBuf| -> anyhow::Result<Value> {
        let text = fs::read_to_string(&p).with_context(|| p.display().to_string())?;
        Ok(serde_json::from_str(&text)?)
    };
    let index = read(layout.join("index.json"))?;
    let manifest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .ok_or_else(|| anyhow!("no {tag} in {}", layout.display()))?;
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let manifest = read(layout.join("blobs/sha256").join(hex(manifest)))?;
    match manifest["layers"].as_array().map(Vec::as_slice) {
        Some([layer]) => Ok(hex(layer["digest"].as_str().unwrap_or_default())),
        _ => bail!("{tag}: expected one layer"),
    }
}
