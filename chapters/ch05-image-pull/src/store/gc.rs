//! Garbage collection: mark what the names, pins and live leases need, sweep the rest.
//!
//! Mark and sweep, under the store's lock so that nothing is named or renamed in
//! meanwhile. The roots are index.json's entries (and the original manifests they
//! record), the pins, and the leases of processes still running; from each root, a
//! manifest names its config and layers, an index its manifests, and a config the
//! diff-ids of the extracted layers to keep (image-spec manifest.md, image-index.md,
//! config.md `rootfs.diff_ids`).
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use oci_spec::image::ImageConfiguration;

use super::files::{dir_size, owner_alive, read_lines, remove_tree};
use super::{ORIGINAL_MANIFEST, Store};
use crate::Error;
use crate::manifest::{self, Parsed};
use crate::reference::Digest;

/// What garbage collection deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Extracted layer directories deleted (by diff-id).
    pub layers: Vec<Digest>,
    /// Bytes freed in blobs/.
    pub bytes: u64,
}

/// What the mark phase found reachable.
#[derive(Debug, Default)]
struct Live {
    blobs: BTreeSet<Digest>,
    layers: BTreeSet<Digest>,
}

impl Store {
    /// Deletes every blob and extracted layer that no index.json entry, pin or live lease
    /// needs, and temp files of processes that are gone.
    pub fn gc(&self) -> Result<Collected, Error> {
        let _lock = self.lock()?;
        let mut roots = self.named_roots()?;
        roots.extend(self.pinned_roots()?);
        let live = self.mark(roots);
        let mut collected = Collected::default();
        self.sweep_blobs(&live, &mut collected)?;
        self.sweep_layers(&live, &mut collected)?;
        collected.bytes += self.sweep_downloads()?;
        collected.blobs.sort();
        collected.layers.sort();
        Ok(collected)
    }

    /// The manifests index.json names, and the original manifest of each converted image:
    /// `pull` compares it, and it is the document the registry's digest is over.
    fn named_roots(&self) -> Result<Vec<Digest>, Error> {
        let mut roots = Vec::new();
        for d in self.read_index()?.manifests {
            if let Some(Ok(original)) = d.annotation(ORIGINAL_MANIFEST).map(Digest::parse) {
                roots.push(original);
            }
            roots.push(d.digest);
        }
        Ok(roots)
    }

    /// The digests the pins and the live leases hold. A lease whose process is gone, and
    /// a pin's temp file left by a dead process, are deleted on the way: they protect
    /// nothing any more.
    fn pinned_roots(&self) -> Result<Vec<Digest>, Error> {
        let pins = self.root.join("pins");
        let mut roots = Vec::new();
        for e in fs::read_dir(&pins).map_err(|e| Error::io("read", &pins, e))? {
            let e = e.map_err(|e| Error::io("read", &pins, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if dead_lease_or_temp(&name) {
                let _ = fs::remove_file(e.path());
                continue;
            }
            // A live lease's digests are roots (below); a temp file holds none yet.
            if name.contains(".tmp-") {
                continue;
            }
            roots.extend(
                read_lines(&e.path())
                    .iter()
                    .filter_map(|l| Digest::parse(l).ok()),
            );
        }
        Ok(roots)
    }

    /// Follows the roots down: an index to its manifests, a manifest to its config and
    /// layer blobs, a config to its diff-ids. A blob that is missing or unreadable ends its
    /// branch (a config or a layer someone pinned directly parses as neither).
    fn mark(&self, mut roots: Vec<Digest>) -> Live {
        let mut live = Live::default();
        while let Some(d) = roots.pop() {
            if !live.blobs.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = fs::read(self.blob_path(&d)) else {
                continue;
            };
            match manifest::parse(&bytes, None) {
                Ok((Parsed::Image(m), _)) => {
                    live.blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
                    live.blobs.insert(m.config.digest.clone());
                    live.layers.extend(self.diff_ids_of(&m.config.digest));
                }
                Ok((Parsed::Index(i), _)) => {
                    roots.extend(i.manifests.into_iter().map(|m| m.digest))
                }
                Err(_) => {}
            }
        }
        live
    }

    /// The diff-ids a stored config lists (none if it is missing or not a config).
    fn diff_ids_of(&self, config: &Digest) -> Vec<Digest> {
        let Ok(bytes) = fs::read(self.blob_path(config)) else {
            return Vec::new();
        };
        let Ok(config) = serde_json::from_slice::<ImageConfiguration>(&bytes) else {
            return Vec::new();
        };
        config
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| Digest::parse(d).ok())
            .collect()
    }

    /// Deletes the blobs nothing reaches.
    fn sweep_blobs(&self, live: &Live, collected: &mut Collected) -> Result<(), Error> {
        let blobs = self.blobs_dir();
        for e in fs::read_dir(&blobs).map_err(|e| Error::io("read", &blobs, e))? {
            let e = e.map_err(|e| Error::io("read", &blobs, e))?;
            let Some(d) = digest_named(&e.file_name().to_string_lossy()) else {
                continue;
            };
            if !live.blobs.contains(&d) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(|err| Error::io("remove", &e.path(), err))?;
                collected.bytes += size;
                collected.blobs.push(d);
            }
        }
        Ok(())
    }

