//! Starting a container's process: each step is a chapter's mechanism, in kernel order.
//!
//! ```text
//! parent (the monitor)                      child (becomes the container)
//! ─────────────────────────────────────     ──────────────────────────────────────────
//! cgroup: create, limits        (ch02)
//! join another PID namespace    (ch01)
//! clone3 into new namespaces and the
//!   cgroup's v2 directory       (ch01) ──▶  waits to be released
//! id maps (--userns-remap)      (ch01)
//! veth, address, ports          (ch07)
//! release ─────────────────────────────▶   into its v1 cgroups, by itself     (ch02)
//!                                           join other IPC/UTS namespaces      (ch01)
//!                                           make mounts private               (ch01)
//!                                           mount the overlay stack           (ch04)
//!                                           volumes, pivot_root, /proc /sys /dev (ch03)
//!                                           with -t: a pty from its devpts, the
//!                                           master sent to the monitor         (ch03)
//!                                           mask /proc and /sys's kernel files (ch03)
//!                                           loopback up, hostname             (ch01)
//!                                           working directory               (ch03)
//!                                           capabilities, user, seccomp, exec (ch01)
//! ```
//!
//! The overlay is mounted *inside* the container's mount namespace, so it exists only
//! there: when the container's last process exits, the kernel unmounts it, and a crash of
//! anything leaves no mount on the host.
use std::convert::Infallible;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use ch01_namespaces::confine::{self, Confinement};
use ch01_namespaces::ns::{Kind, Namespaces};
use ch01_namespaces::process::{self, ChildError, ChildOptions, Running, Stdio};
use ch02_cgroups::{Cgroup, Controller, IoLimit, Layout, Limits, Swap};
use ch03_rootfs_pivot_root::rootfs::{self, CgroupView, KernelFiles, Mount, MountKind, RootPlan};
use ch04_unionfs_layers::Stack;
use ch04_unionfs_layers::sys::{Kernel, LayerSys, RootfsSys};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::record::{Config, Container, HostConfig, MountType};
use crate::{Error, security};

/// The cgroup limits docker's flags ask for. `--memory-swap` unset means twice the memory
/// (Docker's default); -1 means unlimited swap. Devices of block I/O rates are looked up
/// now: their numbers may differ since `create` (a disk re-plugged).
pub fn limits(host: &HostConfig) -> Result<Limits, Error> {
    let memory = (host.memory > 0).then_some(host.memory);
    let swap = match (memory, host.memory_swap) {
        (None, _) => Swap::None,
        (Some(_), -1) => Swap::Unlimited,
        (Some(m), 0) => Swap::Total(2 * m),
        (Some(_), total) => Swap::Total(total as u64),
    };
    Ok(Limits {
        memory,
        swap,
        cpus: (host.nano_cpus > 0).then(|| host.nano_cpus as f64 / 1e9),
        pids: (host.pids_limit > 0).then_some(host.pids_limit),
        cpuset: (!host.cpuset_cpus.is_empty()).then(|| host.cpuset_cpus.clone()),
        io: io_limits(&host.blkio)?,
        devices: security::device_rules(host)?,
        tuning: ch02_cgroups::Tuning {
            cpu_shares: (host.cpu_shares > 0).then_some(host.cpu_shares),
            cpu_period: (host.cpu_period > 0).then_some(host.cpu_period),
            cpu_quota: (host.cpu_quota != 0).then_some(host.cpu_quota),
            memory_reservation: (host.memory_reservation > 0).then_some(host.memory_reservation),
            memory_swappiness: host.memory_swappiness.map(|v| v as u64),
            oom_kill_disable: host.oom_kill_disable,
            cpuset_mems: (!host.cpuset_mems.is_empty()).then(|| host.cpuset_mems.clone()),
        },
    })
}

fn io_limits(b: &crate::record::Blkio) -> Result<Vec<IoLimit>, Error> {
    b.entries()
        .map(|(rate, d)| {
            let (major, minor) =
                ch02_cgroups::device_numbers(Path::new(&d.path)).map_err(Error::Usage)?;
            Ok(IoLimit {
                major,
                minor,
                rate,
                value: d.rate,
            })
        })
        .collect()
}

