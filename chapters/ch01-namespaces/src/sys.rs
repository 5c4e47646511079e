//! The seam between the chapters and the kernel.
//!
//! Every system call and kernel-file write that a chapter *teaches* goes through the [`Sys`]
//! trait, for three reasons:
//!
//! * one place holds all the `unsafe` (each block says which invariant makes it sound);
//! * `--trace` prints every call with its arguments and result, strace-style, so a learner
//!   sees the kernel conversation behind a command;
//! * unit tests swap in the [`Recorder`], which performs nothing and keeps the sequence of
//!   calls, so the *order* of a story (make `/` private before mounting `/proc`, ...) is
//!   tested without root.
//!
//! Later chapters extend this seam with their own traits (`trait Sys: ch01_namespaces::sys::Sys`)
//! implemented for the same two types, so a trace of `mini-docker run` is one stream.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::fmt::{self, Write as _};
use std::fs;
use std::io::Write as _;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A failed system call: the call as it was made (arguments included) and the errno.
///
/// Displays as `mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL): EPERM
/// (Operation not permitted)`, which is what a learner needs to find the cause in the man page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {errno:?} ({})", errno.desc())]
pub struct SysError {
    /// The call with its arguments, formatted like C.
    pub call: String,
    /// What the kernel answered.
    pub errno: Errno,
}

impl SysError {
    /// A failure of `call` with `errno`.
    pub fn new(call: impl Into<String>, errno: Errno) -> Self {
        SysError {
            call: call.into(),
            errno,
        }
    }
}

/// The result of a call through the seam.
pub type SysResult<T> = Result<T, SysError>;

/// Why [`Sys::clone3`] made no child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloneError {
    /// The kernel refused.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// We refused: the process has other threads (the count is the payload). After clone3,
    /// as after fork(2), only the calling thread exists in the child; a lock another thread
    /// held (the allocator's, stdout's) would stay locked there forever. CLONE_NEWUSER and
    /// setns(2) into a user or mount namespace need a single-threaded caller too.
    #[error(
        "this process has {0} threads, but namespaces must be entered from a single-threaded \
         process (see clone(2), setns(2))"
    )]
    Threads(usize),
}

/// The exit status of a cloned child whose code panicked: docker's "the runtime failed".
pub const PANIC_EXIT: i32 = 125;

/// What a child process reports when it stops: the seam's copy of `siginfo_t`'s interesting part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// True when another process sent it with kill(2) (`si_code <= 0`), false when the kernel
    /// did (a terminal's Ctrl-C, SIGCHLD).
    pub from_process: bool,
}

/// The calls the chapters teach. [`Kernel`] performs them; [`Recorder`] writes them down.
pub trait Sys: std::fmt::Debug {
    // --- processes ---------------------------------------------------------------------

    /// How many threads this process has (`Threads:` in /proc/self/status).
    fn threads(&self) -> usize;

