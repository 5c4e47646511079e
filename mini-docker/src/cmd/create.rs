//! `mini-docker create`: a container's record from an image and docker's flags, pulling the
//! image first if it is missing (as the seed's walkthrough of `docker run` says).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ch04_unionfs_layers::init::InitLayer;
use clap::Args;

use crate::record::{Config, Container, HostConfig, IdMaps, MountSpec, MountType, now};
use crate::{Cli, Error, containers, volumes};

/// docker's resource-limit flags, as `run`, `create` and `update` spell them.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitFlags {
    /// Memory limit.
    #[arg(short, long, value_parser = ch02_cgroups::parse_bytes, value_name = "BYTES")]
    pub memory: Option<u64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

/// docker's finer cgroup knobs that `run`, `create` and `update` share (chapter 2's
/// `Tuning`).
#[derive(Debug, Clone, Default, Args)]
pub struct CpuMemFlags {
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, value_name = "int")]
    pub cpu_shares: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long, value_name = "int")]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Memory soft limit.
    #[arg(long, value_parser = ch02_cgroups::parse_bytes, value_name = "bytes")]
    pub memory_reservation: Option<u64>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "string")]
    pub cpuset_mems: Option<String>,
}

impl CpuMemFlags {
    /// Whether any is given.
    pub fn any(&self) -> bool {
        self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.memory_reservation.is_some()
            || self.cpuset_mems.is_some()
    }

    /// Writes the given ones into `h` (what `update` changes, and `create` sets).
    pub fn apply_to(&self, h: &mut HostConfig) {
        if let Some(v) = self.cpu_shares {
            h.cpu_shares = v;
        }
        if let Some(v) = self.cpu_period {
            h.cpu_period = v;
        }
        if let Some(v) = self.cpu_quota {
            h.cpu_quota = v;
        }
        if let Some(v) = self.memory_reservation {
            h.memory_reservation = v;
        }
        if let Some(v) = &self.cpuset_mems {
            h.cpuset_mems = v.clone();
        }
    }
}

/// `run`'s and `create`'s finer knobs: the shared ones, swap and OOM behaviour, and
/// `/dev/shm`'s size and the namespaced sysctls.
#[derive(Debug, Clone, Default, Args)]
pub struct TuningFlags {
    /// The knobs `update` has too.
    #[command(flatten)]
    pub cpu_mem: CpuMemFlags,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Size of /dev/shm.
    #[arg(long, value_parser = ch02_cgroups::parse_bytes, value_name = "bytes")]
    pub shm_size: Option<u64>,
    /// Sysctl options (KEY=VALUE; the namespaced ones).
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
}

/// `--sysctl KEY=VALUE`: only what the container's own namespaces hold (docker's
/// `ValidateSysctl`): IPC's `kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`, and
/// with a network of its own, `net.*`.
fn sysctls(flags: &[String], network: &str) -> Result<BTreeMap<String, String>, Error> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out = BTreeMap::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "invalid argument {f:?} for \"--sysctl\" flag: sysctl '{f}' is not whitelisted"
            ))
        })?;
        let allowed = ipc.contains(&k)
            || k.starts_with("fs.mqueue.")
            || (k.starts_with("net.") && network != "host");
        if !allowed || k.contains('/') || k.contains("..") {
            return Err(Error::Usage(format!(
                "invalid argument {f:?} for \"--sysctl\" flag: sysctl '{f}' is not whitelisted"
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Everything that describes a container: `run`'s and `create`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ContainerArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Container NIS domain name.
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long, value_name = "int")]
    pub stop_timeout: Option<u64>,
    /// Add additional groups to join.
    #[arg(long, value_name = "list")]
    pub group_add: Vec<String>,
    /// Ulimit options (NAME=SOFT[:HARD], e.g. nofile=1024:2048).
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw]).
    #[arg(long, value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Write the container ID to the file.
    #[arg(long, value_name = "string")]
    pub cidfile: Option<PathBuf>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set meta data on a container (KEY=VALUE, or KEY for an empty value).
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Logging driver for the container (json-file, the only one here).
    #[arg(long, value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options: max-size (e.g. 10m) and max-file (default 20m and 5).
    #[arg(long, value_name = "list")]
    pub log_opt: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a volume: NAME:/path, /host:/path, or /path (anonymous), with :ro.
    #[arg(short, long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=,target=,readonly.
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory: PATH[:ro|rw].
    #[arg(long, value_name = "PATH")]
    pub tmpfs: Vec<String>,
    /// PID namespace to use: host, or container:NAME.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use: private, host, or container:NAME.
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use (only host: docker shares no UTS namespace between containers).
    #[arg(long)]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private): host shows the container its cgroup's
    /// path on the host, private shows it as `/`. Default: private on a cgroup v2 host,
    /// host on v1, as dockerd's default-cgroupns-mode.
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Resource limits (also `update`'s flags).
    #[command(flatten)]
    pub limits: LimitFlags,
    /// docker's finer cgroup knobs.
    #[command(flatten)]
    pub tuning: TuningFlags,
    /// Block I/O rates (chapter 2's flags).
    #[command(flatten)]
    pub devices: ch02_cgroups::cli::DeviceRateArgs,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long, value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long, value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// User namespace to use: host (no remapping under --userns-remap).
    #[arg(long)]
    pub userns: Option<String>,
    /// Add a host device to the container: HOST[:CONTAINER[:rwm]].
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Security Options (no-new-privileges, seccomp=unconfined|PROFILE.json).
    #[arg(long, value_name = "list")]
    pub security_opt: Vec<String>,
    /// Connect a container to a network: bridge (the default), a user network's name,
    /// none or host (chapter 7).
    #[arg(long, alias = "net", default_value = "default")]
    pub network: String,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Publish a container's port(s) to the host: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long, value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running: always, missing or never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// The image, then the command and its arguments. One list: as docker's CLI, nothing
    /// after the image is a flag of ours (`run --entrypoint ls busybox -l` gives `-l` to
    /// ls), which clap does only from the first value of a trailing list on.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub image_and_command: Vec<String>,
}

