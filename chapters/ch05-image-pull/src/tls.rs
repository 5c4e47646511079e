//! Registries with certificates of their own, the way docker finds them: a directory named
//! after the registry (`HOST:PORT`) under `certs.d`, holding
//!
//! * `*.crt`: certificate authorities to trust for this registry (a private registry's
//!   self-signed CA), instead of the public ones (docker adds them to the public ones;
//!   here a registry with a `certs.d` directory must be signed by one of its CAs);
//! * `NAME.cert` with `NAME.key`: a client certificate to show it (mutual TLS).
//!
//! The directories looked at, in order: `$MINI_DOCKER_CONFIG/certs.d` (else
//! `~/.mini-docker/certs.d`), then docker's `/etc/docker/certs.d`, so a registry already
//! set up for docker works as it is. A registry that has such a directory is spoken to over
//! https even on loopback (where plain http is the default, as docker's "insecure" local
//! registries).
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// The `certs.d` directories, most specific first.
pub fn certs_roots() -> Vec<PathBuf> {
    let ours = match std::env::var_os("MINI_DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d).join("certs.d"),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".mini-docker/certs.d"),
    };
    vec![ours, PathBuf::from("/etc/docker/certs.d")]
}

/// The certificates directory of `registry` (`HOST:PORT` as in an image reference), if
/// one exists.
pub fn certs_dir(registry: &str) -> Option<PathBuf> {
    certs_dir_in(&certs_roots(), registry)
}

/// [`certs_dir`] under the given roots. A name that could leave a root (`..`, a `/`) is
/// never looked up.
fn certs_dir_in(roots: &[PathBuf], registry: &str) -> Option<PathBuf> {
    if registry.is_empty() || registry.contains('/') || registry.starts_with('.') {
        return None;
    }
    roots
        .iter()
        .map(|root| root.join(registry))
        .find(|d| d.is_dir())
}

/// The TLS settings a certificates directory asks for. Errors name the file and what is
/// wrong with it.
pub fn config_from(dir: &Path) -> Result<TlsConfig, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let mut client: Option<ClientCert> = None;
    for path in &entries {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = read(path)?;
                let before = roots.len();
                for item in ureq::tls::parse_pem(&pem) {
                    if let Ok(PemItem::Certificate(c)) = item {
                        roots.push(c);
                    }
                }
                if roots.len() == before {
                    return Err(format!("{}: no PEM certificate in it", path.display()));
                }
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(format!(
                    "{}: a client key without its certificate ({})",
                    path.display(),
                    path.with_extension("cert").display()
                ));
            }
            Some("cert") => {
                let key_path = path.with_extension("key");
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&read(path)?)
                    .filter_map(|i| match i {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key: Option<PrivateKey<'static>> = ureq::tls::parse_pem(&read(&key_path)?)
                    .find_map(|i| match i {
                        Ok(PemItem::PrivateKey(k)) => Some(k),
                        _ => None,
                    });
                let Some(key) = key.filter(|_| !chain.is_empty()) else {
                    return Err(format!(
                        "{} with {}: a PEM certificate and a PEM private key are needed",
                        path.display(),
                        key_path.display()
                    ));
                };
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
            _ => {}
        }
    }
    let mut builder = TlsConfig::builder();
    if !roots.is_empty() {
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    if let Some(c) = client {
        builder = builder.client_cert(Some(c));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_registry_name_is_looked_up() {
        // Every name below exists as a directory from the root's point of view.
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("certs.d");
        for d in ["certs.d/a/b", "certs.d/.hidden", "etc", "certs.d/host:5000"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        let roots = [root.clone()];
        for bad in ["", "../etc", "a/b", ".hidden", ".."] {
            assert_eq!(certs_dir_in(&roots, bad), None, "{bad:?}");
        }
        assert_eq!(
            certs_dir_in(&roots, "host:5000"),
            Some(root.join("host:5000"))
        );
    }

    #[test]
    fn a_crt_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        let err = config_from(dir.path()).unwrap_err();
        assert!(err.ends_with("ca.crt: no PEM certificate in it"), "{err}");
        std::fs::remove_file(dir.path().join("ca.crt")).unwrap();
        std::fs::write(dir.path().join("client.cert"), "").unwrap();
        std::fs::write(dir.path().join("client.key"), "").unwrap();
        let err = config_from(dir.path()).unwrap_err();
        assert!(
            err.contains("a PEM certificate and a PEM private key"),
            "{err}"
        );
    }
}
