//! Image references: how `busybox` becomes `docker.io/library/busybox:latest`.
//!
//! A reference names an image in a registry: `[registry[:port]/][namespace/]repository[:tag][@digest]`.
//! Docker fills in what is missing: the registry defaults to Docker Hub (`docker.io`), a
//! one-part name on Docker Hub lives in the `library/` namespace (the official images), and
//! the tag defaults to `latest`. The grammar is distribution's `reference` package (the
//! `reference.go` comment block), which docker, podman and skopeo all share.
//!
//! Everything here is a pure function of its arguments (no files, no environment), so the
//! table tests below are the whole truth about it.
use std::fmt;
use std::str::FromStr;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The name older docker versions wrote for Docker Hub; it means the same registry.
pub const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host that serves Docker Hub's registry API (docker.io itself is a web site).
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Docker Hub's key in `config.json` (`auths`), kept from the v1 API days.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's limit on the whole name (registry included).
const NAME_MAX: usize = 255;

/// Which part of a reference is wrong, and why: `invalid reference "Busybox": repository
/// name "Busybox" must be lowercase`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {problem}")]
pub struct ReferenceError {
    /// What the user typed.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(input: &str, problem: impl Into<String>) -> ReferenceError {
    ReferenceError {
        input: input.to_string(),
        problem: problem.into(),
    }
}

/// A content digest: `sha256:` and 64 lowercase hex digits (OCI image spec, descriptor.md,
/// "Digests"). Only sha256 is supported: it is what every registry and image uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_hash(sha2::Sha256::digest(bytes).as_slice())
    }

    /// A digest from a finished sha256 hash.
    pub fn from_hash(hash: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(hash),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows image and layer ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Parses `sha256:<64 hex>`; the error says what is wrong, without the input.
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(format!("digest {s:?} must be ALGORITHM:HEX (sha256:...)"));
        };
        if algorithm != "sha256" {
            return Err(format!(
                "digest algorithm {algorithm:?} is not supported (only sha256)"
            ));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "digest {s:?} must have 64 lowercase hex digits after sha256:"
            ));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A normalised image reference: registry, repository path, tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `127.0.0.1:5055`, `reg.example.com`.
    pub registry: String,
    /// The repository path in that registry: `library/busybox`, `mysql/mysql-server`.
    pub repository: String,
    /// The tag (`latest` when neither a tag nor a digest was given).
    pub tag: Option<String>,
    /// The digest, when the reference pins one.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        // exercise(ch05.reference): split off @digest, then :tag (after the last '/'), then a registry-looking first part; default docker.io, library/ and latest
        if input.is_empty() {
            return Err(bad(input, "it is empty"));
        }
        // 1. The digest is everything after the first '@'.
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d).map_err(|e| bad(input, e))?)),
            None => (input, None),
        };
        // 2. The tag follows the last ':' that comes after the last '/', so that a
        //    registry port (`localhost:5000/x`) is not taken for a tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|e| bad(input, e))?;
        }
        // 3. The first component is a registry if it looks like a host: it has a '.' or a
        //    ':', or is `localhost`, or has capitals (distribution's splitDockerDomain).
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first, path)
            }
            _ => (DOCKER_HUB, name),
        };
        let registry = if registry == DOCKER_HUB_LEGACY {
            DOCKER_HUB
        } else {
            registry
        };
        check_registry(registry).map_err(|e| bad(input, e))?;
        check_repository(path).map_err(|e| bad(input, e))?;
        if digest.is_none() && path.len() == 64 && path.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                input,
                "a repository name cannot be 64 hex digits (that is an image id)",
            ));
        }
        // 4. Docker Hub's official images live in `library/`.
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(bad(
                input,
                format!("the name is longer than {NAME_MAX} characters"),
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
        // end exercise
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the registry API calls the manifest: the digest if pinned, else the tag.
    pub fn manifest_id(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The name an image pulled by this reference is stored under: `name@digest` when a
    /// digest is pinned (the tag, if any, is then only a comment, as docker treats it),
    /// `name:tag` otherwise.
    pub fn store_name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.name()),
            (None, Some(t)) => format!("{}:{t}", self.name()),
            (None, None) => format!("{}:{DEFAULT_TAG}", self.name()),
        }
    }

    /// The same reference with `digest` pinned instead of the tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository as docker shows it: `busybox`, `mysql/mysql-server`,
    /// `127.0.0.1:5055/a/b` (Docker Hub and `library/` left out).
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The whole reference as docker shows it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`: where `/v2/` lives (see
    /// [`api_base_of`] for `has_certs`).
    pub fn api_base(&self, has_certs: bool) -> String {
        api_base_of(&self.registry, has_certs)
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`, `reg/x@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Where a registry's API lives: `https://registry-1.docker.io` for Docker Hub (docker.io
/// itself is a web site), plain `http` for loopback registries (docker treats them as
/// insecure registries by default) unless they have certificates set up, `https` for every
/// other one. `has_certs` says whether the registry has a `certs.d` directory: the caller
/// looks (`crate::tls::certs_dir`), so that this stays a pure function of its arguments.
pub fn api_base_of(registry: &str, has_certs: bool) -> String {
    let host = if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    };
    let scheme = if is_loopback(registry) && !has_certs {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// The host part of a registry (`localhost`, `127.0.0.1`, `[::1]`), without its port.
pub fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = registry_host(registry);
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Normalises what a user gives `login`/`logout`: `docker.io` and friends become Docker
/// Hub, and a URL loses its scheme and path (docker accepts `https://reg:5000/v2/`).
pub fn normalize_registry(input: &str) -> Result<String, ReferenceError> {
    let s = input
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    let s = match s {
        DOCKER_HUB | DOCKER_HUB_LEGACY | DOCKER_HUB_API => DOCKER_HUB,
        other => other,
    };
    check_registry(s).map_err(|e| bad(input, e))?;
    Ok(s.to_string())
}

/// `tag := [\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    if b.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if b.len() > 128 {
        return Err(format!("tag {tag:?} is longer than 128 characters"));
    }
    if !word(b[0]) {
        return Err(format!(
            "tag {tag:?} must start with a letter, a digit or '_'"
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|&c| !(c.is_ascii() && (word(c as u8) || c == '.' || c == '-')))
    {
        return Err(format!(
            "tag {tag:?} may only contain letters, digits, '_', '.' and '-' (not {c:?})"
        ));
    }
    Ok(())
}

/// `host[:port]`, host being dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels or
/// a bracketed IPv6 address.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!("registry {registry:?} has an unclosed '['"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry {registry:?}: {ip:?} is not an IPv6 address"
            ));
        }
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(format!(
                "registry host {host:?} is not a valid host name (letters, digits, '-' and '.')"
            ));
        }
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!(
            "registry port {port:?} is not a number from 1 to 65535"
        ));
    }
    Ok(())
}

