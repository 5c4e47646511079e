//! `ch03-rootfs-pivot_root`: the chapter's demo. Parses arguments, calls the library,
//! prints errors.
use std::process::ExitCode;

use ch03_rootfs_pivot_root::cli::{Cli, Command};
use ch03_rootfs_pivot_root::sys::Kernel;
use ch03_rootfs_pivot_root::{Error, Rootfs, escape};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sys = Kernel::new(cli.trace);
    let result = match &cli.command {
        Command::Run(args) => ch03_rootfs_pivot_root::run(&sys, args),
        Command::Escape(args) => {
            Rootfs::prepare(&args.rootfs).and_then(|r| escape::escape(&sys, &r, args.pivot))
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = Error::exit_code(&err);
            eprintln!("ch03-rootfs-pivot_root: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
