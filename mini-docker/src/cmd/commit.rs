//! `mini-docker commit`: a new image from a container: its image's layers plus one more,
//! made from its writable layer (chapter 4's `diff`). The init layer is not part of it, so
//! the container's hostname and DNS settings stay out of the image.
use clap::Args;
use serde_json::{Value, json};

use ch05_image_pull::store::NewLayer;

use crate::record::{Status, now};
use crate::{Cli, Error, containers};

/// `commit`.
#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    /// The container.
    pub container: String,
    /// The new image's name: REPOSITORY[:TAG] (without one, the image is dangling:
    /// `<none>:<none>`, known by its ID).
    pub reference: Option<String>,
}

/// Commits; prints the new image's id.
pub fn main(cli: &Cli, args: &CommitArgs) -> Result<i32, Error> {
    let root = cli.root.as_path();
    let reference = args
        .reference
        .as_deref()
        .map(super::images::reference)
        .transpose()?;
    let c = containers::find(root, &args.container)?;
    let store = crate::store(root)?;
    let base = store
        .resolve(&c.config.image_id)?
        .ok_or_else(|| Error::NoSuchImage(c.config.image.clone()))?;
    // The writable layer, frozen while it is read so that it is one moment's state.
    let running = c.live_state()?.status == Status::Running;
    if running && args.pause {
        super::pause::set_frozen(&c, true)?;
    }
    let tmp = tempfile::tempfile_in(&c.dir).map_err(|e| Error::io("create a file in", &c.dir, e));
    let layer = tmp.and_then(|mut f| {
        ch04_unionfs_layers::diff::diff(&c.path("upper"), &mut f, &[])?;
        use std::io::Seek;
        f.rewind().map_err(|e| Error::io("rewind", &c.dir, e))?;
        super::import::store_layer(&store, &mut f)
    });
    if running && args.pause {
        super::pause::set_frozen(&c, false)?;
    }
    let layer = layer?;

    let raw = store.read_blob(&base.config_digest)?;
    let mut config: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::Corrupt(base.config_digest.to_string().into(), e.to_string()))?;
    let cfg = &c.config;
    let inner = &mut config["config"];
    inner["Env"] = json!(cfg.env);
    inner["Cmd"] = json!(cfg.cmd);
    inner["Entrypoint"] = if cfg.entrypoint.is_empty() {
        Value::Null
    } else {
        json!(cfg.entrypoint)
    };
    inner["WorkingDir"] = json!(cfg.working_dir);
    inner["User"] = json!(cfg.user);
    for change in &args.change {
        super::import::apply_change(inner, change)?;
    }
    let mut diff_ids: Vec<Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    diff_ids.push(json!(layer.diff_id.to_string()));
    config["rootfs"]["diff_ids"] = json!(diff_ids);
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    history.push(json!({
        "created": now(),
        // What the container ran, as docker's commit records it.
        "created_by": std::iter::once(cfg.path.as_str())
            .chain(cfg.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        "author": args.author.clone().unwrap_or_default(),
        "comment": args.message.clone().unwrap_or_default(),
    }));
    config["history"] = json!(history);
    config["created"] = json!(now());
    config["container"] = json!(cfg.id);
    // The image it was made from: docker's `parent` (V1Image), which `history` follows to
    // name the parent's own rows.
    config["parent"] = json!(base.config_digest.to_string());
    if let Some(a) = &args.author {
        config["author"] = json!(a);
    }
    config["comment"] = json!(args.message.clone().unwrap_or_default());
    let mut layers: Vec<NewLayer> = base.layers.iter().map(NewLayer::from).collect();
    layers.push(layer);
    let bytes = serde_json::to_vec(&config).expect("a config serialises");
    store.put_image(&bytes, &layers, reference.as_ref())?;
    println!("{}", ch05_image_pull::Digest::of(&bytes));
    Ok(0)
}
