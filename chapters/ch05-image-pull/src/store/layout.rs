//! The OCI image layout, **content before names** (image-spec image-layout.md): every blob
//! is written to `tmp/`, checked against the digest that names it, made durable, and only
//! then renamed into `blobs/sha256/`; an extracted layer is renamed into `layers/DIFFID/`
//! with it, once its diff-id is checked too. Names (index.json, see `names.rs`) are
//! written last, so a crash or a kill at any moment never leaves a name without its
//! content.
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::files::{TempFile, remove_tree, sweep_dead_temp_files, sync_dir, unique, write_file};
use super::{Image, Layer, Store};
use crate::Error;
use crate::layer;
use crate::manifest::{self, Descriptor, Index, Manifest};
use crate::reference::Digest;

/// Holds the store lock until dropped.
pub(super) struct Locked(#[allow(dead_code)] File);

/// A blob being written into `tmp/`, hashed as it goes (see [`Store::blob_writer`]).
pub struct BlobWriter {
    file: File,
    tmp: TempFile,
    hasher: sha2::Sha256,
    total: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("tmp", &self.tmp.path)
            .field("total", &self.total)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// How many bytes to read next, at most `want`: never more than one past the expected
    /// size, so that a blob longer than its descriptor says is caught without reading it
    /// all (image-spec descriptor.md: the size is a limit).
    pub fn room(&self, want: usize) -> usize {
        match self.expected_size {
            Some(size) => (size + 1).saturating_sub(self.total).min(want as u64) as usize,
            None => want,
        }
    }

    /// Hashes and writes the next bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.hasher.update(bytes);
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.tmp.path, e))?;
        self.total += bytes.len() as u64;
        Ok(())
    }

    /// Checks the size and the digest, then makes the bytes durable (fdatasync) so that
    /// the rename that names them never names an incomplete file after a crash.
    pub fn finish(self) -> Result<VerifiedBlob, Error> {
        let digest = Digest::from_hash(self.hasher.finalize().as_slice());
        if let Some(size) = self.expected_size
            && self.total != size
        {
            return Err(Error::SizeMismatch {
                digest: self.expected.unwrap_or(digest),
                expected: size,
                actual: if self.total > size {
                    format!("more than {size}")
                } else {
                    self.total.to_string()
                },
            });
        }
        if let Some(want) = self.expected
            && want != digest
        {
            return Err(Error::DigestMismatch {
                expected: want,
                actual: digest,
            });
        }
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.tmp.path, e))?;
        Ok(VerifiedBlob {
            tmp: self.tmp,
            digest,
            size: self.total,
        })
    }
}

/// A blob in `tmp/` whose size and digest were checked, waiting for [`Store::commit`];
/// removed if dropped before.
#[derive(Debug)]
pub struct VerifiedBlob {
    tmp: TempFile,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// A layer directory being extracted, `layers/.tmp-PID-N` (see [`Store::temp_layer`]);
/// removed if dropped before [`Store::commit`] names it.
#[derive(Debug)]
pub struct TempLayer {
    path: PathBuf,
    diff_id: Digest,
    keep: bool,
}

impl TempLayer {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempLayer {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.path);
        }
    }
}

impl Store {
    pub(super) fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join("blobs/sha256")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(super) fn index_path(&self) -> PathBuf {
        self.images_dir().join("index.json")
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Where a layer is extracted.
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// True when the blob is in the store (it was verified before it got its name).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a small blob (manifest, config) whole.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| Error::io("read blob", &path, e))
    }

    /// Takes the store lock (flock(2) on `ROOT/lock`); released when the guard drops.
    pub(super) fn lock(&self) -> Result<Locked, Error> {
        let path = self.root.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        // File::lock is std's flock(LOCK_EX) (stable since 1.89; the workspace builds with 1.95).
        f.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(Locked(f))
    }

