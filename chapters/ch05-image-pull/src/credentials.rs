//! Where `login` keeps credentials: Docker's `config.json`, so existing logins work.
//!
//! The format is docker's: `{"auths": {"REGISTRY": {"auth": base64("user:pass")}}}`, with
//! Docker Hub under its historic key `https://index.docker.io/v1/`. Only the `auth` field is
//! understood; credential helpers (`credsStore`, `credHelpers`) are not run. We write
//! `$MINI_DOCKER_CONFIG/config.json` (else `~/.mini-docker/config.json`) with mode 0600,
//! and read it first, then docker's own (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), which we never write.
use std::fs;
use std::path::{Path, PathBuf};

use crate::auth::Credentials;
use crate::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY};

/// Reading or writing a config file failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we did.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the JSON we expect.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The config files, the one we write first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    /// Ours: written by `login`, read first.
    pub ours: PathBuf,
    /// Docker's: read only.
    pub docker: Option<PathBuf>,
}

impl ConfigFiles {
    /// The files the environment names (see the module comment).
    pub fn from_env() -> ConfigFiles {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let ours = match std::env::var_os("MINI_DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d).join("config.json"),
            None => home
                .clone()
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".mini-docker/config.json"),
        };
        let docker = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => Some(PathBuf::from(d).join("config.json")),
            None => home.map(|h| h.join(".docker/config.json")),
        };
        ConfigFiles { ours, docker }
    }

    /// Looks up the credentials for `registry`, in our file, then docker's.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
        for path in std::iter::once(&self.ours).chain(self.docker.iter()) {
            let Some(config) = read_config(path)? else {
                continue;
            };
            if let Some(c) =
                lookup(&config, registry).map_err(|problem| CredentialsError::Format {
                    path: path.clone(),
                    problem,
                })?
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in our file (created with mode 0600).
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), CredentialsError> {
        let mut config = read_config(&self.ours)?.unwrap_or_else(|| serde_json::json!({}));
        set_auth(&mut config, registry, Some(creds)).map_err(|problem| {
            CredentialsError::Format {
                path: self.ours.clone(),
                problem,
            }
        })?;
        write_config(&self.ours, &config)
    }

    /// Removes `registry` from our file; returns whether it was there.
    pub fn remove(&self, registry: &str) -> Result<bool, CredentialsError> {
        let Some(mut config) = read_config(&self.ours)? else {
            return Ok(false);
        };
        let had =
            set_auth(&mut config, registry, None).map_err(|problem| CredentialsError::Format {
                path: self.ours.clone(),
                problem,
            })?;
        if had {
            write_config(&self.ours, &config)?;
        }
        Ok(had)
    }

    /// True when docker's own file has credentials for `registry` (logout cannot remove them).
    pub fn in_docker_config(&self, registry: &str) -> bool {
        self.docker
            .as_deref()
            .and_then(|p| read_config(p).ok().flatten())
            .is_some_and(|c| matches!(lookup(&c, registry), Ok(Some(_))))
    }
}

/// The `auths` key for a registry: Docker Hub's historic URL, else `host[:port]`.
pub fn auth_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Reduces an `auths` key to the registry it names, as docker does: keys may be URLs
/// (`https://reg:5000/v1/`, `http://localhost:5000`).
pub fn key_registry(key: &str) -> String {
    crate::reference::normalize_registry(key).unwrap_or_else(|_| key.to_string())
}

/// Finds `registry`'s credentials in a parsed config.
pub fn lookup(config: &serde_json::Value, registry: &str) -> Result<Option<Credentials>, String> {
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let exact = auths.get(&auth_key(registry));
    let entry = exact.or_else(|| {
        auths
            .iter()
            .find(|(k, _)| key_registry(k) == registry)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str())
        && !auth.is_empty()
    {
        return Credentials::decode(auth)
            .map(Some)
            .map_err(|e| format!("auths[{:?}]: {e}", auth_key(registry)));
    }
    // docker also accepts separate fields, written by older versions
    if let (Some(u), Some(p)) = (
        entry.get("username").and_then(|v| v.as_str()),
        entry.get("password").and_then(|v| v.as_str()),
    ) {
        return Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        }));
    }
    Ok(None)
}

