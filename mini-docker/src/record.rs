//! A container's record on disk: what it was created with (`config.json`), where it is in
//! its life (`state.json`), its writable layer and init layer, its log, and its locks.
//!
//! ```text
//! ROOT/containers/ID/
//!   config.json        how it was created (changes only with `rename` and `update`)
//!   state.json         created | running | paused | exited, pid, exit code, times
//!   init/ upper/ work/ merged/   the init layer, the writable layer, overlayfs's work
//!                      directory and mount point (mounted only inside the container)
//!   ID-json.log        its output, one JSON object per line (docker's json-file)
//!   attach.sock        the monitor's socket for `attach`
//!   monitor.lock       held (flock) by the monitor for as long as it runs
//!   state.lock         held briefly by whoever changes state.json
//! ROOT/names/NAME      contains the ID: a name is taken by creating this file (O_EXCL)
//! ```
//!
//! Every file others read is written to a temporary name and renamed, so a reader never
//! sees half of it, and a command killed at any point leaves the record readable.
use std::fs;
use std::path::{Path, PathBuf};

use ch01_namespaces::idmap::IdRange;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The kinds of mount docker knows, written as docker writes them (`"Type": "bind"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host path (`-v /host:/ctr`, `--mount type=bind`).
    Bind,
    /// A volume in the store (`-v name:/ctr`, an anonymous `-v /ctr`, an image's VOLUME).
    Volume,
    /// A tmpfs of its own (`--mount type=tmpfs`).
    Tmpfs,
}

impl MountType {
    /// docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

impl std::str::FromStr for MountType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "bind" => Ok(MountType::Bind),
            "volume" => Ok(MountType::Volume),
            "tmpfs" => Ok(MountType::Tmpfs),
            other => Err(Error::Usage(format!(
                "invalid mount type {other:?}: bind, volume or tmpfs"
            ))),
        }
    }
}

/// How a volume or bind mount is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Bind, volume or tmpfs.
    #[serde(rename = "Type")]
    pub kind: MountType,
    /// The host path (bind) or volume name (volume); empty for tmpfs.
    #[serde(rename = "Source")]
    pub source: String,
    /// Where inside the container.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Read-only.
    #[serde(rename = "ReadOnly")]
    pub read_only: bool,
    /// A volume that does not receive a copy of the image's content (`-v v:/p:nocopy`,
    /// `--mount ...,volume-nocopy`).
    #[serde(rename = "NoCopy", default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

/// Resource limits and namespace modes: docker's HostConfig.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostConfig {
    /// `-m`, bytes.
    #[serde(rename = "Memory")]
    pub memory: u64,
    /// `--memory-swap`, bytes of memory plus swap; -1 unlimited; 0 the default (twice `-m`).
    #[serde(rename = "MemorySwap")]
    pub memory_swap: i64,
    /// `--cpus`, in billionths of a CPU (docker's NanoCpus).
    #[serde(rename = "NanoCpus")]
    pub nano_cpus: u64,
    /// `--cpuset-cpus`.
    #[serde(rename = "CpusetCpus")]
    pub cpuset_cpus: String,
    /// `--pids-limit` (0: none).
    #[serde(rename = "PidsLimit")]
    pub pids_limit: u64,
    /// `--read-only`.
    #[serde(rename = "ReadonlyRootfs")]
    pub read_only_rootfs: bool,
    /// `--pid`: "" (own namespace), `host` or `container:ID`.
    #[serde(rename = "PidMode")]
    pub pid_mode: String,
    /// `--ipc`: "" or `private`, `host`, `container:ID`.
    #[serde(rename = "IpcMode")]
    pub ipc_mode: String,
    /// `--uts`: "" or `host` (docker's only choices).
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--cgroupns`: `host` or `private`, resolved at create as dockerd resolves its
    /// `default-cgroupns-mode` (private on a pure cgroup v2 host, host otherwise); empty in
    /// a record made before the flag existed, which means host.
    #[serde(rename = "CgroupnsMode", default)]
    pub cgroupns_mode: String,
    /// `--network`: `none` or `host`.
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    /// `--rm`.
    #[serde(rename = "AutoRemove")]
    pub auto_remove: bool,
    /// `--dns`.
    #[serde(rename = "Dns")]
    pub dns: Vec<String>,
    /// `--dns-search`.
    #[serde(rename = "DnsSearch")]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(rename = "DnsOptions", default)]
    pub dns_options: Vec<String>,
    /// `--add-host name:ip`.
    #[serde(rename = "ExtraHosts")]
    pub extra_hosts: Vec<String>,
    /// `--device-{read,write}-{bps,iops}`.
    #[serde(flatten)]
    pub blkio: Blkio,
    /// `--cap-add`.
    #[serde(rename = "CapAdd", default)]
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    #[serde(rename = "CapDrop", default)]
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    #[serde(rename = "Privileged", default)]
    pub privileged: bool,
    /// `--security-opt`, with a `seccomp=FILE` replaced by the file's JSON (as docker's).
    #[serde(rename = "SecurityOpt", default)]
    pub security_opt: Vec<String>,
    /// `--device`.
    #[serde(rename = "Devices", default)]
    pub devices: Vec<DeviceMapping>,
    /// `--userns`: "" (remapped when `--userns-remap` is on) or `host` (not remapped).
    #[serde(rename = "UsernsMode", default)]
    pub userns_mode: String,
    /// `-p`: the specs as given (`127.0.0.1:8080:80/tcp`); host ports left empty are
    /// chosen at each start.
    #[serde(rename = "PortSpecs", default)]
    pub port_specs: Vec<String>,
    /// `-P`: every exposed port to a free host port.
    #[serde(rename = "PublishAllPorts", default)]
    pub publish_all: bool,
    /// `--init`: mini-init is the first process, the command its child.
    #[serde(rename = "Init", default)]
    pub init: bool,
    /// `--group-add`: more groups for the process, names or ids.
    #[serde(rename = "GroupAdd", default)]
    pub group_add: Vec<String>,
    /// `--ulimit`: resource limits set before exec.
    #[serde(rename = "Ulimits", default)]
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj`: the OOM killer's preference, -1000 to 1000.
    #[serde(rename = "OomScoreAdj", default)]
    pub oom_score_adj: i32,
    /// `--volumes-from`: the containers whose mounts were copied, as given.
    #[serde(rename = "VolumesFrom", default)]
    pub volumes_from: Vec<String>,
    /// `--cpu-shares` (0: the kernel's default, 1024).
    #[serde(rename = "CpuShares", default)]
    pub cpu_shares: u64,
    /// `--cpu-period`, µs (0: the default).
    #[serde(rename = "CpuPeriod", default)]
    pub cpu_period: u64,
    /// `--cpu-quota`, µs per period (0: none given).
    #[serde(rename = "CpuQuota", default)]
    pub cpu_quota: i64,
    /// `--memory-reservation`, bytes.
    #[serde(rename = "MemoryReservation", default)]
    pub memory_reservation: u64,
    /// `--memory-swappiness` (none: the host's).
    #[serde(rename = "MemorySwappiness", default)]
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    #[serde(rename = "OomKillDisable", default)]
    pub oom_kill_disable: bool,
    /// `--cpuset-mems`.
    #[serde(rename = "CpusetMems", default)]
    pub cpuset_mems: String,
    /// `--shm-size`, bytes (0: docker's 64 MiB).
    #[serde(rename = "ShmSize", default)]
    pub shm_size: u64,
    /// `--sysctl`: namespaced kernel parameters.
    #[serde(rename = "Sysctls", default)]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--log-opt`: the json-file log's rotation (`max-size`, `max-file`), as given; none
    /// given means the default rotation (see `logfile`).
    #[serde(rename = "LogOpts", default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
}

