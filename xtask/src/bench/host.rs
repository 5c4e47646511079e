//! The machine: who we are, what is installed, what it is (for the report's header), and
//! what the kernel holds (mounts, processes, cgroups, links) to check that the benchmark
//! left nothing behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::cmd::Cmd;

/// Everything the benchmark starts needs root: namespaces, mounts, cgroups, dockerd.
pub fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "cargo xtask bench must run as root (it starts containers, dockerd and podman, \
             mounts overlays and installs the peers with apt-get): try \
             `sudo -E env PATH=\"$PATH\" cargo xtask bench`"
        );
    }
    Ok(())
}

/// The Debian packages of the peers and of the tools the setup uses. hyperfine is not
/// among them: the timing loop is ours (`cmd::alternate`).
pub const PACKAGES: &[&str] = &[
    "crun",
    "runc",
    "podman",
    "buildah",
    "skopeo",
    "docker-registry",
    "docker.io",
    "containerd",
    "umoci",
    "busybox-static",
    "tar",
    "time",
    "jq",
    "curl",
];

/// Installs whichever of [`PACKAGES`] is missing, with apt-get.
pub fn install_missing() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("==> installing {}", missing.join(" "));
    let apt = |args: &[&str]| {
        Cmd::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
    };
    apt(&["update", "-qq"]).context("apt-get update")?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install).context("apt-get install")?;
    Ok(())
}

/// Whether dpkg has `package` installed (as scripts/lib.sh's `need_packages` asks).
fn installed(package: &str) -> bool {
    Cmd::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stdout()
        .is_ok_and(|s| s.contains("install ok installed"))
}

/// How the cgroup hierarchies are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
    /// cgroup v1 hierarchies only.
    V1,
    /// v1 hierarchies plus a cgroup2 one (systemd's `/sys/fs/cgroup/unified`): crun 1.8
    /// refuses these hosts (see `nocgroup2`).
    Hybrid {
        /// Where the cgroup2 hierarchy is mounted.
        cgroup2: PathBuf,
    },
}

impl Layout {
    /// This host's, from /proc/self/mountinfo.
    pub fn of_host() -> anyhow::Result<Layout> {
        let info = fs::read_to_string("/proc/self/mountinfo").context("/proc/self/mountinfo")?;
        Ok(Layout::of(&info))
    }

    /// The layout `mountinfo` describes: its lines' mount points (field 5) and file
    /// system types (the first field after the ` - ` separator).
    pub fn of(mountinfo: &str) -> Layout {
        let mut v1 = false;
        let mut v2 = None;
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let point = before.split(' ').nth(4).map(unescape);
            match (after.split(' ').next(), point) {
                (Some("cgroup"), _) => v1 = true,
                (Some("cgroup2"), Some(p)) if v2.is_none() => v2 = Some(PathBuf::from(p)),
                _ => {}
            }
        }
        match (v1, v2) {
            (true, Some(cgroup2)) => Layout::Hybrid { cgroup2 },
            (true, None) => Layout::V1,
            // no v1 hierarchy: v2 (or no cgroups at all, which the runs will say)
            (false, _) => Layout::V2,
        }
    }

    /// As the report says it.
    pub fn name(&self) -> String {
        match self {
            Layout::V2 => "v2".into(),
            Layout::V1 => "v1".into(),
            Layout::Hybrid { cgroup2 } => format!("hybrid (v1 + cgroup2 at {})", cgroup2.display()),
        }
    }
}

/// What the report's header says about the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs available to us.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// MemTotal, in GiB.
    pub memory_gib: f64,
    /// `uname -r`.
    pub kernel: String,
    /// The cgroup layout.
    pub cgroups: String,
    /// /proc/loadavg's first three fields at the start: a busy machine times slower.
    pub load: String,
}

impl Machine {
    /// This one.
    pub fn describe(layout: &Layout) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            memory_gib: mem_kib / 1024.0 / 1024.0,
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            cgroups: layout.name(),
            load: fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// One line.
    pub fn line(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB, kernel {}, cgroups {}, load average {} at the start",
            self.cpus, self.model, self.memory_gib, self.kernel, self.cgroups, self.load
        )
    }
}

