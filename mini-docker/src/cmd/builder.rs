//! `mini-docker builder prune`: forget the build cache (chapter 6's), as docker's does.
use std::io::BufRead;
use std::path::Path;

use clap::Subcommand;

use crate::Error;

/// `builder`'s verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache.
    Prune {
        /// Remove all unused build cache, not just dangling ones (the same here: every
        /// cached step is unused once its build is over).
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs the verb.
pub fn main(root: &Path, cmd: &BuilderCommand) -> Result<i32, Error> {
    let BuilderCommand::Prune { all, force } = cmd;
    if !force {
        let what = if *all {
            "all build cache"
        } else {
            "all dangling build cache"
        };
        eprint!("WARNING! This will remove {what}. Are you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y") {
            return Ok(0);
        }
    }
    let store = crate::store(root)?;
    let freed = ch06_dockerfile::build::prune(&store)?;
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(freed)
    );
    Ok(0)
}