/// Which namespaces the container gets of its own, and which it joins (`--pid
/// container:X`, `--ipc container:X`); `host` means neither.
pub fn namespaces(root: &Path, host: &HostConfig) -> Result<(CloneFlags, Vec<(Kind, Pid)>), Error> {
    let mut flags = CloneFlags::CLONE_NEWNS;
    let mut join = Vec::new();
    for (mode, kind) in [
        (&host.pid_mode, Kind::Pid),
        (&host.ipc_mode, Kind::Ipc),
        (&host.uts_mode, Kind::Uts),
    ] {
        match mode.as_str() {
            "" | "private" | "shareable" => flags |= kind.flag(),
            "host" => {}
            other => match other.strip_prefix("container:") {
                Some(target) => {
                    let c = crate::containers::find(root, target)?;
                    let state = c.live_state()?;
                    if state.pid == 0 {
                        return Err(Error::Conflict(format!(
                            "cannot join the namespaces of container {target}: it is not running"
                        )));
                    }
                    join.push((kind, Pid::from_raw(state.pid)));
                }
                None => {
                    return Err(Error::Usage(format!(
                        "invalid {} mode: {other:?}",
                        kind.file()
                    )));
                }
            },
        }
    }
    match host.network_mode.as_str() {
        "host" => {}
        mode => match mode.strip_prefix("container:") {
            // Another container's network namespace: its interfaces, its address.
            Some(target) => {
                let c = crate::containers::find(root, target)?;
                let state = c.live_state()?;
                if state.pid == 0 {
                    return Err(Error::Conflict(format!(
                        "cannot join network of a non running container: {target}"
                    )));
                }
                join.push((Kind::Net, Pid::from_raw(state.pid)));
            }
            // A namespace of its own: empty for none, wired by chapter 7 otherwise.
            None => flags |= CloneFlags::CLONE_NEWNET,
        },
    }
    Ok((flags, join))
}

/// The network chapter 7 connects the container to, if any: docker's `default` is the
/// bridge; none, host and container:X need no wiring.
pub fn network_to_join(host: &HostConfig) -> Option<&str> {
    match host.network_mode.as_str() {
        "" | "none" | "host" => None,
        m if m.starts_with("container:") => None,
        "default" => Some(ch07_veth_bridge::DEFAULT_NETWORK),
        m => Some(m),
    }
}

/// Connects the created (not yet started) container to its network: its namespace is
/// there, empty, and nothing runs in it yet (chapter 1's two-phase start).
fn connect(root: &Path, c: &Container, pid: Pid, network: &str) -> Result<(), Error> {
    let cfg = &c.config;
    let mut ports = Vec::new();
    for spec in &cfg.host.port_specs {
        ports.extend(ch07_veth_bridge::ports::parse(spec).map_err(Error::Usage)?);
    }
    if cfg.host.publish_all {
        for p in ch07_veth_bridge::ports::exposed(&cfg.exposed_ports).map_err(Error::Usage)? {
            if !ports
                .iter()
                .any(|b| b.container_port == p.container_port && b.proto == p.proto)
            {
                ports.push(p);
            }
        }
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Error::io("open", Path::new(&format!("/proc/{pid}/ns/net")), e))?;
    let req = ch07_veth_bridge::Request {
        container: &cfg.id,
        name: &cfg.name,
        hostname: &cfg.hostname,
        aliases: cfg.network_aliases.clone(),
        ip: cfg.ip.parse().ok(),
        ports,
        hosts_file: Some(c.path("init/etc/hosts")),
        netns: ch07_veth_bridge::sys::Netns {
            fd: ns.as_fd(),
            pid: pid.as_raw(),
        },
    };
    let store = ch07_veth_bridge::Store::open(root)?;
    ch07_veth_bridge::connect(&crate::netlink(), &store, network, &req)?;
    Ok(())
}

/// The network a build's `RUN` steps get by default: the bridge, as a container's
/// (chapter 6 asks for it through its `StepNetwork` seam; chapter 7 wires it).
#[derive(Debug)]
pub struct BuildBridge {
    /// The store's root.
    pub root: PathBuf,
}

