//! Entering a root filesystem: the mount sequence a container runtime performs in the
//! child, between clone and exec, in kernel order.
//!
//! ```text
//!  make / private ─ bind rootfs onto itself ─ bind volumes into it ─ pivot_root ─ detach
//!  the old root ─ mount /proc, /sys (ro), /dev (tmpfs + nodes + devpts + mqueue + shm) ─
//!  mask and write-protect the kernel's files in /proc and /sys ─ exec
//! ```
//!
//! Every path inside the rootfs is resolved by [`SafeRoot`] (openat2 with
//! `RESOLVE_IN_ROOT`) and mounted onto through `/proc/self/fd/N`, as runc does: a symlink in
//! the image (`/data -> /etc`) can then not redirect a volume onto a host directory.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::SFlag;

use crate::extract::SafeRoot;
use crate::sys::{RootfsSys, SysError};

/// Why entering a rootfs failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A system call of the sequence failed (with its arguments and errno).
    #[error(transparent)]
    Sys(#[from] SysError),
    /// Copying the image's content into an empty volume failed with an error of std's own,
    /// one that carries no errno (the copy-up works through `std::fs`; a failed system
    /// call there is reported as [`RootfsError::Sys`] with its real errno).
    #[error("copy-up: {call}({path:?})")]
    CopyUp {
        /// The operation.
        call: &'static str,
        /// The path it was working on.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bind mount's source and its target in the rootfs are not the same kind of file:
    /// mount(2) would say ENOTDIR; this says which is which (runc's hint, in other words).
    #[error(
        "error mounting {from:?} to rootfs at {to:?}: {what}: are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type"
    )]
    WrongKind {
        /// The host path mounted.
        from: PathBuf,
        /// Where in the container.
        to: PathBuf,
        /// Which is a file and which a directory.
        what: &'static str,
    },
}

impl RootfsError {
    /// A failed `std::fs` call of the copy-up: the kernel's errno when the error holds one,
    /// else the error itself, rather than an errno made up for it.
    fn copy_up(call: &'static str, path: &Path, source: std::io::Error) -> RootfsError {
        match source.raw_os_error() {
            Some(errno) => RootfsError::Sys(SysError::new(
                format!("copy-up: {call}({path:?})"),
                nix::errno::Errno::from_raw(errno),
            )),
            None => RootfsError::CopyUp {
                call,
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// The child reports its failure to the parent as text: the whole chain of causes.
impl From<RootfsError> for ch01_namespaces::process::ChildError {
    fn from(e: RootfsError) -> Self {
        match &e {
            RootfsError::Sys(sys) => Self::setup(sys),
            RootfsError::CopyUp { source, .. } => Self::setup(format!("{e}: {source}")),
            RootfsError::WrongKind { .. } => Self::setup(e.to_string()),
        }
    }
}

/// A mount to make inside the container before the root switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// What to mount.
    pub kind: MountKind,
    /// Where, as an absolute path inside the container.
    pub target: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

/// The kinds of mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (a file or a directory).
    Bind(PathBuf),
    /// A bind mount of a volume's directory: like `Bind`, but an empty volume first
    /// receives a copy of what the image has at the target (docker's volume copy-up, so a
    /// new `/var/lib/data` volume starts with the image's files, owners and modes).
    Volume(PathBuf),
    /// A fresh tmpfs.
    Tmpfs,
}

/// What the child does to its mount table.
#[derive(Debug, Clone)]
pub struct RootPlan {
    /// The directory that becomes `/`.
    pub rootfs: PathBuf,
    /// Volumes and other mounts, in order.
    pub mounts: Vec<Mount>,
    /// Remount `/` read-only at the end (`docker run --read-only`).
    pub read_only_root: bool,
    /// Bind the terminal on stdin to `/dev/console` (when there is one).
    pub console: bool,
    /// What of the kernel's own files the container may not see or change.
    pub kernel_files: KernelFiles,
}

/// Docker's masked paths (moby `oci/defaults.go`): files that say too much about the host
/// (`/proc/kcore` is the kernel's memory, `/proc/keys` every keyring on the machine,
/// `/proc/timer_list` other processes' timers) are covered with `/dev/null`, directories
/// with an empty read-only tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Docker's read-only paths: the kernel's settings. `/proc/sys` is not namespaced for the
/// most part: `kernel/core_pattern` written from a container is the host's, and a pattern
/// starting with `|` makes the host kernel run a program of the container's choosing, as
/// host root, at the next crash anywhere on the machine.
pub const READ_ONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The kernel files a container sees, as docker sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFiles {
    /// Covered over (see [`MASKED_PATHS`]).
    pub masked: Vec<PathBuf>,
    /// Bound read-only onto themselves (see [`READ_ONLY_PATHS`]).
    pub read_only: Vec<PathBuf>,
    /// `/sys` read-only.
    pub sys_read_only: bool,
    /// Device nodes made in `/dev` besides the default ones (`--device`, and every host
    /// device with `--privileged`).
    pub devices: Vec<DeviceNode>,
    /// The container's own cgroup directories, shown under `/sys/fs/cgroup` (see
    /// [`CgroupView`]); empty shows none.
    pub cgroups: Vec<CgroupView>,
    /// Bind the host's device nodes instead of making them: in a user namespace mknod(2)
    /// of a device is refused (EPERM) even to its root, so runc binds them there too.
    pub bind_devices: bool,
    /// The size of `/dev/shm`, bytes (docker's default 64 MiB; `--shm-size`).
    pub shm_size: u64,
    /// Namespaced sysctls to set (`net.ipv4.ip_forward`, `1`: `--sysctl`), written under
    /// `/proc/sys` before it is made read-only.
    pub sysctls: Vec<(String, String)>,
}

/// docker's `/dev/shm`: 64 MiB.
pub const SHM_SIZE: u64 = 64 << 20;

/// A device node to make in the container's `/dev` (`docker run --device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Where, inside (`/dev/fuse`).
    pub path: PathBuf,
    /// `S_IFCHR` or `S_IFBLK`.
    pub kind: SFlag,
    /// Its numbers.
    pub major: u64,
    /// Its numbers.
    pub minor: u64,
    /// Permission bits, as on the host.
    pub mode: u32,
    /// The host's node, bound instead of made when [`KernelFiles::bind_devices`] is set.
    pub host_path: PathBuf,
}

/// One of the container's cgroup directories on the host, and the name it gets under
/// `/sys/fs/cgroup` inside (`memory`, `cpu`, `unified`): the hierarchy's mount point's
/// name, as docker shows them on a cgroup v1 host. Only the container's own directory is
/// bound, read-only, so runtimes that size themselves from it (the JVM, Go, .NET) find
/// their limits, and nothing above it is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupView {
    /// The name under `/sys/fs/cgroup`; empty for `/sys/fs/cgroup` itself, which the
    /// container's directory is on a pure cgroup v2 host (as docker shows it there).
    pub name: String,
    /// The host's directory (`/sys/fs/cgroup/memory/mini-docker/ID`).
    pub dir: PathBuf,
}

impl KernelFiles {
    /// A default container's.
    pub fn docker_default() -> KernelFiles {
        KernelFiles {
            masked: MASKED_PATHS.iter().map(PathBuf::from).collect(),
            read_only: READ_ONLY_PATHS.iter().map(PathBuf::from).collect(),
            sys_read_only: true,
            devices: Vec::new(),
            cgroups: Vec::new(),
            bind_devices: false,
            shm_size: SHM_SIZE,
            sysctls: Vec::new(),
        }
    }

