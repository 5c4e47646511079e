//! The peers' setup, all in one work directory under /tmp, and its teardown.
//!
//! Every tool gets the same busybox root filesystem (the host's static busybox with its
//! `--install -s` links, /etc/passwd and /etc/group, as scripts/lib.sh's `busybox_rootfs`
//! makes it), imported into mini-docker's store, then saved from there (a docker archive)
//! and loaded into dockerd, podman and buildah; crun gets it as a runtime bundle.
//!
//! Each peer keeps *all* its state in the work directory, never in the host's own stores:
//! mini-docker `--root`, a private dockerd (`--data-root`, `--exec-root`, its own socket),
//! podman with its own containers.conf and storage.conf, buildah with its own storage,
//! crun with its own `--root`, a registry with its own config and storage. So the teardown
//! ([`teardown`]) needs nothing but the directory: remove the containers of each tool,
//! stop the daemons by their pid files, end any process still naming the directory,
//! unmount whatever is mounted below it, remove it. The same function cleans up after a
//! run that was killed (`sweep_stale`, at the start of the next one).
//!
//! Peers are set up when a row first needs them (`Peers::docker()` starts dockerd...), so
//! `--filter run` does not wait for a registry and an image build it will not use.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::cmd::Cmd;
use super::host::{self, Layout};

/// The work directories are `/tmp/PREFIX*`.
pub const PREFIX: &str = "mdk-xtask-bench-";

/// The crun container ids (crun's cgroups are named after them, at each hierarchy's top).
pub const CRUN_IDS: &[&str] = &["mdk-bench-crun-run", "mdk-bench-crun-exec"];

/// Debian's docker CLI (20.10). Not `docker` from PATH: /usr/local/bin/docker may be
/// another program on this kind of machine.
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";

/// The benchmark's work directory. Dropping it tears everything down and removes it (or
/// keeps its files, stopped and unmounted, with `--keep-peers`).
#[derive(Debug)]
pub struct Work {
    /// `/tmp/mdk-xtask-bench-XXXXXX`.
    pub dir: PathBuf,
    keep: bool,
}

impl Work {
    /// A new work directory, marked as ours (our pid) so that another run sees it is in
    /// use and a later run can tell it was abandoned.
    pub fn create(keep: bool) -> anyhow::Result<Work> {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in("/tmp")
            .context("creating the work directory under /tmp")?
            .keep();
        let work = Work { dir, keep };
        fs::write(work.path("owner.pid"), std::process::id().to_string())?;
        if keep {
            fs::write(work.path("keep"), "")?;
        }
        Ok(work)
    }

    /// `rel` inside the work directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        eprintln!("==> cleaning up {}", self.dir.display());
        teardown(&self.dir);
        finish(&self.dir);
        if self.keep {
            eprintln!(
                "    kept {} (--keep-peers): everything stopped and unmounted",
                self.dir.display()
            );
        }
    }
}

/// After a teardown: the directory removed, unless it is to be kept.
fn finish(dir: &Path) {
    if dir.join("keep").exists() {
        let _ = fs::write(dir.join("torn-down"), "");
    } else if let Err(e) = fs::remove_dir_all(dir) {
        eprintln!("warning: removing {}: {e}", dir.display());
    }
}

/// Cleans up after earlier runs that were killed before their own cleanup (SIGKILL, a
/// crash, the machine's reboot is the easy case): their daemons, containers and mounts.
/// Refuses to go on while another benchmark runs: two at once would measure each other.
pub fn sweep_stale() -> anyhow::Result<()> {
    for entry in fs::read_dir("/tmp").context("/tmp")?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let owner = fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = owner
            && running(pid)
            && host::cmdline(pid).is_some_and(|c| c.contains("xtask"))
        {
            bail!(
                "another `cargo xtask bench` is running (pid {pid}, work dir {}): \
                 two at once would measure each other",
                dir.display()
            );
        }
        if dir.join("torn-down").exists() {
            continue; // a --keep-peers directory, already clean
        }
        eprintln!("==> a previous run left {}: cleaning it up", dir.display());
        teardown(&dir);
        finish(&dir);
    }
    Ok(())
}

