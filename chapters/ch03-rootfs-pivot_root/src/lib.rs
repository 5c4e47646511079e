//! # Chapter 3: a root filesystem of its own
//!
//! Chapter 1's new mount namespace starts as a copy of the host's mount table: the process
//! still sees the host's files. A container gets its own `/` by mounting an image's files
//! somewhere, binding its volumes into them, and then switching its root there with
//! pivot_root(2), which, unlike chroot(2), leaves nothing of the host above the new root.
//!
//! ## The lesson, in reading order
//!
//! * [`run`], the story: a child in new mount, PID, UTS and IPC namespaces enters the
//!   rootfs ([`enter`]) and execs the command with a container's environment.
//! * [`rootfs`], the mount sequence in kernel order ([`rootfs::enter_rootfs`]: private,
//!   bind, mount points, volumes, `pivot_root(".", ".")`, detach, `/proc`, `/sys`, `/dev`),
//!   one verb-named step each; mini-docker calls the same sequence.
//! * [`escape`], the demonstration: a chroot is climbed out of, a pivoted root is not.
//! * [`extract`], safe extraction: [`extract::SafeRoot`] resolves every path inside a
//!   directory, and [`extract::Extractor`] unpacks tarballs by six rules without ever
//!   writing outside the target. It is the lesson chapter 4's layers build on (chapter 4's
//!   note explains the rules); here it unpacks `--rootfs` tarballs.
//! * [`sys`], the calls this chapter adds to chapter 1's seam (pivot_root, mknod, symlink,
//!   chmod, open_tree, move_mount), which `--trace` shows.
//!
//! ## Here for mini-docker
//!
//! * [`user`]: resolving `--user` in the image's own `/etc/passwd` and `/etc/group`.
//! * In [`rootfs`]: volumes with docker's copy-up ([`rootfs::MountKind::Volume`],
//!   [`rootfs::copy_up`]), tmpfs mounts and the read-only root, which the chapter's `run`
//!   never asks for.
//!
//! [`cli`] is the binary's command line.
use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};

use ch01_namespaces::process::{self, ChildError, ChildOptions, SignalBlock};
use nix::sched::CloneFlags;

pub mod cli;
pub mod escape;
pub mod exe;
pub mod extract;
pub mod rootfs;
pub mod sys;
pub mod user;

use cli::RunArgs;
use rootfs::{RootPlan, parse_volume};
use sys::{RootfsSys, SysError};

