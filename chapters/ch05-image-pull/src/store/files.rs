//! File helpers: the one way this chapter replaces a file ([`atomic_write`]), unique temp
//! names that say whose they are, and trees that are removed or measured whatever their
//! modes.
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;

/// Replaces the file at `path` with `bytes`, so that readers see the old content or the
/// new, never a mix, and a crash at any moment leaves one of the two, never an empty file:
///
/// 1. write a temp file beside it (`.NAME.tmp-PID-N`: in the same directory, because
///    rename(2) is atomic only within one filesystem);
/// 2. fsync it, so its bytes are on disk before a name points at them;
/// 3. rename it over `path` (rename(2): "If newpath already exists, it will be atomically
///    replaced");
/// 4. fsync the directory, so the rename itself survives a crash (fsync(2): fsync on a file
///    "does not necessarily ensure that the entry in the directory containing the file has
///    also reached disk").
///
/// If any step fails, the temp file is removed, and the error says which step, on which
/// path. The file is created with mode 0666 less the umask, as `fs::write` does; see
/// [`atomic_write_with_mode`] for files that hold secrets.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    atomic_write_with_mode(path, bytes, 0o666)
}

/// [`atomic_write`], the file being created with `mode` (less the umask): `0o600` for a
/// file that holds passwords, which then never exists with a wider mode, not even as the
/// temp file.
pub fn atomic_write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, Durability::Durable)
}

/// [`atomic_write`] without the two fsyncs (steps 2 and 4): atomic for every reader and
/// across a killed process, but not promised to survive a power cut. For runtime state
/// whose truth ends with the machine's uptime anyway: a lease of a process that a reboot
/// ended, a container's `state.json` (after a reboot nothing runs, whatever it says; runc
/// keeps its state in tmpfs for the same reason). Each fsync is a journal commit, about a
/// millisecond on this machine's disk, on a container's start path.
pub fn atomic_write_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, 0o666, Durability::Volatile)
}

/// [`atomic_write`] or [`atomic_write_volatile`], as `durability` says.
pub fn atomic_write_as(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    replace(path, bytes, 0o666, durability)
}

/// Whether a replaced file must survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Durable,
    /// Rename only.
    Volatile,
}

/// The one implementation of [`atomic_write`] and its variants.
fn replace(path: &Path, bytes: &[u8], mode: u32, durability: Durability) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        ));
    };
    let step = |what: &'static str, on: &Path| {
        let on = on.display().to_string();
        move |e: io::Error| io::Error::new(e.kind(), format!("{what} {on}: {e}"))
    };
    let mut tmp = TempFile {
        path: dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), unique())),
        keep: false,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp.path)
        .map_err(step("create", &tmp.path))?;
    file.write_all(bytes).map_err(step("write", &tmp.path))?;
    if durability == Durability::Durable {
        file.sync_all().map_err(step("fsync", &tmp.path))?;
    }
    drop(file);
    fs::rename(&tmp.path, path).map_err(step("rename into place", path))?;
    tmp.keep = true;
    match durability {
        Durability::Durable => sync_dir(dir),
        Durability::Volatile => Ok(()),
    }
}

/// Deletes the temp files [`atomic_write`] left beside `path` (`.NAME.tmp-PID-N`) when their
/// process is gone (killed between the create and the rename), as best it can; a running
/// writer's file is left alone.
pub fn sweep_dead_temp_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(owner) = file.strip_prefix(&prefix)
            && !owner_alive(owner)
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// fsync(2) on a directory: makes the renames and removals in it durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("fsync {}: {e}", dir.display())))
}

/// [`atomic_write`] with the store's error: the operation and the path.
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    atomic_write(path, bytes).map_err(|e| Error::io("write", path, e))
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// `PID-N`: unique in this process, and tells GC whose a temp file is.
pub(crate) fn unique() -> String {
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