/// Stops and removes everything the benchmark started from `dir`, whatever state it is
/// in; every step goes on when the one before fails. Order matters: containers before
/// their daemons (dockerd removes its containers' mounts and shims only while it runs),
/// daemons before the unmounts, unmounts before the removal.
pub fn teardown(dir: &Path) {
    let path = |rel: &str| dir.join(rel);
    // mini-docker's containers (the monitor of each, its overlay and cgroups, and the
    // bridge and firewall table with the last one). Only the store that runs containers.
    let md = MiniDocker {
        bin: path("bin/mini-docker"),
        root: path("md"),
    };
    if md.bin.exists() && md.root.exists() {
        remove_all(
            &md.cmd().args(["ps", "-aq", "--no-trunc"]),
            &md.cmd().args(["rm", "-f"]),
        );
    }
    if path("podman/containers.conf").exists() {
        let podman = Podman::at(dir, String::new());
        podman.cmd().args(["rm", "-a", "-f", "-t", "0"]).quietly();
    }
    if path("buildah/storage.conf").exists() {
        Buildah::at(dir).cmd().args(["rm", "-a"]).quietly();
    }
    if path("crun/state").exists() {
        let crun = Crun::at(dir);
        let listed = crun
            .cmd()
            .args(["list", "-q"])
            .quietly()
            .unwrap_or_default();
        for id in listed.split_whitespace().chain(CRUN_IDS.iter().copied()) {
            crun.cmd().args(["delete", "-f", id]).quietly();
        }
    }
    if let Some(pid) = pid_in(dir, "docker/dockerd.pid") {
        let docker = Docker::at(dir, String::new());
        remove_all(
            &docker.cmd().args(["ps", "-aq"]),
            &docker.cmd().args(["rm", "-f", "-v"]),
        );
        stop(pid, Duration::from_secs(30));
    }
    if let Some(pid) = pid_in(dir, "registry/registry.pid") {
        stop(pid, Duration::from_secs(5));
    }
    // Whatever still names the directory: dockerd's containerd and shims if dockerd was
    // killed, a monitor or conmon whose container could not be removed.
    let needle = dir.to_string_lossy().into_owned();
    for (pid, cmdline) in host::processes_with(&needle) {
        eprintln!("    stopping a leftover process {pid}: {cmdline}");
        stop(pid, Duration::from_secs(5));
    }
    // Deepest first: overlays of the stores, dockerd's and podman's own mounts.
    for point in host::mounts_under(dir) {
        if let Err(e) = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("warning: umount {}: {e}", point.display());
        }
    }
}

/// Lists a tool's containers with `list` and removes them all with one `remove`.
fn remove_all(list: &Cmd, remove: &Cmd) {
    let Some(ids) = list.quietly() else { return };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        remove.clone().args(ids).quietly();
    }
}

/// The pid in `dir/rel`, if that process still runs and is ours: its command line names
/// `dir` (a pid file can outlive its process, and the pid be reused).
fn pid_in(dir: &Path, rel: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(dir.join(rel))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let needle = dir.to_string_lossy();
    (running(pid) && host::cmdline(pid)?.contains(needle.as_ref())).then_some(pid)
}

/// Whether `pid` runs (a zombie does not: it only waits for its parent to reap it).
pub fn running(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state is the first field after the last `)`.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
fn stop(pid: i32, grace: Duration) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    if !wait_until(grace, || !running(pid)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        wait_until(Duration::from_secs(5), || !running(pid));
    }
}

/// Polls `done` every 50 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A daemon we started (dockerd, the registry), in its own process group so that the
/// terminal's Ctrl-C does not reach it: the teardown stops it, in order, after its
/// containers. Dropping it reaps it.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A mini-docker binary and the store it works on.
#[derive(Debug, Clone)]
pub struct MiniDocker {
    /// The binary (a copy in the work directory, see `Peers::setup`).
    pub bin: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
}

impl MiniDocker {
    /// `mini-docker --root ROOT`.
    pub fn cmd(&self) -> Cmd {
        Cmd::new(&self.bin).arg("--root").arg(&self.root)
    }

    /// The same binary on another store.
    pub fn with_root(&self, root: PathBuf) -> MiniDocker {
        MiniDocker {
            bin: self.bin.clone(),
            root,
        }
    }
}

/// crun: its state directory and two bundles (`/bin/true`, and `sleep 1000` for exec).
#[derive(Debug, Clone)]
pub struct Crun {
    /// `crun --root`: where it keeps its containers' state.
    pub state: PathBuf,
    /// The bundle that runs `/bin/true`.
    pub bundle: PathBuf,
    /// The same root filesystem, running `sleep 1000` (the exec row's container).
    pub bundle_sleep: PathBuf,
}