    /// clone3(2) without a new stack: like fork(2), but with `CLONE_NEW*` flags, so the child
    /// starts life in the new namespaces. Runs `child` in the child and `_exit`s with its
    /// result; returns the child's pid in the parent.
    ///
    /// The child never returns into the caller's frames: a panic in `child` is caught, printed
    /// and ends the child with 125, so the parent's guards (a cgroup, a temporary rootfs, a
    /// lock) are not dropped a second time in the child. Refuses to run from a process with
    /// more than one thread ([`CloneError::Threads`]).
    fn clone3(&self, flags: CloneFlags, child: &mut dyn FnMut() -> i32) -> Result<Pid, CloneError>;
    /// clone3(2) with `CLONE_INTO_CGROUP` (Linux 5.7): the child is born in the cgroup v2
    /// directory `cgroup` (an open descriptor of it), so nobody has to write its pid into
    /// `cgroup.procs`, a write that makes the kernel take its global threadgroup lock and
    /// wait for an RCU grace period (milliseconds on a quiet host).
    fn clone3_into_cgroup(
        &self,
        flags: CloneFlags,
        cgroup: BorrowedFd<'_>,
        child: &mut dyn FnMut() -> i32,
    ) -> Result<Pid, CloneError>;
    /// execve(2): replaces the process image; returns only on failure.
    fn execve(&self, path: &CStr, argv: &[CString], envp: &[CString]) -> SysResult<Infallible>;
    /// waitpid(2).
    fn waitpid(&self, pid: Pid, nohang: bool) -> SysResult<WaitStatus>;
    /// kill(2).
    fn kill(&self, pid: Pid, signal: Signal) -> SysResult<()>;
    /// setsid(2): a new session, away from the terminal.
    fn setsid(&self) -> SysResult<()>;
    /// dup2(2) onto a standard descriptor (0, 1 or 2).
    fn dup2_stdio(&self, fd: BorrowedFd<'_>, what: &Path, stdio: i32) -> SysResult<()>;
    /// ioctl(0, TIOCSCTTY): the terminal on stdin becomes our controlling terminal (we must
    /// lead a session without one; see tty_ioctl(4)).
    fn set_controlling_tty(&self) -> SysResult<()>;
    /// prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent dies.
    fn set_parent_death_signal(&self, signal: Signal) -> SysResult<()>;
    /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants become our children, not init's.
    fn set_child_subreaper(&self) -> SysResult<()>;
    /// sigprocmask(2); returns the previous mask.
    fn sigprocmask(&self, how: SigmaskHow, set: &SigSet) -> SysResult<SigSet>;
    /// Restores a signal's default disposition (signal(2) with `SIG_DFL`).
    fn default_signal(&self, signal: Signal) -> SysResult<()>;
    /// sigwaitinfo(2): waits for one of `set` (which must be blocked).
    fn sigwaitinfo(&self, set: &SigSet) -> SysResult<SignalInfo>;

    // --- namespaces --------------------------------------------------------------------

    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> SysResult<()>;
    /// setns(2) with a namespace file from `/proc/PID/ns/`.
    fn setns(&self, fd: BorrowedFd<'_>, what: &str, flags: CloneFlags) -> SysResult<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> SysResult<()>;
    /// ioctl(SIOCSIFFLAGS) on `lo`: a new network namespace has a loopback device, down;
    /// this brings it up, so 127.0.0.1 works inside (see netdevice(7)).
    fn loopback_up(&self) -> SysResult<()>;
    /// setresgid(2) and setgroups(2) (`groups: None` leaves the supplementary groups, which
    /// an unprivileged user namespace may not change), then setresuid(2): become `uid:gid`.
    fn set_ids(&self, uid: u32, gid: u32, groups: Option<&[u32]>) -> SysResult<()>;
    /// setfsgid(2), then setfsuid(2): the ids this thread's file-system operations create
    /// files as and are checked as, its other ids unchanged. Moving the fsuid away from 0
    /// drops the file-system capabilities from the effective set (capabilities(7)).
    fn set_fs_ids(&self, uid: u32, gid: u32) -> SysResult<()>;

    // --- privileges (capabilities(7), seccomp(2)) ---------------------------------------

    /// prctl(PR_CAPBSET_DROP): capability `cap` leaves the bounding set, for good; not even
    /// a setuid-root binary gets it back.
    fn drop_bounding(&self, cap: u8) -> SysResult<()>;
    /// prctl(PR_SET_KEEPCAPS): keep the permitted set across the switch away from uid 0.
    fn set_keep_caps(&self, keep: bool) -> SysResult<()>;
    /// capset(2), version 3: the effective, permitted and inheritable sets.
    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()>;
    /// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL).
    fn clear_ambient(&self) -> SysResult<()>;
    /// prctl(PR_SET_NO_NEW_PRIVS, 1): execve never grants more (setuid bits and file
    /// capabilities are ignored), for this process and its children.
    fn set_no_new_privs(&self) -> SysResult<()>;
    /// seccomp(SECCOMP_SET_MODE_FILTER, 0, prog): adds a filter to the process's stack.
    fn seccomp_filter(&self, program: &[seccompiler::sock_filter]) -> SysResult<()>;
    /// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every descriptor from `first` up closes
    /// itself at the next execve (those below are the process's stdio).
    fn cloexec_from(&self, first: u32) -> SysResult<()>;

    // --- mounts ------------------------------------------------------------------------

    /// mount(2).
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()>;
    /// chroot(2).
    fn chroot(&self, path: &Path) -> SysResult<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> SysResult<()>;
    /// fchdir(2): holding an fd, not a path, keeps a mount sequence from being fooled by
    /// a path that changes meaning half-way.
    fn fchdir(&self, fd: BorrowedFd<'_>, what: &Path) -> SysResult<()>;

    // --- files -------------------------------------------------------------------------

    /// open(2) with `O_CLOEXEC` added.
    fn open(&self, path: &Path, flags: OFlag) -> SysResult<OwnedFd>;
    /// A whole-file write, as `echo DATA > PATH` does (one write(2), which is what kernel
    /// files such as `uid_map` and `memory.max` require).
    fn write_file(&self, path: &Path, data: &str) -> SysResult<()>;
    /// A whole-file read.
    fn read_file(&self, path: &Path) -> SysResult<String>;
    /// mkdir(2).
    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()>;
    /// rmdir(2).
    fn rmdir(&self, path: &Path) -> SysResult<()>;
}

// ------------------------------------------------------------------------------------------
// Formatting: shared by the trace, the errors and the recorder, so all three read alike.
// ------------------------------------------------------------------------------------------

/// Formats bitflags symbolically: `MS_REC|MS_PRIVATE`, or `0` when empty.
pub fn flag_names<F: bitflags::Flags>(flags: F) -> String {
    let mut out = String::new();
    for (name, _) in flags.iter_names() {
        if !out.is_empty() {
            out.push('|');
        }
        out.push_str(name);
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

fn q(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("{s:?}"),
        None => "NULL".to_string(),
    }
}

fn argv_list(argv: &[CString]) -> String {
    let mut out = String::from("[");
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{:?}", a.to_string_lossy());
    }
    out.push(']');
    out
}

/// `call(args)` strings for each call, used by [`Kernel`] and [`Recorder`] alike.
pub mod fmt_call {
    use super::*;

    /// clone3 with its namespace flags.
    pub fn clone3(flags: CloneFlags) -> String {
        format!("clone3({}, SIGCHLD)", flag_names(flags))
    }
    /// clone3(2) into a cgroup.
    pub fn clone3_into_cgroup(flags: CloneFlags, cgroup: i32) -> String {
        let flags = match flag_names(flags).as_str() {
            "0" => "CLONE_INTO_CGROUP".to_string(),
            names => format!("{names}|CLONE_INTO_CGROUP"),
        };
        format!("clone3({flags}, SIGCHLD, cgroup={cgroup})")
    }
    /// open(2), with `O_RDONLY` spelled out (it is 0, so no bit shows it).
    pub fn open(path: &Path, flags: OFlag) -> String {
        let access = if flags.intersects(OFlag::O_WRONLY | OFlag::O_RDWR) {
            ""
        } else {
            "O_RDONLY|"
        };
        format!("open({path:?}, {access}{})", flag_names(flags))
    }
    /// mount(2).
    pub fn mount(
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> String {
        format!(
            "mount({}, {:?}, {}, {}, {})",
            q(source),
            target,
            q(fstype),
            flag_names(flags),
            q(data)
        )
    }
}

// ------------------------------------------------------------------------------------------
// The kernel.
// ------------------------------------------------------------------------------------------

/// The real thing: every call goes to the kernel. With `trace`, each call and its result
/// is printed to stderr as `[sys pid] call = result`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel {
    trace: bool,
}

impl Kernel {
    /// A kernel seam; `trace` prints each call.
    pub fn new(trace: bool) -> Self {
        Kernel { trace }
    }

    /// Whether calls are printed.
    pub fn tracing(&self) -> bool {
        self.trace
    }

    /// clone3(2), into the cgroup v2 directory `cgroup` if given (`CLONE_INTO_CGROUP`).
    fn clone3_with(
        &self,
        flags: CloneFlags,
        cgroup: Option<BorrowedFd<'_>>,
        child: &mut dyn FnMut() -> i32,
    ) -> Result<Pid, CloneError> {
        // The precondition that makes the fork-like clone below sound, checked here rather
        // than trusted to every caller.
        match self.threads() {
            1 => {}
            n => return Err(CloneError::Threads(n)),
        }
        // CLONE_INTO_CGROUP is above 32 bits (linux/sched.h), out of CloneFlags' reach.
        const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
        let into = cgroup.map(|fd| fd.as_raw_fd());
        let args = CloneArgs {
            flags: flags.bits() as u64 | into.map_or(0, |_| CLONE_INTO_CGROUP),
            exit_signal: libc::SIGCHLD as u64,
            cgroup: into.map_or(0, |fd| fd as u64),
            ..Default::default()
        };
        let ret = self.call(
            || match into {
                Some(fd) => fmt_call::clone3_into_cgroup(flags, fd),
                None => fmt_call::clone3(flags),
            },
            |pid: &libc::c_long| pid.to_string(),
            || {
                // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(2):
                // the child gets a copy-on-write copy of this address space and returns 0
                // on the same stack. That is sound because this process is single-threaded
                // (checked above), so no lock is held by a thread that does not exist in
                // the child.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_clone3,
                        &args as *const CloneArgs,
                        std::mem::size_of::<CloneArgs>(),
                    )
                };
                Errno::result(r)
            },
        )?;
        if ret == 0 {
            child_exit(child)
        }
        Ok(Pid::from_raw(ret as libc::pid_t))
    }

    /// Runs one call: prints it when tracing, and turns an errno into a [`SysError`] that
    /// names the call. `describe` is only evaluated when needed.
    pub fn call<T>(
        &self,
        describe: impl FnOnce() -> String,
        show: impl FnOnce(&T) -> String,
        f: impl FnOnce() -> Result<T, Errno>,
    ) -> SysResult<T> {
        if !self.trace {
            return f().map_err(|e| SysError::new(describe(), e));
        }
        let call = describe();
        let result = f();
        let shown = match &result {
            Ok(v) => show(v),
            Err(e) => format!("-1 {e:?} ({})", e.desc()),
        };
        // One write(2) per line, so lines from parent and child do not interleave.
        let line = format!("[sys {}] {call} = {shown}\n", std::process::id());
        let _ = std::io::stderr().write_all(line.as_bytes());
        result.map_err(|e| SysError::new(call, e))
    }
}

fn zero<T>(_: &T) -> String {
    "0".to_string()
}

/// The part of `struct clone_args` (linux/sched.h) that clone3 needs; see clone(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Runs `child` in a freshly cloned process and ends that process, whatever `child` does.
///
/// The child runs on a copy of the parent's stack: the frames below this one belong to the
/// parent's story, and their values (a `Cgroup` guard, a `TempDir`, a lock) are the parent's.
/// If a panic unwound into them, their drops would run here as well, removing the parent's
/// cgroup or rootfs from under it. `catch_unwind` stops the unwinding at this frame; the panic
/// hook has already printed the message; `_exit` skips atexit handlers and stdio buffers that
/// are the parent's to flush.
fn child_exit(child: &mut dyn FnMut() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(PANIC_EXIT);
    // SAFETY: _exit(2) ends the child at once; nothing after it runs, and no destructor of
    // the parent's frames below us is reached.
    unsafe { libc::_exit(code) }
}

impl Sys for Kernel {
    fn threads(&self) -> usize {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(1)
    }

