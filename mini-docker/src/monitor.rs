//! The monitor: the process that stays with a container while it runs, as conmon does for
//! podman. mini-docker has no daemon; every container, detached or not, gets a monitor
//! process of its own (`mini-docker __monitor ID`), and a foreground `run` is only its
//! first client. So the container's life never hangs on a client's: a client killed,
//! stuck or slow cannot stop, wedge or kill it.
//!
//! It holds the container's pipes (or the master side of its pseudo-terminal), copies
//! output to the log and to whoever is attached, feeds input in (through the one `pump`),
//! waits for the container's first process, and records how it ended.
//! It holds `monitor.lock` for its whole life: a container whose monitor died is seen as
//! exited by every other command (see `Container::live_state`).
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use ch01_namespaces::Sys;
use ch01_namespaces::process::SignalBlock;
use ch01_namespaces::process::{Exit, Stdio};
use ch04_unionfs_layers::sys::Kernel;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::pump::{Event, Pump};
use crate::record::{CgroupDir, Container, State, Status, now};
use crate::relay::{Ended, Relay};
use crate::runtime;
use crate::sys::{WinSize, set_window_size, window_size};
use crate::terminal::forwarded_signals;
use crate::{Error, containers, space};

/// docker's stream multiplexing for attach without a tty: an 8-byte header (stream 1 =
/// stdout, 2 = stderr, then the payload length, big-endian) before each chunk.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    ch01_namespaces::sys::pipe().map_err(Error::from)
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

/// Supervises one run of `c`, from start to recorded exit. `ready` (the monitor's stdout)
/// gets `ok PID` once the container runs, or `error CODE MESSAGE`. Returns the container's
/// exit code.
pub fn supervise(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    ready: Option<File>,
    handoff: Option<Handoff>,
) -> Result<i32, Error> {
    let lock_path = c.path("monitor.lock");
    let lock = crate::record::lock_file(&lock_path)?;
    if lock.try_lock().is_err() {
        return Err(Error::Conflict(format!(
            "container {} is already running",
            c.config.name
        )));
    }
    // SIGCHLD comes through the pump's signalfd; the terminating signals are blocked and
    // ignored, so only SIGKILL ends a monitor (and `stop` signals the container, not us).
    let _signals = SignalBlock::of(sys, &monitor_signals())?;
    let result = run_session(sys, root, c, ready, handoff);
    drop(lock);
    result
}

