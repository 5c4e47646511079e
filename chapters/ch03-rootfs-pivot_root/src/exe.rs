//! The runtime's own binary, out of the container's reach (CVE-2019-5736).
//!
//! A process this runtime clones into a container runs our binary until its execve: its
//! `/proc/self/exe` is our file on the host. If the container's command is (or its `#!`
//! line names) `/proc/self/exe`, the kernel starts *our binary* inside the container, as
//! the container's root; another process there can then open `/proc/PID/exe` of it and,
//! once it has exited, reopen that for writing and replace the host's binary, which root
//! runs next. runc's fix made the binary a sealed copy in memory; the cheaper way taken
//! here (runc does it too since 1.2) is to run from a read-only bind of the binary: the
//! kernel refuses any write through a read-only mount with EROFS, whoever asks.
//!
//! [`reexec_read_only`] does it once, at the start of a command that puts processes into
//! containers: in a mount namespace of its own (a slave of the host's, so mounts made
//! later on the host still appear), the binary is bound onto itself read-only and
//! executed again. Everything the command then clones (a monitor, the container's first
//! process, an `exec`'d process) inherits that read-only file as its `/proc/self/exe`.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::sys::{RootfsSys, SysError};

/// Whether our binary is on a read-only mount already (`statvfs(2)` of `/proc/self/exe`).
pub fn exe_is_read_only() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-executes this process from a read-only bind of its own binary, with the same
/// arguments and environment, unless the binary is read-only already (then, and after
/// the re-execution, it returns at once). Returns only then, or on failure.
pub fn reexec_read_only(sys: &dyn RootfsSys) -> Result<(), SysError> {
    if exe_is_read_only() {
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| {
        SysError::new(
            "readlink(\"/proc/self/exe\")",
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    if !exe.exists() {
        // Replaced on disk since we started (" (deleted)"): there is no path to bind.
        return Err(SysError::new(
            format!("stat({exe:?}): our own binary"),
            Errno::ENOENT,
        ));
    }
    sys.unshare(CloneFlags::CLONE_NEWNS)?;
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None,
    )?;
    sys.mount(
        Some(&exe.to_string_lossy()),
        &exe,
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    sys.mount(
        None,
        &exe,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    )?;
    let c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = std::env::args_os().map(|a| c(&a)).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c(&kv)
        })
        .collect();
    match sys.execve(&c(exe.as_os_str()), &argv, &env) {
        Ok(never) => match never {},
        Err(e) => Err(e),
    }
}