impl ch06_dockerfile::container::StepNetwork for BuildBridge {
    fn connect(&self, step: &str, pid: i32, hosts_file: &Path) -> Result<(), String> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("open /proc/{pid}/ns/net: {e}"))?;
        let req = ch07_veth_bridge::Request {
            container: step,
            name: &step[..12],
            hostname: &step[..12],
            aliases: Vec::new(),
            ip: None,
            ports: Vec::new(),
            hosts_file: Some(hosts_file.to_path_buf()),
            netns: ch07_veth_bridge::sys::Netns {
                fd: ns.as_fd(),
                pid,
            },
        };
        let store = ch07_veth_bridge::Store::open(&self.root).map_err(|e| e.to_string())?;
        ch07_veth_bridge::connect(
            &crate::netlink(),
            &store,
            ch07_veth_bridge::DEFAULT_NETWORK,
            &req,
        )
        .map(drop)
        .map_err(|e| e.to_string())
    }

    fn disconnect(&self, step: &str) -> Result<(), String> {
        disconnect(&self.root, step).map_err(|e| e.to_string())
    }
}

/// Gives back what [`connect`] took: the container has stopped.
pub fn disconnect(root: &Path, id: &str) -> Result<(), Error> {
    let store = ch07_veth_bridge::Store::open(root)?;
    ch07_veth_bridge::disconnect(&crate::netlink(), &store, id, None)?;
    Ok(())
}

/// What the child mounts: volumes and bind mounts, then the init layer's three files.
pub fn mounts(root: &Path, c: &Container) -> Vec<Mount> {
    let mut out = Vec::new();
    for m in &c.config.mounts {
        let kind = match m.kind {
            MountType::Bind => MountKind::Bind(PathBuf::from(&m.source)),
            MountType::Volume if m.no_copy => {
                MountKind::Bind(crate::volumes::data_dir(root, &m.source))
            }
            MountType::Volume => MountKind::Volume(crate::volumes::data_dir(root, &m.source)),
            MountType::Tmpfs => MountKind::Tmpfs,
        };
        out.push(Mount {
            kind,
            target: PathBuf::from(&m.destination),
            read_only: m.read_only,
        });
    }
    // --init: mini-init, read-only where docker binds its docker-init (installed by launch).
    if c.config.host.init {
        out.push(Mount {
            kind: MountKind::Bind(crate::init::path(root)),
            target: PathBuf::from(crate::init::TARGET),
            read_only: true,
        });
    }
    // With --read-only, /etc/hostname, /etc/hosts and /etc/resolv.conf are read-only too,
    // as docker binds them.
    out.extend(
        ch04_unionfs_layers::init::mounts(&c.path("init"))
            .into_iter()
            .map(|m| Mount {
                read_only: m.read_only || c.config.host.read_only_rootfs,
                ..m
            }),
    );
    out
}

/// The container's cgroup directories as it sees them under `/sys/fs/cgroup`, named after
/// their hierarchies' mount points (`memory`, `cpu`, `unified`). On a hybrid host the v1
/// hierarchies only, as runc shows them: the `unified` one holds its directory (pause's
/// freezer) but is the host's systemd's business, not the container's. On a pure v2 host
/// (the hierarchy mounted at `/sys/fs/cgroup` itself) the one directory is
/// `/sys/fs/cgroup` inside, as docker shows it there.
fn cgroup_views(cgroup: &Cgroup<'_>) -> Vec<CgroupView> {
    let mut views: Vec<CgroupView> = cgroup
        .dirs()
        .iter()
        .filter_map(|d| {
            // mount point / mini-docker / ID
            let mount_point = d.path.parent()?.parent()?;
            let name = if mount_point == Path::new("/sys/fs/cgroup") {
                String::new()
            } else {
                mount_point.file_name()?.to_str()?.to_string()
            };
            Some(CgroupView {
                name,
                dir: d.path.clone(),
            })
        })
        .collect();
    if views.len() > 1 {
        views.retain(|v| v.name != "unified");
    }
    views
}

/// A started container: its process and its cgroup (the caller removes the cgroup when the
/// process has ended).
#[derive(Debug)]
pub struct Launched<'s> {
    /// The container's first process.
    pub running: Running,
    /// Its cgroup.
    pub cgroup: Cgroup<'s>,
}

