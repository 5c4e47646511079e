//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 4: overlay layers, whiteouts, and layers to tarballs and back.
#[derive(Debug, Parser)]
#[command(name = "ch04-unionfs-layers", version)]
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
    /// Mount an overlay of plain directories on TARGET (it stays until `umount`).
    Mount(MountArgs),
    /// Unmount TARGET.
    Umount {
        /// The mount point.
        target: PathBuf,
    },
    /// Watch copy-up, whiteouts and opaque directories happen on a scratch stack.
    Demo,
    /// Write the read-write layer UPPER as an OCI layer tarball, and list it.
    Diff(DiffArgs),
    /// Extract an OCI layer tarball into DIR: overlay whiteouts in a layer directory, or
    /// deletions with --flatten.
    Apply(ApplyArgs),
    /// Write an init layer (/etc/hostname, /etc/hosts, /etc/resolv.conf) into DIR.
    InitLayer(InitArgs),
}

/// `mount`.
#[derive(Debug, Clone, Args)]
pub struct MountArgs {
    /// The read-only layers, top first, separated by colons (overlayfs's own order).
    #[arg(long, value_name = "L1:L2:...", required = true)]
    pub lower: String,
    /// The read-write layer.
    #[arg(long, value_name = "DIR")]
    pub upper: PathBuf,
    /// overlayfs's work directory (empty, on the same filesystem as --upper).
    #[arg(long, value_name = "DIR")]
    pub work: PathBuf,
    /// Where to mount the merged view.
    pub target: PathBuf,
}

/// `diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The read-write (upper) directory.
    pub upper: PathBuf,
    /// The tarball to write; gzip-compressed when it ends in .gz.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The layer: a tar file, gzip-compressed or not.
    pub layer: PathBuf,
    /// The directory to extract into.
    pub dir: PathBuf,
    /// DIR holds the layers below: apply whiteouts as deletions instead of recording them.
    #[arg(long)]
    pub flatten: bool,
    /// Create device nodes found in the layer (skipped otherwise).
    #[arg(long)]
    pub devices: bool,
}

/// `init-layer`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The directory to write the layer into.
    pub dir: PathBuf,
    /// The container's hostname.
    #[arg(long)]
    pub hostname: String,
    /// A name server (default: the host's, without loopback ones).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
}
