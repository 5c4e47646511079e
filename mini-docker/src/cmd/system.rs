//! Management commands: `container`, `image`, `system`, and `info`, `version`.
use std::path::{Path, PathBuf};

use clap::Subcommand;

use ch05_image_pull::Reference;

use ch04_unionfs_layers::sys::Kernel;

use crate::format::{human_size, print_prune, table};
use crate::record::{Container, Status};
use crate::{Cli, Command, Error, containers, volumes};

/// `container ...`: docker's management command for containers. Each verb is the
/// top-level command of the same name (`container stop` is `stop`), as in docker.
#[derive(Debug, Clone, Subcommand)]
pub enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container.
    Attach(super::attach::AttachArgs),
    /// Create a new image from a container's changes.
    Commit(super::commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(super::cp::CpArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(super::create::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(super::diff::DiffArgs),
    /// Execute a command in a running container.
    Exec(super::exec::ExecArgs),
    /// Export a container's filesystem as a tar archive.
    Export(super::export::ExportArgs),
    /// Display detailed information on one or more containers.
    Inspect(super::inspect::InspectArgs),
    /// Kill one or more running containers.
    Kill(super::kill::KillArgs),
    /// Fetch the logs of a container.
    Logs(super::logs::LogsArgs),
    /// List containers.
    #[command(aliases = ["list", "ps"])]
    Ls(super::ps::PsArgs),
    /// Pause all processes within one or more containers.
    Pause(super::pause::PauseArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Rename a container.
    Rename(super::rename::RenameArgs),
    /// Restart one or more containers.
    Restart(super::stop::StopArgs),
    /// Remove one or more containers.
    #[command(alias = "remove")]
    Rm(super::rm::RmArgs),
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(super::run::RunArgs),
    /// Start one or more stopped containers.
    Start(super::start::StartArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(super::stats::StatsArgs),
    /// Stop one or more running containers.
    Stop(super::stop::StopArgs),
    /// Display the running processes of a container.
    Top(super::top::TopArgs),
    /// Unpause all processes within one or more containers.
    Unpause(super::pause::PauseArgs),
    /// Update configuration (resource limits) of one or more containers.
    Update(super::update::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(super::wait::WaitArgs),
}

impl ContainerCommand {
    /// The top-level command this verb is; None for `prune`, which has none.
    pub fn command(&self) -> Option<Command> {
        use ContainerCommand as C;
        Some(match self.clone() {
            C::Attach(a) => Command::Attach(a),
            C::Commit(a) => Command::Commit(a),
            C::Cp(a) => Command::Cp(a),
            C::Create(a) => Command::Create(a),
            C::Diff(a) => Command::Diff(a),
            C::Exec(a) => Command::Exec(a),
            C::Export(a) => Command::Export(a),
            C::Inspect(mut a) => {
                a.kind.get_or_insert_with(|| "container".into());
                Command::Inspect(a)
            }
            C::Kill(a) => Command::Kill(a),
            C::Logs(a) => Command::Logs(a),
            C::Ls(a) => Command::Ps(a),
            C::Pause(a) => Command::Pause(a),
            C::Prune { .. } => return None,
            C::Rename(a) => Command::Rename(a),
            C::Restart(a) => Command::Restart(a),
            C::Rm(a) => Command::Rm(a),
            C::Run(a) => Command::Run(a),
            C::Start(a) => Command::Start(a),
            C::Stats(a) => Command::Stats(a),
            C::Stop(a) => Command::Stop(a),
            C::Top(a) => Command::Top(a),
            C::Unpause(a) => Command::Unpause(a),
            C::Update(a) => Command::Update(a),
            C::Wait(a) => Command::Wait(a),
        })
    }
}

/// `image ...`: docker's management command for images; each verb is the top-level one
/// (`image ls` is `images`, `image rm` is `rmi`).
#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Show the history of an image.
    History(super::images::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(super::import::ImportArgs),
    /// Display detailed information on one or more images.
    Inspect(super::inspect::InspectArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(super::images::ImagesArgs),
    /// Remove unused images (dangling ones; with -a, every one no container uses).
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Download an image from a registry.
    Pull(super::images::PullArgs),
    /// Upload an image to a registry.
    Push(super::images::PushArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(super::images::RmiArgs),
    /// Save one or more images to a tar archive.
    Save(super::archive::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(super::archive::LoadArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(super::images::TagArgs),
}

impl ImageCommand {
    /// The top-level command this verb is; None for `prune`, which has none.
    pub fn command(&self) -> Option<Command> {
        use ImageCommand as I;
        Some(match self.clone() {
            I::History(a) => Command::History(a),
            I::Import(a) => Command::Import(a),
            I::Inspect(mut a) => {
                a.kind.get_or_insert_with(|| "image".into());
                Command::Inspect(a)
            }
            I::Ls(a) => Command::Images(a),
            I::Prune { .. } => return None,
            I::Pull(a) => Command::Pull(a),
            I::Push(a) => Command::Push(a),
            I::Rm(a) => Command::Rmi(a),
            I::Save(a) => Command::Save(a),
            I::Load(a) => Command::Load(a),
            I::Tag(a) => Command::Tag(a),
        })
    }
}

/// `system ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
    /// Remove stopped containers, unused images (with -a), anonymous volumes (with
    /// --volumes), and whatever crashed commands left in the store and the kernel.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous volumes.
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Display system-wide information.
    Info {
        /// Format the output using the given Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
}

/// Removes every stopped container; returns the bytes freed.
fn prune_containers(root: &Path) -> Result<(u64, Vec<String>), Error> {
    let mut freed = 0;
    let mut ids = Vec::new();
    for c in containers::list(root)? {
        let state = c.live_state()?;
        if matches!(state.status, Status::Running | Status::Paused) {
            continue;
        }
        let size = ch05_image_pull::store::dir_size(&c.path("upper")).unwrap_or(0);
        let _guard = c.lock_state()?;
        // Its anonymous volumes stay, as docker's prune leaves them (`volume prune` or
        // `system prune --volumes` takes them). One started since we looked is skipped.
        match crate::space::with_room(root, || containers::remove(root, &c, false)) {
            // Started since we looked, or removed by a concurrent `rm`.
            Err(Error::Conflict(_) | Error::NoSuchContainer(_)) => continue,
            r => r?,
        }
        freed += size;
        ids.push(c.id().to_string());
    }
    Ok((freed, ids))
}

/// Removes the dangling images (no name) no container uses, and with `all` every image no
/// container uses; returns the bytes freed and what docker's `image prune` lists.
fn prune_images(root: &Path, all: bool) -> Result<(u64, Vec<String>), Error> {
    let store = crate::store(root)?;
    let used: Vec<String> = containers::list(root)?
        .into_iter()
        .map(|c| c.config.image_id)
        .collect();
    let mut freed = 0;
    let mut lines = Vec::new();
    for (name, image) in store.list()? {
        if used.contains(&image.id().to_string()) || !(all || name.is_empty()) {
            continue;
        }
        // A dangling image goes by its ID, a named one name by name.
        let target = if name.is_empty() {
            image.id().to_string()
        } else {
            name
        };
        let removed = crate::space::with_room(root, || Ok(store.remove(&target)?))?;
        for u in removed.untagged {
            let shown = Reference::parse(&u).map_or(u, |r| r.familiar());
            lines.push(format!("untagged: {shown}"));
        }
        for d in removed.gc.blobs {
            lines.push(format!("deleted: {d}"));
        }
        freed += removed.gc.bytes;
    }
    freed += store.gc()?.bytes;
    Ok((freed, lines))
}

/// Cgroups under `mini-docker/` that this store's containers left: those named after a
/// container of this store that is not running, or after a record a crash left half
/// removed. Cgroups with other names may belong to another store (`--root`) or to a
/// `ch02-cgroups` run, and are left alone.
fn orphan_cgroups(
    root: &Path,
    debris: &[std::path::PathBuf],
) -> Vec<(String, Vec<ch02_cgroups::cgroup::Dir>)> {
    let mut ours: Vec<String> = containers::list(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.live_state()
                .is_ok_and(|s| !matches!(s.status, Status::Running | Status::Paused))
        })
        .map(|c| c.id().to_string())
        .collect();
    for d in debris {
        let name = d
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        ours.push(name.trim_start_matches(".removing-").to_string());
    }
    let Ok(layout) = ch02_cgroups::Layout::detect() else {
        return Vec::new();
    };
    ch02_cgroups::cgroup::list(&layout)
        .into_iter()
        .filter(|(name, _)| ours.contains(name))
        .collect()
}

/// docker's RECLAIMABLE cell: what no container needs, with its share of the total
/// (`1.986MB (100%)`), the share left out when the total is zero.
fn reclaimable(total: u64, used: u64) -> String {
    let free = total.saturating_sub(used);
    match (free * 100).checked_div(total) {
        Some(share) => format!("{} ({share}%)", human_size(free)),
        None => human_size(free),
    }
}

/// `container prune`.
pub fn container_prune(cli: &Cli) -> Result<i32, Error> {
    let (freed, ids) = prune_containers(&cli.root)?;
    print_prune(&[("Containers", ids)], freed);
    Ok(0)
}

/// `image prune [-a]`. With `-a` the build cache goes too: its layers are images that no
/// name uses (chapter 6 pins them until then).
pub fn image_prune(cli: &Cli, all: bool) -> Result<i32, Error> {
    let cache = if all {
        ch06_dockerfile::build::prune(&crate::store(&cli.root)?)?
    } else {
        0
    };
    let (freed, lines) = prune_images(&cli.root, all)?;
    print_prune(&[("Images", lines)], freed + cache);
    Ok(0)
}

/// `system ...`: one function per subcommand.
pub fn system(cli: &Cli, cmd: &SystemCommand) -> Result<i32, Error> {
    match cmd {
        SystemCommand::Info { format } => info(cli, format.as_deref()),
        SystemCommand::Df => df(&cli.root),
        SystemCommand::Prune {
            all,
            volumes,
            force: _,
        } => prune(&cli.root, *all, *volumes),
    }
}

/// One size with how much of it is in use: a row of `system df`.
struct Usage {
    count: usize,
    active: usize,
    size: u64,
    used: u64,
}

impl Usage {
    /// The row as docker prints it: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE.
    fn row(&self, kind: &str) -> Vec<String> {
        vec![
            kind.into(),
            self.count.to_string(),
            self.active.to_string(),
            human_size(self.size),
            reclaimable(self.size, self.used),
        ]
    }
}

/// `system df`: images, containers and volumes, each with what is in use and what is not.
fn df(root: &Path) -> Result<i32, Error> {
    let store = crate::store(root)?;
    let images = store.list()?;
    let all = containers::list(root)?;
    let rows = vec![
        image_usage(&images, &all).row("Images"),
        container_usage(&all).row("Containers"),
        volume_usage(root)?.row("Local Volumes"),
        {
            // Chapter 6's cache: nothing builds now, so none of it is in use.
            let (count, size) = ch06_dockerfile::build::cache_usage(&store);
            Usage {
                count,
                active: 0,
                size,
                used: 0,
            }
            .row("Build Cache")
        },
    ];
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}

/// Images count once however many names they have; one a container uses is active.
fn image_usage(images: &[(String, ch05_image_pull::Image)], all: &[Container]) -> Usage {
    let used: Vec<String> = all.iter().map(|c| c.config.image_id.clone()).collect();
    // One size per image, however many names it has.
    let mut sizes: std::collections::BTreeMap<String, u64> = Default::default();
    for (_, i) in images {
        sizes.insert(i.id().to_string(), i.size);
    }
    Usage {
        count: sizes.len(),
        active: sizes.keys().filter(|i| used.contains(i)).count(),
        size: sizes.values().sum(),
        used: sizes
            .iter()
            .filter(|(id, _)| used.contains(id))
            .map(|(_, s)| s)
            .sum(),
    }
}

/// A container's size is its upper directory; a running (or paused) one's is in use.
fn container_usage(all: &[Container]) -> Usage {
    let running = all.iter().filter(|c| is_running(c)).count();
    let mut size = 0;
    let mut used = 0;
    for c in all {
        let upper = ch05_image_pull::store::dir_size(&c.path("upper")).unwrap_or(0);
        size += upper;
        if is_running(c) {
            used += upper;
        }
    }
    Usage {
        count: all.len(),
        active: running,
        size,
        used,
    }
}

/// Whether the container runs now: paused counts, as its processes still exist.
fn is_running(c: &Container) -> bool {
    c.live_state()
        .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused))
}

/// A volume any container mounts is active, whether or not that container runs.
fn volume_usage(root: &Path) -> Result<Usage, Error> {
    let vols = volumes::list(root)?;
    let size: u64 = vols
        .iter()
        .map(|v| ch05_image_pull::store::dir_size(&v.mountpoint).unwrap_or(0))
        .sum();
    let mut active = 0;
    let mut used = 0;
    for v in &vols {
        if containers::volume_users(root, &v.name).is_ok_and(|u| !u.is_empty()) {
            active += 1;
            used += ch05_image_pull::store::dir_size(&v.mountpoint).unwrap_or(0);
        }
    }
    Ok(Usage {
        count: vols.len(),
        active,
        size,
        used,
    })
}

/// `system prune [-a] [--volumes]`: what crashes left first, then containers, since
/// removing them frees the volumes and images they used.
fn prune(root: &Path, all: bool, prune_volumes: bool) -> Result<i32, Error> {
    // Reconcile first: containers whose monitor died, their cgroups, half-written
    // records, and the cgroups they left.
    remove_debris(root);
    let (mut freed, ids) = prune_containers(root)?;
    // Addresses the dead held, and the user networks nobody is on (chapter 7).
    let networks = crate::space::with_room(root, || super::network::prune(root))?;
    let mut names = Vec::new();
    if prune_volumes {
        let (bytes, gone) = volumes::prune(root, false, |v| {
            containers::volume_users(root, v).map(|u| !u.is_empty())
        })?;
        freed += bytes;
        names = gone;
    }
    // docker's system prune takes the build cache too.
    freed += ch06_dockerfile::build::prune(&crate::store(root)?)?;
    let (bytes, images) = prune_images(root, all)?;
    freed += bytes;
    print_prune(
        &[
            ("Containers", ids),
            ("Networks", networks),
            ("Volumes", names),
            ("Images", images),
        ],
        freed,
    );
    crate::space::keep_ballast(root);
    Ok(0)
}

/// Removes the cgroups and half-removed records that crashed commands left: the cgroups
/// first, while the half-removed records that name them are still there to say they are
/// this store's.
fn remove_debris(root: &Path) {
    let debris = containers::debris(root);
    let sys = Kernel::new(false);
    for (name, dirs) in orphan_cgroups(root, &debris) {
        let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path.clone()).collect();
        let cgroup = ch02_cgroups::CgroupHandle::open(&sys as &dyn ch01_namespaces::Sys, dirs);
        match cgroup.remove() {
            Ok(()) => {
                for p in paths {
                    println!("removed a cgroup left behind: {} ({name})", p.display());
                }
            }
            Err(e) => eprintln!("could not remove the cgroup left behind by {name}: {e}"),
        }
    }
    for d in debris {
        let _ = std::fs::remove_dir_all(&d);
    }
}

fn check(ok: bool, what: &str, why: &str) -> String {
    format!(
        "  [{}] {what}{}\n",
        if ok { "ok" } else { "!!" },
        if ok {
            String::new()
        } else {
            format!(": {why}")
        }
    )
}

/// `info`: docker's sections filled with mini-docker's truth, then a preflight of what
/// the host supports; with `-f`, a template over docker's `types.Info` keys.
pub fn info(cli: &Cli, format: Option<&str>) -> Result<i32, Error> {
    let layout = ch02_cgroups::Layout::detect().ok();
    let uname = nix::sys::utsname::uname().ok();
    let v = info_json(cli, layout.as_ref(), uname.as_ref());
    if let Some(f) = format {
        print!("{}", render_one(f, &v)?);
        return Ok(0);
    }
    let mut out = describe_info(&v);
    out.push_str("Preflight:\n");
    out.push_str(&check_host_support(layout.as_ref()));
    out.push_str(&check_kernel_release(uname.as_ref()));
    print!("{out}");
    Ok(0)
}

/// `-f` over one value, as `inspect -f` does (a newline after it).
fn render_one(format: &str, v: &serde_json::Value) -> Result<String, Error> {
    let format = crate::format::Format::parse(Some(format))?;
    Ok(format
        .render(std::slice::from_ref(v), &[])?
        .unwrap_or_default())
}

/// Go's names for this machine (`GOARCH`): what docker's `Arch` says.
fn go_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" => "386",
        other => other,
    }
}

/// The client's part, shared by `version` and `info` (mini-docker is both).
fn client_json(uname: Option<&nix::sys::utsname::UtsName>) -> serde_json::Value {
    let machine = uname.map_or(String::new(), |u| {
        u.machine().to_string_lossy().into_owned()
    });
    serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "",
        "GitCommit": "",
        // The toolchain it needs (the workspace's rust-version): no Go here.
        "GoVersion": format!("Rust {}+", env!("CARGO_PKG_RUST_VERSION")),
        "Os": "linux",
        "Arch": go_arch(&machine),
        "BuildTime": "",
        "Context": "default",
    })
}

/// docker's `types.Info`, key for key where mini-docker has the thing, with docker's
/// empty values where it has not (no swarm, no plugins but its own drivers).
fn info_json(
    cli: &Cli,
    layout: Option<&ch02_cgroups::Layout>,
    uname: Option<&nix::sys::utsname::UtsName>,
) -> serde_json::Value {
    use ch02_cgroups::Controller as C;
    let root = cli.root.as_path();
    let all = containers::list(root).unwrap_or_default();
    let states: Vec<Status> = all
        .iter()
        .filter_map(|c| c.live_state().ok())
        .map(|s| s.status)
        .collect();
    let count = |st: Status| states.iter().filter(|s| **s == st).count();
    let images = crate::store(root)
        .and_then(|s| Ok(s.list()?))
        .map(|l| l.len())
        .unwrap_or(0);
    let has = |c: C| layout.and_then(|l| l.locate(c)).is_some();
    let cgroup_version = match layout.and_then(|l| l.mode()) {
        Some(ch02_cgroups::Mode::Unified) => "2",
        Some(_) => "1",
        None => "",
    };
    let text = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let os = text("/etc/os-release");
    let os_field = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    };
    let mem_total = text("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let nfd = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let mut security = vec!["name=seccomp,profile=default".to_string()];
    if cli.userns_remap.is_some() {
        security.push("name=userns".into());
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    serde_json::json!({
        "ID": "",
        "Containers": all.len(),
        "ContainersRunning": count(Status::Running),
        "ContainersPaused": count(Status::Paused),
        "ContainersStopped": count(Status::Exited) + count(Status::Created),
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": null,
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": has(C::Memory),
        "SwapLimit": has(C::Memory),
        "KernelMemory": false,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": has(C::Cpu),
        "CpuCfsQuota": has(C::Cpu),
        "CPUShares": has(C::Cpu),
        "CPUSet": has(C::Cpuset),
        "PidsLimit": has(C::Pids),
        "IPv4Forwarding": text("/proc/sys/net/ipv4/ip_forward").trim() == "1",
        "Debug": false,
        "NFd": nfd,
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": crate::record::now(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": uname.map_or(String::new(), |u| u.release().to_string_lossy().into_owned()),
        "OperatingSystem": os_field("PRETTY_NAME"),
        "OSVersion": os_field("VERSION_ID"),
        "OSType": "linux",
        "Architecture": uname.map_or(String::new(), |u| u.machine().to_string_lossy().into_owned()),
        "IndexServerAddress": "https://index.docker.io/v1/",
        // Chapter 5 speaks plain HTTP to loopback registries only, as dockerd's default.
        "RegistryConfig": {
            "IndexConfigs": {},
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "Mirrors": [],
        },
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total,
        "GenericResources": null,
        "DockerRootDir": root,
        "HttpProxy": env("HTTP_PROXY"),
        "HttpsProxy": env("HTTPS_PROXY"),
        "NoProxy": env("NO_PROXY"),
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        // No runtime below it: mini-docker itself clones the container (chapters 1 to 3).
        "Runtimes": {"mini-docker": {"path": exe}},
        "DefaultRuntime": "mini-docker",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": security,
        "Warnings": null,
        "ClientInfo": client_json(uname),
    })
}

/// `info`'s text: docker's sections and wording.
fn describe_info(v: &serde_json::Value) -> String {
    let s = |k: &str| match &v[k] {
        serde_json::Value::String(x) => x.clone(),
        other => other.to_string(),
    };
    let join = |x: &serde_json::Value| {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        v["ClientInfo"]["Version"].as_str().unwrap_or_default()
    );
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n",
        s("Containers"),
        s("ContainersRunning"),
        s("ContainersPaused"),
        s("ContainersStopped"),
        s("Images")
    ));
    out.push_str(&format!(
        " Server Version: {}\n Storage Driver: {} (overlayfs, mounted inside each container's mount namespace)\n Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        s("ServerVersion"),
        s("Driver"),
        s("LoggingDriver"),
        s("CgroupDriver"),
        s("CgroupVersion")
    ));
    out.push_str(&format!(
        " Plugins:\n  Volume: {}\n  Network: {}\n  Log: {}\n Swarm: inactive\n",
        join(&v["Plugins"]["Volume"]),
        join(&v["Plugins"]["Network"]),
        join(&v["Plugins"]["Log"])
    ));
    out.push_str(&format!(
        " Runtimes: {}\n Default Runtime: {}\n Security Options:\n",
        v["Runtimes"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        s("DefaultRuntime")
    ));
    for opt in v["SecurityOptions"].as_array().into_iter().flatten() {
        let mut parts = opt.as_str().unwrap_or_default().split(',');
        if let Some(name) = parts.next() {
            out.push_str(&format!("  {}\n", name.trim_start_matches("name=")));
        }
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                let mut k = k.to_string();
                k[..1].make_ascii_uppercase();
                out.push_str(&format!("   {k}: {val}\n"));
            }
        }
    }
    let mem = v["MemTotal"].as_u64().unwrap_or(0);
    out.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n",
        s("KernelVersion"),
        s("OperatingSystem"),
        s("OSType"),
        s("Architecture"),
        s("NCPU"),
        crate::format::binary_size(mem),
        s("Name")
    ));
    out.push_str(&format!(
        " Docker Root Dir: {}\n Debug Mode: false\n Experimental: false\n Insecure Registries:\n{} Live Restore Enabled: false\n\n",
        s("DockerRootDir"),
        v["RegistryConfig"]["InsecureRegistryCIDRs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("  {}\n", c.as_str().unwrap_or_default()))
            .collect::<String>()
    ));
    out
}

