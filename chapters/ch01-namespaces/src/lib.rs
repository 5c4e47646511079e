//! # Chapter 1: namespaces
//!
//! A container is a process that cannot see everything. Namespaces decide *what* it sees:
//! its own process ids (PID), hostname (UTS), mount table (mount), System V IPC (IPC),
//! network stack (net) and user ids (user). Three calls do all of it: clone(2) starts a
//! process in new namespaces, unshare(2) moves the caller into new ones, setns(2) joins
//! existing ones.
//!
//! [`run`] is the chapter's story, top to bottom; [`join`] is its mirror image (what
//! `docker exec` does). The pieces later chapters reuse are [`process`] (start a child in
//! namespaces in two phases, wait for it forwarding signals), [`ns`] (namespace kinds,
//! `/proc/PID/ns`, setns) and [`sys`] (the seam every taught call goes through).
use std::convert::Infallible;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

pub mod caps;
pub mod cli;
pub mod confine;
pub mod idmap;
pub mod ns;
pub mod process;
pub mod seccomp;
pub mod sys;

pub use process::{ChildError, Exit};
pub use sys::{CloneError, Kernel, Recorder, Sys, SysError};

use cli::{JoinArgs, NamespaceFlags, RunArgs};
use ns::{Kind, Namespaces};
use process::ChildOptions;

/// What can go wrong in this chapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The child failed before its command ran (or the command could not be run).
    #[error("{0}")]
    Child(ChildError),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    /// clone3 refused, or was refused (a multi-threaded process, see [`CloneError`]).
    #[error(transparent)]
    Clone(#[from] CloneError),
    /// The request makes no sense.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit code a user sees: the child's verdict (126, 127) or 125 for our own failures,
    /// as docker does.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Child(c) => c.code,
            _ => 125,
        }
    }
}

impl NamespaceFlags {
    /// The `CLONE_NEW*` flags these options ask for, with the implications applied: a new
    /// PID namespace gets a new mount namespace too, for its own `/proc`.
    pub fn clone_flags(&self) -> CloneFlags {
        // exercise(ch01.flags): the CLONE_NEW* flag of each namespace asked for; a new PID one needs a new mount one
        let mut flags = CloneFlags::empty();
        for (on, kind) in [
            (self.user, Kind::User),
            (self.cgroup, Kind::Cgroup),
            (self.ipc, Kind::Ipc),
            (self.uts, Kind::Uts),
            (self.net, Kind::Net),
            (self.pid, Kind::Pid),
            (self.mount || self.pid, Kind::Mnt),
        ] {
            if on {
                flags |= kind.flag();
            }
        }
        flags
        // end exercise
    }
}

/// Everything the child needs to know, decided before it is cloned.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The namespaces to create.
    pub flags: CloneFlags,
    /// The hostname to set inside.
    pub hostname: Option<String>,
    /// The command.
    pub argv: Vec<String>,
    /// Its environment (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Leave it running in the background.
    pub detach: bool,
}

impl Plan {
    /// The plan for `ch01-namespaces run`; the command inherits our environment.
    pub fn from_args(args: &RunArgs) -> Plan {
        let mut flags = args.ns.clone_flags();
        if args.hostname.is_some() {
            // Setting a hostname outside a new UTS namespace would rename the host.
            flags |= CloneFlags::CLONE_NEWUTS;
        }
        Plan {
            flags,
            hostname: args.hostname.clone(),
            argv: args.command.clone(),
            env: std::env::vars().map(|(k, v)| format!("{k}={v}")).collect(),
            detach: args.detach,
        }
    }
}

/// `ch01-namespaces run`: the chapter's story. Returns the exit code to leave with.
pub fn run(sys: &dyn Sys, args: &RunArgs) -> Result<i32, Error> {
    let plan = Plan::from_args(args);
    // 1. Clone the child straight into its new namespaces; it waits for step 3.
    let created = process::create(
        sys,
        plan.flags,
        ChildOptions {
            detach: plan.detach,
            ..Default::default()
        },
        &mut || enter(sys, &plan),
    )?;
    // 2. A new user namespace has no ids until its parent maps them.
    if plan.flags.contains(CloneFlags::CLONE_NEWUSER) {
        let (uids, gids) = idmap::root_mapping(Uid::effective(), Gid::effective());
        idmap::write_maps(sys, created.pid(), uids, gids)?;
    }
    // 3. Let it go: it mounts, names itself and execs CMD (see `enter`).
    announce(&plan, created.pid());
    let running = created.start(sys)?;
    if plan.detach {
        println!("{}", running.pid());
        return Ok(0);
    }
    // 4. Wait, forwarding signals, and leave with CMD's exit code.
    Ok(running.wait(sys)?.code())
}

