//! `mini-docker exec`: a new process inside a running container. It is not started by the
//! container: it *joins* it. setns(2) into each of the container's namespaces (chapter 1's
//! `join`), its cgroup, its root (through `/proc/PID/root`), its environment, then exec.
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use ch01_namespaces::Sys;
use ch01_namespaces::ns::{Kind, Namespaces};
use ch01_namespaces::process::SignalBlock;
use ch01_namespaces::process::{self, ChildError, ChildOptions, Exit, Stdio};
use ch04_unionfs_layers::sys::Kernel;
use clap::Args;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};

use nix::unistd::Pid;

use crate::pump::{Event, Pump, dup};
use crate::record::Status;
use crate::sys::{set_window_size, window_size};
use crate::{Error, containers};

/// `exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// The container.
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs the command in the container; returns its exit code.
pub fn main(sys: &Kernel, root: &Path, args: &ExecArgs) -> Result<i32, Error> {
    let keys = super::attach::detach_keys(args.detach_keys.as_deref())?;
    let c = containers::find(root, &args.container)?;
    let state = running_state(&c, &args.container)?;
    start_in(sys, root, args, &c, &state, keys).map_err(|e| match e {
        // Its own exit status is the command's; anything before it is exec's failure.
        e @ (Error::Exec(_) | Error::Conflict(_)) => e,
        e => Error::Exec(Box::new(e)),
    })
}

/// Starts the command in the running container `c` and follows it.
fn start_in(
    sys: &Kernel,
    root: &Path,
    args: &ExecArgs,
    c: &crate::record::Container,
    state: &crate::record::State,
    keys: Vec<u8>,
) -> Result<i32, Error> {
    // 1. Every namespace the container has, opened while /proc/PID still means it.
    let mut kinds = vec![Kind::Ipc, Kind::Uts, Kind::Net, Kind::Pid, Kind::Mnt];
    if c.config.id_maps.is_some() {
        // Joined first (chapter 1's order): it owns the others.
        kinds.push(Kind::User);
    }
    if c.config.host.cgroupns_mode == "private" {
        kinds.push(Kind::Cgroup);
    }
    let ns = Namespaces::open(sys, Pid::from_raw(state.pid), &kinds)?;
    // 2. The PID namespace is joined here: it applies to the child we clone next.
    ns.enter_pid(sys)?;
    let spec = ProcessSpec::of(c, args)?;
    let pty = if args.tty {
        Some(open_container_pty(sys, state.pid)?)
    } else {
        None
    };
    let null = open_dev_null()?;
    let stdio = choose_stdio(pty.as_ref(), &null, args.detach);
    // Restored on every way out of this function, early returns included.
    let _signals = block_child_signals(sys)?;
    // With -d, or -i -t (Ctrl-P Ctrl-Q may leave it running), the process may outlive us.
    let interactive_tty = args.tty && args.interactive;
    // 3. Born in the container's cgroup v2 directory, and moving itself into its v1 ones
    //    first thing (while the host's cgroup files are still in view): no pid written
    //    into a `cgroup.procs`, the slow write (see runtime's `launch`, step 4).
    let cgroup = ch02_cgroups::CgroupHandle::open(
        sys as &dyn ch01_namespaces::Sys,
        crate::record::cgroup_dirs(&state.cgroup),
    );
    let born_in = match cgroup.v2_path() {
        Some(dir) => Some(ch01_namespaces::Sys::open(
            sys,
            dir,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        )?),
        None => None,
    };
    let options = ChildOptions {
        detach: args.detach || interactive_tty,
        stdio,
        cgroup: born_in.as_ref().map(|fd| fd.as_fd()),
    };
    //    Then the child joins the other namespaces and the container's root, and becomes
    //    the command, with the container's user and working directory.
    let created = process::create(sys, CloneFlags::empty(), options, &mut || {
        cgroup.join_self_v1().map_err(ChildError::setup)?;
        become_command(sys, &ns, &spec)
    })?;
    drop(born_in);
    // 4. Released, it execs the command, inside the container's limits.
    let running = created.start(sys)?;
    if args.detach {
        // Its terminal must stay open when we go, or it hangs up (SIGHUP): a drain keeps
        // the master side, as docker's daemon does.
        if let Some(p) = pty {
            hand_off(root, p.master)?;
        }
        return Ok(0);
    }
    match pty {
        Some(p) => {
            let escape = interactive_tty.then(|| crate::detach::Escape::new(keys));
            follow_tty(sys, root, p, &running, escape)
        }
        None => Ok(running.wait(sys)?.code()),
    }
}

/// The container's state, if it runs: docker refuses to exec into a paused or stopped
/// container, each with its own message.
fn running_state(c: &crate::record::Container, name: &str) -> Result<crate::record::State, Error> {
    let state = c.live_state()?;
    match state.status {
        Status::Running => Ok(state),
        Status::Paused => Err(Error::Conflict(format!(
            "Container {name} is paused, unpause the container before exec"
        ))),
        _ => Err(Error::Conflict(format!(
            "container {} is not running",
            c.id()
        ))),
    }
}