    fn clone3(&self, flags: CloneFlags, child: &mut dyn FnMut() -> i32) -> Result<Pid, CloneError> {
        self.clone3_with(flags, None, child)
    }

    fn clone3_into_cgroup(
        &self,
        flags: CloneFlags,
        cgroup: BorrowedFd<'_>,
        child: &mut dyn FnMut() -> i32,
    ) -> Result<Pid, CloneError> {
        self.clone3_with(flags, Some(cgroup), child)
    }

    fn execve(&self, path: &CStr, argv: &[CString], envp: &[CString]) -> SysResult<Infallible> {
        let call = || {
            let path = path.to_string_lossy();
            format!(
                "execve({path:?}, {}, [{} vars])",
                argv_list(argv),
                envp.len()
            )
        };
        if self.trace {
            // A successful execve never returns, so say it before.
            let line = format!("[sys {}] {} ...\n", std::process::id(), call());
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        nix::unistd::execve(path, argv, envp).map_err(|e| SysError::new(call(), e))
    }

    fn waitpid(&self, pid: Pid, nohang: bool) -> SysResult<WaitStatus> {
        let flags = if nohang {
            Some(WaitPidFlag::WNOHANG)
        } else {
            None
        };
        self.call(
            || format!("waitpid({pid}, {})", flags.map_or("0".into(), flag_names)),
            |s| format!("{s:?}"),
            || nix::sys::wait::waitpid(pid, flags),
        )
    }

    fn kill(&self, pid: Pid, signal: Signal) -> SysResult<()> {
        self.call(
            || format!("kill({pid}, {signal})"),
            zero,
            || nix::sys::signal::kill(pid, signal),
        )
    }

    fn setsid(&self) -> SysResult<()> {
        self.call(
            || "setsid()".into(),
            zero,
            || nix::unistd::setsid().map(drop),
        )
    }

    fn dup2_stdio(&self, fd: BorrowedFd<'_>, what: &Path, stdio: i32) -> SysResult<()> {
        self.call(
            || format!("dup2({} /* {what:?} */, {stdio})", fd.as_raw_fd()),
            zero,
            || match stdio {
                0 => nix::unistd::dup2_stdin(fd),
                1 => nix::unistd::dup2_stdout(fd),
                2 => nix::unistd::dup2_stderr(fd),
                _ => Err(Errno::EBADF),
            },
        )
    }

    fn set_controlling_tty(&self) -> SysResult<()> {
        self.call(
            || "ioctl(0, TIOCSCTTY, 0)".into(),
            zero,
            || {
                // SAFETY: TIOCSCTTY takes an int argument by value and touches no memory of
                // ours; descriptor 0 is open (it may not be a tty, then the call fails).
                let r = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
                Errno::result(r).map(drop)
            },
        )
    }

    fn set_child_subreaper(&self) -> SysResult<()> {
        self.call(
            || "prctl(PR_SET_CHILD_SUBREAPER, 1)".into(),
            zero,
            || nix::sys::prctl::set_child_subreaper(true),
        )
    }

    fn set_parent_death_signal(&self, signal: Signal) -> SysResult<()> {
        self.call(
            || format!("prctl(PR_SET_PDEATHSIG, {signal})"),
            zero,
            || nix::sys::prctl::set_pdeathsig(signal),
        )
    }

    fn sigprocmask(&self, how: SigmaskHow, set: &SigSet) -> SysResult<SigSet> {
        self.call(
            || format!("sigprocmask({how:?}, {})", sigset_names(set)),
            zero,
            || {
                let mut old = SigSet::empty();
                nix::sys::signal::sigprocmask(how, Some(set), Some(&mut old))?;
                Ok(old)
            },
        )
    }

    fn default_signal(&self, signal: Signal) -> SysResult<()> {
        self.call(
            || format!("signal({signal}, SIG_DFL)"),
            zero,
            || {
                // SAFETY: installing SIG_DFL runs no handler code, so nothing can race with it.
                unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) }
                    .map(drop)
            },
        )
    }

