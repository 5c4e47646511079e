//! User namespaces: who root inside is outside.
//!
//! A new user namespace starts with no mapping at all: every id reads as the overflow id
//! 65534 ("nobody") until the parent writes `/proc/PID/uid_map` and `gid_map`, one line
//! `INSIDE OUTSIDE COUNT` each (see user_namespaces(7)). The child waits for that on its
//! start pipe.
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

use crate::Error;
use crate::sys::{self, Sys, SysResult};

/// One line of a `uid_map` or `gid_map`: ids `inside..inside+count` are
/// `outside..outside+count` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// The host id it stands for.
    pub outside: u32,
    /// How many consecutive ids.
    pub count: u32,
}

/// Where host root maps a container's ids: where the ranges of `/etc/subuid` begin on most
/// distributions (`SUB_UID_MIN` in login.defs(5)), and where dockerd starts looking for a
/// free one for `--userns-remap`. Host uid 100000 usually owns no host file, so root
/// inside is powerless outside.
pub const REMAP_BASE: u32 = 100_000;

/// The mapping `--user` uses: as host root, ids 0-65535 inside are 100000-165535 outside;
/// as an ordinary user, root inside is you (an unprivileged user namespace may map only its
/// creator's own id).
pub fn root_mapping(host_uid: Uid, host_gid: Gid) -> (IdRange, IdRange) {
    if host_uid.is_root() {
        let r = IdRange {
            inside: 0,
            outside: REMAP_BASE,
            count: 65536,
        };
        (r, r)
    } else {
        (
            IdRange {
                inside: 0,
                outside: host_uid.as_raw(),
                count: 1,
            },
            IdRange {
                inside: 0,
                outside: host_gid.as_raw(),
                count: 1,
            },
        )
    }
}

/// Writes the child's maps. Without CAP_SETGID in the parent namespace, `setgroups` must be
/// denied first, or an unprivileged user could drop a group that was restricting them.
pub fn write_maps(sys: &dyn Sys, pid: Pid, uids: IdRange, gids: IdRange) -> SysResult<()> {
    // exercise(ch01.maps): write "INSIDE OUTSIDE COUNT" lines to /proc/PID/uid_map and gid_map (setgroups "deny" first unless root)
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !Uid::effective().is_root() {
        sys.write_file(&proc.join("setgroups"), "deny")?;
    }
    let line = |r: IdRange| format!("{} {} {}\n", r.inside, r.outside, r.count);
    sys.write_file(&proc.join("uid_map"), &line(uids))?;
    sys.write_file(&proc.join("gid_map"), &line(gids))
    // end exercise
}

/// The range `/etc/subuid` or `/etc/subgid` (subuid(5): `NAME:START:COUNT` lines) gives
/// `who`, a user name or a numeric uid; the first line for it wins, as in shadow-utils.
pub fn subordinate_range(text: &str, who: &[&str]) -> Option<IdRange> {
    // exercise(ch01.subuid): the first NAME:START:COUNT line whose NAME is in `who`, as a range from inside id 0
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (name, start, count) = (f.next()?, f.next()?, f.next()?);
        if !who.contains(&name) {
            return None;
        }
        Some(IdRange {
            inside: 0,
            outside: start.parse().ok()?,
            count: count.parse().ok()?,
        })
    })
    // end exercise
}

/// A user namespace with these maps, held by a descriptor of its `/proc/PID/ns/user`.
/// What an idmapped mount is given to say how it maps ids (mount_setattr(2),
/// `MOUNT_ATTR_IDMAP`). A namespace needs a process to be made and mapped: a child is
/// cloned into it, mapped, its namespace opened, and then it exits; the descriptor keeps
/// the namespace alive.
pub fn user_namespace(sys: &dyn Sys, uids: IdRange, gids: IdRange) -> Result<OwnedFd, Error> {
    let (hold_read, hold_write) = sys::pipe()?;
    let (mut hold_read, mut hold_write) = (Some(hold_read), Some(hold_write));
    let pid = sys.clone3(CloneFlags::CLONE_NEWUSER, &mut || {
        // The child only waits for the parent to close its end, then exits.
        drop(hold_write.take());
        let mut f = std::fs::File::from(hold_read.take().expect("the child runs once"));
        let _ = f.read(&mut [0u8; 1]);
        0
    })?;
    drop(hold_read);
    let opened = write_maps(sys, pid, uids, gids).and_then(|()| {
        sys.open(
            &Path::new("/proc").join(pid.to_string()).join("ns/user"),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        )
    });
    drop(hold_write);
    sys.waitpid(pid, false)?;
    Ok(opened?)
}

