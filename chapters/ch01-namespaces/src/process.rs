//! Starting a process in new namespaces, and waiting for it, the way container runtimes do.
//!
//! A child is started in two phases, like `runc create` and `runc start`:
//!
//! 1. [`create`] clones the child into its new namespaces and leaves it blocked on a pipe.
//!    While it waits, the parent does what only the parent can do: write the child's
//!    `uid_map`, put its pid into a cgroup, move a veth into its network namespace.
//! 2. [`Created::start`] releases it. The child sets up its mounts, hostname and so on, then
//!    calls execve(2). A second pipe, closed by execve because it is `O_CLOEXEC`, tells the
//!    parent whether that exec happened or what went wrong before it.
//!
//! Signals the parent receives while it waits are forwarded to the child, which is what
//! `docker run` does (its `--sig-proxy`).
use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use crate::Error;
use crate::sys::{self, Sys, SysError};

/// Why a child did not get as far as its command. Sent to the parent over the error pipe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    /// The exit code a user sees, docker's convention: 125 when the runtime failed, 126
    /// when the command cannot be invoked, 127 when it is not found.
    pub code: i32,
    /// What went wrong, with the failing call.
    pub message: String,
}

impl ChildError {
    /// The runtime failed (exit code 125).
    pub fn setup(message: impl fmt::Display) -> Self {
        ChildError {
            code: 125,
            message: message.to_string(),
        }
    }
}

impl From<SysError> for ChildError {
    fn from(e: SysError) -> Self {
        ChildError::setup(e)
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit(N).
    Code(i32),
    /// A signal killed it.
    Signal(Signal),
}

impl Exit {
    /// The exit code a shell (and docker) reports: N, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s as i32,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => write!(f, "killed by {s}"),
        }
    }
}

/// Options for the child that are not namespaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildOptions<'a> {
    /// Detach from the terminal (setsid) and outlive the parent, like `docker run -d`.
    /// Without it the child is killed when the parent dies (`PR_SET_PDEATHSIG`), so an
    /// interrupted demo leaves nothing running.
    pub detach: bool,
    /// Give the child these descriptors as stdin, stdout and stderr, in a session of its
    /// own (a container runtime's pipes, or a pseudo-terminal).
    pub stdio: Option<Stdio<'a>>,
    /// Start the child in this cgroup v2 directory (an open descriptor of it):
    /// `CLONE_INTO_CGROUP`, see [`Sys::clone3_into_cgroup`].
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// The child's standard descriptors.
#[derive(Debug, Clone, Copy)]
pub struct Stdio<'a> {
    /// What becomes descriptors 0, 1 and 2.
    pub fds: [BorrowedFd<'a>; 3],
    /// Descriptor 0 is a terminal that becomes the child's controlling terminal (`-t`):
    /// then Ctrl-C on it sends SIGINT to the child's foreground process group.
    pub tty: bool,
}

/// The signals a waiting parent takes over: SIGCHLD to learn the child ended, the others to
/// forward them.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set
}

/// Blocks the waited-for signals for as long as it lives, so none is lost between clone3 and
/// the wait (they stay pending until sigwaitinfo collects them); restores the mask on drop.
/// A caller that must not die between acquiring something and releasing it (a cgroup, a
/// mount) holds one from the start.
///
/// It is the one way the chapters and mini-docker block signals: whatever path a function
/// leaves by (an early `?`, a panic), the mask is restored, and a signal that arrived
/// meanwhile and was already dealt with (forwarded, waited for) is drained first.
#[derive(Debug)]
pub struct SignalBlock {
    old: SigSet,
    blocked: SigSet,
}

impl SignalBlock {
    /// Blocks SIGCHLD, SIGINT, SIGTERM, SIGHUP and SIGQUIT until dropped.
    pub fn new(sys: &dyn Sys) -> Result<Self, SysError> {
        Self::of(sys, &waited_signals())
    }

