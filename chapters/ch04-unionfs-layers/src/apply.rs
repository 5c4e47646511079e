//! Applying a layer: an OCI layer tarball turned back into files.
//!
//! A layer is a tar archive of what changed. Additions and changes are ordinary entries;
//! deletions are *whiteout* entries (OCI image spec, "Representing Changes"):
//!
//! * `dir/.wh.NAME` says "NAME, from the layers below, is deleted";
//! * `dir/.wh..wh..opq` says "dir is opaque: nothing of the layers below shows through".
//!
//! Two ways to apply one, for the two ways to build a root filesystem:
//!
//! * [`Whiteouts::Overlay`]: into a layer directory of its own, for overlayfs. A whiteout
//!   becomes what overlayfs understands: a character device with number 0/0 named NAME,
//!   and an opaque directory gets the xattr `trusted.overlay.opaque=y`.
//! * [`Whiteouts::Apply`]: onto a directory that already holds the layers below (flattened,
//!   as `docker export` sees it): a whiteout deletes NAME, an opaque marker empties the
//!   directory.
//!
//! A whiteout only hides what *lower* layers wrote; entries of the same layer stay, whatever
//! their order in the archive. Every other entry goes through chapter 3's safe extraction.
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ch03_rootfs_pivot_root::extract::{
    ExtractError, ExtractOptions, ExtractStats, Extractor, sanitize,
};
use ch03_rootfs_pivot_root::sys::SysError;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

/// The prefix of a whiteout entry's name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory of an upper or lower layer as opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The same mark where overlayfs is mounted with `userxattr` (in a user namespace, whose
/// root may not write `trusted.*`).
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Whether overlayfs marked the directory `path` opaque, with either xattr.
pub fn is_opaque(path: &Path) -> bool {
    [OPAQUE_XATTR, USER_OPAQUE_XATTR]
        .into_iter()
        .any(|x| xattr::get(path, x).ok().flatten().as_deref() == Some(b"y"))
}

/// Errors are chapter 3's: the entry, and what was wrong with it or which call failed.
pub type ApplyError = ExtractError;

/// What to turn whiteouts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Overlay whiteouts (0/0 character devices, the opaque xattr) in a layer directory.
    Overlay,
    /// Deletions, on a directory holding the layers below.
    Apply,
}

/// How to apply a layer.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// What whiteouts become.
    pub whiteouts: Whiteouts,
    /// Create device nodes from the layer (skipped otherwise).
    pub devices: bool,
}

impl ApplyOptions {
    /// Into an empty layer directory, for overlayfs.
    pub fn layer() -> Self {
        ApplyOptions {
            whiteouts: Whiteouts::Overlay,
            devices: false,
        }
    }

    /// Onto a directory that holds the layers below.
    pub fn flatten() -> Self {
        ApplyOptions {
            whiteouts: Whiteouts::Apply,
            devices: false,
        }
    }
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// The extraction's counts.
    pub extract: ExtractStats,
    /// Whiteouts made (or deletions done).
    pub whiteouts: u64,
    /// Opaque directories marked (or emptied).
    pub opaque: u64,
}

/// Is this entry name a whiteout? Returns the directory and, for `.wh.NAME`, the name.
#[derive(Debug)]
pub enum Marker<'a> {
    /// `dir/.wh.NAME`.
    Whiteout(&'a Path, &'a OsStr),
    /// `dir/.wh..wh..opq`.
    Opaque(&'a Path),
}

/// Classifies a (sanitized) entry path.
pub fn marker(rel: &Path) -> Option<Marker<'_>> {
    let base = rel.file_name()?.as_bytes();
    let dir = rel.parent().unwrap_or(Path::new(""));
    if base == OPAQUE_MARKER.as_bytes() {
        Some(Marker::Opaque(dir))
    } else {
        base.strip_prefix(WHITEOUT_PREFIX.as_bytes())
            .map(|name| Marker::Whiteout(dir, OsStr::from_bytes(name)))
    }
}

