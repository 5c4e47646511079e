//! Manifests and indexes: what an image is made of, and which image fits this machine.
//!
//! A tag points at a JSON document, the *manifest* (OCI image spec, manifest.md; Docker's
//! "Image Manifest V2, Schema 2" is the same shape under other media types): one *config*
//! blob (the image's settings and the diff-ids of its layers) and a list of *layer* blobs
//! (compressed tar files), each named by its digest. A multi-platform tag points at an
//! *index* (Docker: "manifest list") instead: one manifest per platform, and the client
//! picks one.
//!
//! Every blob is named by the sha256 of its bytes, so whoever has a manifest's digest can
//! verify everything below it. That is why a manifest's digest is taken over the raw bytes
//! the registry sent: re-serialising the JSON would change them.
use std::collections::BTreeMap;
use std::fmt;

use crate::reference::Digest;

/// Docker's schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (multi-platform).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's old signed schema 1, which this chapter does not read.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker's image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker's gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's "foreign" (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker's uncompressed layer (rare, but schema 2 defines it).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's uncompressed foreign layer.
pub const DOCKER_LAYER_FOREIGN_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable uncompressed layer (deprecated by image-spec 1.1, still read).
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable gzip layer: what Docker's foreign layers become.
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable zstd layer.
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// The manifest types this client reads, most wanted first.
pub const MANIFEST_TYPES: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// The `Accept` header for a manifest request. It matters: distribution 2.8 answers 404
/// for an OCI manifest unless the OCI type is listed, and without any Accept header it
/// converts a schema 2 manifest to the old schema 1 (distribution's
/// registry/handlers/manifests.go).
pub fn accept_header(types: &[&str]) -> String {
    types.join(", ")
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
}

/// The compression a layer media type names, or `None` for a type that is not a layer.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN | OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP => {
            Some(Compression::Gzip)
        }
        DOCKER_LAYER | DOCKER_LAYER_FOREIGN_TAR | OCI_LAYER | OCI_LAYER_NONDIST => {
            Some(Compression::None)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The OCI media type of the same blob, for a Docker config or layer type (the OCI types
/// were defined from Docker's, and the bytes are the same: image-spec media-types.md,
/// "Compatibility Matrix"); OCI types map to themselves. `None` for a type that is neither.
pub fn oci_media_type(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        DOCKER_CONFIG | OCI_CONFIG => OCI_CONFIG,
        DOCKER_LAYER_GZIP | OCI_LAYER_GZIP => OCI_LAYER_GZIP,
        DOCKER_LAYER | OCI_LAYER => OCI_LAYER,
        DOCKER_LAYER_FOREIGN | OCI_LAYER_NONDIST_GZIP => OCI_LAYER_NONDIST_GZIP,
        DOCKER_LAYER_FOREIGN_TAR | OCI_LAYER_NONDIST => OCI_LAYER_NONDIST,
        OCI_LAYER_ZSTD => OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST_ZSTD => OCI_LAYER_NONDIST_ZSTD,
        _ => return None,
    })
}

/// A Docker schema 2 manifest rewritten as an OCI image manifest: the same config and
/// layer blobs (same digests, same sizes), under OCI media types. skopeo and podman
/// convert the same way when they copy a Docker image into an OCI layout, because OCI
/// tools read only OCI types (skopeo 1.9's `oci:` transport skips any index.json entry
/// that is not an OCI manifest). The result is a new document, hence a new digest: the
/// store keeps the original beside it.
pub fn to_oci(docker: &Manifest) -> Result<Manifest, String> {
    let convert = |d: &Descriptor, what: &str| -> Result<Descriptor, String> {
        let media_type = oci_media_type(&d.media_type).ok_or_else(|| {
            format!(
                "{what} {} has media type {:?}, which has no OCI equivalent",
                d.digest, d.media_type
            )
        })?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            ..d.clone()
        })
    };
    let config = convert(&docker.config, "the config")?;
    if config.media_type != OCI_CONFIG {
        return Err(format!(
            "the config {} has media type {:?}, not an image config",
            docker.config.digest, docker.config.media_type
        ));
    }
    Ok(Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config,
        layers: docker
            .layers
            .iter()
            .map(|l| convert(l, "layer"))
            .collect::<Result<_, _>>()?,
        annotations: docker.annotations.clone(),
    })
}

