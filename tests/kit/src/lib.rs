//! The workshop's test kit, shared by every chapter's tests:
//!
//! * [`require_root!`]: the root gate. Without root a test prints a loud `SKIPPED` line and
//!   passes; with `CI` set it fails instead, so CI never goes green by skipping.
//! * [`rootfs`]: a busybox root filesystem built from the host's `/usr/bin/busybox`
//!   (Debian's busybox-static).
//! * [`redact`]: insta settings that replace what changes from run to run (pids, ids,
//!   digests, inode numbers, times, temp paths) with stable placeholders.
//! * [`transcript`]: runs the `console` blocks of a note or the README and checks that the
//!   output shown is the output you get.
//! * [`hostile`]: hostile tar archives, a sandbox that must not change, and a time-bounded
//!   fuzz loop over them (chapter 3's extraction, chapter 4's layers).
//! * [`leaks`]: asserts that a test left no mount, cgroup or process behind.
//! * [`rootless`]: a chapter's binary run as `nobody`, for what works without root.
pub mod hostile;
pub mod leaks;
pub mod netns;
pub mod redact;
pub mod registry;
pub mod rootfs;
pub mod rootless;
pub mod transcript;

use std::io::Write;

/// True when `CI` is set to something other than empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The gate behind [`require_root!`]: true when the test may go on.
///
/// `what` names the requirement for the message. Not root: in CI this panics (a missing
/// requirement is a failure there); elsewhere it prints `SKIPPED: needs root: TEST` to the
/// real stderr (not the captured one, so it shows even for a passing test) and returns false.
pub fn gate(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("{test}: needs {what}, and CI is set: a missing requirement fails in CI");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: needs {what}: {test}");
    false
}

/// True when running as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The running kernel's version, `(major, minor)` from its release, as uname -r prints it
/// ("6.1.0-57-amd64" gives (6, 1)): tests of a feature a kernel gained check the older
/// kernel's behaviour instead (the VM lanes run Linux 6.1).
pub fn kernel_version() -> (u32, u32) {
    let release =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("read the kernel release");
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// True on a pure cgroup v2 host: `/sys/fs/cgroup` is itself the unified hierarchy (a v1
/// or hybrid host has a tmpfs there, holding one mount per v1 hierarchy).
pub fn pure_cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Returns from the calling test unless it runs as root (see [`gate`]).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::gate(&$crate::test_name(), $crate::is_root(), "root") {
            return;
        }
    };
}

/// Returns from the calling test unless `cond` holds; `what` says what is missing.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$crate::gate(&$crate::test_name(), $cond, $what) {
            return;
        }
    };
}

/// The gate behind [`require_cgroup_layout!`]: a requirement that a VM lane's cgroup
/// layout takes away on purpose (the v1 lane has no cgroup2 mount). In a lane
/// (`MDW_VM_LANE`, set by scripts/vm/guest.sh) the test says in one line why it does not
/// run there and passes; anywhere else this is [`gate`].
pub fn layout_gate(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if let Ok(lane) = std::env::var("MDW_VM_LANE") {
        let _ = writeln!(
            std::io::stderr(),
            "not run in the {lane} lane: needs {what}, which this layout has not: {test}"
        );
        return false;
    }
    gate(test, ok, what)
}

/// Returns from the calling test unless `$cond` (a cgroup layout) holds; see
/// [`layout_gate`].
#[macro_export]
macro_rules! require_cgroup_layout {
    ($cond:expr, $what:expr) => {
        if !$crate::layout_gate(&$crate::test_name(), $cond, $what) {
            return;
        }
    };
}

/// The running test's name (the test harness names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string()
}

/// A name no other test (or test run) uses: `PREFIX-PID-N`, for cgroups, containers,
/// interfaces and other kernel objects that live outside the test's temp dir.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A command's result the way snapshots show it: exit code, stdout, stderr, redacted.
pub fn show(output: &std::process::Output) -> String {
    show_with(output, &[])
}

/// [`show`], with literal replacements (a test's own paths and ids) made before redaction.
pub fn show_with(output: &std::process::Output, replace: &[(&str, &str)]) -> String {
    let code = match output.status.code() {
        Some(c) => c.to_string(),
        None => format!(
            "signal {:?}",
            std::os::unix::process::ExitStatusExt::signal(&output.status)
        ),
    };
    let mut s = format!("exit: {code}\n");
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if !bytes.is_empty() {
            s.push_str(&format!("--- {name}\n{}", String::from_utf8_lossy(bytes)));
            if !s.ends_with('\n') {
                s.push('\n');
            }
        }
    }
    for (from, to) in replace {
        s = s.replace(from, to);
    }
    redact::redact(&s)
}

/// Makes this test process the "subreaper" of its descendants (prctl(2),
/// `PR_SET_CHILD_SUBREAPER`): a detached process whose parent exits becomes our child, so a
/// test can reap it instead of leaving a zombie to whatever PID 1 the machine has.
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");
}

/// Kills a process with SIGKILL and, if it is our child (see [`become_subreaper`]), reaps it.
/// Waits until it is gone either way.
pub fn kill_and_reap(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(p, None);
    for _ in 0..500 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split(' ').nth(2) == Some("Z") {
            return; // a zombie of someone else's: it holds nothing but its pid
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("process {pid} is still there after SIGKILL");
}

/// Polls `cond` every 10 ms for up to `secs` seconds.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}

/// The whole-disk block device that holds `path` (`/dev/vda` for a file on `/dev/vda1`),
/// for block I/O limits, which the kernel applies to disks. None on a filesystem without
/// one (tmpfs, overlay). Found through sysfs: `/sys/dev/block/MAJ:MIN` is the partition or
/// disk, a partition's parent directory is its disk, and `uevent` names the node.
pub fn disk_of(path: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if sys.join("partition").exists() {
        sys = sys.parent()?.to_path_buf();
    }
    let uevent = std::fs::read_to_string(sys.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    let node = std::path::Path::new("/dev").join(name);
    node.exists().then_some(node)
}