impl Crun {
    fn at(dir: &Path) -> Crun {
        Crun {
            state: dir.join("crun/state"),
            bundle: dir.join("crun/bundle"),
            bundle_sleep: dir.join("crun/bundle-sleep"),
        }
    }

    /// `crun --root STATE`, started where the hybrid host's cgroup2 mount is hidden.
    pub fn cmd(&self) -> Cmd {
        Cmd::new("crun")
            .arg("--root")
            .arg(&self.state)
            .without_cgroup2()
    }
}

/// podman with its own configuration (see `Peers::podman`).
#[derive(Debug, Clone)]
pub struct Podman {
    dir: PathBuf,
    /// The busybox image's name in its store.
    pub image: String,
}

impl Podman {
    fn at(dir: &Path, image: String) -> Podman {
        Podman {
            dir: dir.join("podman"),
            image,
        }
    }

    /// `podman`, with the configuration of the work directory.
    pub fn cmd(&self) -> Cmd {
        Cmd::new("podman")
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("TMPDIR", self.dir.join("tmp"))
    }
}

/// buildah with its own storage (and podman's containers.conf, for its limits).
#[derive(Debug, Clone)]
pub struct Buildah {
    dir: PathBuf,
    podman: PathBuf,
}

impl Buildah {
    fn at(dir: &Path) -> Buildah {
        Buildah {
            dir: dir.join("buildah"),
            podman: dir.join("podman"),
        }
    }

    /// `buildah`, with the storage of the work directory.
    pub fn cmd(&self) -> Cmd {
        Cmd::new("buildah")
            .env("CONTAINERS_CONF", self.podman.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("TMPDIR", self.dir.join("tmp"))
    }
}

/// The private dockerd's client side.
#[derive(Debug, Clone)]
pub struct Docker {
    dir: PathBuf,
    /// The storage driver it runs with: overlay2, or vfs where overlay2 would not start.
    pub driver: String,
}

impl Docker {
    fn at(dir: &Path, driver: String) -> Docker {
        Docker {
            dir: dir.join("docker"),
            driver,
        }
    }