fn report(ready: &mut Option<File>, line: &str) {
    if let Some(mut f) = ready.take() {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The steps of one run, in order.
fn run_session(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    mut ready: Option<File>,
    handoff: Option<Handoff>,
) -> Result<i32, Error> {
    let prepare = crate::timings::span("stdio");
    let layers = image_layers(root, c)?;
    let size = handoff.as_ref().and_then(|h| h.size);
    let io = setup_stdio(c)?;
    drop(prepare);
    let stdio = Stdio {
        fds: [
            io.theirs[0].as_fd(),
            io.theirs[1].as_fd(),
            io.theirs[2].as_fd(),
        ],
        // With -t the terminal comes later, from the container's own devpts.
        tty: false,
    };
    let console = io.console.as_ref().map(|(_, theirs)| theirs.as_fd());
    let launched = match runtime::launch(sys, root, c, &layers, stdio, console) {
        Ok(l) => l,
        Err(e) => {
            record_start_failure(c, &mut ready, &e);
            return Err(e);
        }
    };
    let ContainerIo {
        theirs,
        out,
        err,
        input,
        console,
    } = io;
    // The container holds its ends now; ours would keep its output open after it exits.
    drop(theirs);
    let (out, input) = match (console, out) {
        (Some((ours, theirs)), _) => {
            drop(theirs);
            receive_console(c, &ours, size)?
        }
        (None, out) => {
            let out = out.ok_or_else(|| Error::Corrupt(c.dir.clone(), "no stdout".into()))?;
            (out, input)
        }
    };
    let state = crate::timings::span("state");
    publish_state(c, &launched)?;
    let listener = listen(c)?;
    drop(state);
    report(&mut ready, &format!("ok {}\n", launched.running.pid()));
    let ends = Ends { out, err, input };
    let running_span = crate::timings::span("container");
    let exit = pump(sys, c, ends, &listener, handoff, &launched.running)?;
    drop(listener);
    let _ = std::fs::remove_file(c.path("attach.sock"));
    let runtime::Launched { running, cgroup } = launched;
    let exit = match exit {
        Some(e) => e,
        None => running.wait(sys)?,
    };
    drop(running_span);
    // The teardown's steps (cgroup-remove, exit-record, rm) are timed inside.
    finish(c, root, cgroup, exit)
}

/// The image's extracted layers, bottom first.
fn image_layers(root: &Path, c: &Container) -> Result<Vec<std::path::PathBuf>, Error> {
    let store = crate::store(root)?;
    let image = store
        .resolve(&c.config.image_id)?
        .ok_or_else(|| Error::NoSuchImage(c.config.image.clone()))?;
    Ok(store.layer_dirs(&image)?)
}

/// The container's stdio, both sides.
struct ContainerIo {
    /// The container's stdin, stdout and stderr: three pipes, or with `-t` /dev/null until
    /// its terminal exists.
    theirs: [OwnedFd; 3],
    /// Where its output comes out (stdout's pipe; with `-t`, the terminal's master, which
    /// arrives through the console socket).
    out: Option<OwnedFd>,
    /// stderr's pipe (none with a tty: one terminal carries both).
    err: Option<OwnedFd>,
    /// Where its input goes in, with `-i`.
    input: Option<OwnedFd>,
    /// With `-t`: the console socket, our end and the container's.
    console: Option<(UnixStream, UnixStream)>,
}

/// Our ends, once the container has its own.
struct Ends {
    out: OwnedFd,
    err: Option<OwnedFd>,
    input: Option<OwnedFd>,
}

/// Three pipes (stdin is /dev/null without `-i`), or with `-t` the console socket the
/// container sends its terminal through (see `runtime::launch`).
fn setup_stdio(c: &Container) -> Result<ContainerIo, Error> {
    let null = |write: bool| {
        File::options()
            .read(true)
            .write(write)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| Error::io("open", Path::new("/dev/null"), e))
    };
    if c.config.tty {
        let pair =
            UnixStream::pair().map_err(|e| Error::io("make the console socket for", &c.dir, e))?;
        return Ok(ContainerIo {
            theirs: [null(true)?, null(true)?, null(true)?],
            out: None,
            err: None,
            input: None,
            console: Some(pair),
        });
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin, input) = if c.config.open_stdin {
        let (in_r, in_w) = pipe()?;
        (in_r, Some(in_w))
    } else {
        (null(false)?, None)
    };
    Ok(ContainerIo {
        theirs: [stdin, out_w, err_w],
        out: Some(out_r),
        err: Some(err_r),
        input,
        console: None,
    })
}

/// The terminal's master, as the container sends it once its pty exists (before it
/// execs, so by the time `launch` returns it is waiting in the socket); sized like the
/// client's terminal. Returns (output, input with `-i`).
fn receive_console(
    c: &Container,
    socket: &UnixStream,
    size: Option<WinSize>,
) -> Result<(OwnedFd, Option<OwnedFd>), Error> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::Sys(ch01_namespaces::SysError::new("recvmsg(console socket)", e)))?;
    let fd = msg
        .cmsgs()
        .map_err(|e| Error::Sys(ch01_namespaces::SysError::new("recvmsg(console socket)", e)))?
        .find_map(|m| match m {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or_else(|| {
            Error::Corrupt(
                c.dir.clone(),
                "the container sent no terminal through its console socket".into(),
            )
        })?;
    let master = crate::sys::own_fd(fd);
    if let Some(size) = size {
        let _ = set_window_size(master.as_fd(), size);
    }
    let input = c
        .config
        .open_stdin
        .then(|| master.try_clone())
        .transpose()
        .map_err(|e| Error::io("dup", Path::new("the terminal"), e))?;
    Ok((master, input))
}

/// The start failed: the record and the waiting CLI learn why.
fn record_start_failure(c: &Container, ready: &mut Option<File>, e: &Error) {
    let code = e.exit_code();
    let message = e.to_string();
    let _guard = c.lock_state();
    let mut state = c.state().unwrap_or_default();
    state.exit_code = code;
    state.error = message.clone();
    if let Err(save) = c.save_state(&state) {
        crate::warn(&format!("recording the failed start: {save}"));
    }
    report(ready, &format!("error {code} {message}\n"));
}

/// Writes the running state (pid, start time, cgroup) where every command reads it.
fn publish_state(c: &Container, launched: &runtime::Launched<'_>) -> Result<(), Error> {
    let _guard = c.lock_state()?;
    // An `update` between our reading of the record and now saw a container that was not
    // running, and changed only the record: its limits apply now.
    if let Ok(now_config) = c.reload()
        && now_config.config.host != c.config.host
    {
        launched
            .cgroup
            .apply(&runtime::limits(&now_config.config.host)?)?;
    }
    let state = State {
        status: Status::Running,
        pid: launched.running.pid().as_raw(),
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
    // A `run --rm`'s claim (containers::Starting) is ours now: the record says running.
    let _ = std::fs::remove_file(c.path(".starting"));
    Ok(())
}

/// The attach socket clients connect to.
fn listen(c: &Container) -> Result<UnixListener, Error> {
    let sock_path = c.path("attach.sock");
    let _ = std::fs::remove_file(&sock_path);
    let (_dir, short) = c.socket_path("attach.sock")?;
    let listener = UnixListener::bind(&short).map_err(|e| Error::io("bind", &sock_path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("fcntl", &sock_path, e))?;
    Ok(listener)
}

/// The monitor's pump slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The container's stdout (or its terminal).
    Stdout,
    /// The container's stderr.
    Stderr,
    /// The container's stdin.
    Stdin,
    /// The attach socket.
    Listener,
    /// What client N types.
    ClientIn(u32),
    /// What client N is sent.
    ClientOut(u32),
}

/// How much output a client may fall behind. Past it, the container's output is held back
/// (as a slow terminal holds back `cat`), so a client that reads slowly still gets every
/// byte; but for [`STALL_GRACE`] at most: a client that stays behind that long is stalled
/// and dropped, and the container, its log and the other clients go on without it.
const CLIENT_BACKLOG: usize = 4 << 20;
/// How long a client may hold the container's output back.
const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// How much input may wait for a container that does not read its stdin before the
/// clients' input is paused (their sockets then fill, and they wait, not the container).
const STDIN_BACKLOG: usize = 1 << 20;

/// Copies the container's output to its log and its clients and their input to it, until
/// it has exited and its output has ended. Returns its exit, if it was seen.
fn pump(
    sys: &Kernel,
    c: &Container,
    ends: Ends,
    listener: &UnixListener,
    handoff: Option<Handoff>,
    running: &ch01_namespaces::process::Running,
) -> Result<Option<Exit>, Error> {
    let tty = c.config.tty;
    let mut pump = Pump::new(Some(&monitor_signals()))?;
    pump.source(Slot::Stdout, ends.out)?;
    if let Some(err) = ends.err {
        pump.source(Slot::Stderr, err)?;
    }
    if let Some(input) = ends.input {
        pump.sink(Slot::Stdin, input)?;
    }
    pump.watch(Slot::Listener, crate::pump::dup(listener.as_fd())?)?;
    let mut clients = Clients::default();
    if let Some(h) = handoff {
        // Attached from the start (`run`, `start -a`): docker's stdin-once, its end of input
        // is the container's.
        clients.add(&mut pump, h.client, true)?;
    }
    let rotation = crate::logfile::Rotation::from_opts(&c.config.host.log_opts)?;
    let mut log = crate::logfile::Log::open(&c.log_path(), rotation)?;
    let mut exit: Option<Exit> = None;
    let mut close_stdin = false;
    let mut throttled = false;
    loop {
        if exit.is_some() && !pump.has(Slot::Stdout) && !pump.has(Slot::Stderr) {
            break;
        }
        let timeout = if throttled {
            // Look again soon: the client may have caught up, or stalled for too long.
            Some(std::time::Duration::from_millis(100))
        } else {
            // Once the process has ended, wait a little for the last output (a background
            // process may hold the pipe), then stop.
            exit.map(|_| std::time::Duration::from_millis(200))
        };
        match pump.next(timeout)? {
            Event::Data(slot @ (Slot::Stdout | Slot::Stderr), bytes) => {
                let stream = if slot == Slot::Stdout { 0 } else { 1 };
                log.write(stream, &bytes);
                let framed = if tty {
                    bytes
                } else {
                    frame(stream as u8 + 1, &bytes)
                };
                clients.broadcast(&mut pump, &framed);
            }
            Event::Data(Slot::ClientIn(_), bytes) => {
                let queued = pump.send(Slot::Stdin, &bytes).unwrap_or(0);
                clients.pause_input(&mut pump, queued > STDIN_BACKLOG);
            }
            Event::Drained(Slot::Stdin) => {
                clients.pause_input(&mut pump, false);
                if close_stdin {
                    pump.remove(Slot::Stdin);
                }
            }
            // A client attached later closing its input leaves the container's stdin open
            // for others (docker's rule); the first client's end is the end.
            Event::Eof(Slot::ClientIn(n)) if clients.is_first(n) && !tty => {
                close_stdin = true;
                if pump.queued(Slot::Stdin) == 0 {
                    pump.remove(Slot::Stdin);
                }
            }
            Event::Closed(Slot::ClientOut(n)) => clients.remove(&mut pump, n),
            Event::Ready(Slot::Listener) => {
                while let Ok((stream, _)) = listener.accept() {
                    clients.add(&mut pump, stream, false)?;
                }
            }
            Event::Signal(Signal::SIGCHLD) if exit.is_none() => exit = running.try_wait(sys)?,
            Event::Timeout if exit.is_some() && !throttled => break,
            _ => {}
        }
        throttled = clients.throttle(&mut pump);
        pump.pause(Slot::Stdout, throttled);
        pump.pause(Slot::Stderr, throttled);
        if exit.is_none() {
            exit = running.try_wait(sys)?;
        }
    }
    log.flush();
    // The last output to the clients still reading, but no client holds us for long.
    pump.finish(Some(std::time::Duration::from_secs(2)));
    Ok(exit)
}

/// The attached clients.
#[derive(Default)]
struct Clients {
    ids: Vec<u32>,
    next: u32,
    /// The client attached from the start, whose end of input ends the container's.
    first: Option<u32>,
    /// The clients past [`CLIENT_BACKLOG`], and since when.
    behind: Vec<(u32, std::time::Instant)>,
}

impl Clients {
    fn add(&mut self, pump: &mut Pump<Slot>, stream: UnixStream, first: bool) -> Result<(), Error> {
        let n = self.next;
        self.next += 1;
        let input = OwnedFd::from(
            stream
                .try_clone()
                .map_err(|e| Error::io("dup", Path::new("attach socket"), e))?,
        );
        pump.source(Slot::ClientIn(n), input)?;
        pump.sink(Slot::ClientOut(n), OwnedFd::from(stream))?;
        self.ids.push(n);
        if first {
            self.first = Some(n);
        }
        Ok(())
    }

    fn is_first(&self, n: u32) -> bool {
        self.first == Some(n)
    }

    fn remove(&mut self, pump: &mut Pump<Slot>, n: u32) {
        pump.remove(Slot::ClientIn(n));
        pump.remove(Slot::ClientOut(n));
        self.ids.retain(|&i| i != n);
        self.behind.retain(|&(i, _)| i != n);
    }

    /// Sends output to every client.
    fn broadcast(&mut self, pump: &mut Pump<Slot>, bytes: &[u8]) {
        for n in self.ids.clone() {
            if pump.send(Slot::ClientOut(n), bytes).is_none() {
                self.remove(pump, n);
            }
        }
    }

    /// Whether the container's output must wait for a client that is behind; a client
    /// behind for longer than [`STALL_GRACE`] is dropped instead, with a word in the
    /// monitor's log.
    fn throttle(&mut self, pump: &mut Pump<Slot>) -> bool {
        let now = std::time::Instant::now();
        for n in self.ids.clone() {
            let queued = pump.queued(Slot::ClientOut(n));
            let since = self.behind.iter().position(|&(i, _)| i == n);
            match since {
                _ if queued <= CLIENT_BACKLOG => self.behind.retain(|&(i, _)| i != n),
                None => self.behind.push((n, now)),
                Some(p) if now.duration_since(self.behind[p].1) > STALL_GRACE => {
                    crate::warn(&format!(
                        "client {n} read nothing of {queued} bytes for {} s: dropped (the log \
                         has every byte)",
                        STALL_GRACE.as_secs()
                    ));
                    self.remove(pump, n);
                }
                Some(_) => {}
            }
        }
        !self.behind.is_empty()
    }

    fn pause_input(&self, pump: &mut Pump<Slot>, paused: bool) {
        for &n in &self.ids {
            pump.pause(Slot::ClientIn(n), paused);
        }
    }
}

/// Records how it ended, releases the cgroup, and removes the container if `--rm`.
fn finish(
    c: &Container,
    root: &Path,
    cgroup: ch02_cgroups::Cgroup<'_>,
    exit: Exit,
) -> Result<i32, Error> {
    let span = crate::timings::span("cgroup-remove");
    let stats = cgroup.stats().ok();
    // docker reports OOMKilled for an OOM kill of any process in the container.
    let oom = stats.as_ref().and_then(|s| s.oom_kills).unwrap_or(0) > 0;
    let cleanup = cgroup.remove();
    drop(span);
    let span = crate::timings::span("exit-record");
    // Its address and published ports go back to the network (chapter 7). On a full disk
    // these writes, the state's and a `--rm` container's removal make room first (`space`).
    let unwired = match crate::runtime::network_to_join(&c.config.host) {
        Some(_) => space::with_room(root, || crate::runtime::disconnect(root, c.id())),
        None => Ok(()),
    };
    let recorded = space::with_room(root, || {
        let _guard = c.lock_state()?;
        let mut state = c.state()?;
        state.status = Status::Exited;
        state.pid = 0;
        state.exit_code = exit.code();
        state.oom_killed = oom;
        state.finished_at = now();
        state.cgroup.clear();
        c.save_state(&state)
    });
    // Not recorded even so (an I/O error): the attached client still gets the status, as
    // our exit code, and the log says why the record lacks it.
    if let Err(e) = &recorded {
        crate::warn(&format!(
            "recording exit status {}: {}",
            exit.code(),
            crate::with_causes(e)
        ));
    }
    drop(span);
    if c.config.host.auto_remove {
        let _span = crate::timings::span("rm");
        // Removed already by a concurrent `rm -f`: what --rm asked for.
        match space::with_room(root, || containers::remove(root, c, true)) {
            Err(Error::NoSuchContainer(_)) => {}
            r => r?,
        }
    }
    cleanup?;
    unwired?;
    Ok(exit.code())
}

/// Starts the detached monitor process for `c` and waits until it reports that the
/// container runs (or why it does not). Returns the container's pid.
pub fn spawn_detached(root: &Path, c: &Container) -> Result<i32, Error> {
    spawn(root, c).map(|(pid, _monitor)| pid)
}

/// A foreground `run` and `start -a`: the container gets a monitor process of its own, as
/// with `-d`, and we attach through a socket pair made before it starts (nothing it prints
/// is lost). So the container outlives us (a killed client, a closed terminal) and can be
/// attached again, and with `-it` the user can detach (Ctrl-P Ctrl-Q), as in docker.
/// Without a tty the signals we get are passed on (`sig_proxy`, docker's `--sig-proxy`).
/// Returns the container's exit code, or 0 after a detach (docker's `run` and `start`).
pub fn run_attached(
    root: &Path,
    c: &Container,
    detach_keys: Vec<u8>,
    sig_proxy: bool,
) -> Result<i32, Error> {
    let attach = crate::timings::span("attach");
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::io("make a socket pair for", &c.dir, e))?;
    let size = window_size(io::stdin().as_fd());
    let sys = Kernel::new(false);
    drop(attach);
    let (monitor, pid) = fork_monitor(&sys, root, c, theirs, size)?;
    let relay = Relay {
        stream: ours,
        tty: c.config.tty,
        stdin: c.config.open_stdin,
        detach_keys,
        pid: Some(Pid::from_raw(pid)),
        // docker's run passes signals on only without a tty; with one, Ctrl-C is a key,
        // and a signal to us (a closed ssh session's SIGHUP) ends only us.
        sig_proxy: sig_proxy && !c.config.tty,
    };
    match relay.run()? {
        Ended::Detached => return Ok(0),
        Ended::Signal(s) => return Ok(128 + s as i32),
        Ended::Output => {}
    }
    // The monitor records the exit (and removes a `--rm` container), then exits with the
    // container's code.
    match sys.waitpid(monitor, false)? {
        nix::sys::wait::WaitStatus::Exited(_, code) => Ok(code),
        _ => c.state().map(|s| s.exit_code),
    }
}

/// A foreground run's monitor: cloned from this process rather than exec'd as `-d`'s is,
/// which saves the start of a second program (about 2 ms, a fifth of a `run --rm`). The
/// child keeps exactly what a monitor needs (the client's socket, the ready pipe, its log
/// as stderr) and closes every other descriptor it inherited: a clone, unlike an exec,
/// closes nothing by itself, and a lock or a client's socket held by a monitor for the
/// container's whole life would never be let go. Returns the monitor's pid and the
/// container's.
fn fork_monitor(
    sys: &Kernel,
    root: &Path,
    c: &Container,
    client: UnixStream,
    size: Option<WinSize>,
) -> Result<(Pid, i32), Error> {
    let clone = crate::timings::span("monitor");
    let log_path = c.path("monitor.log");
    let log = File::create(&log_path).map_err(|e| Error::io("create", &log_path, e))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", Path::new("/dev/null"), e))?;
    let (ready_r, ready_w) = pipe()?;
    let mut client = Some(client);
    let mut ready_w = Some(ready_w);
    let monitor = sys
        .clone3(nix::sched::CloneFlags::empty(), &mut || {
            let (Some(client), Some(ready)) = (client.take(), ready_w.take()) else {
                return 125;
            };
            match monitor_child(root, c, &log, &null, client, ready, size) {
                Ok(code) => code,
                Err(e) => {
                    crate::warn(&e.to_string());
                    125
                }
            }
        })
        .map_err(|e| Error::Process(e.into()))?;
    drop(clone);
    // The parent's copies: the monitor holds the only ones now.
    drop(client);
    drop(ready_w);
    let pid = read_report(File::from(ready_r), &log_path, || {
        let _ = sys.waitpid(monitor, false);
    })?;
    Ok((monitor, pid))
}

/// The cloned monitor's first steps: its own session (no terminal, no SIGHUP from ours),
/// stdio on /dev/null and its log, only its own descriptors; then [`supervise`].
fn monitor_child(
    root: &Path,
    c: &Container,
    log: &File,
    null: &File,
    client: UnixStream,
    ready: OwnedFd,
    size: Option<WinSize>,
) -> Result<i32, Error> {
    let setup = crate::timings::span("monitor-setup");
    let _ = nix::unistd::setsid();
    let redirect = |fd: std::os::fd::BorrowedFd<'_>, to: i32| {
        let mut target = crate::sys::own_fd(to);
        let done = nix::unistd::dup2(fd, &mut target);
        std::mem::forget(target); // 0, 1 and 2 stay open: they are ours to keep
        done.map_err(|e| Error::Sys(ch01_namespaces::SysError::new(format!("dup2(_, {to})"), e)))
    };
    redirect(null.as_fd(), 0)?;
    redirect(null.as_fd(), 1)?;
    redirect(log.as_fd(), 2)?;
    // The run's timings too, when on (it is close-on-exec: the container never has it).
    let mut keep = vec![client.as_raw_fd(), ready.as_raw_fd()];
    keep.extend(crate::timings::raw_fd());
    crate::sys::close_all_but(&keep)?;
    // The record as another process would read it (as `__monitor` does): what the CLI
    // changed in memory is not the container's.
    let c = Container::load(&c.dir)?;
    drop(setup);
    let handoff = Handoff { client, size };
    supervise(
        &Kernel::new(false),
        root,
        &c,
        Some(File::from(ready)),
        Some(handoff),
    )
}