    /// Nothing hidden, `/sys` read-only: this chapter's own `run`, whose command keeps all
    /// of root's capabilities anyway (mini-docker takes them away, and hides these files).
    pub fn unmasked() -> KernelFiles {
        KernelFiles {
            masked: Vec::new(),
            read_only: Vec::new(),
            sys_read_only: true,
            devices: Vec::new(),
            cgroups: Vec::new(),
            bind_devices: false,
            shm_size: SHM_SIZE,
            sysctls: Vec::new(),
        }
    }

    /// `--privileged`: nothing hidden, `/sys` writable.
    pub fn privileged() -> KernelFiles {
        KernelFiles {
            masked: Vec::new(),
            read_only: Vec::new(),
            sys_read_only: false,
            devices: Vec::new(),
            cgroups: Vec::new(),
            bind_devices: false,
            shm_size: SHM_SIZE,
            sysctls: Vec::new(),
        }
    }
}

/// Parses `HOST:CONTAINER[:ro|:rw]`, the `-v` syntax for bind mounts.
pub fn parse_volume(spec: &str) -> Result<Mount, String> {
    // exercise(ch03.volume): split HOST:CONTAINER[:ro|:rw], both paths absolute, with the errors the test expects
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => {
            return Err(format!(
                "invalid volume {spec:?}: expected HOST:CONTAINER[:ro]"
            ));
        }
    };
    if !host.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the host path {host:?} must be absolute"
        ));
    }
    if !container.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the container path {container:?} must be absolute"
        ));
    }
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        other => {
            return Err(format!(
                "invalid volume {spec:?}: unknown mode {other:?} (ro or rw)"
            ));
        }
    };
    Ok(Mount {
        kind: MountKind::Bind(PathBuf::from(host)),
        target: PathBuf::from(container),
        read_only,
    })
    // end exercise
}

fn rel(p: &Path) -> PathBuf {
    p.strip_prefix("/").unwrap_or(p).to_path_buf()
}

fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The whole sequence, from private mounts to a populated `/dev`. The caller (in the
/// child) then sets the hostname, the working directory, and execs.
pub fn enter_rootfs(sys: &dyn RootfsSys, plan: &RootPlan) -> Result<(), RootfsError> {
    // First, or every mount below would propagate to the host (mount_namespaces(7)).
    ch01_namespaces::make_mounts_private(sys)?;
    switch_root(sys, plan)
}

/// [`enter_rootfs`] after the mounts were made private: a runtime that mounts the rootfs
/// itself (an overlay, chapter 4) does so in between.
pub fn switch_root(sys: &dyn RootfsSys, plan: &RootPlan) -> Result<(), RootfsError> {
    // pivot_root(2) needs the new root to be a mount point; a plain directory is not one.
    bind_rootfs(sys, &plan.rootfs)?;
    // Made while the image can still be written and resolved from outside, by descriptor.
    let root = make_mount_points(&plan.rootfs)?;
    // Before the switch: afterwards the volumes' host sources are out of reach.
    mount_volumes(sys, &root, &plan.mounts)?;
    // Before the switch too: the terminal's device is in the host's devpts, which the
    // switch takes away.
    let console = hold_console(sys, plan.console)?;
    // The same for the container's cgroup directories, which are the host's too.
    let cgroups = hold_cgroups(sys, &plan.kernel_files.cgroups)?;
    // And the host's device nodes, where they are bound rather than made.
    let mut nodes = hold_device_nodes(sys, &plan.kernel_files)?;
    // A proc mount shows the PID namespace of the process that mounts it (see
    // pid_namespaces(7)), here the child's new one. Before the switch, as runc does: in a
    // user namespace the kernel allows a new proc or sysfs only while a fully visible one
    // is in the mount namespace (the host's, until the switch; "mount_too_revealing").
    ch01_namespaces::mount_proc(sys, &plan.rootfs.join("proc"))?;
    // Read-only, see mount_sys.
    mount_sys(
        sys,
        &plan.rootfs.join("sys"),
        plan.kernel_files.sys_read_only,
    )?;
    // The switch, with the old root detached: nothing of the host is left above `/`.
    pivot(sys, &plan.rootfs)?;
    mount_cgroups(sys, cgroups, plan.kernel_files.sys_read_only)?;
    // A tmpfs of the container's own, never the host's /dev; the terminal held above
    // becomes /dev/console.
    mount_dev(sys, console, &mut nodes, plan.kernel_files.shm_size)?;
    make_devices(sys, &plan.kernel_files.devices, &mut nodes)?;
    // The container's own sysctls, into its namespaces' /proc/sys while it is writable.
    for (key, value) in &plan.kernel_files.sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        sys.write_file(&path, value)?;
    }
    // After /proc, /sys (what it covers) and /dev (the /dev/null it binds).
    protect_kernel_files(sys, &plan.kernel_files)?;
    // Last: every step above needed to create something in `/`.
    if plan.read_only_root {
        remount_read_only(sys, Path::new("/"))?;
    }
    Ok(())
}

