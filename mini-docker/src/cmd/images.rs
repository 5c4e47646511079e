//! The image commands: `images`, `rmi`, `tag`, `history`, `pull`, `push`, `login`,
//! `logout`, all chapter 5's registry client and store, plus what only mini-docker knows:
//! which containers use which image.
use clap::Args;

use ch05_image_pull::{
    ConfigFiles, Http, Image, Platform, Progress, PullOptions, PushOptions, Reference,
};

use crate::format::Format;
use crate::format::{human_duration, short_size, table};
use crate::{Cli, Error, containers};

/// `images`.
#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show all images (there are no intermediate images here: the same list).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (`dangling=true|false`).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template (`table {{.Repository}}\t{{.Size}}`).
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only images of this repository.
    pub repository: Option<String>,
}

/// `rmi`.
#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Remove the name even if a container uses the image (the image itself stays while it
    /// is used).
    #[arg(short, long)]
    pub force: bool,
    /// The images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `tag`.
#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG].
    pub source: String,
    /// TARGET_IMAGE[:TAG].
    pub target: String,
}

/// `history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Pretty-print using a Go template (`{{.ID}}`, `{{.CreatedBy}}`, `table ...`).
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value = "true", action = clap::ArgAction::Set, value_name = "bool")]
    pub human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// The image.
    pub image: String,
}

/// `pull`.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST].
    pub reference: String,
}

/// `push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG].
    pub reference: String,
}

/// `login` (named apart from chapter 5's `LoginArgs`: clap names an argument group after
/// its struct, and two groups of one name panic in a debug build).
#[derive(Debug, Clone, Args)]
pub struct LoginCommand {
    /// Chapter 5's flags.
    #[command(flatten)]
    pub login: ch05_image_pull::cli::LoginArgs,
}

/// `logout`.
#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    pub registry: Option<String>,
}

/// An image reference from the command line, its problem named if it is bad.
pub fn reference(s: &str) -> Result<Reference, Error> {
    Reference::parse(s).map_err(|e| Error::Image(e.into()))
}

fn platform(p: Option<&str>) -> Result<Option<Platform>, Error> {
    p.map(Platform::parse).transpose().map_err(Error::Usage)
}

/// The image `name` names, pulled first when it is missing (`--pull missing`), always
/// (`always`), or never (`never`: an error if missing).
pub fn ensure_image(
    cli: &Cli,
    name: &str,
    platform_flag: Option<&str>,
    policy: &str,
) -> Result<Image, Error> {
    let store = crate::store(&cli.root)?;
    let found = match policy {
        "always" => None,
        "missing" | "never" => store.resolve(name)?,
        other => {
            return Err(Error::Usage(format!(
                "invalid pull option: {other:?}: must be one of \"always\", \"missing\" or \"never\""
            )));
        }
    };
    if let Some(image) = found {
        return Ok(image);
    }
    let r = reference(name)?;
    if policy == "never" {
        return Err(Error::NoSuchImage(r.familiar()));
    }
    if policy == "missing" {
        eprintln!("Unable to find image '{}' locally", r.familiar());
    }
    let options = PullOptions {
        platform: platform(platform_flag)?,
        progress: Progress::to_stderr(),
        config: ConfigFiles::from_env(),
    };
    Ok(ch05_image_pull::pull(
        &store,
        &Http::new(cli.trace),
        &r,
        &options,
    )?)
}

/// `images`.
pub fn images(cli: &Cli, args: &ImagesArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    let mut list = store.list()?;
    apply_filters(&mut list, &args.filter)?;
    if let Some(repo) = &args.repository {
        keep_repository(&mut list, repo)?;
    }
    // Newest first, as docker's CLI sorts them (`images -q | head -1` is the last one
    // built); chapter 5's own table is by name.
    let created = |i: &Image| {
        i.config
            .created()
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
            .map_or(i64::MIN, |t| t.as_nanosecond() as i64)
    };
    list.sort_by_key(|(_, i)| std::cmp::Reverse(created(i)));
    if args.quiet {
        print_ids(&list, args.no_trunc);
        return Ok(0);
    }
    let now = jiff::Timestamp::now().as_second();
    let mut rows = ch05_image_pull::images::rows(&list, now);
    let created_of = |id: &str| {
        list.iter()
            .find(|(_, i)| i.config_digest.short() == id)
            .map_or(i64::MIN, |(_, i)| created(i))
    };
    rows.sort_by_key(|r| std::cmp::Reverse(created_of(&r.id)));
    let format = Format::parse(args.format.as_deref())?;
    let objects = image_objects(&list, &rows);
    let headers = [
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
    ];
    match format.render(&objects, &headers)? {
        Some(out) => print!("{out}"),
        None if args.digests || args.no_trunc => print!("{}", wide_table(&list, &objects, args)),
        None => print!("{}", ch05_image_pull::images::table(&rows)),
    }
    Ok(0)
}