/// Reads a monitor's report: `ok PID` once the container runs, or `error CODE MESSAGE`.
/// `reap` collects a monitor that failed.
fn read_report(mut report: File, log: &Path, reap: impl FnOnce()) -> Result<i32, Error> {
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while report.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    if let Some(rest) = line.strip_prefix("ok ") {
        return rest
            .trim()
            .parse()
            .map_err(|_| Error::Corrupt(log.to_path_buf(), format!("the monitor said {line:?}")));
    }
    reap();
    let (code, message) = line
        .strip_prefix("error ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(c, m)| c.parse().ok().map(|c| (c, m.to_string())))
        .unwrap_or((125, format!("the monitor failed; see {}", log.display())));
    Err(Error::Start { code, message })
}

/// Starts `mini-docker __monitor ID` for a detached container and reads its report. An
/// exec, not a clone: the monitor outlives us, and `ps` shows it by name.
fn spawn(root: &Path, c: &Container) -> Result<(i32, std::process::Child), Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", Path::new("/proc/self/exe"), e))?;
    let log = c.path("monitor.log");
    let log_file = File::create(&log).map_err(|e| Error::io("create", &log, e))?;
    let mut child = std::process::Command::new(exe)
        .arg("--root")
        .arg(root)
        .arg("__monitor")
        .arg(c.id())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::io("spawn the monitor for", &c.dir, e))?;
    let report = File::from(OwnedFd::from(child.stdout.take().expect("piped")));
    let pid = read_report(report, &log, || {
        let _ = child.wait();
    })?;
    Ok((pid, child))
}

/// The hidden `__monitor ID` command: become a session leader (no terminal, no SIGHUP),
/// then supervise, reporting on stdout, which is closed once the container runs.
pub fn monitor_main(sys: &Kernel, root: &Path, id: &str) -> Result<i32, Error> {
    let _ = nix::unistd::setsid();
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
    supervise(sys, root, &c, Some(ready), None)
}