/// Binds the rootfs onto itself: pivot_root(2) needs the new root to be a mount point.
pub fn bind_rootfs(sys: &dyn RootfsSys, rootfs: &Path) -> Result<(), SysError> {
    sys.mount(
        Some(&rootfs.to_string_lossy()),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
}

/// Makes the mount points `/proc`, `/sys` and `/dev` inside the rootfs (an image need not
/// have them), resolved inside it like every path of the image, and returns the
/// [`SafeRoot`] the volumes are resolved with too.
pub fn make_mount_points(rootfs: &Path) -> Result<SafeRoot, SysError> {
    let root = SafeRoot::open(rootfs)?;
    for dir in ["proc", "sys", "dev"] {
        root.dir(Path::new(dir), true)?;
    }
    Ok(root)
}

/// With `console`, a detached bind mount of the terminal on stdin (open_tree(2) with
/// `OPEN_TREE_CLONE`), held as a descriptor across the switch for [`mount_dev`]. `None`
/// without a console, or when stdin is no terminal after all.
pub fn hold_console(sys: &dyn RootfsSys, console: bool) -> Result<Option<OwnedFd>, SysError> {
    if !console {
        return Ok(None);
    }
    match nix::unistd::ttyname(std::io::stdin()) {
        Ok(tty) => sys.open_tree_clone(&tty).map(Some),
        Err(_) => Ok(None),
    }
}

/// Mounts volumes *before* the root switch: afterwards their host sources are out of reach.
pub fn mount_volumes(
    sys: &dyn RootfsSys,
    root: &SafeRoot,
    mounts: &[Mount],
) -> Result<(), RootfsError> {
    for m in mounts {
        let is_file = match &m.kind {
            MountKind::Bind(src) | MountKind::Volume(src) => {
                // stat(2), following links, as the bind mount will: a file, or a directory?
                let st = nix::sys::stat::stat(src)
                    .map_err(|e| SysError::new(format!("stat({src:?})"), e))?;
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR
            }
            MountKind::Tmpfs => false,
        };
        // A target that exists must be of the source's kind (a tmpfs is a directory).
        if let Ok(existing) = root.resolve(&rel(&m.target), OFlag::O_PATH) {
            let st = nix::sys::stat::fstat(&existing)
                .map_err(|e| SysError::new(format!("fstat({:?})", m.target), e))?;
            let target_is_dir =
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
            if target_is_dir == is_file {
                let from = match &m.kind {
                    MountKind::Bind(src) | MountKind::Volume(src) => src.clone(),
                    MountKind::Tmpfs => PathBuf::from("tmpfs"),
                };
                return Err(RootfsError::WrongKind {
                    from,
                    to: m.target.clone(),
                    what: if is_file {
                        "the source is a file and the target a directory"
                    } else {
                        "the source is a directory and the target a file"
                    },
                });
            }
        }
        let target_fd = root.mount_point(&rel(&m.target), is_file)?;
        let target = proc_fd(&target_fd);
        if let MountKind::Volume(src) = &m.kind {
            copy_up(&target, src)?;
        }
        match &m.kind {
            MountKind::Bind(src) | MountKind::Volume(src) => {
                sys.mount(
                    Some(&src.to_string_lossy()),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
            }
            MountKind::Tmpfs => {
                // Read-only from the start: a bind remount would also drop nosuid, nodev.
                // docker's defaults: noexec, nosuid, nodev, and tmpfs's own mode (1777).
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
                if m.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                sys.mount(Some("tmpfs"), &target, Some("tmpfs"), flags, None)?;
            }
        }
        if m.read_only && !matches!(m.kind, MountKind::Tmpfs) {
            // The descriptor names the old, covered directory; resolve again to reach the
            // mount just made on top of it.
            let fresh = root.resolve(&rel(&m.target), OFlag::O_PATH)?;
            remount_read_only(sys, &proc_fd(&fresh))?;
        }
    }
    Ok(())
}

/// Fills an empty volume directory `volume` with a copy of `image_dir` (the rootfs's
/// directory the volume is about to cover): files, directories, symlinks and hard links,
/// with their owners, modes and times, as docker does for a volume mounted over image
/// content. A volume that already holds anything is left alone, so the copy happens once.
///
/// Nothing is followed: symlinks are copied as symlinks, and only real directories are
/// entered. The rootfs is the container's own, not yet running, so it cannot change
/// underneath. Device nodes, sockets and fifos are not copied (no image ships them in a
/// volume path; the Dockerfile reference describes VOLUME content as files).
pub fn copy_up(image_dir: &Path, volume: &Path) -> Result<(), RootfsError> {
    let mut entries =
        std::fs::read_dir(volume).map_err(|e| RootfsError::copy_up("opendir", volume, e))?;
    if entries.next().is_some() {
        return Ok(());
    }
    // Followed: `image_dir` is usually `/proc/self/fd/N`, a link to the resolved directory.
    let top = match std::fs::metadata(image_dir) {
        Ok(md) if md.is_dir() => md,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RootfsError::copy_up("stat", image_dir, e)),
    };
    let mut links = std::collections::HashMap::new();
    copy_dir(image_dir, volume, &mut links)
        .and_then(|()| copy_meta(volume, &top))
        .map_err(|(call, path, e)| RootfsError::copy_up(call, &path, e))
}

/// A failed step of the copy: the call, the path, and std's error.
type CopyError = (&'static str, PathBuf, std::io::Error);

fn copy_dir(
    from: &Path,
    to: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> Result<(), CopyError> {
    use std::os::unix::fs::MetadataExt;
    let read = std::fs::read_dir(from).map_err(|e| ("opendir", from.to_path_buf(), e))?;
    for entry in read {
        let entry = entry.map_err(|e| ("readdir", from.to_path_buf(), e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&src).map_err(|e| ("lstat", src.clone(), e))?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| ("mkdir", dst.clone(), e))?;
            copy_dir(&src, &dst, links)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| ("readlink", src.clone(), e))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(|e| ("symlink", dst.clone(), e))?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    std::fs::hard_link(first, &dst).map_err(|e| ("link", dst.clone(), e))?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), dst.clone());
            }
            std::fs::copy(&src, &dst).map_err(|e| ("copy", src.clone(), e))?;
        } else {
            continue;
        }
        copy_meta(&dst, &md)?;
    }
    Ok(())
}

/// Owner, mode (not for symlinks, which have none) and times, in that order: chown(2)
/// clears the set-user-ID bit, so the mode comes after it.
fn copy_meta(path: &Path, md: &std::fs::Metadata) -> Result<(), CopyError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fail = |call| move |e| (call, path.to_path_buf(), e);
    std::os::unix::fs::lchown(path, Some(md.uid()), Some(md.gid())).map_err(fail("lchown"))?;
    if !md.file_type().is_symlink() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(fail("chmod"))?;
    }
    let times = [
        nix::sys::time::TimeSpec::new(md.atime(), md.atime_nsec()),
        nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| fail("utimensat")(std::io::Error::from(e)))
}

/// A bind mount becomes read-only only by remounting it (mount(2), "MS_REMOUNT").
pub fn remount_read_only(sys: &dyn RootfsSys, target: &Path) -> Result<(), SysError> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
    sys.mount(None, target, None, flags, None)
}

