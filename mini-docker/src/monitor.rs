//! The monitor: the process that stays with a container while it runs, as conmon does for
//! podman. mini-docker has no daemon; for a detached container (`run -d`, `start`) the
//! monitor is a small process of its own (`mini-docker __monitor ID`), and for a
//! foreground `run` the CLI process itself is the monitor.
//!
//! It holds the container's pipes (or the master side of its pseudo-terminal), copies
//! output to the log and to whoever is attached, feeds input in, forwards signals (for a
//! foreground run), waits for the container's first process, and records how it ended.
//! It holds `monitor.lock` for its whole life: a container whose monitor died is seen as
//! exited by every other command (see `Container::live_state`).
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use ch01_namespaces::process::SignalBlock;
use ch01_namespaces::process::{Exit, Stdio};
use ch04_unionfs_layers::sys::Kernel;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::unistd::Pid;

use crate::container::{CgroupDir, Container, State, Status, now};
use crate::relay::{Ended, Relay};
use crate::runtime;
use crate::sys::{WinSize, set_window_size, window_size};
use crate::{Error, containers};

/// Who is attached from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The CLI's own terminal or pipes (a foreground `run`, `start -a`).
    Foreground,
    /// Nobody: a detached monitor; clients come through `attach.sock`.
    Background,
}

/// docker's stream multiplexing for attach without a tty: an 8-byte header (stream 1 =
/// stdout, 2 = stderr, then the payload length, big-endian) before each chunk.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// docker's json-file log: one JSON object per line of output.
#[derive(Debug)]
struct Log {
    file: File,
    partial: [Vec<u8>; 2],
}

impl Log {
    fn open(path: &Path) -> Result<Log, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(Log {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    fn write(&mut self, stream: usize, bytes: &[u8]) {
        self.partial[stream].extend_from_slice(bytes);
        while let Some(nl) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=nl).collect();
            self.entry(stream, &line);
        }
        // Docker cuts very long lines at 16 KiB.
        if self.partial[stream].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.entry(stream, &line);
        }
    }

    fn entry(&mut self, stream: usize, line: &[u8]) {
        let obj = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == 0 { "stdout" } else { "stderr" },
            "time": now(),
        });
        let mut text = obj.to_string();
        text.push('\n');
        let _ = self.file.write_all(text.as_bytes());
    }

    fn flush(&mut self) {
        for s in 0..2 {
            let line = std::mem::take(&mut self.partial[s]);
            if !line.is_empty() {
                self.entry(s, &line);
            }
        }
    }
}

/// The CLI's terminal in raw mode (keys go to the container as typed, Ctrl-C included),
/// restored when dropped.
pub struct RawMode {
    saved: termios::Termios,
}

/// Puts the terminal on `fd` (if it is one) in raw mode until the guard is dropped.
pub fn raw_mode(fd: BorrowedFd<'_>) -> Option<RawMode> {
    if !nix::unistd::isatty(fd).unwrap_or(false) {
        return None;
    }
    let saved = termios::tcgetattr(fd).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw).ok()?;
    Some(RawMode { saved })
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), termios::SetArg::TCSANOW, &self.saved);
    }
}

struct Client {
    stream: UnixStream,
    /// Still sending input: a client that closed its side (EOF) keeps getting output.
    reading: bool,
}