/// Starts the container's process with `stdio`; `image_layers` are the image's extracted
/// layers, bottom first. With `console` (`-t`), the process makes its terminal from its own
/// devpts and sends the master through that socket (runc's console socket); `stdio` then
/// only covers the steps before.
pub fn launch<'s>(
    sys: &'s Kernel,
    root: &Path,
    c: &Container,
    image_layers: &[PathBuf],
    stdio: Stdio<'_>,
    console: Option<BorrowedFd<'_>>,
) -> Result<Launched<'s>, Error> {
    let cfg = &c.config;
    // 1. A cgroup of its own, limits set before anything runs in it.
    let cgroup_span = crate::timings::span("cgroup");
    let layout =
        Layout::detect().map_err(|e| Error::io("read", Path::new("/proc/self/mountinfo"), e))?;
    let limits = limits(&cfg.host)?;
    let mut controllers = limits.controllers();
    // Every controller docker enables, limited or not, where the host offers it: `stats`
    // counts memory, CPU and block I/O of a container without limits, and on a v2 host
    // its /sys/fs/cgroup has their files (cpuset.cpus.effective, memory.max) as docker's
    // does. (On v1 the container is in every hierarchy anyway.)
    for c in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Pids,
        Controller::Cpuset,
        Controller::Blkio,
        Controller::Io,
    ] {
        if !controllers.contains(&c) {
            controllers.push(c);
        }
    }
    // pause needs a freezer: v2's cgroup.freeze where a cgroup2 mount exists (unified or
    // hybrid), else v1's freezer controller.
    if layout.unified().is_none() {
        controllers.push(Controller::Freezer);
    }
    // In every hierarchy, as docker is: cpuset, freezer and name=systemd too, so that no
    // line of /proc/PID/cgroup leaves it in the host's root cgroup.
    let cgroup = Cgroup::create_in_every_hierarchy(
        sys as &dyn ch01_namespaces::Sys,
        &layout,
        &cfg.id,
        &controllers,
    )?;
    cgroup.apply(&limits)?;
    drop(cgroup_span);
    // 2. Namespaces: new ones, and those of other containers to join.
    let (flags, join) = namespaces(root, &cfg.host)?;
    let mut joined = Vec::new();
    for (kind, pid) in &join {
        joined.push(Namespaces::open(sys, *pid, &[*kind])?);
    }
    // A PID namespace is joined by the parent: it applies to the children it makes next.
    // Our own is kept open to come back to once the container is cloned, so that what we
    // start afterwards (chapter 7's nft) is not born inside the other container.
    let own_pid_ns =
        ch01_namespaces::Sys::open(sys, Path::new("/proc/self/ns/pid"), OFlag::O_RDONLY)?;
    for ns in &joined {
        ns.enter_pid(sys)?;
    }
    // 3. The stack: the init layer over the image's layers (top first), the writable layer.
    let mut lowers = vec![c.path("init")];
    lowers.extend(image_layers.iter().rev().cloned());
    let stack = Stack {
        lowers,
        upper: Some((c.path("upper"), c.path("work"))),
    };
    // Under --userns-remap, a user namespace of its own, and the layers seen through it.
    let (mut flags, mut remapped) = (flags, None);
    if let Some(maps) = cfg.id_maps {
        flags |= CloneFlags::CLONE_NEWUSER;
        remapped = Some(Remapped::prepare(sys, c, &stack, maps)?);
    }
    if cfg.host.init {
        crate::init::install(root)?;
    }
    let plan = RootPlan {
        rootfs: c.path("merged"),
        mounts: mounts(root, c),
        read_only_root: cfg.host.read_only_rootfs,
        // A host terminal bound in is chapter 3's way; a container gets a pty of its own.
        console: stdio.tty,
        kernel_files: KernelFiles {
            cgroups: cgroup_views(&cgroup),
            // A user namespace may not mknod(2) devices: the host's are bound.
            bind_devices: remapped.is_some(),
            sysctls: cfg
                .host
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            shm_size: if cfg.host.shm_size > 0 {
                cfg.host.shm_size
            } else {
                ch03_rootfs_pivot_root::rootfs::SHM_SIZE
            },
            ..security::kernel_files(&cfg.host)?
        },
    };
    // Compiled here, in the parent: the child only installs it.
    let seccomp = crate::timings::span("seccomp");
    let confinement = security::confinement(&cfg.host)?;
    drop(seccomp);
    // 4. Into the cgroup before it execs, so everything it does is counted and limited,
    //    without anyone writing its pid into a `cgroup.procs`: that write takes the
    //    kernel's global threadgroup lock and waits for an RCU grace period, up to ten
    //    milliseconds of every start. The child is born in its v2 directory
    //    (`CLONE_INTO_CGROUP`) and moves itself into the v1 ones (`0` into `tasks`, which
    //    spares the lock; ch02's `join_self_v1`). A child born in a user namespace of its
    //    own is nobody to the host's cgroup files: its parent moves it, the slow way.
    let child_joins = cfg.id_maps.is_none();
    let born_in = match (child_joins, cgroup.v2_path()) {
        (true, Some(dir)) => Some(ch01_namespaces::Sys::open(
            sys,
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )?),
        _ => None,
    };
    let clone_span = crate::timings::span("clone");
    let created = process::create(
        sys,
        flags,
        ChildOptions {
            detach: false,
            stdio: Some(stdio),
            cgroup: born_in.as_ref().map(|fd| fd.as_fd()),
        },
        &mut || {
            become_container(
                sys,
                &ChildPlan {
                    cgroup: child_joins.then_some(&*cgroup),
                    joined: &joined,
                    stack: &stack,
                    root: &plan,
                    flags,
                    cfg,
                    confinement: &confinement,
                    console,
                    remapped: remapped.as_ref(),
                },
            )
        },
    )?;
    drop(clone_span);
    if !joined.is_empty() {
        ch01_namespaces::Sys::setns(sys, own_pid_ns.as_fd(), "pid", CloneFlags::CLONE_NEWPID)?;
    }
    // A new user namespace has no ids until its parent maps them (chapter 1).
    if let Some(maps) = cfg.id_maps {
        let (uids, gids) = maps.ranges();
        ch01_namespaces::idmap::write_maps(sys, created.pid(), uids, gids)?;
    }
    drop(remapped);
    // Its network, wired from outside while it waits (chapter 7).
    let wired = network_to_join(&cfg.host);
    if let Some(network) = wired {
        let _network = crate::timings::span("network");
        connect(root, c, created.pid(), network)?;
    }
    drop(born_in);
    // Into the cgroup by our hand only where the child cannot join itself (see 4.).
    // (`exec` encloses the child's own steps, from its release to its execve.)
    let joined_by_us = if child_joins {
        Ok(())
    } else {
        let _join = crate::timings::span("cgroup-join");
        cgroup.add_process(created.pid())
    };
    let started = joined_by_us.map_err(Error::from).and_then(|()| {
        let _exec = crate::timings::span("exec");
        created.start(sys).map_err(Error::from)
    });
    match started {
        Ok(running) => Ok(Launched { running, cgroup }),
        // It never ran: its address and ports go back at once.
        Err(e) if wired.is_some() => Err(e.and_cleanup(disconnect(root, &cfg.id))),
        Err(e) => Err(e),
    }
}

