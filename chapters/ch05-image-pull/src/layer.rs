//! Layers: from a compressed stream to a directory, checked against the config's diff-id.
//!
//! A manifest names each layer by the digest of its *compressed* blob; the image config
//! names it by its *diff-id*, the digest of the uncompressed tar (image-spec config.md,
//! `rootfs.diff_ids`). Both are checked. The diff-id is checked while the layer is
//! decompressed, in one streaming pass that also extracts it with chapter 4's `apply`
//! (overlay whiteouts, for use as an overlayfs lower directory).
//!
//! That pass can read a stored blob ([`unpack`]) or the download itself: `pull` hands the
//! bytes it receives to an extraction thread through a [`pipe`], so a layer is unpacked
//! while it downloads instead of being read back from disk afterwards. The pipe is
//! bounded (a few chunks in flight, whatever the layer's size) and copies nothing: the
//! chunks themselves go to the extraction thread and come back empty to be refilled.
//!
//! This module works on paths and streams and knows nothing of the store: the store calls
//! it (to extract a stored blob), never the other way round.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};

use ch04_unionfs_layers::apply::{ApplyOptions, apply};
use sha2::Digest as _;

use crate::Error;
use crate::manifest::{Compression, layer_compression};
use crate::reference::Digest;

/// How much decompressed tar is produced per call into the decompressor: large calls
/// amortise its per-call cost, and the tar reader's small reads are served from memory.
const TAR_BUFFER: usize = 256 << 10;

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

/// The uncompressed tar stream of a compressed layer stream; `what` names the layer in
/// errors.
pub fn decompress_stream<'r>(
    compressed: impl BufRead + Send + 'r,
    media_type: &str,
    what: &str,
) -> Result<Box<dyn Read + Send + 'r>, Error> {
    match layer_compression(media_type) {
        // Multi-member: pigz and some builders write several gzip members per layer.
        Some(Compression::Gzip) => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(compressed))),
        Some(Compression::None) => Ok(Box::new(compressed)),
        Some(Compression::Zstd) => Ok(Box::new(ZstdFrames::new(compressed))),
        None => Err(Error::Unsupported(format!(
            "layer {what}: unknown layer media type {media_type:?}"
        ))),
    }
}

/// The uncompressed tar stream of a stored layer blob.
pub fn decompress(blob: &Path, media_type: &str) -> Result<Box<dyn Read>, Error> {
    let file = File::open(blob).map_err(|e| Error::io("open", blob, e))?;
    let reader = BufReader::with_capacity(256 << 10, file);
    let stream = decompress_stream(reader, media_type, &blob.display().to_string())?;
    Ok(stream)
}