    /// `docker -H unix://WORK/docker/docker.sock`, its client config in the work directory
    /// too (not ~/.docker).
    pub fn cmd(&self) -> Cmd {
        Cmd::new(DOCKER)
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
    }
}

/// The local registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// A peer not set up yet, set up, or that failed to set up (said once, not retried by
/// every row).
#[derive(Debug)]
enum Slot<T> {
    Unset,
    Ready(T),
    Failed(String),
}

impl<T> Slot<T> {
    fn get(&mut self, setup: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<&T> {
        if let Slot::Unset = self {
            *self = match setup() {
                Ok(t) => Slot::Ready(t),
                Err(e) => Slot::Failed(format!("{e:#}")),
            };
        }
        match self {
            Slot::Ready(t) => Ok(t),
            Slot::Failed(e) => Err(anyhow!("{e}")),
            Slot::Unset => unreachable!("set above"),
        }
    }
}

/// Every peer, set up on demand. Dropping it tears them all down: its fields are dropped
/// in the order they are declared, `work` first (the teardown, see `Work`'s `Drop`), then
/// `daemons` (reaping the daemons the teardown stopped).
#[derive(Debug)]
pub struct Peers {
    /// The work directory: declared first, dropped first.
    pub work: Work,
    /// mini-docker, on the store that has the busybox image.
    pub md: MiniDocker,
    /// Chapter 5's own binary (the extract row).
    pub ch05: PathBuf,
    layout: Layout,
    crun: Slot<Crun>,
    podman: Slot<Podman>,
    buildah: Slot<Buildah>,
    docker: Slot<Docker>,
    registry: Slot<Registry>,
    daemons: Vec<Daemon>,
}

/// The built binaries the benchmark uses.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// target/release/mini-docker.
    pub mini_docker: PathBuf,
    /// target/release/ch05-image-pull.
    pub ch05: PathBuf,
}

impl Peers {
    /// The work directory, the busybox root filesystem and mini-docker's store with it;
    /// the other peers come when asked for.
    pub fn setup(bins: &Binaries, layout: &Layout, keep: bool) -> anyhow::Result<Peers> {
        let work = Work::create(keep)?;
        eprintln!("==> work directory {}", work.dir.display());
        // Copies of the binaries: a rebuild during the run cannot change them, and the
        // teardown of an abandoned directory finds mini-docker there.
        fs::create_dir_all(work.path("bin"))?;
        let md_bin = work.path("bin/mini-docker");
        let ch05 = work.path("bin/ch05-image-pull");
        fs::copy(&bins.mini_docker, &md_bin).context("copying mini-docker")?;
        fs::copy(&bins.ch05, &ch05).context("copying ch05-image-pull")?;
        let md = MiniDocker {
            bin: md_bin,
            root: work.path("md"),
        };
        let peers = Peers {
            md,
            ch05,
            layout: layout.clone(),
            crun: Slot::Unset,
            podman: Slot::Unset,
            buildah: Slot::Unset,
            docker: Slot::Unset,
            registry: Slot::Unset,
            daemons: Vec::new(),
            work,
        };
        // From here on, a failure drops `peers`, which cleans up.
        busybox_rootfs(&peers.work.path("rootfs"))?;
        Cmd::new("tar")
            .arg("-C")
            .arg(peers.work.path("rootfs"))
            .arg("-cf")
            .arg(peers.work.path("rootfs.tar"))
            .arg(".")
            .run()?;
        peers
            .md
            .cmd()
            .args(["import", "--change", r#"CMD ["sh"]"#])
            .arg(peers.work.path("rootfs.tar"))
            .arg("busybox")
            .run()
            .context("importing busybox into mini-docker")?;
        // The docker archive the other stores load: the very same image.
        peers
            .md
            .cmd()
            .args(["save", "-o"])
            .arg(peers.work.path("busybox.tar"))
            .arg("busybox")
            .run()?;
        Ok(peers)
    }

    /// The cgroup layout of the host.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// crun, with its bundles.
    pub fn crun(&mut self) -> anyhow::Result<&Crun> {
        let dir = &self.work.dir;
        self.crun.get(|| setup_crun(dir))
    }

    /// podman, its store holding busybox.
    pub fn podman(&mut self) -> anyhow::Result<&Podman> {
        let dir = &self.work.dir;
        self.podman.get(|| setup_podman(dir))
    }

    /// buildah, its store holding busybox.
    pub fn buildah(&mut self) -> anyhow::Result<&Buildah> {
        let dir = &self.work.dir;
        self.buildah.get(|| setup_buildah(dir))
    }

    /// The private dockerd, up, busybox loaded.
    pub fn docker(&mut self) -> anyhow::Result<&Docker> {
        let dir = &self.work.dir;
        let daemons = &mut self.daemons;
        self.docker.get(|| setup_docker(dir, daemons))
    }

    /// The local registry, up.
    pub fn registry(&mut self) -> anyhow::Result<&Registry> {
        let dir = &self.work.dir;
        let daemons = &mut self.daemons;
        self.registry.get(|| setup_registry(dir, daemons))
    }

    /// Whether crun was set up (and so ran).
    pub fn crun_used(&self) -> bool {
        matches!(self.crun, Slot::Ready(_))
    }

    /// What the header says of dockerd's storage, if it was started.
    pub fn docker_driver(&self) -> Option<&str> {
        match &self.docker {
            Slot::Ready(d) => Some(&d.driver),
            _ => None,
        }
    }
}

/// A busybox root filesystem in `root`, as scripts/lib.sh's `busybox_rootfs` makes it,
/// plus empty /proc, /sys and /dev: crun's bundle keeps its root read-only (as `crun
/// spec` writes it), so the mount points must exist beforehand.
fn busybox_rootfs(root: &Path) -> anyhow::Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var", "home", "proc", "sys",
        "dev",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
        .context("copying /usr/bin/busybox (busybox-static)")?;
    // `--install -s` makes absolute links (/bin/sh -> /bin/busybox): run it chrooted.
    Cmd::new("chroot")
        .arg(root)
        .args(["/bin/busybox", "--install", "-s"])
        .run()?;
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// The workspace's root (where scripts/ and chapters/ are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_path_buf()
}

/// crun's bundles. The config is `crun spec`'s (docker's capabilities, masked and
/// read-only paths, a devices rule) plus docker's default seccomp profile, resolved for
/// x86_64 by scripts/bench/oci-seccomp.jq as dockerd would hand it to its runtime: a
/// default mini-docker container gets that same filter, so both do comparable work.
fn setup_crun(dir: &Path) -> anyhow::Result<Crun> {
    eprintln!("==> crun bundle (crun spec + docker's seccomp profile)");
    let crun = Crun::at(dir);
    fs::create_dir_all(&crun.state)?;
    fs::create_dir_all(&crun.bundle)?;
    fs::create_dir_all(&crun.bundle_sleep)?;
    Cmd::new("cp")
        .arg("-a")
        .arg(dir.join("rootfs"))
        .arg(crun.bundle.join("rootfs"))
        .run()?;
    crun.cmd().arg("spec").current_dir(&crun.bundle).run()?;
    let repo = repo_root();
    let seccomp = Cmd::new("jq")
        .arg("-f")
        .arg(repo.join("scripts/bench/oci-seccomp.jq"))
        .arg(repo.join("chapters/ch01-namespaces/src/seccomp/docker-default.json"))
        .stdout()
        .context("resolving docker's seccomp profile with jq")?;
    let seccomp: Value = serde_json::from_str(&seccomp)?;
    let config_path = crun.bundle.join("config.json");
    let mut config: Value = serde_json::from_str(&fs::read_to_string(&config_path)?)?;
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["/bin/true"]);
    config["hostname"] = json!("bench");
    config["linux"]["seccomp"] = seccomp;
    fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    // The exec row's container: the same, running sleep, on the same root filesystem.
    config["process"]["args"] = json!(["/bin/sleep", "1000"]);
    config["root"]["path"] = json!(crun.bundle.join("rootfs"));
    fs::write(
        crun.bundle_sleep.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(crun)
}

/// podman with its own containers.conf and storage.conf (the environment variables point
/// at them), all its state in the work directory. Never `podman system reset`: with the
/// host's defaults it deletes /run/libpod whatever `--root` says.
fn setup_podman(dir: &Path) -> anyhow::Result<Podman> {
    eprintln!("==> podman (own containers.conf and storage)");
    let p = dir.join("podman");
    for d in ["root", "runroot", "tmp", "networks"] {
        fs::create_dir_all(p.join(d))?;
    }
    fs::write(
        p.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            p.join("root").display(),
            p.join("runroot").display()
        ),
    )?;
    fs::write(
        p.join("containers.conf"),
        format!(
            r#"[containers]
# Without CAP_SYS_RESOURCE (a VM, a container) the hard limits are below podman's defaults
# (1048576 files, 4194304 processes), and the runtime fails with "setrlimit RLIMIT_NOFILE:
# Operation not permitted". These fit under the hard limits of such machines.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_config_dir = "{net}"

[engine]
# runc, as dockerd uses (crun would need this host's cgroup2 mount hidden, see nocgroup2.rs)
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{p}/events.log"
tmp_dir = "{p}/tmp"
image_copy_tmp_dir = "{p}/tmp"
volume_path = "{p}/root/volumes"
"#,
            net = p.join("networks").display(),
            p = p.display()
        ),
    )?;
    let mut podman = Podman::at(dir, String::new());
    let loaded = podman
        .cmd()
        .args(["load", "-i"])
        .arg(dir.join("busybox.tar"))
        .stdout()?;
    // "Loaded image: docker.io/library/busybox:latest"
    podman.image = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
        .ok_or_else(|| anyhow!("podman load said: {loaded}"))?;
    Ok(podman)
}

/// buildah with its own storage; busybox pulled from the same docker archive.
fn setup_buildah(dir: &Path) -> anyhow::Result<Buildah> {
    eprintln!("==> buildah (own storage)");
    let b = dir.join("buildah");
    for d in ["root", "runroot", "tmp"] {
        fs::create_dir_all(b.join(d))?;
    }
    fs::write(
        b.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            b.join("root").display(),
            b.join("runroot").display()
        ),
    )?;
    // podman's containers.conf is shared (its limits), so it must exist.
    if !dir.join("podman/containers.conf").exists() {
        setup_podman(dir)?;
    }
    let buildah = Buildah::at(dir);
    buildah
        .cmd()
        .args(["pull", "-q"])
        .arg(format!(
            "docker-archive:{}",
            dir.join("busybox.tar").display()
        ))
        .run()?;
    Ok(buildah)
}

