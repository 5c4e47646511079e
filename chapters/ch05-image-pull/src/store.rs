//! The local image store: an OCI image layout, plus each layer extracted once.
//!
//! ```text
//! ROOT/images/oci-layout         {"imageLayoutVersion":"1.0.0"}      (OCI image-layout.md)
//! ROOT/images/index.json         one entry per tag, annotated org.opencontainers.image.ref.name,
//!                                and one without it per dangling image (a name moved off it)
//! ROOT/images/blobs/sha256/HEX   manifests, configs, layers: named by their content's digest
//! ROOT/layers/DIFFID/            a layer extracted, shared by every image that has it
//! ROOT/layers/.tmp-PID-N/        a layer being extracted (while its blob downloads)
//! ROOT/tmp/                      downloads in progress
//! ROOT/pins/NAME                 manifest digests kept even without a tag (containers)
//! ROOT/lock                      serialises index.json changes, renames into blobs/ and GC
//! ```
//!
//! Because `images/` is a standard layout, `skopeo inspect oci:ROOT/images:REF` and `umoci`
//! read it too. For that, every name points at an *OCI* image manifest: OCI tools skip
//! entries of other types (skopeo 1.9's `oci:` transport does), so an image a registry
//! served as Docker schema 2 is stored twice over, in a way: its manifest as it came (the
//! registry's digest is over those bytes, and docker shows that digest), and an OCI
//! manifest of the same config and layer blobs, which index.json names. The entry's
//! annotations link the two ([`ORIGINAL_MANIFEST`]) and record the digest the registry
//! knows the image by ([`REGISTRY_DIGEST`]).
//!
//! Three rules keep the store consistent whatever happens:
//!
//! * **content before names**: a blob is written to `tmp/`, verified against its digest,
//!   fsynced, and only then renamed into `blobs/` (a layer's directory with it, once its
//!   diff-id is verified too: [`Store::commit`]); `index.json` (the only thing that names
//!   images) changes last, atomically (temp file, fsync, rename). A command killed at any
//!   moment leaves at worst a stray temp file, and never a listed image with a missing
//!   blob.
//! * **the lock**: an exclusive `flock` on `ROOT/lock` around every `index.json`
//!   read-modify-write, every rename into `blobs/` or `layers/`, and garbage collection.
//!   Downloads themselves run unlocked, in parallel, even across processes.
//! * **leases**: while a command writes an image, the manifest digests it is working on are
//!   listed in `pins/.lease-PID-N`, so a garbage collection in another process keeps its
//!   blobs although no tag names them yet. A lease whose process is gone is ignored.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::ImageConfiguration;
use sha2::Digest as _;

use crate::Error;
use crate::layer;
use crate::manifest::{self, Descriptor, Index, Manifest, Parsed};
use crate::reference::{Digest, Reference};

/// The default store root, shared with mini-docker.
pub const DEFAULT_ROOT: &str = "/var/lib/mini-docker";
/// The annotation that names an image in an OCI layout's index.json (annotations.md).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Our annotation on index.json entries: the image's uncompressed size in bytes.
pub const SIZE_ANNOTATION: &str = "mini-docker.image.size";
/// Our annotation on an index.json entry whose manifest the store converted to OCI: the
/// digest of the manifest as the registry served it (kept in `blobs/`, and by GC).
pub const ORIGINAL_MANIFEST: &str = "mini-docker.original-manifest";
/// The media type of that original manifest (Docker schema 2).
pub const ORIGINAL_MEDIA_TYPE: &str = "mini-docker.original-manifest.media-type";
/// Our annotation on the index.json entry of a pulled name: the digest the registry knows
/// the image by, which `pull` printed as `Digest:` (an index's, for a multi-platform tag)
/// and docker shows in `RepoDigests`.
pub const REGISTRY_DIGEST: &str = "mini-docker.registry-digest";

