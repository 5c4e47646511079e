//! `ch02-cgroups`: the chapter's demo. Parses arguments, calls the library, prints errors.
use std::process::ExitCode;

use ch02_cgroups::cli::{Cli, Command, DemoKind};
use ch02_cgroups::sys::Kernel;
use ch02_cgroups::{Error, Layout, demo};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sys = Kernel::new(cli.trace);
    let result = (|| -> Result<i32, Error> {
        if let Command::Hog(args) = &cli.command {
            return Ok(demo::hog(&sys, args));
        }
        let layout = Layout::detect().map_err(Error::Mountinfo)?;
        match &cli.command {
            Command::Run(args) => {
                let limits = args.limits.limits().map_err(Error::Usage)?;
                let report = ch02_cgroups::run(&sys, &layout, &limits, &args.command)?;
                eprint!("{report}");
                Ok(report.code())
            }
            Command::Demo {
                which: DemoKind::Memory,
            } => demo::memory(&sys, &layout),
            Command::Demo {
                which: DemoKind::Cpu,
            } => demo::cpu(&sys, &layout),
            Command::Demo {
                which: DemoKind::Pids,
            } => demo::pids(&sys, &layout),
            Command::Info => {
                print!("{}", layout.describe());
                Ok(0)
            }
            Command::Hog(_) => unreachable!("handled above"),
        }
    })();
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("ch02-cgroups: {:#}", anyhow::Error::from(err));
            ExitCode::from(code as u8)
        }
    }
}