    fn sigwaitinfo(&self, set: &SigSet) -> SysResult<SignalInfo> {
        self.call(
            || format!("sigwaitinfo({})", sigset_names(set)),
            |i: &SignalInfo| format!("{}", i.signal),
            || loop {
                let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
                // SAFETY: `set` is a valid sigset_t and `info` points to writable memory of
                // the right size; the kernel fills it in before returning a signal number.
                let r = unsafe { libc::sigwaitinfo(set.as_ref(), info.as_mut_ptr()) };
                match Errno::result(r) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e),
                    Ok(signo) => {
                        // SAFETY: sigwaitinfo succeeded, so the kernel initialised `info`.
                        let info = unsafe { info.assume_init() };
                        let signal = Signal::try_from(signo)?;
                        return Ok(SignalInfo {
                            signal,
                            from_process: info.si_code <= 0,
                        });
                    }
                }
            },
        )
    }

    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        self.call(
            || format!("unshare({})", flag_names(flags)),
            zero,
            || nix::sched::unshare(flags),
        )
    }

    fn setns(&self, fd: BorrowedFd<'_>, what: &str, flags: CloneFlags) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "setns({} /* {what} */, {})",
                    fd.as_raw_fd(),
                    flag_names(flags)
                )
            },
            zero,
            || nix::sched::setns(fd, flags),
        )
    }

    fn loopback_up(&self) -> SysResult<()> {
        self.call(
            || "ioctl(socket(AF_INET), SIOCSIFFLAGS, {\"lo\", IFF_UP})".into(),
            zero,
            || {
                let sock = nix::sys::socket::socket(
                    nix::sys::socket::AddressFamily::Inet,
                    nix::sys::socket::SockType::Datagram,
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                    None,
                )?;
                // SAFETY: ifreq is plain old data, zero is a valid value for every field.
                let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
                for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
                    *dst = *src as libc::c_char;
                }
                // SAFETY: `sock` is an open socket and `req` a valid ifreq naming "lo"; the
                // kernel fills in the flags union member.
                Errno::result(unsafe {
                    libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)
                })?;
                // SAFETY: the union's flags member was just filled in by SIOCGIFFLAGS.
                unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
                // SAFETY: as above; SIOCSIFFLAGS reads the same ifreq.
                Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })
                    .map(drop)
            },
        )
    }

    fn sethostname(&self, name: &str) -> SysResult<()> {
        self.call(
            || format!("sethostname({name:?})"),
            zero,
            || nix::unistd::sethostname(name),
        )
    }

    fn set_ids(&self, uid: u32, gid: u32, groups: Option<&[u32]>) -> SysResult<()> {
        use nix::unistd::{Gid, Uid};
        let g = Gid::from_raw(gid);
        self.call(
            || format!("setresgid({gid}, {gid}, {gid})"),
            zero,
            || nix::unistd::setresgid(g, g, g),
        )?;
        if let Some(groups) = groups {
            let list: Vec<Gid> = groups.iter().copied().map(Gid::from_raw).collect();
            self.call(
                || format!("setgroups({groups:?})"),
                zero,
                || nix::unistd::setgroups(&list),
            )?;
        }
        let u = Uid::from_raw(uid);
        self.call(
            || format!("setresuid({uid}, {uid}, {uid})"),
            zero,
            || nix::unistd::setresuid(u, u, u),
        )
    }

    fn set_fs_ids(&self, uid: u32, gid: u32) -> SysResult<()> {
        use nix::unistd::{Gid, Uid, setfsgid, setfsuid};
        // Neither call reports failure except by leaving the id as it was: each is made a
        // second time, which returns the id now in force.
        self.call(
            || format!("setfsgid({gid})"),
            zero,
            || {
                setfsgid(Gid::from_raw(gid));
                match setfsgid(Gid::from_raw(gid)).as_raw() == gid {
                    true => Ok(()),
                    false => Err(nix::errno::Errno::EPERM),
                }
            },
        )?;
        self.call(
            || format!("setfsuid({uid})"),
            zero,
            || {
                setfsuid(Uid::from_raw(uid));
                match setfsuid(Uid::from_raw(uid)).as_raw() == uid {
                    true => Ok(()),
                    false => Err(nix::errno::Errno::EPERM),
                }
            },
        )
    }

    fn drop_bounding(&self, cap: u8) -> SysResult<()> {
        self.call(
            || format!("prctl(PR_CAPBSET_DROP, {})", cap_name(cap)),
            zero,
            || {
                // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory of ours.
                let r = unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0)
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn set_keep_caps(&self, keep: bool) -> SysResult<()> {
        self.call(
            || format!("prctl(PR_SET_KEEPCAPS, {})", u8::from(keep)),
            zero,
            || nix::sys::prctl::set_keepcaps(keep),
        )
    }

    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
        self.call(
            || format!("capset({{eff={effective:#x}, prm={permitted:#x}, inh={inheritable:#x}}})"),
            zero,
            || {
                // linux/capability.h, _LINUX_CAPABILITY_VERSION_3: 64-bit sets in two halves.
                #[repr(C)]
                struct Header {
                    version: u32,
                    pid: i32,
                }
                #[repr(C)]
                #[derive(Clone, Copy)]
                struct Data {
                    effective: u32,
                    permitted: u32,
                    inheritable: u32,
                }
                let half = |v: u64, i: u32| (v >> (32 * i)) as u32;
                let data: [Data; 2] = [0, 1].map(|i| Data {
                    effective: half(effective, i),
                    permitted: half(permitted, i),
                    inheritable: half(inheritable, i),
                });
                let mut header = Header {
                    version: 0x2008_0522,
                    pid: 0,
                };
                // SAFETY: both structs are laid out as capset(2) reads them (version 3 takes
                // two Data), live across the call, and the kernel only reads the data.
                let r = unsafe {
                    libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr())
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn clear_ambient(&self) -> SysResult<()> {
        self.call(
            || "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)".into(),
            zero,
            || {
                // SAFETY: integer arguments only.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_CLEAR_ALL,
                        0,
                        0,
                        0,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        self.call(
            || "prctl(PR_SET_NO_NEW_PRIVS, 1)".into(),
            zero,
            nix::sys::prctl::set_no_new_privs,
        )
    }

    fn seccomp_filter(&self, program: &[seccompiler::sock_filter]) -> SysResult<()> {
        self.call(
            || {
                format!(
                    "seccomp(SECCOMP_SET_MODE_FILTER, 0, {{len={}}})",
                    program.len()
                )
            },
            zero,
            || {
                // linux/filter.h's struct sock_fprog.
                #[repr(C)]
                struct Fprog {
                    len: u16,
                    filter: *const seccompiler::sock_filter,
                }
                let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
                let prog = Fprog {
                    len,
                    filter: program.as_ptr(),
                };
                // SAFETY: `prog` points at `len` instructions laid out as struct sock_filter
                // (seccompiler's type is repr(C) for that); the kernel copies them.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0,
                        &prog as *const Fprog,
                    )
                };
                Errno::result(r).map(drop)
            },
        )
    }

    fn cloexec_from(&self, first: u32) -> SysResult<()> {
        self.call(
            || format!("close_range({first}, ~0U, CLOSE_RANGE_CLOEXEC)"),
            zero,
            || {
                // SAFETY: integer arguments; marking descriptors close-on-exec frees nothing
                // this process still uses before its execve.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        first,
                        u32::MAX,
                        libc::CLOSE_RANGE_CLOEXEC,
                    )
                };
                match Errno::result(r) {
                    Ok(_) => Ok(()),
                    // Before Linux 5.11: flag each open descriptor by hand.
                    Err(Errno::EINVAL | Errno::ENOSYS) => cloexec_each(first),
                    Err(e) => Err(e),
                }
            },
        )
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        self.call(
            || fmt_call::mount(source, target, fstype, flags, data),
            zero,
            || nix::mount::mount(source, target, fstype, flags, data),
        )
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        self.call(
            || format!("umount2({target:?}, {})", flag_names(flags)),
            zero,
            || nix::mount::umount2(target, flags),
        )
    }

    fn chroot(&self, path: &Path) -> SysResult<()> {
        self.call(
            || format!("chroot({path:?})"),
            zero,
            || nix::unistd::chroot(path),
        )
    }

    fn chdir(&self, path: &Path) -> SysResult<()> {
        self.call(
            || format!("chdir({path:?})"),
            zero,
            || nix::unistd::chdir(path),
        )
    }

    fn fchdir(&self, fd: BorrowedFd<'_>, what: &Path) -> SysResult<()> {
        self.call(
            || format!("fchdir({} /* {what:?} */)", fd.as_raw_fd()),
            zero,
            || nix::unistd::fchdir(fd),
        )
    }

    fn open(&self, path: &Path, flags: OFlag) -> SysResult<OwnedFd> {
        let flags = flags | OFlag::O_CLOEXEC;
        self.call(
            || fmt_call::open(path, flags),
            |fd: &OwnedFd| fd.as_raw_fd().to_string(),
            || nix::fcntl::open(path, flags, Mode::empty()),
        )
    }

    fn write_file(&self, path: &Path, data: &str) -> SysResult<()> {
        let describe = || format!("write({path:?}, {:?})", data.trim_end());
        if self.trace {
            let _ = std::io::stderr()
                .write_all(format!("[sys {}] {}\n", std::process::id(), describe()).as_bytes());
        }
        // O_TRUNC without O_CREAT: kernel files exist already, and a typo in a cgroup file
        // name must fail (ENOENT) instead of creating an ordinary file that limits nothing.
        // Fixture trees in unit tests are plain files that exist, so the same rule holds.
        let f = nix::fcntl::open(
            path,
            OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::new(describe(), e))?;
        // One write(2), as the kernel's interface files want a value whole (a cgroup file
        // parses each write on its own); the errno is the kernel's answer to that value.
        let mut rest = data.as_bytes();
        while !rest.is_empty() {
            match nix::unistd::write(&f, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(SysError::new(describe(), errno)),
            }
        }
        Ok(())
    }

    fn read_file(&self, path: &Path) -> SysResult<String> {
        let call = || format!("read({path:?})");
        let f = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SysError::new(call(), e))?;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&f, &mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(SysError::new(call(), errno)),
            }
        }
        // Kernel files are ASCII; a stray byte is shown, not turned into a made-up error.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.call(
            || format!("mkdir({path:?}, {mode:#o})"),
            zero,
            || nix::unistd::mkdir(path, Mode::from_bits_truncate(mode)),
        )
    }

    fn rmdir(&self, path: &Path) -> SysResult<()> {
        self.call(
            || format!("rmdir({path:?})"),
            zero,
            || {
                // nix has no rmdir; std's goes straight to rmdir(2).
                fs::remove_dir(path)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            },
        )
    }
}