/// The preflight's first checks: what namespaces, mounts and cgroups need from this
/// process and this host, each named with what fails without it.
fn check_host_support(layout: Option<&ch02_cgroups::Layout>) -> String {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let has = |c: ch02_cgroups::Controller| layout.and_then(|l| l.locate(c)).is_some();
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1)
        > 0;
    [
        check(
            nix::unistd::geteuid().is_root(),
            "running as root",
            "namespaces, mounts and cgroups need root",
        ),
        check(
            filesystems.contains("overlay"),
            "overlayfs",
            "modprobe overlay",
        ),
        check(
            has(ch02_cgroups::Controller::Memory),
            "memory controller",
            "no cgroup hierarchy has it: --memory will fail",
        ),
        check(
            has(ch02_cgroups::Controller::Pids),
            "pids controller",
            "no cgroup hierarchy has it: --pids-limit will fail",
        ),
        check(userns, "user namespaces", "user.max_user_namespaces is 0"),
    ]
    .concat()
}

/// The preflight's last checks: system calls and mount options that came with a kernel
/// release, told from uname's release (`6.1.0-18-amd64` is 6.1).
fn check_kernel_release(uname: Option<&nix::sys::utsname::UtsName>) -> String {
    let release = uname
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let version: Vec<u32> = release
        .split(['.', '-'])
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect();
    let at_least =
        |maj: u32, min: u32| version.len() == 2 && (version[0], version[1]) >= (maj, min);
    [
        check(
            at_least(5, 6),
            "openat2 (RESOLVE_IN_ROOT) for safe extraction, Linux 5.6",
            "layers cannot be extracted safely",
        ),
        check(
            at_least(6, 8),
            "overlayfs lowerdir+ (Linux 6.8)",
            "deep images fall back to mount(2)'s one-page option string",
        ),
    ]
    .concat()
}

