//! The seam, extended once more: the new mount API (fsopen(2), fsconfig(2), fsmount(2),
//! and chapter 3's move_mount(2), Linux 5.2+). mount(2) takes a filesystem's options as one string of at
//! most a page; the new API takes them one `fsconfig` call at a time, which is what lets an
//! overlay have hundreds of lower layers with long paths (`lowerdir+`, Linux 6.8+).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use ch03_rootfs_pivot_root::sys::*;
use nix::errno::Errno;

// From linux/mount.h (the libc crate does not carry all of them).
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;

/// The calls this chapter adds.
pub trait LayerSys: RootfsSys {
    /// fsopen(2): a filesystem context, to be configured.
    fn fsopen(&self, fstype: &str) -> SysResult<OwnedFd>;
    /// fsconfig(2) with `FSCONFIG_SET_STRING`: one option.
    fn fsconfig_set(&self, fs: BorrowedFd<'_>, key: &str, value: &str) -> SysResult<()>;
    /// fsconfig(2) with `FSCONFIG_SET_FLAG`: an option without a value.
    fn fsconfig_set_flag(&self, fs: BorrowedFd<'_>, key: &str) -> SysResult<()>;
    /// fsconfig(2) with `FSCONFIG_SET_FD`: an option whose value is a descriptor (overlayfs
    /// takes its layers so since Linux 6.13: `lowerdir+`, `upperdir`, `workdir`).
    fn fsconfig_set_fd(&self, fs: BorrowedFd<'_>, key: &str, fd: BorrowedFd<'_>) -> SysResult<()>;
    /// fsconfig(2) with `FSCONFIG_CMD_CREATE`: the superblock, from the options set.
    fn fsconfig_create(&self, fs: BorrowedFd<'_>) -> SysResult<()>;
    /// fsmount(2): a detached mount of the created filesystem.
    fn fsmount(&self, fs: BorrowedFd<'_>) -> SysResult<OwnedFd>;
}

fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn fd_result(r: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(r)? as i32;
    // SAFETY: the kernel just returned this descriptor to us and no one else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl LayerSys for Kernel {
    fn fsopen(&self, fstype: &str) -> SysResult<OwnedFd> {
        self.call(
            || format!("fsopen({fstype:?}, FSOPEN_CLOEXEC)"),
            |fd: &OwnedFd| fd.as_raw_fd().to_string(),
            || {
                let name = cstr(fstype)?;
                // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
                fd_result(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })
            },
        )
    }

    fn fsconfig_set(&self, fs: BorrowedFd<'_>, key: &str, value: &str) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "fsconfig({}, FSCONFIG_SET_STRING, {key:?}, {value:?})",
                    fs.as_raw_fd()
                )
            },
            |_| "0".into(),
            || {
                let (k, v) = (cstr(key)?, cstr(value)?);
                // SAFETY: `fs` is an open fs context; `k` and `v` are valid C strings that
                // outlive the call; aux must be 0 for FSCONFIG_SET_STRING.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fs.as_raw_fd(),
                        FSCONFIG_SET_STRING,
                        k.as_ptr(),
                        v.as_ptr(),
                        0,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn fsconfig_set_flag(&self, fs: BorrowedFd<'_>, key: &str) -> SysResult<()> {
        self.call(
            || format!("fsconfig({}, FSCONFIG_SET_FLAG, {key:?})", fs.as_raw_fd()),
            |_| "0".into(),
            || {
                let k = cstr(key)?;
                // SAFETY: `fs` is an open fs context; `k` is a valid C string that outlives
                // the call; value must be NULL and aux 0 for FSCONFIG_SET_FLAG.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fs.as_raw_fd(),
                        FSCONFIG_SET_FLAG,
                        k.as_ptr(),
                        std::ptr::null::<libc::c_void>(),
                        0,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn fsconfig_set_fd(&self, fs: BorrowedFd<'_>, key: &str, fd: BorrowedFd<'_>) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "fsconfig({}, FSCONFIG_SET_FD, {key:?}, NULL, {})",
                    fs.as_raw_fd(),
                    fd.as_raw_fd()
                )
            },
            |_| "0".into(),
            || {
                let k = cstr(key)?;
                // SAFETY: `fs` is an open fs context and `fd` an open descriptor; `k` is a
                // valid C string that outlives the call; the value must be NULL for
                // FSCONFIG_SET_FD, the descriptor goes in aux.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fs.as_raw_fd(),
                        FSCONFIG_SET_FD,
                        k.as_ptr(),
                        std::ptr::null::<libc::c_void>(),
                        fd.as_raw_fd(),
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn fsconfig_create(&self, fs: BorrowedFd<'_>) -> SysResult<()> {
        self.call(
            || format!("fsconfig({}, FSCONFIG_CMD_CREATE)", fs.as_raw_fd()),
            |_| "0".into(),
            || {
                // SAFETY: `fs` is an open fs context; key and value must be NULL for this
                // command.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fs.as_raw_fd(),
                        FSCONFIG_CMD_CREATE,
                        std::ptr::null::<libc::c_char>(),
                        std::ptr::null::<libc::c_void>(),
                        0,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn fsmount(&self, fs: BorrowedFd<'_>) -> SysResult<OwnedFd> {
        self.call(
            || format!("fsmount({}, FSMOUNT_CLOEXEC, 0)", fs.as_raw_fd()),
            |fd: &OwnedFd| fd.as_raw_fd().to_string(),
            || {
                // SAFETY: `fs` is a created fs context; no pointers are passed.
                fd_result(unsafe {
                    libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0)
                })
            },
        )
    }
}

impl LayerSys for Recorder {
    fn fsopen(&self, fstype: &str) -> SysResult<OwnedFd> {
        self.record(format!("fsopen({fstype:?}, FSOPEN_CLOEXEC)"))?;
        placeholder_fd()
    }

    fn fsconfig_set(&self, _fs: BorrowedFd<'_>, key: &str, value: &str) -> SysResult<()> {
        self.record(format!("fsconfig(FSCONFIG_SET_STRING, {key:?}, {value:?})"))
    }

    fn fsconfig_set_flag(&self, _fs: BorrowedFd<'_>, key: &str) -> SysResult<()> {
        self.record(format!("fsconfig(FSCONFIG_SET_FLAG, {key:?})"))
    }

    fn fsconfig_set_fd(
        &self,
        _fs: BorrowedFd<'_>,
        key: &str,
        _fd: BorrowedFd<'_>,
    ) -> SysResult<()> {
        self.record(format!("fsconfig(FSCONFIG_SET_FD, {key:?}, fd)"))
    }

    fn fsconfig_create(&self, _fs: BorrowedFd<'_>) -> SysResult<()> {
        self.record("fsconfig(FSCONFIG_CMD_CREATE)".into())
    }

    fn fsmount(&self, _fs: BorrowedFd<'_>) -> SysResult<OwnedFd> {
        self.record("fsmount(FSMOUNT_CLOEXEC)".into())?;
        placeholder_fd()
    }
}