/// Applies an uncompressed layer tar stream to `target`, an existing directory.
pub fn apply(
    layer: impl Read,
    target: &Path,
    options: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let mut x = Extractor::new(
        target,
        ExtractOptions {
            devices: options.devices,
        },
    )?;
    let mut stats = ApplyStats::default();
    // Whiteouts this layer made in a layer directory: a later entry *under* one of them
    // means "this directory was replaced by a new one", which overlayfs spells as an
    // opaque directory.
    let mut whited: Vec<PathBuf> = Vec::new();
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries().map_err(ExtractError::Archive)? {
        let mut entry = entry.map_err(ExtractError::Archive)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_entry = |reason: String| ExtractError::Unsafe {
            entry: shown.clone(),
            reason,
        };
        let Some(rel) = sanitize(Path::new(OsStr::from_bytes(&raw))).map_err(unsafe_entry)? else {
            x.write(&mut entry)?;
            continue;
        };
        let wrap = |source: SysError| ExtractError::Write {
            entry: shown.clone(),
            source,
        };
        match marker(&rel) {
            Some(Marker::Whiteout(dir, name)) => {
                if name.is_empty() || name == "." || name == ".." {
                    return Err(unsafe_entry(format!(
                        "a whiteout for {name:?} names no file"
                    )));
                }
                let path = dir.join(name);
                whiteout(&x, &path, options.whiteouts).map_err(wrap)?;
                if options.whiteouts == Whiteouts::Overlay {
                    whited.push(path);
                }
                stats.whiteouts += 1;
            }
            Some(Marker::Opaque(dir)) => {
                opaque(&x, dir, options.whiteouts).map_err(wrap)?;
                stats.opaque += 1;
            }
            None => {
                let is_dir = entry.header().entry_type().is_dir();
                if let Some(i) = whited
                    .iter()
                    .position(|w| rel.starts_with(w) && (rel != *w || is_dir))
                {
                    let replaced = whited.swap_remove(i);
                    x.root().remove_all(&replaced).map_err(wrap)?;
                    opaque(&x, &replaced, Whiteouts::Overlay).map_err(wrap)?;
                    stats.opaque += 1;
                }
                x.write(&mut entry)?
            }
        }
    }
    stats.extract = x.finish()?;
    Ok(stats)
}

/// `.wh.NAME`: a 0/0 character device in a layer directory (see overlayfs.rst,
/// "whiteouts and opaque directories"), or a deletion when flattening. Unless this very
/// layer wrote NAME: then the layer's own entry wins.
fn whiteout(x: &Extractor, rel: &Path, how: Whiteouts) -> Result<(), SysError> {
    if x.created_here(rel) {
        return Ok(());
    }
    match how {
        Whiteouts::Apply => x.root().remove_all(rel).map(drop),
        Whiteouts::Overlay => {
            // exercise(ch04.whiteout): remove what is at `rel`, then make a 0/0 character device there (mknodat in its parent)
            x.root().remove_all(rel)?;
            let (pfd, name) = x.root().parent_of(rel)?;
            nix::sys::stat::mknodat(
                pfd.as_fd(),
                name,
                SFlag::S_IFCHR,
                Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(|e| SysError::new(format!("mknodat({rel:?}, S_IFCHR, makedev(0, 0))"), e))
            // end exercise
        }
    }
}

/// `.wh..wh..opq`: the opaque xattr on the directory in a layer directory, or, when
/// flattening, the removal of everything in it that lower layers wrote.
fn opaque(x: &Extractor, dir: &Path, how: Whiteouts) -> Result<(), SysError> {
    match how {
        Whiteouts::Overlay => {
            x.root().dir(dir, true)?;
            let fd = x.root().resolve(
                dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )?;
            crate::sys::fsetxattr(fd.as_fd(), OPAQUE_XATTR, b"y").map_err(|e| {
                SysError::new(format!("fsetxattr({dir:?}, {OPAQUE_XATTR:?}, \"y\")"), e)
            })
        }
        Whiteouts::Apply => purge(x, dir),
    }
}

/// Removes from `dir` everything lower layers wrote, keeping what this layer wrote; a
/// directory this layer wrote over a lower one is purged the same way, recursively.
fn purge(x: &Extractor, dir: &Path) -> Result<(), SysError> {
    let fd = match x.root().resolve(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.errno == Errno::ENOENT => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<PathBuf> = Vec::new();
    let mut d =
        nix::dir::Dir::from_fd(fd).map_err(|e| SysError::new(format!("fdopendir({dir:?})"), e))?;
    for entry in d.iter() {
        let entry = entry.map_err(|e| SysError::new(format!("readdir({dir:?})"), e))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(dir.join(OsStr::from_bytes(n)));
        }
    }
    for child in names {
        if !x.created_here(&child) {
            x.root().remove_all(&child)?;
        } else if x.adopted_here(&child) {
            purge(x, &child)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn a_whiteout_replaces_the_name_with_a_0_0_device_in_a_layer_directory() {
        testkit::require_root!();
        let dir = tempfile::tempdir().unwrap();
        // Something already at the name, as an entry earlier in a layer puts there.
        std::fs::create_dir_all(dir.path().join("etc/motd.d")).unwrap();
        std::fs::write(dir.path().join("etc/motd.d/a"), "a").unwrap();
        let x = Extractor::new(dir.path(), ExtractOptions { devices: false }).unwrap();
        whiteout(&x, Path::new("etc/motd.d"), Whiteouts::Overlay).unwrap();
        let md = std::fs::symlink_metadata(dir.path().join("etc/motd.d")).unwrap();
        assert!(
            md.file_type().is_char_device() && md.rdev() == 0,
            "overlayfs's whiteout is a character device 0/0: {md:?}"
        );
        // When flattening, the same entry is a deletion.
        std::fs::write(dir.path().join("etc/gone"), "x").unwrap();
        whiteout(&x, Path::new("etc/gone"), Whiteouts::Apply).unwrap();
        assert!(!dir.path().join("etc/gone").exists());
    }
}