impl ContainerArgs {
    /// The image as given.
    pub fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    /// The command and its arguments after it.
    pub fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

/// `create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The container.
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// `mini-docker create`: prints the new container's id.
pub fn main(cli: &Cli, args: &CreateArgs) -> Result<i32, Error> {
    // `create --rm` is started later, by anyone: no claim to keep.
    let (c, _starting) = create(cli, &args.container)?;
    write_cidfile(&args.container, &c)?;
    println!("{}", c.id());
    Ok(0)
}

/// `--cidfile`: the new container's ID, written once it exists (`run` and `create`).
pub fn write_cidfile(args: &ContainerArgs, c: &Container) -> Result<(), Error> {
    if let Some(path) = &args.cidfile {
        std::fs::write(path, c.id())
            .map_err(|e| Error::io("write the container ID to", path, e))?;
    }
    Ok(())
}

/// The program and arguments, by docker's rules: ENTRYPOINT + CMD, where arguments given
/// after the image replace CMD, and `--entrypoint` replaces ENTRYPOINT and drops the
/// image's CMD. The shell form `CMD echo hi` arrives as `["/bin/sh", "-c", "echo hi"]`.
pub fn command_line(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint: Option<&str>,
    args: &[String],
) -> Result<(Vec<String>, Vec<String>), Error> {
    let entry: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => image_entrypoint.to_vec(),
    };
    let cmd: Vec<String> = if !args.is_empty() {
        args.to_vec()
    } else if entrypoint.is_some() {
        Vec::new()
    } else {
        image_cmd.to_vec()
    };
    if entry.is_empty() && cmd.is_empty() {
        return Err(Error::Usage("no command specified".into()));
    }
    Ok((entry, cmd))
}

/// Merges environments: the image's, then `--env-file`s, then `-e`s, a later `KEY=` replacing
/// an earlier one. `-e KEY` (no `=`) takes KEY from this process's environment.
pub fn environment(image: &[String], files: &[String], flags: &[String]) -> Vec<String> {
    let key = |kv: &str| kv.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let k = key(&kv);
        out.retain(|e| key(e) != k);
        out.push(kv);
    };
    for kv in files {
        set(kv.clone());
    }
    for kv in flags {
        if kv.contains('=') {
            set(kv.clone());
        } else if let Ok(v) = std::env::var(kv) {
            set(format!("{kv}={v}"));
        }
    }
    // The image's variables come after the user's, where the user did not set them
    // (moby's `merge` in daemon/commit.go): `Config.Env` reads `[A=1 PATH=…]`.
    for kv in image {
        if !out.iter().any(|e| key(e) == key(kv)) {
            out.push(kv.clone());
        }
    }
    out
}