/// Sets (or with `None` removes) `registry`'s entry; returns whether an entry was there.
pub fn set_auth(
    config: &mut serde_json::Value,
    registry: &str,
    creds: Option<&Credentials>,
) -> Result<bool, String> {
    let obj = config
        .as_object_mut()
        .ok_or("the file is not a JSON object")?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or("\"auths\" is not a JSON object")?;
    let keys: Vec<String> = auths
        .keys()
        .filter(|k| key_registry(k) == registry)
        .cloned()
        .collect();
    let had = !keys.is_empty();
    for k in keys {
        auths.remove(&k);
    }
    if let Some(c) = creds {
        auths.insert(
            auth_key(registry),
            serde_json::json!({ "auth": c.encode() }),
        );
    }
    Ok(had)
}

fn read_config(path: &Path) -> Result<Option<serde_json::Value>, CredentialsError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CredentialsError::Format {
                    path: path.to_path_buf(),
                    problem: format!("not valid JSON: {e}"),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes atomically ([`crate::store::atomic_write_with_mode`]) with mode 0600: the file
/// holds passwords.
fn write_config(path: &Path, config: &serde_json::Value) -> Result<(), CredentialsError> {
    let io = |op, source| CredentialsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    let mut text = serde_json::to_vec_pretty(config).expect("a Value serialises");
    text.push(b'\n');
    crate::store::atomic_write_with_mode(path, &text, 0o600).map_err(|e| io("write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: "pw".into(),
        }
    }

    #[test]
    fn keys_follow_docker() {
        assert_eq!(auth_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(auth_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(key_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(key_registry("http://localhost:5000"), "localhost:5000");
    }

    #[test]
    fn entries_are_found_under_any_spelling_and_replaced() {
        let mut config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": creds("hub").encode()},
                "http://localhost:5000/": {"username": "old", "password": "pw"}
            },
            "credsStore": "kept"
        });
        assert_eq!(lookup(&config, "docker.io").unwrap(), Some(creds("hub")));
        assert_eq!(
            lookup(&config, "localhost:5000").unwrap(),
            Some(creds("old"))
        );
        assert_eq!(lookup(&config, "other:1").unwrap(), None);
        assert!(set_auth(&mut config, "localhost:5000", Some(&creds("new"))).unwrap());
        assert_eq!(
            config["auths"]["localhost:5000"]["auth"],
            creds("new").encode()
        );
        assert!(config["auths"].get("http://localhost:5000/").is_none());
        assert_eq!(config["credsStore"], "kept");
        assert!(set_auth(&mut config, "docker.io", None).unwrap());
        assert!(!set_auth(&mut config, "docker.io", None).unwrap());
    }

    #[test]
    fn store_reads_ours_then_dockers_and_writes_only_ours() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let files = ConfigFiles {
            ours: dir.path().join("ours/config.json"),
            docker: Some(dir.path().join("docker/config.json")),
        };
        fs::create_dir_all(dir.path().join("docker")).unwrap();
        let docker_text =
            serde_json::json!({"auths": {"r:1": {"auth": creds("d").encode()}}}).to_string();
        fs::write(files.docker.as_ref().unwrap(), &docker_text).unwrap();
        assert_eq!(files.get("r:1").unwrap(), Some(creds("d")));
        files.store("r:1", &creds("o")).unwrap();
        assert_eq!(files.get("r:1").unwrap(), Some(creds("o")));
        let mode = fs::metadata(&files.ours).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(files.remove("r:1").unwrap());
        assert_eq!(files.get("r:1").unwrap(), Some(creds("d")));
        assert!(files.in_docker_config("r:1"));
        assert_eq!(
            fs::read_to_string(files.docker.as_ref().unwrap()).unwrap(),
            docker_text
        );
    }
}
