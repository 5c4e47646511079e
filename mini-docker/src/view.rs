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

/// Which init layer a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitView {
    /// The container's own: its hostname, hosts and resolv.conf as it sees them (`cp`).
    Live,
    /// Docker's as `export` writes it: the same paths, the three files empty (their content
    /// is the runtime's, bind-mounted over them, not the container's filesystem).
    Empty,
}

/// Writes an init layer's paths with nothing in them into `dir`.
fn empty_init(dir: &Path) -> std::io::Result<()> {
    for d in ["etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    for f in [".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        std::fs::write(dir.join(f), "")?;
        // docker's init layer makes them 0755.
        std::fs::set_permissions(
            dir.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
    }
    Ok(())
}

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
/// read-write on the writable layer (only for a stopped container); the init layer and the
/// image's layers below. Returns `f`'s exit code.
pub fn in_container_files(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    writable: bool,
    init: InitView,
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
    // The init layer too (/.dockerenv, /etc/hostname, hosts, resolv.conf, the mount
    // points): it is part of the container's root, as docker's export and cp see it.
    let init = match init {
        InitView::Live => c.path("init"),
        InitView::Empty => {
            let skeleton = scratch.path().join("init");
            empty_init(&skeleton).map_err(|e| Error::io("write", &skeleton, e))?;
            skeleton
        }
    };
    if init.is_dir() {
        lowers.push(init);
    }
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