/// One `--ulimit NAME=SOFT[:HARD]`, as docker's `units.Ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (setrlimit(2)'s RLIMIT_ names in lower case).
    #[serde(rename = "Name")]
    pub name: String,
    /// The hard limit.
    #[serde(rename = "Hard")]
    pub hard: i64,
    /// The soft limit.
    #[serde(rename = "Soft")]
    pub soft: i64,
}

/// The id maps of a container's user namespace (`--userns-remap`): ids from 0 inside are
/// `start` onwards on the host, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    /// The first host uid (what root inside is) and how many.
    pub uids: (u32, u32),
    /// The same for gids.
    pub gids: (u32, u32),
}

impl IdMaps {
    /// As chapter 1 writes them to `uid_map` and `gid_map`.
    pub fn ranges(&self) -> (IdRange, IdRange) {
        let r = |(outside, count)| IdRange {
            inside: 0,
            outside,
            count,
        };
        (r(self.uids), r(self.gids))
    }
}

/// One `--device HOST[:CONTAINER[:PERMISSIONS]]`, as docker's HostConfig spells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// The host's device node.
    #[serde(rename = "PathOnHost")]
    pub path_on_host: String,
    /// Where it appears inside.
    #[serde(rename = "PathInContainer")]
    pub path_in_container: String,
    /// Some of `rwm`.
    #[serde(rename = "CgroupPermissions")]
    pub cgroup_permissions: String,
}

