//! `mini-docker ps`: docker's table of containers, from their records on disk. A container
//! whose monitor died shows as exited (see `Container::live_state`).
use std::path::Path;

use clap::Args;

use crate::container::{Container, State, Status};
use crate::format::{command, human_duration, since, table};
use crate::{Error, containers};

/// `ps`.
#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=).
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// docker's STATUS column.
pub fn status_text(state: &State) -> String {
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", human_duration(since(&state.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&state.started_at))),
        Status::Exited => {
            let when = if state.finished_at.is_empty() {
                String::new()
            } else {
                format!(" {} ago", human_duration(since(&state.finished_at)))
            };
            format!("Exited ({}){when}", state.exit_code)
        }
    }
}

fn matches(c: &Container, state: &State, filters: &[String]) -> Result<bool, Error> {
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            return Err(Error::Usage(format!(
                "bad format of filter (expected name=value): {f}"
            )));
        };
        let ok = match key {
            "status" => state.status.as_str() == value,
            "name" => c.config.name.contains(value),
            "id" => c.id().starts_with(value),
            "ancestor" => c.config.image == value || c.config.image_id.contains(value),
            _ => return Err(Error::Usage(format!("invalid filter '{key}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Prints the table (or ids).
pub fn main(root: &Path, args: &PsArgs) -> Result<i32, Error> {
    let mut rows = Vec::new();
    let show_all = args.all || args.filter.iter().any(|f| f.starts_with("status="));
    for c in containers::list(root)? {
        let state = c.live_state()?;
        if !show_all && !matches!(state.status, Status::Running | Status::Paused) {
            continue;
        }
        if !matches(&c, &state, &args.filter)? {
            continue;
        }
        let id = if args.no_trunc {
            c.id().to_string()
        } else {
            c.short_id().to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        rows.push(vec![
            id,
            c.config.image.clone(),
            command(&c.config.path, &c.config.args, args.no_trunc),
            format!("{} ago", human_duration(since(&c.config.created))),
            status_text(&state),
            String::new(),
            c.config.name.clone(),
        ]);
    }
    if !args.quiet {
        print!(
            "{}",
            table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES"
                ],
                &rows
            )
        );
    }
    Ok(0)
}