/// Switches the root the way runc, crun and youki do: `fchdir` to the new root,
/// `pivot_root(".", ".")` stacks the old root on top of the new one, and detaching "."
/// then removes the old root from our mount table. No `put_old` directory is needed, so
/// read-only root filesystems work too. The old root is made a slave first, so that the
/// detach cannot propagate to the host's mounts.
pub fn pivot(sys: &dyn RootfsSys, rootfs: &Path) -> Result<(), SysError> {
    // exercise(ch03.pivot): open and fchdir to the new root, pivot_root(".", "."), make "." a recursive slave, detach it, chdir "/"
    let fd = sys.open(rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
    sys.fchdir(fd.as_fd(), rootfs)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    sys.mount(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))
    // end exercise
}

/// sysfs, read-only unless `--privileged`: a container may look at the kernel's devices,
/// not reconfigure them.
pub fn mount_sys(sys: &dyn RootfsSys, target: &Path, read_only: bool) -> Result<(), SysError> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    sys.mount(Some("sysfs"), target, Some("sysfs"), flags, None)
}

/// Detached bind mounts of the container's cgroup directories, held across the switch.
pub fn hold_cgroups(
    sys: &dyn RootfsSys,
    views: &[CgroupView],
) -> Result<Vec<(String, OwnedFd)>, SysError> {
    views
        .iter()
        .map(|v| Ok((v.name.clone(), sys.open_tree_clone(&v.dir)?)))
        .collect()
}

/// `/sys/fs/cgroup` inside: a small tmpfs with one directory per hierarchy, each the
/// container's own cgroup directory (held by [`hold_cgroups`]), or on a pure v2 host that
/// directory itself; all of it read-only unless `read_only` is false (`--privileged`).
pub fn mount_cgroups(
    sys: &dyn RootfsSys,
    held: Vec<(String, OwnedFd)>,
    read_only: bool,
) -> Result<(), SysError> {
    if held.is_empty() {
        return Ok(());
    }
    let top = Path::new("/sys/fs/cgroup");
    let locked = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let [(name, tree)] = held.as_slice()
        && name.is_empty()
    {
        // One v2 hierarchy: the container's own cgroup is /sys/fs/cgroup.
        sys.move_mount(tree.as_fd(), top)?;
        if read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
            sys.mount(None, top, None, flags, None)?;
        }
        return Ok(());
    }
    sys.mount(Some("tmpfs"), top, Some("tmpfs"), locked, Some("mode=755"))?;
    for (name, tree) in &held {
        let dir = top.join(name);
        sys.mkdir(&dir, 0o755)?;
        sys.move_mount(tree.as_fd(), &dir)?;
        if read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
            sys.mount(None, &dir, None, flags, None)?;
        }
    }
    if read_only {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
        sys.mount(None, top, None, flags, Some("mode=755"))?;
    }
    Ok(())
}

/// Binds each read-only path onto itself and remounts the bind read-only, then covers each
/// masked path: `/dev/null` bound over a file; over a directory that bind fails with
/// ENOTDIR, and an empty read-only tmpfs goes there instead (runc's `maskPath`). A path
/// this kernel does not have is skipped. Without `CAP_SYS_ADMIN` (dropped later) the
/// container cannot unmount or remount any of it.
pub fn protect_kernel_files(sys: &dyn RootfsSys, files: &KernelFiles) -> Result<(), SysError> {
    // exercise(ch03.mask): bind each read-only path onto itself and remount it read-only; cover each masked one with /dev/null (a tmpfs for a directory)
    let absent = |r: Result<(), SysError>| match r {
        Err(e) if e.errno == nix::errno::Errno::ENOENT => Ok(false),
        r => r.map(|()| true),
    };
    for path in &files.read_only {
        let source = path.to_string_lossy();
        if absent(sys.mount(
            Some(&source),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ))? {
            // A bind remount sets the mount's flags to exactly these: keep /proc's.
            let flags = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC;
            sys.mount(None, path, None, flags, None)?;
        }
    }
    for path in &files.masked {
        match sys.mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None) {
            Err(e) if e.errno == nix::errno::Errno::ENOTDIR => {
                sys.mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None)?;
            }
            r => {
                absent(r)?;
            }
        }
    }
    Ok(())
    // end exercise
}

