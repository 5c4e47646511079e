//! `ch07-veth-bridge`: the chapter's demo. Parses arguments, calls the library, prints
//! errors.
use std::process::ExitCode;

use ch07_veth_bridge::cli::Cli;
use ch07_veth_bridge::sys::{Netlink, Show};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let show = if cli.trace {
        Show::Trace
    } else if cli.explain {
        Show::Explain
    } else {
        Show::Quiet
    };
    let sys = Netlink::new(show);
    match ch07_veth_bridge::commands::run(&cli.root, &sys, &cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("ch07-veth-bridge: {err:#}");
            ExitCode::from(1)
        }
    }
}
