//! A container's defences, decided from its HostConfig as docker decides them: which
//! capabilities it keeps (`--cap-add`, `--cap-drop`, `--privileged`), its seccomp profile
//! and `no-new-privileges` (`--security-opt`), and which kernel files it may not see or
//! change. Policy only: the mechanisms are chapter 1's (`confine`, `caps`, `seccomp`) and
//! chapter 3's (`KernelFiles`).
use ch01_namespaces::caps;
use ch01_namespaces::confine::{self, Confinement};
use ch01_namespaces::seccomp;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use ch02_cgroups::DeviceRule;
use ch03_rootfs_pivot_root::rootfs::{DeviceNode, KernelFiles};
use nix::sys::stat::SFlag;

use crate::Error;
use crate::record::{DeviceMapping, HostConfig, IdMaps};

/// `--security-opt`, understood.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOpts {
    /// `no-new-privileges`.
    pub no_new_privs: bool,
    /// The seccomp profile.
    pub seccomp: Seccomp,
}

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`: none.
    Unconfined,
    /// A profile of the user's, as JSON (`seccomp=FILE` is read at `create`, as docker's
    /// client does, so the container keeps it whatever happens to the file).
    Profile(String),
}

/// Parses docker's `--security-opt` values: `no-new-privileges[:true|false]` (or `=`),
/// `seccomp=unconfined|PROFILE`; `apparmor=` and `label=` are accepted and have no effect
/// here (neither AppArmor nor SELinux is set up by mini-docker, as on a host without them).
pub fn parse(opts: &[String]) -> Result<SecurityOpts, Error> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        let invalid = || Error::Usage(format!("invalid --security-opt: {opt:?}"));
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privs = true,
            ("no-new-privileges", Some("false")) => out.no_new_privs = false,
            ("seccomp", Some("unconfined")) => out.seccomp = Seccomp::Unconfined,
            ("seccomp", Some(json)) if json.trim_start().starts_with('{') => {
                seccomp::parse(json).map_err(Error::Usage)?;
                out.seccomp = Seccomp::Profile(json.to_string());
            }
            ("apparmor" | "label", Some(_)) => {}
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

/// `create`'s side of `--security-opt`: a `seccomp=FILE` becomes `seccomp=<its JSON>`, and
/// everything is checked before the container exists.
pub fn resolve_files(opts: &[String]) -> Result<Vec<String>, Error> {
    let out = opts
        .iter()
        .map(|opt| match opt.strip_prefix("seccomp=") {
            Some(path) if path != "unconfined" && !path.trim_start().starts_with('{') => {
                let json = std::fs::read_to_string(path).map_err(|e| {
                    Error::Usage(format!("opening seccomp profile ({path}) failed: {e}"))
                })?;
                Ok(format!("seccomp={json}"))
            }
            _ => Ok(opt.clone()),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    parse(&out)?;
    Ok(out)
}

/// The capabilities `host` keeps. "All" (`--privileged`, `--cap-add ALL`) is all that we
/// hold ourselves; a capability named on its own that we lack fails at the start, as it
/// does with docker.
pub fn capabilities(host: &HostConfig) -> Result<caps::CapSet, Error> {
    let set = caps::tweak(
        &host.cap_add,
        &host.cap_drop,
        host.privileged,
        confine::last_cap(),
    )
    .map_err(Error::Usage)?;
    let all = host.privileged || host.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    Ok(if all {
        caps::CapSet(set.0 & confine::held().0)
    } else {
        set
    })
}

/// What the container's processes may do: capabilities, no_new_privs and the compiled
/// seccomp filter (none with `--privileged`, as docker's).
pub fn confinement(host: &HostConfig) -> Result<Confinement, Error> {
    let opts = parse(&host.security_opt)?;
    let caps = capabilities(host)?;
    let profile = match (&opts.seccomp, host.privileged) {
        (_, true) | (Seccomp::Unconfined, _) => None,
        (Seccomp::Default, false) => Some(seccomp::DOCKER_DEFAULT),
        (Seccomp::Profile(json), false) => Some(json.as_str()),
    };
    let programs = match profile {
        None => Vec::new(),
        Some(json) => {
            let profile = seccomp::parse(json).map_err(Error::Usage)?;
            let target = seccomp::Target::native(caps).map_err(Error::Usage)?;
            seccomp::compile(&profile, &target).map_err(Error::Usage)?
        }
    };
    Ok(Confinement {
        caps,
        last_cap: confine::last_cap(),
        no_new_privs: opts.no_new_privs,
        seccomp: programs,
    })
}

/// The kernel files it sees, and the device nodes in its `/dev` besides the default ones.
pub fn kernel_files(host: &HostConfig) -> Result<KernelFiles, Error> {
    let mut files = if host.privileged {
        let mut f = KernelFiles::privileged();
        f.devices = host_devices(Path::new("/dev"));
        f
    } else {
        KernelFiles::docker_default()
    };
    for d in &host.devices {
        files.devices.push(node(d)?);
    }
    Ok(files)
}

/// The devices cgroup's list: docker's defaults and each `--device`; `None` (everything)
/// with `--privileged`.
pub fn device_rules(host: &HostConfig) -> Result<Option<Vec<DeviceRule>>, Error> {
    if host.privileged {
        return Ok(None);
    }
    let mut rules = DeviceRule::docker_default();
    for d in &host.devices {
        let n = node(d)?;
        rules.push(DeviceRule {
            kind: if n.kind == SFlag::S_IFBLK { 'b' } else { 'c' },
            major: Some(n.major as u32),
            minor: Some(n.minor as u32),
            access: d.cgroup_permissions.clone(),
        });
    }
    Ok(Some(rules))
}

/// Parses `--device HOST[:CONTAINER[:PERMISSIONS]]` (docker's syntax: the container path
/// defaults to the host's, the permissions to `rwm`) and checks that HOST is a device.
pub fn parse_device(spec: &str) -> Result<DeviceMapping, Error> {
    let bad = |why: &str| Error::Usage(format!("invalid --device {spec:?}: {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(bad("expected HOST[:CONTAINER[:PERMISSIONS]]")),
    };
    if !perms_ok(perms) {
        return Err(bad("permissions are some of r, w and m"));
    }
    if !inside.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mapping = DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: inside.to_string(),
        cgroup_permissions: perms.to_string(),
    };
    node(&mapping)?;
    Ok(mapping)
}

/// The node to make for `d`, from the host's node as it is now (its numbers can change
/// between `create` and `start`: a disk re-plugged).
fn node(d: &DeviceMapping) -> Result<DeviceNode, Error> {
    let path = Path::new(&d.path_on_host);
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::Usage(format!(
            "error gathering device information while adding device {:?}: {e}",
            d.path_on_host
        ))
    })?;
    let kind = if meta.file_type().is_char_device() {
        SFlag::S_IFCHR
    } else if meta.file_type().is_block_device() {
        SFlag::S_IFBLK
    } else {
        return Err(Error::Usage(format!(
            "{:?} is not a device node",
            d.path_on_host
        )));
    };
    let rdev = meta.rdev();
    Ok(DeviceNode {
        path: PathBuf::from(&d.path_in_container),
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        mode: meta.mode() & 0o7777,
        host_path: PathBuf::from(&d.path_on_host),
    })
}

/// Every device node under the host's `dir`, as docker gives a privileged container, less
/// the directories that are the container's own (`pts`, `shm`, `mqueue`) and the console
/// (a container's is its own terminal).
fn host_devices(dir: &Path) -> Vec<DeviceNode> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if ["pts", "shm", "mqueue", "fd", "console"].contains(&name.to_str().unwrap_or("")) {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(host_devices(&path));
        } else if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
            let mapping = DeviceMapping {
                path_on_host: path.display().to_string(),
                path_in_container: path.display().to_string(),
                cgroup_permissions: "rwm".into(),
            };
            if let Ok(n) = node(&mapping) {
                out.push(n);
            }
        }
    }
    out
}

/// The user `--userns-remap=default` means, as dockerd creates it.
const DEFAULT_REMAP_USER: &str = "dockremap";

/// What `--userns-remap` maps a container's ids to: `default` (the `dockremap` entries of
/// `/etc/subuid` and `/etc/subgid`, or, where there are none, the 65536 ids dockerd would
/// have added there: see [`next_free_range`]), or `USER[:GROUP]`, by name or number, whose
/// entries must exist. Docker sets it for the whole daemon; a daemonless tool takes it per
/// command (and `MINI_DOCKER_USERNS_REMAP`), and a container keeps the maps it was created
/// with.
pub fn userns_remap(spec: &str) -> Result<IdMaps, Error> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    remap_from(
        spec,
        &read("/etc/passwd"),
        &read("/etc/group"),
        &read("/etc/subuid"),
        &read("/etc/subgid"),
    )
}

/// How many ids dockerd gives `dockremap` (moby `pkg/idtools`, `defaultRangeLen`).
const REMAP_LEN: u32 = 65536;

/// Where dockerd starts the range it adds for `dockremap` (moby `pkg/idtools`,
/// `findNextRangeStart`): at 100000, moved past each range of the file, in order of start,
/// that the 65536 ids would touch (ends included, as moby's `wouldOverlap` counts them).
/// On a machine whose first user already has 100000-165535 (Debian's and Ubuntu's
/// `adduser` give it), that is 165536. One difference: a range lying wholly inside ours
/// also counts here, which moby's check misses, so the result shares no id with any line.
/// `#` lines are comments, as moby reads the file; `None` when no room is left below 2³².
pub fn next_free_range(text: &str) -> Option<u32> {
    use ch01_namespaces::idmap::REMAP_BASE;
    let mut taken: Vec<(u64, u64)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut f = line.split(':');
            let (_, start, count) = (f.next()?, f.next()?, f.next()?);
            let (start, count): (u32, u32) = (start.parse().ok()?, count.parse().ok()?);
            Some((u64::from(start), u64::from(count)))
        })
        .collect();
    taken.sort_unstable();
    let mut start = u64::from(REMAP_BASE);
    for (from, count) in taken {
        let end = from + count;
        if from <= start + u64::from(REMAP_LEN) && start <= end {
            start = end;
        }
    }
    // The last id must be below 2³² - 1, which is no id at all ((uid_t) -1).
    let last = start + u64::from(REMAP_LEN) - 1;
    (last < u64::from(u32::MAX)).then_some(start as u32)
}