/// What can go wrong in this chapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// Starting or waiting for the child failed.
    #[error(transparent)]
    Process(#[from] ch01_namespaces::Error),
    /// Unpacking the rootfs tarball failed.
    #[error("unpack {}", .0.display())]
    Unpack(PathBuf, #[source] extract::ExtractError),
    /// A file could not be read.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit code to leave with: the child's verdict, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// A root filesystem ready to enter: the directory given, or a tarball unpacked into a
/// temporary directory that is removed when this is dropped.
#[derive(Debug)]
pub struct Rootfs {
    path: PathBuf,
    _unpacked: Option<tempfile::TempDir>,
}

impl Rootfs {
    /// Uses `source` as it is if it is a directory; unpacks it (safely, see [`extract`])
    /// if it is a tarball, gzip-compressed or not.
    pub fn prepare(source: &Path) -> Result<Rootfs, Error> {
        let md =
            std::fs::metadata(source).map_err(|e| Error::Io(format!("{}", source.display()), e))?;
        if md.is_dir() {
            let path = source
                .canonicalize()
                .map_err(|e| Error::Io(format!("{}", source.display()), e))?;
            return Ok(Rootfs {
                path,
                _unpacked: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ch03-rootfs-")
            .tempdir()
            .map_err(|e| Error::Io("create a temporary directory".into(), e))?;
        let file = std::fs::File::open(source)
            .map_err(|e| Error::Io(format!("{}", source.display()), e))?;
        let mut reader = std::io::BufReader::new(file);
        let gzip = {
            let buf = std::io::BufRead::fill_buf(&mut reader)
                .map_err(|e| Error::Io(format!("{}", source.display()), e))?;
            buf.starts_with(&[0x1f, 0x8b])
        };
        let stream: Box<dyn Read> = if gzip {
            Box::new(flate2::bufread::GzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        extract::extract(stream, dir.path(), extract::ExtractOptions::default())
            .map_err(|e| Error::Unpack(source.to_path_buf(), e))?;
        Ok(Rootfs {
            path: dir.path().to_path_buf(),
            _unpacked: Some(dir),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Everything the child needs, decided before it is cloned.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its mounts.
    pub root: RootPlan,
    /// The hostname.
    pub hostname: Option<String>,
    /// The working directory inside.
    pub workdir: PathBuf,
    /// The command.
    pub argv: Vec<String>,
    /// Its environment: a container's, not ours.
    pub env: Vec<String>,
    /// In a user namespace of its own (`--user`).
    pub user: bool,
}

/// The environment a container starts with (Docker's defaults): a standard PATH, HOME,
/// HOSTNAME, and TERM when there is a terminal.
pub fn default_env(hostname: &str) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
        "HOME=/root".to_string(),
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(format!("TERM={term}"));
    }
    env
}

/// `ch03-rootfs-pivot_root run`: the chapter's story. Returns the exit code to leave with.
pub fn run(sys: &dyn RootfsSys, args: &RunArgs) -> Result<i32, Error> {
    // A Ctrl-C waits until the unpacked rootfs (if any) has been removed again.
    let _signals = SignalBlock::new(sys)?;
    let mounts = args
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    let rootfs = Rootfs::prepare(&args.rootfs)?;
    let hostname = args.hostname.clone();
    let plan = Plan {
        root: RootPlan {
            rootfs: rootfs.path().to_path_buf(),
            mounts,
            read_only_root: false,
            console: nix::unistd::isatty(std::io::stdin()).unwrap_or(false),
            kernel_files: rootfs::KernelFiles {
                // A user namespace's root may not make device nodes: the host's are bound.
                bind_devices: args.user,
                ..rootfs::KernelFiles::unmasked()
            },
        },
        env: default_env(hostname.as_deref().unwrap_or("localhost")),
        hostname,
        workdir: args.workdir.clone(),
        argv: args.command.clone(),
        user: args.user,
    };
    // 1. A child in new mount, PID, UTS and IPC namespaces; with --user, in a new user
    // namespace that owns them, and a network namespace (sysfs may be mounted only by a
    // user namespace that owns the network namespace it shows).
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if args.user {
        flags |= CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET;
    }
    let created = process::create(sys, flags, ChildOptions::default(), &mut || {
        enter(sys, &plan)
    })?;
    // 2. Its ids, as chapter 1 maps them.
    if args.user {
        let (uids, gids) = ch01_namespaces::idmap::root_mapping(
            nix::unistd::Uid::effective(),
            nix::unistd::Gid::effective(),
        );
        ch01_namespaces::idmap::write_maps(sys, created.pid(), uids, gids)?;
    }
    // 3. It builds its root and execs (see `enter`); we wait.
    let running = created.start(sys)?;
    Ok(running.wait(sys)?.code())
}

/// What the child does before becoming the command.
pub fn enter(sys: &dyn RootfsSys, plan: &Plan) -> Result<Infallible, ChildError> {
    if plan.user {
        ch01_namespaces::become_root_inside(sys)?;
    }
    rootfs::enter_rootfs(sys, &plan.root)?;
    if let Some(name) = &plan.hostname {
        ch01_namespaces::set_hostname(sys, name)?;
    }
    enter_workdir(sys, &plan.workdir)?;
    Err(process::exec(sys, &plan.argv, &plan.env))
}

/// Changes to the working directory, creating it (as `docker run -w` does).
pub fn enter_workdir(sys: &dyn RootfsSys, dir: &Path) -> Result<(), SysError> {
    let mut path = PathBuf::from("/");
    for part in dir
        .components()
        .skip_while(|c| matches!(c, std::path::Component::RootDir))
    {
        path.push(part);
        match sys.mkdir(&path, 0o755) {
            Ok(()) => {}
            Err(e) if e.errno == nix::errno::Errno::EEXIST => {}
            Err(e) => return Err(e),
        }
    }
    sys.chdir(dir)
}