/// A free TCP port on 127.0.0.1 (the kernel's pick for a socket bound to port 0).
pub fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(socket.local_addr()?.port())
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    points
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4);
        if b[i] == b'\\'
            && let Some(o) = octal.filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            out.push(o.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Processes (pid, command line) whose command line contains `needle`, but us.
pub fn processes_with(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid != me && cmdline.contains(needle) {
            found.push((pid, cmdline.trim_end().to_string()));
        }
    }
    found
}

/// A process's command line, if it still runs.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// `/proc/PID/status`'s `field` (such as `VmRSS` or `PPid`), its first word as a number.
pub fn status_field(pid: i32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What the kernel holds that a container tool may leave behind outside our work dir:
/// cgroups under the three tools' parents, network links, nftables tables. Taken before
/// and after: what appeared in between and stayed is reported. (The machine is shared,
/// so it may be someone else's: the report says so.)
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Directories below `/sys/fs/cgroup/*/{mini-docker,docker,libpod_parent}`, those
    /// parents themselves, and `/sys/fs/cgroup/*/mdk-bench*` (crun names a container's
    /// cgroup after its id, at the top of each hierarchy, and ours start so).
    pub cgroups: BTreeSet<PathBuf>,
    /// Network links (`/sys/class/net`).
    pub links: BTreeSet<String>,
    /// `nft list tables` lines.
    pub tables: BTreeSet<String>,
}

/// The cgroup parents of mini-docker, dockerd (cgroupfs driver) and podman (cgroupfs).
pub const CGROUP_PARENTS: &[&str] = &["mini-docker", "docker", "libpod_parent"];

impl Snapshot {
    /// Now.
    pub fn take() -> Snapshot {
        let mut cgroups = BTreeSet::new();
        for hierarchy in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for top in fs::read_dir(hierarchy.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if top.file_name().to_string_lossy().starts_with("mdk-bench") {
                    cgroups.insert(top.path());
                }
            }
            for parent in CGROUP_PARENTS {
                let p = hierarchy.path().join(parent);
                if p.is_dir() {
                    for child in fs::read_dir(&p).into_iter().flatten().flatten() {
                        if child.file_type().is_ok_and(|t| t.is_dir()) {
                            cgroups.insert(child.path());
                        }
                    }
                    cgroups.insert(p);
                }
            }
        }
        let links = fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let tables = Cmd::new("nft")
            .args(["list", "tables"])
            .quietly()
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Snapshot {
            cgroups,
            links,
            tables,
        }
    }

    /// What is in `self` (later) and was not in `before`.
    pub fn new_since(&self, before: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.cgroups.difference(&before.cgroups) {
            out.push(format!("cgroup {}", c.display()));
        }
        for l in self.links.difference(&before.links) {
            out.push(format!("network link {l}"));
        }
        for t in self.tables.difference(&before.tables) {
            out.push(format!("nftables {t}"));
        }
        out
    }
}

/// Removes the cgroup parents that were not there in `before` and are empty now (the
/// tools create them with their first container and leave them; an empty cgroup directory
/// can be removed with rmdir, a busy one cannot, so this cannot disturb anyone).
pub fn remove_empty_parents(before: &Snapshot) {
    let now = Snapshot::take();
    for p in now.cgroups.difference(&before.cgroups) {
        let is_parent = p
            .file_name()
            .is_some_and(|n| CGROUP_PARENTS.iter().any(|c| n == *c));
        if is_parent {
            let _ = fs::remove_dir(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn the_cgroup_layout_is_read_from_mountinfo() {
        assert_eq!(
            Layout::of(HYBRID),
            Layout::Hybrid {
                cgroup2: "/sys/fs/cgroup/unified".into()
            }
        );
        let v2 = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(Layout::of(v2), Layout::V2);
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(Layout::of(v1), Layout::V1);
    }

    #[test]
    fn optional_mountinfo_fields_do_not_confuse_the_layout() {
        // `shared:N master:M` come before the separator.
        let line = "41 31 0:38 / /sys/fs/cgroup/unified rw shared:9 master:2 - cgroup2 cgroup2 rw\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw shared:10 - cgroup cgroup rw,cpu\n";
        assert!(matches!(Layout::of(line), Layout::Hybrid { .. }));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/tmp/tab\011x"), "/tmp/tab\tx");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/odd\04"), r"/odd\04");
    }
}