/// [`userns_remap`] on the files' text.
pub fn remap_from(
    spec: &str,
    passwd: &str,
    group: &str,
    subuid: &str,
    subgid: &str,
) -> Result<IdMaps, Error> {
    use ch01_namespaces::idmap::subordinate_range;
    // A name and its number: subuid(5) lines may use either.
    let lookup = |db: &str, who: &str| -> Vec<String> {
        let mut names = vec![who.to_string()];
        for line in db.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && (f[0] == who || f[2] == who) {
                names = vec![f[0].to_string(), f[2].to_string()];
                break;
            }
        }
        names
    };
    let free = |text: &str, file: &str| {
        next_free_range(text).ok_or_else(|| {
            let who = DEFAULT_REMAP_USER;
            Error::Usage(format!(
                "--userns-remap default: no {REMAP_LEN} ids are left free in {file} for {who:?}"
            ))
        })
    };
    let (user, group_name) = match spec {
        "default" => (DEFAULT_REMAP_USER, DEFAULT_REMAP_USER),
        _ => match spec.split_once(':') {
            Some((u, g)) => (u, g),
            None => (spec, spec),
        },
    };
    if user.is_empty() || group_name.is_empty() {
        return Err(Error::Usage(format!(
            "invalid --userns-remap {spec:?}: expected default or USER[:GROUP]"
        )));
    }
    let users = lookup(passwd, user);
    let groups = lookup(group, group_name);
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let uids = subordinate_range(subuid, &user_refs);
    let gids = subordinate_range(subgid, &group_refs);
    let pair = |r: ch01_namespaces::idmap::IdRange| (r.outside, r.count);
    match (uids, gids) {
        (Some(u), Some(g)) => Ok(IdMaps {
            uids: pair(u),
            gids: pair(g),
        }),
        (None, None) if spec == "default" => Ok(IdMaps {
            uids: (free(subuid, "/etc/subuid")?, REMAP_LEN),
            gids: (free(subgid, "/etc/subgid")?, REMAP_LEN),
        }),
        (None, _) => Err(Error::Usage(format!(
            "--userns-remap {spec}: no subordinate uid range for {user:?} in /etc/subuid"
        ))),
        (_, None) => Err(Error::Usage(format!(
            "--userns-remap {spec}: no subordinate gid range for {group_name:?} in /etc/subgid"
        ))),
    }
}

