//! Images as one tar file, for machines with no registry between them: `docker save` and
//! `docker load`.
//!
//! [`save`] writes what docker 25 writes: an OCI image layout (`oci-layout`, `index.json`
//! naming each image, `blobs/sha256/…`) and, beside it, docker's older `manifest.json`
//! (per image: its config and layer files, and its names), so that both kinds of reader
//! take it. [`load`] takes either kind: an OCI layout (ours, docker 25's, `skopeo copy …
//! oci-archive:`), or a docker archive with only `manifest.json` (older docker, `skopeo
//! copy … docker-archive:`).
//!
//! Loading streams: every file of the archive that is not one of those small JSON documents
//! goes straight into the store as a blob, hashed on the way; a file named
//! `blobs/sha256/HEX` must hash to HEX, or nothing is named. Names come last, as in a pull.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use crate::Error;
use crate::manifest::{self, Descriptor, Index, Manifest, Parsed};
use crate::reference::{Digest, Reference};
use crate::store::{Image, NewLayer, Store};

/// Writes the images `names` name (references or IDs) as one archive to `out`.
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<(), Error> {
    let mut index = Vec::new();
    let mut docker = Vec::new();
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    for name in names {
        let image = store
            .resolve(name)?
            .ok_or_else(|| Error::NoSuchImage(name.clone()))?;
        let refs = names_to_save(name, &image);
        index.extend(index_entries(store, &image, &refs)?);
        docker.push(docker_entry(&image, &refs));
        blobs.insert(image.manifest_digest.clone());
        blobs.insert(image.config_digest.clone());
        blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.into()),
        manifests: index,
        annotations: None,
    };
    write_archive(store, &index, &docker, &blobs, out)
}

/// The names to save an image under: the name as given, if it is one of the image's;
/// else (an image ID) every name it has.
fn names_to_save(name: &str, image: &Image) -> Vec<String> {
    let wanted = Reference::parse(name)
        .ok()
        .map(|r| r.store_name())
        .filter(|n| image.references.contains(n));
    match wanted {
        Some(n) => vec![n],
        None => image.references.clone(),
    }
}

/// The archive's index.json entries for one image: one per name, as docker 25 writes
/// them (the full name in `io.containerd.image.name`, the tag in `ref.name`), or one
/// without a name.
fn index_entries(store: &Store, image: &Image, refs: &[String]) -> Result<Vec<Descriptor>, Error> {
    let path = store.blob_path(&image.manifest_digest);
    let manifest_size = std::fs::metadata(&path)
        .map_err(|e| Error::io("stat", &path, e))?
        .len();
    let mut entries = Vec::new();
    for r in refs
        .iter()
        .map(String::as_str)
        .chain(refs.is_empty().then_some(""))
    {
        let mut d = Descriptor::new(
            manifest::OCI_MANIFEST,
            image.manifest_digest.clone(),
            manifest_size,
        );
        if let Ok(parsed) = Reference::parse(r) {
            let mut a = BTreeMap::new();
            a.insert("io.containerd.image.name".to_string(), r.to_string());
            a.insert(
                crate::store::REF_NAME.to_string(),
                parsed.tag.clone().unwrap_or_else(|| "latest".into()),
            );
            d.annotations = Some(a);
        }
        entries.push(d);
    }
    Ok(entries)
}

/// One image in docker's older `manifest.json`: its config and layer files, and its tags.
fn docker_entry(image: &Image, refs: &[String]) -> serde_json::Value {
    serde_json::json!({
        "Config": blob_name(&image.config_digest),
        "RepoTags": refs
            .iter()
            .filter_map(|r| Reference::parse(r).ok())
            .filter(|r| r.digest.is_none())
            .map(|r| r.familiar())
            .collect::<Vec<_>>(),
        "Layers": image.layers.iter().map(|l| blob_name(&l.digest)).collect::<Vec<_>>(),
    })
}

