//! A cgroup of our own: created in each hierarchy that holds a controller we need, given
//! limits, joined by a process, read for statistics, emptied and removed.
//!
//! A cgroup is only directories and files: mkdir(2) creates one (the kernel fills in its
//! files), writing a pid to `cgroup.procs` moves a process into it, writing `memory.max`
//! sets a limit, rmdir(2) removes it once no process is left. On a v1 or hybrid host "one
//! cgroup" is a directory in *each* hierarchy involved, and the pid goes into each.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys::{CgroupFs, Sys, SysError};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::Error;
use crate::layout::{Controller, Layout, Version};

/// Where every cgroup the chapters create lives, below each hierarchy's root: like Docker's
/// `/sys/fs/cgroup/.../docker/<id>`. Removed again when the last cgroup in it goes.
pub const PARENT: &str = "mini-docker";

/// How much swap the memory limit allows, Docker's `--memory-swap` semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Swap {
    /// None: memory plus swap is the memory limit (the default here, so that a program past
    /// its limit is OOM-killed instead of swapping).
    #[default]
    None,
    /// Memory plus swap may reach this many bytes.
    Total(u64),
    /// Swap without limit.
    Unlimited,
}

/// The limits `ch02-cgroups run` and `mini-docker run` can set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// Memory in bytes (`--memory`).
    pub memory: Option<u64>,
    /// Swap on top of it (`--memory-swap`).
    pub swap: Swap,
    /// CPUs' worth of time per period (`--cpus 0.5`).
    pub cpus: Option<f64>,
    /// Maximum number of processes (`--pids`).
    pub pids: Option<u64>,
    /// Which CPUs (`--cpuset 0-1`).
    pub cpuset: Option<String>,
    /// Block I/O rates, per device (`--device-write-bps /dev/vda:1m`).
    pub io: Vec<IoLimit>,
    /// The device nodes that may be used, `None` for all (`--privileged`): v1's devices
    /// controller, or on v2 an eBPF program attached to the cgroup ([`crate::devices`]).
    pub devices: Option<Vec<DeviceRule>>,
    /// docker's finer knobs (shares, CFS period and quota, soft limits).
    pub tuning: Tuning,
}

/// docker's finer knobs, each written only when given, in the files each version names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tuning {
    /// Relative CPU weight (`--cpu-shares`, 1024 by default): v1's `cpu.shares`, v2's
    /// `cpu.weight` (runc's conversion: `1 + (shares - 2) * 9999 / 262142`).
    pub cpu_shares: Option<u64>,
    /// The CFS period in microseconds (`--cpu-period`).
    pub cpu_period: Option<u64>,
    /// The CFS quota in microseconds per period (`--cpu-quota`; -1 none).
    pub cpu_quota: Option<i64>,
    /// A soft memory limit (`--memory-reservation`): v1's `memory.soft_limit_in_bytes`,
    /// v2's `memory.low`.
    pub memory_reservation: Option<u64>,
    /// How eagerly its pages are swapped, 0-100 (`--memory-swappiness`; v1 only).
    pub memory_swappiness: Option<u64>,
    /// No OOM kill: tasks wait for memory instead (`--oom-kill-disable`; v1's
    /// `memory.oom_control`).
    pub oom_kill_disable: bool,
    /// Which memory nodes (`--cpuset-mems`).
    pub cpuset_mems: Option<String>,
}

impl Tuning {
    /// v2's `cpu.weight` for a v1 share count (runc's `ConvertCPUSharesToCgroupV2Value`).
    pub fn cpu_weight(shares: u64) -> u64 {
        if shares == 0 {
            return 0;
        }
        1 + (shares.saturating_sub(2) * 9999) / 262142
    }
}

/// One line of v1's `devices.allow`: `c 1:3 rwm` (type `a` all, `c` char, `b` block; `*`
/// any number; access read, write, mknod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// `a`, `c` or `b`.
    pub kind: char,
    /// The major number, `None` for any.
    pub major: Option<u32>,
    /// The minor number, `None` for any.
    pub minor: Option<u32>,
    /// Some of `rwm`.
    pub access: String,
}

impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

impl DeviceRule {
    /// Docker's default allow-list, as runc applies it: any node may be *made* (`m`), but
    /// only these opened: null, zero, full, random, urandom, tty, console, ptmx, the
    /// container's ptys (136:*) and tun. The host's disks (`b 254:0`, `b 8:0`) are not among
    /// them: a container that makes the node still cannot read the disk.
    pub fn docker_default() -> Vec<DeviceRule> {
        let rule = |kind, major: Option<u32>, minor: Option<u32>, access: &str| DeviceRule {
            kind,
            major,
            minor,
            access: access.into(),
        };
        let mut rules = vec![rule('c', None, None, "m"), rule('b', None, None, "m")];
        for (major, minor) in [
            (1, Some(3)),
            (1, Some(5)),
            (1, Some(7)),
            (1, Some(8)),
            (1, Some(9)),
            (5, Some(0)),
            (5, Some(1)),
            (5, Some(2)),
            (10, Some(200)),
            (136, None),
        ] {
            rules.push(rule('c', Some(major), minor, "rwm"));
        }
        rules
    }
}

/// A block I/O rate limit on one device, named by its device numbers (the `MAJ:MIN` of
/// `ls -l /dev/vda`). The kernel throttles the I/O that reaches the device: direct I/O at
/// once, buffered writes when they are written back (v2 charges writeback to the cgroup
/// that dirtied the pages; v1 cannot, so there only direct I/O is throttled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoLimit {
    /// The device's major number.
    pub major: u64,
    /// The device's minor number.
    pub minor: u64,
    /// What is limited.
    pub rate: IoRate,
    /// Bytes or operations per second.
    pub value: u64,
}

/// The four block I/O rates docker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoRate {
    /// Bytes read per second.
    ReadBps,
    /// Bytes written per second.
    WriteBps,
    /// Reads per second.
    ReadIops,
    /// Writes per second.
    WriteIops,
}

impl IoRate {
    /// The v1 file (one `MAJ:MIN VALUE` line per write, blkio-controller.rst).
    pub fn v1_file(self) -> &'static str {
        match self {
            IoRate::ReadBps => "blkio.throttle.read_bps_device",
            IoRate::WriteBps => "blkio.throttle.write_bps_device",
            IoRate::ReadIops => "blkio.throttle.read_iops_device",
            IoRate::WriteIops => "blkio.throttle.write_iops_device",
        }
    }

    /// docker's flag for it, without the dashes.
    pub fn flag(self) -> &'static str {
        match self {
            IoRate::ReadBps => "device-read-bps",
            IoRate::WriteBps => "device-write-bps",
            IoRate::ReadIops => "device-read-iops",
            IoRate::WriteIops => "device-write-iops",
        }
    }

    /// The key in v2's `io.max` (`MAJ:MIN rbps=N wbps=N`, cgroup-v2.rst).
    pub fn v2_key(self) -> &'static str {
        match self {
            IoRate::ReadBps => "rbps",
            IoRate::WriteBps => "wbps",
            IoRate::ReadIops => "riops",
            IoRate::WriteIops => "wiops",
        }
    }
}

