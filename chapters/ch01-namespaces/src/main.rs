//! `ch01-namespaces`: the chapter's demo. Parses arguments, calls the library, prints errors.
use std::process::ExitCode;

use ch01_namespaces::cli::{Cli, Command};
use ch01_namespaces::{Kernel, ns};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sys = Kernel::new(cli.trace);
    let result = match &cli.command {
        Command::Run(args) => ch01_namespaces::run(&sys, args),
        Command::Join(args) => ch01_namespaces::join(&sys, args),
        Command::Ns(args) => {
            let proc = "/proc".as_ref();
            let reference = ns::reference(proc);
            ns::compare(proc, &args.pid, reference).map(|rows| {
                print!("{}", ns::render(&args.pid, reference, &rows));
                0
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch01-namespaces: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