/// A private dockerd: its own data root, exec root (its containerd's too), socket, pid
/// file and configuration; no network set up on the host (`--bridge=none`, no iptables):
/// the rows use `--network=none`. overlay2 if it starts here, else vfs.
fn setup_docker(dir: &Path, daemons: &mut Vec<Daemon>) -> anyhow::Result<Docker> {
    let d = dir.join("docker");
    let mut why = Vec::new();
    for driver in ["overlay2", "vfs"] {
        eprintln!("==> dockerd (private, storage driver {driver})");
        for sub in ["data", "exec", "client"] {
            fs::create_dir_all(d.join(sub))?;
        }
        // dockerd 20.10 creates a key for its id at /etc/docker/key.json unless told
        // where (a setting without a documented flag): here, in the work directory.
        let config = json!({ "deprecated-key-path": d.join("key.json") });
        fs::write(
            d.join("daemon.json"),
            serde_json::to_string_pretty(&config)?,
        )?;
        let log = fs::File::create(d.join("dockerd.log"))?;
        let child = Cmd::new(DOCKERD)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg(format!("--storage-driver={driver}"))
            .command()
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting dockerd")?;
        let mut daemon = Daemon { child };
        let docker = Docker::at(dir, driver.to_string());
        let up = wait_until(Duration::from_secs(60), || {
            super::interrupt::interrupted()
                || matches!(daemon.child.try_wait(), Ok(Some(_)))
                || docker.cmd().arg("version").quietly().is_some()
        });
        let answered = up && matches!(daemon.child.try_wait(), Ok(None));
        let actual = docker
            .cmd()
            .args(["info", "--format", "{{.Driver}}"])
            .quietly()
            .map(|s| s.trim().to_string());
        if answered && actual.as_deref() == Some(driver) {
            daemons.push(daemon);
            docker
                .cmd()
                .args(["load", "-q", "-i"])
                .arg(dir.join("busybox.tar"))
                .run()
                .context("loading busybox into dockerd")?;
            return Ok(docker);
        }
        let log = fs::read_to_string(d.join("dockerd.log")).unwrap_or_default();
        why.push(format!("{driver}: {}", super::cmd::tail(&log)));
        // Stop this one and clear its state before the next try.
        if let Some(pid) = pid_in(dir, "docker/dockerd.pid") {
            stop(pid, Duration::from_secs(30));
        }
        drop(daemon);
        for point in host::mounts_under(&d) {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&d);
    }
    bail!("dockerd did not start: {}", why.join("; "))
}

