//! `pull`: the protocol of [`crate::story`] (read that first) as production code needs it.
//!
//! What this adds to the story: several layers at once, each unpacked *while* it downloads
//! instead of read back from disk (a bounded pipe between two threads, see
//! [`download_layer`]); retries of broken downloads (and, in [`Client`], of 429/5xx
//! answers and an expired token); blobs and layers already in the store skipped, so a
//! pull that was killed resumes where it stopped; the store's lease taken before a blob
//! lands, so that a garbage collection in another process keeps it; docker's status lines
//! and progress bars. The steps, in the order the protocol goes:
//!
//! 1. `GET /v2/`, and answer the challenge if there is one ([`connect`]);
//! 2. fetch the manifest the reference names ([`fetch_manifest`]);
//! 3. if it is an index, choose this platform's manifest and fetch that ([`choose_platform`]);
//! 4. keep the manifest as it came, and an OCI manifest of the same blobs when it is
//!    Docker's ([`store_manifest`]); fetch the config ([`fetch_config`]);
//! 5. fetch every layer not already here, in parallel, each extracted *while* it downloads
//!    and checked on the way ([`fetch_layers`], [`download_layer`]);
//! 6. only then give the image its name ([`name_image`]).
//!
//! Everything that can be checked is checked: a manifest pulled by digest against that
//! digest, every blob against the digest its descriptor gives, every layer's uncompressed
//! stream against the config's diff-id. A pull that fails or is killed leaves verified
//! blobs at most, never a name: the next pull finds the blobs and completes the image.
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::ImageConfiguration;

use crate::auth;
use crate::credentials::ConfigFiles;
use crate::layer::{self, ChunkWriter};
use crate::manifest::{self, Descriptor, Manifest, Parsed, Platform};
use crate::progress::{Item, Progress, Reporter};
use crate::reference::{Digest, Reference};
use crate::registry::Client;
use crate::store::{self, Image, Layer, Store, TempLayer, VerifiedBlob};
use crate::transport::{Response, Transport};
use crate::{Error, manifest_error};

/// How many layers download at once (docker's default, `max-concurrent-downloads`).
pub const PARALLEL: usize = 3;
/// The size of the chunks a download is read in and handed to its extraction.
const CHUNK: usize = 128 << 10;
/// How many chunks of one layer may be on their way from the download to the extraction:
/// with [`CHUNK`], at most 1 MiB per layer in memory, however big the layer.
const DEPTH: usize = 8;

/// Options of a pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to choose from an index (default: this machine's).
    pub platform: Option<Platform>,
    /// How to show progress.
    pub progress: Progress,
    /// Where credentials are.
    pub config: ConfigFiles,
}

/// A manifest as it came from the registry.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The raw bytes: the digest is over these.
    pub bytes: Vec<u8>,
    /// Their sha256.
    pub digest: Digest,
    /// The media type.
    pub media_type: String,
    /// Parsed.
    pub parsed: Parsed,
}

/// Pulls `reference` into `store` and returns the image. A pull that fails cleans up
/// after itself: what it downloaded and no image needs is collected again (a pull that is
/// killed cannot, and leaves verified blobs that the next pull reuses).
pub fn pull(
    store: &Store,
    transport: &dyn Transport,
    reference: &Reference,
    options: &PullOptions,
) -> Result<Image, Error> {
    let result = pull_story(store, transport, reference, options);
    if result.is_err() {
        store.release();
        let _ = store.gc();
    }
    result
}