/// `--filter`: `dangling=BOOL` (an image without a name), `reference=PATTERN` (a glob
/// over `repository` or `repository:tag`, as docker's `reference` filter) and
/// `label=KEY[=VALUE]` (the image config's labels).
fn apply_filters(list: &mut Vec<(String, Image)>, filters: &[String]) -> Result<(), Error> {
    for f in filters {
        let (key, value) = f.split_once('=').unwrap_or((f.as_str(), ""));
        match key {
            "dangling" => {
                let dangling = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    v => {
                        return Err(Error::Usage(format!(
                            "Invalid filter 'dangling={v}': only true or false"
                        )));
                    }
                };
                list.retain(|(name, _)| name.is_empty() == dangling);
            }
            "reference" => list.retain(|(name, _)| {
                Reference::parse(name).is_ok_and(|r| {
                    let repo = r.familiar_name();
                    let tagged = format!("{repo}:{}", r.tag.as_deref().unwrap_or("latest"));
                    glob(value, &repo) || glob(value, &tagged)
                })
            }),
            "label" => list.retain(|(_, i)| {
                let labels = i
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default();
                match value.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(value),
                }
            }),
            _ => return Err(Error::Usage(format!("Invalid filter '{key}'"))),
        }
    }
    Ok(())
}

/// Go's `path.Match` for what `reference=` needs: `*` within a path segment, `?`, and
/// everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(&c)) => c != b'/' && go(&p[1..], &t[1..]),
            (Some(a), Some(b)) => a == b && go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// `images REPOSITORY`: the names in that repository, whatever their tags (docker compares
/// normalised names, so `busybox` finds `docker.io/library/busybox:latest`).
fn keep_repository(list: &mut Vec<(String, Image)>, repo: &str) -> Result<(), Error> {
    let wanted = reference(repo)?;
    list.retain(|(name, _)| Reference::parse(name).is_ok_and(|r| r.name() == wanted.name()));
    Ok(())
}

/// `images -q`: each image's ID once, however many names it has, as docker prints them.
fn print_ids(list: &[(String, Image)], no_trunc: bool) {
    let mut seen = Vec::new();
    for (_, image) in list {
        let id = if no_trunc {
            image.config_digest.to_string()
        } else {
            image.config_digest.short().to_string()
        };
        if !seen.contains(&id) {
            println!("{id}");
            seen.push(id);
        }
    }
}

/// Each row as the object `--format` templates see, with docker's field names; the digest
/// and creation time come from the image the row's short ID names.
fn image_objects(
    list: &[(String, Image)],
    rows: &[ch05_image_pull::images::Row],
) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let image = list
                .iter()
                .map(|(_, i)| i)
                .find(|i| i.config_digest.short() == r.id);
            let digest = image
                .and_then(|i| i.repo_digests.first())
                .and_then(|d| d.split_once('@'))
                .map_or("<none>".to_string(), |(_, d)| d.to_string());
            let created = image
                .and_then(|i| i.config.created().clone())
                .map(|c| crate::format::go_time(&c))
                .unwrap_or_default();
            serde_json::json!({
                "Repository": r.repository,
                "Tag": r.tag,
                "ID": r.id,
                "Digest": digest,
                "CreatedSince": r.created,
                "CreatedAt": created,
                "Size": r.size,
                // docker prints this one with four digits, SIZE with three.
                "VirtualSize": image.map(|i| crate::format::human_size(i.size)).unwrap_or_default(),
                // Counted by docker only for `system df -v`.
                "Containers": "N/A",
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
            })
        })
        .collect()
}

/// docker's table with a DIGEST column (`--digests`), or with full IDs (`--no-trunc`).
fn wide_table(
    list: &[(String, Image)],
    objects: &[serde_json::Value],
    args: &ImagesArgs,
) -> String {
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let cells: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let text = |k: &str| o[k].as_str().unwrap_or_default().to_string();
            let mut row = vec![text("Repository"), text("Tag")];
            if args.digests {
                row.push(text("Digest"));
            }
            let id = text("ID");
            let id = match list
                .iter()
                .find(|(_, i)| args.no_trunc && i.config_digest.short() == id)
            {
                Some((_, i)) => i.config_digest.to_string(),
                None => id,
            };
            row.extend([id, text("CreatedSince"), text("Size")]);
            row
        })
        .collect();
    crate::format::table(&header, &cells)
}

