//! `ch04-unionfs-layers`: the chapter's demo. Parses arguments, calls the library, prints
//! errors.
use std::process::ExitCode;

use ch04_unionfs_layers::cli::Cli;
use ch04_unionfs_layers::sys::Kernel;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sys = Kernel::new(cli.trace);
    match ch04_unionfs_layers::commands::run(&sys, &cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch04-unionfs-layers: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
