//! Layers: from a compressed blob to a directory, checked against the config's diff-id.
//!
//! A manifest names each layer by the digest of its *compressed* blob; the image config
//! names it by its *diff-id*, the digest of the uncompressed tar (image-spec config.md,
//! `rootfs.diff_ids`). Both are checked: the blob's digest when it is downloaded, the
//! diff-id while it is decompressed, in one streaming pass that also extracts it with
//! chapter 4's `apply` (overlay whiteouts, for use as an overlayfs lower directory).
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ch04_unionfs_layers::apply::{ApplyOptions, apply};
use sha2::Digest as _;

use crate::Error;
use crate::manifest::{Compression, layer_compression};
use crate::reference::Digest;
use crate::store::Store;

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R> std::fmt::Debug for Hashing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hashing({} bytes)", self.count)
    }
}

impl<R: Read> Hashing<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    /// Reads what is left (tar's zero blocks, padding) so that the digest covers it all.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// The digest and length of everything read.
    pub fn finish(self) -> (Digest, u64) {
        (
            Digest::from_hash(self.hasher.finalize().as_slice()),
            self.count,
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The uncompressed tar stream of a layer blob.
pub fn decompress(blob: &Path, media_type: &str) -> Result<Box<dyn Read>, Error> {
    let file = File::open(blob).map_err(|e| Error::io("open", blob, e))?;
    let reader = BufReader::with_capacity(256 << 10, file);
    match layer_compression(media_type) {
        // Multi-member: pigz and some builders write several gzip members per layer.
        Some(Compression::Gzip) => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader))),
        Some(Compression::None) => Ok(Box::new(reader)),
        Some(Compression::Zstd) => Err(Error::Unsupported(format!(
            "layer {}: zstd-compressed layers ({media_type}) are not supported by this chapter",
            blob.display()
        ))),
        None => Err(Error::Unsupported(format!(
            "layer {}: unknown layer media type {media_type:?}",
            blob.display()
        ))),
    }
}

/// Decompresses a layer blob, extracts it into `target` if given, and checks that the
/// uncompressed stream's digest is `diff_id`. Returns the uncompressed size.
pub fn unpack(
    blob: &Path,
    media_type: &str,
    diff_id: &Digest,
    target: Option<&Path>,
) -> Result<u64, Error> {
    let mut tar = Hashing::new(decompress(blob, media_type)?);
    let read_error = |e: io::Error| Error::Layer {
        blob: blob.to_path_buf(),
        problem: format!("decompressing: {e}"),
    };
    if let Some(dir) = target {
        apply(&mut tar, dir, &ApplyOptions::layer()).map_err(|e| Error::Layer {
            blob: blob.to_path_buf(),
            problem: format!("extracting: {e}"),
        })?;
    }
    tar.drain().map_err(read_error)?;
    let (actual, size) = tar.finish();
    if actual != *diff_id {
        return Err(Error::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(size)
}

/// Checks a stored layer blob against its diff-id without extracting it.
pub fn verify(
    store: &Store,
    digest: &Digest,
    media_type: &str,
    diff_id: &Digest,
) -> Result<u64, Error> {
    unpack(&store.blob_path(digest), media_type, diff_id, None)
}