fn pull_story(
    store: &Store,
    transport: &dyn Transport,
    reference: &Reference,
    options: &PullOptions,
) -> Result<Image, Error> {
    let out = Reporter::new(options.progress);
    // Docker names the repository's path in its registry, without the registry and with
    // Hub's `library/` kept: `Pulling from library/busybox` (moby, distribution/pull_v2.go,
    // `reference.Path`).
    out.line(&format!(
        "{}: Pulling from {}",
        reference.tag.as_deref().unwrap_or(&reference.manifest_id()),
        reference.repository
    ));
    let scopes = vec![auth::scope(&reference.repository, &["pull"])];
    let client = connect(transport, &options.config, reference, scopes, &out)?;
    let top = fetch_manifest(&client, reference, &reference.manifest_id())?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let image = choose_platform(&client, reference, &top, &wanted)?;
    let Parsed::Image(manifest) = &image.parsed else {
        unreachable!("choose_platform returns an image manifest")
    };
    let was = store
        .entry(&reference.store_name())?
        .map(|d| served_digest(&d));
    let stored = store_manifest(store, reference, &image)?;
    let config = fetch_config(&client, store, reference, manifest, &wanted)?;
    let layers = layers_of(manifest, &config)?;
    let uncompressed = fetch_layers(&client, store, reference, &layers, &out)?;
    name_image(store, reference, &top, &stored, uncompressed)?;
    // docker prints the digest the registry knows the tag by (an index's, for a
    // multi-platform image), whatever the store keeps.
    out.line(&format!("Digest: {}", top.digest));
    let status = if was.as_ref() == Some(&image.digest) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    out.line(&format!("Status: {status} {}", reference.familiar()));
    store
        .resolve(&reference.store_name())?
        .ok_or_else(|| Error::NoSuchImage(reference.to_string()))
}

/// Says hello to the registry and authenticates the way its `GET /v2/` answer asks, with
/// a token for `scopes` (token.md, "Requesting a Token"): every scope the command will
/// need, so that one token serves it.
pub fn connect<'t>(
    transport: &'t dyn Transport,
    config: &ConfigFiles,
    reference: &Reference,
    scopes: Vec<String>,
    out: &Reporter,
) -> Result<Client<'t>, Error> {
    let credentials = config.get(&reference.registry)?;
    // Retries are worth telling the user about, on stderr like the reporter's warnings.
    let _ = out;
    let client = Client::new(
        transport,
        reference,
        credentials,
        scopes,
        Arc::new(|m: &str| eprintln!("{m}")),
    );
    client.ping()?;
    Ok(client)
}

/// `GET /v2/NAME/manifests/ID` with an `Accept` header listing every type we read, and
/// checks the digest: against the reference when pulling by digest (the reason to pin
/// one), against the registry's `Docker-Content-Digest` otherwise (spec.md, "Pulling
/// manifests").
pub fn fetch_manifest(client: &Client, reference: &Reference, id: &str) -> Result<Fetched, Error> {
    let (bytes, content_type, header_digest) = client.get_manifest(&reference.repository, id)?;
    let digest = Digest::of(&bytes);
    let what = format!("manifest {id} of {}", reference.name());
    let expected = if id.starts_with("sha256:") {
        Some(Digest::parse(id).map_err(|p| manifest_error(&what, p))?)
    } else {
        header_digest.as_deref().and_then(|h| Digest::parse(h).ok())
    };
    if let Some(want) = expected
        && want != digest
    {
        return Err(Error::DigestMismatch {
            expected: want,
            actual: digest,
        });
    }
    let (parsed, media_type) =
        manifest::parse(&bytes, content_type.as_deref()).map_err(|p| manifest_error(&what, p))?;
    Ok(Fetched {
        bytes,
        digest,
        media_type,
        parsed,
    })
}

/// An index lists one manifest per platform (image-spec image-index.md): pick ours and
/// fetch it by digest, which also verifies it.
pub fn choose_platform(
    client: &Client,
    reference: &Reference,
    top: &Fetched,
    wanted: &Platform,
) -> Result<Fetched, Error> {
    match &top.parsed {
        Parsed::Image(_) => Ok(top.clone()),
        Parsed::Index(index) => {
            let what = reference.familiar();
            let chosen =
                manifest::select_platform(index, wanted).map_err(|p| manifest_error(&what, p))?;
            let fetched = fetch_manifest(client, reference, &chosen.digest.to_string())?;
            match fetched.parsed {
                Parsed::Image(_) => Ok(fetched),
                Parsed::Index(_) => Err(manifest_error(
                    &what,
                    "the index entry for this platform is another index".to_string(),
                )),
            }
        }
    }
}