/// Block I/O rates per device, as docker's HostConfig spells them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    /// `--device-read-bps`.
    #[serde(rename = "BlkioDeviceReadBps", default)]
    pub read_bps: Vec<DeviceRate>,
    /// `--device-write-bps`.
    #[serde(rename = "BlkioDeviceWriteBps", default)]
    pub write_bps: Vec<DeviceRate>,
    /// `--device-read-iops`.
    #[serde(rename = "BlkioDeviceReadIOps", default)]
    pub read_iops: Vec<DeviceRate>,
    /// `--device-write-iops`.
    #[serde(rename = "BlkioDeviceWriteIOps", default)]
    pub write_iops: Vec<DeviceRate>,
}

impl Blkio {
    fn list_mut(&mut self, rate: ch02_cgroups::IoRate) -> &mut Vec<DeviceRate> {
        use ch02_cgroups::IoRate::*;
        match rate {
            ReadBps => &mut self.read_bps,
            WriteBps => &mut self.write_bps,
            ReadIops => &mut self.read_iops,
            WriteIops => &mut self.write_iops,
        }
    }

    /// Adds a rate on the device at `path`.
    pub fn push(&mut self, rate: ch02_cgroups::IoRate, path: String, value: u64) {
        self.list_mut(rate).push(DeviceRate { path, rate: value });
    }

    /// Every rate, with its kind.
    pub fn entries(&self) -> impl Iterator<Item = (ch02_cgroups::IoRate, &DeviceRate)> {
        use ch02_cgroups::IoRate::*;
        [
            (ReadBps, &self.read_bps),
            (WriteBps, &self.write_bps),
            (ReadIops, &self.read_iops),
            (WriteIops, &self.write_iops),
        ]
        .into_iter()
        .flat_map(|(rate, list)| list.iter().map(move |d| (rate, d)))
    }
}

/// One device's rate (docker's `ThrottleDevice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRate {
    /// The device's path.
    #[serde(rename = "Path")]
    pub path: String,
    /// Bytes or operations per second.
    #[serde(rename = "Rate")]
    pub rate: u64,
}