/// distribution's registry on 127.0.0.1 and a free port, its config and storage in the
/// work directory.
fn setup_registry(dir: &Path, daemons: &mut Vec<Daemon>) -> anyhow::Result<Registry> {
    let r = dir.join("registry");
    fs::create_dir_all(r.join("data"))?;
    let addr = format!("127.0.0.1:{}", host::free_port()?);
    eprintln!("==> registry on {addr}");
    fs::write(
        r.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n  secret: mdk-bench-local-only\n",
            r.join("data").display()
        ),
    )?;
    let log = fs::File::create(r.join("registry.log"))?;
    let child = Cmd::new("docker-registry")
        .arg("serve")
        .arg(r.join("config.yml"))
        .command()
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting docker-registry")?;
    fs::write(r.join("registry.pid"), child.id().to_string())?;
    let mut daemon = Daemon { child };
    let up = wait_until(Duration::from_secs(20), || {
        matches!(daemon.child.try_wait(), Ok(Some(_))) || http_status(&addr, "/v2/") == Some(200)
    });
    let alive = matches!(daemon.child.try_wait(), Ok(None));
    daemons.push(daemon);
    if !up || !alive {
        let log = fs::read_to_string(r.join("registry.log")).unwrap_or_default();
        bail!(
            "the registry did not answer on {addr}: {}",
            super::cmd::tail(&log)
        );
    }
    Ok(Registry { addr })
}

/// The status code of `GET path` on `addr` over plain HTTP/1.0, or `None`.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    // "HTTP/1.1 200 OK"
    String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The versions the report's header lists: the first line of each tool's own answer.
pub fn versions() -> BTreeMap<&'static str, String> {
    let first_line = |cmd: Cmd| {
        cmd.quietly()
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "not installed".into())
    };
    let mut v = BTreeMap::new();
    v.insert("crun", first_line(Cmd::new("crun").arg("--version")));
    v.insert("runc", first_line(Cmd::new("runc").arg("--version")));
    v.insert("podman", first_line(Cmd::new("podman").arg("--version")));
    v.insert("buildah", first_line(Cmd::new("buildah").arg("--version")));
    v.insert("skopeo", first_line(Cmd::new("skopeo").arg("--version")));
    v.insert("docker", first_line(Cmd::new(DOCKER).arg("--version")));
    v.insert(
        "containerd",
        first_line(Cmd::new("containerd").arg("--version")),
    );
    v.insert(
        "registry",
        first_line(Cmd::new("docker-registry").arg("--version")),
    );
    v.insert("tar", first_line(Cmd::new("tar").arg("--version")));
    v
}
