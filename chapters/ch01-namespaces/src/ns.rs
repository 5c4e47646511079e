//! The namespace kinds, the `/proc/PID/ns/*` links that name a process's namespaces, and
//! joining another process's namespaces with setns(2), which is what `docker exec` and
//! `docker run --pid=container:X` do.
//!
//! Two processes share a namespace exactly when their links point at the same inode:
//! `readlink /proc/PID/ns/pid` prints `pid:[4026531836]`. See namespaces(7).
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::Error;
use crate::process::ChildError;
use crate::sys::Sys;

/// The namespace kinds a container runtime creates. (The time namespace exists too, but no
/// container runtime the chapters mirror uses it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// User and group ids: root inside can be nobody outside.
    User,
    /// The view of the cgroup tree (`/proc/self/cgroup` shows `/`).
    Cgroup,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Hostname and NIS domain name.
    Uts,
    /// Network devices, addresses, routes, firewall rules, ports.
    Net,
    /// Process ids: the first process is PID 1.
    Pid,
    /// The mount table.
    Mnt,
}

impl Kind {
    /// Every kind, in the order they are joined: the user namespace first (it grants the
    /// capabilities needed for the rest), the mount namespace last (after it, paths under
    /// `/proc` may resolve differently).
    pub const ALL: [Kind; 7] = [
        Kind::User,
        Kind::Cgroup,
        Kind::Ipc,
        Kind::Uts,
        Kind::Net,
        Kind::Pid,
        Kind::Mnt,
    ];

    /// The `CLONE_NEW*` flag that creates or joins this kind.
    pub fn flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Mnt => CloneFlags::CLONE_NEWNS,
        }
    }

    /// The file name under `/proc/PID/ns/`.
    pub fn file(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Cgroup => "cgroup",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Net => "net",
            Kind::Pid => "pid",
            Kind::Mnt => "mnt",
        }
    }

    /// The kinds whose flags are set in `flags`, in join order.
    pub fn from_flags(flags: CloneFlags) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| flags.contains(k.flag()))
            .collect()
    }
}

/// One row of [`compare`]: a namespace link of the process and of the reference process
/// (PID 1, the host's init, where readable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The link's name (`pid`, `pid_for_children`, ...).
    pub name: String,
    /// Where the process's link points (`pid:[4026532201]`).
    pub theirs: String,
    /// Where the reference process's link points, if readable.
    pub host: Option<String>,
}

impl Row {
    /// True when the process is in another namespace of this kind than PID 1.
    pub fn differs(&self) -> bool {
        self.host.as_deref().is_some_and(|h| h != self.theirs)
    }
}

/// Which process stands for "the host": PID 1 if its links can be read, else this process
/// (PID 1 may be hidden from us, for instance when it is not dumpable).
pub fn reference(proc_root: &Path) -> &'static str {
    if fs::read_link(proc_root.join("1/ns/pid")).is_ok() {
        "1"
    } else {
        "self"
    }
}

