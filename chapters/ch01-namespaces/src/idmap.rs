//! User namespaces: who root inside is outside.
//!
//! A new user namespace starts with no mapping at all: every id reads as the overflow id
//! 65534 ("nobody") until the parent writes `/proc/PID/uid_map` and `gid_map`, one line
//! `INSIDE OUTSIDE COUNT` each (see user_namespaces(7)). The child waits for that on its
//! start pipe.
use std::path::PathBuf;

use nix::unistd::{Gid, Pid, Uid};

use crate::sys::{Sys, SysResult};

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

/// Where host root maps a container's ids: the first range Docker's `--userns-remap` takes
/// from `/etc/subuid` on most distributions. Host uid 100000 owns no host file, so root
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
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !Uid::effective().is_root() {
        sys.write_file(&proc.join("setgroups"), "deny")?;
    }
    let line = |r: IdRange| format!("{} {} {}\n", r.inside, r.outside, r.count);
    sys.write_file(&proc.join("uid_map"), &line(uids))?;
    sys.write_file(&proc.join("gid_map"), &line(gids))
}

#[cfg(test)]
mod tests {
    use super::*;

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