/// A container process's environment as docker makes it (`CreateDaemonEnvironment`): a
/// default `PATH`, `HOSTNAME`, `TERM=xterm` with a terminal, then the container's own
/// variables, each replacing a default of the same name in place or coming after them.
/// (`HOME` is added last, by the caller, once the user is known, as runc adds it.)
pub fn process_env(env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut out = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        out.push("TERM=xterm".into());
    }
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for e in env {
        match out.iter().position(|o| key(o) == key(e)) {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// Everything the child needs, made in the parent before the clone.
struct ChildPlan<'a> {
    /// The container's cgroup, whose v1 hierarchies the child joins itself (see
    /// `launch`, step 4), if it does.
    cgroup: Option<&'a ch02_cgroups::CgroupHandle<'a>>,
    /// Namespaces of other containers to join (`--ipc container:X`).
    joined: &'a [Namespaces],
    /// The overlay.
    stack: &'a Stack,
    /// The mounts around it.
    root: &'a RootPlan,
    /// The new namespaces it is in.
    flags: CloneFlags,
    /// The container.
    cfg: &'a Config,
    /// Its capabilities and seccomp filter.
    confinement: &'a Confinement,
    /// Where its terminal's master goes (`-t`).
    console: Option<BorrowedFd<'a>>,
    /// Its layers seen through its user namespace's maps, to attach (`--userns-remap`).
    remapped: Option<&'a Remapped>,
}

/// The root filesystem of a container in a user namespace: its overlay, built on idmapped
/// mounts of its layers (mount_setattr(2)), so that a file host root owns on disk is seen
/// as owned by root *of the container*, and what root inside writes is stored as owned by
/// 0. The store stays as it is (dockerd instead keeps a chowned copy of every image per
/// id range), and `cp`, `diff` and `commit` read it unchanged. Built here, by the parent,
/// as a detached mount: only host root may give a mount id maps, and overlayfs's private
/// `trusted.*` xattrs (opaque directories) are out of reach of a user namespace's root.
/// The child attaches it in its own mount namespace, where it vanishes with it.
#[derive(Debug)]
struct Remapped {
    /// The overlay, detached.
    overlay: OwnedFd,
}

impl Remapped {
    fn prepare(
        sys: &Kernel,
        c: &Container,
        stack: &Stack,
        maps: crate::record::IdMaps,
    ) -> Result<Remapped, Error> {
        let (uids, gids) = maps.ranges();
        let userns = ch01_namespaces::idmap::user_namespace(sys, uids, gids)?;
        let idmapped = |dir: &Path| -> Result<OwnedFd, Error> {
            let mnt = sys.open_tree_clone(dir)?;
            sys.set_idmap(mnt.as_fd(), userns.as_fd())?;
            Ok(mnt)
        };
        // The container's directory holds the init layer and the upper and work
        // directories: one idmapped mount for all three (overlayfs wants upper and work on
        // the same mount), each opened inside it.
        let own = idmapped(&c.dir)?;
        let inside = |p: &Path| -> Result<OwnedFd, Error> {
            let rel = p.strip_prefix(&c.dir).unwrap_or(p);
            nix::fcntl::openat(
                own.as_fd(),
                rel,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                Error::Sys(ch01_namespaces::sys::SysError::new(
                    format!("openat(idmapped {:?}, {rel:?}, O_PATH)", c.dir),
                    e,
                ))
            })
        };
        let mut lowers = Vec::new();
        for lower in &stack.without_repeats().lowers {
            lowers.push(if lower.starts_with(&c.dir) {
                inside(lower)?
            } else {
                idmapped(lower)?
            });
        }
        let upper = match &stack.upper {
            Some((upper, work)) => Some((inside(upper)?, inside(work)?)),
            None => None,
        };
        let borrowed: Vec<BorrowedFd<'_>> = lowers.iter().map(|l| l.as_fd()).collect();
        let overlay = ch04_unionfs_layers::overlay::detached_from_fds(
            sys,
            &borrowed,
            upper.as_ref().map(|(u, w)| (u.as_fd(), w.as_fd())),
            // Root of the container: the ids the layers' host root is seen as.
            Some((uids.outside, gids.outside)),
        )
        .map_err(|e| {
            // Before 6.13 overlayfs refuses a layer given by descriptor: EINVAL from its own
            // parser (6.5 to 6.12), EOPNOTSUPP from the kernel's legacy one (before 6.5).
            if matches!(
                e.errno,
                nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP
            ) && e.call.contains("FSCONFIG_SET_FD")
            {
                Error::Usage(format!(
                    "--userns-remap needs Linux 6.13 or later (overlayfs layers given as descriptors): {e}"
                ))
            } else {
                e.into()
            }
        })?;
        Ok(Remapped { overlay })
    }
}

