//! The little mini-docker adds to the chapters' seam: terminal window sizes, which only an
//! ioctl(2) can read and set (TIOCGWINSZ, TIOCSWINSZ; see tty_ioctl(4)), a pty opened from a
//! container's `ptmx`, and descriptors: owning a raw one, close-on-exec set or cleared, one
//! handed from a parent to the process it execs.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::Error;

/// A terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// The size of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WinSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a
    // live, properly aligned winsize of ours.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the size of the terminal on `fd` (the master side of a container's pty): the
/// kernel sends SIGWINCH to the terminal's foreground process group.
pub fn set_window_size(fd: BorrowedFd<'_>, size: WinSize) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which points to a
    // live winsize of ours.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Takes ownership of a descriptor number: one a system call just returned (fcntl's
/// `F_DUPFD_CLOEXEC` gives a number, not an `OwnedFd`), or one our parent left open for
/// us and named on the command line (the monitor's `--attach-fd`).
pub fn own_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: callers pass an open descriptor that is theirs alone: just created by the
    // kernel, or inherited and checked open with fcntl(F_SETFD) before this call; nothing
    // else in the process owns or will close it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Borrows a descriptor number for one call that checks it (fcntl fails with EBADF if it
/// is not open, and does nothing harmful to a descriptor that is).
pub fn borrow_fd(fd: std::os::fd::RawFd) -> BorrowedFd<'static> {
    // SAFETY: the borrow is used only for fcntl(2) on the number, which the kernel checks
    // (EBADF); nothing reads, writes or closes through it.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Lets a process we start inherit `fd` (clears close-on-exec); the other half of
/// [`inherited_fd`], which the child calls.
pub fn inheritable(fd: BorrowedFd<'_>) -> Result<(), Error> {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map(drop)
    .map_err(|e| Error::Sys(ch01_namespaces::SysError::new("fcntl(F_SETFD, 0)", e)))
}

/// Takes a descriptor our parent left open for us and named on the command line, closing
/// it on exec again so that nothing we start (the container) inherits it.
pub fn inherited_fd(fd: RawFd) -> Result<OwnedFd, Error> {
    let what = format!("fcntl({fd}, F_SETFD, FD_CLOEXEC)");
    if fd < 3 {
        return Err(Error::Usage(format!(
            "descriptor {fd}: not one left for us"
        )));
    }
    // Fails with EBADF unless `fd` is open, before anything takes ownership of it.
    nix::fcntl::fcntl(
        borrow_fd(fd),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| Error::Sys(ch01_namespaces::SysError::new(&what, e)))?;
    Ok(own_fd(fd))
}

/// Closes every descriptor of this process but 0, 1, 2 and `keep`: what a cloned child does
/// before it lives on as another program would (the monitor), since only an exec closes the
/// close-on-exec ones. The list comes from `/proc/self/fd`, read to the end before any
/// descriptor is closed (the directory's own is among them).
pub fn close_all_but(keep: &[RawFd]) -> Result<(), Error> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::io("read", std::path::Path::new("/proc/self/fd"), e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // EBADF for the directory's descriptor, already closed: nothing to do.
            let _ = nix::unistd::close(own_fd(fd));
        }
    }
    Ok(())
}

/// setdomainname(2): the UTS namespace's NIS domain name (`--domainname`); nix wraps
/// only sethostname.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    let bytes = name.as_bytes();
    // SAFETY: the pointer and length describe `bytes`, which outlives the call; the kernel
    // only reads them.
    let rc = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    Errno::result(rc).map(drop)
}

/// setrlimit(2)'s resource for docker's `--ulimit` name (`nofile` is RLIMIT_NOFILE).
pub fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        "stack" => R::RLIMIT_STACK,
        _ => return None,
    })
}
