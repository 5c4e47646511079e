//! Checks that a test left nothing behind in the kernel: mounts, cgroups, processes.
//!
//! Tests run in parallel, so these look for the test's *own* names and paths, never for
//! "anything new on the machine".
use std::fs;
use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, from `/proc/self/mountinfo` (field 5, octal escapes
/// such as `\040` for a space undone).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Panics if anything is still mounted at or below `dir`.
pub fn assert_no_mounts_under(dir: &Path) {
    let left = mounts_under(dir);
    assert!(
        left.is_empty(),
        "mounts left behind under {}: {left:?}",
        dir.display()
    );
}

/// Cgroup directories named `name`, anywhere in the first four levels of every hierarchy
/// under `/sys/fs/cgroup`.
pub fn cgroups_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 0, name, &mut found);
    found
}

fn walk(dir: &Path, depth: usize, name: &str, found: &mut Vec<PathBuf>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            if e.file_name() == name {
                found.push(p.clone());
            }
            walk(&p, depth + 1, name, found);
        }
    }
}

/// Pids of processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() as i32 {
            pids.push(pid);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(super::unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(super::unescape(r"/plain"), "/plain");
    }
}

/// Unmounts (lazily, `MNT_DETACH`) a mount a test made, when dropped: a failing assertion
/// still leaves nothing mounted.
#[derive(Debug)]
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}