/// A descriptor: a blob's media type, digest and size (OCI image spec, descriptor.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is.
    pub media_type: String,
    /// Its sha256.
    pub digest: Digest,
    /// Its length in bytes: a client must not read more.
    pub size: u64,
    /// Other places to fetch it from (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations (`org.opencontainers.image.ref.name` in an image layout's index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// In an index: which platform this manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI, always set by Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index or manifest list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// One manifest per platform.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest request returned.
// Parsed once per pull and moved rarely: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One image.
    Image(Manifest),
    /// A choice of images.
    Index(Index),
}

/// Parses a manifest or index. The media type comes from the document's `mediaType` field,
/// else from the response's `Content-Type`, else from its shape (OCI made the field
/// optional).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(Parsed, String), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media_type = probe.media_type.clone().or(header_type).unwrap_or_else(|| {
        if probe.manifests.is_some() {
            OCI_INDEX.to_string()
        } else {
            OCI_MANIFEST.to_string()
        }
    });
    if probe.schema_version == Some(1) || media_type.starts_with(DOCKER_SCHEMA1) {
        return Err(
            "the registry sent a schema 1 manifest, which this chapter does not read (it asked for schema 2 or OCI)"
                .to_string(),
        );
    }
    let parsed = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            Parsed::Index(serde_json::from_slice(bytes).map_err(|e| format!("bad index: {e}"))?)
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            Parsed::Image(serde_json::from_slice(bytes).map_err(|e| format!("bad manifest: {e}"))?)
        }
        other if probe.layers.is_some() => {
            return Err(format!("unsupported manifest media type {other:?}"));
        }
        other => return Err(format!("unsupported manifest media type {other:?}")),
    };
    Ok((parsed, media_type))
}

/// A platform: `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `linux`, `windows`...
    pub os: String,
    /// Go's names: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// `v7`, `v8`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The machine we run on, in Go's names (which images use).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
            os_version: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(format!(
                "invalid platform {s:?}: expected OS/ARCH[/VARIANT] in lowercase, like linux/amd64 or linux/arm/v7"
            ));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        })
    }

    /// The variant, with the defaults containerd assumes (arm64 is v8, arm is v7).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            (_, v) => v,
        }
    }

    /// Does an image for `self` run where `wanted` is asked for?
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none()
                || self.normalized_variant() == wanted.normalized_variant())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `wanted` from an index: an exact variant match first, then any