/// Formats a signal set as `{SIGINT, SIGTERM}`.
pub fn sigset_names(set: &SigSet) -> String {
    let names: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    format!("{{{}}}", names.join(", "))
}

// ------------------------------------------------------------------------------------------
// The recorder.
// ------------------------------------------------------------------------------------------

/// A seam that performs nothing and writes every call down, for unit tests of a story's
/// order. `clone3` returns a made-up pid without running the child (whose children then
/// "exit" with 0), `execve` "fails" with [`Recorder::EXECED`] (the process would have been
/// replaced), and files live in a small in-memory map that tests can fill in first
/// ([`Recorder::with_file`]).
#[derive(Debug, Default)]
pub struct Recorder {
    log: RefCell<Vec<String>>,
    next_pid: Cell<i32>,
    exits: RefCell<HashMap<i32, i32>>,
    files: RefCell<HashMap<PathBuf, String>>,
    fail: RefCell<Option<(String, Errno)>>,
}

impl Recorder {
    /// What `execve` "fails" with under the recorder: the process would have been replaced.
    pub const EXECED: Errno = Errno::UnknownErrno;

    /// An empty recorder.
    pub fn new() -> Self {
        Recorder {
            next_pid: Cell::new(4242),
            ..Default::default()
        }
    }

    /// Presets a file's contents, as a fixture for `read_file`.
    pub fn with_file(self, path: impl Into<PathBuf>, contents: &str) -> Self {
        self.files
            .borrow_mut()
            .insert(path.into(), contents.to_string());
        self
    }