/// What the child does in its new namespaces before it becomes CMD, in kernel order.
pub fn enter(sys: &dyn Sys, plan: &Plan) -> Result<Infallible, ChildError> {
    // exercise(ch01.enter): for each new namespace, in kernel order: root inside, private mounts, /proc, hostname; then exec
    if plan.flags.contains(CloneFlags::CLONE_NEWUSER) {
        become_root_inside(sys)?;
    }
    if plan.flags.contains(CloneFlags::CLONE_NEWNS) {
        make_mounts_private(sys)?;
    }
    if plan.flags.contains(CloneFlags::CLONE_NEWPID) {
        mount_proc(sys, Path::new("/proc"))?;
    }
    if let Some(name) = &plan.hostname {
        set_hostname(sys, name)?;
    }
    Err(process::exec(sys, &plan.argv, &plan.env))
    // end exercise
}

/// Switches to uid and gid 0 of our new user namespace, which the parent has mapped to an
/// unprivileged host id by now. Until this call the child still runs as the host id it was
/// cloned with, which the namespace does not map (it reads as 65534, "nobody").
pub fn become_root_inside(sys: &dyn Sys) -> Result<(), SysError> {
    // Only a privileged parent may let us change supplementary groups: an unprivileged one
    // had to write "deny" to our /proc/self/setgroups first (see idmap).
    let allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(false);
    let groups: Option<&[u32]> = if allowed { Some(&[]) } else { None };
    sys.set_ids(0, 0, groups)
}

/// Makes every mount in our new mount namespace private, before mounting anything. A new
/// mount namespace starts as a copy of the host's, with the same propagation: where `/` is
/// shared (systemd makes it so), a `/proc` mounted here would propagate to the host and
/// cover its `/proc`. See mount_namespaces(7).
pub fn make_mounts_private(sys: &dyn Sys) -> Result<(), SysError> {
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}

/// Mounts a fresh proc filesystem at `target`. A proc mount shows the PID namespace of the
/// process that mounts it, so ours lists only our own processes and `ps` reads it.
pub fn mount_proc(sys: &dyn Sys, target: &Path) -> Result<(), SysError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(Some("proc"), target, Some("proc"), flags, None)
}

/// Sets the hostname in our UTS namespace; the host's is untouched.
pub fn set_hostname(sys: &dyn Sys, name: &str) -> Result<(), SysError> {
    sys.sethostname(name)
}