    /// Blocks the signals of `set` until dropped (a monitor's, a relay's: they read them
    /// through a signalfd(2), which only sees blocked signals).
    pub fn of(sys: &dyn Sys, set: &SigSet) -> Result<Self, SysError> {
        let old = sys.sigprocmask(SigmaskHow::SIG_BLOCK, set)?;
        Ok(SignalBlock { old, blocked: *set })
    }
}

impl Drop for SignalBlock {
    fn drop(&mut self) {
        drain_pending(&self.blocked);
        // Restoring a mask we read from the kernel cannot fail (sigprocmask(2) fails only
        // for a bad `how` or pointer); there is nothing to report.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Discards the signals of `set` pending for this process, before a blocked mask is lifted.
/// A Ctrl-C goes to the whole process group: the child dies of it, and our copy may still be
/// pending when the wait returns (the SIGCHLD came first). Left there, it would kill us the
/// moment the mask is restored, before we report how the child ended. A signalfd(2) read
/// without blocking takes pending signals off the queue.
pub fn drain_pending(set: &SigSet) {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    if let Ok(fd) = SignalFd::with_flags(set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        while let Ok(Some(_)) = fd.read_signal() {}
    }
}

/// A child that exists in its namespaces and waits for [`Created::start`].
#[derive(Debug)]
pub struct Created {
    pid: Pid,
    go: OwnedFd,
    errors: OwnedFd,
    signals: SignalBlock,
}

/// A child that has exec'd its command.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
    _signals: SignalBlock,
}

/// Clones a child into the namespaces in `flags`. The child blocks until
/// [`Created::start`]; then it runs `setup`, which ends in [`exec`] on success.
pub fn create(
    sys: &dyn Sys,
    flags: CloneFlags,
    options: ChildOptions<'_>,
    setup: &mut dyn FnMut() -> Result<Infallible, ChildError>,
) -> Result<Created, Error> {
    let signals = SignalBlock::new(sys)?;
    let (go_read, go_write) = sys::pipe()?;
    let (err_read, err_write) = sys::pipe()?;
    // Each end sits in an Option so that one side can close its copy with `take()`. The
    // child runs in a copy of this address space: its `take()`s leave the parent's Options
    // as they were, so after clone3 the parent still holds exactly its own ends.
    let (mut go_read, mut go_write) = (Some(go_read), Some(go_write));
    let (mut err_read, mut err_write) = (Some(err_read), Some(err_write));
    let mut child = || {
        // In the child: close the parent's ends, or the child would never see EOF on `go`
        // if the parent died.
        drop(go_write.take());
        drop(err_read.take());
        let go = go_read.take().expect("the child runs once");
        let err = err_write.take().expect("the child runs once");
        match child_main(sys, options, go, setup) {
            Ok(never) => match never {},
            Err(e) => {
                let mut f = std::fs::File::from(err);
                let _ = f.write_all(format!("{}\n{}", e.code, e.message).as_bytes());
                e.code
            }
        }
    };
    let pid = match options.cgroup {
        Some(cgroup) => sys.clone3_into_cgroup(flags, cgroup, &mut child)?,
        None => sys.clone3(flags, &mut child)?,
    };
    // In the parent: close the child's ends, so a dead child reads as EOF.
    drop(go_read);
    drop(err_write);
    let (Some(go_write), Some(err_read)) = (go_write, err_read) else {
        unreachable!("the parent's pipe ends are only taken in the child");
    };
    Ok(Created {
        pid,
        go: go_write,
        errors: err_read,
        signals,
    })
}

/// The child's side of the handshake, then its setup.
fn child_main(
    sys: &dyn Sys,
    options: ChildOptions<'_>,
    go: OwnedFd,
    setup: &mut dyn FnMut() -> Result<Infallible, ChildError>,
) -> Result<Infallible, ChildError> {
    if options.detach {
        // A session of its own: no controlling terminal, and no SIGHUP when it goes away.
        sys.setsid()?;
        // And no hold on our stdio: whoever reads our output (a pipe, `$(...)`) would wait
        // for the detached command to end before seeing EOF.
        let null = Path::new("/dev/null");
        let fd = sys.open(null, nix::fcntl::OFlag::O_RDWR)?;
        for stdio in 0..3 {
            sys.dup2_stdio(std::os::fd::AsFd::as_fd(&fd), null, stdio)?;
        }
    } else {
        // Set before waiting on `go`: if the parent is already gone, the read sees EOF.
        sys.set_parent_death_signal(Signal::SIGKILL)?;
    }
    if let Some(stdio) = options.stdio {
        // Out of the parent's session: a terminal's Ctrl-C reaches the parent, which
        // decides what to forward; with a tty of its own, the child's tty decides. (A
        // detached child is in a session of its own already: a second setsid(2) fails
        // with EPERM, as the leader of a session cannot start another.)
        if !options.detach {
            sys.setsid()?;
        }
        let names = ["stdin", "stdout", "stderr"];
        for (n, fd) in stdio.fds.iter().enumerate() {
            sys.dup2_stdio(*fd, Path::new(names[n]), n as i32)?;
        }
        if stdio.tty {
            sys.set_controlling_tty()?;
        }
    }
    let mut go = std::fs::File::from(go);
    let mut byte = [0u8; 1];
    let gone = || ChildError::setup("the parent went away before starting the child");
    match go.read(&mut byte) {
        Ok(1) => {}
        _ => return Err(gone()),
    }
    // The parent may have written "g" and died before PR_SET_PDEATHSIG above was in place:
    // then no signal will ever come. It keeps its end of `go` open until we exec, so a
    // hang-up on the (now empty) pipe means exactly that; any later death sends SIGKILL.
    if !options.detach && parent_hung_up(&go) {
        return Err(gone());
    }
    // The parent blocked signals to forward them (perhaps at several levels); the command
    // starts with none blocked, as any freshly started program expects.
    sys.sigprocmask(SigmaskHow::SIG_SETMASK, &SigSet::empty())?;
    // Rust ignores SIGPIPE at start-up and ignored signals stay ignored across execve:
    // without this, `yes | head -1` inside would never end.
    sys.default_signal(Signal::SIGPIPE)?;
    setup()
}

/// Whether every writer of the pipe `fd` has closed it (poll(2) reports POLLHUP), without
/// waiting.
fn parent_hung_up(fd: &impl AsFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

impl Created {
    /// The child's pid as the host (this process's PID namespace) sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Lets the child go on, and waits until it has exec'd its command or failed.
    pub fn start(self, sys: &dyn Sys) -> Result<Running, Error> {
        let Created {
            pid,
            go,
            errors,
            signals,
        } = self;
        // Held open until the child has exec'd or failed: the child checks it for a hang-up
        // (see `child_main`).
        let mut go = std::fs::File::from(go);
        match go.write_all(b"g") {
            // EPIPE: the child is gone already; the error pipe and waitpid say why.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Io("write to the child's start pipe".into(), e));
            }
            _ => {}
        }
        let mut report = String::new();
        let _ = std::fs::File::from(errors).read_to_string(&mut report);
        drop(go);
        if report.is_empty() {
            // EOF without a word: execve closed the pipe, the command runs.
            return Ok(Running {
                pid,
                _signals: signals,
            });
        }
        // The child failed before exec and exits; reap it so no zombie is left.
        let _ = sys.waitpid(pid, false);
        let (code, message) = report.split_once('\n').unwrap_or(("125", &report));
        Err(Error::Child(ChildError {
            code: code.parse().unwrap_or(125),
            message: message.to_string(),
        }))
    }
}

impl Running {
    /// The child's pid as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the child has ended (and how), without waiting.
    pub fn try_wait(&self, sys: &dyn Sys) -> Result<Option<Exit>, Error> {
        Ok(match sys.waitpid(self.pid, true)? {
            WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig)),
            _ => None,
        })
    }

    /// Waits for the child to end. Signals sent to this process with kill(1) are forwarded
    /// to the child; a terminal's Ctrl-C already reaches the child itself (it is in the
    /// same process group), so those are not sent twice.
    pub fn wait(self, sys: &dyn Sys) -> Result<Exit, Error> {
        let set = waited_signals();
        loop {
            match sys.waitpid(self.pid, true)? {
                WaitStatus::Exited(_, code) => return Ok(Exit::Code(code)),
                WaitStatus::Signaled(_, sig, _) => return Ok(Exit::Signal(sig)),
                _ => {}
            }
            let info = sys.sigwaitinfo(&set)?;
            if info.signal != Signal::SIGCHLD && info.from_process {
                match sys.kill(self.pid, info.signal) {
                    Ok(())
                    | Err(SysError {
                        errno: Errno::ESRCH,
                        ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// Replaces the process with `argv`, looking the program up in the `PATH` of `env` (the
/// command's environment, not ours: inside a container that is the image's `PATH`).
/// Returns only on failure, with docker's exit codes (127 not found, 126 not executable).
pub fn exec(sys: &dyn Sys, argv: &[String], env: &[String]) -> ChildError {
    exec_with(sys, argv, env, &mut || Ok(()))
}

/// [`exec`], with `last` run between looking the program up and execve(2): the place for
/// what must come last, such as a seccomp filter that would refuse the look-up's calls
/// (see [`crate::confine`]). A failure of `last` is the child's setup failure (125).
pub fn exec_with(
    sys: &dyn Sys,
    argv: &[String],
    env: &[String],
    last: &mut dyn FnMut() -> Result<(), SysError>,
) -> ChildError {
    let Some(program) = argv.first() else {
        return ChildError::setup("no command given");
    };
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let Some(path) = find_program(program, path_var) else {
        return ChildError {
            code: 127,
            message: format!("exec {program:?}: executable file not found in $PATH"),
        };
    };
    let cstrings = |v: &[String]| -> Result<Vec<CString>, ChildError> {
        v.iter()
            .map(|s| CString::new(s.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|_| ChildError::setup("an argument or variable contains a NUL byte"))
    };
    let (argv_c, env_c) = match (cstrings(argv), cstrings(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let path_c = CString::new(path.as_os_str().as_bytes()).unwrap_or_default();
    if let Err(e) = last() {
        return ChildError::setup(e);
    }
    match sys.execve(&path_c, &argv_c, &env_c) {
        Ok(never) => match never {},
        Err(e) => exec_error(program, &path_c, e),
    }
}

fn exec_error(program: &str, path: &CStr, e: SysError) -> ChildError {
    let code = match e.errno {
        Errno::ENOENT => 127,
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM | Errno::ETXTBSY => 126,
        _ => 125,
    };
    let what = if code == 127 {
        "no such file or directory"
    } else {
        e.errno.desc()
    };
    let path = path.to_string_lossy();
    let resolved = if path == program {
        String::new()
    } else {
        format!(" ({path})")
    };
    ChildError {
        code,
        message: format!("exec {program:?}{resolved}: {}", what.to_lowercase()),
    }
}

/// execvp(3)'s search, against a given `PATH`: a name with a `/` is used as it is; otherwise
/// the first `DIR/name` that exists as a file. (A directory of that name is skipped.)
pub fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| p.metadata().map(|m| !m.is_dir()).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Exit::Code(3).code(), 3);
        assert_eq!(Exit::Signal(Signal::SIGKILL).code(), 137);
        assert_eq!(Exit::Signal(Signal::SIGTERM).code(), 143);
    }

    #[test]
    fn find_program_searches_path_in_order() {
        assert_eq!(find_program("./x", "/bin"), Some(PathBuf::from("./x")));
        assert_eq!(
            find_program("sh", "/nonexistent:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(find_program("no-such-program-here", "/bin:/usr/bin"), None);
        // A directory is not a program.
        assert_eq!(find_program("usr", "/"), None);
    }

    #[test]
    fn exec_errors_map_to_docker_exit_codes() {
        let c = CString::new("/x").unwrap();
        assert_eq!(
            exec_error("x", &c, SysError::new("execve", Errno::ENOENT)).code,
            127
        );
        assert_eq!(
            exec_error("x", &c, SysError::new("execve", Errno::EACCES)).code,
            126
        );
        assert_eq!(
            exec_error("x", &c, SysError::new("execve", Errno::E2BIG)).code,
            125
        );
    }
}
