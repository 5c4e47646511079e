//! File helpers: unique temp names that say whose they are, and trees that are removed or
//! measured whatever their modes.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// `PID-N`: unique in this process, and tells GC whose a temp file is.
pub(super) fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// True if the process that made a `PID-N...` name is still running.
pub(super) fn owner_alive(name: &str) -> bool {
    let pid = name
        .trim_start_matches(".lease-")
        .trim_start_matches(".tmp-")
        .split('-')
        .next()
        .unwrap_or("");
    match pid.parse::<u32>() {
        Ok(p) if p == std::process::id() => true,
        Ok(p) => Path::new(&format!("/proc/{p}")).exists(),
        Err(_) => false,
    }
}

/// A temp file, removed when dropped unless kept (renamed into place).
#[derive(Debug)]
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub(super) fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The apparent size of the files in a directory tree, as docker counts an image's size.
pub fn dir_size(dir: &Path) -> Result<u64, Error> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| Error::io("read", &d, e))? {
            let e = e.map_err(|e| Error::io("read", &d, e))?;
            let m = e
                .metadata()
                .map_err(|err| Error::io("stat", &e.path(), err))?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// Removes a directory tree, making read-only directories writable first (a layer may
/// hold `dr-x------` directories that `remove_dir_all` cannot empty).
pub fn remove_tree(path: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))
        }
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::symlink_metadata(dir)
        && m.is_dir()
    {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            make_writable(&e.path());
        }
    }
}