/// What the new process runs as: the container's environment, working directory and user,
/// each overridden by exec's flags, and the command.
struct ProcessSpec {
    env: Vec<String>,
    workdir: String,
    user: String,
    argv: Vec<String>,
    /// The container's capabilities and seccomp filter (all and none with `--privileged`).
    confinement: ch01_namespaces::confine::Confinement,
}

impl ProcessSpec {
    /// Reads it before the clone, so the child only has to use it.
    fn of(c: &crate::record::Container, args: &ExecArgs) -> Result<ProcessSpec, Error> {
        let mut host = c.config.host.clone();
        host.privileged |= args.privileged;
        Ok(ProcessSpec {
            // docker's exec: the same defaults as the container's (HOSTNAME, TERM with
            // -t), the container's variables, then exec's -e.
            env: crate::runtime::process_env(
                &super::create::environment(
                    &c.config.env,
                    &super::create::read_env_files(&args.env_file)?,
                    &args.env,
                ),
                &c.config.hostname,
                args.tty,
            ),
            workdir: args
                .workdir
                .clone()
                .unwrap_or_else(|| c.config.working_dir.clone()),
            user: args.user.clone().unwrap_or_else(|| c.config.user.clone()),
            argv: args.command.clone(),
            confinement: crate::security::confinement(&host)?,
        })
    }
}

/// A new terminal from the container's own devpts, as docker's is (a host pty would not
/// exist inside the container's /dev/pts), sized like ours.
fn open_container_pty(sys: &Kernel, pid: i32) -> Result<nix::pty::OpenptyResult, Error> {
    let root =
        ch03_rootfs_pivot_root::extract::SafeRoot::open(Path::new(&format!("/proc/{pid}/root")))?;
    let ptmx = root.resolve(
        Path::new("dev/pts/ptmx"),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
    )?;
    let (master, slave) = ch03_rootfs_pivot_root::sys::RootfsSys::pty_pair(sys, ptmx)?;
    if let Some(size) = window_size(io::stdin().as_fd()) {
        let _ = set_window_size(master.as_fd(), size);
    }
    Ok(nix::pty::OpenptyResult { master, slave })
}

/// `/dev/null`, read and write: a detached process's stdio.
fn open_dev_null() -> Result<std::fs::File, Error> {
    std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", Path::new("/dev/null"), e))
}

/// The process's descriptors 0, 1 and 2: its terminal with -t, /dev/null with -d, else
/// ours.
fn choose_stdio<'a>(
    pty: Option<&'a nix::pty::OpenptyResult>,
    null: &'a std::fs::File,
    detach: bool,
) -> Option<Stdio<'a>> {
    match (pty, detach) {
        (Some(p), _) => Some(Stdio {
            fds: [p.slave.as_fd(), p.slave.as_fd(), p.slave.as_fd()],
            tty: true,
        }),
        (None, true) => Some(Stdio {
            fds: [null.as_fd(), null.as_fd(), null.as_fd()],
            tty: false,
        }),
        // Without a tty the process simply shares our stdin, stdout and stderr, and our
        // terminal's process group: Ctrl-C reaches it as it would a local command.
        (None, false) => None,
    }
}

/// Blocks SIGCHLD and SIGWINCH before the child exists: their default action discards
/// them, and blocked they stay pending until the relay's signalfd reads them.
fn block_child_signals(sys: &Kernel) -> Result<SignalBlock, Error> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    Ok(SignalBlock::of(sys, &set)?)
}

/// In the cloned child: the other namespaces and the container's root (chapter 1's
/// `enter_rest`), then the user as the container's own /etc/passwd names it, the working
/// directory, and exec.
fn become_command(
    sys: &Kernel,
    ns: &Namespaces,
    spec: &ProcessSpec,
) -> Result<std::convert::Infallible, ChildError> {
    ns.enter_rest(sys)?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let u = ch03_rootfs_pivot_root::user::resolve(&spec.user, &passwd, &group)
        .map_err(ChildError::setup)?;
    sys.chdir(Path::new(&spec.workdir))?;
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    let ids = ch01_namespaces::confine::Ids {
        uid: u.uid,
        gid: u.gid,
        groups: Some(&u.groups),
    };
    Err(ch01_namespaces::confine::exec(
        sys,
        &spec.confinement,
        ids,
        &spec.argv,
        &env,
    ))
}