/// The store root the command line and environment ask for: `--root`, else
/// `MINI_DOCKER_ROOT`, else [`DEFAULT_ROOT`].
pub fn root_from(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("MINI_DOCKER_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The compressed blob's digest (what the manifest lists).
    pub digest: Digest,
    /// The uncompressed tar's digest (what the config lists; names the extracted directory).
    pub diff_id: Digest,
    /// The blob's size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// An image in the store.
///
/// Two manifest digests may describe one image: [`Image::manifest_digest`], the manifest
/// the store names (always an OCI manifest for pulled images: what containers pin and what
/// `push` sends), and, when the registry served Docker schema 2, the digest of that
/// original ([`Image::original_manifest`]), which is the one the registry knows. The
/// registry's digests, as docker shows them, are in [`Image::repo_digests`].
#[derive(Debug, Clone)]
pub struct Image {
    /// The names that point at it (full form), sorted.
    pub references: Vec<String>,
    /// The digest of the manifest index.json names: what mini-docker pins and `push` sends.
    pub manifest_digest: Digest,
    /// That manifest's media type: OCI for every image this chapter stores.
    pub manifest_media_type: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest as the registry served it, when the store converted it to OCI (Docker
    /// schema 2): same config and layers, another digest. Its blob is kept.
    pub original_manifest: Option<Descriptor>,
    /// docker's `RepoDigests`: `REPOSITORY@DIGEST` (full form) for each repository the
    /// image was pulled from (or by digest), the digest being the registry's, sorted.
    pub repo_digests: Vec<String>,
    /// The config's digest: the image ID.
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfiguration,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// The uncompressed size of its layers (0 if unknown).
    pub size: u64,
}

impl Image {
    /// The image ID: the config's digest, as docker defines it.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The digest of this image's manifest as the registry has it: the original's for a
    /// converted image, else the stored manifest's own.
    pub fn original_digest(&self) -> &Digest {
        self.original_manifest
            .as_ref()
            .map_or(&self.manifest_digest, |d| &d.digest)
    }
}

/// A layer a caller adds with [`Store::put_image`]: its blob (already in the store) and
/// the diff-id the config lists for it.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// The blob.
    pub descriptor: Descriptor,
    /// The uncompressed digest.
    pub diff_id: Digest,
}

/// What [`Store::remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The names removed.
    pub untagged: Vec<String>,
    /// What garbage collection then deleted.
    pub gc: Collected,
}

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

/// The store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    lease: Mutex<Lease>,
}

