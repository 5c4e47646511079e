//! The system calls the init makes, declared by hand (it is built with rustc alone, no
//! crates) and wrapped so `main` reads as the story. glibc's x86_64 and aarch64 layouts:
//! `sigset_t` is 1024 bits, `siginfo_t` 128 bytes.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int};

/// `ENOENT`: the command does not exist.
pub const ENOENT: i32 = 2;
/// `SIGCHLD`.
pub const SIGCHLD: i32 = 17;
const SIGTTOU: i32 = 22;
const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const WNOHANG: c_int = 1;
const SIG_IGN: usize = 1;
const SIG_DFL: usize = 0;

/// glibc's `sigset_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SigSet([u64; 16]);

#[repr(C)]
struct SigInfo([u8; 128]);

unsafe extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    #[link_name = "fork"]
    fn c_fork() -> c_int;
    #[link_name = "execvp"]
    fn c_execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn isatty(fd: c_int) -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn tcsetpgrp(fd: c_int, pgrp: c_int) -> c_int;
    fn getpid() -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
}

impl SigSet {
    /// Every signal.
    pub fn full() -> SigSet {
        let mut s = SigSet([0; 16]);
        // SAFETY: `s` is a valid, writable sigset_t of glibc's size.
        unsafe { sigfillset(&mut s) };
        s
    }
}

/// Blocks `set`; returns the mask before.
pub fn block(set: &SigSet) -> SigSet {
    let mut old = SigSet([0; 16]);
    // SAFETY: both pointers are valid sigset_t's for the duration of the call.
    unsafe { sigprocmask(SIG_BLOCK, set, &mut old) };
    old
}

/// Sets the mask back to `old`.
pub fn unblock(old: &SigSet) {
    // SAFETY: `old` is a valid sigset_t; the old mask is not asked for (null).
    unsafe { sigprocmask(SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// fork(2): 0 in the child, its pid in the parent, -1 on failure. The init is one thread,
/// so the child may go on running Rust until it execs.
pub fn fork() -> i32 {
    // SAFETY: no other thread exists whose locks the child could inherit held.
    unsafe { c_fork() }
}

/// Makes the command the terminal's foreground process group, when stdin is a terminal.
pub fn take_terminal() {
    // SAFETY: plain calls on descriptor 0 and our own pid; SIGTTOU is ignored around
    // tcsetpgrp (a background process would get it) and restored after.
    unsafe {
        if isatty(0) == 1 {
            setpgid(0, 0);
            let before = signal(SIGTTOU, SIG_IGN);
            tcsetpgrp(0, getpid());
            signal(SIGTTOU, if before == SIG_IGN { SIG_IGN } else { SIG_DFL });
        }
    }
}

/// execvp(3); returns only on failure, with the error.
pub fn execvp(argv: &[CString]) -> std::io::Error {
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a null-terminated array of pointers into `argv`'s strings, which
    // outlive the call.
    unsafe { c_execvp(ptrs[0], ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

/// Waits for one of `set` (all blocked); its number, or -1 when interrupted.
pub fn wait_signal(set: &SigSet) -> i32 {
    let mut info = SigInfo([0; 128]);
    // SAFETY: `set` and `info` are valid for the call; `info` has glibc's siginfo_t size.
    unsafe { sigwaitinfo(set, &mut info) }
}

/// One ended child, if any, without blocking: (pid, wait status).
pub fn reap_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: `status` is a valid int for the call.
    let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// kill(2): passes `sig` on to the command.
pub fn forward(pid: i32, sig: i32) {
    // SAFETY: a plain system call; a command already gone is ESRCH, harmless here.
    unsafe { kill(pid, sig) };
}
