//! Names: index.json's entries, each an image manifest with a `ref.name` annotation
//! (image-spec annotations.md), or without one for a dangling image. Naming is always the
//! last step of writing an image: every blob it needs is in `blobs/` before.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use oci_spec::image::ImageConfiguration;

use super::files::dir_size;
use super::{
    Collected, Image, Layer, NewLayer, ORIGINAL_MANIFEST, ORIGINAL_MEDIA_TYPE, REF_NAME,
    REGISTRY_DIGEST, SIZE_ANNOTATION, Store,
};
use crate::Error;
use crate::manifest::{self, Descriptor, Manifest, Parsed};
use crate::reference::{Digest, Reference};

/// What [`Store::remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The names removed.
    pub untagged: Vec<String>,
    /// What garbage collection then deleted.
    pub gc: Collected,
}

impl Store {
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
        let manifest = self.read_manifest(&descriptor.digest, &descriptor.media_type)?;
        let config = self.read_config(&manifest.config.digest)?;
        let layers = self.layers_of(&manifest, &config)?;
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

    /// A stored image manifest (index.json names image manifests only).
    fn read_manifest(&self, digest: &Digest, media_type: &str) -> Result<Manifest, Error> {
        let corrupt = |problem| Error::Corrupt {
            path: self.blob_path(digest),
            problem,
        };
        match manifest::parse(&self.read_blob(digest)?, Some(media_type)) {
            Ok((Parsed::Image(m), _)) => Ok(m),
            Ok((Parsed::Index(_), _)) => Err(corrupt(
                "index.json names an index, not an image manifest".into(),
            )),
            Err(problem) => Err(corrupt(problem)),
        }
    }

    /// A stored image config.
    fn read_config(&self, digest: &Digest) -> Result<ImageConfiguration, Error> {
        serde_json::from_slice(&self.read_blob(digest)?).map_err(|e| Error::Corrupt {
            path: self.blob_path(digest),
            problem: format!("not an image config: {e}"),
        })
    }

    /// Pairs each layer of a manifest with the diff-id its config lists for it.
    fn layers_of(
        &self,
        manifest: &Manifest,
        config: &ImageConfiguration,
    ) -> Result<Vec<Layer>, Error> {
        let corrupt = |problem| Error::Corrupt {
            path: self.blob_path(&manifest.config.digest),
            problem,
        };
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(corrupt(format!(
                "the config lists {} diff-ids for {} layers",
                diff_ids.len(),
                manifest.layers.len()
            )));
        }
        manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| {
                Ok(Layer {
                    digest: l.digest.clone(),
                    diff_id: Digest::parse(diff_id).map_err(corrupt)?,
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
            })
            .collect()
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
