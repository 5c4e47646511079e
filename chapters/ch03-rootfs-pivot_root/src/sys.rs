//! The seam, extended. Chapter 1's [`Sys`] has mount, umount2, chroot, chdir, fchdir, open
//! and mkdir; a root of its own also needs pivot_root(2), mknod(2) for device nodes and
//! symlink(2). [`RootfsSys`] adds them, for the same two implementations: the kernel and
//! the recorder, so `--trace` and the unit tests see one stream of calls.
use std::path::Path;

pub use ch01_namespaces::sys::*;
use nix::sys::stat::{Mode, SFlag};

/// The calls this chapter adds to chapter 1's.
pub trait RootfsSys: Sys {
    /// pivot_root(2): makes `new_root` the root mount and moves the old root to `put_old`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()>;
    /// mknod(2): a device node (`kind` is `S_IFCHR` or `S_IFBLK`).
    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, major: u64, minor: u64) -> SysResult<()>;
    /// symlink(2): `link` pointing at `target`.
    fn symlink(&self, target: &str, link: &Path) -> SysResult<()>;
    /// chmod(2): mknod(2) and mkdir(2) apply the umask; this sets the exact mode.
    fn chmod(&self, path: &Path, mode: u32) -> SysResult<()>;
}

fn fmt_mknod(path: &Path, kind: SFlag, perm: u32, major: u64, minor: u64) -> String {
    let kind = if kind == SFlag::S_IFBLK {
        "S_IFBLK"
    } else {
        "S_IFCHR"
    };
    format!("mknod({path:?}, {kind}|{perm:#o}, makedev({major}, {minor}))")
}

impl RootfsSys for Kernel {
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        self.call(
            || format!("pivot_root({new_root:?}, {put_old:?})"),
            |_| "0".into(),
            || nix::unistd::pivot_root(new_root, put_old),
        )
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, major: u64, minor: u64) -> SysResult<()> {
        self.call(
            || fmt_mknod(path, kind, perm, major, minor),
            |_| "0".into(),
            || {
                let dev = nix::sys::stat::makedev(major, minor);
                nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(perm), dev)
            },
        )
    }

    fn symlink(&self, target: &str, link: &Path) -> SysResult<()> {
        self.call(
            || format!("symlink({target:?}, {link:?})"),
            |_| "0".into(),
            || nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link),
        )
    }

    fn chmod(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.call(
            || format!("chmod({path:?}, {mode:#o})"),
            |_| "0".into(),
            || {
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    path,
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
            },
        )
    }
}

impl RootfsSys for Recorder {
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        self.record(format!("pivot_root({new_root:?}, {put_old:?})"))
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, major: u64, minor: u64) -> SysResult<()> {
        self.record(fmt_mknod(path, kind, perm, major, minor))
    }

    fn symlink(&self, target: &str, link: &Path) -> SysResult<()> {
        self.record(format!("symlink({target:?}, {link:?})"))
    }

    fn chmod(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.record(format!("chmod({path:?}, {mode:#o})"))
    }
}