    pub(super) fn read_index(&self) -> Result<Index, Error> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty_index()),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path,
            problem: e.to_string(),
        })
    }

    /// Replaces index.json (under the store's lock). A writer killed between creating its
    /// temp file and the rename left `.index.json.tmp-PID-N` behind; the next writer, which
    /// holds the lock, deletes those whose process is gone, and the dead leases in `pins/`.
    pub(super) fn write_index(&self, index: &Index) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
        bytes.push(b'\n');
        sweep_dead_temp_files(&self.index_path());
        self.sweep_dead_leases();
        write_file(&self.index_path(), &bytes)
    }

    /// Streams `reader` into the store as a blob: written to `tmp/` while hashed, checked
    /// against `expected` (digest and size) if given, fsynced, then renamed into `blobs/`.
    /// Nothing is stored if the check fails, and never more than `expected_size` bytes are
    /// read (a descriptor's size is a limit, image-spec descriptor.md).
    pub fn write_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), Error> {
        self.write_blob_leased(reader, expected, expected_size, false)
    }

    fn write_blob_leased(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        lease: bool,
    ) -> Result<(Digest, u64), Error> {
        let mut writer = self.blob_writer(expected, expected_size)?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let want = writer.room(buf.len());
            if want == 0 {
                break;
            }
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Read(e)),
            };
            writer.write(&buf[..n])?;
        }
        let blob = writer.finish()?;
        let (digest, size) = (blob.digest.clone(), blob.size);
        self.commit(Some(blob), None, lease)?;
        Ok((digest, size))
    }

    /// Starts a blob in `tmp/`, to be fed with [`BlobWriter::write`] and checked by
    /// [`BlobWriter::finish`] against `expected` and `expected_size` when given.
    pub fn blob_writer(
        &self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, Error> {
        // What killed downloads left is reclaimed first (`tmp/PID-N.partial`, PID gone).
        let _ = self.sweep_downloads();
        let tmp = self.tmp_dir().join(format!("{}.partial", unique()));
        let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        Ok(BlobWriter {
            file,
            tmp: TempFile {
                path: tmp,
                keep: false,
            },
            hasher: sha2::Sha256::new(),
            total: 0,
            expected: expected.cloned(),
            expected_size,
        })
    }

    /// A directory to extract a layer into, `layers/.tmp-PID-N`: removed when dropped,
    /// unless [`Store::commit`] names it.
    pub fn temp_layer(&self, diff_id: &Digest) -> Result<TempLayer, Error> {
        // Half-extracted layers of killed processes go first (`layers/.tmp-PID-N`).
        self.sweep_dead_temp_layers();
        let path = self.root.join("layers").join(format!(".tmp-{}", unique()));
        fs::create_dir(&path).map_err(|e| Error::io("create directory", &path, e))?;
        Ok(TempLayer {
            path,
            diff_id: diff_id.clone(),
            keep: false,
        })
    }

    /// Names verified content, under the lock: renames the blob into `blobs/` and the
    /// extracted layer into `layers/DIFFID/`, together, so that a pull that got both
    /// checked keeps both. A layer another process extracted meanwhile stays, and ours
    /// goes (after the lock is released). With `lease`, the blob is also listed in this
    /// process's lease before the lock is released, so that no GC can take it before
    /// [`Store::put_image`] names it.
    pub fn commit(
        &self,
        blob: Option<VerifiedBlob>,
        layer: Option<TempLayer>,
        lease: bool,
    ) -> Result<(), Error> {
        let (mut blob, mut layer) = (blob, layer);
        {
            let _lock = self.lock()?;
            if let Some(b) = &mut blob {
                let dest = self.blob_path(&b.digest);
                fs::rename(&b.tmp.path, &dest)
                    .map_err(|e| Error::io("rename into place", &dest, e))?;
                b.tmp.keep = true;
                // The new name is made durable before anything can refer to it: index.json,
                // written later and fsynced, must not outlive the blob's name in a crash.
                sync_dir(&self.blobs_dir()).map_err(|e| Error::io("write", &dest, e))?;
                if lease {
                    // Still under the lock: a GC cannot run between the rename and the lease.
                    self.protect(&b.digest)?;
                }
            }
            if let Some(l) = &mut layer {
                let dest = self.layer_path(&l.diff_id);
                if !dest.is_dir() {
                    fs::rename(&l.path, &dest)
                        .map_err(|e| Error::io("rename into place", &dest, e))?;
                    l.keep = true;
                }
            }
        }
        // The lock is released: a directory that lost the race goes now.
        drop(layer);
        Ok(())
    }

    /// Adds a blob from a reader (import, commit, build): streamed, verified against
    /// `expected` when given, written atomically. Protected by this store's lease until
    /// [`Store::put_image`] names it.
    pub fn put_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), Error> {
        // The digest is known only at the end, so the lease is taken with the rename.
        self.write_blob_leased(reader, expected, None, true)
    }

    /// Writes a manifest the store made (an image written locally, or the OCI form of a
    /// Docker one) as a blob, listed in this store's lease first. Returns its descriptor.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<Descriptor, Error> {
        let bytes = serde_json::to_vec(manifest).expect("a manifest serialises");
        let digest = Digest::of(&bytes);
        self.protect(&digest)?;
        if !self.has_blob(&digest) {
            self.write_blob(&mut &bytes[..], Some(&digest), Some(bytes.len() as u64))?;
        }
        Ok(Descriptor::new(
            manifest
                .media_type
                .as_deref()
                .unwrap_or(manifest::OCI_MANIFEST),
            digest,
            bytes.len() as u64,
        ))
    }

    /// The extracted directories of an image's layers, bottom first, for overlayfs lower
    /// dirs. A layer not yet extracted is extracted now, once, and shared by every image
    /// that has it.
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, Error> {
        image.layers.iter().map(|l| self.extract_layer(l)).collect()
    }

    /// Extracts one layer from its stored blob into `layers/DIFFID/` unless it is there:
    /// into a temp directory first, verified against its diff-id, then renamed (under the
    /// lock). If another process won the race, its copy stays and ours goes. (`pull`
    /// extracts while it downloads instead; this is for blobs that arrived otherwise.)
    pub fn extract_layer(&self, layer: &Layer) -> Result<PathBuf, Error> {
        let dest = self.layer_path(&layer.diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp = self.temp_layer(&layer.diff_id)?;
        layer::unpack(
            &self.blob_path(&layer.digest),
            &layer.media_type,
            &layer.diff_id,
            Some(tmp.path()),
        )?;
        self.commit(None, Some(tmp), false)?;
        Ok(dest)
    }
}

pub(super) fn empty_index() -> Index {
    Index {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: None,
    }
}