    /// Makes the first call whose text starts with `prefix` fail with `errno`.
    pub fn failing(self, prefix: &str, errno: Errno) -> Self {
        *self.fail.borrow_mut() = Some((prefix.to_string(), errno));
        self
    }

    /// The calls so far, one per line.
    pub fn calls(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// The contents written to `path`, if any.
    pub fn file(&self, path: &Path) -> Option<String> {
        self.files.borrow().get(path).cloned()
    }

    /// Writes a call down (and fails it if [`Recorder::failing`] asked for that). Later
    /// chapters' seams record their own calls through this.
    pub fn record(&self, call: String) -> SysResult<()> {
        self.log.borrow_mut().push(call.clone());
        let mut fail = self.fail.borrow_mut();
        if let Some((prefix, errno)) = fail.as_ref()
            && call.starts_with(prefix.as_str())
        {
            let err = SysError::new(call, *errno);
            *fail = None;
            return Err(err);
        }
        Ok(())
    }
}

impl Sys for Recorder {
    fn threads(&self) -> usize {
        1
    }

    fn clone3(
        &self,
        flags: CloneFlags,
        _child: &mut dyn FnMut() -> i32,
    ) -> Result<Pid, CloneError> {
        // The child is not run: inline it would share this process's descriptors and block
        // on its own start pipe. Tests record a child's steps by calling them directly.
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        self.record(format!("{} = {pid}", fmt_call::clone3(flags)))?;
        self.exits.borrow_mut().insert(pid, 0);
        Ok(Pid::from_raw(pid))
    }

