//! # Chapter 4: union filesystems and layers
//!
//! An image is a stack of read-only layers; a container adds one writable layer on top.
//! overlayfs merges them into one tree: reads fall through to the highest layer that has
//! the file; writes go to the writable layer, copying a file up from below first; deletions
//! are recorded as *whiteouts* that hide what is below.
//!
//! ## The lesson, in reading order
//!
//! * [`demo`], the story: copy-up, whiteouts and opaque directories, watched happen on a
//!   scratch stack in a mount namespace of its own.
//! * [`overlay`]: mounting a stack, with the new mount API (`lowerdir+`, one layer per
//!   fsconfig(2) call) and mount(2) with its one-page option string as the fallback.
//! * [`apply`](mod@apply): an OCI layer tarball into a layer directory (whiteouts become overlayfs's)
//!   or onto a flattened tree (whiteouts become deletions), on chapter 3's safe extractor.
//! * [`diff`]: the writable layer back into an OCI layer tarball.
//! * [`init`]: the init layer, which keeps a container's own `/etc/hostname`,
//!   `/etc/hosts` and `/etc/resolv.conf` out of its writable layer.
//! * [`sys`], the calls this chapter adds to the seam (fsopen, fsconfig, fsmount).
//!
//! ## Here for mini-docker
//!
//! * [`changes`]: the writable layer as `docker diff`'s `A`/`C`/`D` list, looked up
//!   through the layers below.
//! * [`init::mounts`]: the bind mounts of the init layer's files onto the merged view.
//!
//! [`cli`] and [`commands`] are the binary's: its command line, and one function per
//! subcommand.
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub mod apply;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod diff;
pub mod init;
pub mod overlay;
pub mod sys;

pub use apply::{ApplyError, ApplyOptions, ApplyStats, Whiteouts, apply};
pub use overlay::Stack;

/// What can go wrong in this chapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] sys::SysError),
    /// Starting or waiting for a child failed.
    #[error(transparent)]
    Process(#[from] ch01_namespaces::Error),
    /// Applying a layer failed.
    #[error("apply {}", .0.display())]
    Apply(std::path::PathBuf, #[source] ApplyError),
    /// Writing a layer failed.
    #[error(transparent)]
    Diff(#[from] diff::DiffError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
}

impl Error {
    /// The exit code to leave with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// A reader of `path` that undoes gzip compression if the file starts with gzip's magic
/// number, so `.tar` and `.tar.gz` layers read alike.
pub fn open_layer(path: &Path) -> Result<Box<dyn Read>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let gzip = reader
        .fill_buf()
        .map_err(|e| Error::Io(path.display().to_string(), e))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::bufread::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}