/// `path-component ['/' path-component]*`, each `[a-z0-9]+` joined by `.`, `_`, `__` or
/// any number of `-`.
fn check_repository(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".into());
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name {path:?} must be lowercase"));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!(
                "repository name {path:?} has an empty path component"
            ));
        }
        check_component(component)
            .map_err(|why| format!("repository name {path:?}: component {component:?} {why}"))?;
    }
    Ok(())
}

fn check_component(c: &str) -> Result<(), &'static str> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("must start and end with a lowercase letter or a digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-"+; never two different ones in a row.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(
                "may only contain lowercase letters, digits and single '.', '_' or '__', or runs of '-' between them",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn normalisation_follows_dockers_rules() {
        let a = d('a');
        let cases: Vec<(String, String, String)> = vec![
            // input, full form, familiar form
            (
                "busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
                "busybox:1.36".into(),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "index.docker.io/mysql/mysql-server:5.5".into(),
                "docker.io/mysql/mysql-server:5.5".into(),
                "mysql/mysql-server:5.5".into(),
            ),
            (
                "mysql/mysql-server:5.5".into(),
                "docker.io/mysql/mysql-server:5.5".into(),
                "mysql/mysql-server:5.5".into(),
            ),
            (
                "localhost/x".into(),
                "localhost/x:latest".into(),
                "localhost/x:latest".into(),
            ),
            (
                "localhost:5000/x".into(),
                "localhost:5000/x:latest".into(),
                "localhost:5000/x:latest".into(),
            ),
            (
                "127.0.0.1:5055/a/b:tag".into(),
                "127.0.0.1:5055/a/b:tag".into(),
                "127.0.0.1:5055/a/b:tag".into(),
            ),
            (
                format!("reg.example.com/x@{a}"),
                format!("reg.example.com/x@{a}"),
                format!("reg.example.com/x@{a}"),
            ),
            (
                format!("busybox:1.36@{a}"),
                format!("docker.io/library/busybox:1.36@{a}"),
                format!("busybox:1.36@{a}"),
            ),
            (
                "a-b__c/e---f_g.h:v1.2-rc_3".into(),
                "docker.io/a-b__c/e---f_g.h:v1.2-rc_3".into(),
                "a-b__c/e---f_g.h:v1.2-rc_3".into(),
            ),
            (
                "[::1]:5000/x".into(),
                "[::1]:5000/x:latest".into(),
                "[::1]:5000/x:latest".into(),
            ),
            (
                "Reg.Example/x".into(),
                "Reg.Example/x:latest".into(),
                "Reg.Example/x:latest".into(),
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(Reference::parse(&full).unwrap(), r, "{full} round-trips");
        }
    }

    #[test]
    fn bad_references_say_which_part_is_wrong() {
        let cases = [
            ("", "it is empty"),
            ("Busybox", "repository name \"Busybox\" must be lowercase"),
            ("busybox:", "the tag after ':' is empty"),
            (
                "busybox:-x",
                "tag \"-x\" must start with a letter, a digit or '_'",
            ),
            (
                "busybox:a+b",
                "tag \"a+b\" may only contain letters, digits, '_', '.' and '-' (not '+')",
            ),
            (
                "busybox@sha256:abc",
                "digest \"sha256:abc\" must have 64 lowercase hex digits after sha256:",
            ),
            (
                "busybox@md5:abc",
                "digest algorithm \"md5\" is not supported (only sha256)",
            ),
            (
                "busybox@abc",
                "digest \"abc\" must be ALGORITHM:HEX (sha256:...)",
            ),
            (
                "localhost:99999/x",
                "registry port \"99999\" is not a number from 1 to 65535",
            ),
            (
                "local_host:5000/x",
                "registry host \"local_host\" is not a valid host name (letters, digits, '-' and '.')",
            ),
            (
                "a//b",
                "repository name \"a//b\" has an empty path component",
            ),
            (
                "a/-b",
                "repository name \"a/-b\": component \"-b\" must start and end with a lowercase letter or a digit",
            ),
            (
                "a/b._c",
                "repository name \"a/b._c\": component \"b._c\" may only contain lowercase letters, digits and single '.', '_' or '__', or runs of '-' between them",
            ),
            ("localhost:5000/", "the repository name is empty"),
        ];
        for (input, problem) in cases {
            let err = Reference::parse(input).expect_err(input);
            assert_eq!(err.problem, problem, "{input}");
            assert_eq!(
                err.to_string(),
                format!("invalid reference {input:?}: {problem}")
            );
        }
        let hex = "f".repeat(64);
        assert!(
            Reference::parse(&hex)
                .unwrap_err()
                .problem
                .contains("image id")
        );
    }

    #[test]
    fn registries_map_to_api_hosts_and_schemes() {
        // (reference, has a certs.d directory, API base)
        let cases = [
            ("busybox", false, "https://registry-1.docker.io"),
            ("localhost:5000/x", false, "http://localhost:5000"),
            ("localhost:5000/x", true, "https://localhost:5000"),
            ("127.0.0.1:5055/x", false, "http://127.0.0.1:5055"),
            ("127.1.2.3/x", false, "http://127.1.2.3"),
            ("[::1]:5000/x", false, "http://[::1]:5000"),
            ("[::1]:5000/x", true, "https://[::1]:5000"),
            ("reg.example.com/x", false, "https://reg.example.com"),
            ("reg.example.com/x", true, "https://reg.example.com"),
            ("128.0.0.1/x", false, "https://128.0.0.1"),
        ];
        for (input, certs, base) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.api_base(certs), base, "{input} {certs}");
        }
    }

    #[test]
    fn manifest_ids_and_store_names() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.manifest_id(), "latest");
        assert_eq!(r.store_name(), "docker.io/library/busybox:latest");
        let pinned = Reference::parse(&format!("busybox:1@{}", d('b'))).unwrap();
        assert_eq!(pinned.manifest_id(), d('b'));
        assert_eq!(
            pinned.store_name(),
            format!("docker.io/library/busybox@{}", d('b'))
        );
    }

    #[test]
    fn login_registries_are_normalised() {
        for (input, want) in [
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ] {
            assert_eq!(normalize_registry(input).unwrap(), want, "{input}");
        }
        assert!(normalize_registry("bad host").is_err());
    }

    #[test]
    fn digests_of_bytes() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
