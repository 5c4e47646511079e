//! `push`: the pull story backwards. Blobs first, each only if the registry lacks it,
//! the manifest last, because a registry refuses a manifest that names blobs it does not
//! have (spec.md, "Pushing manifests": `MANIFEST_BLOB_UNKNOWN`).
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::auth;
use crate::credentials::ConfigFiles;
use crate::manifest::Descriptor;
use crate::progress::{Progress, Reporter};
use crate::pull::connect;
use crate::reference::{Digest, Reference};
use crate::registry::{Client, Mount};
use crate::store::Store;
use crate::transport::Transport;
use crate::{Error, pull::PARALLEL};

/// Options of a push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// How to show progress.
    pub progress: Progress,
    /// Where credentials are.
    pub config: ConfigFiles,
    /// Upload in chunks of this many bytes (`PATCH` requests) instead of one `PUT`.
    pub chunk_size: Option<u64>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// How one blob got there.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Exists,
    Mounted(String),
    Pushed,
}

/// Pushes the image named `reference` in the store to the registry it names.
pub fn push(
    store: &Store,
    transport: &dyn Transport,
    reference: &Reference,
    options: &PushOptions,
) -> Result<Pushed, Error> {
    let out = Reporter::new(options.progress);
    let image = store
        .resolve(&reference.store_name())?
        .ok_or_else(|| Error::NoSuchImage(reference.familiar()))?;
    // The full name, registry and all: `[docker.io/library/busybox]` for Hub (moby,
    // distribution/push_v2.go).
    out.line(&format!(
        "The push refers to repository [{}]",
        reference.name()
    ));
    // Layers (top first, as docker lists them), then the config.
    let mut blobs: Vec<Descriptor> = image.manifest.layers.iter().rev().cloned().collect();
    blobs.push(image.manifest.config.clone());
    let sources = mount_sources(store, reference, &blobs)?;
    // A mount needs pull access to the repository it mounts from (spec.md, "Mounting a
    // blob from another repository"): asked for in the first token, with pull and push
    // on our own, so the first mount does not cost a second token.
    let mut scopes = vec![auth::scope(&reference.repository, &["pull", "push"])];
    scopes.extend(sources.iter().map(|s| auth::scope(s, &["pull"])));
    let client = connect(transport, &options.config, reference, scopes, &out)?;
    push_blobs(&client, store, reference, &blobs, &sources, options, &out)?;
    let pushed = put_manifest(
        &client,
        store,
        reference,
        &image.manifest_digest,
        &image.manifest_media_type,
    )?;
    out.line(&format!(
        "{}: digest: {} size: {}",
        reference.tag.as_deref().unwrap_or("<none>"),
        pushed.digest,
        pushed.size
    ));
    Ok(pushed)
}