/// Reads the namespace links of `pid` (a number or `self`) under `proc_root` (normally
/// `/proc`) and pairs each with those of `reference` (see [`reference`]).
pub fn compare(proc_root: &Path, pid: &str, reference: &str) -> Result<Vec<Row>, Error> {
    let dir = proc_root.join(pid).join("ns");
    let entries =
        fs::read_dir(&dir).map_err(|e| Error::Io(format!("read {}", dir.display()), e))?;
    let mut rows = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Io(format!("read {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let theirs = readlink(&entry.path())?;
        let host = fs::read_link(proc_root.join(reference).join("ns").join(&name))
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
        rows.push(Row { name, theirs, host });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn readlink(path: &Path) -> Result<String, Error> {
    fs::read_link(path)
        .map(|t| t.to_string_lossy().into_owned())
        .map_err(|e| Error::Io(format!("readlink {}", path.display()), e))
}

/// The table `ch01-namespaces ns` prints.
pub fn render(pid: &str, reference: &str, rows: &[Row]) -> String {
    let who = if pid == "self" {
        "THIS PROCESS".to_string()
    } else {
        format!("PID {pid}")
    };
    let host = if reference == "1" {
        "HOST (PID 1)"
    } else {
        "HOST (THIS PROCESS)"
    };
    let line = |a: &str, b: &str, c: &str, d: &str| {
        format!("{a:<18} {b:<22} {c:<22} {d}")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line("NAMESPACE", &who, host, "");
    for row in rows {
        let host = row.host.as_deref().unwrap_or("(unreadable)");
        out += &line(
            &row.name,
            &row.theirs,
            host,
            if row.differs() { "<- differs" } else { "" },
        );
    }
    let differing = rows.iter().filter(|r| r.differs()).count();
    out.push_str(&format!(
        "{differing} of {} namespaces differ from the host's\n",
        rows.len()
    ));
    out
}

/// Descriptors for another process's namespaces, opened up front: once this process has
/// joined the target's mount namespace, `/proc/PID/...` may no longer lead to the same place.
#[derive(Debug)]
pub struct Namespaces {
    fds: Vec<(Kind, OwnedFd)>,
    root: Option<OwnedFd>,
    root_path: PathBuf,
}

impl Namespaces {
    /// Opens `/proc/PID/ns/KIND` for each kind; with [`Kind::Mnt`], also the target's root
    /// directory (`/proc/PID/root`), because joining a mount namespace does not change our
    /// root to the target's if it called pivot_root or chroot.
    pub fn open(sys: &dyn Sys, target: Pid, kinds: &[Kind]) -> Result<Self, Error> {
        let base = PathBuf::from(format!("/proc/{target}"));
        let mut fds = Vec::new();
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let fd = sys.open(&base.join("ns").join(kind.file()), OFlag::O_RDONLY)?;
            fds.push((kind, fd));
        }
        let root_path = base.join("root");
        let root = if fds.iter().any(|(k, _)| *k == Kind::Mnt) {
            Some(sys.open(&root_path, OFlag::O_PATH | OFlag::O_DIRECTORY)?)
        } else {
            None
        };
        Ok(Namespaces {
            fds,
            root,
            root_path,
        })
    }

    /// Joins the PID namespace, if it is among them. setns(CLONE_NEWPID) moves only the
    /// children created afterwards (see setns(2)), so the parent calls this before cloning.
    pub fn enter_pid(&self, sys: &dyn Sys) -> Result<(), Error> {
        for (kind, fd) in &self.fds {
            if *kind == Kind::Pid {
                sys.setns(fd.as_fd(), "pid", kind.flag())?;
            }
        }
        Ok(())
    }

    /// Joins every other namespace, in [`Kind::ALL`]'s order, then moves into the target's
    /// root. Called in a freshly cloned child, which is single-threaded by construction, as
    /// setns(2) requires for user and mount namespaces.
    pub fn enter_rest(&self, sys: &dyn Sys) -> Result<(), ChildError> {
        // exercise(ch01.join): setns into every held namespace but PID, then into the target's root (fchdir, chroot ".", chdir "/")
        for (kind, fd) in &self.fds {
            if *kind != Kind::Pid {
                sys.setns(fd.as_fd(), kind.file(), kind.flag())?;
            }
        }
        if let Some(root) = &self.root {
            // fchdir to the held descriptor, then chroot("."): the target's root, even if
            // it pivoted (nsenter --root does the same).
            sys.fchdir(root.as_fd(), &self.root_path)?;
            sys.chroot(Path::new("."))?;
            sys.chdir(Path::new("/"))?;
        }
        Ok(())
        // end exercise
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Recorder;

    #[test]
    fn join_order_is_user_first_and_mount_last() {
        let all = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID;
        assert_eq!(
            Kind::from_flags(all),
            vec![Kind::User, Kind::Pid, Kind::Mnt]
        );
    }

    #[test]
    fn entering_namespaces_joins_pid_in_the_parent_and_the_rest_in_the_child() {
        let rec = Recorder::new();
        let ns =
            Namespaces::open(&rec, Pid::from_raw(77), &[Kind::Mnt, Kind::Pid, Kind::Uts]).unwrap();
        ns.enter_pid(&rec).unwrap();
        ns.enter_rest(&rec).unwrap();
        insta::assert_snapshot!(rec.calls().join("\n"), @r#"
        open("/proc/77/ns/uts", O_RDONLY|O_CLOEXEC)
        open("/proc/77/ns/pid", O_RDONLY|O_CLOEXEC)
        open("/proc/77/ns/mnt", O_RDONLY|O_CLOEXEC)
        open("/proc/77/root", O_RDONLY|O_CLOEXEC|O_DIRECTORY|O_PATH)
        setns(pid, CLONE_NEWPID)
        setns(uts, CLONE_NEWUTS)
        setns(mnt, CLONE_NEWNS)
        fchdir("/proc/77/root")
        chroot(".")
        chdir("/")
        "#);
    }

    #[test]
    fn compare_marks_namespaces_that_differ_from_pid_1() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, pidns) in [("1", "pid:[1]"), ("42", "pid:[2]")] {
            let ns = dir.path().join(pid).join("ns");
            fs::create_dir_all(&ns).unwrap();
            std::os::unix::fs::symlink(pidns, ns.join("pid")).unwrap();
            std::os::unix::fs::symlink("uts:[9]", ns.join("uts")).unwrap();
        }
        assert_eq!(reference(dir.path()), "1");
        let rows = compare(dir.path(), "42", "1").unwrap();
        insta::assert_snapshot!(render("42", "1", &rows), @r"
        NAMESPACE          PID 42                 HOST (PID 1)
        pid                pid:[2]                pid:[1]                <- differs
        uts                uts:[9]                uts:[9]
        1 of 2 namespaces differ from the host's
        ");
    }
}
