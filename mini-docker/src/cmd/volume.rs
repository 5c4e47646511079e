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
        /// Set metadata for a volume (KEY=VALUE).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// Specify volume driver name (local only).
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Its name (a random one if none).
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
        /// Filter output based on conditions provided (`dangling=true`: no container uses
        /// it; `name=PART`).
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a Go template (`{{.Name}}`, `table {{.Name}}\t{{.Mountpoint}}`).
        #[arg(long, value_name = "string")]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        /// Format output using a Go template.
        #[arg(short, long, value_name = "string")]
        format: Option<String>,
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes.
    Rm {
        /// Force the removal of one or more volumes (a missing one is no error).
        #[arg(short, long)]
        force: bool,
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

/// Runs a volume command: one function per subcommand.
pub fn main(root: &Path, cmd: &VolumeCommand) -> Result<i32, Error> {
    match cmd {
        VolumeCommand::Create {
            name,
            label,
            driver,
        } => {
            if driver != "local" {
                return Err(Error::Usage(format!(
                    "create {}: error looking up volume plugin {driver}: plugin \"{driver}\" not found",
                    name.as_deref().unwrap_or_default()
                )));
            }
            create(root, name.as_deref(), label)
        }
        VolumeCommand::Ls {
            quiet,
            filter,
            format,
        } => ls(root, *quiet, filter, format.as_deref()),
        VolumeCommand::Inspect { format, names } => inspect(root, format.as_deref(), names),
        VolumeCommand::Rm { names, force } => rm(root, names, *force),
        VolumeCommand::Prune { all, force: _ } => prune(root, *all),
    }
}

/// `volume create [NAME]`: a volume without a name gets a random ID, as docker's does.
fn create(root: &Path, name: Option<&str>, labels: &[String]) -> Result<i32, Error> {
    let name = name.map_or_else(containers::new_id, str::to_string);
    let labels = labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let v = volumes::create_labeled(root, &name, false, labels)?;
    println!("{}", v.name);
    Ok(0)
}

/// `volume ls`: docker's table shows the driver and name only; `--format` sees the
/// mountpoint and scope too.
fn ls(root: &Path, quiet: bool, filters: &[String], format: Option<&str>) -> Result<i32, Error> {
    let format = crate::format::Format::parse(format)?;
    let list = apply_filters(root, volumes::list(root)?, filters)?;
    if quiet {
        for v in list {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let objects: Vec<serde_json::Value> = list
        .iter()
        .map(|v| {
            serde_json::json!({
                "Driver": v.driver,
                "Name": v.name,
                "Mountpoint": v.mountpoint,
                "Scope": "local",
            })
        })
        .collect();
    let headers = [
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
    ];
    match format.render(&objects, &headers)? {
        Some(out) => print!("{out}"),
        None => {
            let rows: Vec<Vec<String>> = list.into_iter().map(|v| vec![v.driver, v.name]).collect();
            print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
        }
    }
    Ok(0)
}

/// `volume ls --filter`: `dangling=BOOL` (no container uses it, running or not) and
/// `name=PART`, each narrowing what the one before kept.
fn apply_filters(
    root: &Path,
    mut list: Vec<volumes::Volume>,
    filters: &[String],
) -> Result<Vec<volumes::Volume>, Error> {
    for f in filters {
        match f.split_once('=') {
            Some(("dangling", v @ ("true" | "false" | "1" | "0"))) => {
                let dangling = matches!(v, "true" | "1");
                let mut kept = Vec::new();
                for vol in list {
                    if containers::volume_users(root, &vol.name)?.is_empty() == dangling {
                        kept.push(vol);
                    }
                }
                list = kept;
            }
            Some(("name", part)) => list.retain(|v| v.name.contains(part)),
            _ => return Err(Error::Usage(format!("invalid filter '{f}'"))),
        }
    }
    Ok(list)
}

/// `volume inspect`: all or nothing, unlike `inspect`: the first missing volume is the
/// error and nothing is printed (docker prints the others).
fn inspect(root: &Path, format: Option<&str>, names: &[String]) -> Result<i32, Error> {
    let template = format
        .map(crate::template::Template::parse)
        .transpose()
        .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
    // docker's way: what is found is printed, each missing one is said on stderr, and
    // the status is 1 if any was missing.
    let mut out = Vec::new();
    let mut status = 0;
    for n in names {
        match volumes::inspect(root, n) {
            Ok(v) => out.push(v.docker_json()),
            Err(e) => {
                crate::say(&e);
                status = 1;
            }
        }
    }
    match template {
        Some(t) => {
            for v in &out {
                println!("{}", t.render(v).map_err(|e| Error::Usage(e.to_string()))?);
            }
        }
        None => println!(
            "{}",
            crate::format::inspect_json(&serde_json::Value::from(out))
        ),
    }
    Ok(status)
}

/// `volume rm`: each name on its own, a volume a container uses refused; the exit code is
/// 1 if any failed, as docker's.
fn rm(root: &Path, names: &[String], force: bool) -> Result<i32, Error> {
    Ok(crate::cmd::each_named(names, |n| {
        match volumes::remove(root, n, &containers::volume_users(root, n)?) {
            Err(Error::NoSuchVolume(_)) if force => Ok(()),
            r => r,
        }
    }))
}

/// `volume prune [-a]`: unused anonymous volumes, with -a unused named ones too, as
/// docker 23 and later do.
fn prune(root: &Path, all: bool) -> Result<i32, Error> {
    let (reclaimed, names) = volumes::prune(root, all, |v| {
        containers::volume_users(root, v).map(|u| !u.is_empty())
    })?;
    crate::format::print_prune(&[("Volumes", names)], reclaimed);
    Ok(0)
}