/// Pushes the blobs the registry lacks, [`PARALLEL`] at a time, the last one (the config)
/// without a status line of its own, as docker shows it. Every thread is joined before this
/// returns; the first failure stops the others taking more work.
fn push_blobs(
    client: &Client,
    store: &Store,
    reference: &Reference,
    blobs: &[Descriptor],
    sources: &[String],
    options: &PushOptions,
    out: &Reporter,
) -> Result<(), Error> {
    let is_layer = |i: usize| i + 1 < blobs.len();
    let items: Vec<_> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let item = out.item(b.digest.short(), b.size);
            if is_layer(i) {
                item.status("Preparing");
            }
            item
        })
        .collect();
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<Outcome, Error>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL.min(blobs.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(blob) = blobs.get(i) else { break };
                        let r =
                            push_blob(client, store, reference, blob, sources, options, &items[i]);
                        if let Ok(o) = &r
                            && is_layer(i)
                        {
                            items[i].done(&match o {
                                Outcome::Exists => "Layer already exists".to_string(),
                                Outcome::Mounted(from) => format!("Mounted from {from}"),
                                Outcome::Pushed => "Pushed".to_string(),
                            });
                        }
                        let failed = r.is_err();
                        done.push((i, r));
                        if failed {
                            next.store(blobs.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an upload thread panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    for (_, r) in results {
        r?;
    }
    Ok(())
}

/// At most this many repositories to mount from, as docker tries at most three per blob
/// (moby distribution/push_v2.go, `maxMountAttempts`): each is a scope in the token.
const MAX_MOUNT_SOURCES: usize = 3;

/// Other repositories of the same registry that this store pulled from or pushed to, and
/// whose images hold one of `blobs`: such a blob can be mounted instead of uploaded.
fn mount_sources(
    store: &Store,
    reference: &Reference,
    blobs: &[Descriptor],
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for d in store.entries()? {
        if out.len() == MAX_MOUNT_SOURCES {
            break;
        }
        let Some(name) = d.annotation(crate::store::REF_NAME) else {
            continue;
        };
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if r.registry != reference.registry
            || r.repository == reference.repository
            || out.contains(&r.repository)
        {
            continue;
        }
        let img = store.load(&d)?;
        if blobs.iter().any(|b| {
            img.config_digest == b.digest || img.layers.iter().any(|l| l.digest == b.digest)
        }) {
            out.push(r.repository);
        }
    }
    Ok(out)
}

/// One blob: `HEAD` to see whether the registry has it, else a mount from a repository
/// that may have it, else an upload (spec.md, "Pushing blobs").
fn push_blob(
    client: &Client,
    store: &Store,
    reference: &Reference,
    blob: &Descriptor,
    sources: &[String],
    options: &PushOptions,
    item: &crate::progress::Item<'_>,
) -> Result<Outcome, Error> {
    let repo = &reference.repository;
    if client.has_blob(repo, &blob.digest)? {
        return Ok(Outcome::Exists);
    }
    let mut location = None;
    for from in sources {
        // Only where this store saw the blob: a mount request for a blob the source lacks
        // costs a round trip and opens an upload session anyway.
        if !source_has(store, reference, from, &blob.digest)? {
            continue;
        }
        match client.mount_blob(repo, &blob.digest, from)? {
            Mount::Mounted => return Ok(Outcome::Mounted(from.clone())),
            Mount::Upload(l) => {
                location = Some(l);
                break;
            }
        }
    }
    let location = match location {
        Some(l) => l,
        None => client.start_upload(repo)?,
    };
    item.set_message("Pushing");
    let path = store.blob_path(&blob.digest);
    client.upload(
        location,
        &path,
        blob.size,
        &blob.digest,
        options.chunk_size,
        &|n| item.inc(n),
    )?;
    Ok(Outcome::Pushed)
}

/// Does an image this store has under `registry/from` include `digest`?
fn source_has(
    store: &Store,
    reference: &Reference,
    from: &str,
    digest: &Digest,
) -> Result<bool, Error> {
    for d in store.entries()? {
        let Some(name) = d.annotation(crate::store::REF_NAME) else {
            continue;
        };
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if r.registry == reference.registry && r.repository == from {
            let img = store.load(&d)?;
            if img.layers.iter().any(|l| &l.digest == digest) || &img.config_digest == digest {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `PUT` the manifest, byte for byte as stored (its digest is over those bytes), under
/// the tag (or digest), and check the digest the registry computed.
fn put_manifest(
    client: &Client,
    store: &Store,
    reference: &Reference,
    digest: &Digest,
    media_type: &str,
) -> Result<Pushed, Error> {
    let bytes = store.read_blob(digest)?;
    let id = reference.tag.clone().unwrap_or_else(|| digest.to_string());
    let answered = client.put_manifest(&reference.repository, &id, media_type, &bytes)?;
    if let Some(a) = answered.as_deref().and_then(|a| Digest::parse(a).ok())
        && a != *digest
    {
        return Err(Error::DigestMismatch {
            expected: digest.clone(),
            actual: a,
        });
    }
    Ok(Pushed {
        digest: digest.clone(),
        size: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use crate::store::NewLayer;

    /// Stores an image of one layer holding `content`, named `name`.
    fn put(store: &Store, name: &str, content: &[u8]) {
        let (gz, diff_id, _) = crate::fixtures::gzip_layer(&[("a.txt", content)]);
        let (digest, size) = store.put_blob(&mut &gz[..], None).unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}
        }))
        .unwrap();
        let layer = NewLayer {
            descriptor: Descriptor::new(manifest::OCI_LAYER_GZIP, digest, size),
            diff_id,
        };
        let name = Reference::parse(name).unwrap();
        store.put_image(&config, &[layer], Some(&name)).unwrap();
    }

    #[test]
    fn mount_sources_are_repositories_of_the_same_registry_holding_a_blob_at_most_three() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for name in ["base", "b2", "b3", "b4", "mine"] {
            put(&store, &format!("127.0.0.1:5000/{name}:1"), b"shared\n");
        }
        put(&store, "127.0.0.1:5000/other:1", b"unrelated\n");
        put(&store, "127.0.0.1:6000/elsewhere:1", b"shared\n");
        let mine = Reference::parse("127.0.0.1:5000/mine:1").unwrap();
        let image = store.resolve(&mine.store_name()).unwrap().unwrap();
        let mut blobs = image.manifest.layers.clone();
        blobs.push(image.manifest.config.clone());
        let sources = mount_sources(&store, &mine, &blobs).unwrap();
        assert_eq!(sources.len(), MAX_MOUNT_SOURCES, "{sources:?}");
        for s in &sources {
            assert!(
                ["base", "b2", "b3", "b4"].contains(&s.as_str()),
                "{sources:?}"
            );
        }
    }
}