fn cloexec(fd: BorrowedFd<'_>) -> Result<(), Error> {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map(drop)
    .map_err(|e| {
        Error::Sys(ch01_namespaces::SysError::new(
            "fcntl(F_SETFD, FD_CLOEXEC)",
            e,
        ))
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    ch01_namespaces::sys::pipe().map_err(Error::from)
}

fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            // The pty's slave side closed: that is end-of-file for a terminal.
            Err(nix::errno::Errno::EIO) => return Ok(0),
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(())
}

/// The signals passed on to a container (docker's sig-proxy), and SIGWINCH for the window
/// size: what a foreground monitor and an attached client (`relay`) watch.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// The signals a monitor handles through its signalfd: those, and SIGCHLD.
fn monitor_signals() -> SigSet {
    let mut set = forwarded_signals();
    set.add(Signal::SIGCHLD);
    set
}

/// A client that is attached from the start (`run -it`, `start -ai`): the monitor's end of
/// a socket pair made by the CLI, so that no output is lost before it could connect, and
/// the size of the CLI's terminal for the container's.
#[derive(Debug)]
pub struct Handoff {
    /// The monitor's end.
    pub client: UnixStream,
    /// The CLI's window size.
    pub size: Option<WinSize>,
}

/// Supervises one run of `c`, from start to recorded exit. `ready` (a detached monitor's
/// stdout) gets `ok` once the container runs, or `error CODE MESSAGE`. Returns the
/// container's exit code.
pub fn supervise(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    mode: Mode,
    ready: Option<File>,
    handoff: Option<Handoff>,
) -> Result<i32, Error> {
    let lock_path = c.path("monitor.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("open", &lock_path, e))?;
    if lock.try_lock().is_err() {
        return Err(Error::Conflict(format!(
            "container {} is already running",
            c.config.name
        )));
    }
    // A Ctrl-C that reached the container reached us too; still pending when the mask is
    // restored, it would kill us before we return the container's exit code: the block
    // drains it on the way out.
    let signals = SignalBlock::of(sys, &monitor_signals())?;
    let result = run_session(sys, root, c, mode, ready, handoff);
    drop(signals);
    drop(lock);
    result
}

fn report(ready: &mut Option<File>, line: &str) {
    if let Some(mut f) = ready.take() {
        let _ = f.write_all(line.as_bytes());
    }
}

fn run_session(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    mode: Mode,
    mut ready: Option<File>,
    handoff: Option<Handoff>,
) -> Result<i32, Error> {
    let cfg = &c.config;
    let store = crate::store(root)?;
    let image = store
        .resolve(&cfg.image_id)
        .map_err(Error::from)?
        .ok_or_else(|| Error::NoSuchImage(cfg.image.clone()))?;
    let layers = store.layer_dirs(&image).map_err(Error::from)?;
    let foreground = mode == Mode::Foreground;

    // The container's stdio: a pseudo-terminal, or pipes.
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", Path::new("/dev/null"), e))?;
    let theirs: [OwnedFd; 3];
    let (mut out_fd, mut err_fd, mut in_fd): (Option<OwnedFd>, Option<OwnedFd>, Option<OwnedFd>);
    if cfg.tty {
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| Error::Sys(ch01_namespaces::SysError::new("openpty", e)))?;
        // openpty's descriptors survive exec: the container must not inherit the master.
        for fd in [&pty.master, &pty.slave] {
            cloexec(fd.as_fd())?;
        }
        let size = if foreground {
            window_size(io::stdin().as_fd())
        } else {
            handoff.as_ref().and_then(|h| h.size)
        };
        if let Some(size) = size {
            let _ = set_window_size(pty.master.as_fd(), size);
        }
        let slave = pty.slave;
        theirs = [
            slave
                .try_clone()
                .map_err(|e| Error::io("dup", Path::new("pty"), e))?,
            slave
                .try_clone()
                .map_err(|e| Error::io("dup", Path::new("pty"), e))?,
            slave,
        ];
        in_fd = cfg
            .open_stdin
            .then(|| pty.master.try_clone())
            .transpose()
            .map_err(|e| Error::io("dup", Path::new("pty"), e))?;
        out_fd = Some(pty.master);
        err_fd = None;
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = if cfg.open_stdin {
            let (in_r, in_w) = pipe()?;
            in_fd = Some(in_w);
            in_r
        } else {
            in_fd = None;
            null.try_clone()
                .map_err(|e| Error::io("dup", Path::new("/dev/null"), e))?
                .into()
        };
        theirs = [stdin, out_w, err_w];
        out_fd = Some(out_r);
        err_fd = Some(err_r);
    }

    // Start it.
    let stdio = Stdio {
        fds: [theirs[0].as_fd(), theirs[1].as_fd(), theirs[2].as_fd()],
        tty: cfg.tty,
    };
    let launched = match runtime::launch(sys, root, c, &layers, stdio) {
        Ok(l) => l,
        Err(e) => {
            let code = e.exit_code();
            let message = e.to_string();
            let _guard = c.lock_state();
            let mut state = c.state().unwrap_or_default();
            state.exit_code = code;
            state.error = message.clone();
            let _ = c.save_state(&state);
            report(&mut ready, &format!("error {code} {message}\n"));
            return Err(e);
        }
    };
    drop(theirs);
    let pid = launched.running.pid();
    {
        let _guard = c.lock_state()?;
        // An `update` between our reading of the record and now saw a container that was
        // not running, and changed only the record: its limits apply now.
        if let Ok(now_config) = c.reload()
            && now_config.config.host != c.config.host
        {
            launched
                .cgroup
                .apply(&runtime::limits(&now_config.config.host)?)?;
        }
        let state = State {
            status: Status::Running,
            pid: pid.as_raw(),
            started_at: now(),
            cgroup: launched
                .cgroup
                .dirs()
                .iter()
                .map(|d| CgroupDir {
                    version: if d.version == ch02_cgroups::layout::Version::V1 {
                        1
                    } else {
                        2
                    },
                    path: d.path.clone(),
                    controllers: d.controllers.iter().map(|c| c.name().to_string()).collect(),
                })
                .collect(),
            ..State::default()
        };
        c.save_state(&state)?;
    }
    let sock_path = c.path("attach.sock");
    let _ = std::fs::remove_file(&sock_path);
    let (_dir, short) = c.socket_path("attach.sock")?;
    let listener = UnixListener::bind(&short).map_err(|e| Error::io("bind", &sock_path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("fcntl", &sock_path, e))?;
    report(&mut ready, &format!("ok {pid}\n"));

    let signals = SignalFd::with_flags(
        &monitor_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| Error::Sys(ch01_namespaces::SysError::new("signalfd", e)))?;
    let _raw = if foreground && cfg.tty {
        raw_mode(io::stdin().as_fd())
    } else {
        None
    };
    let mut log = Log::open(&c.log_path())?;
    let mut clients: Vec<Client> = handoff
        .map(|h| Client {
            stream: h.client,
            reading: true,
        })
        .into_iter()
        .collect();
    let mut local_in = foreground && cfg.open_stdin;
    let mut exit: Option<Exit> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let stdin = io::stdin();

    loop {
        if exit.is_some() && out_fd.is_none() && err_fd.is_none() {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut what: Vec<u8> = Vec::new(); // 0 out, 1 err, 2 local stdin, 3 signals, 4 listener, 10+i client
        if let Some(fd) = &out_fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            what.push(0);
        }
        if let Some(fd) = &err_fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            what.push(1);
        }
        if local_in && in_fd.is_some() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            what.push(2);
        }
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        what.push(3);
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        what.push(4);
        for (i, cl) in clients.iter().enumerate() {
            if cl.reading {
                fds.push(PollFd::new(cl.stream.as_fd(), PollFlags::POLLIN));
                what.push(10 + i as u8);
            }
        }
        // Once the process has ended, wait a little for the last output, then stop.
        let timeout = if exit.is_some() {
            PollTimeout::from(200u16)
        } else {
            PollTimeout::NONE
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Sys(ch01_namespaces::SysError::new("poll", e))),
        };
        if n == 0 && exit.is_some() {
            break;
        }
        let ready_set: Vec<(u8, bool)> = fds
            .iter()
            .zip(&what)
            .map(|(f, w)| (*w, f.revents().is_some_and(|r| !r.is_empty())))
            .filter(|(_, r)| *r)
            .collect();
        drop(fds);
        let mut dead_clients = Vec::new();
        for (w, _) in ready_set {
            match w {
                0 | 1 => {
                    let stream = w as usize;
                    let fd = if w == 0 {
                        out_fd.as_ref()
                    } else {
                        err_fd.as_ref()
                    };
                    let Some(fd) = fd else { continue };
                    let n = read_some(fd.as_fd(), &mut buf).unwrap_or(0);
                    if n == 0 {
                        if w == 0 {
                            out_fd = None;
                        } else {
                            err_fd = None;
                        }
                        continue;
                    }
                    let chunk = &buf[..n];
                    log.write(stream, chunk);
                    if foreground {
                        let _ = if stream == 0 {
                            io::stdout()
                                .write_all(chunk)
                                .and_then(|()| io::stdout().flush())
                        } else {
                            io::stderr().write_all(chunk)
                        };
                    }
                    let framed = if cfg.tty {
                        chunk.to_vec()
                    } else {
                        frame(stream as u8 + 1, chunk)
                    };
                    for (i, cl) in clients.iter_mut().enumerate() {
                        if cl.stream.write_all(&framed).is_err() {
                            dead_clients.push(i);
                        }
                    }
                }
                2 => {
                    let n = read_some(stdin.as_fd(), &mut buf).unwrap_or(0);
                    if n == 0 {
                        local_in = false;
                        if !cfg.tty {
                            in_fd = None; // EOF: close the container's stdin
                        }
                    } else if let Some(fd) = &in_fd {
                        let _ = write_all(fd.as_fd(), &buf[..n]);
                    }
                }
                3 => {
                    while let Ok(Some(info)) = signals.read_signal() {
                        let sig = Signal::try_from(info.ssi_signo as i32).ok();
                        match sig {
                            // The container's first process is our only child; a wait
                            // for any child could take its status from us.
                            Some(Signal::SIGCHLD) if exit.is_none() => {
                                exit = launched.running.try_wait(sys)?;
                            }
                            Some(Signal::SIGWINCH) => {
                                if let (true, Some(fd)) = (cfg.tty, &out_fd)
                                    && let Some(size) = window_size(stdin.as_fd())
                                {
                                    let _ = set_window_size(fd.as_fd(), size);
                                }
                            }
                            Some(s) if foreground && exit.is_none() => {
                                // docker run's sig-proxy: what the CLI gets, the container gets.
                                let _ = nix::sys::signal::kill(pid, s);
                            }
                            _ => {}
                        }
                    }
                }
                4 => {
                    while let Ok((stream, _)) = listener.accept() {
                        let _ = stream.set_nonblocking(false);
                        clients.push(Client {
                            stream,
                            reading: true,
                        });
                    }
                }
                i => {
                    let i = (i - 10) as usize;
                    let n = clients[i].stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        // The client closed its input; docker keeps the container's stdin
                        // open (it was not attached at the start), and the output flowing.
                        clients[i].reading = false;
                    } else if let Some(fd) = &in_fd {
                        let _ = write_all(fd.as_fd(), &buf[..n]);
                    }
                }
            }
        }
        dead_clients.sort_unstable();
        dead_clients.dedup();
        for i in dead_clients.into_iter().rev() {
            clients.remove(i);
        }
        if exit.is_none()
            && let Some(e) = launched.running.try_wait(sys)?
        {
            exit = Some(e);
        }
    }
    log.flush();
    drop(clients);
    drop(listener);
    let _ = std::fs::remove_file(&sock_path);
    let runtime::Launched { running, cgroup } = launched;
    let exit = match exit {
        Some(e) => e,
        None => running.wait(sys)?,
    };
    finish(c, root, cgroup, exit)
}