#[derive(Debug, Default)]
struct Lease {
    path: Option<PathBuf>,
    digests: Vec<Digest>,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// `PID-N`: unique in this process, and tells GC whose a temp file is.
fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// True if the process that made a `PID-N...` name is still running.
fn owner_alive(name: &str) -> bool {
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

/// Holds the store lock until dropped.
struct Locked(#[allow(dead_code)] File);

/// A temp file, removed when dropped unless kept (renamed into place).
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

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
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, Error> {
        let store = Store {
            root: root.into(),
            lease: Mutex::new(Lease::default()),
        };
        for dir in [
            store.blobs_dir(),
            store.root.join("layers"),
            store.tmp_dir(),
            store.root.join("pins"),
        ] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        }
        let layout = store.images_dir().join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !store.index_path().exists() {
            let _lock = store.lock()?;
            if !store.index_path().exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/images`: the OCI image layout.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join("blobs/sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn index_path(&self) -> PathBuf {
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
    fn lock(&self) -> Result<Locked, Error> {
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

    /// Writes a file atomically: a temp file beside it, fsync, rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        self.write_replacing(path, bytes, true)
    }

    /// Writes a file by renaming a temp file over it, so that readers see the old or the
    /// new content, never a mix; with `durable`, fsynced first, so that after a crash the
    /// name holds the new content or the old, never an empty file.
    fn write_replacing(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<(), Error> {
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            unique()
        ));
        let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
            .map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("rename into place", path, e)
        })
    }

    fn read_index(&self) -> Result<Index, Error> {
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

    fn write_index(&self, index: &Index) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
        bytes.push(b'\n');
        self.write_atomic(&self.index_path(), &bytes)
    }

    // ----------------------------------------------------------------------------------
    // Leases
    // ----------------------------------------------------------------------------------

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
        // Not fsynced: a lease means something only while its process runs, and a crash
        // ends the process (GC then ignores the lease, whatever it holds).
        self.write_replacing(&path, text.as_bytes(), false)
    }

    /// Ends the lease (after the image got its name in index.json).
    pub fn release(&self) {
        let mut lease = self.lease.lock().expect("not poisoned");
        if let Some(p) = lease.path.take() {
            let _ = fs::remove_file(p);
        }
        lease.digests.clear();
    }

    // ----------------------------------------------------------------------------------
    // Blobs
    // ----------------------------------------------------------------------------------

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

    // ----------------------------------------------------------------------------------
    // Names
    // ----------------------------------------------------------------------------------

    /// Names `descriptor` (a manifest in the store) `name` in index.json, replacing what
    /// the name pointed at before. Returns the manifest it replaced, if any.
    pub fn set_name(&self, name: &str, descriptor: &Descriptor) -> Result<Option<Digest>, Error> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let before = index
            .manifests
            .iter()
            .find(|d| d.annotation(REF_NAME) == Some(name))
            .cloned();
        // The name moves here; an unnamed entry of the same image goes: it has a name now.
        index.manifests.retain(|d| match d.annotation(REF_NAME) {
            Some(n) => n != name,
            None => d.digest != descriptor.digest,
        });
        let mut entry = descriptor.clone();
        entry.platform = None;
        entry
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REF_NAME.to_string(), name.to_string());
        index.manifests.push(entry);
        // The image the name left, if nothing else names it, stays as docker keeps it: a
        // dangling image (`<none>:<none>`), until `image prune` or `rmi`. A build's cache
        // and a container started before the name moved may still need it.
        if let Some(old) = &before
            && !index.manifests.iter().any(|d| d.digest == old.digest)
        {
            index.manifests.push(unnamed(old));
        }
        sort_entries(&mut index.manifests);
        self.write_index(&index)?;
        Ok(before.map(|d| d.digest))
    }

    /// Lists a complete image without a name (docker's dangling image: `import` or
    /// `commit` without a name), unless an entry lists it already. Ends this store's lease.
    pub fn add_unnamed(&self, descriptor: &Descriptor, uncompressed: u64) -> Result<(), Error> {
        // Content before names, for an entry without a name too.
        if !self.has_blob(&descriptor.digest) {
            return Err(Error::NoSuchImage(descriptor.digest.to_string()));
        }
        {
            let _lock = self.lock()?;
            let mut index = self.read_index()?;
            if !index
                .manifests
                .iter()
                .any(|d| d.digest == descriptor.digest)
            {
                let mut entry = unnamed(descriptor);
                entry
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(SIZE_ANNOTATION.to_string(), uncompressed.to_string());
                index.manifests.push(entry);
                sort_entries(&mut index.manifests);
                self.write_index(&index)?;
            }
        }
        self.release();
        Ok(())
    }

    /// The index.json entry named `name`.
    pub fn entry(&self, name: &str) -> Result<Option<Descriptor>, Error> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .find(|d| d.annotation(REF_NAME) == Some(name)))
    }

    /// Every index.json entry.
    pub fn entries(&self) -> Result<Vec<Descriptor>, Error> {
        Ok(self.read_index()?.manifests)
    }

    /// Loads the image a manifest descriptor names, with every name that points at it.
    pub fn load(&self, descriptor: &Descriptor) -> Result<Image, Error> {
        let bytes = self.read_blob(&descriptor.digest)?;
        let manifest = match manifest::parse(&bytes, Some(&descriptor.media_type)) {
            Ok((Parsed::Image(m), _)) => m,
            Ok((Parsed::Index(_), _)) => {
                return Err(Error::Corrupt {
                    path: self.blob_path(&descriptor.digest),
                    problem: "index.json names an index, not an image manifest".into(),
                });
            }
            Err(problem) => {
                return Err(Error::Corrupt {
                    path: self.blob_path(&descriptor.digest),
                    problem,
                });
            }
        };
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|e| Error::Corrupt {
                path: self.blob_path(&manifest.config.digest),
                problem: format!("not an image config: {e}"),
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::Corrupt {
                path: self.blob_path(&manifest.config.digest),
                problem: format!(
                    "the config lists {} diff-ids for {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (l, diff_id) in manifest.layers.iter().zip(diff_ids) {
            layers.push(Layer {
                digest: l.digest.clone(),
                diff_id: Digest::parse(diff_id).map_err(|problem| Error::Corrupt {
                    path: self.blob_path(&manifest.config.digest),
                    problem,
                })?,
                size: l.size,
                media_type: l.media_type.clone(),
            });
        }
        let entries = self.entries()?;
        let same: Vec<&Descriptor> = entries
            .iter()
            .filter(|d| d.digest == descriptor.digest)
            .collect();
        let mut references: Vec<String> = same
            .iter()
            .filter_map(|d| d.annotation(REF_NAME).map(str::to_string))
            .collect();
        references.sort();
        let size = same
            .iter()
            .find_map(|d| d.annotation(SIZE_ANNOTATION)?.parse().ok())
            .unwrap_or(0);
        let original_manifest = same
            .iter()
            .chain([&descriptor])
            .find_map(|d| self.original_of(d));
        Ok(Image {
            references,
            manifest_digest: descriptor.digest.clone(),
            manifest_media_type: descriptor.media_type.clone(),
            original_manifest,
            repo_digests: repo_digests(&same),
            config_digest: manifest.config.digest.clone(),
            manifest,
            config,
            layers,
            size,
        })
    }

    /// The original manifest an index.json entry records (see [`ORIGINAL_MANIFEST`]), if
    /// its blob is here.
    fn original_of(&self, entry: &Descriptor) -> Option<Descriptor> {
        let digest = Digest::parse(entry.annotation(ORIGINAL_MANIFEST)?).ok()?;
        let size = fs::metadata(self.blob_path(&digest)).ok()?.len();
        let media_type = entry
            .annotation(ORIGINAL_MEDIA_TYPE)
            .unwrap_or(manifest::DOCKER_MANIFEST);
        Some(Descriptor::new(media_type, digest, size))
    }

    /// Finds an image by reference (`busybox`, `127.0.0.1:5055/a/b:tag`, `name@sha256:..`),
    /// by image ID (`sha256:<64 hex>`) or by a unique prefix of its ID (`3f57d9401f8d`).
    pub fn resolve(&self, input: &str) -> Result<Option<Image>, Error> {
        let entries = self.entries()?;
        // A full ID first, then a name, then an ID prefix: docker's order.
        let id = input.strip_prefix("sha256:").unwrap_or(input);
        let looks_like_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_id
            && id.len() == 64
            && let Some(img) = self.find_by_id(&entries, id, input)?
        {
            return Ok(Some(img));
        }
        if let Ok(r) = Reference::parse(input)
            && let Some(d) = entries
                .iter()
                .find(|d| d.annotation(REF_NAME) == Some(r.store_name().as_str()))
        {
            return self.load(d).map(Some);
        }
        if looks_like_id && id.len() < 64 {
            return self.find_by_id(&entries, id, input);
        }
        Ok(None)
    }

    fn find_by_id(
        &self,
        entries: &[Descriptor],
        prefix: &str,
        input: &str,
    ) -> Result<Option<Image>, Error> {
        let mut found: Option<Image> = None;
        let mut seen = BTreeSet::new();
        for d in entries {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let img = self.load(d)?;
            if img.config_digest.hex().starts_with(prefix) {
                if let Some(f) = &found
                    && f.config_digest != img.config_digest
                {
                    return Err(Error::Usage(format!(
                        "{input:?} is the start of more than one image ID"
                    )));
                }
                found = Some(img);
            }
        }
        Ok(found)
    }

    /// Every image name in the store, with its image (one entry per name, sorted).
    pub fn list(&self) -> Result<Vec<(String, Image)>, Error> {
        let mut out = Vec::new();
        for d in self.entries()? {
            let name = d.annotation(REF_NAME).unwrap_or("").to_string();
            out.push((name, self.load(&d)?));
        }
        Ok(out)
    }

    /// `tag SRC DST`: names the image `source` resolves to `target` as well.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<Image, Error> {
        let image = self
            .resolve(source)?
            .ok_or_else(|| Error::NoSuchImage(source.to_string()))?;
        let name = target.store_name();
        let entry = self
            .entries()?
            .into_iter()
            .find(|d| d.digest == image.manifest_digest)
            .ok_or_else(|| Error::NoSuchImage(source.to_string()))?;
        let mut descriptor = entry;
        if let Some(a) = descriptor.annotations.as_mut() {
            a.remove(REF_NAME);
            // The new name's repository never served this image: no registry digest for
            // it (docker's RepoDigests do not grow with `docker tag` either).
            a.remove(REGISTRY_DIGEST);
        }
        self.set_name(&name, &descriptor)?;
        Ok(image)
    }

    /// `rmi`: removes a name (or, given an image ID, every name of that image), then
    /// collects what no name and no pin needs any more.
    pub fn remove(&self, input: &str) -> Result<Removed, Error> {
        let image = self
            .resolve(input)?
            .ok_or_else(|| Error::NoSuchImage(input.to_string()))?;
        let by_name = Reference::parse(input)
            .ok()
            .map(|r| r.store_name())
            .filter(|n| image.references.contains(n));
        let untagged = {
            let _lock = self.lock()?;
            let mut index = self.read_index()?;
            let mut untagged = Vec::new();
            let mut dropped = None;
            index.manifests.retain(|d| {
                let name = d.annotation(REF_NAME).unwrap_or("").to_string();
                let drop = match &by_name {
                    Some(n) => &name == n,
                    None => d.digest == image.manifest_digest,
                };
                if drop {
                    if !name.is_empty() {
                        untagged.push(name);
                    }
                    dropped = Some(d.clone());
                }
                !drop
            });
            // An image a container still uses (a pin) stays listed without a name, as
            // docker shows it after `rmi -f`; its blobs stay either way.
            if let Some(d) = dropped
                && !index.manifests.iter().any(|e| e.digest == d.digest)
                && self.pinned(&d.digest)?
            {
                index.manifests.push(unnamed(&d));
                sort_entries(&mut index.manifests);
            }
            self.write_index(&index)?;
            untagged
        };
        let gc = self.gc()?;
        Ok(Removed { untagged, gc })
    }

    // ----------------------------------------------------------------------------------
    // Pins and garbage collection
    // ----------------------------------------------------------------------------------

    /// Keeps `manifest` (and its blobs and layers) even when no name points at it, until
    /// [`Store::unpin`]: mini-docker pins the image of each container.
    pub fn pin(&self, name: &str, manifest: &Digest) -> Result<(), Error> {
        check_pin_name(name)?;
        let _lock = self.lock()?;
        let path = self.root.join("pins").join(name);
        let mut lines = read_lines(&path);
        if !lines.contains(&manifest.to_string()) {
            lines.push(manifest.to_string());
        }
        self.write_atomic(&path, (lines.join("\n") + "\n").as_bytes())
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
            self.write_atomic(&path, (lines.join("\n") + "\n").as_bytes())
        }
    }

    /// Whether a pin (not a lease) holds `manifest`.
    fn pinned(&self, manifest: &Digest) -> Result<bool, Error> {
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

    /// Deletes every blob and extracted layer that no index.json entry, pin or live lease
    /// needs, and temp files of processes that are gone. Mark and sweep, under the lock.
    pub fn gc(&self) -> Result<Collected, Error> {
        let _lock = self.lock()?;
        // Mark: the roots, then what each manifest (or index) names, then the config's diff-ids.
        let mut roots: Vec<Digest> = Vec::new();
        for d in self.read_index()?.manifests {
            // A converted image's original manifest is kept with it: `pull` compares it,
            // and it is the document the registry's digest is over.
            if let Some(Ok(original)) = d.annotation(ORIGINAL_MANIFEST).map(Digest::parse) {
                roots.push(original);
            }
            roots.push(d.digest);
        }
        let pins = self.root.join("pins");
        for e in fs::read_dir(&pins).map_err(|e| Error::io("read", &pins, e))? {
            let e = e.map_err(|e| Error::io("read", &pins, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".lease-") && !owner_alive(&name) {
                let _ = fs::remove_file(e.path());
                continue;
            }
            if name.contains(".tmp-") {
                if !owner_alive(name.rsplit(".tmp-").next().unwrap_or("")) {
                    let _ = fs::remove_file(e.path());
                }
                continue;
            }
            roots.extend(
                read_lines(&e.path())
                    .iter()
                    .filter_map(|l| Digest::parse(l).ok()),
            );
        }
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        while let Some(d) = roots.pop() {
            if !keep_blobs.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = fs::read(self.blob_path(&d)) else {
                continue;
            };
            match manifest::parse(&bytes, None) {
                Ok((Parsed::Image(m), _)) => {
                    keep_blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
                    keep_blobs.insert(m.config.digest.clone());
                    if let Ok(c) = fs::read(self.blob_path(&m.config.digest))
                        && let Ok(c) = serde_json::from_slice::<ImageConfiguration>(&c)
                    {
                        keep_layers.extend(
                            c.rootfs()
                                .diff_ids()
                                .iter()
                                .filter_map(|d| Digest::parse(d).ok()),
                        );
                    }
                }
                Ok((Parsed::Index(i), _)) => {
                    roots.extend(i.manifests.into_iter().map(|m| m.digest))
                }
                Err(_) => {} // a config or layer someone pinned directly
            }
        }
        // Sweep.
        let mut collected = Collected::default();
        let blobs = self.blobs_dir();
        for e in fs::read_dir(&blobs).map_err(|e| Error::io("read", &blobs, e))? {
            let e = e.map_err(|e| Error::io("read", &blobs, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::parse(&format!("sha256:{name}")) else {
                continue;
            };
            if !keep_blobs.contains(&d) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(|err| Error::io("remove", &e.path(), err))?;
                collected.bytes += size;
                collected.blobs.push(d);
            }
        }
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers).map_err(|e| Error::io("read", &layers, e))? {
            let e = e.map_err(|e| Error::io("read", &layers, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let doomed = match Digest::parse(&format!("sha256:{name}")) {
                Ok(d) if !keep_layers.contains(&d) => {
                    collected.layers.push(d);
                    true
                }
                Ok(_) => false,
                Err(_) => name.starts_with(".tmp-") && !owner_alive(&name),
            };
            if doomed {
                remove_tree(&e.path())?;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp)
            .map_err(|e| Error::io("read", &tmp, e))?
            .flatten()
        {
            if !owner_alive(&e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }
        collected.blobs.sort();
        collected.layers.sort();
        Ok(collected)
    }

    // ----------------------------------------------------------------------------------
    // Writing images (import, commit, build)
    // ----------------------------------------------------------------------------------

    /// Writes an image from a config and layers already in the store (see
    /// [`Store::put_blob`]): checks each layer's diff-id against the config (and counts
    /// its uncompressed size), writes the config and an OCI manifest, and names it
    /// `reference` (or lists it unnamed, a dangling image). Returns the manifest's digest.
    pub fn put_image(
        &self,
        config_json: &[u8],
        layers: &[NewLayer],
        reference: Option<&Reference>,
    ) -> Result<Digest, Error> {
        let config: ImageConfiguration = serde_json::from_slice(config_json)
            .map_err(|e| Error::Usage(format!("the image config is not valid: {e}")))?;
        let diff_ids: Vec<&String> = config.rootfs().diff_ids().iter().collect();
        if diff_ids.len() != layers.len()
            || diff_ids
                .iter()
                .zip(layers)
                .any(|(c, l)| **c != l.diff_id.to_string())
        {
            return Err(Error::Usage(format!(
                "the config's rootfs.diff_ids do not match the {} layers given",
                layers.len()
            )));
        }
        let mut size = 0;
        for l in layers {
            // Extracting checks the diff-id, and leaves the image ready to run.
            let dir = self.extract_layer(&Layer {
                digest: l.descriptor.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.descriptor.size,
                media_type: l.descriptor.media_type.clone(),
            })?;
            size += dir_size(&dir)?;
        }
        let (config_digest, config_size) = self.put_blob(&mut &config_json[..], None)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(manifest::OCI_CONFIG, config_digest, config_size),
            layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
            annotations: None,
        };
        let stored = self.put_manifest(&manifest)?;
        match reference {
            Some(r) => self.name_image(r, stored.clone(), size).map(drop)?,
            None => self.add_unnamed(&stored, size)?,
        }
        Ok(stored.digest)
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

    /// Names a complete image (every blob present): the last step of pull, import and
    /// commit. `manifest` is the index.json entry to write, with any annotations of ours
    /// (the original manifest, the registry's digest); its uncompressed size is added.
    /// Ends this store's lease. Returns the manifest the name pointed at before, if any.
    pub fn name_image(
        &self,
        reference: &Reference,
        manifest: Descriptor,
        uncompressed: u64,
    ) -> Result<Option<Digest>, Error> {
        let mut d = manifest;
        d.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SIZE_ANNOTATION.to_string(), uncompressed.to_string());
        let before = self.set_name(&reference.store_name(), &d)?;
        self.release();
        Ok(before)
    }

    // ----------------------------------------------------------------------------------
    // Layers
    // ----------------------------------------------------------------------------------

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

impl Drop for Store {
    fn drop(&mut self) {
        self.release();
    }
}

/// An index.json entry without a name for the image `entry` lists: no `ref.name`, and no
/// registry digest, which belongs to the repository of a name.
fn unnamed(entry: &Descriptor) -> Descriptor {
    let mut d = entry.clone();
    d.platform = None;
    if let Some(a) = d.annotations.as_mut() {
        a.remove(REF_NAME);
        a.remove(REGISTRY_DIGEST);
    }
    d
}

/// index.json's order: named entries by name, then unnamed ones by digest.
fn sort_entries(entries: &mut [Descriptor]) {
    entries.sort_by(|a, b| {
        let key = |d: &Descriptor| {
            (
                d.annotation(REF_NAME).is_none(),
                d.annotation(REF_NAME).map(str::to_string),
                d.digest.to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
}

fn empty_index() -> Index {
    Index {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: None,
    }
}

/// docker's RepoDigests from the index.json entries of one image: `REPOSITORY@DIGEST` for
/// each entry that records the registry's digest, and each name that is itself a digest
/// reference. Sorted, without duplicates.
fn repo_digests(entries: &[&Descriptor]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for e in entries {
        let Some(Ok(r)) = e.annotation(REF_NAME).map(Reference::parse) else {
            continue;
        };
        if let Some(d) = &r.digest {
            out.insert(format!("{}@{d}", r.name()));
        }
        if let Some(Ok(d)) = e.annotation(REGISTRY_DIGEST).map(Digest::parse) {
            out.insert(format!("{}@{d}", r.name()));
        }
    }
    out.into_iter().collect()
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_blob(store: &Store, files: &[(&str, &str)]) -> (Descriptor, Digest) {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_bytes())).collect();
        let (gz, diff_id, _) = crate::fixtures::gzip_layer(&files);
        let (d, size) = store.put_blob(&mut &gz[..], None).unwrap();
        (Descriptor::new(manifest::OCI_LAYER_GZIP, d, size), diff_id)
    }

    fn config(diff_ids: &[&Digest]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    fn image(store: &Store, name: &str, files: &[(&str, &str)]) -> Digest {
        let (desc, diff_id) = layer_blob(store, files);
        let r = Reference::parse(name).unwrap();
        store
            .put_image(
                &config(&[&diff_id]),
                &[NewLayer {
                    descriptor: desc,
                    diff_id,
                }],
                Some(&r),
            )
            .unwrap()
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let want = Digest::of(b"good");
        let err = store
            .write_blob(&mut &b"evil"[..], Some(&want), Some(4))
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let err = store
            .write_blob(&mut &b"goodandmore"[..], Some(&want), Some(4))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("blob {want}: size mismatch: expected 4 bytes, got more than 4")
        );
        assert!(!store.has_blob(&want));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
        store
            .write_blob(&mut &b"good"[..], Some(&want), Some(4))
            .unwrap();
        assert!(store.has_blob(&want));
    }

    #[test]
    fn images_are_named_resolved_tagged_and_removed_with_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m1 = image(&store, "one", &[("a", "1")]);
        let m2 = image(&store, "localhost:5000/two:v1", &[("b", "2")]);
        let one = store.resolve("one").unwrap().unwrap();
        assert_eq!(one.manifest_digest, m1);
        assert_eq!(one.references, vec!["docker.io/library/one:latest"]);
        assert!(one.size > 0);
        let by_id = store
            .resolve(&one.config_digest.hex()[..12])
            .unwrap()
            .unwrap();
        assert_eq!(by_id.manifest_digest, m1);
        assert_eq!(
            store
                .resolve(&one.config_digest.to_string())
                .unwrap()
                .unwrap()
                .manifest_digest,
            m1
        );
        assert!(store.resolve("three").unwrap().is_none());
        store
            .tag("one", &Reference::parse("one:again").unwrap())
            .unwrap();
        let one = store.resolve("one:again").unwrap().unwrap();
        assert_eq!(one.references.len(), 2);
        assert_eq!(one.size, store.resolve("one").unwrap().unwrap().size);

        // Removing one of two names deletes nothing else.
        let removed = store.remove("one").unwrap();
        assert_eq!(removed.untagged, vec!["docker.io/library/one:latest"]);
        assert!(removed.gc.blobs.is_empty());
        // Removing the last name deletes manifest, config and layer blobs; two stays whole.
        let removed = store.remove("one:again").unwrap();
        assert_eq!(removed.gc.blobs.len(), 3, "{removed:?}");
        assert!(!store.has_blob(&m1));
        let two = store.resolve("localhost:5000/two:v1").unwrap().unwrap();
        assert_eq!(two.manifest_digest, m2);
        for l in &two.layers {
            assert!(store.has_blob(&l.digest));
        }
    }

    #[test]
    fn a_name_that_moves_leaves_a_dangling_image_and_unnamed_images_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = image(&store, "app", &[("f", "1")]);
        let second = image(&store, "app", &[("f", "2")]);
        let list = store.list().unwrap();
        let names: Vec<(&str, &Digest)> = list
            .iter()
            .map(|(n, i)| (n.as_str(), &i.manifest_digest))
            .collect();
        assert_eq!(
            names,
            [("docker.io/library/app:latest", &second), ("", &first)],
            "the old image stays, unnamed, listed after the named ones"
        );
        // Named again (by ID), it is no longer dangling: one entry per image.
        let id = list[1].1.id().to_string();
        store
            .tag(&id, &Reference::parse("app:old").unwrap())
            .unwrap();
        assert!(store.list().unwrap().iter().all(|(n, _)| !n.is_empty()));
        // add_unnamed lists an image once, and not at all if a name has it.
        let entry = store.entry("docker.io/library/app:old").unwrap().unwrap();
        store.add_unnamed(&entry, 1).unwrap();
        assert_eq!(store.list().unwrap().len(), 2);
        let (desc, diff_id) = layer_blob(&store, &[("g", "3")]);
        let layers = [NewLayer {
            descriptor: desc,
            diff_id: diff_id.clone(),
        }];
        let third = store
            .put_image(&config(&[&diff_id]), &layers, None)
            .unwrap();
        let again = store
            .put_image(&config(&[&diff_id]), &layers, None)
            .unwrap();
        assert_eq!(third, again);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            (list[2].0.as_str(), &list[2].1.manifest_digest),
            ("", &third)
        );
        assert!(store.has_blob(&first));
    }

    #[test]
    fn pins_and_live_leases_keep_blobs_that_no_name_needs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = image(&store, "pinned", &[("p", "1")]);
        store.pin("container-1", &m).unwrap();
        store.remove("pinned").unwrap();
        assert!(store.has_blob(&m), "the pin keeps it");
        // ...and keeps it listed, without a name (docker's image after `rmi -f`).
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0, "");
        store.unpin("container-1", &m).unwrap();
        assert!(store.gc().unwrap().blobs.is_empty(), "listed: kept");
        let id = list[0].1.id().to_string();
        let removed = store.remove(&id).unwrap();
        assert!(removed.untagged.is_empty());
        assert_eq!(removed.gc.blobs.len(), 3);
        assert!(store.list().unwrap().is_empty());

        // A blob written but not yet named survives another process's GC (our lease)...
        let (d, _) = store.put_blob(&mut &b"in progress"[..], None).unwrap();
        let other = Store::open(dir.path()).unwrap();
        assert!(other.gc().unwrap().blobs.is_empty());
        assert!(store.has_blob(&d));
        // ...until the lease ends; a dead process's lease does not count.
        fs::write(dir.path().join("pins/.lease-999999999-0"), format!("{d}\n")).unwrap();
        drop(store);
        assert_eq!(other.gc().unwrap().blobs, vec![d]);
        assert!(!dir.path().join("pins/.lease-999999999-0").exists());
    }

    #[test]
    fn repo_digests_are_the_registrys_and_do_not_follow_a_tag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = image(&store, "127.0.0.1:5000/a:1", &[("f", "1")]);
        let pulled_as = Digest::of(b"the registry's index");
        let mut entry = store.entry("127.0.0.1:5000/a:1").unwrap().unwrap();
        entry.annotations = Some(BTreeMap::from([(
            REGISTRY_DIGEST.to_string(),
            pulled_as.to_string(),
        )]));
        store
            .name_image(&Reference::parse("127.0.0.1:5000/a:1").unwrap(), entry, 7)
            .unwrap();
        store
            .tag("127.0.0.1:5000/a:1", &Reference::parse("b:2").unwrap())
            .unwrap();
        let by_digest = Reference::parse(&format!("127.0.0.1:5000/a@{m}")).unwrap();
        store.tag("b:2", &by_digest).unwrap();
        let img = store.resolve("b:2").unwrap().unwrap();
        assert_eq!(
            img.repo_digests,
            vec![
                format!("127.0.0.1:5000/a@{m}"),
                format!("127.0.0.1:5000/a@{pulled_as}"),
            ]
        );
        assert_eq!(img.size, 7);
        assert_eq!(img.original_manifest, None);
        assert_eq!(img.original_digest(), &m);
        let shown = crate::images::inspect(&img, b"{}", b"{}");
        assert_eq!(
            shown["RepoTags"],
            serde_json::json!(["127.0.0.1:5000/a:1", "b:2"])
        );
        assert_eq!(shown["OriginalManifest"], serde_json::Value::Null);
    }

    #[test]
    fn commit_names_a_blob_and_its_layer_together_and_a_lost_race_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let diff_id = Digest::of(b"tar");
        let mut w = store.blob_writer(None, Some(4)).unwrap();
        w.write(b"blob").unwrap();
        let blob = w.finish().unwrap();
        let layer = store.temp_layer(&diff_id).unwrap();
        fs::write(layer.path().join("ours"), "1").unwrap();
        let digest = blob.digest.clone();
        store.commit(Some(blob), Some(layer), false).unwrap();
        assert!(store.has_blob(&digest));
        assert!(store.layer_path(&diff_id).join("ours").is_file());
        // Another extraction of the same diff-id: the first one stays, the second goes.
        let layer = store.temp_layer(&diff_id).unwrap();
        fs::write(layer.path().join("theirs"), "2").unwrap();
        store.commit(None, Some(layer), false).unwrap();
        assert!(!store.layer_path(&diff_id).join("theirs").exists());
        // Dropped before commit: nothing left behind.
        let mut w = store.blob_writer(None, None).unwrap();
        w.write(b"half").unwrap();
        drop(w);
        drop(store.temp_layer(&diff_id).unwrap());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 1);
    }

    #[test]
    fn the_layout_is_an_oci_image_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        image(&store, "127.0.0.1:5055/a/b:tag", &[("x", "y")]);
        let layout = fs::read_to_string(dir.path().join("images/oci-layout")).unwrap();
        assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("images/index.json")).unwrap())
                .unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME],
            "127.0.0.1:5055/a/b:tag"
        );
        assert_eq!(index["manifests"][0]["mediaType"], manifest::OCI_MANIFEST);
    }
}