/// Writes the tar: `oci-layout`, `index.json`, `manifest.json`, then every blob once.
fn write_archive(
    store: &Store,
    index: &Index,
    docker: &[serde_json::Value],
    blobs: &BTreeSet<Digest>,
    out: impl Write,
) -> Result<(), Error> {
    let mut tar = tar::Builder::new(out);
    let mut add = |path: &str, len: u64, data: &mut dyn std::io::Read| -> Result<(), Error> {
        // Fixed mode and time: the same images make the same archive.
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data).map_err(written)
    };
    let mut small = |path: &str, bytes: &[u8]| add(path, bytes.len() as u64, &mut &bytes[..]);
    small("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    small(
        "index.json",
        &serde_json::to_vec(index).expect("an index serialises"),
    )?;
    small(
        "manifest.json",
        &serde_json::to_vec(docker).expect("a manifest list serialises"),
    )?;
    for d in blobs {
        let path = store.blob_path(d);
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        add(&blob_name(d), len, &mut file)?;
    }
    tar.into_inner()
        .and_then(|mut o| o.flush())
        .map_err(written)
}

fn written(e: std::io::Error) -> Error {
    Error::io("write", std::path::Path::new("the archive"), e)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// What [`load`] named: each image's name, or its ID if it came without one.
pub type Loaded = Vec<String>;

/// Reads an archive from `input` into the store and names its images.
pub fn load(store: &Store, input: impl Read) -> Result<Loaded, Error> {
    let loaded = load_all(store, input);
    store.release();
    if loaded.is_err() {
        // What a failed load stored, no name holds: it goes (other processes' work in
        // progress is protected by their leases).
        let _ = store.gc();
    }
    loaded
}

fn load_all(store: &Store, input: impl Read) -> Result<Loaded, Error> {
    let mut archive = tar::Archive::new(input);
    let mut documents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Every other file, stored as a blob: its path in the archive and what it hashed to.
    let mut files: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
    let bad = |e: std::io::Error| Error::Usage(format!("not a tar archive of images: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        if matches!(
            path.as_str(),
            "oci-layout" | "index.json" | "manifest.json" | "repositories"
        ) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(bad)?;
            documents.insert(path, bytes);
            continue;
        }
        // A blob's name is its digest: the store checks it while it writes.
        let expected = path
            .strip_prefix("blobs/sha256/")
            .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok());
        let stored = store.put_blob(&mut entry, expected.as_ref())?;
        files.insert(path, stored);
    }
    let loaded = if let Some(index) = documents.get("index.json") {
        load_layout(store, index, &files)?
    } else if let Some(list) = documents.get("manifest.json") {
        load_docker(store, list, &files)?
    } else {
        return Err(Error::Usage(
            "not an image archive: it has neither index.json (OCI) nor manifest.json (docker)"
                .into(),
        ));
    };
    Ok(loaded)
}

/// The images an OCI layout's index.json lists (an index in it is resolved to this
/// machine's platform).
fn load_layout(
    store: &Store,
    index: &[u8],
    files: &BTreeMap<String, (Digest, u64)>,
) -> Result<Loaded, Error> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| Error::Usage(format!("index.json of the archive: {e}")))?;
    let mut loaded = Vec::new();
    for entry in &index.manifests {
        let mut descriptor = entry.clone();
        let bytes = blob(store, &descriptor.digest)?;
        let (parsed, _) = manifest::parse(&bytes, Some(&descriptor.media_type))
            .map_err(|e| Error::Usage(format!("manifest {}: {e}", descriptor.digest)))?;
        let image = match parsed {
            Parsed::Image(m) => m,
            Parsed::Index(inner) => {
                let chosen = manifest::select_platform(&inner, &manifest::Platform::host())
                    .map_err(Error::Usage)?
                    .clone();
                let bytes = blob(store, &chosen.digest)?;
                descriptor = chosen;
                match manifest::parse(&bytes, Some(&descriptor.media_type))
                    .map_err(|e| Error::Usage(format!("manifest {}: {e}", descriptor.digest)))?
                {
                    (Parsed::Image(m), _) => m,
                    _ => return Err(Error::Usage("an index inside an index".into())),
                }
            }
        };
        let name = entry
            .annotation("io.containerd.image.name")
            .or_else(|| entry.annotation(crate::store::REF_NAME))
            .and_then(|n| Reference::parse(n).ok().filter(|_| n.contains([':', '/'])));
        loaded.push(add_image(store, files, &image, name.as_ref())?);
    }
    Ok(loaded)
}