    fn clone3_into_cgroup(
        &self,
        flags: CloneFlags,
        cgroup: BorrowedFd<'_>,
        _child: &mut dyn FnMut() -> i32,
    ) -> Result<Pid, CloneError> {
        let pid = self.next_pid.get();
        self.next_pid.set(pid + 1);
        let call = fmt_call::clone3_into_cgroup(flags, cgroup.as_raw_fd());
        self.record(format!("{call} = {pid}"))?;
        self.exits.borrow_mut().insert(pid, 0);
        Ok(Pid::from_raw(pid))
    }

    fn execve(&self, path: &CStr, argv: &[CString], _envp: &[CString]) -> SysResult<Infallible> {
        self.record(format!(
            "execve({:?}, {})",
            path.to_string_lossy(),
            argv_list(argv)
        ))?;
        Err(SysError::new("execve (recorded)", Self::EXECED))
    }

    fn waitpid(&self, pid: Pid, _nohang: bool) -> SysResult<WaitStatus> {
        self.record(format!("waitpid({pid})"))?;
        let code = self.exits.borrow_mut().remove(&pid.as_raw());
        match code {
            Some(code) => Ok(WaitStatus::Exited(pid, code)),
            None => Err(SysError::new(format!("waitpid({pid})"), Errno::ECHILD)),
        }
    }

    fn kill(&self, pid: Pid, signal: Signal) -> SysResult<()> {
        self.record(format!("kill({pid}, {signal})"))
    }

    fn setsid(&self) -> SysResult<()> {
        self.record("setsid()".into())
    }

    fn dup2_stdio(&self, _fd: BorrowedFd<'_>, what: &Path, stdio: i32) -> SysResult<()> {
        self.record(format!("dup2({what:?}, {stdio})"))
    }

    fn set_controlling_tty(&self) -> SysResult<()> {
        self.record("ioctl(0, TIOCSCTTY, 0)".into())
    }

    fn set_child_subreaper(&self) -> SysResult<()> {
        self.record("prctl(PR_SET_CHILD_SUBREAPER, 1)".into())
    }

    fn set_parent_death_signal(&self, signal: Signal) -> SysResult<()> {
        self.record(format!("prctl(PR_SET_PDEATHSIG, {signal})"))
    }

    fn sigprocmask(&self, how: SigmaskHow, set: &SigSet) -> SysResult<SigSet> {
        self.record(format!("sigprocmask({how:?}, {})", sigset_names(set)))?;
        Ok(SigSet::empty())
    }

