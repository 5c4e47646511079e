//! A container's files, seen from outside it: for `export`, `cp` and `commit`.
//!
//! Its layers are mounted (chapter 4) in a child with a mount namespace of its own, so the
//! mount exists only for that child and disappears with it. A running container's writable
//! layer is already the upper layer of its own overlay, and overlayfs refuses to share an
//! upper directory between two mounts; so reading uses the writable layer as the top *lower*
//! layer (read-only), which works whether the container runs or not.
use std::path::Path;

use ch01_namespaces::process::{self, ChildError, ChildOptions};
use ch04_unionfs_layers::Stack;
use ch04_unionfs_layers::sys::Kernel;
use nix::sched::CloneFlags;

use crate::Error;
use crate::record::Container;

/// The image's extracted layers, bottom first.
pub fn image_layers(root: &Path, c: &Container) -> Result<Vec<std::path::PathBuf>, Error> {
    let store = crate::store(root)?;
    let image = store
        .resolve(&c.config.image_id)?
        .ok_or_else(|| Error::NoSuchImage(c.config.image.clone()))?;
    Ok(store.layer_dirs(&image)?)
}

/// Runs `f` in a child process in which the container's files are mounted at a fresh
/// directory: read-only (the writable layer as the top lower layer), or, with `writable`,
/// read-write on the writable layer (only for a stopped container). Returns `f`'s exit code.
pub fn in_container_files(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    writable: bool,
    f: &mut dyn FnMut(&Path) -> i32,
) -> Result<i32, Error> {
    let layers = image_layers(root, c)?;
    let scratch = tempfile::Builder::new()
        .prefix(".view-")
        .tempdir_in(&c.dir)
        .map_err(|e| Error::io("create a directory in", &c.dir, e))?;
    let target = scratch.path().join("merged");
    std::fs::create_dir(&target).map_err(|e| Error::io("create", &target, e))?;
    let mut lowers: Vec<std::path::PathBuf> = Vec::new();
    let upper = if writable {
        Some((c.path("upper"), c.path("work")))
    } else {
        lowers.push(c.path("upper"));
        None
    };
    lowers.extend(layers.iter().rev().cloned());
    if lowers.len() == 1 {
        // overlayfs wants two layers without an upper one; an empty one changes nothing.
        let empty = scratch.path().join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| Error::io("create", &empty, e))?;
        lowers.push(empty);
    }
    let stack = Stack { lowers, upper };
    let created = process::create(
        sys,
        CloneFlags::CLONE_NEWNS,
        ChildOptions::default(),
        &mut || {
            ch01_namespaces::make_mounts_private(sys)?;
            ch04_unionfs_layers::overlay::mount(sys, &stack, &target).map_err(ChildError::from)?;
            std::process::exit(f(&target))
        },
    )?;
    let running = created.start(sys)?;
    Ok(running.wait(sys)?.code())
}