/// The images a docker archive's manifest.json lists: config and layer files by path.
fn load_docker(
    store: &Store,
    list: &[u8],
    files: &BTreeMap<String, (Digest, u64)>,
) -> Result<Loaded, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(list)
        .map_err(|e| Error::Usage(format!("manifest.json of the archive: {e}")))?;
    let file = |p: &str| {
        files
            .get(p.trim_start_matches("./"))
            .cloned()
            .ok_or_else(|| Error::Usage(format!("the archive lists {p} but does not hold it")))
    };
    let mut loaded = Vec::new();
    for e in entries {
        let (config_digest, config_size) = file(&e.config)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let (digest, size) = file(l)?;
            // Layers come compressed or not: gzip's magic number tells.
            let mut magic = [0u8; 2];
            let path = store.blob_path(&digest);
            let gzip = std::fs::File::open(&path)
                .and_then(|mut f| f.read_exact(&mut magic))
                .is_ok()
                && magic == [0x1f, 0x8b];
            let media_type = if gzip {
                manifest::OCI_LAYER_GZIP
            } else {
                manifest::OCI_LAYER
            };
            layers.push(Descriptor::new(media_type, digest, size));
        }
        let image = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(manifest::OCI_CONFIG, config_digest, config_size),
            layers,
            annotations: None,
        };
        let tags = e.repo_tags.unwrap_or_default();
        let names: Vec<Reference> = tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        loaded.push(add_image(store, files, &image, names.first())?);
        for extra in names.iter().skip(1) {
            store.tag(&image.config.digest.to_string(), extra)?;
            loaded.push(extra.familiar());
        }
    }
    Ok(loaded)
}

/// Writes one image from blobs already in the store (each layer checked against the
/// config's diff-ids, and extracted), names it, and returns the name (or `ID`).
fn add_image(
    store: &Store,
    files: &BTreeMap<String, (Digest, u64)>,
    image: &Manifest,
    name: Option<&Reference>,
) -> Result<String, Error> {
    // Naming an image ends the store's lease (see `Store::name_image`): the blobs of the
    // images still to come are put back under it first, so that a garbage collection in
    // another process keeps them.
    for (digest, _) in files.values() {
        store.protect(digest)?;
    }
    let config = blob(store, &image.config.digest)?;
    let parsed: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config)
        .map_err(|e| Error::Usage(format!("the image config is not valid: {e}")))?;
    let diff_ids: Vec<Digest> = parsed
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(Error::Usage))
        .collect::<Result<_, _>>()?;
    if diff_ids.len() != image.layers.len() {
        return Err(Error::Usage(format!(
            "image {}: {} layers but {} diff-ids in its config",
            image.config.digest,
            image.layers.len(),
            diff_ids.len()
        )));
    }
    let layers: Vec<NewLayer> = image
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| NewLayer {
            descriptor: Descriptor::new(
                manifest::oci_media_type(&d.media_type).unwrap_or(&d.media_type),
                d.digest.clone(),
                d.size,
            ),
            diff_id,
        })
        .collect();
    store.put_image(&config, &layers, name)?;
    Ok(match name {
        Some(r) => r.familiar(),
        None => image.config.digest.to_string(),
    })
}

/// A blob the archive brought (or the store had).
fn blob(store: &Store, digest: &Digest) -> Result<Vec<u8>, Error> {
    if !store.has_blob(digest) {
        return Err(Error::Usage(format!(
            "the archive refers to {digest} but does not hold it"
        )));
    }
    store.read_blob(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_image_loads_into_another_store_as_the_same_image() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = Store::open(from.path()).unwrap();
        let (gz, diff_id, _) = crate::fixtures::gzip_layer(&[("a.txt", b"saved\n")]);
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
        let name = Reference::parse("127.0.0.1:5000/saved:1").unwrap();
        store.put_image(&config, &[layer], Some(&name)).unwrap();
        let mut archive = Vec::new();
        save(&store, &["127.0.0.1:5000/saved:1".into()], &mut archive).unwrap();
        let mut paths: Vec<String> = tar::Archive::new(&archive[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        paths.truncate(3);
        assert_eq!(paths, ["oci-layout", "index.json", "manifest.json"]);

        let other = Store::open(to.path()).unwrap();
        load(&other, &archive[..]).unwrap();
        let (a, b) = (
            store.resolve(&name.store_name()).unwrap().unwrap(),
            other.resolve(&name.store_name()).unwrap().unwrap(),
        );
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.references, b.references);
        assert_eq!(a.layers, b.layers);
    }
}