/// Tells the learner where to find the child from the host: its pid in *our* PID namespace.
fn announce(plan: &Plan, pid: Pid) {
    let kinds: Vec<&str> = Kind::from_flags(plan.flags)
        .iter()
        .map(|k| k.file())
        .collect();
    let namespaces = if kinds.is_empty() {
        "in the host's namespaces".to_string()
    } else {
        format!("in new namespaces: {}", kinds.join(" "))
    };
    let line = format!(
        "ch01-namespaces: {:?} is pid {pid} on the host, {namespaces}\n",
        plan.argv.join(" ")
    );
    // One write(2): the child's --trace lines go to the same stderr and must not cut it.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// `ch01-namespaces join`: runs a command in another process's namespaces, the way
/// `docker exec` enters a container. Returns the exit code to leave with.
pub fn join(sys: &dyn Sys, args: &JoinArgs) -> Result<i32, Error> {
    let target = Pid::from_raw(args.target);
    let mut kinds = Kind::from_flags(args.ns.clone_flags());
    if kinds.is_empty() {
        kinds = differing_kinds(target)?;
    }
    // 1. Open every namespace first, while /proc/PID still means the target.
    let namespaces = Namespaces::open(sys, target, &kinds)?;
    // 2. The PID namespace is joined by the parent: it applies to children only.
    namespaces.enter_pid(sys)?;
    // 3. The child joins the rest, then execs.
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let created = process::create(
        sys,
        CloneFlags::empty(),
        ChildOptions::default(),
        &mut || {
            namespaces.enter_rest(sys)?;
            Err(process::exec(sys, &args.command, &env))
        },
    )?;
    let running = created.start(sys)?;
    Ok(running.wait(sys)?.code())
}

/// The kinds in which `target` lives in another namespace than we do (`nsenter --all`).
fn differing_kinds(target: Pid) -> Result<Vec<Kind>, Error> {
    let link = |pid: &str, kind: Kind| {
        let path = format!("/proc/{pid}/ns/{}", kind.file());
        std::fs::read_link(&path).map_err(|e| Error::Io(format!("readlink {path}"), e))
    };
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        if link(&target.to_string(), kind)? != link("self", kind)? {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(Error::Usage(format!(
            "process {target} is in all of our namespaces: nothing to join"
        )));
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::NamespaceFlags;

    fn plan(ns: NamespaceFlags, hostname: Option<&str>) -> Plan {
        Plan::from_args(&RunArgs {
            ns,
            hostname: hostname.map(str::to_string),
            detach: false,
            command: vec!["ps".into(), "aux".into()],
        })
    }

    /// A plan made without `clone_flags`, so the child's tests do not go through it.
    fn child_plan(flags: CloneFlags, hostname: Option<&str>) -> Plan {
        Plan {
            flags,
            hostname: hostname.map(str::to_string),
            argv: vec!["ps".into(), "aux".into()],
            env: Vec::new(),
            detach: false,
        }
    }

    #[test]
    fn every_option_asks_for_its_own_namespace() {
        let all = NamespaceFlags {
            user: true,
            cgroup: true,
            ipc: true,
            uts: true,
            net: true,
            pid: true,
            mount: true,
        };
        assert_eq!(
            all.clone_flags(),
            CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWCGROUP
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(NamespaceFlags::default().clone_flags(), CloneFlags::empty());
        for (ns, flag) in [
            (
                NamespaceFlags {
                    user: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWUSER,
            ),
            (
                NamespaceFlags {
                    cgroup: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWCGROUP,
            ),
            (
                NamespaceFlags {
                    ipc: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWIPC,
            ),
            (
                NamespaceFlags {
                    uts: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWUTS,
            ),
            (
                NamespaceFlags {
                    net: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWNET,
            ),
            (
                NamespaceFlags {
                    mount: true,
                    ..Default::default()
                },
                CloneFlags::CLONE_NEWNS,
            ),
        ] {
            assert_eq!(ns.clone_flags(), flag, "{ns:?}");
        }
    }

    #[test]
    fn pid_implies_mount_and_hostname_implies_uts() {
        let p = plan(
            NamespaceFlags {
                pid: true,
                ..Default::default()
            },
            Some("box"),
        );
        assert_eq!(
            p.flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS
        );
    }

    #[test]
    fn the_child_makes_mounts_private_before_mounting_proc() {
        let rec = Recorder::new();
        let p = child_plan(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS,
            Some("box"),
        );
        // Under the recorder, execve "fails": the real one would have replaced the process.
        enter(&rec, &p).unwrap_err();
        let calls = rec.calls();
        insta::assert_snapshot!(calls[..3].join("\n"), @r#"
        mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)
        mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)
        sethostname("box")
        "#);
        assert!(calls[3].starts_with("execve(") && calls[3].ends_with(r#"["ps", "aux"])"#));
    }

    #[test]
    fn the_child_takes_only_the_steps_of_its_new_namespaces() {
        // A new UTS namespace alone: no mount at all (on a host where / is shared, making
        // it private or mounting /proc there would reach the host's mounts).
        let rec = Recorder::new();
        enter(&rec, &child_plan(CloneFlags::CLONE_NEWUTS, Some("box"))).unwrap_err();
        let calls = rec.calls();
        assert_eq!(calls[0], r#"sethostname("box")"#, "{calls:#?}");
        assert!(calls[1].starts_with("execve("), "{calls:#?}");
        // A new user namespace: root inside first, before anything else.
        let rec = Recorder::new();
        enter(
            &rec,
            &child_plan(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS, None),
        )
        .unwrap_err();
        let calls = rec.calls();
        assert_eq!(calls[0], "setresgid(0, 0, 0)", "{calls:#?}");
        assert!(
            calls.iter().position(|c| c == "setresuid(0, 0, 0)")
                < calls.iter().position(|c| c.starts_with("mount(")),
            "{calls:#?}"
        );
        assert!(!calls.iter().any(|c| c.contains("\"proc\"")), "{calls:#?}");
    }

    #[test]
    fn the_parent_maps_ids_before_releasing_the_child() {
        let rec = Recorder::new();
        let args = RunArgs {
            ns: NamespaceFlags {
                user: true,
                ..Default::default()
            },
            hostname: None,
            detach: false,
            command: vec!["id".into()],
        };
        let code = run(&rec, &args).unwrap();
        assert_eq!(code, 0);
        let calls = rec.calls();
        let clone = calls
            .iter()
            .position(|c| c.starts_with("clone3(CLONE_NEWUSER"))
            .unwrap();
        let uid_map = calls.iter().position(|c| c.contains("/uid_map")).unwrap();
        let wait = calls
            .iter()
            .position(|c| c.starts_with("waitpid("))
            .unwrap();
        assert!(clone < uid_map && uid_map < wait, "{calls:#?}");
    }

    #[test]
    fn a_failing_mount_is_reported_with_the_call_and_errno() {
        let rec = Recorder::new().failing("mount(\"proc\"", nix::errno::Errno::EPERM);
        let p = child_plan(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS, None);
        let err = enter(&rec, &p).unwrap_err();
        assert_eq!(err.code, 125);
        insta::assert_snapshot!(err.message, @r#"mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL): EPERM (Operation not permitted)"#);
    }
}