/// The CFS period: the quota is a share of each 100 ms (sched-bwc.rst in the kernel docs).
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// The controllers these limits need, plus those the chapters read statistics from.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut c = vec![
            Controller::Memory,
            Controller::Cpu,
            Controller::Cpuacct,
            Controller::Pids,
        ];
        if self.cpuset.is_some() {
            c.push(Controller::Cpuset);
        }
        if !self.io.is_empty() {
            c.extend([Controller::Blkio, Controller::Io]);
        }
        if self.tuning.cpuset_mems.is_some() && !c.contains(&Controller::Cpuset) {
            c.push(Controller::Cpuset);
        }
        if self.devices.is_some() {
            c.push(Controller::Devices);
        }
        c
    }
}

/// One directory of a cgroup, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// The hierarchy's version.
    pub version: Version,
    /// The directory.
    pub path: PathBuf,
    /// The controllers we use through it (empty for the v2 core files on a hybrid host).
    pub controllers: Vec<Controller>,
}

impl Dir {
    fn has(&self, c: Controller) -> bool {
        self.controllers.contains(&c)
    }
}

/// An existing cgroup, opened by its directories: every operation on it, and nothing on
/// drop. What `pause`, `stats`, `update` and `exec` get for a container's cgroup, which
/// belongs to the container (its monitor removes it), never to them.
pub struct CgroupHandle<'s, F: CgroupFs + ?Sized = dyn Sys> {
    sys: &'s F,
    dirs: Vec<Dir>,
}

/// A cgroup this process created: removed (with anything left in it killed) when dropped,
/// unless handed over to a long-lived owner with [`Cgroup::into_dirs`]. Everything else a
/// cgroup can do comes from the [`CgroupHandle`] it dereferences to.
///
/// Owning and borrowing are two types so that opening an existing cgroup can never arm a
/// removal: a panic between "open" and "disarm" would otherwise remove a running
/// container's cgroup.
pub struct Cgroup<'s, F: CgroupFs + ?Sized = dyn Sys> {
    /// Empty once handed over or removed: the drop then has nothing to do.
    handle: CgroupHandle<'s, F>,
}

impl<F: CgroupFs + ?Sized> std::fmt::Debug for CgroupHandle<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CgroupHandle")
            .field("dirs", &self.dirs)
            .finish()
    }
}

impl<F: CgroupFs + ?Sized> std::fmt::Debug for Cgroup<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgroup")
            .field("dirs", &self.handle.dirs)
            .finish()
    }
}

impl<'s, F: CgroupFs + ?Sized> std::ops::Deref for Cgroup<'s, F> {
    type Target = CgroupHandle<'s, F>;
    fn deref(&self) -> &CgroupHandle<'s, F> {
        &self.handle
    }
}

impl<'s, F: CgroupFs + ?Sized> Cgroup<'s, F> {
    /// Creates `PARENT/name` in every hierarchy that holds one of `wanted`, plus the v2
    /// hierarchy on a hybrid host (for its core files). Each directory is registered for
    /// removal as soon as it exists, so a failure half-way leaves nothing behind.
    pub fn create(
        sys: &'s F,
        layout: &Layout,
        name: &str,
        wanted: &[Controller],
    ) -> Result<Self, Error> {
        Cgroup::make(sys, plan(layout, wanted)?, name)
    }

    /// Like [`Cgroup::create`], and also a directory in every other v1 hierarchy of the
    /// host, `name=systemd` style named ones included, as runc's cgroupfs driver does for
    /// docker: `/proc/PID/cgroup` then shows the container's path on every line, and each
    /// controller (cpuset, freezer, devices...) counts it from the start instead of
    /// leaving it in the host's root cgroup, where `/sys/fs/cgroup` inside would show it
    /// the host's tree.
    pub fn create_in_every_hierarchy(
        sys: &'s F,
        layout: &Layout,
        name: &str,
        wanted: &[Controller],
    ) -> Result<Self, Error> {
        let mut planned = plan(layout, wanted)?;
        for h in layout
            .hierarchies
            .iter()
            .filter(|h| h.version == Version::V1)
        {
            if planned.iter().any(|(m, _, _)| *m == h.mount_point) {
                continue;
            }
            let controllers = h
                .controllers
                .iter()
                .filter_map(|c| Controller::from_name(c))
                .collect();
            planned.push((h.mount_point.clone(), Version::V1, controllers));
        }
        Cgroup::make(sys, planned, name)
    }

    /// Makes the planned directories, each registered for removal as soon as it exists.
    fn make(sys: &'s F, planned: Plan, name: &str) -> Result<Self, Error> {
        let mut cgroup = Cgroup {
            handle: CgroupHandle::open(sys, Vec::new()),
        };
        for (mount, version, controllers) in planned {
            let path = cgroup.make_dir(&mount, version, &controllers, name)?;
            cgroup.handle.dirs.push(Dir {
                version,
                path,
                controllers,
            });
        }
        Ok(cgroup)
    }

    /// Hands the cgroup over to a long-lived owner (a container's record): it is no longer
    /// removed on drop. The owner opens it again with [`CgroupHandle::open`].
    pub fn into_dirs(mut self) -> Vec<Dir> {
        std::mem::take(&mut self.handle.dirs)
    }

    /// Kills what is left, then removes the directories (children before the parent).
    /// Errors are reported; the drop guard does the same and can only log them.
    pub fn remove(mut self) -> Result<(), Error> {
        self.handle.remove_dirs()
    }
}

impl<F: CgroupFs + ?Sized> Drop for Cgroup<'_, F> {
    fn drop(&mut self) {
        if !self.handle.dirs.is_empty()
            && let Err(e) = self.handle.remove_dirs()
        {
            // A drop cannot return the error; it must not vanish either. Nor may the
            // message panic (eprintln! does when stderr cannot be written: a full disk).
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "cleanup: removing cgroup: {e}");
        }
    }
}

/// Directories to make: the hierarchy's mount point, its version, the controllers used
/// through it.
type Plan = Vec<(PathBuf, Version, Vec<Controller>)>;

/// Which hierarchies a cgroup using `wanted` needs a directory in: one per mount point,
/// with the controllers used through it, plus the v2 mount of a hybrid host.
fn plan(layout: &Layout, wanted: &[Controller]) -> Result<Plan, Error> {
    let mut plan: Vec<(PathBuf, Version, Vec<Controller>)> = Vec::new();
    for &c in wanted {
        let Some(h) = layout.locate(c) else {
            if c.v1_only() || c.optional() {
                continue; // v2's core files (or v2's `io`) do this controller's job
            }
            return Err(Error::ControllerMissing(c.name()));
        };
        match plan.iter_mut().find(|(m, _, _)| *m == h.mount_point) {
            Some((_, _, cs)) => cs.push(c),
            None => plan.push((h.mount_point.clone(), h.version, vec![c])),
        }
    }
    if let Some(u) = layout.unified()
        && !plan.iter().any(|(m, _, _)| *m == u.mount_point)
    {
        plan.push((u.mount_point.clone(), Version::V2, Vec::new()));
    }
    Ok(plan)
}

/// The cgroups under [`PARENT`] in every hierarchy of `layout`, by name, each with the
/// directories it has (open one with [`CgroupHandle::open`]): what `system prune` walks to
/// find the ones a crash left behind.
pub fn list(layout: &Layout) -> Vec<(String, Vec<Dir>)> {
    let mut out: Vec<(String, Vec<Dir>)> = Vec::new();
    for h in &layout.hierarchies {
        let parent = h.mount_point.join(PARENT);
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = Dir {
                version: h.version,
                path: e.path(),
                controllers: h
                    .controllers
                    .iter()
                    .filter_map(|c| Controller::from_name(c))
                    .collect(),
            };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, dirs)) => dirs.push(dir),
                None => out.push((name, vec![dir])),
            }
        }
    }
    out
}