/// `rmi`: refuses an image a container uses, as docker does.
pub fn rmi(cli: &Cli, args: &RmiArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    let mut status = 0;
    for name in &args.images {
        let result = (|| -> Result<(), Error> {
            let image = store
                .resolve(name)?
                .ok_or_else(|| Error::NoSuchImage(name.clone()))?;
            let users: Vec<String> = containers::list(&cli.root)?
                .into_iter()
                .filter(|c| c.config.image_id == image.id().to_string())
                .map(|c| c.short_id().to_string())
                .collect();
            // Untagging one of several names leaves the image named: allowed (docker's
            // daemon/images/image_delete.go, "isSingleReference").
            let one_of_several = image.references.len() > 1
                && Reference::parse(name).is_ok_and(|r| image.references.contains(&r.store_name()));
            if !users.is_empty() && !args.force && !one_of_several {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    users[0],
                    image.config_digest.short()
                )));
            }
            // On a full disk, index.json's new copy gets the room it needs (`space`).
            let removed = crate::space::with_room(&cli.root, || Ok(store.remove(name)?))?;
            for u in &removed.untagged {
                println!(
                    "Untagged: {}",
                    Reference::parse(u)
                        .map(|r| r.familiar())
                        .unwrap_or(u.clone())
                );
            }
            // docker's lines: the image's ID, then each layer that went with it by its
            // chain ID, top first; the manifest and the blobs themselves are the store's
            // business.
            if removed.gc.blobs.contains(&image.config_digest) {
                println!("Deleted: {}", image.config_digest);
                let chains = chain_ids(&image);
                for (layer, chain) in image.layers.iter().zip(&chains).rev() {
                    if removed.gc.blobs.contains(&layer.digest) {
                        println!("Deleted: {chain}");
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            crate::say(&e);
            status = 1;
        }
    }
    crate::space::keep_ballast(&cli.root);
    Ok(status)
}

/// The layers' chain IDs (the OCI image spec's ChainID): the first layer's diff ID, then
/// `sha256(parent chain + " " + diff ID)` for each next one.
fn chain_ids(image: &Image) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for diff in image.config.rootfs().diff_ids() {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => {
                ch05_image_pull::Digest::of(format!("{parent} {diff}").as_bytes()).to_string()
            }
        };
        out.push(next);
    }
    out
}

/// `tag`.
pub fn tag(cli: &Cli, args: &TagArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    if store.resolve(&args.source)?.is_none() {
        return Err(Error::NoSuchImage(args.source.clone()));
    }
    store.tag(&args.source, &reference(&args.target)?)?;
    Ok(0)
}