    fn default_signal(&self, signal: Signal) -> SysResult<()> {
        self.record(format!("signal({signal}, SIG_DFL)"))
    }

    fn sigwaitinfo(&self, set: &SigSet) -> SysResult<SignalInfo> {
        self.record(format!("sigwaitinfo({})", sigset_names(set)))?;
        // The recorded children have all "exited" by now.
        Ok(SignalInfo {
            signal: Signal::SIGCHLD,
            from_process: false,
        })
    }

    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        self.record(format!("unshare({})", flag_names(flags)))
    }

    fn setns(&self, _fd: BorrowedFd<'_>, what: &str, flags: CloneFlags) -> SysResult<()> {
        self.record(format!("setns({what}, {})", flag_names(flags)))
    }

    fn loopback_up(&self) -> SysResult<()> {
        self.record("ioctl(socket(AF_INET), SIOCSIFFLAGS, {\"lo\", IFF_UP})".into())
    }

    fn sethostname(&self, name: &str) -> SysResult<()> {
        self.record(format!("sethostname({name:?})"))
    }

    fn set_fs_ids(&self, uid: u32, gid: u32) -> SysResult<()> {
        self.record(format!("setfsgid({gid})"))?;
        self.record(format!("setfsuid({uid})"))
    }

    fn set_ids(&self, uid: u32, gid: u32, groups: Option<&[u32]>) -> SysResult<()> {
        self.record(format!("setresgid({gid}, {gid}, {gid})"))?;
        if let Some(groups) = groups {
            self.record(format!("setgroups({groups:?})"))?;
        }
        self.record(format!("setresuid({uid}, {uid}, {uid})"))
    }

    fn drop_bounding(&self, cap: u8) -> SysResult<()> {
        self.record(format!("prctl(PR_CAPBSET_DROP, {})", cap_name(cap)))
    }

    fn set_keep_caps(&self, keep: bool) -> SysResult<()> {
        self.record(format!("prctl(PR_SET_KEEPCAPS, {})", u8::from(keep)))
    }

    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
        self.record(format!(
            "capset({{eff={effective:#x}, prm={permitted:#x}, inh={inheritable:#x}}})"
        ))
    }

    fn clear_ambient(&self) -> SysResult<()> {
        self.record("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)".into())
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        self.record("prctl(PR_SET_NO_NEW_PRIVS, 1)".into())
    }

    fn seccomp_filter(&self, program: &[seccompiler::sock_filter]) -> SysResult<()> {
        self.record(format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, 0, {{len={}}})",
            program.len()
        ))
    }

    fn cloexec_from(&self, first: u32) -> SysResult<()> {
        self.record(format!("close_range({first}, ~0U, CLOSE_RANGE_CLOEXEC)"))
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        self.record(fmt_call::mount(source, target, fstype, flags, data))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        self.record(format!("umount2({target:?}, {})", flag_names(flags)))
    }

    fn chroot(&self, path: &Path) -> SysResult<()> {
        self.record(format!("chroot({path:?})"))
    }

    fn chdir(&self, path: &Path) -> SysResult<()> {
        self.record(format!("chdir({path:?})"))
    }

    fn fchdir(&self, _fd: BorrowedFd<'_>, what: &Path) -> SysResult<()> {
        self.record(format!("fchdir({what:?})"))
    }

    fn open(&self, path: &Path, flags: OFlag) -> SysResult<OwnedFd> {
        self.record(fmt_call::open(path, flags | OFlag::O_CLOEXEC))?;
        // A real descriptor (of /dev/null), so callers can hold and borrow it as usual.
        nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::new("open(\"/dev/null\")", e))
    }

    fn write_file(&self, path: &Path, data: &str) -> SysResult<()> {
        self.record(format!("write({path:?}, {:?})", data.trim_end()))?;
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), data.to_string());
        Ok(())
    }

    fn read_file(&self, path: &Path) -> SysResult<String> {
        self.files
            .borrow()
            .get(path)
            .cloned()
            .ok_or_else(|| SysError::new(format!("read({path:?})"), Errno::ENOENT))
    }

    fn mkdir(&self, path: &Path, mode: u32) -> SysResult<()> {
        self.record(format!("mkdir({path:?}, {mode:#o})"))
    }

    fn rmdir(&self, path: &Path) -> SysResult<()> {
        self.record(format!("rmdir({path:?})"))
    }
}

/// `CAP_SYS_ADMIN` for 21: how capabilities read in a trace.
fn cap_name(cap: u8) -> String {
    match crate::caps::NAMES.get(cap as usize) {
        Some(n) => format!("CAP_{n}"),
        None => cap.to_string(),
    }
}

/// close_range's fallback: FD_CLOEXEC on every open descriptor from `first` up.
fn cloexec_each(first: u32) -> Result<(), Errno> {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &i32| fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number: at worst EBADF (the directory's own descriptor, closed
        // by now), which is ignored; no memory is touched.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// pipe2(2) with `O_CLOEXEC`: both ends close themselves across execve.
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new("pipe2(O_CLOEXEC)", e))
}

impl fmt::Display for SignalInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)
    }
}
