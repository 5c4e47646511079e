//! `mini-docker diff`: what the container changed in its filesystem, `A` added, `C`
//! changed, `D` deleted: its writable layer read against the image's layers (chapter 4's
//! `changes`). The init layer's files (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`)
//! are bind-mounted over the merged view, never written to the writable layer, so they
//! are not listed, as in docker. One difference: a directory removed and made again is
//! `C` with a `D` for each thing it held below, where docker prints `D` for the directory
//! and lists what it holds now as added.
use std::path::Path;

use clap::Args;

use crate::{Error, containers};

/// `diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The container.
    pub container: String,
}

/// Prints one line per changed path, sorted.
pub fn main(root: &Path, args: &DiffArgs) -> Result<i32, Error> {
    let c = containers::find(root, &args.container)?;
    let store = crate::store(root)?;
    let image = store
        .resolve(&c.config.image_id)?
        .ok_or_else(|| Error::NoSuchImage(c.config.image.clone()))?;
    // Top first, as overlayfs looks them up: the init layer (its files and the mount
    // points it makes, `/etc` among them) over the image's layers.
    let mut lowers = store.layer_dirs(&image)?;
    lowers.push(c.path("init"));
    lowers.reverse();
    let upper = c.path("upper");
    let changes = ch04_unionfs_layers::changes::changes(&upper, &lowers)
        .map_err(|e| Error::io("read", &upper, e))?;
    let mut out = String::new();
    for change in changes {
        out.push_str(&format!("{change}\n"));
    }
    print!("{out}");
    Ok(0)
}