/// Decompresses a layer stream, extracts it into `target` if given, and checks that the
/// uncompressed stream's digest is `diff_id`. Reads `compressed` to its end whatever the
/// tar holds, so that the digest covers every byte. Returns the uncompressed size; `what`
/// names the layer in errors.
pub fn unpack_stream(
    compressed: impl BufRead + Send,
    media_type: &str,
    diff_id: &Digest,
    target: Option<&Path>,
    what: &str,
) -> Result<u64, Error> {
    let failed = |doing: &str, e: &dyn std::fmt::Display| Error::Layer {
        layer: what.to_string(),
        problem: format!("{doing}: {e}"),
    };
    // Hashed as it leaves the decompressor, in big reads; the tar reader's 512-byte header
    // reads come out of the buffer above it.
    let mut tar = BufReader::with_capacity(
        TAR_BUFFER,
        Hashing::new(decompress_stream(compressed, media_type, what)?),
    );
    if let Some(dir) = target {
        apply(&mut tar, dir, &ApplyOptions::layer()).map_err(|e| failed("extracting", &e))?;
    }
    // What the tar reader left (its end-of-archive blocks, padding) counts too.
    io::copy(&mut tar, &mut io::sink()).map_err(|e| failed("decompressing", &e))?;
    let (actual, size) = tar.into_inner().finish();
    if actual != *diff_id {
        return Err(Error::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(size)
}

/// Decompresses a stored layer blob, extracts it into `target` if given, and checks that
/// the uncompressed stream's digest is `diff_id`. Returns the uncompressed size.
pub fn unpack(
    blob: &Path,
    media_type: &str,
    diff_id: &Digest,
    target: Option<&Path>,
) -> Result<u64, Error> {
    let file = File::open(blob).map_err(|e| Error::io("open", blob, e))?;
    let reader = BufReader::with_capacity(256 << 10, file);
    unpack_stream(
        reader,
        media_type,
        diff_id,
        target,
        &blob.display().to_string(),
    )
}

// ------------------------------------------------------------------------------------------
// The pipe between a download and its extraction.
// ------------------------------------------------------------------------------------------

/// A bounded pipe between two threads that moves chunks instead of copying bytes: `depth`
/// chunks of `chunk` bytes exist, and the writer waits for the reader to hand one back when
/// all are in flight (so memory stays flat however big the layer). If the reader goes away
/// (its extraction failed), the writer carries on alone with a chunk of its own: the
/// download is still checked to its end, because a blob that does not match its digest
/// explains an extraction error better than the error does.
pub fn pipe(depth: usize, chunk: usize) -> (ChunkWriter, ChunkReader) {
    let (full_tx, full_rx) = mpsc::sync_channel(depth.max(1));
    let (empty_tx, empty_rx) = mpsc::channel();
    (
        ChunkWriter {
            full: full_tx,
            empty: empty_rx,
            made: 0,
            depth: depth.max(1),
            chunk: chunk.max(1),
            spare: None,
        },
        ChunkReader {
            full: full_rx,
            empty: empty_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
        },
    )
}

/// The writing end of a [`pipe`]. Dropping it is the end of the stream.
#[derive(Debug)]
pub struct ChunkWriter {
    full: SyncSender<(Vec<u8>, usize)>,
    empty: Receiver<Vec<u8>>,
    made: usize,
    depth: usize,
    chunk: usize,
    spare: Option<Vec<u8>>,
}

impl ChunkWriter {
    /// A chunk to fill (its length is the chunk size): a new one while fewer than `depth`
    /// exist, else one the reader is done with, waiting for it if need be.
    pub fn chunk(&mut self) -> Vec<u8> {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        match self.empty.try_recv() {
            Ok(c) => return c,
            Err(TryRecvError::Empty) if self.made < self.depth => {
                self.made += 1;
                return vec![0; self.chunk];
            }
            Err(_) => {}
        }
        // All chunks are in flight: wait for one; if the reader is gone, make one.
        self.empty.recv().unwrap_or_else(|_| vec![0; self.chunk])
    }

    /// Passes the first `len` bytes of `chunk` to the reader. If the reader is gone, keeps
    /// the chunk for the next [`ChunkWriter::chunk`] and returns false.
    pub fn send(&mut self, chunk: Vec<u8>, len: usize) -> bool {
        match self.full.send((chunk, len)) {
            Ok(()) => true,
            Err(mpsc::SendError((chunk, _))) => {
                self.spare = Some(chunk);
                false
            }
        }
    }
}

/// The reading end of a [`pipe`]: a `BufRead` over the chunks, that ends when the writer
/// is dropped.
#[derive(Debug)]
pub struct ChunkReader {
    full: Receiver<(Vec<u8>, usize)>,
    empty: Sender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.len {
            let Ok((next, len)) = self.full.recv() else {
                return Ok(&[]); // the writer is done
            };
            let used = std::mem::replace(&mut self.current, next);
            if !used.is_empty() {
                // Back to the writer; if it is gone, the chunk is simply freed.
                let _ = self.empty.send(used);
            }
            self.len = len;
            self.pos = 0;
        }
        Ok(&self.current[self.pos..self.len])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.len);
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// A zstd stream as one `Read`: frame after frame (RFC 8878 §3.1: a stream may hold
/// several; containers/storage writes several), skippable frames skipped, each frame's
/// content checksum checked when it has one, until the input ends. ruzstd's
/// `FrameDecoder` decodes one frame at a time.
struct ZstdFrames<R: BufRead> {
    source: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        if buf.is_empty() {
            return Ok(0);
        }
        let zstd = |e: FrameDecoderError| std::io::Error::other(format!("zstd: {e}"));
        loop {
            if self.in_frame {
                let d = &mut self.decoder;
                while d.can_collect() < buf.len() && !d.is_finished() {
                    let want = buf.len() - d.can_collect();
                    d.decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(want))
                        .map_err(zstd)?;
                }
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                // The frame is done: its checksum, if it has one, must match.
                if let (Some(read), Some(computed)) =
                    (d.get_checksum_from_data(), d.get_calculated_checksum())
                    && read != computed
                {
                    return Err(std::io::Error::other(format!(
                        "zstd: content checksum {read:08x}, but the content hashes to {computed:08x}"
                    )));
                }
                self.in_frame = false;
            }
            if self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.decoder.init(&mut self.source) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    // A skippable frame (metadata, zstd:chunked's table of contents).
                    let skipped = std::io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut std::io::sink(),
                    )?;
                    if skipped < u64::from(length) {
                        return Err(std::io::Error::other("zstd: a skippable frame cut short"));
                    }
                }
                Err(e) => return Err(zstd(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::gzip_layer;

    #[test]
    fn zstd_streams_of_several_frames_and_skippable_frames_decompress_whole() {
        use ruzstd::encoding::{CompressionLevel, compress_to_vec};
        let a = b"the first frame's bytes, ".repeat(1000);
        let b = b"and the second's".repeat(700);
        let mut stream = compress_to_vec(&a[..], CompressionLevel::Fastest);
        // A skippable frame between them: magic 0x184D2A5?, length, payload.
        stream.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        stream.extend_from_slice(&5u32.to_le_bytes());
        stream.extend_from_slice(b"skip!");
        stream.extend_from_slice(&compress_to_vec(&b[..], CompressionLevel::Fastest));
        let mut out = Vec::new();
        decompress_stream(&stream[..], crate::manifest::OCI_LAYER_ZSTD, "test")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, [a, b].concat());
        // Damage is an error, not a short layer.
        let mut bad = compress_to_vec(&b"x".repeat(5000)[..], CompressionLevel::Fastest);
        bad.truncate(bad.len() / 2);
        let mut out = Vec::new();
        let err = decompress_stream(&bad[..], crate::manifest::OCI_LAYER_ZSTD, "test")
            .unwrap()
            .read_to_end(&mut out);
        assert!(err.is_err(), "{} bytes out of a cut stream", out.len());
    }

    /// Sends `bytes` through a pipe in pieces of `piece` bytes.
    fn through_pipe<T: Send>(
        bytes: &[u8],
        piece: usize,
        read: impl FnOnce(ChunkReader) -> T + Send,
    ) -> (T, usize) {
        let (mut w, r) = pipe(2, piece);
        std::thread::scope(|s| {
            let reader = s.spawn(move || read(r));
            let mut refused = 0;
            for part in bytes.chunks(piece) {
                let mut c = w.chunk();
                c[..part.len()].copy_from_slice(part);
                if !w.send(c, part.len()) {
                    refused += 1;
                }
            }
            drop(w);
            (reader.join().unwrap(), refused)
        })
    }

    #[test]
    fn the_pipe_delivers_every_byte_in_order_with_bounded_chunks() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (got, refused) = through_pipe(&bytes, 333, |mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        });
        assert_eq!(got, bytes);
        assert_eq!(refused, 0);
    }

    #[test]
    fn a_layer_streams_through_the_pipe_into_a_directory_and_is_checked() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 13) as u8).collect();
        let (gz, diff_id, tar_len) = gzip_layer(&[("a.txt", b"hello\n"), ("big", &big)]);
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_path_buf();
        let (r, _) = through_pipe(&gz, 4096, |r| {
            unpack_stream(
                r,
                crate::manifest::OCI_LAYER_GZIP,
                &diff_id,
                Some(&target),
                "x",
            )
        });
        assert_eq!(r.unwrap(), tar_len);
        assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), big);

        // The wrong diff-id: refused, after the whole stream was read.
        let wrong = Digest::of(b"not this layer");
        let (r, refused) = through_pipe(&gz, 4096, |r| {
            unpack_stream(r, crate::manifest::OCI_LAYER_GZIP, &wrong, None, "x")
        });
        assert_eq!(
            r.unwrap_err().to_string(),
            format!("layer with diff-id {wrong}: the uncompressed layer's sha256 is {diff_id}")
        );
        assert_eq!(refused, 0, "the reader read to the end");
    }

    #[test]
    fn when_the_extraction_fails_the_writer_carries_on_alone() {
        let garbage = vec![0x55u8; 200_000];
        let (r, refused) = through_pipe(&garbage, 1000, |r| {
            unpack_stream(
                r,
                crate::manifest::OCI_LAYER_GZIP,
                &Digest::of(b""),
                None,
                "sha256:abc",
            )
        });
        let err = r.unwrap_err().to_string();
        assert!(
            err.starts_with("layer sha256:abc: decompressing: "),
            "{err}"
        );
        assert!(refused > 0, "the writer noticed and kept going");
    }
}
