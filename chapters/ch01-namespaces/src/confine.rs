//! What a container's process may do once it runs: its capabilities, `no_new_privs` and
//! its seccomp filter, applied in the child just before its command replaces it.
//!
//! The order is runc's (libcontainer's `finalizeNamespace` and `Init`), and each step has
//! its reason:
//!
//! ```text
//! close_range(3, ~0, CLOEXEC)     nothing of ours survives the exec but stdio
//! PR_CAPBSET_DROP × N             the bounding set: gone for good, setuid binaries included
//! seccomp (without no_new_privs)  while we still hold CAP_SYS_ADMIN, which it then needs
//! PR_SET_KEEPCAPS, set_ids        become the user, keeping the permitted set...
//! capset                          ...then keep exactly the container's set (none for a
//!                                 non-root user, as execve would leave it)
//! PR_CAP_AMBIENT_CLEAR_ALL
//! PR_SET_NO_NEW_PRIVS, seccomp    with --security-opt no-new-privileges: the filter last
//! execve
//! ```
use seccompiler::BpfProgram;

use crate::caps::CapSet;
use crate::process::{self, ChildError};
use crate::sys::{Sys, SysError};

/// The defences of one container, resolved (capabilities decided, filter compiled).
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The capabilities it keeps: its bounding set, and its effective and permitted sets
    /// when it runs as uid 0.
    pub caps: CapSet,
    /// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u8,
    /// `--security-opt no-new-privileges`.
    pub no_new_privs: bool,
    /// The seccomp programs, in installation order; empty is unconfined.
    pub seccomp: Vec<BpfProgram>,
}

/// This kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`, 40 on 5.9+).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The capabilities this process holds (`CapPrm:` in `/proc/self/status`): all a child can
/// be given. Root on a host may hold fewer than the kernel knows (a machine that is itself
/// a container, say); capset(2) refuses to grant any beyond them.
pub fn held() -> CapSet {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .map_or(CapSet(0), CapSet)
}

/// The user a command runs as.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups (`None` leaves them, for an unprivileged user namespace).
    pub groups: Option<&'a [u32]>,
}

/// Becomes `ids` with `c`'s capabilities and filter, and execs `argv` (see the module's
/// table for the order). Returns only on failure.
pub fn exec(
    sys: &dyn Sys,
    c: &Confinement,
    ids: Ids<'_>,
    argv: &[String],
    env: &[String],
) -> ChildError {
    if let Err(e) = drop_privileges(sys, c, ids) {
        return e.into();
    }
    process::exec_with(sys, argv, env, &mut || {
        if c.no_new_privs {
            sys.set_no_new_privs()?;
            install(sys, c)?;
        }
        Ok(())
    })
}

/// Everything up to the last step before execve.
fn drop_privileges(sys: &dyn Sys, c: &Confinement, ids: Ids<'_>) -> Result<(), SysError> {
    sys.cloexec_from(3)?;
    for cap in 0..=c.last_cap {
        if !c.caps.has(cap) {
            sys.drop_bounding(cap)?;
        }
    }
    if !c.no_new_privs {
        install(sys, c)?;
    }
    sys.set_keep_caps(true)?;
    sys.set_ids(ids.uid, ids.gid, ids.groups)?;
    sys.set_keep_caps(false)?;
    let keep = if ids.uid == 0 { c.caps.0 } else { 0 };
    // Inheritable stays empty, as docker 20.10.14+ leaves it (CVE-2022-24769).
    sys.capset(keep, keep, 0)?;
    sys.clear_ambient()
}

fn install(sys: &dyn Sys, c: &Confinement) -> Result<(), SysError> {
    for p in &c.seccomp {
        sys.seccomp_filter(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Recorder;

    fn confinement(no_new_privs: bool) -> Confinement {
        Confinement {
            caps: CapSet::docker_default(),
            last_cap: 40,
            no_new_privs,
            seccomp: vec![vec![seccompiler::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            }]],
        }
    }

    fn calls(c: &Confinement, uid: u32) -> Vec<String> {
        let sys = Recorder::new();
        let ids = Ids {
            uid,
            gid: uid,
            groups: Some(&[]),
        };
        let e = exec(&sys, c, ids, &["/bin/true".into()], &[]);
        assert!(e.message.contains("/bin/true"), "{e:?}");
        sys.calls()
            .into_iter()
            .filter(|c| !c.starts_with("prctl(PR_CAPBSET_DROP"))
            .collect()
    }

    #[test]
    fn the_filter_goes_in_while_we_hold_cap_sys_admin_or_last_under_no_new_privs() {
        let sys = Recorder::new();
        let _ = exec(
            &sys,
            &confinement(false),
            Ids {
                uid: 0,
                gid: 0,
                groups: None,
            },
            &["/bin/true".into()],
            &[],
        );
        let dropped: Vec<String> = sys
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("prctl(PR_CAPBSET_DROP"))
            .collect();
        // 41 capabilities, 14 kept.
        assert_eq!(dropped.len(), 27);
        assert!(dropped.contains(&"prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN)".to_string()));
        insta::assert_snapshot!(calls(&confinement(false), 0).join("\n"), @r#"
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)
        seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=1})
        prctl(PR_SET_KEEPCAPS, 1)
        setresgid(0, 0, 0)
        setgroups([])
        setresuid(0, 0, 0)
        prctl(PR_SET_KEEPCAPS, 0)
        capset({eff=0xa80425fb, prm=0xa80425fb, inh=0x0})
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        execve("/bin/true", ["/bin/true"])
        "#);
        insta::assert_snapshot!(calls(&confinement(true), 1000).join("\n"), @r#"
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)
        prctl(PR_SET_KEEPCAPS, 1)
        setresgid(1000, 1000, 1000)
        setgroups([])
        setresuid(1000, 1000, 1000)
        prctl(PR_SET_KEEPCAPS, 0)
        capset({eff=0x0, prm=0x0, inh=0x0})
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=1})
        execve("/bin/true", ["/bin/true"])
        "#);
    }
}
