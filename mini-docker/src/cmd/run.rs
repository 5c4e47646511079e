//! `mini-docker run` = create + start + attach, as the seed walks through it: pull the image
//! if it is missing, create the container (its writable layer on top of the image's), start
//! it, and stay attached (or print its id with `-d`). With `-i -t`, `Ctrl-P Ctrl-Q` leaves
//! it running in the background.
use clap::Args;

use ch04_unionfs_layers::sys::Kernel;

use super::create::{ContainerArgs, create};
use crate::monitor::{self, Mode};
use crate::{Cli, Error, containers};

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// The container.
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Runs the container; returns its exit code (or 0 with `-d`).
pub fn run(sys: &Kernel, cli: &Cli, args: &RunArgs) -> Result<i32, Error> {
    let root = cli.root.as_path();
    let keys = super::attach::detach_keys(args.detach_keys.as_deref())?;
    let c = create(cli, &args.container)?;
    let started = if args.detach {
        monitor::spawn_detached(root, &c).map(|_| {
            println!("{}", c.id());
            0
        })
    } else if c.config.tty && c.config.open_stdin {
        // `-it`: the user may detach, so the container gets a monitor of its own.
        monitor::run_attached(root, &c, keys)
    } else {
        // In the foreground the CLI is the monitor: no extra process, and Ctrl-C or a
        // kill of the CLI reaches the container as docker's sig-proxy does.
        monitor::supervise(sys, root, &c, Mode::Foreground, None, None)
    };
    if started.is_err() && c.config.host.auto_remove {
        let _ = containers::remove(root, &c, true);
    }
    started
}
