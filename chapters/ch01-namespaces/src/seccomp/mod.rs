//! Seccomp: a filter on the system calls themselves (seccomp(2), `SECCOMP_SET_MODE_FILTER`).
//!
//! Capabilities decide what a call may do; seccomp decides which calls may be made at all.
//! The kernel runs a small classic-BPF program on every system call's number and arguments
//! (`struct seccomp_data`) and the program answers allow, fail with an errno, or kill. The
//! whole kernel is the container's attack surface; docker's default profile (an allow-list
//! of about 350 calls) takes away the rarely needed, often exploited ones: `keyctl`,
//! `add_key`, `bpf`, `perf_event_open`, `kexec_load`, `open_by_handle_at`, `reboot`,
//! `mount`, `unshare`, `setns`, namespace-creating `clone` (unless the matching capability
//! was added), personality changes beyond the safe ones.
//!
//! This module reads a profile in docker's JSON format (the default one is docker 20.10's,
//! embedded), resolves it for one container (its capabilities, the machine's architecture
//! and kernel) as docker does, and compiles it to BPF with the `seccompiler` crate (pure
//! Rust, from rust-vmm; libseccomp would need a system library). Installing the programs is
//! [`crate::confine`]'s job. [`bpf::run`] interprets a program in user space, so tests can
//! ask a filter what it answers for a call without installing it.
use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Deserialize;

use crate::caps::{self, CapSet};

pub mod bpf;
mod table;

/// Docker 20.10's default profile (moby `profiles/seccomp/default.json`, Apache-2.0), as
/// Debian's `golang-github-docker-docker-dev` 20.10.24 ships it.
pub const DOCKER_DEFAULT: &str = include_str!("docker-default.json");

/// A profile in docker's format (`docker run --security-opt seccomp=FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What a call no rule matches gets (`SCMP_ACT_ERRNO`: EPERM by default).
    pub default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default action.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// One rule: calls by name, what they get, optionally only with some arguments, and only
/// for containers with (or without) some capabilities, on some architectures and kernels.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The calls.
    #[serde(default)]
    pub names: Vec<String>,
    /// One call (the profile format before docker 1.13).
    #[serde(default)]
    pub name: Option<String>,
    /// `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`, ...
    pub action: String,
    /// The errno of `SCMP_ACT_ERRNO` (EPERM when absent).
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    /// The rule applies only when all of these hold.
    #[serde(default)]
    pub includes: When,
    /// The rule does not apply when any of these holds.
    #[serde(default)]
    pub excludes: When,
}

/// Conditions on the container and the machine (`includes`, `excludes`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct When {
    /// Capabilities in the container's bounding set.
    #[serde(default)]
    pub caps: Vec<String>,
    /// Architectures, in Go's names (`amd64`, `arm64`).
    #[serde(default)]
    pub arches: Vec<String>,
    /// A kernel version (`4.8`).
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// A condition on argument `index`: `op` compares it with `value` (for
/// `SCMP_CMP_MASKED_EQ`, `arg & value == value_two`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Which argument, from 0.
    pub index: u8,
    /// The value (the mask, for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The expected masked value.
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `SCMP_CMP_NE`, `SCMP_CMP_LT`, ...
    pub op: String,
}

/// What a profile is resolved against: the container and the machine.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The container's bounding set.
    pub caps: CapSet,
    /// The machine's architecture.
    pub arch: Arch,
    /// The running kernel's version (major, minor).
    pub kernel: (u32, u32),
}

/// The architectures filters are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (`amd64`).
    X86_64,
    /// 64-bit ARM (`arm64`).
    Aarch64,
}

impl Arch {
    /// This machine's, if filters can be built for it.
    pub fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    fn go_names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["amd64"],
            Arch::Aarch64 => &["arm64"],
        }
    }

    fn table(self) -> &'static [(&'static str, i64)] {
        match self {
            Arch::X86_64 => table::X86_64,
            Arch::Aarch64 => table::AARCH64,
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        }
    }

    /// The number of system call `name` on this architecture.
    pub fn syscall(self, name: &str) -> Option<i64> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }
}

impl Target {
    /// This machine and a container with `caps`.
    pub fn native(caps: CapSet) -> Result<Target, String> {
        let arch = Arch::native().ok_or_else(|| {
            format!(
                "seccomp filters are built for x86_64 and aarch64 only, not {}",
                std::env::consts::ARCH
            )
        })?;
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Ok(Target {
            caps,
            arch,
            kernel: version(&release).unwrap_or((0, 0)),
        })
    }
}

/// `6.1.0-18-amd64` → (6, 1).
fn version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Parses a profile, saying what is wrong with it.
pub fn parse(json: &str) -> Result<Profile, String> {
    serde_json::from_str(json).map_err(|e| format!("invalid seccomp profile: {e}"))
}

