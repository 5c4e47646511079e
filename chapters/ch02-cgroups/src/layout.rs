//! Where each cgroup controller lives on this host.
//!
//! There are two cgroup versions, and a host may run either or both:
//!
//! * **v1 (legacy)**: one mount per controller (or per group of co-mounted controllers, such
//!   as `cpu,cpuacct`), each with its own tree: `/sys/fs/cgroup/memory/...`.
//! * **v2 (unified)**: one mount, one tree, and each cgroup lists the controllers enabled
//!   for its children in `cgroup.subtree_control`. A controller is in the v2 tree only if
//!   no v1 hierarchy has claimed it.
//! * **hybrid**: v1 controllers plus a v2 mount (often `/sys/fs/cgroup/unified`) that holds
//!   whatever v1 left over, sometimes nothing but its core files.
//!
//! `/proc/self/mountinfo` says which (see proc(5) for its fields, cgroups(7) and
//! Documentation/admin-guide/cgroup-v2.rst for the versions). Everything here takes the
//! mountinfo text and reads mount points as given, so a test can describe a fixture tree.
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1.
    V1,
    /// cgroup v2.
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str, so that `{:<8}` aligns columns
        f.pad(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The host's overall arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only cgroup v2.
    Unified,
    /// Only cgroup v1.
    Legacy,
    /// v1 controllers plus a v2 mount.
    Hybrid,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Unified => "unified (cgroup v2 only)",
            Mode::Legacy => "legacy (cgroup v1 only)",
            Mode::Hybrid => "hybrid (cgroup v1 controllers plus a cgroup v2 mount)",
        })
    }
}

/// The controllers the chapters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    /// Memory limits and usage.
    Memory,
    /// CPU bandwidth (quota per period).
    Cpu,
    /// CPU accounting (v1 only; in v2 `cpu.stat` always counts usage).
    Cpuacct,
    /// Which CPUs and memory nodes may be used.
    Cpuset,
    /// How many processes may exist.
    Pids,
    /// Freezing (v1 only; in v2 every cgroup has `cgroup.freeze`).
    Freezer,
    /// Block I/O accounting and throttling, cgroup v1's controller (v2 calls it `io`).
    Blkio,
    /// Block I/O, cgroup v2's controller.
    Io,
    /// Which device nodes may be opened or made (v1 only: v2 attaches an eBPF program to
    /// the cgroup instead).
    Devices,
}

