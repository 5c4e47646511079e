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
//! The store is in five parts. The first is the chapter's lesson; the others are what
//! mini-docker (containers pin their images, `rmi`, `image prune`) and later chapters (a
//! build's unnamed images) need from a store that lives for years:
//!
//! * `layout.rs`, **content before names**: a blob is written to `tmp/`, verified against
//!   its digest, fsynced, and only then renamed into `blobs/` (a layer's directory with it,
//!   once its diff-id is verified too: [`Store::commit`]); `index.json`, the only thing
//!   that names images, changes last, atomically ([`atomic_write`]). A command killed at
//!   any moment leaves at worst a stray temp file, and never a listed image with a missing
//!   blob. An exclusive `flock` on `ROOT/lock` is held around every `index.json`
//!   read-modify-write, every rename into `blobs/` or `layers/`, and garbage collection;
//!   downloads themselves run unlocked, in parallel, even across processes.
//! * `names.rs`: what index.json says: naming, tagging, resolving and removing images,
//!   and dangling images (an image whose name moved on stays listed without one, as
//!   docker's `<none>:<none>`).
//! * `leases.rs`: what must be kept although no name needs it. While a command writes an
//!   image, the digests it is working on are listed in `pins/.lease-PID-N` (a lease), so a
//!   garbage collection in another process keeps its blobs although no tag names them yet;
//!   a lease whose process is gone is ignored. `pins/NAME` (a pin) keeps the image of a
//!   container.
//! * `gc.rs`: mark and sweep, from the names, pins and leases.
//! * `files.rs`: the file helpers: [`atomic_write`], [`dir_size`], [`remove_tree`].
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::image::ImageConfiguration;

use crate::Error;
use crate::manifest::{Descriptor, Manifest};
use crate::reference::Digest;

mod files;
mod gc;
mod layout;
mod leases;
mod names;
#[cfg(test)]
mod tests;

pub use files::{
    Durability, atomic_write, atomic_write_as, atomic_write_volatile, atomic_write_with_mode,
    dir_size, remove_tree, sweep_dead_temp_files,
};
pub use gc::Collected;
pub use layout::{BlobWriter, TempLayer, VerifiedBlob};
pub use names::Removed;

pub(crate) use files::unique as unique_name;

use layout::empty_index;
use leases::Lease;

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

impl From<&Layer> for NewLayer {
    /// A layer of an image already in the store, for another image (`commit`, a build).
    fn from(l: &Layer) -> NewLayer {
        NewLayer {
            descriptor: Descriptor::new(&l.media_type, l.digest.clone(), l.size),
            diff_id: l.diff_id.clone(),
        }
    }
}

/// The store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    lease: Mutex<Lease>,
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
            files::write_file(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
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
}

impl Drop for Store {
    fn drop(&mut self) {
        self.release();
    }
}