impl<'s, F: CgroupFs + ?Sized> CgroupHandle<'s, F> {
    /// Opens a cgroup created earlier (by another process) from its directories. Dropping
    /// the handle leaves the cgroup as it is.
    pub fn open(sys: &'s F, dirs: Vec<Dir>) -> Self {
        CgroupHandle { sys, dirs }
    }

    /// Removes a cgroup whose owner is gone (a container's, after its monitor died): kills
    /// what is left, then removes the directories. An explicit act, never a drop.
    pub fn remove(mut self) -> Result<(), Error> {
        self.remove_dirs()
    }

    /// Its directories.
    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    /// The directory holding `c`'s files, if any.
    pub fn dir_of(&self, c: Controller) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.has(c))
    }

    fn v2_dir(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.version == Version::V2)
    }

    fn make_dir(
        &self,
        mount: &Path,
        version: Version,
        controllers: &[Controller],
        name: &str,
    ) -> Result<PathBuf, Error> {
        let parent = mount.join(PARENT);
        let path = parent.join(name);
        // Another cgroup's removal may take the parent away at any moment until ours is in
        // it (between our two mkdirs, or before the parent's cgroup.subtree_control is
        // read): retry. A file of a directory being removed answers ENODEV rather than
        // ENOENT (kernfs has deactivated it; seen as `read(".../cpuset.cpus"): ENODEV`
        // when containers start and end together).
        let gone = |e: &Error| {
            matches!(
                e,
                Error::Sys(SysError {
                    errno: Errno::ENOENT | Errno::ENODEV,
                    ..
                })
            )
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let made = self
                .ensure_parent(mount, &parent, version, controllers)
                .and_then(|()| self.sys.mkdir(&path, 0o755).map_err(Error::from));
            match made {
                Ok(()) => break,
                Err(e) if gone(&e) && tries < 5 => continue,
                Err(Error::Sys(e)) if e.errno == Errno::EEXIST => return Err(Error::Exists(path)),
                Err(e) => return Err(e),
            }
        }
        if version == Version::V1 && controllers.contains(&Controller::Cpuset) {
            self.inherit_cpuset(&parent, &path)?;
        }
        Ok(path)
    }

    fn ensure_parent(
        &self,
        mount: &Path,
        parent: &Path,
        version: Version,
        controllers: &[Controller],
    ) -> Result<(), Error> {
        match self.sys.mkdir(parent, 0o755) {
            Ok(())
            | Err(SysError {
                errno: Errno::EEXIST,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        match version {
            // A v2 cgroup only gets a controller's files if its parent enables the
            // controller for its children, at every level from the root down.
            Version::V2 => {
                for dir in [mount, parent] {
                    self.enable_controllers(dir, controllers)?;
                }
            }
            // A new v1 cpuset starts with no CPUs and no memory nodes, and refuses
            // processes until it has some (ENOSPC): copy them from the level above.
            Version::V1 if controllers.contains(&Controller::Cpuset) => {
                self.inherit_cpuset(mount, parent)?
            }
            Version::V1 => {}
        }
        Ok(())
    }

    fn enable_controllers(&self, dir: &Path, controllers: &[Controller]) -> Result<(), Error> {
        // exercise(ch02.enable): write "+name" for each controller not yet in dir's cgroup.subtree_control
        let file = dir.join("cgroup.subtree_control");
        let enabled = self.sys.read_file(&file)?;
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !enabled.split_whitespace().any(|e| e == c.name()))
            .map(|c| format!("+{}", c.name()))
            .collect();
        if !missing.is_empty() {
            self.sys.write_file(&file, &missing.join(" "))?;
        }
        Ok(())
        // end exercise
    }

    fn inherit_cpuset(&self, from: &Path, to: &Path) -> Result<(), Error> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if self.sys.read_file(&to.join(file))?.trim().is_empty() {
                let value = self.sys.read_file(&from.join(file))?;
                self.sys.write_file(&to.join(file), value.trim())?;
            }
        }
        Ok(())
    }

    /// Writes the limits into the controllers' files.
    pub fn apply(&self, limits: &Limits) -> Result<(), Error> {
        let w = |dir: &Dir, file: &str, value: String| {
            self.sys.write_file(&dir.path.join(file), &value)
        };
        if let (Some(bytes), Some(d)) = (limits.memory, self.dir_of(Controller::Memory)) {
            match d.version {
                Version::V1 => {
                    // memory.memsw.* counts memory plus swap; it exists only with swap
                    // accounting enabled (swapaccount=1), so its absence is not an error.
                    let memsw = match limits.swap {
                        Swap::None => bytes.to_string(),
                        Swap::Total(t) => t.max(bytes).to_string(),
                        Swap::Unlimited => "-1".into(),
                    };
                    // The kernel keeps memsw >= the memory limit (EINVAL otherwise): on a
                    // live cgroup (`mini-docker update`) a higher pair needs memsw first.
                    let current = self
                        .sys
                        .read_file(&d.path.join("memory.memsw.limit_in_bytes"))
                        .ok()
                        .and_then(|t| t.trim().parse::<u64>().ok());
                    let raise = memsw == "-1"
                        || current.is_some_and(|c| memsw.parse::<u64>().is_ok_and(|m| m > c));
                    if raise {
                        optional(w(d, "memory.memsw.limit_in_bytes", memsw.clone()))?;
                    }
                    w(d, "memory.limit_in_bytes", bytes.to_string())?;
                    if !raise {
                        optional(w(d, "memory.memsw.limit_in_bytes", memsw))?;
                    }
                }
                Version::V2 => {
                    // exercise(ch02.memory): write the limit to memory.max, and to memory.swap.max the swap beyond it ("0" for none, "max" for unlimited)
                    w(d, "memory.max", bytes.to_string())?;
                    // v2 counts swap separately: memory.swap.max is swap alone.
                    let swap = match limits.swap {
                        Swap::None => "0".to_string(),
                        Swap::Total(t) => t.saturating_sub(bytes).to_string(),
                        Swap::Unlimited => "max".into(),
                    };
                    optional(w(d, "memory.swap.max", swap))?;
                    // end exercise
                }
            }
        }
        if let (Some(cpus), Some(d)) = (limits.cpus, self.dir_of(Controller::Cpu)) {
            // exercise(ch02.cpu): `cpus` CPUs as a quota per CPU_PERIOD_US period: cpu.max on v2, cfs_period_us and cfs_quota_us on v1
            let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
            match d.version {
                Version::V1 => {
                    w(d, "cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                    w(d, "cpu.cfs_quota_us", quota.to_string())?;
                }
                Version::V2 => w(d, "cpu.max", format!("{quota} {CPU_PERIOD_US}"))?,
            }
            // end exercise
        }
        if let (Some(max), Some(d)) = (limits.pids, self.dir_of(Controller::Pids)) {
            w(d, "pids.max", max.to_string())?;
        }
        self.apply_tuning(&limits.tuning)?;
        if let (Some(cpus), Some(d)) = (&limits.cpuset, self.dir_of(Controller::Cpuset)) {
            w(d, "cpuset.cpus", cpus.clone())?;
        }
        if let Some(rules) = &limits.devices {
            if let Some(d) = self.dir_of(Controller::Devices) {
                // Deny everything, then allow the list: a child cgroup starts with its
                // parent's rules (all, at the root), and an allow-list is what docker means.
                w(d, "devices.deny", "a".into())?;
                for rule in rules {
                    w(d, "devices.allow", rule.to_string())?;
                }
            } else if let Some(d) = self.v2_dir() {
                // No v1 devices controller: v2's way, an eBPF program on the cgroup.
                self.sys
                    .attach_device_program(&d.path, &crate::devices::program(rules))?;
            }
        }
        if !limits.io.is_empty() {
            let d = self
                .io_dir()
                .ok_or(Error::ControllerMissing("blkio (v1) or io (v2)"))?;
            match d.version {
                Version::V1 => {
                    for l in &limits.io {
                        let line = format!("{}:{} {}", l.major, l.minor, l.value);
                        w(d, l.rate.v1_file(), line)?;
                    }
                }
                Version::V2 => {
                    // One line per device, every rate of it: `8:0 rbps=1048576 wbps=max`.
                    let mut devices: Vec<(u64, u64)> =
                        limits.io.iter().map(|l| (l.major, l.minor)).collect();
                    devices.sort_unstable();
                    devices.dedup();
                    for (major, minor) in devices {
                        let mut line = format!("{major}:{minor}");
                        for l in limits
                            .io
                            .iter()
                            .filter(|l| (l.major, l.minor) == (major, minor))
                        {
                            line.push_str(&format!(" {}={}", l.rate.v2_key(), l.value));
                        }
                        w(d, "io.max", line)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The finer knobs ([`Tuning`]), each only when given; a file this kernel does not have
    /// is an error that names it.
    fn apply_tuning(&self, t: &Tuning) -> Result<(), Error> {
        let w = |dir: &Dir, file: &str, value: String| {
            self.sys.write_file(&dir.path.join(file), &value)
        };
        if let Some(d) = self.dir_of(Controller::Cpu) {
            let v1 = d.version == Version::V1;
            if let Some(shares) = t.cpu_shares {
                if v1 {
                    w(d, "cpu.shares", shares.to_string())?;
                } else {
                    w(d, "cpu.weight", Tuning::cpu_weight(shares).to_string())?;
                }
            }
            if t.cpu_period.is_some() || t.cpu_quota.is_some() {
                let period = t.cpu_period.unwrap_or(CPU_PERIOD_US);
                if v1 {
                    w(d, "cpu.cfs_period_us", period.to_string())?;
                    if let Some(q) = t.cpu_quota {
                        w(d, "cpu.cfs_quota_us", q.to_string())?;
                    }
                } else {
                    let quota = t
                        .cpu_quota
                        .filter(|q| *q > 0)
                        .map_or("max".to_string(), |q| q.to_string());
                    w(d, "cpu.max", format!("{quota} {period}"))?;
                }
            }
        }
        if let Some(d) = self.dir_of(Controller::Memory) {
            let v1 = d.version == Version::V1;
            if let Some(bytes) = t.memory_reservation {
                let file = if v1 {
                    "memory.soft_limit_in_bytes"
                } else {
                    "memory.low"
                };
                w(d, file, bytes.to_string())?;
            }
            if let Some(s) = t.memory_swappiness.filter(|_| v1) {
                w(d, "memory.swappiness", s.to_string())?;
            }
            if t.oom_kill_disable && v1 {
                w(d, "memory.oom_control", "1".into())?;
            }
        }
        if let (Some(mems), Some(d)) = (&t.cpuset_mems, self.dir_of(Controller::Cpuset)) {
            w(d, "cpuset.mems", mems.clone())?;
        }
        Ok(())
    }

    /// Lifts the process limit of a live cgroup (`pids.max` back to `max`): [`apply`]
    /// writes only the limits it is given.
    ///
    /// [`apply`]: Cgroup::apply
    pub fn unlimit_pids(&self) -> Result<(), Error> {
        if let Some(d) = self.dir_of(Controller::Pids) {
            self.sys.write_file(&d.path.join("pids.max"), "max")?;
        }
        Ok(())
    }

    /// The directory that counts block I/O: v1's blkio, else v2's io.
    fn io_dir(&self) -> Option<&Dir> {
        self.dir_of(Controller::Blkio)
            .or_else(|| self.dir_of(Controller::Io))
    }

    /// Moves a process (all its threads) into the cgroup, in every hierarchy.
    pub fn add_process(&self, pid: Pid) -> Result<(), Error> {
        // exercise(ch02.join): write the pid into cgroup.procs of each of our directories
        for d in &self.dirs {
            self.sys
                .write_file(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
        // end exercise
    }

    /// The cgroup's directory on the v2 hierarchy (a pure v2 host's, or a hybrid host's
    /// core files), if it has one: where a child can be born with `CLONE_INTO_CGROUP`.
    pub fn v2_path(&self) -> Option<&Path> {
        self.v2_dir().map(|d| d.path.as_path())
    }

    /// Moves the calling process into the cgroup in every v1 hierarchy: what a child born
    /// in the v2 directory with `CLONE_INTO_CGROUP` (see [`v2_path`](Self::v2_path))
    /// does for the rest before it execs, instead of its parent writing its pid
    /// ([`add_process`](Self::add_process)). The caller must be single-threaded.
    ///
    /// Why: a pid written into `cgroup.procs` makes the kernel take its global threadgroup
    /// lock for writing, whose write side waits for an RCU grace period unless a migration
    /// happened a moment ago, that is at nearly every container start (measured on this
    /// project's build machine: 11 ms for eight hierarchies). A thread that moves *itself*,
    /// `0` written into v1's `tasks`, is the case the kernel lets skip that lock
    /// (`cgroup_procs_write_start`: it can neither exit nor exec during the move): 1.5 ms
    /// for the same eight.
    pub fn join_self_v1(&self) -> Result<(), Error> {
        for d in self.dirs.iter().filter(|d| d.version == Version::V1) {
            self.sys.write_file(&d.path.join("tasks"), "0")?;
        }
        Ok(())
    }

    /// The pids in the cgroup.
    pub fn procs(&self) -> Result<Vec<Pid>, Error> {
        let Some(d) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let text = self.sys.read_file(&d.path.join("cgroup.procs"))?;
        Ok(text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(Pid::from_raw)
            .collect())
    }

    /// Kills every process in the cgroup and waits until none is left. On v2 (and hybrid)
    /// `cgroup.kill` does it in one write, race-free even against a fork loop; on v1 the
    /// pids are killed one by one, repeatedly, until the cgroup stays empty.
    pub fn kill_all(&self) -> Result<(), Error> {
        if let Some(d) = self.v2_dir()
            && optional(self.sys.write_file(&d.path.join("cgroup.kill"), "1"))?
        {
            return self.wait_empty();
        }
        for _ in 0..100 {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                match self.sys.kill(pid, Signal::SIGKILL) {
                    Ok(())
                    | Err(SysError {
                        errno: Errno::ESRCH,
                        ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.wait_empty()
    }

    fn wait_empty(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.procs()?.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(Error::Busy(self.dirs[0].path.clone()))
    }

    /// Freezes (or thaws) every process in the cgroup: `cgroup.freeze` on v2, the freezer
    /// controller's `freezer.state` on v1. Returns once the kernel reports it done.
    pub fn freeze(&self, frozen: bool) -> Result<(), Error> {
        if let Some(d) = self.v2_dir() {
            self.sys.write_file(
                &d.path.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            )?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            return self.wait_for(&d.path.join("cgroup.events"), want);
        }
        let Some(d) = self.dir_of(Controller::Freezer) else {
            return Err(Error::ControllerMissing("freezer"));
        };
        let state = if frozen { "FROZEN" } else { "THAWED" };
        self.sys.write_file(&d.path.join("freezer.state"), state)?;
        self.wait_for(&d.path.join("freezer.state"), state)
    }

    fn wait_for(&self, file: &Path, line: &str) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.sys.read_file(file)?.lines().any(|l| l.trim() == line) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(Error::Busy(file.to_path_buf()))
    }

    /// Whether it is frozen.
    pub fn frozen(&self) -> Result<bool, Error> {
        if let Some(d) = self.v2_dir() {
            return Ok(keyed(
                &self.sys.read_file(&d.path.join("cgroup.events"))?,
                "frozen",
            ) == Some(1));
        }
        match self.dir_of(Controller::Freezer) {
            Some(d) => Ok(self.sys.read_file(&d.path.join("freezer.state"))?.trim() == "FROZEN"),
            None => Ok(false),
        }
    }

    /// Reads usage and events from the controllers' files.
    pub fn stats(&self) -> Result<Stats, Error> {
        let read = |d: &Dir, f: &str| self.sys.read_file(&d.path.join(f));
        let num = |d: &Dir, f: &str| -> Result<Option<u64>, Error> {
            match read(d, f) {
                Ok(t) => Ok(parse_limit(&t)),
                Err(SysError {
                    errno: Errno::ENOENT,
                    ..
                }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let mut s = Stats::default();
        if let Some(d) = self.dir_of(Controller::Memory) {
            match d.version {
                Version::V1 => {
                    s.memory_current = num(d, "memory.usage_in_bytes")?;
                    s.memory_peak = num(d, "memory.max_usage_in_bytes")?;
                    s.memory_limit = num(d, "memory.limit_in_bytes")?.filter(|&l| l < 1 << 62);
                    s.oom_kills = keyed(&read(d, "memory.oom_control")?, "oom_kill");
                }
                Version::V2 => {
                    s.memory_current = num(d, "memory.current")?;
                    s.memory_peak = num(d, "memory.peak")?;
                    s.memory_limit = num(d, "memory.max")?;
                    s.oom_kills = keyed(&read(d, "memory.events")?, "oom_kill");
                }
            }
        }
        if let Some(d) = self.dir_of(Controller::Cpuacct) {
            s.cpu_usage = num(d, "cpuacct.usage")?.map(Duration::from_nanos);
        }
        if let Some(d) = self.dir_of(Controller::Cpu) {
            let stat = read(d, "cpu.stat")?;
            s.cpu_periods = keyed(&stat, "nr_periods");
            s.cpu_throttled_periods = keyed(&stat, "nr_throttled");
            match d.version {
                Version::V1 => {
                    s.cpu_throttled = keyed(&stat, "throttled_time").map(Duration::from_nanos);
                    let quota = read(d, "cpu.cfs_quota_us")?
                        .trim()
                        .parse::<i64>()
                        .unwrap_or(-1);
                    s.cpu_limit = (quota > 0).then(|| quota as f64 / CPU_PERIOD_US as f64);
                }
                Version::V2 => {
                    s.cpu_throttled = keyed(&stat, "throttled_usec").map(Duration::from_micros);
                    s.cpu_usage = keyed(&stat, "usage_usec").map(Duration::from_micros);
                    let max = read(d, "cpu.max")?;
                    let mut it = max.split_whitespace();
                    if let (Some(q), Some(p)) = (it.next(), it.next())
                        && let (Ok(q), Ok(p)) = (q.parse::<f64>(), p.parse::<f64>())
                    {
                        s.cpu_limit = Some(q / p);
                    }
                }
            }
        }
        if s.cpu_usage.is_none()
            && let Some(d) = self.v2_dir()
        {
            // On a hybrid host the v2 core file cpu.stat counts usage too.
            s.cpu_usage = keyed(&read(d, "cpu.stat")?, "usage_usec").map(Duration::from_micros);
        }
        if let Some(d) = self.dir_of(Controller::Pids) {
            s.pids_current = num(d, "pids.current")?;
            s.pids_limit = num(d, "pids.max")?;
            s.pids_refused = keyed(&read(d, "pids.events")?, "max");
        }
        // Block I/O counters are a bonus: a kernel without throttling support has no
        // `blkio.throttle.*` files, and one before 4.16 no recursive one. Without them the
        // rest of the statistics (an OOM kill above all) still count.
        let io = self.io_dir().and_then(|d| match d.version {
            Version::V1 => read(d, "blkio.throttle.io_service_bytes_recursive")
                .or_else(|_| read(d, "blkio.throttle.io_service_bytes"))
                .ok()
                .map(|t| v1_io_bytes(&t)),
            Version::V2 => read(d, "io.stat").ok().map(|t| v2_io_bytes(&t)),
        });
        if let Some((r, w)) = io {
            s.io_read_bytes = Some(r);
            s.io_write_bytes = Some(w);
        }
        Ok(s)
    }

    fn remove_dirs(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        match self.kill_all() {
            // Someone removed it already (its directory has no `cgroup.procs` any more).
            Ok(())
            | Err(Error::Sys(SysError {
                errno: Errno::ENOENT,
                ..
            })) => {}
            Err(e) => first_error = Some(e),
        }
        for d in self.dirs.drain(..).rev() {
            // A just-killed process may take a moment to leave: rmdir says EBUSY meanwhile.
            let mut result = self.sys.rmdir(&d.path);
            for _ in 0..200 {
                match &result {
                    Err(SysError {
                        errno: Errno::EBUSY,
                        ..
                    }) => {
                        std::thread::sleep(Duration::from_millis(5));
                        result = self.sys.rmdir(&d.path);
                    }
                    _ => break,
                }
            }
            match result {
                Ok(())
                | Err(SysError {
                    errno: Errno::ENOENT,
                    ..
                }) => {}
                Err(e) => {
                    first_error.get_or_insert(e.into());
                }
            }
            // The shared parent goes with its last child; while others live in it, rmdir
            // fails with EBUSY or ENOTEMPTY, which is expected.
            if let Some(parent) = d.path.parent() {
                let _ = self.sys.rmdir(parent);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Treats a missing optional file (ENOENT) as "not supported here": Ok(false).
fn optional(r: Result<(), SysError>) -> Result<bool, SysError> {
    match r {
        Ok(()) => Ok(true),
        Err(SysError {
            errno: Errno::ENOENT,
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A number from a one-value cgroup file; `max` (v2's "no limit") reads as None.
pub fn parse_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`nr_periods 12\nnr_throttled 3\n`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

/// What the controllers counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Memory in use now, bytes.
    pub memory_current: Option<u64>,
    /// The most memory ever in use, bytes.
    pub memory_peak: Option<u64>,
    /// The memory limit, bytes (None: no limit).
    pub memory_limit: Option<u64>,
    /// How many processes the OOM killer killed in the cgroup.
    pub oom_kills: Option<u64>,
    /// CPU time used.
    pub cpu_usage: Option<Duration>,
    /// The CPU limit in CPUs.
    pub cpu_limit: Option<f64>,
    /// Enforcement periods that have elapsed.
    pub cpu_periods: Option<u64>,
    /// Periods in which the cgroup ran out of quota.
    pub cpu_throttled_periods: Option<u64>,
    /// Time spent throttled.
    pub cpu_throttled: Option<Duration>,
    /// Processes now.
    pub pids_current: Option<u64>,
    /// The process limit.
    pub pids_limit: Option<u64>,
    /// How many forks the limit refused.
    pub pids_refused: Option<u64>,
    /// Bytes read from block devices.
    pub io_read_bytes: Option<u64>,
    /// Bytes written to block devices.
    pub io_write_bytes: Option<u64>,
}

/// Sums v1's `blkio.throttle.io_service_bytes` (`8:0 Read 4096` lines, then `Total N`):
/// (read, written).
pub fn v1_io_bytes(text: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_device, op, n] = f.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => sum.0 += n,
                "Write" => sum.1 += n,
                _ => {}
            }
        }
    }
    sum
}

/// Sums v2's `io.stat` (`8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0`):
/// (read, written).
pub fn v2_io_bytes(text: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for field in text.split_whitespace() {
        if let Some((key, n)) = field.split_once('=') {
            let n: u64 = n.parse().unwrap_or(0);
            match key {
                "rbytes" => sum.0 += n,
                "wbytes" => sum.1 += n,
                _ => {}
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_device_list_reads_as_devices_list_shows_it() {
        let lines: Vec<String> = DeviceRule::docker_default()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            lines.join(", "),
            "c *:* m, b *:* m, c 1:3 rwm, c 1:5 rwm, c 1:7 rwm, c 1:8 rwm, c 1:9 rwm, \
             c 5:0 rwm, c 5:1 rwm, c 5:2 rwm, c 10:200 rwm, c 136:* rwm"
        );
    }

    #[test]
    fn flat_keyed_files_and_limits_parse() {
        assert_eq!(
            keyed("nr_periods 12\nnr_throttled 3\n", "nr_throttled"),
            Some(3)
        );
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill"),
            Some(1)
        );
        assert_eq!(keyed("max 0\n", "missing"), None);
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("67108864\n"), Some(64 << 20));
    }

    #[test]
    fn block_io_counters_of_both_versions_parse() {
        // v1, blkio.throttle.io_service_bytes_recursive, two devices.
        let v1 = "254:0 Read 4096\n254:0 Write 8388608\n254:0 Sync 8388608\n254:0 Async 0\n\
                  254:0 Discard 0\n254:0 Total 8392704\n8:0 Read 512\n8:0 Write 0\n\
                  8:0 Total 512\nTotal 8393216\n";
        assert_eq!(v1_io_bytes(v1), (4608, 8388608));
        assert_eq!(v1_io_bytes("Total 0\n"), (0, 0));
        // v2, io.stat.
        let v2 = "254:0 rbytes=4096 wbytes=8388608 rios=1 wios=128 dbytes=0 dios=0\n\
                  8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
        assert_eq!(v2_io_bytes(v2), (4608, 8388608));
        assert_eq!(v2_io_bytes(""), (0, 0));
    }
}

/// A fixture shaped like a cgroup2 mount, for tests without root: a temporary directory
/// whose mkdir fills a new cgroup with the interface files the kernel would create (the
/// core files, plus those of each controller its parent enables), and whose
/// `cgroup.subtree_control` takes `+name`/`-name` writes as the kernel does.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use std::cell::RefCell;
    use std::fs;

    #[derive(Debug)]
    pub struct CgroupV2Fixture {
        pub root: tempfile::TempDir,
        pub killed: RefCell<Vec<Pid>>,
        /// Device programs attached: the directory and the program's length.
        pub programs: RefCell<Vec<(PathBuf, usize)>>,
    }

    impl CgroupV2Fixture {
        pub fn new(controllers: &str) -> Self {
            let root = tempfile::tempdir().unwrap();
            fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
            fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
            fs::write(root.path().join("cgroup.procs"), "").unwrap();
            CgroupV2Fixture {
                root,
                killed: RefCell::new(Vec::new()),
                programs: RefCell::new(Vec::new()),
            }
        }

        pub fn mountinfo(&self) -> String {
            format!(
                "29 23 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
                self.root.path().display()
            )
        }

        pub fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.root.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        }

        pub fn write(&self, rel: &str, text: &str) {
            fs::write(self.root.path().join(rel), text).unwrap();
        }
    }

    fn io(call: String, e: std::io::Error) -> SysError {
        SysError::new(
            call,
            Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)),
        )
    }

    impl CgroupFs for CgroupV2Fixture {
        fn mkdir(&self, path: &Path, _mode: u32) -> Result<(), SysError> {
            fs::create_dir(path).map_err(|e| io(format!("mkdir({path:?})"), e))?;
            let parent = path.parent().unwrap();
            let enabled =
                fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
            let mut files = vec![
                ("cgroup.procs", ""),
                ("cgroup.kill", ""),
                ("cgroup.freeze", "0"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cgroup.subtree_control", ""),
                ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
            ];
            for c in enabled.split_whitespace() {
                files.extend_from_slice(match c {
                    "memory" => &[
                        ("memory.max", "max\n"),
                        ("memory.swap.max", "max\n"),
                        ("memory.current", "0\n"),
                        ("memory.peak", "0\n"),
                        ("memory.low", "0\n"),
                        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
                    ][..],
                    "cpu" => &[("cpu.max", "max 100000\n"), ("cpu.weight", "100\n")][..],
                    "pids" => &[
                        ("pids.max", "max\n"),
                        ("pids.current", "0\n"),
                        ("pids.events", "max 0\n"),
                    ][..],
                    "cpuset" => &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")][..],
                    "io" => &[("io.max", ""), ("io.stat", "")][..],
                    _ => &[][..],
                });
            }
            fs::write(path.join("cgroup.controllers"), enabled.trim()).unwrap();
            for (f, v) in files {
                fs::write(path.join(f), v).unwrap();
            }
            Ok(())
        }

        fn rmdir(&self, path: &Path) -> Result<(), SysError> {
            let has_children = fs::read_dir(path)
                .map_err(|e| io(format!("rmdir({path:?})"), e))?
                .flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()));
            if has_children {
                return Err(SysError::new(format!("rmdir({path:?})"), Errno::EBUSY));
            }
            fs::remove_dir_all(path).map_err(|e| io(format!("rmdir({path:?})"), e))
        }

        fn read_file(&self, path: &Path) -> Result<String, SysError> {
            fs::read_to_string(path).map_err(|e| io(format!("read({path:?})"), e))
        }

        fn write_file(&self, path: &Path, data: &str) -> Result<(), SysError> {
            if !path.exists() {
                return Err(SysError::new(format!("write({path:?})"), Errno::ENOENT));
            }
            let value = if path.ends_with("cgroup.subtree_control") {
                let mut set: Vec<String> = fs::read_to_string(path)
                    .unwrap()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                for word in data.split_whitespace() {
                    let (op, name) = word.split_at(1);
                    set.retain(|c| c != name);
                    if op == "+" {
                        set.push(name.to_string());
                    }
                }
                set.sort();
                set.join(" ")
            } else {
                if path.ends_with("cgroup.kill") {
                    // The kernel kills every member at once.
                    fs::write(path.with_file_name("cgroup.procs"), "").unwrap();
                }
                data.to_string()
            };
            fs::write(path, value).map_err(|e| io(format!("write({path:?})"), e))
        }

        fn kill(&self, pid: Pid, _signal: Signal) -> Result<(), SysError> {
            self.killed.borrow_mut().push(pid);
            Ok(())
        }

        fn attach_device_program(
            &self,
            dir: &Path,
            program: &[crate::devices::Insn],
        ) -> Result<(), SysError> {
            self.programs
                .borrow_mut()
                .push((dir.to_path_buf(), program.len()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod v2_tests {
    use super::fixture::CgroupV2Fixture;
    use super::*;

    fn limits() -> Limits {
        Limits {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(20),
            cpuset: Some("0".into()),
            swap: Swap::None,
            io: Vec::new(),
            devices: None,
            tuning: Tuning::default(),
        }
    }

    #[test]
    fn on_v2_a_device_list_becomes_a_program_attached_to_the_cgroup() {
        let fs = CgroupV2Fixture::new("cpuset cpu io memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let listed = Limits {
            devices: Some(DeviceRule::docker_default()),
            ..limits()
        };
        let cg = Cgroup::create(&fs, &layout, "box", &listed.controllers()).unwrap();
        cg.apply(&listed).unwrap();
        let programs = fs.programs.borrow();
        assert_eq!(programs.len(), 1);
        assert_eq!(programs[0].0, fs.root.path().join("mini-docker/box"));
        assert_eq!(
            programs[0].1,
            crate::devices::program(&DeviceRule::docker_default()).len()
        );
        drop(programs);
        // No device list (`--privileged`): no program.
        let free = limits();
        let cg2 = Cgroup::create(&fs, &layout, "free", &free.controllers()).unwrap();
        cg2.apply(&free).unwrap();
        assert_eq!(fs.programs.borrow().len(), 1);
    }

    #[test]
    fn on_v2_dockers_finer_knobs_go_to_v2_files() {
        let fs = CgroupV2Fixture::new("cpuset cpu io memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let tuned = Limits {
            cpus: None,
            tuning: Tuning {
                cpu_shares: Some(512),
                cpu_period: Some(50_000),
                cpu_quota: Some(25_000),
                memory_reservation: Some(32 << 20),
                // v1 only: nothing to write on v2.
                memory_swappiness: Some(10),
                oom_kill_disable: true,
                cpuset_mems: Some("0".into()),
            },
            ..limits()
        };
        let cg = Cgroup::create(&fs, &layout, "box", &tuned.controllers()).unwrap();
        cg.apply(&tuned).unwrap();
        assert_eq!(fs.read("mini-docker/box/cpu.weight"), "20");
        assert_eq!(fs.read("mini-docker/box/cpu.max"), "25000 50000");
        assert_eq!(fs.read("mini-docker/box/memory.low"), "33554432");
        assert_eq!(fs.read("mini-docker/box/cpuset.mems"), "0");
        assert_eq!(Tuning::cpu_weight(1024), 39);
        assert_eq!(Tuning::cpu_weight(2), 1);
    }

    /// A cgroup `box` made by hand in the fixture (without `Cgroup::create`), opened with
    /// `controllers` in a v2 directory.
    fn handle_on<'f>(
        fs: &'f CgroupV2Fixture,
        controllers: &[Controller],
    ) -> CgroupHandle<'f, CgroupV2Fixture> {
        let names: Vec<&str> = controllers.iter().map(|c| c.name()).collect();
        fs.write("cgroup.subtree_control", &names.join(" "));
        let path = fs.root.path().join("box");
        fs.mkdir(&path, 0o755).unwrap();
        CgroupHandle::open(
            fs,
            vec![Dir {
                version: Version::V2,
                path,
                controllers: controllers.to_vec(),
            }],
        )
    }

    #[test]
    fn memory_goes_to_memory_max_and_swap_beyond_it_to_memory_swap_max() {
        let fs = CgroupV2Fixture::new("memory");
        let cg = handle_on(&fs, &[Controller::Memory]);
        let mut limits = Limits {
            memory: Some(64 << 20),
            ..Default::default()
        };
        cg.apply(&limits).unwrap();
        assert_eq!(fs.read("box/memory.max"), "67108864");
        assert_eq!(fs.read("box/memory.swap.max"), "0", "no swap by default");
        limits.swap = Swap::Total(100 << 20);
        cg.apply(&limits).unwrap();
        assert_eq!(fs.read("box/memory.swap.max"), (36u64 << 20).to_string());
        limits.swap = Swap::Unlimited;
        cg.apply(&limits).unwrap();
        assert_eq!(fs.read("box/memory.swap.max"), "max");
    }

    #[test]
    fn a_cpu_limit_is_a_quota_per_period_on_v2_and_on_v1() {
        let fs = CgroupV2Fixture::new("cpu");
        let cg = handle_on(&fs, &[Controller::Cpu]);
        let limits = Limits {
            cpus: Some(1.5),
            ..Default::default()
        };
        cg.apply(&limits).unwrap();
        assert_eq!(fs.read("box/cpu.max"), "150000 100000");
        // A v1 cpu directory: two files, the period and the quota in it.
        let v1 = fs.root.path().join("v1cpu");
        std::fs::create_dir(&v1).unwrap();
        for f in ["cpu.cfs_period_us", "cpu.cfs_quota_us"] {
            std::fs::write(v1.join(f), "-1").unwrap();
        }
        let dirs = vec![Dir {
            version: Version::V1,
            path: v1,
            controllers: vec![Controller::Cpu],
        }];
        CgroupHandle::open(&fs, dirs).apply(&limits).unwrap();
        assert_eq!(fs.read("v1cpu/cpu.cfs_period_us"), "100000");
        assert_eq!(fs.read("v1cpu/cpu.cfs_quota_us"), "150000");
    }

    #[test]
    fn joining_writes_the_pid_into_cgroup_procs_of_every_directory() {
        let fs = CgroupV2Fixture::new("pids");
        let mut dirs = handle_on(&fs, &[Controller::Pids]).dirs().to_vec();
        let other = fs.root.path().join("v1pids");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("cgroup.procs"), "").unwrap();
        dirs.push(Dir {
            version: Version::V1,
            path: other,
            controllers: vec![Controller::Pids],
        });
        CgroupHandle::open(&fs, dirs)
            .add_process(Pid::from_raw(4242))
            .unwrap();
        assert_eq!(fs.read("box/cgroup.procs"), "4242");
        assert_eq!(fs.read("v1pids/cgroup.procs"), "4242");
    }

    #[test]
    fn controllers_are_enabled_with_plus_names_in_subtree_control() {
        let fs = CgroupV2Fixture::new("cpu memory pids");
        let cg = CgroupHandle::open(&fs, Vec::new());
        cg.enable_controllers(fs.root.path(), &[Controller::Memory, Controller::Pids])
            .unwrap();
        assert_eq!(fs.read("cgroup.subtree_control"), "memory pids");
        cg.enable_controllers(fs.root.path(), &[Controller::Memory, Controller::Cpu])
            .unwrap();
        assert_eq!(fs.read("cgroup.subtree_control"), "cpu memory pids");
    }

    #[test]
    fn a_v2_cgroup_enables_its_controllers_from_the_root_down_and_writes_v2_files() {
        let fs = CgroupV2Fixture::new("cpuset cpu io memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let limits = limits();
        let cg = Cgroup::create(&fs, &layout, "box", &limits.controllers()).unwrap();
        cg.apply(&limits).unwrap();
        cg.add_process(Pid::from_raw(4242)).unwrap();
        assert_eq!(cg.dirs().len(), 1, "one tree on a unified host");
        assert_eq!(fs.read("cgroup.subtree_control"), "cpu cpuset memory pids");
        assert_eq!(
            fs.read("mini-docker/cgroup.subtree_control"),
            "cpu cpuset memory pids"
        );
        assert_eq!(fs.read("mini-docker/box/memory.max"), "67108864");
        assert_eq!(fs.read("mini-docker/box/memory.swap.max"), "0");
        assert_eq!(fs.read("mini-docker/box/cpu.max"), "50000 100000");
        assert_eq!(fs.read("mini-docker/box/pids.max"), "20");
        assert_eq!(fs.read("mini-docker/box/cpuset.cpus"), "0");
        assert_eq!(fs.read("mini-docker/box/cgroup.procs"), "4242");
        // On a pure v2 host a child born in the cgroup has nothing left to join.
        assert_eq!(
            cg.v2_path(),
            Some(fs.root.path().join("mini-docker/box").as_path())
        );
        cg.join_self_v1().unwrap();
        assert_eq!(fs.read("mini-docker/box/cgroup.procs"), "4242");
    }

    #[test]
    fn block_io_limits_go_to_io_max_one_line_per_device_and_io_stat_counts() {
        let fs = CgroupV2Fixture::new("cpu io memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let limit = |minor, rate, value| IoLimit {
            major: 8,
            minor,
            rate,
            value,
        };
        let limits = Limits {
            io: vec![
                limit(0, IoRate::ReadBps, 1 << 20),
                limit(0, IoRate::WriteIops, 100),
            ],
            ..Limits::default()
        };
        let cg = Cgroup::create(&fs, &layout, "box", &limits.controllers()).unwrap();
        cg.apply(&limits).unwrap();
        assert_eq!(
            fs.read("mini-docker/cgroup.subtree_control"),
            "cpu io memory pids"
        );
        assert_eq!(
            fs.read("mini-docker/box/io.max"),
            "8:0 rbps=1048576 wiops=100"
        );
        fs.write(
            "mini-docker/box/io.stat",
            "8:0 rbytes=4096 wbytes=1024 rios=1 wios=1 dbytes=0 dios=0\n",
        );
        let s = cg.stats().unwrap();
        assert_eq!(
            (s.io_read_bytes, s.io_write_bytes),
            (Some(4096), Some(1024))
        );
    }

    #[test]
    fn without_io_a_cgroup_is_still_made_unless_a_block_io_limit_is_asked_for() {
        let fs = CgroupV2Fixture::new("cpu memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        // Asked for statistics only (mini-docker does): skipped.
        let cg = Cgroup::create(
            &fs,
            &layout,
            "box",
            &[Controller::Memory, Controller::Blkio, Controller::Io],
        )
        .unwrap();
        assert_eq!(cg.stats().unwrap().io_write_bytes, None);
        cg.remove().unwrap();
        // A limit without the controller is an error that says what is missing.
        let limits = Limits {
            io: vec![IoLimit {
                major: 8,
                minor: 0,
                rate: IoRate::WriteBps,
                value: 1,
            }],
            ..Limits::default()
        };
        let cg = Cgroup::create(&fs, &layout, "box", &limits.controllers()).unwrap();
        let err = cg.apply(&limits).unwrap_err().to_string();
        assert!(err.contains("blkio (v1) or io (v2)"), "{err}");
    }

    #[test]
    fn v2_statistics_come_from_memory_events_cpu_stat_and_pids_events() {
        let fs = CgroupV2Fixture::new("cpu memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let limits = limits();
        let cg = Cgroup::create(
            &fs,
            &layout,
            "box",
            &[Controller::Memory, Controller::Cpu, Controller::Pids],
        )
        .unwrap();
        cg.apply(&limits).unwrap();
        fs.write("mini-docker/box/memory.peak", "67108864\n");
        fs.write(
            "mini-docker/box/memory.events",
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        );
        fs.write(
            "mini-docker/box/cpu.stat",
            "usage_usec 1500000\nnr_periods 30\nnr_throttled 20\nthrottled_usec 990000\n",
        );
        fs.write("mini-docker/box/pids.events", "max 3\n");
        let s = cg.stats().unwrap();
        assert_eq!(s.memory_peak, Some(64 << 20));
        assert_eq!(s.memory_limit, Some(64 << 20));
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!(s.cpu_usage, Some(Duration::from_millis(1500)));
        assert_eq!(s.cpu_limit, Some(0.5));
        assert_eq!(
            (s.cpu_periods, s.cpu_throttled_periods),
            (Some(30), Some(20))
        );
        assert_eq!(s.pids_limit, Some(20));
        assert_eq!(s.pids_refused, Some(3));
    }

    #[test]
    fn removal_kills_through_cgroup_kill_and_takes_the_empty_parent_along() {
        let fs = CgroupV2Fixture::new("memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let a = Cgroup::create(&fs, &layout, "a", &[Controller::Memory]).unwrap();
        let b = Cgroup::create(&fs, &layout, "b", &[Controller::Memory]).unwrap();
        a.remove().unwrap();
        assert!(
            fs.root.path().join("mini-docker").exists(),
            "b still lives in the parent"
        );
        drop(b); // the guard removes it
        assert!(!fs.root.path().join("mini-docker").exists());
    }

    #[test]
    fn an_opened_cgroup_is_never_removed_by_a_drop_only_by_an_explicit_remove() {
        let fs = CgroupV2Fixture::new("memory pids");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        // Created, then handed over to a container's record.
        let dirs = Cgroup::create(&fs, &layout, "box", &[Controller::Pids])
            .unwrap()
            .into_dirs();
        let dir = fs.root.path().join("mini-docker/box");
        assert!(dir.is_dir(), "handed over, not removed");
        // `pause`, `stats` and `update` open it, use it, and drop the handle, even by a panic.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let handle = CgroupHandle::open(&fs, dirs.clone());
            handle.apply(&limits()).unwrap();
            panic!("a bug between opening and using it");
        }));
        assert!(opened.is_err());
        assert!(
            dir.is_dir(),
            "a dropped handle removed the container's cgroup"
        );
        // Only the explicit act of an owner's successor removes it.
        CgroupHandle::open(&fs, dirs).remove().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn freezing_a_v2_cgroup_writes_cgroup_freeze_and_waits_for_cgroup_events() {
        let fs = CgroupV2Fixture::new("memory");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let cg = Cgroup::create(&fs, &layout, "box", &[Controller::Memory]).unwrap();
        // The "kernel" reports frozen already, as it would once every task stopped.
        fs.write("mini-docker/box/cgroup.events", "populated 1\nfrozen 1\n");
        cg.freeze(true).unwrap();
        assert_eq!(fs.read("mini-docker/box/cgroup.freeze"), "1");
        assert!(cg.frozen().unwrap());
    }

    #[test]
    fn a_missing_controller_is_named() {
        let fs = CgroupV2Fixture::new("memory");
        let layout = Layout::from_mountinfo(&fs.mountinfo());
        let err = Cgroup::create(&fs, &layout, "box", &[Controller::Pids]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the pids controller is not available on this host (see `ch02-cgroups info`)"
        );
        assert!(!fs.root.path().join("mini-docker/box").exists());
    }
}
