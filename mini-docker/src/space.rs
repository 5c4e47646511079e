//! Room to make room. On a full disk the commands that free space (`rm`, `rmi`, `volume
//! rm`, `system prune`) and a monitor recording how its container ended still have to
//! write a little first: a state file, `index.json`, a network's leases, each replaced by
//! writing a new copy and renaming it (so that a crash never leaves half a file). A new
//! copy needs free blocks.
//!
//! So the store keeps a *ballast*: `ROOT/.ballast`, 1 MiB of blocks really allocated
//! (fallocate(2)), made when a container is created and again after anything frees space.
//! A write that must not fail for want of room runs in [`with_room`]: when it fails with
//! ENOSPC or EDQUOT, the ballast is deleted (its blocks are free at once) and the write is
//! tried again. The same idea as CockroachDB's ballast file or ext4's reserved blocks; a
//! megabyte is hundreds of state files, and the ballast is back after the next `rm`.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// How big the ballast is.
pub const BALLAST_BYTES: i64 = 1 << 20;

/// `ROOT/.ballast`.
pub fn ballast(root: &Path) -> PathBuf {
    root.join(".ballast")
}

/// Makes the ballast if it is missing and there is room for it; silent when there is not
/// (a full disk is what the missing ballast is for: it comes back once space is freed).
pub fn keep_ballast(root: &Path) {
    let path = ballast(root);
    if path.exists() {
        return;
    }
    // Made under a temp name and renamed: a ballast is whole or absent. A temp one a
    // killed command left goes first (one being made by a live command meanwhile only
    // fails to be renamed: the next command makes the ballast).
    for e in fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(".ballast.tmp-") {
            let _ = fs::remove_file(e.path());
        }
    }
    let tmp = root.join(format!(".ballast.tmp-{}", std::process::id()));
    let made = (|| -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // fallocate(2) allocates the blocks without writing them (tmpfs, ext4, xfs,
        // btrfs); a file system without it gets zeros written.
        if nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, BALLAST_BYTES).is_err()
        {
            use std::io::Write;
            let mut w = io::BufWriter::new(&f);
            w.write_all(&vec![0u8; BALLAST_BYTES as usize])?;
            w.flush()?;
        }
        fs::rename(&tmp, &path)
    })();
    if made.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Deletes the ballast, if it is there.
fn drop_ballast(root: &Path) {
    let _ = fs::remove_file(ballast(root));
}

/// Whether `e` (or any cause of it) is a full disk or an exhausted quota.
pub fn out_of_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>()
            && (matches!(
                io.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ) || matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Runs `f`; if it failed for want of room, deletes the ballast and runs `f` once more.
/// Once more even when there was no ballast left to delete: another command (two
/// monitors whose containers end together on a full disk) may have deleted it between
/// our failed write and now, and its blocks are free for us too; seen in the VM lanes,
/// where the second monitor then lost its container's exit status. `f` must be safe to
/// run twice (every caller's is: a failed atomic replace leaves the old file and no temp
/// file).
pub fn with_room<T>(root: &Path, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    match f() {
        Err(e) if out_of_space(&e) => {
            drop_ballast(root);
            f()
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_seen_through_the_causes() {
        let full = Error::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(out_of_space(&full));
        let quota = Error::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(libc::EDQUOT),
        );
        assert!(out_of_space(&quota));
        let other = Error::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(!out_of_space(&other));
    }

    #[test]
    fn the_ballast_is_given_up_once_for_a_write_that_lacks_room() {
        let root = tempfile::tempdir().unwrap();
        keep_ballast(root.path());
        let size = fs::metadata(ballast(root.path())).unwrap().len();
        assert_eq!(size, BALLAST_BYTES as u64);
        let mut tries = 0;
        let r: Result<(), Error> = with_room(root.path(), || {
            tries += 1;
            if tries == 1 {
                Err(Error::io(
                    "write",
                    Path::new("/x"),
                    io::Error::from_raw_os_error(libc::ENOSPC),
                ))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(tries, 2);
        assert!(!ballast(root.path()).exists());
        // With no ballast left, a second full disk is the caller's error (after one more
        // try: another command may have just freed the ballast's blocks).
        let mut tries = 0;
        let r: Result<(), Error> = with_room(root.path(), || {
            tries += 1;
            Err(Error::io(
                "write",
                Path::new("/x"),
                io::Error::from_raw_os_error(libc::ENOSPC),
            ))
        });
        assert!(r.is_err());
        assert_eq!(tries, 2);
    }
}
