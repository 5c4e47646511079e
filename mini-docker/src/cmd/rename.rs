//! `mini-docker rename`: a container's new name, running or not.
use std::path::Path;

use clap::Args;

use crate::{Error, containers};

/// `rename`.
#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

/// Renames; prints nothing, as docker.
pub fn main(root: &Path, args: &RenameArgs) -> Result<i32, Error> {
    let new = args.new_name.trim_start_matches('/');
    if !crate::record::valid_name(new) {
        return Err(Error::Usage(format!(
            "Error when allocating new name: Invalid container name (/{new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let c = containers::find(root, &args.container)?;
    if c.config.name == new {
        return Err(Error::Conflict(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    containers::rename(root, &c, new)?;
    Ok(0)
}
