//! A `RUN` step's container: the chapters' container, started for one command.
//!
//! The steps are chapter 1 to 4's, in the order mini-docker's `runtime` takes them: new
//! mount, PID, UTS and IPC namespaces (and a network namespace unless `--network host`),
//! mounts made private, an overlay of the image so far (the init layer on top, for
//! `/etc/hosts` and `/etc/resolv.conf`) with an empty writable layer, the root switch with
//! docker's masked kernel files, the working directory, the user from the image's own
//! `/etc/passwd`, docker's default capabilities and seccomp profile, exec. What the command
//! writes lands in the writable layer, which becomes the step's layer.
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use ch01_namespaces::confine::{self, Confinement};
use ch01_namespaces::process::{self, ChildError, ChildOptions, Exit};
use ch01_namespaces::{caps, seccomp};
use ch03_rootfs_pivot_root::rootfs::{self, KernelFiles, RootPlan};
use ch04_unionfs_layers::Stack;
use ch04_unionfs_layers::sys::LayerSys;
use nix::sched::CloneFlags;

use crate::Error;

/// What a `RUN` needs to know.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The image's layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// The init layer (hostname, hosts, resolv.conf), laid on top of them.
    pub init: PathBuf,
    /// The writable layer and overlayfs's work directory.
    pub upper: PathBuf,
    /// overlayfs's work directory.
    pub work: PathBuf,
    /// Where the container's root is mounted (inside its own mount namespace only).
    pub merged: PathBuf,
    /// The command line (the shell already put in front of a shell-form command).
    pub argv: Vec<String>,
    /// `KEY=VALUE`: the image's environment and the build arguments in scope.
    pub env: Vec<String>,
    /// The working directory, created if missing.
    pub workdir: String,
    /// `USER`.
    pub user: String,
    /// The container's hostname.
    pub hostname: String,
    /// Share the host's network (`--network host`) instead of having none.
    pub host_network: bool,
    /// A network to wire the step's namespace into before it runs (mini-docker's bridge,
    /// chapter 7's); none: the namespace stays empty.
    pub network: Option<std::sync::Arc<dyn StepNetwork>>,
    /// The step's ID, which the network knows it by.
    pub id: String,
    /// `RUN --mount`s: cache directories, binds, tmpfs.
    pub mounts: Vec<ch03_rootfs_pivot_root::rootfs::Mount>,
}

/// A network a `RUN` step joins, given by the caller: this chapter comes before the one
/// that builds networks (chapter 7), so mini-docker passes its bridge in through here.
pub trait StepNetwork: std::fmt::Debug + Send + Sync {
    /// Wires the namespace of `pid` (the step's process, created and not yet started);
    /// `hosts_file` is its `/etc/hosts`.
    fn connect(&self, step: &str, pid: i32, hosts_file: &Path) -> Result<(), String>;
    /// Gives back what `connect` took, once the step has ended.
    fn disconnect(&self, step: &str) -> Result<(), String>;
}

/// docker's default confinement: its 14 capabilities and its seccomp profile.
fn docker_default() -> Result<Confinement, Error> {
    let caps = caps::CapSet::docker_default();
    let profile = seccomp::parse(seccomp::DOCKER_DEFAULT).map_err(Error::Usage)?;
    let target = seccomp::Target::native(caps).map_err(Error::Usage)?;
    Ok(Confinement {
        caps,
        last_cap: confine::last_cap(),
        no_new_privs: false,
        seccomp: seccomp::compile(&profile, &target).map_err(Error::Usage)?,
    })
}

/// Runs the step's command to its end; its stdout and stderr are the builder's.
pub fn run(sys: &dyn LayerSys, spec: &RunSpec) -> Result<Exit, Error> {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if !spec.host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut lowers = vec![spec.init.clone()];
    lowers.extend(spec.layers.iter().rev().cloned());
    let stack = Stack {
        lowers,
        upper: Some((spec.upper.clone(), spec.work.clone())),
    };
    let plan = RootPlan {
        rootfs: spec.merged.clone(),
        mounts: ch04_unionfs_layers::init::mounts(&spec.init)
            .into_iter()
            .chain(spec.mounts.iter().cloned())
            .collect(),
        read_only_root: false,
        console: false,
        kernel_files: KernelFiles::docker_default(),
    };
    let confinement = docker_default()?;
    let created = process::create(sys, flags, ChildOptions::default(), &mut || {
        enter(sys, spec, &stack, &plan, &confinement, flags)
    })
    .map_err(|e| Error::Step(e.to_string()))?;
    // Wired while it waits (chapter 1's two-phase start), given back when it has ended.
    if let Some(net) = &spec.network {
        net.connect(
            &spec.id,
            created.pid().as_raw(),
            &spec.init.join("etc/hosts"),
        )
        .map_err(Error::Step)?;
    }
    let exit = created
        .start(sys)
        .and_then(|running| running.wait(sys))
        .map_err(|e| Error::Step(e.to_string()));
    if let Some(net) = &spec.network {
        net.disconnect(&spec.id).map_err(Error::Step)?;
    }
    exit
}

/// The child's side, in kernel order; ends in exec.
fn enter(
    sys: &dyn LayerSys,
    spec: &RunSpec,
    stack: &Stack,
    plan: &RootPlan,
    confinement: &Confinement,
    flags: CloneFlags,
) -> Result<Infallible, ChildError> {
    ch01_namespaces::make_mounts_private(sys)?;
    ch04_unionfs_layers::overlay::mount(sys, stack, &spec.merged)?;
    rootfs::switch_root(sys, plan)?;
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        sys.loopback_up()?;
    }
    ch01_namespaces::set_hostname(sys, &spec.hostname)?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let user = ch03_rootfs_pivot_root::user::resolve(&spec.user, &passwd, &group)
        .map_err(ChildError::setup)?;
    ch03_rootfs_pivot_root::enter_workdir(sys, Path::new(&spec.workdir))?;
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let ids = confine::Ids {
        uid: user.uid,
        gid: user.gid,
        groups: Some(&user.groups),
    };
    Err(confine::exec(sys, confinement, ids, &spec.argv, &env))
}
