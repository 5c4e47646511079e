//! Running a chapter's binary as an ordinary user, to show what works without root.
//!
//! The tests run as root (CI is root); a [`Rootless`] scratch directory, owned by `nobody`,
//! holds a copy of the binary (the build directory may sit where `nobody` cannot reach),
//! and its commands run as `nobody`, with no supplementary groups.
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `nobody`'s uid and gid on Debian.
pub const NOBODY: u32 = 65534;

/// Whether this kernel lets an ordinary user make a user namespace (Debian's
/// `kernel.unprivileged_userns_clone`, and `user.max_user_namespaces`).
pub fn unprivileged_userns() -> bool {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0")
        && read("/proc/sys/user/max_user_namespaces").is_none_or(|v| v != "0")
}

/// A scratch directory `nobody` owns, with a copy of one binary.
#[derive(Debug)]
pub struct Rootless {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Rootless {
    /// Copies `bin` into a new scratch directory owned by `nobody`.
    pub fn new(bin: &Path) -> std::io::Result<Rootless> {
        let dir = tempfile::Builder::new().prefix("rootless-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let copy = dir.path().join(bin.file_name().unwrap_or_default());
        // Copied by another process: had this one written it, a child forked meanwhile by
        // another test's thread could still hold the write descriptor when the copy is
        // executed, and exec would fail with ETXTBSY ("Text file busy").
        let status = Command::new("cp").arg(bin).arg(&copy).status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "cp {}: {status}",
                bin.display()
            )));
        }
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))?;
        Ok(Rootless { dir, bin: copy })
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives `path` and everything under it to `nobody` (a rootfs it is to use).
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        let status = Command::new("chown")
            .args(["-R", "--no-dereference", &format!("{NOBODY}:{NOBODY}")])
            .arg(path)
            .status()?;
        match status.success() {
            true => Ok(()),
            false => Err(std::io::Error::other(format!(
                "chown -R {}",
                path.display()
            ))),
        }
    }

    /// The binary, to be run as `nobody` in the scratch directory.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        // std drops the supplementary groups too when root sets a uid.
        c.uid(NOBODY)
            .gid(NOBODY)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("TMPDIR", self.dir.path());
        c
    }
}
