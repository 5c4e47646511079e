//! What garbage collection must keep although no name needs it: a lease
//! (`pins/.lease-PID-N`) holds the digests a command is writing until it names them, and
//! means something only while its process lives; a pin (`pins/NAME`) holds the image of a
//! container until mini-docker removes the container.
use std::fs;
use std::io;
use std::path::PathBuf;

use super::Store;
use super::files::{read_lines, unique, write_file};
use crate::Error;
use crate::reference::Digest;

#[derive(Debug, Default)]
pub(super) struct Lease {
    path: Option<PathBuf>,
    digests: Vec<Digest>,
}

impl Store {
    /// Lists `digest` in this process's lease, so that GC keeps it (and what it refers to)
    /// until the image is tagged or this store is dropped.
    pub fn protect(&self, digest: &Digest) -> Result<(), Error> {
        let mut lease = self.lease.lock().expect("not poisoned");
        if lease.digests.contains(digest) {
            return Ok(());
        }
        lease.digests.push(digest.clone());
        let path = lease
            .path
            .get_or_insert_with(|| self.root.join("pins").join(format!(".lease-{}", unique())))
            .clone();
        let text: String = lease.digests.iter().map(|d| format!("{d}\n")).collect();
        // A lease lives as long as its process: after a power cut there is none to keep.
        super::files::atomic_write_volatile(&path, text.as_bytes())
            .map_err(|e| Error::io("write", &path, e))
    }

    /// Ends the lease (after the image got its name in index.json).
    pub fn release(&self) {
        let mut lease = self.lease.lock().expect("not poisoned");
        if let Some(p) = lease.path.take() {
            let _ = fs::remove_file(p);
        }
        lease.digests.clear();
    }

    /// Keeps `manifest` (and its blobs and layers) even when no name points at it, until
    /// [`Store::unpin`]: mini-docker pins the image of each container. `durability` says
    /// whether the pin must outlive a power cut (a `--rm` container's need not: it is gone
    /// when its run ends).
    pub fn pin(
        &self,
        name: &str,
        manifest: &Digest,
        durability: super::Durability,
    ) -> Result<(), Error> {
        check_pin_name(name)?;
        let _lock = self.lock()?;
        let path = self.root.join("pins").join(name);
        let mut lines = read_lines(&path);
        if !lines.contains(&manifest.to_string()) {
            lines.push(manifest.to_string());
        }
        super::files::atomic_write_as(&path, (lines.join("\n") + "\n").as_bytes(), durability)
            .map_err(|e| Error::io("write", &path, e))
    }

    /// Removes a pin (the file goes when its last digest does).
    pub fn unpin(&self, name: &str, manifest: &Digest) -> Result<(), Error> {
        check_pin_name(name)?;
        let _lock = self.lock()?;
        let path = self.root.join("pins").join(name);
        let lines: Vec<String> = read_lines(&path)
            .into_iter()
            .filter(|l| *l != manifest.to_string())
            .collect();
        if lines.is_empty() {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", &path, e)),
                _ => Ok(()),
            }
        } else {
            write_file(&path, (lines.join("\n") + "\n").as_bytes())
        }
    }

    /// Removes every pin `name` holds (a container removed without its record to say
    /// which image it pinned: a crash in the middle of its removal).
    pub fn unpin_all(&self, name: &str) -> Result<(), Error> {
        check_pin_name(name)?;
        let _lock = self.lock()?;
        let path = self.root.join("pins").join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", &path, e)),
            _ => Ok(()),
        }
    }

    /// Whether a pin (not a lease) holds `manifest`.
    pub(super) fn pinned(&self, manifest: &Digest) -> Result<bool, Error> {
        let pins = self.root.join("pins");
        let wanted = manifest.to_string();
        for e in fs::read_dir(&pins).map_err(|e| Error::io("read", &pins, e))? {
            let e = e.map_err(|e| Error::io("read", &pins, e))?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if read_lines(&e.path()).contains(&wanted) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn check_pin_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid pin name {name:?}: letters, digits, '.', '_' and '-', not starting with '.'"
        )))
    }
}
