//! What `images` and `inspect` print: docker's table and docker's units.
use crate::reference::{DEFAULT_TAG, Reference};
use crate::store::Image;

/// One row of `images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `busybox`, `127.0.0.1:5055/a/b`.
    pub repository: String,
    /// `latest`, or `<none>` for a digest reference.
    pub tag: String,
    /// The first 12 hex digits of the image ID.
    pub id: String,
    /// `3 days ago`.
    pub created: String,
    /// `4.26MB`.
    pub size: String,
}

/// The rows for every name in the store, `now` being the current Unix time.
pub fn rows(list: &[(String, Image)], now: i64) -> Vec<Row> {
    let mut rows: Vec<Row> = list
        .iter()
        .map(|(name, image)| {
            let (repository, tag) = match Reference::parse(name) {
                // A dangling image: no name (see `Store::set_name`).
                _ if name.is_empty() => ("<none>".into(), "<none>".into()),
                Ok(r) => (
                    r.familiar_name(),
                    r.tag
                        .clone()
                        .filter(|_| r.digest.is_none())
                        .unwrap_or_else(|| "<none>".into()),
                ),
                Err(_) => (name.clone(), DEFAULT_TAG.into()),
            };
            let created = image
                .config
                .created()
                .as_deref()
                .and_then(|c| c.parse::<jiff::Timestamp>().ok())
                .map(|t| {
                    let ago = u64::try_from(now - t.as_second()).unwrap_or(0);
                    human_duration(std::time::Duration::from_secs(ago)) + " ago"
                })
                .unwrap_or_else(|| "N/A".into());
            Row {
                repository,
                tag,
                id: image.config_digest.short().to_string(),
                created,
                size: human_size(image.size),
            }
        })
        .collect();
    // By name, the dangling ones last.
    rows.sort_by(|a, b| {
        let key = |r: &Row| {
            (
                r.repository == "<none>",
                r.repository.clone(),
                r.tag.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    rows
}

/// Lays rows out as docker does: columns padded to the widest cell plus three spaces, at
/// least ten wide.
pub fn table(rows: &[Row]) -> String {
    let header = Row {
        repository: "REPOSITORY".into(),
        tag: "TAG".into(),
        id: "IMAGE ID".into(),
        created: "CREATED".into(),
        size: "SIZE".into(),
    };
    let all: Vec<&Row> = std::iter::once(&header).chain(rows).collect();
    // docker's tabwriter: minimum width 10, padding 3.
    let width = |f: fn(&Row) -> &str| {
        (all.iter().map(|r| f(r).chars().count()).max().unwrap_or(0) + 3).max(10)
    };
    let (w1, w2, w3, w4) = (
        width(|r| &r.repository),
        width(|r| &r.tag),
        width(|r| &r.id),
        width(|r| &r.created),
    );
    let mut out = String::new();
    for r in all {
        out.push_str(&format!(
            "{:<w1$}{:<w2$}{:<w3$}{:<w4$}{}\n",
            r.repository, r.tag, r.id, r.created, r.size
        ));
    }
    out
}

/// Bytes in decimal units with three significant digits, as `docker images` prints sizes
/// (go-units `HumanSizeWithPrecision(size, 3)`): `4.26MB`, `512B`, `1.5GB`.
pub fn human_size(bytes: u64) -> String {
    in_units(bytes, 1000.0, &DECIMAL, 3)
}

/// go-units' decimal units (`HumanSize`).
pub const DECIMAL: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
/// go-units' binary units (`BytesSize`, for memory).
pub const BINARY: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// `bytes` divided by `base` until it is below it, with `digits` significant digits and
/// trailing zeros dropped, like Go's `%.{digits}g`: the one formatter behind go-units'
/// `HumanSize` (1000, 4 digits), `HumanSizeWithPrecision` and `BytesSize` (1024, 4).
pub fn in_units(bytes: u64, base: f64, units: &[&str], digits: usize) -> String {
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= base && unit < units.len() - 1 {
        size /= base;
        unit += 1;
    }
    let whole = if size >= 1.0 {
        size.log10().floor() as usize + 1
    } else {
        1
    };
    let decimals = digits.saturating_sub(whole);
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[unit])
}

/// A duration the way docker says how long ago something was (go-units `HumanDuration`:
/// whole seconds and minutes, hours rounded).
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let minutes = secs / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// `inspect`: the image's identity, its manifest and its config, as JSON. `RepoTags` and
/// `RepoDigests` are docker's: the names as docker shows them (`busybox:latest`), and
/// `REPOSITORY@DIGEST` with the digest the registry knows the image by (the one `pull`
/// printed). `ManifestDigest` is the manifest the store names (OCI), and
/// `OriginalManifest` the registry's, when the store converted it.
pub fn inspect(image: &Image, manifest_bytes: &[u8], config_bytes: &[u8]) -> serde_json::Value {
    let parse = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b).unwrap_or(serde_json::Value::Null)
    };
    let familiar = |name: &String| {
        Reference::parse(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.clone())
    };
    let tags: Vec<String> = image
        .references
        .iter()
        .filter(|r| !r.contains('@'))
        .map(familiar)
        .collect();
    let digests: Vec<String> = image.repo_digests.iter().map(familiar).collect();
    serde_json::json!({
        "Id": image.config_digest.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "ManifestDigest": image.manifest_digest.to_string(),
        "ManifestMediaType": image.manifest_media_type,
        "OriginalManifest": image.original_manifest.as_ref().map(|d| serde_json::json!({
            "Digest": d.digest.to_string(),
            "MediaType": d.media_type,
            "Size": d.size,
        })),
        "Size": image.size,
        "Layers": image.layers.iter().map(|l| serde_json::json!({
            "Digest": l.digest.to_string(),
            "DiffID": l.diff_id.to_string(),
            "Size": l.size,
            "MediaType": l.media_type,
        })).collect::<Vec<_>>(),
        "Manifest": parse(manifest_bytes),
        "Config": parse(config_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_dockers_units() {
        for (bytes, want) in [
            (0, "0B"),
            (512, "512B"),
            (999, "999B"),
            (1000, "1kB"),
            (1536, "1.54kB"),
            (4_261_234, "4.26MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (1_500_000_000, "1.5GB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn durations_in_dockers_words() {
        let h = 3600;
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (61 * 60, "About an hour"),
            (5 * 60, "5 minutes"),
            (47 * h, "47 hours"),
            (5 * h + 40 * 60, "6 hours"),
            (48 * h, "2 days"),
            (13 * 24 * h, "13 days"),
            (15 * 24 * h, "2 weeks"),
            (90 * 24 * h, "3 months"),
            (800 * 24 * h, "2 years"),
        ] {
            assert_eq!(
                human_duration(std::time::Duration::from_secs(s)),
                want,
                "{s}"
            );
        }
    }

    #[test]
    fn the_table_pads_like_docker() {
        let rows = vec![Row {
            repository: "busybox".into(),
            tag: "latest".into(),
            id: "3f57d9401f8d".into(),
            created: "2 weeks ago".into(),
            size: "4.26MB".into(),
        }];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    3f57d9401f8d   2 weeks ago   4.26MB\n"
        );
    }
}
