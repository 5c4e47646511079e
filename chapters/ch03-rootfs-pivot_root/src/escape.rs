//! Why pivot_root and not chroot: the classic escape.
//!
//! chroot(2) changes one thing, the directory a process resolves `/` from. It does not move
//! the current directory, and `..` is only stopped *at* the root: a process whose current
//! directory is outside its root walks up freely. So root inside a chroot can climb out:
//! chroot into a subdirectory (the current directory is now outside the root), then
//! `chdir("..")` until the real `/`, then `chroot(".")`.
//!
//! After pivot_root(2) and a detach of the old root, the old root is no longer in the
//! mount namespace at all. The same climb stops at the new root: there is nothing above it.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sched::CloneFlags;

use crate::rootfs::{bind_rootfs, pivot};
use crate::sys::{RootfsSys, SysError};
use crate::{Error, Rootfs};
use ch01_namespaces::process::{self, ChildError, ChildOptions};

/// How deep the climb goes; more `..` than any real path is deep.
const CLIMB: usize = 64;

/// `ch03-rootfs-pivot_root escape`: tries the escape from a plain chroot, or (with `pivot`)
/// after pivot_root, in a child in a new mount namespace, and prints what it found.
/// Returns 0 when the outcome is the expected one (escaped from chroot, stayed after pivot).
pub fn escape(sys: &dyn RootfsSys, rootfs: &Rootfs, pivoted: bool) -> Result<i32, Error> {
    let host = std::fs::metadata("/").map_err(|e| Error::Io("stat /".into(), e))?;
    let host_root = (host.dev(), host.ino());
    let dir = rootfs.path().to_path_buf();
    let created = process::create(
        sys,
        CloneFlags::CLONE_NEWNS,
        ChildOptions::default(),
        &mut || {
            let code = climb(sys, &dir, pivoted, host_root).map_err(ChildError::from)?;
            // Not an exec: the child reports and leaves with the verdict.
            std::process::exit(code)
        },
    )?;
    let running = created.start(sys)?;
    Ok(running.wait(sys)?.code())
}

fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(" ")
}

fn is_host_root(host_root: (u64, u64)) -> bool {
    std::fs::metadata("/").is_ok_and(|m| (m.dev(), m.ino()) == host_root)
}

/// The child's side: get into the rootfs one way or the other, then climb.
fn climb(
    sys: &dyn RootfsSys,
    rootfs: &Path,
    pivoted: bool,
    host_root: (u64, u64),
) -> Result<i32, SysError> {
    ch01_namespaces::make_mounts_private(sys)?;
    if pivoted {
        println!("pivot_root into the rootfs, old root detached; then the chroot escape:");
        bind_rootfs(sys, rootfs)?;
        pivot(sys, rootfs)?;
    } else {
        println!("chroot into the rootfs; then the chroot escape:");
        sys.chroot(rootfs)?;
        sys.chdir(Path::new("/"))?;
    }
    println!("  inside, / holds:  {}", listing(Path::new("/")));
    // A subdirectory to chroot into; any will do.
    let sub = std::fs::read_dir("/")
        .ok()
        .and_then(|it| {
            it.flatten()
                .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .map(|e| e.path())
        .ok_or_else(|| SysError::new("find a subdirectory of /", nix::errno::Errno::ENOENT))?;
    // exercise(ch03.escape): chroot into `sub` (the current directory stays outside it), climb CLIMB times "..", then chroot "." and chdir "/"
    sys.chroot(&sub)?;
    // The current directory is now outside the root: `..` is not stopped here.
    for _ in 0..CLIMB {
        sys.chdir(Path::new(".."))?;
    }
    sys.chroot(Path::new("."))?;
    sys.chdir(Path::new("/"))?;
    // end exercise
    println!("  after the climb:  {}", listing(Path::new("/")));
    let escaped = is_host_root(host_root);
    if escaped {
        println!(
            "  => escaped: / is the host's root (same device and inode). A chroot is not a boundary for root."
        );
    } else {
        println!(
            "  => stayed inside: above the new root there is nothing; the old root is gone from this mount namespace."
        );
    }
    let expected = escaped != pivoted;
    Ok(if expected { 0 } else { 1 })
}
