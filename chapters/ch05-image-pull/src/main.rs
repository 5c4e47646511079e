//! `ch05-image-pull`: the chapter's demo. Parses arguments, calls the library, prints errors.
use std::process::ExitCode;

use ch05_image_pull::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match ch05_image_pull::commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch05-image-pull: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