/// One `-v` spec: `/host:/ctr`, `name:/ctr` or `/ctr`, with `:ro` or `:rw`.
pub fn parse_volume(spec: &str) -> Result<MountSpec, Error> {
    let parts: Vec<&str> = spec.split(':').collect();
    // docker's CLI (cli/compose/loader's ParseVolume) refuses `:/x` and `/a::ro`.
    if parts.len() > 1 && parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Usage(format!(
            "invalid spec: {spec}: empty section between colons"
        )));
    }
    let bad = |why: &str| Error::Usage(format!("invalid volume specification: {spec:?}: {why}"));
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, "rw"),
        [s, d] if d.starts_with('/') => (*s, *d, "rw"),
        [d, m] if d.starts_with('/') => ("", *d, *m),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad("expected [SOURCE:]DESTINATION[:OPTIONS]")),
    };
    if !dest.starts_with('/') {
        return Err(bad("the destination must be an absolute path"));
    }
    let mut read_only = false;
    let mut no_copy = false;
    for option in mode.split(',') {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => no_copy = true,
            // Propagation, SELinux labels and macOS consistency hints change nothing here.
            "z" | "Z" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared"
            | "consistent" | "cached" | "delegated" => {}
            other => return Err(bad(&format!("unknown option {other:?}"))),
        }
    }
    // A source starting with `.` is a host path relative to where the command runs, made
    // absolute as docker's CLI makes it (23.0 and later; 20.10 refused it as a volume name).
    let source = if source.starts_with('.') {
        absolute_clean(source)?
    } else {
        source.to_string()
    };
    let kind = if source.is_empty() || !source.starts_with('/') {
        MountType::Volume
    } else {
        MountType::Bind
    };
    Ok(MountSpec {
        kind,
        source,
        destination: dest.into(),
        read_only,
        no_copy: no_copy && kind == MountType::Volume,
    })
}

/// `path` against the working directory, with `.` and `..` taken out (Go's filepath.Abs,
/// which cleans: `./a/../b` is `CWD/b`). Lexical, as Go's is: no symlink is followed.
fn absolute_clean(path: &str) -> Result<String, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::io("find the working directory for", Path::new(path), e))?;
    let mut out = PathBuf::from("/");
    for part in cwd.join(path).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    Ok(out.display().to_string())
}

/// One `--mount` spec: `type=bind|volume|tmpfs,source=...,target=...,readonly`.
pub fn parse_mount(spec: &str) -> Result<MountSpec, Error> {
    let mut m = MountSpec {
        kind: MountType::Volume,
        source: String::new(),
        destination: String::new(),
        read_only: false,
        no_copy: false,
    };
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        match k {
            "type" => m.kind = v.parse()?,
            "source" | "src" => m.source = v.into(),
            "target" | "destination" | "dst" => m.destination = v.into(),
            "readonly" | "ro" => m.read_only = v == "true" || v == "1",
            "volume-nocopy" => m.no_copy = v == "true" || v == "1",
            other => {
                return Err(Error::Usage(format!(
                    "invalid field {other:?} in mount {spec:?}"
                )));
            }
        }
    }
    if !m.destination.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid mount {spec:?}: target must be an absolute path"
        )));
    }
    if m.kind == MountType::Bind && !Path::new(&m.source).exists() {
        return Err(Error::Usage(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            m.source
        )));
    }
    Ok(m)
}

