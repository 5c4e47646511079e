//! `pull`: the chapter's story, in the order the protocol goes.
//!
//! 1. `GET /v2/`, and answer the challenge if there is one ([`connect`]);
//! 2. fetch the manifest the reference names ([`fetch_manifest`]);
//! 3. if it is an index, choose this platform's manifest and fetch that ([`choose_platform`]);
//! 4. keep the manifest ([`store_manifest`]) and fetch the config ([`fetch_config`]);
//! 5. fetch every layer not already here, in parallel, checking digests while they stream,
//!    and extract each ([`fetch_layers`]);
//! 6. only then give the image its name ([`name_image`]).
//!
//! Everything that can be checked is checked: a manifest pulled by digest against that
//! digest, every blob against the digest its descriptor gives, every layer's uncompressed
//! stream against the config's diff-id. A pull that fails or is killed leaves blobs at
//! most, never a name: the next pull finds the blobs and completes the image.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::ImageConfiguration;

use crate::auth;
use crate::credentials::ConfigFiles;
use crate::manifest::{self, Descriptor, Manifest, Parsed, Platform};
use crate::progress::{Counting, Progress, Reporter};
use crate::reference::{Digest, Reference};
use crate::registry::Client;
use crate::store::{Image, Layer, Store};
use crate::transport::Transport;
use crate::{Error, manifest_error};

/// How many layers download at once (docker's default, `max-concurrent-downloads`).
pub const PARALLEL: usize = 3;

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
    out.line(&format!(
        "{}: Pulling from {}",
        reference.tag.as_deref().unwrap_or(&reference.manifest_id()),
        reference.familiar_name()
    ));
    let client = connect(transport, &options.config, reference, &["pull"], &out)?;
    let top = fetch_manifest(&client, reference, &reference.manifest_id())?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let image = choose_platform(&client, reference, &top, &wanted)?;
    let Parsed::Image(manifest) = &image.parsed else {
        unreachable!("choose_platform returns an image manifest")
    };
    let was = store.entry(&reference.store_name())?.map(|d| d.digest);
    store_manifest(store, &image)?;
    let config = fetch_config(&client, store, reference, manifest, &wanted)?;
    let layers = layers_of(manifest, &config)?;
    let uncompressed = fetch_layers(&client, store, reference, &layers, &out)?;
    name_image(store, reference, &image, uncompressed)?;
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
/// a token scoped to `actions` on this repository (token.md, "Requesting a Token").
pub fn connect<'t>(
    transport: &'t dyn Transport,
    config: &ConfigFiles,
    reference: &Reference,
    actions: &[&str],
    out: &Reporter,
) -> Result<Client<'t>, Error> {
    let credentials = config.get(&reference.registry)?;
    // Retries are worth telling the user about, on stderr like the reporter's warnings.
    let _ = out;
    let client = Client::new(
        transport,
        reference,
        credentials,
        vec![auth::scope(&reference.repository, actions)],
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

/// Writes the manifest blob, after listing it in the store's lease so that a garbage
/// collection running meanwhile keeps everything it names.
pub fn store_manifest(store: &Store, image: &Fetched) -> Result<(), Error> {
    store.protect(&image.digest)?;
    if !store.has_blob(&image.digest) {
        store.write_blob(
            &mut &image.bytes[..],
            Some(&image.digest),
            Some(image.bytes.len() as u64),
        )?;
    }
    Ok(())
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
        download(client, store, reference, desc, None)?;
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

/// Downloads the layers the store lacks, [`PARALLEL`] at a time, and extracts each once
/// per diff-id (checking the diff-id as it goes). Every thread is joined before this
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
        if let Some(c) = manifest::layer_compression(&l.media_type) {
            if c == manifest::Compression::Zstd {
                return Err(Error::Unsupported(format!(
                    "layer {} is zstd-compressed ({}), which this chapter does not extract",
                    l.digest, l.media_type
                )));
            }
        } else {
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

/// One layer: download its blob unless present, then extract it unless extracted.
fn fetch_layer(
    client: &Client,
    store: &Store,
    reference: &Reference,
    layer: &Layer,
    item: &crate::progress::Item<'_>,
) -> Result<u64, Error> {
    let mut fresh = false;
    if !store.has_blob(&layer.digest) {
        let desc = Descriptor::new(&layer.media_type, layer.digest.clone(), layer.size);
        download(client, store, reference, &desc, Some(item))?;
        item.status("Download complete");
        fresh = true;
    }
    let extracted = store.layer_path(&layer.diff_id).is_dir();
    if !extracted {
        item.set_message("Extracting");
    }
    // Extracted once per diff-id, checked against it while extracting; a layer another
    // image brought is shared as it is.
    let dir = store.extract_layer(layer)?;
    if fresh || !extracted {
        item.done("Pull complete");
    }
    crate::store::dir_size(&dir)
}

/// Streams one blob from the registry into the store: hashed while it is written, its
/// size and digest checked before it gets its name (spec.md, "Pulling blobs"). A
/// connection that breaks is retried from the start, [`crate::registry::ATTEMPTS`] times.
pub fn download(
    client: &Client,
    store: &Store,
    reference: &Reference,
    desc: &Descriptor,
    item: Option<&crate::progress::Item<'_>>,
) -> Result<(), Error> {
    let mut attempt = 1;
    loop {
        let response = client.get_blob(&reference.repository, &desc.digest)?;
        if let Some(len) = response.content_length()
            && len != desc.size
        {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: format!("{len} (the registry's Content-Length)"),
            });
        }
        if let Some(i) = item {
            i.reset();
            i.set_message("Downloading");
        }
        let result = match item {
            Some(i) => store.write_blob(
                &mut Counting {
                    inner: response.body,
                    item: i,
                },
                Some(&desc.digest),
                Some(desc.size),
            ),
            None => store.write_blob(&mut { response.body }, Some(&desc.digest), Some(desc.size)),
        };
        match result {
            Ok(_) => return Ok(()),
            Err(Error::Read(e)) if attempt < crate::registry::ATTEMPTS => {
                eprintln!(
                    "blob {}: the download broke off ({e}); retrying (attempt {} of {})",
                    desc.digest,
                    attempt + 1,
                    crate::registry::ATTEMPTS
                );
                attempt += 1;
            }
            Err(Error::Read(e)) => {
                return Err(Error::GaveUp {
                    attempts: crate::registry::ATTEMPTS,
                    source: Box::new(Error::Read(e)),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Names the image last, once every blob is in: until then no command lists it
/// (image-layout.md: index.json is the entry point).
pub fn name_image(
    store: &Store,
    reference: &Reference,
    image: &Fetched,
    uncompressed: u64,
) -> Result<(), Error> {
    store.name_image(
        reference,
        &image.media_type,
        &image.digest,
        image.bytes.len() as u64,
        uncompressed,
    )?;
    Ok(())
}
