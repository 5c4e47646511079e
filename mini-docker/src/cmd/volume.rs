//! `mini-docker volume`: create, ls, inspect, rm, prune.
use std::path::Path;

use clap::Subcommand;

use crate::format::table;
use crate::{Error, containers, volumes};

/// The volume commands.
#[derive(Debug, Clone, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Its name (a random one if none).
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes.
    Rm {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (with -a, unused named ones too).
    Prune {
        /// Remove all unused volumes, not just anonymous ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (there is no prompt; accepted for docker's sake).
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a volume command.
pub fn main(root: &Path, cmd: &VolumeCommand) -> Result<i32, Error> {
    match cmd {
        VolumeCommand::Create { name } => {
            let name = name.clone().unwrap_or_else(containers::new_id);
            let v = volumes::create(root, &name, false)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet } => {
            let list = volumes::list(root)?;
            if *quiet {
                for v in list {
                    println!("{}", v.name);
                }
            } else {
                let rows: Vec<Vec<String>> =
                    list.into_iter().map(|v| vec![v.driver, v.name]).collect();
                print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for n in names {
                out.push(
                    serde_json::to_value(volumes::inspect(root, n)?).expect("a volume serialises"),
                );
            }
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        }
        VolumeCommand::Rm { names } => {
            let mut status = 0;
            for n in names {
                match volumes::remove(root, n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        status = 1;
                    }
                }
            }
            return Ok(status);
        }
        VolumeCommand::Prune { all, force: _ } => {
            let (reclaimed, names) = volumes::prune(root, *all)?;
            crate::format::print_prune(&[("Volumes", names)], reclaimed);
        }
    }
    Ok(0)
}