/// `history`: the image's history, newest first, from its config, with the fields of
/// docker's history formatter (`ID`, `CreatedSince`, `CreatedAt`, `CreatedBy`, `Size`,
/// `Comment`) for `--format`.
pub fn history(cli: &Cli, args: &HistoryArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    let image = store.resolve(&args.image)?.ok_or_else(|| {
        // docker names what it looked for: the reference with its default tag.
        Error::NoSuchImage(
            Reference::parse(&args.image)
                .map(|r| {
                    let mut name = r.familiar();
                    if r.tag.is_none() && r.digest.is_none() {
                        name.push_str(":latest");
                    }
                    name
                })
                .unwrap_or_else(|_| args.image.clone()),
        )
    })?;
    let raw = store.read_blob(&image.config_digest)?;
    let config: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::Corrupt(image.config_digest.to_string().into(), e.to_string()))?;
    let history = config["history"].as_array().cloned().unwrap_or_default();
    // The images along the `parent` chain (commit sets it), by how many history entries
    // each has: the last of its entries shows its ID, the others `<missing>`, as docker's.
    let mut owners: Vec<(usize, ch05_image_pull::Digest)> =
        vec![(history.len(), image.config_digest.clone())];
    let mut parent = config["parent"].as_str().map(str::to_string);
    while let Some(p) = parent.take() {
        let Some(img) = store.resolve(&p)? else { break };
        let raw = store.read_blob(&img.config_digest)?;
        let c: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| Error::Corrupt(img.config_digest.to_string().into(), e.to_string()))?;
        let n = c["history"].as_array().map_or(0, Vec::len);
        if owners.iter().any(|(_, d)| *d == img.config_digest) {
            break;
        }
        owners.push((n, img.config_digest.clone()));
        parent = c["parent"].as_str().map(str::to_string);
    }
    let mut layers = image.layers.iter().rev();
    let mut rows = Vec::new();
    for (i, h) in history.iter().enumerate().rev() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers
                .next()
                .and_then(|l| ch05_image_pull::store::dir_size(&store.layer_path(&l.diff_id)).ok())
                .unwrap_or(0)
        };
        let id = match (owners.iter().find(|(n, _)| *n == i + 1), args.no_trunc) {
            (Some((_, d)), true) => d.to_string(),
            (Some((_, d)), false) => d.short().to_string(),
            (None, _) => "<missing>".to_string(),
        };
        // docker's formatter: RFC 3339 for CreatedAt, and CreatedSince falls back to it
        // with `-H=false`; tabs in the command become spaces before the 45-column cut.
        let created_at = h["created"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let since = match h["created"].as_str() {
            Some(t) if args.human => format!("{} ago", human_duration(crate::format::since(t))),
            _ => created_at.clone(),
        };
        let by = h["created_by"].as_str().unwrap_or("").replace('\t', " ");
        let by = if args.no_trunc {
            by
        } else {
            crate::format::ellipsis(&by, 45)
        };
        rows.push(serde_json::json!({
            "ID": id,
            "CreatedSince": since,
            "CreatedAt": created_at,
            "CreatedBy": by,
            "Size": if args.human { short_size(size) } else { size.to_string() },
            "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    let out = match Format::parse(args.format.as_deref())?.render(&rows, &headers)? {
        Some(out) => out,
        None => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
                        .iter()
                        .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .collect();
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &cells,
            )
        }
    };
    print!("{out}");
    Ok(0)
}

/// `pull`.
pub fn pull(cli: &Cli, args: &PullArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    let r = reference(&args.reference)?;
    let options = PullOptions {
        platform: platform(args.platform.as_deref())?,
        progress: Progress::auto(args.quiet),
        config: ConfigFiles::from_env(),
    };
    ch05_image_pull::pull(&store, &Http::new(cli.trace), &r, &options)?;
    println!("{r}");
    Ok(0)
}

/// `push`.
pub fn push(cli: &Cli, args: &PushArgs) -> Result<i32, Error> {
    let store = crate::store(&cli.root)?;
    let r = reference(&args.reference)?;
    let options = PushOptions {
        progress: Progress::auto(args.quiet),
        config: ConfigFiles::from_env(),
        chunk_size: None,
    };
    ch05_image_pull::push(&store, &Http::new(cli.trace), &r, &options)?;
    if args.quiet {
        println!("{r}");
    }
    Ok(0)
}

/// `login`.
pub fn login(cli: &Cli, args: &LoginCommand) -> Result<i32, Error> {
    let registry = ch05_image_pull::reference::normalize_registry(
        args.login
            .registry
            .as_deref()
            .unwrap_or(ch05_image_pull::reference::DOCKER_HUB),
    )
    .map_err(|e| Error::Image(e.into()))?;
    let credentials = ch05_image_pull::commands::ask_credentials(&args.login)?;
    ch05_image_pull::login(
        &Http::new(cli.trace),
        &ConfigFiles::from_env(),
        &registry,
        credentials,
    )?;
    println!("Login Succeeded");
    Ok(0)
}

/// `logout`.
pub fn logout(_cli: &Cli, args: &LogoutArgs) -> Result<i32, Error> {
    let registry = ch05_image_pull::reference::normalize_registry(
        args.registry
            .as_deref()
            .unwrap_or(ch05_image_pull::reference::DOCKER_HUB),
    )
    .map_err(|e| Error::Image(e.into()))?;
    if ch05_image_pull::logout(&ConfigFiles::from_env(), &registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn reference_globs_match_like_go_path_match() {
        assert!(glob("parity/*", "parity/ref"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:lat?st", "busybox:latest"));
        // `*` stops at a `/`, as path.Match's does.
        assert!(!glob("*", "parity/ref"));
        assert!(!glob("parity/*", "other/ref"));
        assert!(glob("busybox", "busybox") && !glob("busybox", "busybox2"));
    }
}
