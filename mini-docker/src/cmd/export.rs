//! `mini-docker export`: the container's filesystem (its image's layers, its init layer
//! and its writable layer, merged) as one tar archive, without its volumes' contents.
use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use ch04_unionfs_layers::sys::Kernel;

use crate::{Cli, Error, containers};

/// `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The container.
    pub container: String,
}

/// Writes the archive.
pub fn main(sys: &Kernel, cli: &Cli, args: &ExportArgs) -> Result<i32, Error> {
    let c = containers::find(&cli.root, &args.container)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| Error::io("create", p, e))?),
        None => {
            if nix::unistd::isatty(std::io::stdout()).unwrap_or(false) {
                return Err(Error::Usage(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            Box::new(std::io::stdout())
        }
    };
    let code = crate::view::in_container_files(
        sys,
        &cli.root,
        &c,
        false,
        crate::view::InitView::Empty,
        &mut |merged| match ch04_unionfs_layers::diff::diff(merged, &mut out, &[]) {
            Ok(_) => out.flush().map_or(1, |()| 0),
            Err(e) => {
                eprintln!("Error: export {}: {e}", args.container);
                1
            }
        },
    )?;
    Ok(if code == 0 { 0 } else { 125 })
}