/// The digest of the manifest an index.json entry was pulled as: the original's for a
/// converted image, else the entry's own.
fn served_digest(entry: &Descriptor) -> Digest {
    entry
        .annotation(store::ORIGINAL_MANIFEST)
        .and_then(|d| Digest::parse(d).ok())
        .unwrap_or_else(|| entry.digest.clone())
}

/// What the store keeps of a pulled manifest.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The manifest index.json will name: the registry's own if it is OCI, else the OCI
    /// manifest made from it.
    pub manifest: Descriptor,
    /// The registry's manifest, when it was converted.
    pub original: Option<Descriptor>,
}

/// Writes the manifest blob as the registry sent it (its digest is over those bytes), after
/// listing it in the store's lease so that a garbage collection running meanwhile keeps
/// everything it names. A Docker schema 2 manifest also gets its OCI form, the one the
/// image will be named by: OCI tools (skopeo's `oci:` transport, umoci) read only OCI
/// manifests from a layout, and the blobs are the same (image-spec media-types.md,
/// "Compatibility Matrix").
pub fn store_manifest(
    store: &Store,
    reference: &Reference,
    image: &Fetched,
) -> Result<Stored, Error> {
    store.protect(&image.digest)?;
    if !store.has_blob(&image.digest) {
        store.write_blob(
            &mut &image.bytes[..],
            Some(&image.digest),
            Some(image.bytes.len() as u64),
        )?;
    }
    let served = Descriptor::new(
        &image.media_type,
        image.digest.clone(),
        image.bytes.len() as u64,
    );
    let Parsed::Image(docker) = &image.parsed else {
        unreachable!("only image manifests are stored")
    };
    if image.media_type != manifest::DOCKER_MANIFEST {
        return Ok(Stored {
            manifest: served,
            original: None,
        });
    }
    let what = format!("manifest {} of {}", image.digest, reference.familiar());
    let oci = manifest::to_oci(docker).map_err(|p| manifest_error(&what, p))?;
    Ok(Stored {
        manifest: store.put_manifest(&oci)?,
        original: Some(served),
    })
}

/// Fetches the config blob (it is small, but verified like any blob) and checks that it
/// describes an image for the platform we asked for.
pub fn fetch_config(
    client: &Client,
    store: &Store,
    reference: &Reference,
    manifest: &Manifest,
    wanted: &Platform,
) -> Result<ImageConfiguration, Error> {
    let desc = &manifest.config;
    if !store.has_blob(&desc.digest) {
        download(client, store, reference, desc)?;
    }
    let bytes = store.read_blob(&desc.digest)?;
    let config: ImageConfiguration = serde_json::from_slice(&bytes).map_err(|e| {
        manifest_error(
            &format!("config {} of {}", desc.digest, reference.familiar()),
            format!("not an image config: {e}"),
        )
    })?;
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    if os != wanted.os || arch != wanted.architecture {
        return Err(manifest_error(
            &reference.familiar(),
            format!(
                "the image is for {os}/{arch}, not for {wanted} (use --platform {os}/{arch} to pull it anyway)"
            ),
        ));
    }
    Ok(config)
}

/// Pairs each layer descriptor with the diff-id the config gives it.
pub fn layers_of(manifest: &Manifest, config: &ImageConfiguration) -> Result<Vec<Layer>, Error> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        return Err(manifest_error(
            "image",
            format!(
                "the config lists {} diff-ids for {} layers",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }
    manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(l, d)| {
            Ok(Layer {
                digest: l.digest.clone(),
                diff_id: Digest::parse(d).map_err(|p| manifest_error("config", p))?,
                size: l.size,
                media_type: l.media_type.clone(),
            })
        })
        .collect()
}