/// Whether this process is in the initial user namespace, whose map is the identity over
/// every id (`0 0 4294967295`). Outside it, root holds capabilities only over what its
/// namespace owns: overlayfs, for one, cannot use its `trusted.*` xattrs there.
pub fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

/// Whether `gid` means a group in this process's user namespace (is in its `gid_map`).
pub fn gid_is_mapped(gid: u32) -> bool {
    std::fs::read_to_string("/proc/self/gid_map")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(gid))
            })
        })
        .unwrap_or(true)
}

/// Runs `f` with this thread's file-system ids set to `uid` and `gid`, keeping its
/// capabilities: what makes a filesystem that remembers its creator's credentials (an
/// overlay, at `FSCONFIG_CMD_CREATE`) create and copy files as ids an idmapped layer can
/// store. The ids go back to 0 afterwards, whatever `f` returned (which brings the
/// file-system capabilities back by themselves).
pub fn as_fs_ids<T>(
    sys: &dyn Sys,
    uid: u32,
    gid: u32,
    f: impl FnOnce() -> SysResult<T>,
) -> SysResult<T> {
    sys.set_fs_ids(uid, gid)?;
    let held = crate::confine::held().0;
    let out = sys.capset(held, held, 0).and_then(|()| f());
    sys.set_fs_ids(0, 0)?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_uid() {
        let text = "dockremap:165536:65536\nalice:100000:65536\n1001:231072:65536\n";
        assert_eq!(
            subordinate_range(text, &["alice", "1000"]),
            Some(IdRange {
                inside: 0,
                outside: 100_000,
                count: 65536
            })
        );
        assert_eq!(
            subordinate_range(text, &["bob", "1001"]).map(|r| r.outside),
            Some(231_072)
        );
        assert_eq!(subordinate_range(text, &["carol"]), None);
        assert_eq!(subordinate_range("broken line\n", &["broken line"]), None);
    }

    #[test]
    fn the_maps_are_one_line_each_and_setgroups_is_denied_first_without_root() {
        let rec = crate::sys::Recorder::new();
        let uids = IdRange {
            inside: 0,
            outside: 100_000,
            count: 65536,
        };
        let gids = IdRange {
            inside: 0,
            outside: 1001,
            count: 1,
        };
        write_maps(&rec, Pid::from_raw(77), uids, gids).unwrap();
        let mut expected = vec![
            r#"write("/proc/77/uid_map", "0 100000 65536")"#.to_string(),
            r#"write("/proc/77/gid_map", "0 1001 1")"#.to_string(),
        ];
        if !Uid::effective().is_root() {
            expected.insert(0, r#"write("/proc/77/setgroups", "deny")"#.into());
        }
        assert_eq!(rec.calls(), expected);
        // One line each, ending in a newline: the kernel takes the whole map in one write.
        assert_eq!(
            rec.file(Path::new("/proc/77/uid_map")).as_deref(),
            Some("0 100000 65536\n")
        );
    }

    #[test]
    fn root_maps_to_the_remap_range_and_users_to_themselves() {
        let (u, g) = root_mapping(Uid::from_raw(0), Gid::from_raw(0));
        assert_eq!(
            u,
            IdRange {
                inside: 0,
                outside: 100_000,
                count: 65536
            }
        );
        assert_eq!(g, u);
        let (u, g) = root_mapping(Uid::from_raw(1000), Gid::from_raw(1001));
        assert_eq!(
            u,
            IdRange {
                inside: 0,
                outside: 1000,
                count: 1
            }
        );
        assert_eq!(
            g,
            IdRange {
                inside: 0,
                outside: 1001,
                count: 1
            }
        );
    }
}
