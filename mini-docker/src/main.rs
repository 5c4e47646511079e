//! # mini-docker
//!
//! A docker-like CLI built from the workshop's chapters, without a daemon: every command
//! works on the shared store (`--root`, default `/var/lib/mini-docker`), and a small
//! monitor process stays with each detached container (see `monitor`). The files here are
//! glue: the mechanisms are the chapters' (namespaces ch01, cgroups ch02, the root switch
//! ch03, layers ch04, images ch05).
//!
//! One file per command under `cmd/`; the shared pieces: `container` (a container's record
//! on disk), `containers` (finding, creating, removing them), `runtime` (starting a
//! container's process from the chapters), `monitor` (supervising it), `relay` and
//! `detach` (a client attached to it, and its detach keys), `volumes`, `format` (docker's
//! tables and wording).
#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod containers;
mod detach;
mod format;
mod init;
mod logfile;
mod monitor;
mod pump;
mod record;
mod relay;
mod runtime;
mod security;
mod space;
mod sys;
mod template;
mod terminal;
mod timings;
mod view;
mod volumes;

/// What can go wrong. Messages follow docker's where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A build failed (chapter 6 says why: the Dockerfile's line, the failing command).
    #[error(transparent)]
    Build(#[from] ch06_dockerfile::Error),
    /// No container by that name or id.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No image by that name or id.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// No volume by that name.
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// The container could not start (the code is 125, 126 or 127, as docker's).
    #[error("{message}")]
    Start {
        /// The exit code.
        code: i32,
        /// Why.
        message: String,
    },
    /// A file operation failed (the cause follows in the error chain).
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: String,
        /// To which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record on disk does not parse.
    #[error("{path}: {problem}", path = .0.display(), problem = .1)]
    Corrupt(PathBuf, String),
    /// The image store or a registry.
    #[error(transparent)]
    Image(#[from] ch05_image_pull::Error),
    /// A cgroup.
    #[error(transparent)]
    Cgroup(#[from] ch02_cgroups::Error),
    /// A process.
    #[error(transparent)]
    Process(#[from] ch01_namespaces::Error),
    /// A layer.
    #[error(transparent)]
    Layers(#[from] ch04_unionfs_layers::Error),
    /// Turning a writable layer into a layer.
    #[error(transparent)]
    Diff(#[from] ch04_unionfs_layers::diff::DiffError),
    /// A system call.
    #[error(transparent)]
    Sys(#[from] ch01_namespaces::SysError),
    /// A network (chapter 7).
    #[error(transparent)]
    Network(#[from] ch07_veth_bridge::Error),
    /// `exec`'s process could not be started (a missing command, a bad `-w` or `-u`).
    #[error(transparent)]
    Exec(Box<Error>),
    /// A step failed, and undoing what it had done failed too: both are said (design.md,
    /// "if a step and its cleanup both fail, report both").
    #[error("{error}; and undoing it failed: {cleanup}")]
    Cleanup {
        /// The step's failure.
        error: Box<Error>,
        /// The cleanup's.
        cleanup: Box<Error>,
    },
}

impl Error {
    /// `self`, with a failed cleanup after it, if it failed.
    pub fn and_cleanup(self, cleanup: Result<(), Error>) -> Error {
        match cleanup {
            Ok(()) => self,
            Err(c) => Error::Cleanup {
                error: Box::new(self),
                cleanup: Box::new(c),
            },
        }
    }

    /// A failed file operation on `path`.
    pub fn io(op: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op: op.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// `run`'s exit codes: 126 and 127 when the command cannot be run or found, 125 for
    /// everything else that is mini-docker's own failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start { code, .. } => *code,
            Error::Process(e) => e.exit_code(),
            Error::Cgroup(e) => e.exit_code(),
            Error::Cleanup { error, .. } => error.exit_code(),
            Error::Build(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// How docker's CLI turns a failure of `command` into its exit status: `run` says 125 for
/// its own failures and 126/127 when the command cannot be run or found
/// (`cli/command/container/run.go`); `exec` 126 when its process could not be started,
/// whatever the reason (`exec.go`: the runtime's exit code); every other verb 1, the
/// status of any error the daemon answered. `create` is 125 for what docker's CLI checks
/// itself before asking (a flag's value: `Error::Usage` here) and 1 for what its daemon
/// refuses. A bad flag is 125 everywhere (see `main`).
fn exit_status(command: &Command, err: &Error) -> i32 {
    match command {
        Command::Run(_) => err.exit_code(),
        Command::Create(_) => match err {
            Error::Usage(_) => 125,
            _ => 1,
        },
        Command::Exec(_) => match err {
            Error::Exec(_) => 126,
            _ => 1,
        },
        Command::Container(c) => c.command().map_or(1, |v| exit_status(&v, err)),
        _ => 1,
    }
}

/// Prints `Error: ` and `e` with its causes, each once, as docker's CLI prints what its
/// daemon answered: `rm c1 c2` says each container's failure and goes on to the next.
pub fn say(e: &Error) {
    warn(&format!("Error: {}", with_causes(e)));
}

/// One line on stderr that cannot fail: `eprintln!` panics when the write fails, and a
/// monitor's stderr is its log file in the store, which a full disk refuses. A message
/// about a full disk must not be what kills the container's monitor.
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `e` and its causes joined by `: `, skipping a cause whose text the one before already
/// ends with (an `io::Error` made with its cause's text in it).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether `--trace` was given: chapter 7's netlink calls are shown too.
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chapter 7's kernel handle, showing its messages under `--trace`.
pub fn netlink() -> ch07_veth_bridge::sys::Netlink {
    ch07_veth_bridge::sys::Netlink::new(if TRACE.load(std::sync::atomic::Ordering::Relaxed) {
        ch07_veth_bridge::sys::Show::Trace
    } else {
        ch07_veth_bridge::sys::Show::Quiet
    })
}

/// Opens the image store (chapter 5's) at `root`.
pub fn store(root: &Path) -> Result<ch05_image_pull::Store, Error> {
    ch05_image_pull::Store::open(root).map_err(Error::from)
}

/// mini-docker: containers from the workshop's chapters, with docker's verbs and flags.
#[derive(Debug, Parser)]
#[command(name = "mini-docker", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Where images, containers and volumes live.
    #[arg(
        long,
        global = true,
        env = "MINI_DOCKER_ROOT",
        default_value = "/var/lib/mini-docker",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Print every system call and registry request made.
    #[arg(long, global = true)]
    pub trace: bool,
    /// Create containers in a user namespace: root inside is an unprivileged host id
    /// (default, or USER[:GROUP] from /etc/subuid and /etc/subgid), as dockerd's option.
    #[arg(
        long,
        global = true,
        env = "MINI_DOCKER_USERNS_REMAP",
        value_name = "default|USER[:GROUP]"
    )]
    pub userns_remap: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(cmd::run::RunArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(cmd::create::CreateArgs),
    /// Start one or more stopped containers.
    Start(cmd::start::StartArgs),
    /// Stop one or more running containers.
    Stop(cmd::stop::StopArgs),
    /// Restart one or more containers.
    Restart(cmd::stop::StopArgs),
    /// Kill one or more running containers.
    Kill(cmd::kill::KillArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(cmd::wait::WaitArgs),
    /// Remove one or more containers.
    Rm(cmd::rm::RmArgs),
    /// Pause all processes within one or more containers.
    Pause(cmd::pause::PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(cmd::pause::PauseArgs),
    /// List containers.
    Ps(cmd::ps::PsArgs),
    /// Return low-level information on containers, images and volumes.
    Inspect(cmd::inspect::InspectArgs),
    /// Fetch the logs of a container.
    Logs(cmd::logs::LogsArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(cmd::attach::AttachArgs),
    /// Execute a command in a running container.
    Exec(cmd::exec::ExecArgs),
    /// Display the running processes of a container.
    Top(cmd::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(cmd::stats::StatsArgs),
    /// Export a container's filesystem as a tar archive.
    Export(cmd::export::ExportArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(cmd::import::ImportArgs),
    /// Create a new image from a container's changes.
    Commit(cmd::commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cmd::cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(cmd::diff::DiffArgs),
    /// Rename a container.
    Rename(cmd::rename::RenameArgs),
    /// Update configuration (resource limits) of one or more containers.
    Update(cmd::update::UpdateArgs),
    /// List images.
    Images(cmd::images::ImagesArgs),
    /// Remove one or more images.
    Rmi(cmd::images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(cmd::images::TagArgs),
    /// Show the history of an image.
    History(cmd::images::HistoryArgs),
    /// Download an image from a registry.
    Pull(cmd::images::PullArgs),
    /// Upload an image to a registry.
    Push(cmd::images::PushArgs),
    /// Build an image from a Dockerfile (chapter 6).
    Build(ch06_dockerfile::cli::BuildArgs),
    /// Manage builds.
    #[command(subcommand)]
    Builder(cmd::builder::BuilderCommand),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(cmd::archive::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(cmd::archive::LoadArgs),
    /// Log in to a registry.
    Login(cmd::images::LoginCommand),
    /// Log out from a registry.
    Logout(cmd::images::LogoutArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(cmd::system::ContainerCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(cmd::system::ImageCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(cmd::volume::VolumeCommand),
    /// Manage networks (chapter 7).
    #[command(subcommand)]
    Network(cmd::network::NetworkCommand),
    /// List port mappings or a specific mapping for the container.
    Port(cmd::network::PortArgs),
    /// Manage mini-docker.
    #[command(subcommand)]
    System(cmd::system::SystemCommand),
    /// Display system-wide information.
    Info {
        /// Format the output using the given Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show the mini-docker version information.
    Version {
        /// Format the output using the given Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// The monitor of a detached container (started by `run -d` and `start`).
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// The container id.
        id: String,
    },
    /// Keeps a detached `exec -t` process's terminal open (started by `exec`).
    #[command(name = "__drain", hide = true)]
    Drain {
        /// The terminal's master side, inherited.
        #[arg(long)]
        fd: i32,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // An unknown verb is docker's `'x' is not a docker command.`, status 1.
            if e.kind() == clap::error::ErrorKind::InvalidSubcommand
                && let Some(verb) = e.get(clap::error::ContextKind::InvalidSubcommand)
            {
                eprintln!(
                    "mini-docker: '{verb}' is not a mini-docker command.\nSee 'mini-docker --help'"
                );
                return ExitCode::from(1);
            }
            // docker exits 125 on a bad flag; help and version are not errors.
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    TRACE.store(cli.trace, std::sync::atomic::Ordering::Relaxed);
    match cmd::dispatch(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = exit_status(&cli.command, &err);
            say(&err);
            ExitCode::from(code as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own checks of every command and flag (unique names, groups, shorts), which a
    /// debug build otherwise runs only when that command is used.
    #[test]
    fn every_command_and_flag_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