/// What docker refuses with user namespaces on (moby's verifyPlatformContainerSettings):
/// sharing the host's namespaces or privileges would hand root inside the host's root.
pub fn check_userns(host: &HostConfig) -> Result<(), Error> {
    if host.userns_mode == "host" {
        return Ok(());
    }
    if host.privileged {
        return Err(Error::Usage(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into(),
        ));
    }
    if host.network_mode == "host" {
        return Err(Error::Usage(
            "cannot share the host's network namespace when user namespaces are enabled".into(),
        ));
    }
    if host.pid_mode == "host" {
        return Err(Error::Usage(
            "cannot share the host PID namespace when user namespaces are enabled".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn userns_remap_reads_subordinate_ranges_like_dockerd() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        let group = "root:x:0:\nalice:x:1000:\nstaff:x:50:\n";
        let subuid = "alice:200000:65536\n";
        let subgid = "1000:300000:65536\n50:400000:1000\n";
        let m = remap_from("alice", passwd, group, subuid, subgid).unwrap();
        assert_eq!((m.uids, m.gids), ((200_000, 65536), (300_000, 65536)));
        let m = remap_from("1000:staff", passwd, group, subuid, subgid).unwrap();
        assert_eq!(m.gids, (400_000, 1000));
        // `default` without dockremap entries: the range dockerd would have added, from
        // 100000 on, past the ranges already given that it would touch (alice's at 200000
        // and the gids at 300000 do not).
        let m = remap_from("default", passwd, group, "", "").unwrap();
        assert_eq!((m.uids, m.gids), ((100_000, 65536), (100_000, 65536)));
        let m = remap_from("default", passwd, group, subuid, subgid).unwrap();
        assert_eq!((m.uids, m.gids), ((100_000, 65536), (100_000, 65536)));
        let first_user = "alice:100000:65536\n";
        let m = remap_from("default", passwd, group, first_user, first_user).unwrap();
        assert_eq!((m.uids, m.gids), ((165_536, 65536), (165_536, 65536)));
        // A range touching ours at its end counts (moby's ends-included check); so do a
        // chain of them, in any order, and one lying inside ours. Comments do not.
        assert_eq!(next_free_range("bob:165536:65536\n"), Some(231_072));
        assert_eq!(
            next_free_range("b:165536:65536\n# c:100000:65536\na:100000:65536\n"),
            Some(231_072)
        );
        assert_eq!(next_free_range("x:110000:10\n"), Some(110_010));
        assert_eq!(next_free_range("x:300000:10\n"), Some(100_000));
        assert_eq!(next_free_range("x:100000:4294867296\n"), None);
        let e = remap_from("default", passwd, group, "x:100000:4294867296", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--userns-remap default: no 65536 ids are left free in /etc/subuid for \"dockremap\""
        );
        let e = remap_from("bob", passwd, group, subuid, subgid).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--userns-remap bob: no subordinate uid range for \"bob\" in /etc/subuid"
        );
    }
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn security_opts_are_dockers() {
        assert!(parse(&v(&["no-new-privileges"])).unwrap().no_new_privs);
        assert!(parse(&v(&["no-new-privileges:true"])).unwrap().no_new_privs);
        assert!(
            !parse(&v(&["no-new-privileges=false"]))
                .unwrap()
                .no_new_privs
        );
        assert_eq!(
            parse(&v(&["seccomp=unconfined"])).unwrap().seccomp,
            Seccomp::Unconfined
        );
        assert_eq!(
            parse(&v(&["seccomp"])).unwrap_err().to_string(),
            "invalid --security-opt: \"seccomp\""
        );
        assert!(
            resolve_files(&v(&["seccomp=/nonexistent.json"]))
                .unwrap_err()
                .to_string()
                .starts_with("opening seccomp profile (/nonexistent.json) failed: ")
        );
    }

    #[test]
    fn privileged_means_every_capability_and_no_filter() {
        let host = HostConfig {
            privileged: true,
            ..Default::default()
        };
        let c = confinement(&host).unwrap();
        assert!(c.seccomp.is_empty());
        let all = caps::CapSet::all(confine::last_cap()).0 & confine::held().0;
        assert_eq!(c.caps, caps::CapSet(all));
        let default = confinement(&HostConfig::default()).unwrap();
        assert_eq!(default.caps, caps::CapSet::docker_default());
        assert!(!default.seccomp.is_empty());
    }
}
