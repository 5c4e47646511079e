//! The command line.
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Chapter 7: a bridge, veth pairs, NAT and published ports.
#[derive(Debug, Parser)]
#[command(name = "ch07-veth-bridge", version)]
pub struct Cli {
    /// Where the networks' state lives (the root mini-docker shares).
    #[arg(
        long,
        global = true,
        env = "MINI_DOCKER_ROOT",
        default_value = "/var/lib/mini-docker",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Print every netlink message, sysctl and nft call as it is made.
    #[arg(long, global = true)]
    pub trace: bool,
    /// Print the `ip`/`sysctl`/`nft` commands that do the same by hand.
    #[arg(long, global = true, conflicts_with = "trace")]
    pub explain: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD in new namespaces with DIR as its root, on a network.
    Run(RunArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Draw the networks and the containers on them.
    Diagram,
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The root filesystem: a directory, or a tarball to unpack first.
    #[arg(long, value_name = "DIR|TAR")]
    pub rootfs: PathBuf,
    /// The network to join.
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// The name others on a user network call it by.
    #[arg(long)]
    pub name: Option<String>,
    /// More names on the network.
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// The hostname inside.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Its address on the network.
    #[arg(long)]
    pub ip: Option<Ipv4Addr>,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `network ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List the networks.
    Ls,
    /// Show a network and its containers as JSON.
    Inspect {
        /// Names or IDs.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while containers are on them).
    Rm {
        /// Names or IDs.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `network create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The driver: only `bridge`.
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Its subnet (CIDR); by default a free /24 of 10.87.0.0/16.
    #[arg(long)]
    pub subnet: Option<String>,
    /// The bridge's address; by default the subnet's first.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// No way in or out: containers reach only each other.
    #[arg(long)]
    pub internal: bool,
    /// Its name.
    pub name: String,
}
