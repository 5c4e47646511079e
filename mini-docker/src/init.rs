//! `run --init`: mini-init (see `mini-docker/init`), built static by `build.rs` and
//! embedded here, is written once under the store and bound read-only into the container at
//! docker's path, `/sbin/docker-init`; the container's command runs under it.
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::Error;

/// Where the container sees it, as docker binds its `docker-init`.
pub const TARGET: &str = "/sbin/docker-init";

/// The binary (empty when the build could not link it statically).
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mini-init"));

/// Where it lives under the store: named by its content, so a new build writes a new file
/// and a running container keeps the one it was given.
pub fn path(root: &Path) -> PathBuf {
    // Hashed once per process: a start asks twice (install, then the mount list).
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let name = NAME.get_or_init(|| {
        let digest = hex::encode(sha2::Sha256::digest(BINARY));
        format!("mini-init-{}", &digest[..12])
    });
    root.join("init").join(name)
}

/// Writes it under the store if it is not there yet; its path.
pub fn install(root: &Path) -> Result<PathBuf, Error> {
    if BINARY.is_empty() {
        return Err(Error::Usage(
            "--init: this mini-docker was built without its init (no static libc where it was built)".into(),
        ));
    }
    let path = path(root);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == BINARY.len() as u64) {
        return Ok(path);
    }
    let dir = root.join("init");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    // Atomic: a container starting at the same moment sees the old state or the whole file.
    ch05_image_pull::store::atomic_write_with_mode(&path, BINARY, 0o755)
        .map_err(|e| Error::io("write", &path, e))?;
    Ok(path)
}
