//! A busybox root filesystem for tests, built from the host's statically linked busybox
//! (Debian's `busybox-static` package installs it as `/usr/bin/busybox`).
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the host's busybox is expected.
pub const HOST_BUSYBOX: &str = "/usr/bin/busybox";

/// True when the host has a *static* busybox, which runs inside a rootfs without a libc.
pub fn busybox_available() -> bool {
    let Ok(bytes) = fs::read(HOST_BUSYBOX) else {
        return false;
    };
    // A dynamically linked ELF names its interpreter in a PT_INTERP segment, whose
    // contents ("/lib64/ld-linux-x86-64.so.2") appear verbatim in the file.
    !bytes
        .windows(8)
        .any(|w| w == b"/lib64/l" || w == b"/lib/ld-")
}

/// A busybox rootfs in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    /// Builds one: `bin/busybox`, a symlink per applet at the path busybox lists for it
    /// (`/bin/sh`, `/usr/bin/env`, ...), the usual empty directories, and an
    /// `/etc/passwd` and `/etc/group` with root and nobody.
    pub fn busybox() -> io::Result<Rootfs> {
        let dir = tempfile::Builder::new().prefix("rootfs-").tempdir()?;
        build_busybox_rootfs(dir.path())?;
        Ok(Rootfs { dir })
    }

    /// The rootfs directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Builds a busybox rootfs at `dest` (see [`Rootfs::busybox`]).
pub fn build_busybox_rootfs(dest: &Path) -> io::Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "root", "var", "run",
        "home", "mnt",
    ] {
        fs::create_dir_all(dest.join(d))?;
    }
    let tmp = dest.join("tmp");
    fs::create_dir_all(&tmp)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))?;
    fs::copy(HOST_BUSYBOX, dest.join("bin/busybox"))?;
    fs::set_permissions(dest.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    let list = Command::new(HOST_BUSYBOX).arg("--list-full").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dest.join(applet);
        if applet == "bin/busybox" || !applet.contains('/') || link.exists() {
            continue;
        }
        fs::create_dir_all(link.parent().unwrap_or(dest))?;
        symlink("/bin/busybox", &link)?;
    }
    fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(dest.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// Packs `dir` into a tarball at `dest` with GNU tar (numeric owners, so it unpacks the same
/// anywhere).
pub fn tar_dir(dir: &Path, dest: &Path) -> io::Result<PathBuf> {
    let status = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(dest)
        .arg(".")
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "tar -cf {} failed: {status}",
            dest.display()
        )));
    }
    Ok(dest.to_path_buf())
}

/// A busybox rootfs, or `None` after the gate's `SKIPPED` line (a failure in CI) when the
/// host has no static busybox. Use as `let Some(root) = require_busybox() else { return };`.
pub fn require_busybox() -> Option<Rootfs> {
    if !crate::gate(&crate::test_name(), busybox_available(), "busybox-static") {
        return None;
    }
    Some(Rootfs::busybox().expect("build the busybox rootfs"))
}