/// How the container was created: docker's Config plus what the runtime needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The full id (64 hex).
    pub id: String,
    /// Its name, without docker's leading slash.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image id (`sha256:...` of its config).
    pub image_id: String,
    /// The image manifest's digest, pinned in the store while the container exists.
    pub image_manifest: String,
    /// The program (docker's `Path`).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The image's or `--entrypoint`'s entrypoint (for `inspect`).
    pub entrypoint: Vec<String>,
    /// The command (for `inspect`).
    pub cmd: Vec<String>,
    /// `KEY=VALUE`.
    pub env: Vec<String>,
    /// The working directory inside.
    pub working_dir: String,
    /// `-u`.
    pub user: String,
    /// The hostname.
    pub hostname: String,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// The signal `stop` sends first.
    pub stop_signal: String,
    /// Volumes and mounts.
    pub mounts: Vec<MountSpec>,
    /// Anonymous volumes this container created (removed with `rm -v`).
    pub anonymous_volumes: Vec<String>,
    /// Limits and modes.
    pub host: HostConfig,
    /// Its user namespace's maps, when created under `--userns-remap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_maps: Option<IdMaps>,
    /// The ports the image (and `--expose`) expose: `80/tcp`.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// `--network-alias`: more names on a user network.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--ip`: the address wanted on its network.
    #[serde(default)]
    pub ip: String,
    /// `--label`, over the image's labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--domainname`: the NIS domain name of its UTS namespace.
    #[serde(default)]
    pub domainname: String,
    /// `--stop-timeout`: `stop`'s and `restart`'s default wait, in seconds.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or being started).
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Its process ended.
    Exited,
}

impl Status {
    /// docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

/// One directory of the container's cgroup (chapter 2's `Dir`, in a form JSON keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// 1 or 2.
    pub version: u8,
    /// The directory.
    pub path: PathBuf,
    /// Controller names used through it.
    pub controllers: Vec<String>,
}

/// Where the container is now: docker's State.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The status.
    pub status: Status,
    /// The container's first process, as the host sees it (0 when not running).
    pub pid: i32,
    /// The exit code of the last run.
    pub exit_code: i32,
    /// The OOM killer ended it.
    pub oom_killed: bool,
    /// What went wrong, if something did.
    pub error: String,
    /// When it last started ("" never).
    pub started_at: String,
    /// When it last ended ("" never).
    pub finished_at: String,
    /// Its cgroup while it runs.
    pub cgroup: Vec<CgroupDir>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            cgroup: Vec::new(),
        }
    }
}

/// The current time, RFC 3339 with nanoseconds, as docker writes it.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Opens (creating it if need be) a file that exists to be locked with flock(2) (std's
/// `File::lock`): a lock file's content is never read, and it is never truncated.
pub fn lock_file(path: &Path) -> Result<fs::File, Error> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Names docker accepts for containers and volumes: moby's `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`
/// (`daemon/names`), so two characters at least.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Writes `bytes` to `path` atomically and durably, with chapter 5's one helper (a temp
/// file beside it, fsynced, renamed, the directory fsynced; the temp file removed if a step
/// fails): a crash leaves the old record or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    // A writer killed between its temp file's create and rename left it behind.
    ch05_image_pull::store::sweep_dead_temp_files(path);
    ch05_image_pull::store::atomic_write(path, bytes).map_err(|e| Error::io("write", path, e))
}

/// [`write_atomic`] without the fsyncs, for `state.json`: runtime state, rewritten at every
/// start, stop and pause, whose truth a reboot ends anyway (nothing runs after one, and
/// `monitor.lock`, not this file, says whether a container runs). Still atomic: a reader or
/// a killed writer sees the old state or the new one.
pub fn write_state_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    ch05_image_pull::store::sweep_dead_temp_files(path);
    ch05_image_pull::store::atomic_write_volatile(path, bytes)
        .map_err(|e| Error::io("write", path, e))
}

/// A container's directory and files.
#[derive(Debug, Clone)]
pub struct Container {
    /// `ROOT/containers/ID`.
    pub dir: PathBuf,
    /// How it was created.
    pub config: Config,
}

impl Container {
    /// Where a container's files live.
    pub fn dir_of(root: &Path, id: &str) -> PathBuf {
        root.join("containers").join(id)
    }

