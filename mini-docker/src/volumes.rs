//! Named and anonymous volumes: directories under the store, bind-mounted into containers
//! (chapter 3 mounts them before the root switch). They outlive containers; an anonymous
//! volume goes with `rm -v` (or `run --rm`), a named one only with `volume rm`.
//!
//! ```text
//! ROOT/volumes/NAME/_data        what the container sees
//! ROOT/volumes/NAME/volume.json  created, anonymous or not
//! ```
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::record::{now, valid_name, write_atomic};

/// A volume's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Volume {
    /// Its name.
    #[serde(rename = "Name")]
    pub name: String,
    /// When it was created.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// Always `local`.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Where its data is.
    #[serde(rename = "Mountpoint")]
    pub mountpoint: PathBuf,
    /// Made for one container, without a name of the user's.
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
    /// `volume create --label`.
    #[serde(rename = "Labels", default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Volume {
    /// As docker's `volume inspect` shows it (`volume.Volume`): no `Anonymous`, and
    /// `Labels` and `Options` as objects for a volume made by `volume create`, null for
    /// one a container made.
    pub fn docker_json(&self) -> serde_json::Value {
        let empty_or_null = |anon: bool| {
            if anon {
                serde_json::Value::Null
            } else {
                serde_json::json!({})
            }
        };
        // RFC 3339 to the second, as docker's local driver writes it.
        let created = self
            .created_at
            .parse::<jiff::Timestamp>()
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|_| self.created_at.clone());
        serde_json::json!({
            "CreatedAt": created,
            "Driver": self.driver,
            "Labels": if self.labels.is_empty() { empty_or_null(self.anonymous) } else { serde_json::json!(self.labels) },
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": empty_or_null(self.anonymous),
            "Scope": "local",
        })
    }
}

/// Where a volume's data lives.
pub fn data_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}

/// Creates a volume (nothing happens if it exists, as with docker).
pub fn create(root: &Path, name: &str, anonymous: bool) -> Result<Volume, Error> {
    create_labeled(root, name, anonymous, Default::default())
}

/// [`create`] with `volume create --label`'s labels.
pub fn create_labeled(
    root: &Path,
    name: &str,
    anonymous: bool,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<Volume, Error> {
    if name.len() == 1 {
        return Err(Error::Usage(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        )));
    }
    if let Ok(v) = inspect(root, name) {
        return Ok(v);
    }
    let data = data_dir(root, name);
    fs::create_dir_all(&data).map_err(|e| Error::io("create", &data, e))?;
    let v = Volume {
        name: name.to_string(),
        created_at: now(),
        driver: "local".into(),
        mountpoint: data,
        anonymous,
        labels,
    };
    let meta = root.join("volumes").join(name).join("volume.json");
    write_atomic(
        &meta,
        &serde_json::to_vec_pretty(&v).expect("a volume serialises"),
    )?;
    Ok(v)
}

/// A volume's record.
pub fn inspect(root: &Path, name: &str) -> Result<Volume, Error> {
    let meta = root.join("volumes").join(name).join("volume.json");
    let bytes = fs::read(&meta).map_err(|_| Error::NoSuchVolume(name.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(meta, e.to_string()))
}

/// Every volume, by name.
pub fn list(root: &Path) -> Result<Vec<Volume>, Error> {
    let dir = root.join("volumes");
    let mut out: Vec<Volume> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| inspect(root, &e.file_name().to_string_lossy()).ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("read", &dir, e)),
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a volume, unless `users` (the containers that mount it, which the caller asks
/// `containers::volume_users`) is not empty.
pub fn remove(root: &Path, name: &str, users: &[String]) -> Result<(), Error> {
    inspect(root, name)?;
    if !users.is_empty() {
        return Err(Error::Conflict(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        )));
    }
    let dir = root.join("volumes").join(name);
    fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))
}

/// Removes the volumes no container uses: anonymous ones, and with `all` named ones too
/// (docker's `volume prune` rules); `in_use` says whether a container mounts one. Returns
/// the bytes freed and the names removed.
pub fn prune(
    root: &Path,
    all: bool,
    in_use: impl Fn(&str) -> Result<bool, Error>,
) -> Result<(u64, Vec<String>), Error> {
    let mut freed = 0;
    let mut names = Vec::new();
    for v in list(root)? {
        if (!v.anonymous && !all) || in_use(&v.name)? {
            continue;
        }
        freed += ch05_image_pull::store::dir_size(&v.mountpoint).unwrap_or(0);
        remove(root, &v.name, &[])?;
        names.push(v.name);
    }
    Ok((freed, names))
}