/// `exec -t` in the foreground: relays the terminal until the process exits (its code),
/// the detach keys are typed (1, as docker's client, the terminal handed to a drain), or
/// a signal ends us (128 + its number).
fn follow_tty(
    sys: &Kernel,
    root: &Path,
    pty: nix::pty::OpenptyResult,
    running: &process::Running,
    escape: Option<crate::detach::Escape>,
) -> Result<i32, Error> {
    match relay_tty(sys, pty.master.as_fd(), running, escape)? {
        Relayed::Exited(exit) => Ok(exit.code()),
        Relayed::Detached => {
            hand_off(root, pty.master)?;
            eprintln!("read escape sequence");
            Ok(1)
        }
        // Our side of the terminal closes as we return: the process gets its hangup.
        Relayed::Signal(s) => Ok(128 + s as i32),
    }
}

/// Hands the master side of a detached process's terminal to `mini-docker __drain`, a
/// small process of its own that reads it until the process ends.
fn hand_off(root: &Path, master: std::os::fd::OwnedFd) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    crate::sys::inheritable(master.as_fd())?;
    let exe =
        std::env::current_exe().map_err(|e| Error::io("find", Path::new("/proc/self/exe"), e))?;
    // `--root` only names the store it belongs to, for whoever lists processes.
    std::process::Command::new(exe)
        .arg("--root")
        .arg(root)
        .args(["__drain", "--fd", &master.as_raw_fd().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io("spawn", Path::new("mini-docker __drain"), e))?;
    Ok(())
}

/// The hidden `__drain --fd N`: a session of its own (no terminal, no SIGHUP), then read
/// and discard the inherited descriptor until the other side is gone.
pub fn drain_main(fd: std::os::fd::RawFd) -> Result<i32, Error> {
    let _ = nix::unistd::setsid();
    let fd = crate::sys::inherited_fd(fd)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => return Ok(0),
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(e) => return Err(Error::Sys(ch01_namespaces::SysError::new("read", e))),
        }
    }
}

/// How a terminal relay ended.
enum Relayed {
    /// The process exited.
    Exited(Exit),
    /// The detach keys were typed.
    Detached,
    /// A terminating signal came to us.
    Signal(Signal),
}

/// `exec -t`'s pump slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// What the process writes to its terminal.
    Screen,
    /// What we type into it.
    Keys,
    /// Our stdin.
    Stdin,
    /// Our stdout.
    Stdout,
}

/// Copies between our terminal (in raw mode) and the pty until the process ends, the
/// detach keys are typed, or a terminating signal comes.
fn relay_tty(
    sys: &Kernel,
    master: std::os::fd::BorrowedFd<'_>,
    running: &process::Running,
    mut escape: Option<crate::detach::Escape>,
) -> Result<Relayed, Error> {
    let stdin = io::stdin();
    let _raw = crate::terminal::raw_mode(stdin.as_fd());
    // SIGCHLD and SIGWINCH, and the terminating signals, which are blocked (the process
    // was created with them blocked, to forward them): one of those ends the relay, and
    // with it our side of the terminal, which hangs up the process as a closed terminal
    // would (a dropped ssh session's SIGHUP, a `kill`).
    let mut set = crate::terminal::forwarded_signals();
    set.add(Signal::SIGCHLD);
    let _signals = SignalBlock::of(sys, &set)?;
    let mut pump = Pump::new(Some(&set))?;
    pump.source(Slot::Screen, dup(master)?)?;
    pump.sink(Slot::Keys, dup(master)?)?;
    pump.source(Slot::Stdin, dup(stdin.as_fd())?)?;
    pump.sink(Slot::Stdout, dup(io::stdout().as_fd())?)?;
    let mut exit = None;
    let mut typed = Vec::new();
    let relayed = loop {
        if exit.is_some() && !pump.has(Slot::Screen) {
            break None;
        }
        // Once the process has ended, a moment for the last output, then stop.
        let timeout = exit.map(|_| std::time::Duration::from_millis(100));
        match pump.next(timeout)? {
            Event::Data(Slot::Screen, bytes) => {
                pump.send(Slot::Stdout, &bytes);
            }
            Event::Data(Slot::Stdin, bytes) => {
                let detach = crate::detach::typed(escape.as_mut(), &bytes, &mut typed);
                // Queued, not half-written: a pty that takes part of a paste gets the rest
                // when it has room.
                pump.send(Slot::Keys, &typed);
                if detach {
                    break Some(Relayed::Detached);
                }
            }
            Event::Signal(Signal::SIGWINCH) => {
                if let Some(size) = window_size(stdin.as_fd()) {
                    let _ = set_window_size(master, size);
                }
            }
            Event::Signal(Signal::SIGCHLD) if exit.is_none() => exit = running.try_wait(sys)?,
            Event::Signal(Signal::SIGCHLD) => {}
            Event::Signal(s) => break Some(Relayed::Signal(s)),
            Event::Timeout if exit.is_some() => break None,
            _ => {}
        }
        if exit.is_none() {
            exit = running.try_wait(sys)?;
        }
    };
    pump.finish(Some(std::time::Duration::from_secs(1)));
    Ok(relayed.unwrap_or(Relayed::Exited(exit.unwrap_or(Exit::Code(0)))))
}
