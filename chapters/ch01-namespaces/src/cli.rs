//! The command line, exported so that mini-docker can flatten the same flags.
use clap::{Args, Parser, Subcommand};

/// Chapter 1: run a process in new namespaces, list a process's namespaces, join them.
#[derive(Debug, Parser)]
#[command(name = "ch01-namespaces", version)]
pub struct Cli {
    /// Print every system call the chapter makes, with its arguments and result.
    #[arg(long, global = true)]
    pub trace: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD in new namespaces (like `unshare`, or the start of `docker run`).
    Run(RunArgs),
    /// Show a process's namespaces (/proc/PID/ns/*) and which differ from PID 1's.
    Ns(NsArgs),
    /// Run CMD inside another process's namespaces (like `nsenter`, or `docker exec`).
    Join(JoinArgs),
}

/// Which namespaces to create.
#[derive(Debug, Clone, Default, Args)]
pub struct NamespaceFlags {
    /// A new PID namespace: CMD is PID 1 and sees only its own descendants. Implies
    /// --mount, to mount a /proc that shows them.
    #[arg(long)]
    pub pid: bool,
    /// A new UTS namespace: a hostname of its own.
    #[arg(long)]
    pub uts: bool,
    /// A new mount namespace: mounts made inside stay inside.
    #[arg(long)]
    pub mount: bool,
    /// A new IPC namespace: System V IPC and POSIX message queues of its own.
    #[arg(long)]
    pub ipc: bool,
    /// A new network namespace: only a loopback device, down.
    #[arg(long)]
    pub net: bool,
    /// A new user namespace: uid 0 inside is an unprivileged uid outside (100000 when you
    /// are root, yourself otherwise).
    #[arg(long)]
    pub user: bool,
    /// A new cgroup namespace: /proc/self/cgroup shows the current cgroup as /.
    #[arg(long)]
    pub cgroup: bool,
}

/// `ch01-namespaces run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The namespaces to create.
    #[command(flatten)]
    pub ns: NamespaceFlags,
    /// Set this hostname inside (implies --uts, so the host's stays as it is).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Print CMD's host pid on stdout and return once it runs, leaving it in the background
    /// (like `docker run -d`) with its stdin, stdout and stderr on /dev/null.
    #[arg(short, long)]
    pub detach: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `ch01-namespaces ns`.
#[derive(Debug, Clone, Args)]
pub struct NsArgs {
    /// The process: a pid, or `self`.
    #[arg(default_value = "self")]
    pub pid: String,
}

/// `ch01-namespaces join`.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// The process whose namespaces to join, by its host pid.
    #[arg(short, long, value_name = "PID")]
    pub target: i32,
    /// The namespaces to join (none given: all of the target's that differ from ours).
    #[command(flatten)]
    pub ns: NamespaceFlags,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}
