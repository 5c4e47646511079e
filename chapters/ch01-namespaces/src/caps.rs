//! Capabilities: root's power cut into 41 pieces (capabilities(7)).
//!
//! Root inside a container is root of the same kernel: without a user namespace, uid 0 in
//! the container is uid 0 on the host. What keeps it from loading modules, remounting
//! `/sys` or rebooting the machine is the set of capabilities it keeps. Docker keeps 14 of
//! them (the list below) and drops the rest from every set: bounding (what can ever be
//! regained, even by a setuid binary), permitted, effective and inheritable; the ambient set
//! is cleared. `--cap-add`, `--cap-drop` and `--privileged` change the list.
//!
//! This module is pure: names, numbers and docker's arithmetic on lists. Applying a set is
//! [`crate::confine`]'s job, through the `sys` seam.
use std::fmt;

/// Every capability the kernel knows, by number (linux/capability.h), without `CAP_`.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default list (moby's `oci/caps/defaults.go`): what a default container keeps.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capabilities, as the kernel stores it: bit N is capability N. Displays as
/// `/proc/PID/status` shows it (`00000000a80425fb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl CapSet {
    /// Every capability up to `last` (the kernel's `/proc/sys/kernel/cap_last_cap`).
    pub fn all(last: u8) -> CapSet {
        CapSet(if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        })
    }

    /// Docker's default set.
    pub fn docker_default() -> CapSet {
        DOCKER_DEFAULT
            .iter()
            .map(|n| number(n).expect("a known name"))
            .fold(CapSet(0), |s, n| s.with(n))
    }

    /// Whether capability `n` is in the set.
    pub fn has(self, n: u8) -> bool {
        n < 64 && self.0 & (1 << n) != 0
    }

    /// The set with `n` added.
    pub fn with(self, n: u8) -> CapSet {
        CapSet(self.0 | (1 << n))
    }

    /// The set's numbers, lowest first.
    pub fn numbers(self) -> impl Iterator<Item = u8> {
        (0..64u8).filter(move |&n| self.has(n))
    }

    /// The names, `CAP_` included, as docker and `capsh` print them.
    pub fn names(self) -> Vec<String> {
        self.numbers()
            .map(|n| match NAMES.get(n as usize) {
                Some(name) => format!("CAP_{name}"),
                None => format!("CAP_{n}"),
            })
            .collect()
    }
}

/// The number of a capability named with or without `CAP_`, in any case.
pub fn number(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|n| n as u8)
}

/// Docker's `TweakCapabilities`: `--privileged` gets every capability the kernel has;
/// `--cap-add ALL` gets all but the dropped ones; `--cap-drop ALL` keeps only the added
/// ones; otherwise the default list minus the dropped, plus the added. Names are checked
/// (`unknown capability: "CAP_FOO"`, docker's words).
pub fn tweak(
    adds: &[String],
    drops: &[String],
    privileged: bool,
    last: u8,
) -> Result<CapSet, String> {
    let all = CapSet::all(last);
    if privileged {
        return Ok(all);
    }
    let parse = |list: &[String]| -> Result<(bool, CapSet), String> {
        let mut set = CapSet(0);
        let mut every = false;
        for name in list {
            if name.eq_ignore_ascii_case("ALL") {
                every = true;
                continue;
            }
            match number(name) {
                Some(n) if n <= last => set = set.with(n),
                _ => {
                    let upper = name.to_ascii_uppercase();
                    let full = if upper.starts_with("CAP_") {
                        upper
                    } else {
                        format!("CAP_{upper}")
                    };
                    return Err(format!("unknown capability: {full:?}"));
                }
            }
        }
        Ok((every, set))
    };
    let (add_all, add) = parse(adds)?;
    let (drop_all, drop) = parse(drops)?;
    Ok(if add_all {
        CapSet(all.0 & !drop.0)
    } else if drop_all {
        add
    } else {
        CapSet((CapSet::docker_default().0 & !drop.0) | add.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dockers_default_is_what_docker_containers_show_in_proc_status() {
        assert_eq!(CapSet::docker_default().to_string(), "00000000a80425fb");
        assert_eq!(CapSet::all(40).to_string(), "000001ffffffffff");
    }

    #[test]
    fn tweak_follows_docker() {
        let def = CapSet::docker_default();
        assert_eq!(tweak(&[], &[], false, 40).unwrap(), def);
        assert_eq!(tweak(&[], &[], true, 40).unwrap(), CapSet::all(40));
        let admin = tweak(&v(&["sys_admin"]), &[], false, 40).unwrap();
        assert_eq!(admin, def.with(21));
        let no_chown = tweak(&[], &v(&["CAP_CHOWN"]), false, 40).unwrap();
        assert!(!no_chown.has(0) && no_chown.has(1));
        assert_eq!(
            tweak(&v(&["NET_ADMIN"]), &v(&["ALL"]), false, 40).unwrap(),
            CapSet(1 << 12)
        );
        assert_eq!(
            tweak(&v(&["ALL"]), &v(&["SYS_ADMIN"]), false, 40).unwrap(),
            CapSet(CapSet::all(40).0 & !(1 << 21))
        );
        assert_eq!(
            tweak(&v(&["FOO"]), &[], false, 40).unwrap_err(),
            "unknown capability: \"CAP_FOO\""
        );
        // A capability this kernel does not have is unknown here too.
        assert!(tweak(&v(&["CHECKPOINT_RESTORE"]), &[], false, 37).is_err());
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(CapSet(0b11).names(), ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
    }
}
