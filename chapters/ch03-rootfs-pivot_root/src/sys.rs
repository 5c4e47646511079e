//! The seam, extended. Chapter 1's [`Sys`] has mount, umount2, chroot, chdir, fchdir, open
//! and mkdir; a root of its own also needs pivot_root(2), mknod(2) for device nodes and
//! symlink(2). [`RootfsSys`] adds them, for the same two implementations: the kernel and
//! the recorder, so `--trace` and the unit tests see one stream of calls.
//!
//! [`fsetxattr`] is outside the seam, like the rest of extraction (see ARCHITECTURE.md):
//! it is here only because it needs `unsafe`, and so it answers with the kernel's errno
//! rather than a `std::io::Error` that may or may not hold one.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

pub use ch01_namespaces::sys::*;
use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};

// From linux/mount.h.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (mount_setattr(2)).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

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
    /// open_tree(2) with `OPEN_TREE_CLONE`: a detached bind mount of `path`, held as a
    /// descriptor, that survives a change of root (Linux 5.2).
    fn open_tree_clone(&self, path: &Path) -> SysResult<OwnedFd>;
    /// move_mount(2): attaches a detached mount at `target`.
    fn move_mount(&self, mnt: BorrowedFd<'_>, target: &Path) -> SysResult<()>;
    /// mount_setattr(2) with `MOUNT_ATTR_IDMAP`: the detached mount `mnt` shows its files'
    /// owners through the id maps of the user namespace `userns` (an idmapped mount, Linux
    /// 5.12+): a file owned by 0 on disk reads as the id 0 maps to, and is written back as
    /// 0. Only a detached, not yet attached mount can be given maps.
    fn set_idmap(&self, mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> SysResult<()>;
    /// The pseudo-terminal pair of `master`, a freshly opened `ptmx` (pts(4)): unlocks it
    /// (TIOCSPTLCK) and opens the slave from the master (TIOCGPTPEER), without a path, which
    /// would name another devpts in another mount namespace. Returns (master, slave), the
    /// slave close-on-exec.
    fn pty_pair(&self, master: OwnedFd) -> SysResult<(OwnedFd, OwnedFd)>;
    /// sendmsg(2) with one `SCM_RIGHTS` descriptor (unix(7)): hands `fd` to the process at
    /// the other end of `socket`, which receives its own copy.
    fn send_fd(&self, socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<()>;
}

/// fsetxattr(2) on a descriptor: sets the extended attribute `name` to `value` (flags 0:
/// create or replace). Neither nix nor std has it.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> Result<(), Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `fd` is a borrowed, open descriptor; `name` is a valid C string and `value`
    // a valid buffer of `value.len()` bytes, both alive for the whole call, which only
    // reads them.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// A descriptor the recorder hands out where the kernel would return a new one (a detached
/// mount, a filesystem context): `/dev/null`, opened for real, with its real errno if that
/// fails.
pub fn placeholder_fd() -> SysResult<OwnedFd> {
    nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::new("open(\"/dev/null\", O_RDONLY|O_CLOEXEC)", e))
}

fn cpath(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

fn fmt_mknod(path: &Path, kind: SFlag, perm: u32, major: u64, minor: u64) -> String {
    let kind = if kind == SFlag::S_IFBLK {
        "S_IFBLK"
    } else if kind == SFlag::S_IFREG {
        return format!("mknod({path:?}, S_IFREG|{perm:#o}, 0)");
    } else {
        "S_IFCHR"
    };
    format!("mknod({path:?}, {kind}|{perm:#o}, makedev({major}, {minor}))")
}

impl RootfsSys for Kernel {
    fn pty_pair(&self, master: OwnedFd) -> SysResult<(OwnedFd, OwnedFd)> {
        self.call(
            || format!("ioctl({}, TIOCSPTLCK, 0)", master.as_raw_fd()),
            |_| "0".into(),
            || {
                let unlock: libc::c_int = 0;
                // SAFETY: TIOCSPTLCK reads one int through the pointer, a live local.
                Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
                    .map(drop)
            },
        )?;
        let slave = self.call(
            || {
                format!(
                    "ioctl({}, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC)",
                    master.as_raw_fd()
                )
            },
            |fd: &OwnedFd| fd.as_raw_fd().to_string(),
            || {
                let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
                // SAFETY: TIOCGPTPEER takes its flags by value and returns a new descriptor.
                let fd = Errno::result(unsafe {
                    libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags)
                })?;
                // SAFETY: the kernel just returned this descriptor; nothing else owns it.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            },
        )?;
        Ok((master, slave))
    }

    fn send_fd(&self, socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        self.call(
            || {
                format!(
                    "sendmsg({}, {{SCM_RIGHTS [{}]}})",
                    socket.as_raw_fd(),
                    fd.as_raw_fd()
                )
            },
            |_| "1".into(),
            || {
                let fds = [fd.as_raw_fd()];
                let iov = [std::io::IoSlice::new(b"T")];
                sendmsg::<()>(
                    socket.as_raw_fd(),
                    &iov,
                    &[ControlMessage::ScmRights(&fds)],
                    MsgFlags::empty(),
                    None,
                )
                .map(drop)
            },
        )
    }

    fn open_tree_clone(&self, path: &Path) -> SysResult<OwnedFd> {
        self.call(
            || format!("open_tree(AT_FDCWD, {path:?}, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC)"),
            |fd: &OwnedFd| fd.as_raw_fd().to_string(),
            || {
                let p = cpath(path)?;
                // SAFETY: `p` is a valid C string that outlives the call; no other pointer
                // is passed.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        p.as_ptr(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
                    )
                };
                let fd = Errno::result(r)? as i32;
                // SAFETY: the kernel just returned this descriptor; nothing else owns it.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            },
        )
    }

    fn move_mount(&self, mnt: BorrowedFd<'_>, target: &Path) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "move_mount({}, \"\", AT_FDCWD, {target:?}, MOVE_MOUNT_F_EMPTY_PATH)",
                    mnt.as_raw_fd()
                )
            },
            |_| "0".into(),
            || {
                let to = cpath(target)?;
                let empty = cpath(Path::new(""))?;
                // SAFETY: `mnt` is a detached mount's descriptor; both paths are valid C
                // strings that outlive the call.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_move_mount,
                        mnt.as_raw_fd(),
                        empty.as_ptr(),
                        libc::AT_FDCWD,
                        to.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn set_idmap(&self, mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "mount_setattr({}, \"\", AT_EMPTY_PATH, {{MOUNT_ATTR_IDMAP, userns_fd={}}})",
                    mnt.as_raw_fd(),
                    userns.as_raw_fd()
                )
            },
            |_| "0".into(),
            || {
                let empty = cpath(Path::new(""))?;
                let mut attr = MountAttr {
                    attr_set: MOUNT_ATTR_IDMAP,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: userns.as_raw_fd() as u64,
                };
                // SAFETY: `mnt` is an open mount descriptor, `empty` a valid C string and
                // `attr` a live `struct mount_attr` whose size is passed; the kernel only
                // reads them during the call.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_mount_setattr,
                        mnt.as_raw_fd(),
                        empty.as_ptr(),
                        libc::AT_EMPTY_PATH,
                        &mut attr as *mut MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

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
    fn pty_pair(&self, master: OwnedFd) -> SysResult<(OwnedFd, OwnedFd)> {
        self.record("ioctl(master, TIOCSPTLCK, 0)".into())?;
        self.record("ioctl(master, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC)".into())?;
        Ok((master, placeholder_fd()?))
    }

    fn send_fd(&self, _socket: BorrowedFd<'_>, _fd: BorrowedFd<'_>) -> SysResult<()> {
        self.record("sendmsg(socket, {SCM_RIGHTS [master]})".into())
    }

    fn open_tree_clone(&self, path: &Path) -> SysResult<OwnedFd> {
        self.record(format!("open_tree({path:?}, OPEN_TREE_CLONE)"))?;
        placeholder_fd()
    }

    fn move_mount(&self, _mnt: BorrowedFd<'_>, target: &Path) -> SysResult<()> {
        self.record(format!("move_mount({target:?}, MOVE_MOUNT_F_EMPTY_PATH)"))
    }

    fn set_idmap(&self, _mnt: BorrowedFd<'_>, _userns: BorrowedFd<'_>) -> SysResult<()> {
        self.record("mount_setattr(mnt, \"\", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP})".into())
    }

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