    /// Deletes the extracted layers no config lists, and the half-extracted ones
    /// (`layers/.tmp-PID-N`) of processes that are gone.
    fn sweep_layers(&self, live: &Live, collected: &mut Collected) -> Result<(), Error> {
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers).map_err(|e| Error::io("read", &layers, e))? {
            let e = e.map_err(|e| Error::io("read", &layers, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let doomed = match digest_named(&name) {
                Some(d) if !live.layers.contains(&d) => {
                    collected.layers.push(d);
                    true
                }
                Some(_) => false,
                None => name.starts_with(".tmp-") && !owner_alive(&name),
            };
            if doomed {
                remove_tree(&e.path())?;
            }
        }
        Ok(())
    }

    /// Deletes the half-extracted layers (`layers/.tmp-PID-N`) of processes that are gone,
    /// as best it can: run as a new extraction starts.
    pub(super) fn sweep_dead_temp_layers(&self) {
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") && !owner_alive(&name) {
                remove_any(&e.path());
            }
        }
    }

    /// Deletes the downloads in `tmp/` of processes that are gone (a pull or an import
    /// that was killed); returns the bytes freed. Also run as a new download starts, so
    /// leftovers do not pile up between collections.
    pub(super) fn sweep_downloads(&self) -> Result<u64, Error> {
        let tmp = self.tmp_dir();
        let mut freed = 0;
        for e in fs::read_dir(&tmp)
            .map_err(|e| Error::io("read", &tmp, e))?
            .flatten()
        {
            if !owner_alive(&e.file_name().to_string_lossy()) {
                freed += if e.path().is_dir() {
                    dir_size(&e.path()).unwrap_or(0)
                } else {
                    e.metadata().map_or(0, |m| m.len())
                };
                remove_any(&e.path());
            }
        }
        Ok(freed)
    }
}

/// The digest a file in `blobs/sha256/` or a directory in `layers/` is named after.
fn digest_named(name: &str) -> Option<Digest> {
    Digest::parse(&format!("sha256:{name}")).ok()
}

/// Removes a file or a directory tree, as best it can (a leftover is collected next time).
fn remove_any(path: &Path) {
    if path.is_dir() {
        let _ = remove_tree(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

/// A lease (`.lease-PID-N`) or a temp file (`….tmp-PID-N`) in `pins/` whose process is
/// gone: it protects nothing any more.
fn dead_lease_or_temp(name: &str) -> bool {
    if name.starts_with(".lease-") {
        return !owner_alive(name);
    }
    name.contains(".tmp-") && !owner_alive(name.rsplit(".tmp-").next().unwrap_or(""))
}

impl Store {
    /// Deletes the dead leases and temp files in `pins/` (see [`dead_lease_or_temp`]). GC
    /// does it too; this runs on every write of index.json, so that a command killed
    /// before it let go of its lease leaves nothing for long even when no GC follows.
    pub(super) fn sweep_dead_leases(&self) {
        let pins = self.root.join("pins");
        for e in fs::read_dir(&pins).into_iter().flatten().flatten() {
            if dead_lease_or_temp(&e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