impl Controller {
    /// Its name in mount options and `cgroup.controllers`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::Devices => "devices",
        }
    }

    /// Every controller, for turning names back into controllers.
    pub const ALL: [Controller; 9] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Pids,
        Controller::Freezer,
        Controller::Blkio,
        Controller::Io,
        Controller::Devices,
    ];

    /// The controller called `name` in mount options or `cgroup.controllers`.
    pub fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Block I/O is counted and limited where the kernel offers it (v1's `blkio`, v2's
    /// `io`, which a host may not delegate): without it a cgroup is still made, unless a
    /// block I/O limit was asked for.
    pub fn optional(self) -> bool {
        matches!(self, Controller::Blkio | Controller::Io)
    }

    /// True for the v1-only controllers whose job v2 does in its core files.
    pub fn v1_only(self) -> bool {
        matches!(
            self,
            Controller::Cpuacct | Controller::Freezer | Controller::Blkio | Controller::Devices
        )
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: Version,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// For v1, the controllers bound to it (from the mount options, `name=systemd` style
    /// named hierarchies included); for v2, those listed in its root `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// v1 mount options that are not controllers.
const V1_FLAGS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

/// Every cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The mounts, in mountinfo order.
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// The layout the current process sees.
    pub fn detect() -> std::io::Result<Layout> {
        Ok(Layout::from_mountinfo(&fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    /// Parses mountinfo text. For a v2 mount, its `cgroup.controllers` file is read from
    /// the mount point (a fixture tree provides one).
    pub fn from_mountinfo(mountinfo: &str) -> Layout {
        let mut hierarchies = Vec::new();
        for line in mountinfo.lines() {
            // "36 35 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory"
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let (fstype, _source, options) = (right.next(), right.next(), right.next());
            let mount_point = PathBuf::from(mount_point);
            match fstype {
                Some("cgroup2") => {
                    let controllers = fs::read_to_string(mount_point.join("cgroup.controllers"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    hierarchies.push(Hierarchy {
                        version: Version::V2,
                        mount_point,
                        controllers,
                    });
                }
                Some("cgroup") => {
                    let controllers = options
                        .unwrap_or("")
                        .split(',')
                        .filter(|o| {
                            o.starts_with("name=") || !(o.contains('=') || V1_FLAGS.contains(o))
                        })
                        .map(str::to_string)
                        .collect();
                    hierarchies.push(Hierarchy {
                        version: Version::V1,
                        mount_point,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        Layout { hierarchies }
    }

    /// The v2 hierarchy, if mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// The v1 hierarchies that carry real controllers (named ones like `name=systemd` only
    /// group processes).
    pub fn v1_controller_mounts(&self) -> impl Iterator<Item = &Hierarchy> {
        self.hierarchies.iter().filter(|h| {
            h.version == Version::V1 && h.controllers.iter().any(|c| !c.starts_with("name="))
        })
    }

    /// Unified, legacy or hybrid. `None` when no cgroup filesystem is mounted at all.
    pub fn mode(&self) -> Option<Mode> {
        match (
            self.unified().is_some(),
            self.v1_controller_mounts().next().is_some(),
        ) {
            (true, false) => Some(Mode::Unified),
            (false, true) => Some(Mode::Legacy),
            (true, true) => Some(Mode::Hybrid),
            (false, false) => None,
        }
    }

    /// Where `controller` lives: the v1 hierarchy bound to it, else the v2 hierarchy if it
    /// lists it. v1-only controllers (cpuacct, freezer) have no v2 home: v2's core files
    /// (`cpu.stat`, `cgroup.freeze`) do their work.
    pub fn locate(&self, controller: Controller) -> Option<&Hierarchy> {
        // exercise(ch02.locate): the v1 hierarchy that has the controller; else (unless v1-only) the v2 one, if it lists it
        let name = controller.name();
        if let Some(h) = self
            .v1_controller_mounts()
            .find(|h| h.controllers.iter().any(|c| c == name))
        {
            return Some(h);
        }
        if controller.v1_only() {
            return None;
        }
        self.unified()
            .filter(|h| h.controllers.iter().any(|c| c == name))
        // end exercise
    }

    /// The text of `ch02-cgroups info`.
    pub fn describe(&self) -> String {
        let Some(mode) = self.mode() else {
            return "no cgroup filesystem is mounted: limits cannot be applied here\n".into();
        };
        let mut out = format!("cgroup mode: {mode}\n\n");
        out.push_str(&format!(
            "{:<12} {:<8} {}\n",
            "CONTROLLER", "VERSION", "HIERARCHY"
        ));
        let mut rows: Vec<(String, Version, &Path)> = Vec::new();
        for h in &self.hierarchies {
            for c in &h.controllers {
                rows.push((c.clone(), h.version, &h.mount_point));
            }
            if h.version == Version::V2 && h.controllers.is_empty() {
                rows.push(("(none)".into(), h.version, &h.mount_point));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for (c, v, p) in rows {
            out.push_str(&format!("{c:<12} {v:<8} {}\n", p.display()));
        }
        out.push('\n');
        out.push_str(match mode {
            Mode::Unified => {
                "One tree under one mount. A cgroup's limits are files in its directory\n\
                 (memory.max, cpu.max, pids.max), and a parent must list a controller in\n\
                 cgroup.subtree_control before its children get that controller's files.\n"
            }
            Mode::Legacy => {
                "One tree per controller: a container's cgroup is a directory in each of\n\
                 them (memory/NAME, cpu/NAME, pids/NAME), and its pid is written to each.\n"
            }
            Mode::Hybrid => {
                "Controllers live in the v1 trees, one directory per controller per\n\
                 cgroup. The v2 mount has few or no controllers, but every v2 cgroup has\n\
                 the core files cgroup.procs, cgroup.kill, cgroup.freeze and cgroup.events,\n\
                 which these chapters use to track, freeze and kill a container's processes.\n"
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /nonexistent/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_are_recognised_and_controllers_found_in_v1() {
        let l = Layout::from_mountinfo(HYBRID);
        assert_eq!(l.mode(), Some(Mode::Hybrid));
        assert_eq!(
            l.locate(Controller::Memory).unwrap().mount_point,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(l.locate(Controller::Cpuacct).unwrap().version, Version::V1);
        assert_eq!(l.locate(Controller::Cpuset), None);
        assert_eq!(
            l.unified().unwrap().mount_point,
            Path::new("/nonexistent/unified")
        );
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_hierarchy() {
        let l = Layout::from_mountinfo(
            "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(l.mode(), Some(Mode::Legacy));
        assert_eq!(l.locate(Controller::Cpu), l.locate(Controller::Cpuacct));
        assert_eq!(l.hierarchies[0].controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn unified_hosts_read_their_controllers_from_the_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let info = format!(
            "29 23 0:26 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n",
            dir.path().display()
        );
        let l = Layout::from_mountinfo(&info);
        assert_eq!(l.mode(), Some(Mode::Unified));
        assert_eq!(l.locate(Controller::Memory).unwrap().version, Version::V2);
        // v1-only controllers have no v2 home: cpu.stat and cgroup.freeze do their work.
        assert_eq!(l.locate(Controller::Cpuacct), None);
        assert_eq!(l.locate(Controller::Freezer), None);
    }
}