/// Records how it ended, releases the cgroup, and removes the container if `--rm`.
fn finish(
    c: &Container,
    root: &Path,
    cgroup: ch02_cgroups::Cgroup<'_>,
    exit: Exit,
) -> Result<i32, Error> {
    let stats = cgroup.stats().ok();
    // docker reports OOMKilled for an OOM kill of any process in the container.
    let oom = stats.as_ref().and_then(|s| s.oom_kills).unwrap_or(0) > 0;
    let cleanup = cgroup.remove();
    {
        let _guard = c.lock_state()?;
        let mut state = c.state()?;
        state.status = Status::Exited;
        state.pid = 0;
        state.exit_code = exit.code();
        state.oom_killed = oom;
        state.finished_at = now();
        state.cgroup.clear();
        c.save_state(&state)?;
    }
    if c.config.host.auto_remove {
        containers::remove(root, c, true)?;
    }
    cleanup?;
    Ok(exit.code())
}

/// Starts the detached monitor process for `c` and waits until it reports that the
/// container runs (or why it does not). Returns the container's pid.
pub fn spawn_detached(root: &Path, c: &Container) -> Result<i32, Error> {
    spawn(root, c, None).map(|(pid, _monitor)| pid)
}

/// `run -it` and `start -ai`: the container gets a monitor process of its own, as with
/// `-d`, and we attach through a socket pair made before it starts (nothing it prints is
/// lost). So the user can detach (Ctrl-P Ctrl-Q) and leave it running, as in docker.
/// Returns the container's exit code, or 0 after a detach (docker's `run` and `start`).
pub fn run_attached(root: &Path, c: &Container, detach_keys: Vec<u8>) -> Result<i32, Error> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::io("make a socket pair for", &c.dir, e))?;
    // The monitor's end must survive its exec; it sets close-on-exec again at once.
    inheritable(theirs.as_fd())?;
    let size = window_size(io::stdin().as_fd());
    let (pid, mut monitor) = spawn(root, c, Some((theirs.as_raw_fd(), size)))?;
    drop(theirs);
    let relay = Relay {
        stream: ours,
        tty: c.config.tty,
        stdin: c.config.open_stdin,
        detach_keys,
        pid: Some(Pid::from_raw(pid)),
        // docker's run passes signals on only without a tty; with one, Ctrl-C is a key,
        // and a signal to us (a closed ssh session's SIGHUP) ends only us.
        sig_proxy: !c.config.tty,
    };
    match relay.run()? {
        Ended::Detached => return Ok(0),
        Ended::Signal(s) => return Ok(128 + s as i32),
        Ended::Output => {}
    }
    // The monitor records the exit (and removes a `--rm` container), then exits with the
    // container's code.
    let status = monitor
        .wait()
        .map_err(|e| Error::io("wait for the monitor of", &c.dir, e))?;
    match status.code() {
        Some(code) => Ok(code),
        None => c.state().map(|s| s.exit_code),
    }
}

