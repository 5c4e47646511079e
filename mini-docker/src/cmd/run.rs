//! `mini-docker run` = create + start + attach, as the seed walks through it: pull the image
//! if it is missing, create the container (its writable layer on top of the image's), start
//! it, and stay attached (or print its id with `-d`). With `-i -t`, `Ctrl-P Ctrl-Q` leaves
//! it running in the background.
use std::path::Path;

use clap::Args;

use super::create::{ContainerArgs, create};
use crate::monitor;
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
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "bool")]
    pub sig_proxy: bool,
    /// Print how long each step of the start took, on stderr, when the container has
    /// ended (not docker's: this workshop's, to see where a start spends its time).
    #[arg(long)]
    pub timings: bool,
    /// The container.
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Runs the container; returns its exit code (or 0 with `-d`).
pub fn run(cli: &Cli, args: &RunArgs) -> Result<i32, Error> {
    let begin = crate::timings::now_ns();
    if args.timings {
        if args.detach {
            return Err(Error::Usage(
                "--timings times a foreground run: it cannot be combined with -d".into(),
            ));
        }
        crate::timings::enable().map_err(|e| Error::io("memfd_create", Path::new("timings"), e))?;
    }
    let root = cli.root.as_path();
    let keys = super::attach::detach_keys(args.detach_keys.as_deref())?;
    // With --rm, `starting` marks the container as ours to start until the monitor has
    // it: if we are killed before, the next command that looks removes it.
    let (c, starting) = create(cli, &args.container)?;
    super::create::write_cidfile(&args.container, &c)?;
    let started = if args.detach {
        monitor::spawn_detached(root, &c).map(|_| {
            drop(starting);
            println!("{}", c.id());
            0
        })
    } else {
        // In the foreground we are the container's first client, not its monitor: it
        // outlives us, and (without a tty) the signals we get reach it, as docker's
        // sig-proxy does.
        monitor::run_attached(root, &c, keys, args.sig_proxy)
    };
    if started.is_err() && c.config.host.auto_remove {
        let _ = containers::remove(root, &c, true);
    }
    if args.timings {
        let steps = crate::timings::steps();
        eprint!(
            "{}",
            crate::timings::report(&steps, begin, crate::timings::now_ns())
        );
    }
    started
}
