//! `mini-docker ps`: docker's table of containers, from their records on disk. A container
//! whose monitor died shows as exited (see `Container::live_state`).
use std::path::Path;

use clap::Args;

use crate::format::{Format, command, human_duration, since, table};
use crate::record::{Container, State, Status};
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
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, value_name = "int")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided (status=, name=, id=, ancestor=,
    /// exited=, volume=, before=, since=).
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a Go template (`table {{.ID}}\t{{.Names}}`, `{{.Status}}`).
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

/// The fields of `ps --format`, with their table headers (docker's container formatter).
const FIELDS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
];

/// docker's SIZE: the writable layer, and with the image under it, `5kB (virtual 2MB)`.
fn size_text(root: &Path, c: &Container) -> String {
    let upper = ch05_image_pull::store::dir_size(&c.path("upper")).unwrap_or(0);
    let image = crate::store(root)
        .ok()
        .and_then(|s| s.resolve(&c.config.image_id).ok().flatten())
        .map_or(0, |i| i.size);
    format!(
        "{} (virtual {})",
        crate::format::short_size(upper),
        crate::format::short_size(upper + image)
    )
}

/// One container as `ps --format` sees it. The size (a walk of the writable layer) only
/// when the template asks for it.
fn fields(
    root: &Path,
    c: &Container,
    state: &State,
    id: &str,
    full: bool,
    size: bool,
) -> serde_json::Value {
    // A volume's source is its name; a bind mount's, its host path.
    let mounts: Vec<&str> = c
        .config
        .mounts
        .iter()
        .filter(|m| m.kind != crate::record::MountType::Tmpfs)
        .map(|m| m.source.as_str())
        .collect();
    let size = if size {
        size_text(root, c)
    } else {
        String::new()
    };
    serde_json::json!({
        "ID": id,
        "Image": c.config.image,
        "Command": command(&c.config.path, &c.config.args, full),
        "CreatedAt": crate::format::go_time(&c.config.created),
        "RunningFor": format!("{} ago", human_duration(since(&c.config.created))),
        "Ports": ports_text(root, &c.config.id),
        "State": state.status.as_str(),
        "Status": status_text(state),
        "Size": size,
        "Names": c.config.name,
        "Labels": c
            .config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        "Mounts": mounts.join(","),
        "LocalVolumes": c
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == crate::record::MountType::Volume)
            .count()
            .to_string(),
        "Networks": match c.config.host.network_mode.as_str() {
            "default" => "bridge",
            m => m,
        },
    })
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

/// The filters `ps` knows.
const FILTERS: &[&str] = &[
    "status", "name", "id", "ancestor", "exited", "label", "network", "volume", "before", "since",
];

fn matches(root: &Path, c: &Container, state: &State, filters: &[String]) -> Result<bool, Error> {
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
            "exited" => {
                let code: i32 = value.parse().map_err(|_| {
                    Error::Usage(format!("invalid filter 'exited={value}': not a number"))
                })?;
                state.status == Status::Exited && state.exit_code == code
            }
            // `label=KEY` or `label=KEY=VALUE`.
            "label" => match value.split_once('=') {
                Some((k, v)) => c.config.labels.get(k).is_some_and(|x| x == v),
                None => c.config.labels.contains_key(value),
            },
            "network" => match c.config.host.network_mode.as_str() {
                "default" => value == "bridge" || value == "default",
                m => m == value,
            },
            "volume" => c
                .config
                .mounts
                .iter()
                .any(|m| m.source == value || m.destination == value),
            "before" | "since" => {
                let other = containers::find(root, value)?;
                if key == "before" {
                    c.created() < other.created()
                } else {
                    c.created() > other.created()
                }
            }
            _ => return Err(Error::Usage(format!("Invalid filter '{key}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Prints the table (or ids).
pub fn main(root: &Path, args: &PsArgs) -> Result<i32, Error> {
    let format = Format::parse(args.format.as_deref())?;
    // Refused before any container is looked at, so an empty list says so too.
    for f in &args.filter {
        let key = f.split_once('=').map_or(f.as_str(), |(k, _)| k);
        if !FILTERS.contains(&key) {
            return Err(Error::Usage(format!("Invalid filter '{key}'")));
        }
    }
    let wants_size = args.size || args.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    // -n N and -l: the last created, whatever their state (the list is newest first).
    let last = if args.latest { Some(1) } else { args.last };
    // Filters that name states or other containers look at stopped ones too, as docker's.
    let show_all = args.all
        || last.is_some()
        || args.filter.iter().any(|f| {
            ["status=", "exited=", "before=", "since="]
                .iter()
                .any(|k| f.starts_with(k))
        });
    let mut shown = 0;
    for c in containers::list(root)? {
        if last.is_some_and(|n| shown >= n) {
            break;
        }
        let state = c.live_state()?;
        if !show_all && !matches!(state.status, Status::Running | Status::Paused) {
            continue;
        }
        if !matches(root, &c, &state, &args.filter)? {
            continue;
        }
        shown += 1;
        let id = if args.no_trunc {
            c.id().to_string()
        } else {
            c.short_id().to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        if !matches!(format, Format::Default) {
            objects.push(fields(root, &c, &state, &id, args.no_trunc, wants_size));
            continue;
        }
        let mut row = vec![
            id,
            c.config.image.clone(),
            command(&c.config.path, &c.config.args, args.no_trunc),
            format!("{} ago", human_duration(since(&c.config.created))),
            status_text(&state),
            ports_text(root, &c.config.id),
            c.config.name.clone(),
        ];
        if args.size {
            row.push(size_text(root, &c));
        }
        rows.push(row);
    }
    if let Some(out) = format.render(&objects, FIELDS)? {
        print!("{out}");
        return Ok(0);
    }
    if !args.quiet {
        let mut header = vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ];
        if args.size {
            header.push("SIZE");
        }
        print!("{}", table(&header, &rows));
    }
    Ok(0)
}

/// docker's PORTS cell (`127.0.0.1:8080->80/tcp`), from chapter 7's live endpoints.
fn ports_text(root: &Path, id: &str) -> String {
    crate::cmd::network::endpoints(root, id)
        .iter()
        .flat_map(|(_, e)| e.ports.iter())
        .map(|b| {
            format!(
                "{}:{}->{}/{}",
                b.host_ip, b.host_port, b.container_port, b.proto
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