/// `version`: docker's Client and Server sections. mini-docker is both: no daemon
/// answers, so the "server" is this binary, and its components are the chapters.
pub fn version(format: Option<&str>) -> Result<i32, Error> {
    let uname = nix::sys::utsname::uname().ok();
    let client = client_json(uname.as_ref());
    let kernel = uname.as_ref().map_or(String::new(), |u| {
        u.release().to_string_lossy().into_owned()
    });
    let mut server = client.clone();
    let obj = server.as_object_mut().expect("object");
    obj.remove("Context");
    obj.insert("MinAPIVersion".into(), serde_json::json!(""));
    obj.insert("KernelVersion".into(), serde_json::json!(kernel));
    obj.insert(
        "Platform".into(),
        serde_json::json!({"Name": "mini-docker (daemonless: a monitor per container)"}),
    );
    obj.insert(
        "Components".into(),
        serde_json::json!([{
            "Name": "Engine",
            "Version": env!("CARGO_PKG_VERSION"),
            "Details": {
                "ApiVersion": "",
                "Arch": client["Arch"],
                "BuildTime": "",
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": client["GoVersion"],
                "KernelVersion": kernel,
                "MinAPIVersion": "",
                "Os": "linux",
            },
        }]),
    );
    let v = serde_json::json!({"Client": client, "Server": server});
    if let Some(f) = format {
        print!("{}", render_one(f, &v)?);
        return Ok(0);
    }
    let c = &v["Client"];
    let t = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    println!("Client: mini-docker");
    println!(" Version:           {}", t(&c["Version"]));
    println!(
        " Built with:        {} (the workshop's chapters 1 to 7)",
        t(&c["GoVersion"])
    );
    println!(" OS/Arch:           {}/{}", t(&c["Os"]), t(&c["Arch"]));
    println!(" Context:           default");
    println!();
    println!("Server: {}", t(&v["Server"]["Platform"]["Name"]));
    println!(" Engine:");
    println!("  Version:          {}", t(&c["Version"]));
    println!("  OS/Arch:          {}/{}", t(&c["Os"]), t(&c["Arch"]));
    println!("  Kernel Version:   {kernel}");
    Ok(0)
}