/// Downloads the layers the store lacks, [`PARALLEL`] at a time, each extracted while it
/// downloads (see [`download_layer`]), once per diff-id. Every thread is joined before this
/// returns (`thread::scope`): mini-docker clones containers right after a pull, from a
/// process that must be single-threaded. Returns the image's uncompressed size.
pub fn fetch_layers(
    client: &Client,
    store: &Store,
    reference: &Reference,
    layers: &[Layer],
    out: &Reporter,
) -> Result<u64, Error> {
    for l in layers {
        if manifest::layer_compression(&l.media_type).is_none() {
            return Err(Error::Unsupported(format!(
                "layer {} has media type {:?}, which is not a layer type this chapter knows",
                l.digest, l.media_type
            )));
        }
    }
    let items: Vec<_> = layers
        .iter()
        .map(|l| out.item(l.digest.short(), l.size))
        .collect();
    for (l, item) in layers.iter().zip(&items) {
        if store.has_blob(&l.digest) && store.layer_path(&l.diff_id).is_dir() {
            item.done("Already exists");
        } else {
            item.status("Pulling fs layer");
        }
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Result<u64, Error>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL.min(layers.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(layer) = layers.get(i) else { break };
                        let r = fetch_layer(client, store, reference, layer, &items[i]);
                        let failed = r.is_err();
                        done.push((i, r));
                        if failed {
                            // Stop taking work; the others finish what they started.
                            next.store(layers.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<u64, Error>)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("a download thread panicked"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// One layer: downloaded and extracted in one pass unless its blob is here; extracted
/// from the stored blob if only the directory is missing. Returns its extracted size.
fn fetch_layer(
    client: &Client,
    store: &Store,
    reference: &Reference,
    layer: &Layer,
    item: &Item<'_>,
) -> Result<u64, Error> {
    let dir = store.layer_path(&layer.diff_id);
    if !store.has_blob(&layer.digest) {
        download_layer(client, store, reference, layer, item)?;
        item.done("Pull complete");
    } else if !dir.is_dir() {
        // The blob came another way (an import, or a pull killed between its renames).
        item.set_message("Extracting");
        store.extract_layer(layer)?;
        item.done("Pull complete");
    }
    store::dir_size(&dir)
}

/// Streams one layer from the registry in a single pass. This thread reads the blob,
/// hashes it and writes it to `tmp/` (its sha256 and size are checked at the end, as for
/// any blob); a second thread, fed the same chunks through a bounded [`layer::pipe`],
/// decompresses them, hashes the tar for the diff-id and applies it with chapter 4's
/// `apply` into a temp directory, so the layer is extracted while it downloads instead of
/// being read back afterwards. Both are kept only if both digests check out, and then
/// renamed together, under the store's lock; otherwise both go. If another image already
/// extracted this diff-id (the same layer compressed otherwise), the stream is only
/// checked, not extracted again. A download that breaks off is retried from the start,
/// extraction included; both threads have ended when this returns.
pub fn download_layer(
    client: &Client,
    store: &Store,
    reference: &Reference,
    layer: &Layer,
    item: &Item<'_>,
) -> Result<(), Error> {
    let desc = Descriptor::new(&layer.media_type, layer.digest.clone(), layer.size);
    let (blob, extracted) = fetch_blob(client, reference, &desc, &mut |response| {
        item.reset();
        item.set_message("Downloading");
        let target = if store.layer_path(&layer.diff_id).is_dir() {
            None
        } else {
            Some(store.temp_layer(&layer.diff_id)?)
        };
        let dir = target.as_ref().map(TempLayer::path);
        let (received, unpacked) = std::thread::scope(|s| {
            let (mut pipe, chunks) = layer::pipe(DEPTH, CHUNK);
            let what = layer.digest.to_string();
            let unpacker = s.spawn(move || {
                layer::unpack_stream(chunks, &layer.media_type, &layer.diff_id, dir, &what)
            });
            let received = receive(store, response.body, &desc, Some(&mut pipe), Some(item));
            drop(pipe); // the end of the stream, for the unpacker
            if received.is_ok() {
                item.status("Download complete");
                item.set_message("Extracting");
            }
            let unpacked = unpacker.join().expect("an extraction thread panicked");
            (received, unpacked)
        });
        // The blob's own checks come first: bytes that are not the blob explain any
        // extraction error they caused.
        let blob = received?;
        unpacked?;
        Ok((blob, target))
    })?;
    store.commit(Some(blob), extracted, false)
}

/// Streams one blob (a config) from the registry into the store: hashed while it is
/// written, its size and digest checked before it gets its name (spec.md, "Pulling
/// blobs"). A connection that breaks is retried from the start.
pub fn download(
    client: &Client,
    store: &Store,
    reference: &Reference,
    desc: &Descriptor,
) -> Result<(), Error> {
    let blob = fetch_blob(client, reference, desc, &mut |response| {
        receive(store, response.body, desc, None, None)
    })?;
    store.commit(Some(blob), None, false)
}

/// `GET`s a blob and hands the response to `body`; when reading it breaks off, starts
/// again, [`crate::registry::ATTEMPTS`] times in all. The errors `body` finds (a digest,
/// size or diff-id mismatch, a layer that does not extract) are wrapped with the request,
/// so that they name the registry and the blob.
fn fetch_blob<T>(
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
    body: &mut dyn FnMut(Response) -> Result<T, Error>,
) -> Result<T, Error> {
    let url = format!(
        "{}/v2/{}/blobs/{}",
        client.base, reference.repository, desc.digest
    );
    let attempts = crate::registry::ATTEMPTS;
    let mut attempt = 1;
    loop {
        let response = client.get_blob(&reference.repository, &desc.digest)?;
        let result = match response.content_length() {
            Some(len) if len != desc.size => Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: format!("{len} (the registry's Content-Length)"),
            }),
            _ => body(response),
        };
        match result {
            Ok(t) => return Ok(t),
            Err(Error::Read(e)) if attempt < attempts => {
                eprintln!(
                    "blob {}: the download broke off ({e}); retrying (attempt {} of {attempts})",
                    desc.digest,
                    attempt + 1,
                );
                attempt += 1;
            }
            Err(Error::Read(e)) => {
                return Err(Error::GaveUp {
                    attempts,
                    source: Box::new(Error::Read(e)),
                }
                .context(format!("GET {url}")));
            }
            Err(e) => return Err(e.context(format!("GET {url}"))),
        }
    }
}

/// Reads a blob's bytes from the registry into the store's `tmp/`, hashing them as they
/// are written, and hands each chunk on to `pipe` (the extraction) if there is one. Never
/// reads more than one byte past the descriptor's size. Returns the blob, checked and
/// durable, not yet named.
fn receive(
    store: &Store,
    mut body: Box<dyn Read + Send>,
    desc: &Descriptor,
    mut pipe: Option<&mut ChunkWriter>,
    item: Option<&Item<'_>>,
) -> Result<VerifiedBlob, Error> {
    let mut writer = store.blob_writer(Some(&desc.digest), Some(desc.size))?;
    let mut spare: Option<Vec<u8>> = None;
    loop {
        let mut chunk = spare.take().unwrap_or_else(|| match pipe.as_deref_mut() {
            Some(p) => p.chunk(),
            None => vec![0; CHUNK],
        });
        let want = writer.room(chunk.len());
        if want == 0 {
            break;
        }
        let n = match body.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                spare = Some(chunk);
                continue;
            }
            Err(e) => return Err(Error::Read(e)),
        };
        writer.write(&chunk[..n])?;
        if let Some(i) = item {
            i.inc(n as u64);
        }
        match pipe.as_deref_mut() {
            Some(p) => {
                // If the extraction has stopped, the download goes on alone: its own
                // checks decide which error to report.
                p.send(chunk, n);
            }
            None => spare = Some(chunk),
        }
    }
    writer.finish()
}

/// Names the image last, once every blob is in: until then no command lists it
/// (image-layout.md: index.json is the entry point). The entry points at the OCI manifest
/// and records, as annotations, the original manifest it was made from (so that it is
/// kept, and the next pull of the tag recognises it) and the registry's digest (docker's
/// `RepoDigests`).
pub fn name_image(
    store: &Store,
    reference: &Reference,
    top: &Fetched,
    stored: &Stored,
    uncompressed: u64,
) -> Result<(), Error> {
    let mut entry = stored.manifest.clone();
    let annotations = entry.annotations.get_or_insert_with(BTreeMap::new);
    if let Some(original) = &stored.original {
        annotations.insert(
            store::ORIGINAL_MANIFEST.to_string(),
            original.digest.to_string(),
        );
        annotations.insert(
            store::ORIGINAL_MEDIA_TYPE.to_string(),
            original.media_type.clone(),
        );
    }
    annotations.insert(store::REGISTRY_DIGEST.to_string(), top.digest.to_string());
    store.name_image(reference, entry, uncompressed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Mutex;

    use super::*;
    use crate::transport::{Request, TransportError};

    /// A registry that serves one blob, the first `broken` times cut off half-way (the
    /// connection resets), and records the requests.
    #[derive(Debug)]
    struct Flaky {
        blob: Vec<u8>,
        broken: Mutex<u32>,
        requests: Mutex<Vec<String>>,
    }

    impl Transport for Flaky {
        fn send(&self, request: Request) -> Result<Response, TransportError> {
            self.requests
                .lock()
                .unwrap()
                .push(format!("{} {}", request.method, request.url));
            let mut broken = self.broken.lock().unwrap();
            let body: Box<dyn Read + Send> = if *broken > 0 {
                *broken -= 1;
                let half = self.blob[..self.blob.len() / 2].to_vec();
                Box::new(io::Cursor::new(half).chain(Reset))
            } else {
                Box::new(io::Cursor::new(self.blob.clone()))
            };
            Ok(Response {
                status: 200,
                headers: vec![("content-length".into(), self.blob.len().to_string())],
                body,
            })
        }
    }

    struct Reset;
    impl Read for Reset {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::ConnectionReset))
        }
    }

    /// 2 MB that gzip cannot shrink much: many chunks on their way.
    fn content(seed: u8) -> Vec<u8> {
        (0..2_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect()
    }

    /// A gzip layer of one file, `data.bin`, and its diff-id.
    fn layer_blob(seed: u8) -> (Vec<u8>, Digest) {
        let (gz, diff_id, _) = crate::fixtures::gzip_layer(&[("data.bin", &content(seed))]);
        (gz, diff_id)
    }

    struct Setup {
        dir: tempfile::TempDir,
        store: Store,
        reference: Reference,
        transport: Flaky,
        layer: Layer,
    }

    fn setup(blob: Vec<u8>, diff_id: Digest, broken: u32) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = Layer {
            digest: Digest::of(&blob),
            diff_id,
            size: blob.len() as u64,
            media_type: manifest::OCI_LAYER_GZIP.into(),
        };
        Setup {
            dir,
            store,
            reference: Reference::parse("127.0.0.1:5000/x:1").unwrap(),
            transport: Flaky {
                blob,
                broken: Mutex::new(broken),
                requests: Mutex::new(Vec::new()),
            },
            layer,
        }
    }

    impl Setup {
        fn download(&self) -> Result<(), Error> {
            let mut client = Client::new(
                &self.transport,
                &self.reference,
                None,
                vec![],
                Arc::new(|_: &str| {}),
            );
            client.backoff = std::time::Duration::from_millis(1);
            let out = Reporter::new(Progress::Quiet);
            let item = out.item(self.layer.digest.short(), self.layer.size);
            download_layer(&client, &self.store, &self.reference, &self.layer, &item)
        }

        fn leftovers(&self) -> Vec<String> {
            ["tmp", "layers"]
                .iter()
                .flat_map(|d| fs::read_dir(self.dir.path().join(d)).unwrap())
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') || n.ends_with(".partial"))
                .collect()
        }
    }

    #[test]
    fn a_download_that_breaks_off_is_retried_with_its_extraction_from_scratch() {
        let (blob, diff_id) = layer_blob(1);
        let s = setup(blob, diff_id.clone(), 2);
        s.download().unwrap();
        // Three GETs: two cut off half-way, the third whole. Had the extraction not started
        // again, the layer would hold half a file twice and fail its diff-id.
        assert_eq!(s.transport.requests.lock().unwrap().len(), 3);
        assert!(s.store.has_blob(&s.layer.digest));
        let data = fs::read(s.store.layer_path(&diff_id).join("data.bin")).unwrap();
        assert!(data == content(1), "the extracted file is whole");
        assert_eq!(s.leftovers(), Vec::<String>::new());

        // Broken every time: the attempts are bounded, and nothing is kept.
        let (blob, diff_id) = layer_blob(2);
        let s = setup(blob, diff_id.clone(), 3);
        let err = s.download().unwrap_err();
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            format!(
                "GET http://127.0.0.1:5000/v2/x/blobs/{}: gave up after 3 attempts: reading the download: connection reset",
                s.layer.digest
            )
        );
        assert!(!s.store.has_blob(&s.layer.digest));
        assert!(!s.store.layer_path(&diff_id).exists());
        assert_eq!(s.leftovers(), Vec::<String>::new());
    }

    #[test]
    fn a_blob_that_is_right_but_whose_diff_id_is_wrong_is_not_kept_and_neither_is_its_layer() {
        let (blob, right) = layer_blob(3);
        let wrong = Digest::of(b"what the config claims");
        let s = setup(blob, wrong.clone(), 0);
        let err = s.download().unwrap_err();
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            format!(
                "GET http://127.0.0.1:5000/v2/x/blobs/{}: layer with diff-id {wrong}: the uncompressed layer's sha256 is {right}",
                s.layer.digest
            )
        );
        assert!(!s.store.has_blob(&s.layer.digest));
        assert!(!s.store.layer_path(&wrong).exists());
        assert_eq!(s.leftovers(), Vec::<String>::new());
    }

    #[test]
    fn bytes_that_are_not_the_blob_are_reported_as_such_even_when_they_break_the_extraction() {
        let (mut blob, diff_id) = layer_blob(4);
        let layer_digest = Digest::of(&blob);
        // Garbage from the middle on: the gzip stream breaks, and so does the digest.
        let mid = blob.len() / 2;
        blob[mid..].fill(0x55);
        let mut s = setup(blob, diff_id.clone(), 0);
        s.layer.digest = layer_digest.clone();
        let err = s.download().unwrap_err();
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(
            shown.starts_with(&format!(
                "GET http://127.0.0.1:5000/v2/x/blobs/{layer_digest}: blob {layer_digest}: digest mismatch: the content's sha256 is sha256:"
            )),
            "{shown}"
        );
        assert!(!s.store.has_blob(&layer_digest));
        assert!(!s.store.layer_path(&diff_id).exists());
        assert_eq!(s.leftovers(), Vec::<String>::new());
    }

    #[test]
    fn a_layer_already_extracted_is_only_checked_when_its_blob_arrives_in_another_form() {
        let (blob, diff_id) = layer_blob(5);
        let s = setup(blob, diff_id.clone(), 0);
        // The same diff-id, extracted from an earlier image.
        let other = s.store.temp_layer(&diff_id).unwrap();
        fs::write(other.path().join("earlier"), "kept").unwrap();
        s.store.commit(None, Some(other), false).unwrap();
        s.download().unwrap();
        assert!(s.store.has_blob(&s.layer.digest));
        let dir = s.store.layer_path(&diff_id);
        assert!(dir.join("earlier").is_file());
        assert!(
            !dir.join("data.bin").exists(),
            "not extracted a second time"
        );

        // ...but checked: a blob that does not decompress to that diff-id is refused.
        let (blob, _) = layer_blob(6);
        let s2 = setup(blob, diff_id.clone(), 0);
        let earlier = s2.store.temp_layer(&diff_id).unwrap();
        s2.store.commit(None, Some(earlier), false).unwrap();
        let err = s2.download().unwrap_err().to_string();
        assert!(err.starts_with("GET http://"), "{err}");
        assert!(!s2.store.has_blob(&s2.layer.digest));
    }
}