    /// Writes `config` as the record's `config.json`, for `rename` and `update`, the only
    /// commands that change it: atomically, and durably (the file, then the directory's
    /// rename, fsynced), since a power loss must not leave the record of a container
    /// that existed for a long time empty. (`create` does not fsync: a record lost with
    /// the machine a millisecond after it was made is one `run` again.)
    pub fn save_config(&self, config: &Config) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(config).expect("a config serialises");
        let path = self.path("config.json");
        write_atomic(&path, &bytes)?;
        for p in [&path, &self.dir] {
            fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("fsync", p, e))?;
        }
        Ok(())
    }

    /// When it was created, as a time (the zero time if the record says nothing usable).
    pub fn created(&self) -> jiff::Timestamp {
        self.config
            .created
            .parse()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Reads `config.json` again (under `state.lock`, before changing it: another command
    /// may have changed it since this record was loaded).
    pub fn reload(&self) -> Result<Container, Error> {
        Container::load(&self.dir)
    }

    /// Loads the record in `dir`.
    pub fn load(dir: &Path) -> Result<Container, Error> {
        let file = dir.join("config.json");
        let bytes = fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
        let config = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(file.clone(), e.to_string()))?;
        Ok(Container {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// The full id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The 12-character id docker shows.
    pub fn short_id(&self) -> &str {
        &self.config.id[..12]
    }

    /// A path in the container's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The log file (docker names it `ID-json.log`).
    pub fn log_path(&self) -> PathBuf {
        self.path(&format!("{}-json.log", self.config.id))
    }

    /// Reads state.json (a record without one is "created").
    pub fn state(&self) -> Result<State, Error> {
        let file = self.path("state.json");
        match fs::read(&file) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(file, e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io("read", &file, e)),
        }
    }

    /// Writes state.json atomically.
    pub fn save_state(&self, state: &State) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(state).expect("a state serialises");
        write_state_file(&self.path("state.json"), &bytes)
    }

    /// The state as it really is: a container recorded as running whose monitor is gone
    /// (killed, or the machine rebooted) has exited, whatever the file says. Its process
    /// died with the monitor (it was the monitor's child, with PR_SET_PDEATHSIG).
    pub fn live_state(&self) -> Result<State, Error> {
        let mut state = self.state()?;
        if matches!(state.status, Status::Running | Status::Paused) && !self.monitor_alive() {
            state.status = Status::Exited;
            if state.exit_code == 0 {
                state.exit_code = 137;
            }
            if state.error.is_empty() {
                state.error = "the container's monitor died".into();
            }
            state.pid = 0;
        }
        Ok(state)
    }

    /// Whether a monitor holds `monitor.lock`.
    pub fn monitor_alive(&self) -> bool {
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .open(self.path("monitor.lock"))
        else {
            return false;
        };
        match f.try_lock_shared() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(_) => false,
        }
    }

    /// A path to `name` in the container's directory that is short enough for a Unix
    /// socket address (108 bytes, see unix(7)): `ROOT/containers/ID/attach.sock` is over it
    /// with the default root, so the directory is reached through an open descriptor,
    /// `/proc/self/fd/N/NAME`. Keep the returned descriptor open while using the path.
    pub fn socket_path(&self, name: &str) -> Result<(std::fs::File, PathBuf), Error> {
        let dir = fs::File::open(&self.dir).map_err(|e| Error::io("open", &self.dir, e))?;
        let path = PathBuf::from(format!(
            "/proc/self/fd/{}/{name}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        ));
        Ok((dir, path))
    }

    /// Takes `state.lock` (exclusive) until the returned file is dropped.
    pub fn lock_state(&self) -> Result<fs::File, Error> {
        let f = lock_file(&self.path("state.lock"))?;
        f.lock()
            .map_err(|e| Error::io("lock", &self.path("state.lock"), e))?;
        Ok(f)
    }
}

/// The container's cgroup directories in chapter 2's form, to read or freeze them.
pub fn cgroup_dirs(dirs: &[CgroupDir]) -> Vec<ch02_cgroups::cgroup::Dir> {
    use ch02_cgroups::Controller as C;
    dirs.iter()
        .map(|d| ch02_cgroups::cgroup::Dir {
            version: if d.version == 1 {
                ch02_cgroups::layout::Version::V1
            } else {
                ch02_cgroups::layout::Version::V2
            },
            path: d.path.clone(),
            controllers: d
                .controllers
                .iter()
                .filter_map(|n| C::from_name(n))
                .collect(),
        })
        .collect()
}
