//! `ch06-dockerfile`: the chapter's demo. Parses arguments, calls the library, prints errors.
use std::process::ExitCode;

use ch06_dockerfile::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match ch06_dockerfile::commands::run(&cli.root, &cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch06-dockerfile: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