/// entry whose OS and architecture match. The error lists what the index offers.
pub fn select_platform<'a>(index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor, String> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.matches(wanted)))
        .collect();
    let exact = candidates.iter().find(|d| {
        d.platform.as_ref().and_then(|p| p.normalized_variant()) == wanted.normalized_variant()
    });
    if let Some(d) = exact.or(candidates.first()) {
        return Ok(d);
    }
    let mut offered: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        // attestation manifests are listed as unknown/unknown
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect();
    offered.dedup();
    Err(format!(
        "no manifest for platform {wanted} in the index (it has: {})",
        if offered.is_empty() {
            "none".to_string()
        } else {
            offered.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str, n: char) -> Descriptor {
        let mut d = Descriptor::new(
            OCI_MANIFEST,
            Digest::parse(&format!("sha256:{}", n.to_string().repeat(64))).unwrap(),
            1,
        );
        d.platform = Some(Platform::parse(platform).unwrap());
        d
    }

    #[test]
    fn accept_lists_every_type_we_read() {
        assert_eq!(
            accept_header(MANIFEST_TYPES),
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        );
    }

    #[test]
    fn platforms_parse_and_print() {
        for ok in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "windows/amd64",
        ] {
            assert_eq!(Platform::parse(ok).unwrap().to_string(), ok);
        }
        for bad in ["linux", "linux/", "Linux/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_selection() {
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                // Docker Hub's official images list build attestations this way.
                entry("unknown/unknown", 'e'),
                entry("linux/amd64", 'a'),
                entry("unknown/unknown", 'f'),
                entry("linux/arm/v6", 'b'),
                entry("linux/arm/v7", 'c'),
                entry("linux/arm64", 'd'),
            ],
            annotations: None,
        };
        let pick = |p: &str| {
            select_platform(&index, &Platform::parse(p).unwrap())
                .map(|d| d.digest.hex()[..1].to_string())
        };
        let cases = [
            ("linux/amd64", Ok("a")),
            ("linux/arm/v6", Ok("b")),
            ("linux/arm/v7", Ok("c")),
            ("linux/arm", Ok("c")),
            ("linux/arm64/v8", Ok("d")),
            ("linux/arm64", Ok("d")),
            (
                "linux/arm/v5",
                Err(
                    "no manifest for platform linux/arm/v5 in the index (it has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64)",
                ),
            ),
            (
                "linux/s390x",
                Err(
                    "no manifest for platform linux/s390x in the index (it has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64)",
                ),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(
                pick(p),
                want.map(str::to_string).map_err(str::to_string),
                "{p}"
            );
        }
    }

    #[test]
    fn the_media_type_comes_from_the_body_the_header_or_the_shape() {
        let d = format!("sha256:{}", "a".repeat(64));
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":1}},"layers":[]}}"#
        );
        let (p, t) = parse(manifest.as_bytes(), None).unwrap();
        assert!(matches!(p, Parsed::Image(_)));
        assert_eq!(t, OCI_MANIFEST);
        let (_, t) = parse(
            manifest.as_bytes(),
            Some(&format!("{DOCKER_MANIFEST}; charset=x")),
        )
        .unwrap();
        assert_eq!(t, DOCKER_MANIFEST);
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        let (p, t) = parse(index.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert!(matches!(p, Parsed::Index(_)));
        assert_eq!(t, DOCKER_LIST);
        let schema1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(
            parse(schema1.as_bytes(), None)
                .unwrap_err()
                .contains("schema 1")
        );
        assert!(
            parse(b"not json", None)
                .unwrap_err()
                .starts_with("the manifest is not JSON")
        );
    }

    #[test]
    fn docker_manifests_become_oci_manifests_of_the_same_blobs() {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let mut foreign = Descriptor::new(DOCKER_LAYER_FOREIGN, d('c'), 30);
        foreign.urls = Some(vec!["https://example.invalid/layer".into()]);
        let docker = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor::new(DOCKER_CONFIG, d('a'), 10),
            layers: vec![
                Descriptor::new(DOCKER_LAYER_GZIP, d('b'), 20),
                foreign,
                Descriptor::new(DOCKER_LAYER, d('e'), 40),
            ],
            annotations: None,
        };
        let oci = to_oci(&docker).unwrap();
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&oci).unwrap()).unwrap(),
            format!(
                concat!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","#,
                    r#""config":{{"mediaType":"{}","digest":"{}","size":10}},"#,
                    r#""layers":[{{"mediaType":"{}","digest":"{}","size":20}},"#,
                    r#"{{"mediaType":"{}","digest":"{}","size":30,"urls":["https://example.invalid/layer"]}},"#,
                    r#"{{"mediaType":"{}","digest":"{}","size":40}}]}}"#
                ),
                OCI_MANIFEST,
                OCI_CONFIG,
                d('a'),
                OCI_LAYER_GZIP,
                d('b'),
                OCI_LAYER_NONDIST_GZIP,
                d('c'),
                OCI_LAYER,
                d('e'),
            )
        );
        // An OCI manifest converts to itself; something that is no image does not convert.
        assert_eq!(to_oci(&oci).unwrap(), oci);
        let mut odd = docker.clone();
        odd.layers[0].media_type = "application/vnd.example.blob".into();
        assert_eq!(
            to_oci(&odd).unwrap_err(),
            format!(
                "layer {} has media type \"application/vnd.example.blob\", which has no OCI equivalent",
                d('b')
            )
        );
        odd = docker;
        odd.config.media_type = OCI_LAYER.into();
        assert!(to_oci(&odd).unwrap_err().contains("not an image config"));
    }

    #[test]
    fn layer_compressions() {
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(layer_compression(OCI_LAYER), Some(Compression::None));
        assert_eq!(layer_compression(OCI_LAYER_ZSTD), Some(Compression::Zstd));
        assert_eq!(layer_compression(OCI_CONFIG), None);
    }
}