fn read_env_file(path: &Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Creates the container `args` describe; the image is pulled if missing.
pub fn create(cli: &Cli, args: &ContainerArgs) -> Result<(Container, containers::Starting), Error> {
    let root = cli.root.as_path();
    let lookup = crate::timings::span("lookup");
    let image =
        super::images::ensure_image(cli, args.image(), args.platform.as_deref(), &args.pull)?;
    drop(lookup);
    let _record = crate::timings::span("create");
    let img = ImageDefaults::of(&image);
    let (entrypoint, cmd) = command_line(
        &img.entrypoint,
        &img.cmd,
        args.entrypoint.as_deref(),
        args.command(),
    )?;
    let mut argv = entrypoint.clone();
    argv.extend(cmd.iter().cloned());
    let id = containers::new_id();
    let name = container_name(args.name.as_deref(), &id)?;
    let files = read_env_files(&args.env_file)?;
    // docker's CLI check: a variable needs a name.
    if let Some(bad) = args.env.iter().find(|e| e.starts_with('=')) {
        return Err(Error::Usage(format!(
            "invalid argument {bad:?} for \"-e, --env\" flag: invalid environment variable: {bad}"
        )));
    }
    let env = environment(&img.env, &files, &args.env);
    let mut mounts = collect_mounts(args, &img.volumes)?;
    // Another container's volumes first, so this one's own -v on the same path wins.
    let mut from = volumes_from(root, &args.volumes_from)?;
    from.retain(|f| !mounts.iter().any(|m| m.destination == f.destination));
    // Shared with their container: neither anonymous here nor filled again.
    mounts.extend(from.into_iter().map(|mut m| {
        m.no_copy = true;
        m
    }));
    if let Some(path) = &args.cidfile
        && path.exists()
    {
        return Err(Error::Usage(format!(
            "Container ID file found, make sure the other container isn't running or delete {}",
            path.display()
        )));
    }
    let extra_hosts = parse_extra_hosts(root, &args.add_host)?;
    // docker: the container's ID, or with the host's network, the host's name.
    let hostname = args.hostname.clone().unwrap_or_else(|| {
        if args.network == "host" {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| id[..12].to_string())
        } else {
            id[..12].to_string()
        }
    });
    let host = host_config(args)?;
    // docker's refusals: the default bridge takes neither a fixed address nor aliases.
    if matches!(host.network_mode.as_str(), "default" | "bridge") {
        if args.ip.is_some() {
            return Err(Error::Usage(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !args.network_alias.is_empty() {
            return Err(Error::Usage(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
    }
    // Refuse what cannot work before anything is written: the volumes come after this.
    crate::runtime::namespaces(root, &host)?;
    crate::security::capabilities(&host)?;
    let id_maps = match (&cli.userns_remap, host.userns_mode.as_str()) {
        (Some(spec), "") => {
            crate::security::check_userns(&host)?;
            Some(crate::security::userns_remap(spec)?)
        }
        (_, "" | "host") => None,
        (_, other) => {
            return Err(Error::Usage(format!(
                "invalid --userns: {other:?} (only \"host\" is valid)"
            )));
        }
    };
    let anonymous = prepare_mount_sources(root, &mut mounts, id_maps)?;
    let config = Config {
        id: id.clone(),
        name,
        created: now(),
        image: args.image().to_string(),
        image_id: image.id().to_string(),
        image_manifest: image.manifest_digest.to_string(),
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        entrypoint,
        cmd,
        env,
        working_dir: args
            .workdir
            .clone()
            .or(img.working_dir)
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: args.user.clone().or(img.user).unwrap_or_default(),
        hostname: hostname.clone(),
        tty: args.tty,
        open_stdin: args.interactive,
        stop_signal: args
            .stop_signal
            .clone()
            .or(img.stop_signal)
            .unwrap_or_else(|| "SIGTERM".into()),
        mounts,
        anonymous_volumes: anonymous.clone(),
        host,
        id_maps,
        exposed_ports: {
            let mut ports = img.exposed_ports.clone();
            for e in &args.expose {
                for b in ch07_veth_bridge::ports::parse(e).map_err(Error::Usage)? {
                    let p = format!("{}/{}", b.container_port, b.proto);
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
            }
            ports
        },
        network_aliases: args.network_alias.clone(),
        ip: args.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        labels: labels(&img.labels, &args.label_file, &args.label)?,
        domainname: args.domainname.clone().unwrap_or_default(),
        stop_timeout: args.stop_timeout,
    };
    let init = InitLayer {
        hostname,
        hosts: extra_hosts,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
    };
    let (c, starting) = match create_record(root, config, &init, args.name.is_none()) {
        Ok(made) => made,
        // The anonymous volumes were made for this container alone.
        Err(e) => {
            let undo = anonymous
                .iter()
                .try_for_each(|v| volumes::remove(root, v, &[]));
            return Err(e.and_cleanup(undo));
        }
    };
    pin_image(root, c.id(), &image, containers::durability(&c.config))?;
    Ok((c, starting))
}

/// What the image's config gives a container when the flags do not say otherwise.
struct ImageDefaults {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    volumes: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
    exposed_ports: Vec<String>,
    labels: BTreeMap<String, String>,
}

impl ImageDefaults {
    /// Reads them from the image's OCI config (an image without one has none of them).
    fn of(image: &ch05_image_pull::Image) -> ImageDefaults {
        let img = image.config.config().clone().unwrap_or_default();
        ImageDefaults {
            entrypoint: img.entrypoint().clone().unwrap_or_default(),
            cmd: img.cmd().clone().unwrap_or_default(),
            env: img.env().clone().unwrap_or_default(),
            volumes: img
                .volumes()
                .as_ref()
                .map(|v| v.to_vec())
                .unwrap_or_default(),
            working_dir: img.working_dir().clone(),
            user: img.user().clone(),
            stop_signal: img.stop_signal().clone(),
            exposed_ports: img.exposed_ports().clone().unwrap_or_default(),
            labels: img
                .labels()
                .clone()
                .map(|l| l.into_iter().collect())
                .unwrap_or_default(),
        }
    }
}

/// The container's labels: the image's, then `--label-file`'s lines, then `--label`'s,
/// each later one winning (docker's `opts.ReadKVStrings` and the daemon's merge with the
/// image's `Config.Labels`). `KEY` alone is an empty value; `#` lines are comments.
fn labels(
    image: &BTreeMap<String, String>,
    files: &[PathBuf],
    flags: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = image.clone();
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io("read", f, e))?;
        lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    lines.extend(flags.iter().cloned());
    for l in lines {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `--name`, checked against docker's rule for names (a leading `/` is docker's own
/// prefix, dropped), or a generated one.
fn container_name(name: Option<&str>, id: &str) -> Result<String, Error> {
    Ok(match name {
        Some(n) if !crate::record::valid_name(n.trim_start_matches('/')) => {
            return Err(Error::Usage(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        Some(n) => n.trim_start_matches('/').to_string(),
        None => containers::random_name(id),
    })
}

/// Every `--env-file`'s variables, in order, so that `environment` lets later ones win.
pub fn read_env_files(paths: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    for f in paths {
        files.extend(read_env_file(f)?);
    }
    Ok(files)
}

/// The mounts: -v, --mount, and an anonymous volume for each VOLUME of the image that
/// neither covers (docker's rule: the image's VOLUMEs always get a volume).
fn collect_mounts(args: &ContainerArgs, image_volumes: &[String]) -> Result<Vec<MountSpec>, Error> {
    let mut mounts: Vec<MountSpec> = Vec::new();
    for v in &args.volume {
        mounts.push(parse_volume(v)?);
    }
    for m in &args.mount {
        mounts.push(parse_mount(m)?);
    }
    for t in &args.tmpfs {
        mounts.push(parse_tmpfs(t)?);
    }
    for dest in image_volumes {
        if !mounts.iter().any(|m| &m.destination == dest) {
            mounts.push(MountSpec {
                kind: MountType::Volume,
                source: String::new(),
                destination: dest.clone(),
                read_only: false,
                no_copy: false,
            });
        }
    }
    Ok(mounts)
}

/// One `--tmpfs PATH[:ro|rw]`. (docker also takes `size=` and `mode=`; mini-docker's tmpfs
/// mounts have no options yet, and says so rather than ignoring them.)
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec, Error> {
    let (dest, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dest.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid --tmpfs {spec:?}: the path must be absolute"
        )));
    }
    let mut read_only = false;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            other => {
                return Err(Error::Usage(format!(
                    "invalid --tmpfs {spec:?}: option {other:?} is not supported (only ro and rw)"
                )));
            }
        }
    }
    Ok(MountSpec {
        kind: MountType::Tmpfs,
        source: String::new(),
        destination: dest.to_string(),
        read_only,
        no_copy: false,
    })
}

/// Makes what the mounts mount, before the record is written: each volume (an anonymous
/// one gets a new ID as its name; those names are returned) and each missing bind source.
/// Under `--userns-remap` a volume still empty is given to the container's root (`owner`),
/// as dockerd's volumes under its remapped root are; bind sources stay as they are.
fn prepare_mount_sources(
    root: &Path,
    mounts: &mut [MountSpec],
    owner: Option<IdMaps>,
) -> Result<Vec<String>, Error> {
    let mut anonymous = Vec::new();
    let give = |v: &volumes::Volume| -> Result<(), Error> {
        let Some(maps) = owner else { return Ok(()) };
        let dir = &v.mountpoint;
        let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
        if empty {
            std::os::unix::fs::chown(dir, Some(maps.uids.0), Some(maps.gids.0))
                .map_err(|e| Error::io("chown", dir, e))?;
        }
        Ok(())
    };
    for m in mounts {
        match m.kind {
            MountType::Volume if m.source.is_empty() => {
                m.source = containers::new_id();
                give(&volumes::create(root, &m.source, true)?)?;
                anonymous.push(m.source.clone());
            }
            MountType::Volume => {
                give(&volumes::create(root, &m.source, false)?)?;
            }
            // `-v /host:/ctr` makes a missing host directory, as docker's -v does.
            MountType::Bind if !Path::new(&m.source).exists() => {
                std::fs::create_dir_all(&m.source)
                    .map_err(|e| Error::io("create", Path::new(&m.source), e))?;
            }
            _ => {}
        }
    }
    Ok(anonymous)
}

/// `--add-host HOST:IP`s as the init layer's `/etc/hosts` wants them: (ip, host). The IP
/// `host-gateway` is the default bridge's address (docker's `host-gateway-ip`): the host,
/// as a container on the bridge reaches it.
fn parse_extra_hosts(root: &Path, flags: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut extra_hosts = Vec::new();
    for h in flags {
        let Some((host, ip)) = h.split_once(':') else {
            return Err(Error::Usage(format!(
                "invalid argument {h:?} for \"--add-host\" flag: expected host:ip"
            )));
        };
        let ip = if ip == "host-gateway" {
            let store = ch07_veth_bridge::Store::open(root)?;
            let state = store.lock()?;
            state.find(ch07_veth_bridge::DEFAULT_NETWORK)?.gateway
        } else {
            ip.to_string()
        };
        extra_hosts.push((ip, host.to_string()));
    }
    Ok(extra_hosts)
}

/// docker's HostConfig: the limits, namespace modes, network and DNS flags, as `inspect`
/// shows them and `start` applies them.
/// `--uts`: docker takes only `host` (a UTS namespace is never shared with another
/// container; podman's `container:NAME` is not docker's).
fn uts_mode(flag: Option<&str>) -> Result<String, Error> {
    match flag.unwrap_or("") {
        mode @ ("" | "host") => Ok(mode.to_string()),
        _ => Err(Error::Usage("--uts: invalid UTS mode".into())),
    }
}

/// `--cgroupns`, checked as docker's CLI checks it, and the default filled in as dockerd
/// fills it in (its `default-cgroupns-mode`: private where the host is pure cgroup v2, so
/// `/proc/self/cgroup` reads `0::/` inside; host on a v1 or hybrid host).
fn cgroupns_mode(flag: Option<&str>) -> Result<String, Error> {
    match flag.unwrap_or("") {
        "" => {
            let v2 = ch02_cgroups::Layout::detect()
                .is_ok_and(|l| l.mode() == Some(ch02_cgroups::Mode::Unified));
            Ok(if v2 { "private" } else { "host" }.to_string())
        }
        mode @ ("host" | "private") => Ok(mode.to_string()),
        _ => Err(Error::Usage("--cgroupns: invalid CGROUP mode".into())),
    }
}

fn host_config(args: &ContainerArgs) -> Result<HostConfig, Error> {
    // moby's `verifyPlatformContainerResources`: below this the container could not even
    // start its first process (linuxMinMemory, 6 MiB). The daemon's checks, not the CLI's
    // flag parsing: a conflict with its rules (`create` exits 1 on them, as docker's).
    if args
        .limits
        .memory
        .is_some_and(|m| m > 0 && m < 6 * 1024 * 1024)
    {
        return Err(Error::Conflict(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    let memory_swap = args
        .limits
        .memory_swap
        .as_deref()
        .map_or(Ok(0), memory_swap)?;
    // The daemon's checks of the CPUs asked for, with its words.
    let online = online_cpus();
    if let Some(cpus) = args.limits.cpus {
        let n = online.len().max(1);
        if !(0.01..=n as f64).contains(&cpus) {
            return Err(Error::Conflict(format!(
                "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            )));
        }
    }
    if let Some(set) = args.limits.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        let asked = cpu_list(set)
            .map_err(|e| Error::Usage(format!("Invalid value {set} for cpuset cpus: {e}")))?;
        if asked.iter().any(|c| !online.contains(c)) {
            return Err(Error::Conflict(format!(
                "Requested CPUs are not available - requested {set}, available: {}",
                cpu_ranges(&online)
            )));
        }
    }
    let memory = args.limits.memory.unwrap_or(0);
    if memory_swap > 0 && memory == 0 {
        return Err(Error::Conflict(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if memory_swap > 0 && (memory_swap as u64) < memory {
        return Err(Error::Conflict(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    Ok(HostConfig {
        memory: args.limits.memory.unwrap_or(0),
        memory_swap,
        nano_cpus: args.limits.cpus.map_or(0, |c| (c * 1e9) as u64),
        cpuset_cpus: args.limits.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: args
            .limits
            .pids_limit
            .filter(|&p| p > 0)
            .map_or(0, |p| p as u64),
        read_only_rootfs: args.read_only,
        pid_mode: args.pid.clone().unwrap_or_default(),
        ipc_mode: args.ipc.clone().unwrap_or_default(),
        uts_mode: uts_mode(args.uts.as_deref())?,
        cgroupns_mode: cgroupns_mode(args.cgroupns.as_deref())?,
        network_mode: args.network.clone(),
        auto_remove: args.rm,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
        extra_hosts: args.add_host.clone(),
        blkio: blkio(args)?,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        security_opt: crate::security::resolve_files(&args.security_opt)?,
        devices: args
            .device
            .iter()
            .map(|d| crate::security::parse_device(d))
            .collect::<Result<_, _>>()?,
        userns_mode: args.userns.clone().unwrap_or_default(),
        port_specs: {
            // Checked now, so a typo fails at create, not at start.
            for spec in &args.publish {
                ch07_veth_bridge::ports::parse(spec).map_err(Error::Usage)?;
            }
            args.publish.clone()
        },
        publish_all: args.publish_all,
        init: args.init,
        group_add: args.group_add.clone(),
        ulimits: args
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?,
        oom_score_adj: match args.oom_score_adj {
            Some(v) if !(-1000..=1000).contains(&v) => {
                return Err(Error::Usage(format!(
                    "Invalid value {v}, range for oom score adj is [-1000, 1000]"
                )));
            }
            v => v.unwrap_or(0),
        },
        volumes_from: args.volumes_from.clone(),
        cpu_shares: args.tuning.cpu_mem.cpu_shares.unwrap_or(0),
        cpu_period: args.tuning.cpu_mem.cpu_period.unwrap_or(0),
        cpu_quota: args.tuning.cpu_mem.cpu_quota.unwrap_or(0),
        memory_reservation: args.tuning.cpu_mem.memory_reservation.unwrap_or(0),
        memory_swappiness: match args.tuning.memory_swappiness {
            Some(v) if v != -1 && !(0..=100).contains(&v) => {
                return Err(Error::Usage(format!(
                    "invalid value: {v}, valid memory swappiness range is 0-100"
                )));
            }
            v => v.filter(|v| *v >= 0),
        },
        oom_kill_disable: args.tuning.oom_kill_disable,
        cpuset_mems: args.tuning.cpu_mem.cpuset_mems.clone().unwrap_or_default(),
        shm_size: args.tuning.shm_size.unwrap_or(0),
        sysctls: sysctls(&args.tuning.sysctl, &args.network)?,
        log_opts: log_opts(args.log_driver.as_deref(), &args.log_opt)?,
    })
}

/// The image stays in the store while a container uses it: a pin named after the
/// container, which `rm` takes away.
fn pin_image(
    root: &Path,
    id: &str,
    image: &ch05_image_pull::Image,
    durability: ch05_image_pull::store::Durability,
) -> Result<(), Error> {
    let store = crate::store(root)?;
    store.pin(id, &image.manifest_digest, durability)?;
    Ok(())
}

/// The CPUs this host has online (`/sys/devices/system/cpu/online`, `0-1`).
fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| cpu_list(t.trim()).ok())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get()) as u32).collect()
        })
}

/// A cpuset list (`0-3,5`) as the CPUs it names.
fn cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => out.extend(num(a)?..=num(b)?),
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// CPUs as the kernel lists them: `0-1`, `0,2-3`.
fn cpu_ranges(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// `--ulimit NAME=SOFT[:HARD]` (docker's `units.ParseUlimit`): the hard limit is the soft
/// one when not given; the names are setrlimit(2)'s.
pub fn parse_ulimit(spec: &str) -> Result<crate::record::Ulimit, Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "invalid argument {spec:?} for \"--ulimit\" flag: {why}"
        ))
    };
    let (name, values) = spec
        .split_once('=')
        .ok_or_else(|| bad(&format!("invalid ulimit argument: {spec}")))?;
    if crate::sys::rlimit_resource(name).is_none() {
        return Err(bad(&format!("invalid ulimit type: {name}")));
    }
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| bad(&format!("invalid ulimit value: {v}")))
    };
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard {
        return Err(bad(&format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(crate::record::Ulimit {
        name: name.to_string(),
        hard,
        soft,
    })
}

/// `--volumes-from CONTAINER[:ro|rw]`: that container's volumes and bind mounts, read-only
/// with `:ro`, with their own modes otherwise (docker's rule).
fn volumes_from(root: &Path, specs: &[String]) -> Result<Vec<MountSpec>, Error> {
    let mut out = Vec::new();
    for spec in specs {
        let (name, mode) = match spec.rsplit_once(':') {
            Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
            _ => (spec.as_str(), None),
        };
        let other = containers::find(root, name)?;
        for m in other
            .config
            .mounts
            .iter()
            .filter(|m| m.kind != MountType::Tmpfs)
        {
            let mut m = m.clone();
            if let Some(mode) = mode {
                m.read_only = mode == "ro";
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// `--memory-swap`: bytes of memory plus swap, or -1 for unlimited swap.
pub fn memory_swap(text: &str) -> Result<i64, Error> {
    match text {
        "-1" => Ok(-1),
        s => Ok(ch02_cgroups::parse_bytes(s).map_err(Error::Usage)? as i64),
    }
}

/// `--log-driver` and `--log-opt KEY=VALUE` (a bare KEY is KEY with an empty value, as
/// docker's MapOpts reads it), checked now, as docker's daemon checks them at create.
fn log_opts(driver: Option<&str>, opts: &[String]) -> Result<BTreeMap<String, String>, Error> {
    if let Some(d) = driver
        && d != "json-file"
    {
        return Err(Error::Usage(format!(
            "log driver {d:?} is not supported by mini-docker: it writes docker's json-file log"
        )));
    }
    let map: BTreeMap<String, String> = opts
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect();
    crate::logfile::Rotation::from_opts(&map)?;
    Ok(map)
}

/// Creates the record. A generated name that another container has already is drawn
/// again with a digit added, as docker's name generator does; a name the user gave is
/// theirs to change.
fn create_record(
    root: &Path,
    config: Config,
    init: &ch04_unionfs_layers::init::InitLayer,
    generated: bool,
) -> Result<(Container, containers::Starting), Error> {
    // The room `rm` and the monitor need on a full disk, kept while there is room.
    crate::space::keep_ballast(root);
    let mut result = containers::create(root, config.clone(), init);
    for digit in 1..=9 {
        if !generated || !matches!(result, Err(Error::Conflict(_))) {
            break;
        }
        let mut again = config.clone();
        again.name = format!("{}{digit}", config.name);
        result = containers::create(root, again, init);
    }
    result
}

/// `--device-{read,write}-{bps,iops}`: each `DEVICE:RATE` checked now (the device must be a
/// block device), kept by path as docker's HostConfig does, and looked up again at start.
fn blkio(args: &ContainerArgs) -> Result<crate::record::Blkio, Error> {
    let mut out = crate::record::Blkio::default();
    for (path, limit) in args.devices.rates().map_err(Error::Usage)? {
        out.push(limit.rate, path, limit.value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_documents() {
        let run = |ep: &[&str], cmd: &[&str], flag: Option<&str>, args: &[&str]| {
            command_line(&v(ep), &v(cmd), flag, &v(args)).map(|(e, c)| [e, c].concat())
        };
        assert_eq!(run(&[], &["sh"], None, &[]).unwrap(), v(&["sh"]));
        assert_eq!(
            run(&[], &["sh"], None, &["ls", "-l"]).unwrap(),
            v(&["ls", "-l"])
        );
        assert_eq!(
            run(&["/entry"], &["--default"], None, &[]).unwrap(),
            v(&["/entry", "--default"])
        );
        assert_eq!(
            run(&["/entry"], &["--default"], None, &["--mine"]).unwrap(),
            v(&["/entry", "--mine"])
        );
        // --entrypoint drops the image's CMD.
        assert_eq!(
            run(&["/entry"], &["--default"], Some("/other"), &[]).unwrap(),
            v(&["/other"])
        );
        assert_eq!(
            run(&[], &["/bin/sh", "-c", "echo hi"], None, &[]).unwrap(),
            v(&["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(
            run(&[], &[], None, &[]).unwrap_err().to_string(),
            "no command specified"
        );
    }

    #[test]
    fn environment_puts_files_and_flags_first_then_what_the_image_adds() {
        let env = environment(
            &v(&["PATH=/bin", "A=image"]),
            &v(&["A=file", "B=file"]),
            &v(&["B=flag", "C=3"]),
        );
        assert_eq!(env, v(&["A=file", "B=flag", "C=3", "PATH=/bin"]));
    }

    #[test]
    fn volumes_and_mounts_parse_like_dockers() {
        let m = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.destination.as_str(),
                m.read_only
            ),
            ("bind", "/srv/data", "/data", true)
        );
        assert_eq!(
            parse_volume("cache:/var/cache").unwrap().kind,
            MountType::Volume
        );
        let anon = parse_volume("/scratch").unwrap();
        assert_eq!((anon.kind.as_str(), anon.source.as_str()), ("volume", ""));
        assert!(parse_volume("cache:relative").is_err());
        let v = parse_volume("cache:/var/cache:ro,nocopy").unwrap();
        assert!(v.read_only && v.no_copy);
        assert!(
            !parse_volume("/srv:/srv:nocopy").unwrap().no_copy,
            "binds never copy"
        );
        assert!(parse_volume("/srv:/srv:z,cached").is_ok());
        assert_eq!(
            parse_volume("cache:/var/cache:rx").unwrap_err().to_string(),
            r#"invalid volume specification: "cache:/var/cache:rx": unknown option "rx""#
        );
        let t = parse_mount("type=tmpfs,target=/run,readonly").unwrap();
        assert_eq!((t.kind.as_str(), t.read_only), ("tmpfs", true));
        assert_eq!(
            parse_mount("type=bind,source=/no/such/dir,target=/x")
                .unwrap_err()
                .to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir"
        );
    }
}