fn action(name: &str, errno: Option<u32>) -> Result<SeccompAction, String> {
    // EPERM, as docker and libseccomp's SCMP_ACT_ERRNO default to.
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno),
        other => return Err(format!("invalid seccomp profile: unknown action {other:?}")),
    })
}

fn condition(a: &Arg) -> Result<SeccompCondition, String> {
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, a.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, a.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, a.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, a.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, a.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, a.value),
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(a.value), a.value_two),
        other => {
            return Err(format!(
                "invalid seccomp profile: unknown operator {other:?}"
            ));
        }
    };
    // Whole 64-bit arguments, as libseccomp compares them.
    SeccompCondition::new(a.index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| format!("invalid seccomp profile: argument {}: {e}", a.index))
}

fn applies(rule: &Rule, t: &Target) -> bool {
    let has = |name: &String| caps::number(name).is_some_and(|n| t.caps.has(n));
    let arch = |list: &[String]| list.iter().any(|a| t.arch.go_names().contains(&a.as_str()));
    let at_least = |v: &Option<String>| v.as_deref().and_then(version).map(|v| t.kernel >= v);
    // Docker's order (profiles/seccomp/seccomp_linux.go): any exclusion skips the rule;
    // then every inclusion must hold.
    if arch(&rule.excludes.arches)
        || rule.excludes.caps.iter().any(has)
        || at_least(&rule.excludes.min_kernel) == Some(true)
    {
        return false;
    }
    (rule.includes.arches.is_empty() || arch(&rule.includes.arches))
        && rule.includes.caps.iter().all(has)
        && at_least(&rule.includes.min_kernel) != Some(false)
}

/// The BPF programs for `profile` and one container, in the order they are installed.
///
/// One seccompiler filter has one action for a match and one for the rest, so a profile
/// becomes a stack: first the filter of the allowed calls (everything else gets the
/// default action), then one filter per other action (everything else allowed). The
/// kernel runs every filter of the stack and keeps the most severe answer; between two
/// errnos, the newest filter's (seccomp(2)), so `clone3`'s ENOSYS wins over the allow-list
/// filter's EPERM for it. Unknown call names are skipped, as docker does for calls a
/// platform lacks.
pub fn compile(profile: &Profile, t: &Target) -> Result<Vec<BpfProgram>, String> {
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    // action → (call number → rules, one of which must match: ORed; each rule's conditions
    // are ANDed). An empty rule list matches the call whatever its arguments.
    let mut groups: Vec<(SeccompAction, BTreeMap<i64, Vec<SeccompRule>>)> = Vec::new();
    for rule in profile.syscalls.iter().filter(|r| applies(r, t)) {
        let act = action(&rule.action, rule.errno_ret)?;
        if act == default {
            continue;
        }
        let conditions = rule
            .args
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        let i = match groups.iter().position(|(a, _)| *a == act) {
            Some(i) => i,
            None => {
                groups.push((act.clone(), BTreeMap::new()));
                groups.len() - 1
            }
        };
        for name in rule.names.iter().chain(rule.name.iter()) {
            let Some(nr) = t.arch.syscall(name) else {
                continue;
            };
            // seccompiler's "whatever the arguments" is an empty list of rules for the call;
            // once a call is unconditional, its conditional rules are moot.
            match groups[i].1.get_mut(&nr) {
                Some(rules) if rules.is_empty() => {}
                _ if conditions.is_empty() => {
                    groups[i].1.insert(nr, Vec::new());
                }
                existing => {
                    let rule = SeccompRule::new(conditions.clone()).map_err(|e| e.to_string())?;
                    match existing {
                        Some(rules) => rules.push(rule),
                        None => {
                            groups[i].1.insert(nr, vec![rule]);
                        }
                    }
                }
            }
        }
    }
    // The allow-list first, so the others are newer.
    groups.sort_by_key(|(a, _)| *a != SeccompAction::Allow);
    if default != SeccompAction::Allow
        && groups
            .first()
            .is_none_or(|(a, _)| *a != SeccompAction::Allow)
    {
        groups.insert(0, (SeccompAction::Allow, BTreeMap::new()));
    }
    groups
        .into_iter()
        .map(|(act, rules)| {
            let mismatch = if act == SeccompAction::Allow {
                default.clone()
            } else {
                SeccompAction::Allow
            };
            let filter = SeccompFilter::new(rules, mismatch, act, t.arch.target())
                .map_err(|e| format!("seccomp filter: {e}"))?;
            BpfProgram::try_from(filter).map_err(|e| format!("seccomp filter: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