/// Starts `mini-docker __monitor ID` (with a client's descriptor and window size, if
/// attached from the start) and reads its report.
fn spawn(
    root: &Path,
    c: &Container,
    attached: Option<(RawFd, Option<WinSize>)>,
) -> Result<(i32, std::process::Child), Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", Path::new("/proc/self/exe"), e))?;
    let log = c.path("monitor.log");
    let log_file = File::create(&log).map_err(|e| Error::io("create", &log, e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root").arg(root).arg("__monitor").arg(c.id());
    if let Some((fd, size)) = attached {
        cmd.arg("--attach-fd").arg(fd.to_string());
        if let Some(WinSize { rows, cols }) = size {
            cmd.arg("--tty-size").arg(format!("{rows}x{cols}"));
        }
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::io("spawn the monitor for", &c.dir, e))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.as_mut() {
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
    }
    if let Some(rest) = line.strip_prefix("ok ") {
        let pid = rest
            .trim()
            .parse()
            .map_err(|_| Error::Corrupt(log, format!("the monitor said {line:?}")))?;
        return Ok((pid, child));
    }
    let _ = child.wait();
    let (code, message) = line
        .strip_prefix("error ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(c, m)| c.parse().ok().map(|c| (c, m.to_string())))
        .unwrap_or((125, format!("the monitor failed; see {}", log.display())));
    Err(Error::Start { code, message })
}

/// The hidden `__monitor ID` command: become a session leader (no terminal, no SIGHUP),
/// then supervise, reporting on stdout, which is closed once the container runs.
pub fn monitor_main(
    sys: &Kernel,
    root: &Path,
    id: &str,
    attach_fd: Option<RawFd>,
    tty_size: Option<&str>,
) -> Result<i32, Error> {
    let _ = nix::unistd::setsid();
    let handoff = match attach_fd {
        Some(fd) => Some(Handoff {
            client: inherited_socket(fd)?,
            size: tty_size.and_then(|s| {
                let (rows, cols) = s.split_once('x')?;
                Some(WinSize {
                    rows: rows.parse().ok()?,
                    cols: cols.parse().ok()?,
                })
            }),
        }),
        None => None,
    };
    let c = Container::load(&Container::dir_of(root, id))?;
    // stdout is the CLI's pipe: hand it to `supervise` as the ready channel, and point
    // descriptor 1 at /dev/null so the CLI sees end-of-file after the report.
    let ready = nix::fcntl::fcntl(
        io::stdout().as_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
    )
    .map_err(|e| {
        Error::Sys(ch01_namespaces::SysError::new(
            "fcntl(1, F_DUPFD_CLOEXEC)",
            e,
        ))
    })?;
    let ready = File::from(crate::sys::own_fd(ready));
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", Path::new("/dev/null"), e))?;
    let _ = nix::unistd::dup2_stdout(null.as_fd());
    supervise(sys, root, &c, Mode::Background, Some(ready), handoff)
}

/// Takes the socket the CLI left open for us as descriptor `fd`.
fn inherited_socket(fd: RawFd) -> Result<UnixStream, Error> {
    inherited_fd(fd).map(UnixStream::from)
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
        crate::sys::borrow_fd(fd),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| Error::Sys(ch01_namespaces::SysError::new(&what, e)))?;
    Ok(crate::sys::own_fd(fd))
}
