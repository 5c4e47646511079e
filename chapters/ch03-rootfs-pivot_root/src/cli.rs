//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 3: a root filesystem of its own, and why pivot_root beats chroot.
#[derive(Debug, Parser)]
#[command(name = "ch03-rootfs-pivot_root", version)]
pub struct Cli {
    /// Print every system call the chapter makes, with its arguments and result.
    #[arg(long, global = true)]
    pub trace: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD with DIR (or an unpacked tarball) as its root filesystem.
    Run(RunArgs),
    /// Show that a process in a plain chroot can climb out, and that after pivot_root it
    /// cannot.
    Escape(EscapeArgs),
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The root filesystem: a directory, or a tarball (.tar, .tar.gz) to unpack first.
    #[arg(long, value_name = "DIR|TAR")]
    pub rootfs: PathBuf,
    /// Bind-mount a host path into the container: HOST:CONTAINER[:ro].
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<String>,
    /// The hostname inside.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// The working directory inside (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = "/")]
    pub workdir: PathBuf,
    /// A user namespace too (and a network namespace, for sysfs): root inside is you
    /// outside, or uid 100000 when run as root. Works without root, on a rootfs you own.
    #[arg(long)]
    pub user: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `escape`.
#[derive(Debug, Clone, Args)]
pub struct EscapeArgs {
    /// The root filesystem: a directory or a tarball.
    #[arg(long, value_name = "DIR|TAR")]
    pub rootfs: PathBuf,
    /// Enter it with pivot_root (and detach the old root) instead of chroot.
    #[arg(long)]
    pub pivot: bool,
}