/// A terminal of the container's own, as runc's console socket makes it: a pty from the
/// container's devpts (mounted by [`mount_dev`]), so `tty` inside prints `/dev/pts/0` and
/// no terminal of the host is reachable; its slave is also bound onto `/dev/console`. The
/// master goes out through `socket` to whoever copies the terminal's bytes (the monitor);
/// the slave becomes descriptors 0, 1 and 2 and the controlling terminal of the caller,
/// which must lead a session of its own.
pub fn new_console(sys: &dyn RootfsSys, socket: BorrowedFd<'_>) -> Result<(), SysError> {
    let ptmx = sys.open(
        Path::new("/dev/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
    )?;
    let (master, slave) = sys.pty_pair(ptmx)?;
    let console = Path::new("/dev/console");
    // The slave's name in the container (`/dev/pts/0`), what the bind needs as its source.
    let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
        .unwrap_or_else(|_| PathBuf::from("/dev/pts/0"));
    // The mount point: a regular file, which needs no CAP_MKNOD (none in a user namespace).
    sys.mknod(console, SFlag::S_IFREG, 0o600, 0, 0)?;
    sys.mount(
        Some(&name.to_string_lossy()),
        console,
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    sys.send_fd(socket, master.as_fd())?;
    drop(master);
    for (n, what) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        sys.dup2_stdio(slave.as_fd(), Path::new(what), n as i32)?;
    }
    sys.set_controlling_tty()
}

/// Host device nodes held as detached bind mounts (open_tree(2)) across the root switch,
/// by the path they take inside: what [`mount_dev`] and [`make_devices`] bind where they
/// cannot make a node (see [`KernelFiles::bind_devices`]). Empty when nodes are made.
pub type HeldNodes = Vec<(PathBuf, OwnedFd)>;

/// Takes hold of the host's nodes for the default devices and `files.devices`, if they are
/// to be bound.
pub fn hold_device_nodes(sys: &dyn RootfsSys, files: &KernelFiles) -> Result<HeldNodes, SysError> {
    if !files.bind_devices {
        return Ok(Vec::new());
    }
    let dev = Path::new("/dev");
    let mut held = Vec::new();
    for (name, _, _) in DEVICES {
        held.push((dev.join(name), sys.open_tree_clone(&dev.join(name))?));
    }
    for n in &files.devices {
        held.push((n.path.clone(), sys.open_tree_clone(&n.host_path)?));
    }
    Ok(held)
}

/// Makes the device node at `path`, or, where the host's is held in `held`, an empty file
/// with the host's node bound onto it.
fn device_node(
    sys: &dyn RootfsSys,
    held: &mut HeldNodes,
    path: &Path,
    (kind, mode, major, minor): (SFlag, u32, u64, u64),
) -> Result<(), SysError> {
    if let Some(i) = held.iter().position(|(p, _)| p == path) {
        let (_, node) = held.swap_remove(i);
        // A regular file is a mount point for a file, and needs no CAP_MKNOD.
        sys.mknod(path, SFlag::S_IFREG, 0o600, 0, 0)?;
        return sys.move_mount(node.as_fd(), path);
    }
    sys.mknod(path, kind, mode, major, minor)?;
    sys.chmod(path, mode)
}

/// Makes `nodes` in the container's `/dev` (after [`mount_dev`]), with their parent
/// directories. Whether they can be opened is the devices cgroup's decision.
pub fn make_devices(
    sys: &dyn RootfsSys,
    nodes: &[DeviceNode],
    held: &mut HeldNodes,
) -> Result<(), SysError> {
    for n in nodes {
        let mut missing = Vec::new();
        let mut dir = n.path.parent();
        while let Some(d) = dir.filter(|d| !d.exists()) {
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        for d in missing.iter().rev() {
            sys.mkdir(d, 0o755)?;
        }
        match device_node(sys, held, &n.path, (n.kind, n.mode, n.major, n.minor)) {
            // --privileged copies /dev whole: a default node is there already.
            Err(e) if e.errno == nix::errno::Errno::EEXIST => continue,
            r => r?,
        }
    }
    Ok(())
}

/// The device nodes every container gets (the OCI runtime spec's default devices).
pub const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A minimal `/dev`: a tmpfs with the default device nodes, the usual symlinks, a devpts
/// instance of its own (`newinstance`: the container's ptys are not the host's), and a
/// tmpfs for POSIX shared memory. With `console` (a detached bind mount of the terminal
/// on stdin), the terminal appears as `/dev/console`. Nodes found in `held` are bound
/// from the host instead of made.
pub fn mount_dev(
    sys: &dyn RootfsSys,
    console: Option<OwnedFd>,
    held: &mut HeldNodes,
    shm_size: u64,
) -> Result<(), SysError> {
    let dev = Path::new("/dev");
    sys.mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let node = (SFlag::S_IFCHR, 0o666, *major, *minor);
        device_node(sys, held, &dev.join(name), node)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        sys.symlink(target, &dev.join(link))?;
    }
    for dir in ["pts", "mqueue", "shm"] {
        sys.mkdir(&dev.join(dir), 0o755)?;
    }
    // Terminals belong to the `tty` group (5), where the user namespace has a group 5:
    // a rootless one maps only its user's own group.
    let options = if ch01_namespaces::idmap::gid_is_mapped(5) {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        "newinstance,ptmxmode=0666,mode=0620"
    };
    sys.mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(options),
    )?;
    // POSIX message queues (mq_overview(7)) of the container's IPC namespace, where the
    // OCI runtime spec's default mounts put them. A user namespace that does not own the
    // IPC namespace may not mount them (EPERM: rootless with the host's IPC); runc leaves
    // the directory empty then too.
    match sys.mount(
        Some("mqueue"),
        &dev.join("mqueue"),
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    ) {
        Err(e) if e.errno == nix::errno::Errno::EPERM => {}
        r => r?,
    }
    // tmpfs(5)'s size in KiB where it divides, as /proc/mounts shows it.
    let size = if shm_size.is_multiple_of(1024) {
        format!("{}k", shm_size / 1024)
    } else {
        shm_size.to_string()
    };
    sys.mount(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&format!("mode=1777,size={size}")),
    )?;
    if let Some(tty) = console {
        // A mount point for the terminal: a regular file serves, and needs no CAP_MKNOD.
        let path = dev.join("console");
        sys.mknod(&path, SFlag::S_IFREG, 0o600, 0, 0)?;
        sys.move_mount(tty.as_fd(), &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Recorder;
    use nix::errno::Errno;

    #[test]
    fn an_empty_volume_receives_the_image_content_and_a_used_one_is_left_alone() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let image = tempfile::tempdir().unwrap();
        let dir = image.path().join("data");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/file"), "from the image\n").unwrap();
        std::fs::set_permissions(dir.join("sub/file"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::hard_link(dir.join("sub/file"), dir.join("twin")).unwrap();
        // A symlink out of the image is copied as a link, never followed.
        std::os::unix::fs::symlink("/etc/shadow", dir.join("escape")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();

        // Called the way mount_volumes calls it: through the descriptor's /proc link.
        let fd = nix::fcntl::open(&dir, OFlag::O_PATH, nix::sys::stat::Mode::empty()).unwrap();
        let volume = tempfile::tempdir().unwrap();
        copy_up(&proc_fd(&fd), volume.path()).unwrap();
        let v = volume.path();
        assert_eq!(
            std::fs::read_to_string(v.join("sub/file")).unwrap(),
            "from the image\n"
        );
        let md = std::fs::metadata(v.join("sub/file")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o640);
        assert_eq!(md.nlink(), 2, "the hard link stays a hard link");
        assert_eq!(md.ino(), std::fs::metadata(v.join("twin")).unwrap().ino());
        assert_eq!(
            std::fs::read_link(v.join("escape")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(
            std::fs::metadata(v).unwrap().mode() & 0o7777,
            0o1777,
            "the volume takes the mode of the directory it covers"
        );
        assert_eq!(
            std::fs::metadata(v.join("sub")).unwrap().mtime(),
            std::fs::metadata(dir.join("sub")).unwrap().mtime()
        );

        // Used once, it is the volume's content from then on.
        std::fs::write(v.join("sub/file"), "changed in the volume\n").unwrap();
        copy_up(&dir, v).unwrap();
        assert_eq!(
            std::fs::read_to_string(v.join("sub/file")).unwrap(),
            "changed in the volume\n"
        );
        // Nothing in the image at that path: nothing to copy.
        let empty = tempfile::tempdir().unwrap();
        copy_up(&image.path().join("missing"), empty.path()).unwrap();
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_copy_up_names_the_call_the_path_and_the_kernels_errno() {
        let err = copy_up(Path::new("/"), Path::new("/nonexistent-volume")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"copy-up: opendir("/nonexistent-volume"): ENOENT (No such file or directory)"#
        );
    }

    #[test]
    fn volumes_parse_with_clear_errors() {
        assert_eq!(
            parse_volume("/srv/data:/data:ro"),
            Ok(Mount {
                kind: MountKind::Bind("/srv/data".into()),
                target: "/data".into(),
                read_only: true
            })
        );
        assert!(!parse_volume("/srv:/data").unwrap().read_only);
        assert_eq!(
            parse_volume("data:/data").unwrap_err(),
            r#"invalid volume "data:/data": the host path "data" must be absolute"#
        );
        assert_eq!(
            parse_volume("/a:b").unwrap_err(),
            r#"invalid volume "/a:b": the container path "b" must be absolute"#
        );
        assert_eq!(
            parse_volume("/a:/b:rx").unwrap_err(),
            r#"invalid volume "/a:/b:rx": unknown mode "rx" (ro or rw)"#
        );
        assert!(parse_volume("/a").is_err());
    }

    #[test]
    fn the_mount_sequence_mounts_proc_and_sys_in_the_new_root_switches_then_makes_dev() {
        let rootfs = tempfile::tempdir().unwrap();
        let volume = tempfile::tempdir().unwrap();
        let rec = Recorder::new();
        let plan = RootPlan {
            rootfs: rootfs.path().to_path_buf(),
            mounts: vec![Mount {
                kind: MountKind::Bind(volume.path().to_path_buf()),
                target: "/data".into(),
                read_only: true,
            }],
            read_only_root: false,
            console: false,
            kernel_files: KernelFiles {
                masked: vec!["/proc/kcore".into()],
                read_only: vec!["/proc/sys".into()],
                sys_read_only: true,
                devices: Vec::new(),
                cgroups: Vec::new(),
                bind_devices: false,
                shm_size: SHM_SIZE,
                sysctls: Vec::new(),
            },
        };
        enter_rootfs(&rec, &plan).unwrap();
        let calls = rec.calls().join("\n");
        let calls = calls
            .replace(&rootfs.path().display().to_string(), "ROOTFS")
            .replace(&volume.path().display().to_string(), "VOLUME");
        let calls: Vec<String> = calls
            .lines()
            .map(|l| {
                if l.starts_with("mount(") {
                    regex_fd(l)
                } else {
                    l.to_string()
                }
            })
            .collect();
        let calls = calls.join("\n");
        insta::assert_snapshot!(calls, @r#"
        mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)
        mount("ROOTFS", "ROOTFS", NULL, MS_BIND|MS_REC, NULL)
        mount("VOLUME", "/proc/self/fd/N", NULL, MS_BIND|MS_REC, NULL)
        mount(NULL, "/proc/self/fd/N", NULL, MS_RDONLY|MS_REMOUNT|MS_BIND|MS_REC, NULL)
        mount("proc", "ROOTFS/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)
        mount("sysfs", "ROOTFS/sys", "sysfs", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)
        open("ROOTFS", O_RDONLY|O_CLOEXEC|O_DIRECTORY)
        fchdir("ROOTFS")
        pivot_root(".", ".")
        mount(NULL, ".", NULL, MS_REC|MS_SLAVE, NULL)
        umount2(".", MNT_DETACH)
        chdir("/")
        mount("tmpfs", "/dev", "tmpfs", MS_NOSUID|MS_STRICTATIME, "mode=755,size=65536k")
        mknod("/dev/null", S_IFCHR|0o666, makedev(1, 3))
        chmod("/dev/null", 0o666)
        mknod("/dev/zero", S_IFCHR|0o666, makedev(1, 5))
        chmod("/dev/zero", 0o666)
        mknod("/dev/full", S_IFCHR|0o666, makedev(1, 7))
        chmod("/dev/full", 0o666)
        mknod("/dev/random", S_IFCHR|0o666, makedev(1, 8))
        chmod("/dev/random", 0o666)
        mknod("/dev/urandom", S_IFCHR|0o666, makedev(1, 9))
        chmod("/dev/urandom", 0o666)
        mknod("/dev/tty", S_IFCHR|0o666, makedev(5, 0))
        chmod("/dev/tty", 0o666)
        symlink("/proc/self/fd", "/dev/fd")
        symlink("/proc/self/fd/0", "/dev/stdin")
        symlink("/proc/self/fd/1", "/dev/stdout")
        symlink("/proc/self/fd/2", "/dev/stderr")
        symlink("pts/ptmx", "/dev/ptmx")
        mkdir("/dev/pts", 0o755)
        mkdir("/dev/mqueue", 0o755)
        mkdir("/dev/shm", 0o755)
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID|MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
        mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)
        mount("shm", "/dev/shm", "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC, "mode=1777,size=65536k")
        mount("/proc/sys", "/proc/sys", NULL, MS_BIND|MS_REC, NULL)
        mount(NULL, "/proc/sys", NULL, MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND, NULL)
        mount("/dev/null", "/proc/kcore", NULL, MS_BIND, NULL)
        "#);
        // The mount points were made inside the rootfs, not on the host.
        assert!(rootfs.path().join("data").is_dir());
        assert!(rootfs.path().join("proc").is_dir());
    }

    #[test]
    fn pivot_switches_into_the_new_root_and_detaches_the_old_one() {
        let rec = Recorder::new();
        pivot(&rec, Path::new("/tmp/rootfs")).unwrap();
        insta::assert_snapshot!(rec.calls().join("\n"), @r#"
        open("/tmp/rootfs", O_RDONLY|O_CLOEXEC|O_DIRECTORY)
        fchdir("/tmp/rootfs")
        pivot_root(".", ".")
        mount(NULL, ".", NULL, MS_REC|MS_SLAVE, NULL)
        umount2(".", MNT_DETACH)
        chdir("/")
        "#);
    }

    #[test]
    fn kernel_files_are_bound_read_only_and_masked_with_dev_null_or_an_empty_tmpfs() {
        // /proc/acpi is a directory: binding /dev/null (a file) onto it fails with ENOTDIR.
        let rec = Recorder::new().failing(r#"mount("/dev/null", "/proc/acpi""#, Errno::ENOTDIR);
        let files = KernelFiles {
            masked: vec!["/proc/kcore".into(), "/proc/acpi".into()],
            read_only: vec!["/proc/sys".into()],
            ..KernelFiles::docker_default()
        };
        protect_kernel_files(&rec, &files).unwrap();
        insta::assert_snapshot!(rec.calls().join("\n"), @r#"
        mount("/proc/sys", "/proc/sys", NULL, MS_BIND|MS_REC, NULL)
        mount(NULL, "/proc/sys", NULL, MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND, NULL)
        mount("/dev/null", "/proc/kcore", NULL, MS_BIND, NULL)
        mount("/dev/null", "/proc/acpi", NULL, MS_BIND, NULL)
        mount("tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY, NULL)
        "#);
        // A path this kernel does not have is skipped, not an error.
        let rec = Recorder::new().failing(r#"mount("/dev/null", "/proc/kcore""#, Errno::ENOENT);
        protect_kernel_files(&rec, &files).unwrap();
    }

    fn regex_fd(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("/proc/self/fd/") {
            out.push_str(&rest[..i + 14]);
            rest = rest[i + 14..].trim_start_matches(|c: char| c.is_ascii_digit());
            out.push('N');
        }
        out.push_str(rest);
        out
    }
}
