//! `mini-docker save` and `load`: images as one tar file, to carry to a machine with no
//! registry in reach (chapter 5's `archive`: an OCI layout plus docker's manifest.json, so
//! docker, skopeo and podman read what we write, and we read what they write).
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::Error;

/// `save`.
#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Writes the archive (to a temp file beside `-o`, renamed when complete).
pub fn save(root: &Path, args: &SaveArgs) -> Result<i32, Error> {
    let store = crate::store(root)?;
    match &args.output {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".{}.tmp-{}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            let file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            let written =
                ch05_image_pull::archive::save(&store, &args.images, std::io::BufWriter::new(file));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
        }
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                return Err(Error::Usage(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            let mut lock = out.lock();
            ch05_image_pull::archive::save(&store, &args.images, &mut lock)?;
            lock.flush()
                .map_err(|e| Error::io("write", Path::new("stdout"), e))?;
        }
    }
    Ok(0)
}

/// Reads the archive; prints what it named, as docker does.
pub fn load(root: &Path, args: &LoadArgs) -> Result<i32, Error> {
    let store = crate::store(root)?;
    let loaded = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            ch05_image_pull::archive::load(&store, std::io::BufReader::new(file))?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Error::Usage(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            ch05_image_pull::archive::load(&store, stdin.lock())?
        }
    };
    if !args.quiet {
        for name in loaded {
            if name.starts_with("sha256:") {
                println!("Loaded image ID: {name}");
            } else {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(0)
}