/// The child's side, in order; ends in exec.
fn become_container(sys: &dyn LayerSys, p: &ChildPlan<'_>) -> Result<Infallible, ChildError> {
    let (flags, cfg) = (p.flags, p.cfg);
    if let Some(cgroup) = p.cgroup {
        let _join = crate::timings::span("cgroup-join");
        cgroup.join_self_v1().map_err(ChildError::setup)?;
    }
    for ns in p.joined {
        ns.enter_rest(sys)?;
    }
    if p.remapped.is_some() {
        // Root of its own user namespace before anything is made (chapter 1).
        ch01_namespaces::become_root_inside(sys)?;
    }
    if cfg.host.cgroupns_mode == "private" {
        // A cgroup namespace is rooted at the cgroup its creator is in, so it is made
        // here, after the parent moved us into the container's cgroup (before `go`), not
        // at clone3 time, when we were still in the monitor's. `/proc/self/cgroup` then
        // reads `0::/` (cgroup_namespaces(7)); runc unshares at the same point.
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    let overlay = crate::timings::span("overlay-mount");
    ch01_namespaces::make_mounts_private(sys)?;
    match p.remapped {
        // Built by the parent on idmapped layers; attached here, in our mount namespace.
        Some(r) => sys.move_mount(r.overlay.as_fd(), &p.root.rootfs)?,
        None => ch04_unionfs_layers::overlay::mount(sys, p.stack, &p.root.rootfs)?,
    }
    drop(overlay);
    let switch = crate::timings::span("pivot_root");
    rootfs::switch_root(sys, p.root)?;
    drop(switch);
    // Up to the execve, which never returns: recorded by hand just before it.
    let setup = crate::timings::now_ns();
    if let Some(socket) = p.console {
        rootfs::new_console(sys, socket)?;
    }
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        sys.loopback_up()?;
    }
    if flags.contains(CloneFlags::CLONE_NEWUTS) {
        ch01_namespaces::set_hostname(sys, &cfg.hostname)?;
        if !cfg.domainname.is_empty() {
            crate::sys::set_domainname(&cfg.domainname).map_err(|e| {
                ChildError::from(ch01_namespaces::SysError::new(
                    format!("setdomainname({:?})", cfg.domainname),
                    e,
                ))
            })?;
        }
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let mut user = ch03_rootfs_pivot_root::user::resolve(&cfg.user, &passwd, &group)
        .map_err(ChildError::setup)?;
    // --group-add: a gid, or a name in the container's /etc/group (runc's lookup).
    for g in &cfg.host.group_add {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.first() == Some(&g.as_str())).then(|| f.get(2)?.parse().ok())?
                })
                .ok_or_else(|| {
                    ChildError::setup(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
        if !user.groups.contains(&gid) {
            user.groups.push(gid);
        }
    }
    // --ulimit, while we are still root enough to raise a hard limit; --oom-score-adj
    // the same way (lowering it needs CAP_SYS_RESOURCE too).
    for u in &cfg.host.ulimits {
        if let Some(resource) = crate::sys::rlimit_resource(&u.name) {
            let as_limit = |v: i64| if v < 0 { libc::RLIM_INFINITY } else { v as u64 };
            nix::sys::resource::setrlimit(resource, as_limit(u.soft), as_limit(u.hard)).map_err(
                |e| {
                    ChildError::from(ch01_namespaces::SysError::new(
                        format!("setrlimit({}, {}, {})", u.name, u.soft, u.hard),
                        e,
                    ))
                },
            )?;
        }
    }
    if cfg.host.oom_score_adj != 0 {
        std::fs::write(
            "/proc/self/oom_score_adj",
            cfg.host.oom_score_adj.to_string(),
        )
        .map_err(|e| ChildError::setup(format!("write /proc/self/oom_score_adj: {e}")))?;
    }
    // The working directory is made (as root, like Docker) before privileges are dropped.
    ch03_rootfs_pivot_root::enter_workdir(sys, Path::new(&cfg.working_dir))?;
    let mut env = process_env(&cfg.env, &cfg.hostname, cfg.tty);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    // Under --init, `/sbin/docker-init -- COMMAND...`: PID 1 is the init, which forwards
    // signals to the command and reaps every orphan (mini-docker/init).
    let mut argv = if cfg.host.init {
        vec![crate::init::TARGET.to_string(), "--".to_string()]
    } else {
        Vec::new()
    };
    argv.push(cfg.path.clone());
    argv.extend(cfg.args.iter().cloned());
    // The user, the capabilities, the seccomp filter, and exec (chapter 1's `confine`).
    let ids = confine::Ids {
        uid: user.uid,
        gid: user.gid,
        groups: Some(&user.groups),
    };
    crate::timings::record("child-setup", setup);
    Err(confine::exec(sys, p.confinement, ids, &argv, &env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_dockers_defaults_then_the_containers() {
        let env = process_env(&["PATH=/bin".into(), "A=1".into()], "box", true);
        assert_eq!(env, ["PATH=/bin", "HOSTNAME=box", "TERM=xterm", "A=1"]);
        let env = process_env(&["HOSTNAME=mine".into()], "box", false);
        assert_eq!(
            env,
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=mine"
            ]
        );
    }

    #[test]
    fn memory_swap_follows_dockers_defaults() {
        let h = |memory, memory_swap| HostConfig {
            memory,
            memory_swap,
            ..Default::default()
        };
        assert_eq!(limits(&h(0, 0)).unwrap().swap, Swap::None);
        assert_eq!(
            limits(&h(64 << 20, 0)).unwrap().swap,
            Swap::Total(128 << 20)
        );
        assert_eq!(limits(&h(64 << 20, -1)).unwrap().swap, Swap::Unlimited);
        assert_eq!(
            limits(&h(64 << 20, 100 << 20)).unwrap().swap,
            Swap::Total(100 << 20)
        );
        let cpus = HostConfig {
            nano_cpus: 1_500_000_000,
            ..Default::default()
        };
        assert_eq!(limits(&cpus).unwrap().cpus, Some(1.5));
    }
}
