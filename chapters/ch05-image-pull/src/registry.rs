//! The registry HTTP API, by hand: the OCI distribution spec (spec.md, the "pull" and
//! "push" workflows) and Docker's token authentication on top.
//!
//! Every request a pull or push makes is one of a handful:
//!
//! | request | why |
//! | --- | --- |
//! | `GET /v2/` | is this a registry, and how does it want us to authenticate? |
//! | `GET realm?service=S&scope=repository:NAME:pull` | a Bearer token for that scope |
//! | `GET /v2/NAME/manifests/REF` | the manifest or index (`Accept` says which types we read) |
//! | `GET /v2/NAME/blobs/DIGEST` | a config or layer; may redirect to a CDN |
//! | `HEAD /v2/NAME/blobs/DIGEST` | does the registry have it already? (push) |
//! | `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER` | copy it from another repository (push) |
//! | `POST /v2/NAME/blobs/uploads/`, `PATCH`, `PUT ...?digest=` | upload it (push) |
//! | `PUT /v2/NAME/manifests/TAG` | the manifest, last: it names blobs that must exist (push) |
//!
//! [`Client`] holds what the conversation learned (the challenge, the current token) and
//! retries what is worth retrying.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Error;
use crate::auth::{self, Challenge, Credentials};
use crate::manifest;
use crate::reference::{Digest, Reference};
use crate::transport::{Body, Method, Request, Response, Transport, http_reason};

/// The largest manifest, token or error body we read into memory (distribution's own
/// manifest limit is 4 MiB).
pub const SMALL_BODY_LIMIT: u64 = 4 << 20;
/// How many times a request is tried when the failure may be temporary.
pub const ATTEMPTS: u32 = 3;

/// Something to tell the user about (a retry), whatever is showing progress.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Debug, Default, Clone)]
struct AuthState {
    /// The challenge `GET /v2/` answered with, if any.
    challenge: Option<Challenge>,
    /// What we send as `Authorization`.
    header: Option<String>,
}

/// A conversation with one registry, for one set of repositories.
pub struct Client<'t> {
    transport: &'t dyn Transport,
    /// `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// `http://127.0.0.1:5000`, `https://registry-1.docker.io`.
    pub base: String,
    credentials: Option<Credentials>,
    scopes: Mutex<Vec<String>>,
    auth: Mutex<AuthState>,
    notify: Notify,
    /// Pause before the second attempt (doubled for each next one).
    pub backoff: Duration,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// A manifest as the registry sent it: the raw bytes, its `Content-Type` and its
/// `Docker-Content-Digest`.
pub type ManifestAnswer = (Vec<u8>, Option<String>, Option<String>);

/// What a mount request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked the blob from the other repository: nothing to upload.
    Mounted,
    /// It could not (no access, or it lacks the blob) and opened an upload session here.
    Upload(String),
}

impl<'t> Client<'t> {
    /// A client for `reference`'s registry, which will ask for `scopes` when it needs a
    /// token. Nothing is sent yet: see [`Client::ping`].
    pub fn new(
        transport: &'t dyn Transport,
        reference: &Reference,
        credentials: Option<Credentials>,
        scopes: Vec<String>,
        notify: Notify,
    ) -> Client<'t> {
        Client::for_registry(transport, &reference.registry, credentials, scopes, notify)
    }

    /// A client for a registry by name (`login` has no repository).
    pub fn for_registry(
        transport: &'t dyn Transport,
        registry: &str,
        credentials: Option<Credentials>,
        scopes: Vec<String>,
        notify: Notify,
    ) -> Client<'t> {
        Client {
            transport,
            registry: registry.to_string(),
            base: crate::reference::api_base_of(
                registry,
                crate::tls::certs_dir(registry).is_some(),
            ),
            credentials,
            scopes: Mutex::new(scopes),
            auth: Mutex::new(AuthState::default()),
            notify,
            backoff: Duration::from_millis(500),
        }
    }

    /// Adds a scope to ask for in the next token (a mount needs pull on the source).
    pub fn add_scope(&self, scope: String) {
        let mut s = self.scopes.lock().expect("not poisoned");
        if !s.contains(&scope) {
            s.push(scope);
        }
    }

    /// `GET /v2/`: checks that this is a registry speaking the v2 API and learns from a 401
    /// how it wants us to authenticate, then authenticates that way (spec.md, "Determining
    /// Support"; token.md, "How to authenticate").
    pub fn ping(&self) -> Result<(), Error> {
        let url = format!("{}/v2/", self.base);
        let response = self.send_once(Request::new(Method::Get, &url), false)?;
        match response.status {
            200 => Ok(()),
            401 => {
                let challenge = challenge_of(&self.registry, &response)?;
                self.auth.lock().expect("not poisoned").challenge = Some(challenge);
                self.authenticate(None)
            }
            _ => Err(registry_error(Method::Get, &url, response)),
        }
    }

    /// Answers the registry's challenge: Basic sends the credentials with every request;
    /// Bearer fetches a token for our scopes from the realm the challenge names (token.md).
    /// `challenge` is a newer one than `GET /v2/`'s (a 401 on a later request, which may
    /// name the scope it wants).
    fn authenticate(&self, challenge: Option<Challenge>) -> Result<(), Error> {
        let mut state = self.auth.lock().expect("not poisoned");
        if let Some(c) = challenge {
            state.challenge = Some(c);
        }
        let Some(challenge) = state.challenge.clone() else {
            return Ok(());
        };
        let header = match challenge.scheme.as_str() {
            "basic" => match &self.credentials {
                Some(c) => c.basic_header(),
                None => {
                    return Err(Error::NeedLogin {
                        registry: self.registry.clone(),
                        challenge: describe(&challenge),
                    });
                }
            },
            "bearer" => {
                // A challenge may name several scopes, separated by spaces (distribution's
                // token.md); each is its own `scope` parameter in the token request.
                for scope in challenge.param("scope").unwrap_or("").split_whitespace() {
                    self.add_scope(scope.to_string());
                }
                let scopes = self.scopes.lock().expect("not poisoned").clone();
                format!("Bearer {}", self.fetch_token(&challenge, &scopes, None)?)
            }
            other => {
                return Err(Error::Auth {
                    registry: self.registry.clone(),
                    problem: format!(
                        "the registry asks for {other:?} authentication, which this client does not speak (only Basic and Bearer)"
                    ),
                });
            }
        };
        state.header = Some(header);
        Ok(())
    }

    /// Asks the token endpoint for a token (token.md, "Requesting a Token"): `GET realm`
    /// with `service` and `scope`s, anonymously or with Basic credentials.
    fn fetch_token(
        &self,
        challenge: &Challenge,
        scopes: &[String],
        account: Option<&str>,
    ) -> Result<String, Error> {
        let Some(realm) = challenge.param("realm") else {
            return Err(Error::Auth {
                registry: self.registry.clone(),
                problem: format!("the Bearer challenge has no realm: {}", describe(challenge)),
            });
        };
        let url = auth::token_url(realm, challenge.param("service"), scopes, account);
        let mut request = Request::new(Method::Get, &url);
        if let Some(c) = &self.credentials {
            request = request.header("Authorization", c.basic_header());
        }
        let response = self.send_once(request, true)?;
        match response.status {
            200 => {}
            401 | 403 if self.credentials.is_some() => {
                return Err(Error::BadCredentials {
                    registry: self.registry.clone(),
                    user: self
                        .credentials
                        .as_ref()
                        .map(|c| c.username.clone())
                        .unwrap_or_default(),
                    source: Box::new(registry_error(Method::Get, &url, response)),
                });
            }
            _ => return Err(registry_error(Method::Get, &url, response)),
        }
        let body = response
            .read_small(SMALL_BODY_LIMIT)
            .map_err(|e| Error::Auth {
                registry: self.registry.clone(),
                problem: format!("reading the token from {url}: {e}"),
            })?;
        let token: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| Error::Auth {
                registry: self.registry.clone(),
                problem: format!("the token endpoint {url} did not answer with a token: {e}"),
            })?;
        token.into_token().ok_or_else(|| Error::Auth {
            registry: self.registry.clone(),
            problem: format!("the token endpoint {url} answered without a token"),
        })
    }

    /// Checks credentials the way `docker login` does: with Basic, `GET /v2/` must now say
    /// 200; with Bearer, the token endpoint must accept them (with no scope: login asks
    /// for no access in particular).
    pub fn check_login(&self) -> Result<(), Error> {
        let url = format!("{}/v2/", self.base);
        let response = self.send_once(Request::new(Method::Get, &url), false)?;
        if response.status == 200 {
            return Ok(()); // the registry does not authenticate at all
        }
        if response.status != 401 {
            return Err(registry_error(Method::Get, &url, response));
        }
        let challenge = challenge_of(&self.registry, &response)?;
        let user = self.credentials.as_ref().map(|c| c.username.clone());
        match challenge.scheme.as_str() {
            "bearer" => self
                .fetch_token(&challenge, &[], user.as_deref())
                .map(|_| ()),
            _ => {
                self.auth.lock().expect("not poisoned").challenge = Some(challenge);
                self.authenticate(None)?;
                let response = self.send(&|| Ok(Request::new(Method::Get, &url)))?;
                match response.status {
                    200 => Ok(()),
                    _ => Err(registry_error(Method::Get, &url, response)),
                }
            }
        }
    }

    /// One request, with the current Authorization unless `bare`, no retries.
    fn send_once(&self, mut request: Request, bare: bool) -> Result<Response, Error> {
        if !bare
            && request.get_header("authorization").is_none()
            && let Some(h) = &self.auth.lock().expect("not poisoned").header
        {
            request = request.header("Authorization", h.clone());
        }
        Ok(self.transport.send(request)?)
    }

    /// Sends the request `make` builds, with our Authorization; on a 401 re-authenticates
    /// once with the new challenge (an expired token, or a scope we lacked); retries
    /// transport failures that may be temporary and 429/5xx answers, [`ATTEMPTS`] times in
    /// all. `make` is called for each attempt, because a streamed body is used up.
    pub fn send(&self, make: &dyn Fn() -> Result<Request, Error>) -> Result<Response, Error> {
        let mut reauthenticated = false;
        let mut attempt = 1;
        loop {
            let request = make()?;
            let (method, url) = (request.method, request.url.clone());
            let result = self.send_once(request, false);
            let retry_why = match &result {
                Err(Error::Transport(e)) if e.transient => Some(e.message.clone()),
                Ok(r) if r.status == 429 || (500..600).contains(&r.status) && r.status != 501 => {
                    Some(format!("{} {}", r.status, http_reason(r.status)))
                }
                Ok(r) if r.status == 401 && !reauthenticated => {
                    let challenge = challenge_of(&self.registry, r)?;
                    reauthenticated = true;
                    self.authenticate(Some(challenge))?;
                    continue;
                }
                _ => None,
            };
            match retry_why {
                Some(why) if attempt < ATTEMPTS => {
                    let pause = self.backoff * 2u32.pow(attempt - 1);
                    (self.notify)(&format!(
                        "{method} {url}: {why}; retrying in {} ms (attempt {} of {ATTEMPTS})",
                        pause.as_millis(),
                        attempt + 1
                    ));
                    std::thread::sleep(pause);
                    attempt += 1;
                }
                Some(why) => {
                    return match result {
                        Err(e) => Err(Error::GaveUp {
                            attempts: ATTEMPTS,
                            source: Box::new(e),
                        }),
                        Ok(r) => Err(Error::GaveUp {
                            attempts: ATTEMPTS,
                            source: Box::new(registry_error(method, &url, r)),
                        }),
                    }
                    .inspect_err(|_| drop(why));
                }
                None => {
                    return match result {
                        Ok(r) if r.status == 401 => Err(self.unauthorized(method, &url, r)),
                        other => other,
                    };
                }
            }
        }
    }

    /// A 401 that re-authenticating did not cure.
    fn unauthorized(&self, method: Method, url: &str, response: Response) -> Error {
        let err = registry_error(method, url, response);
        match &self.credentials {
            Some(c) => Error::BadCredentials {
                registry: self.registry.clone(),
                user: c.username.clone(),
                source: Box::new(err),
            },
            None => err,
        }
    }

    /// `GET /v2/NAME/manifests/REF` with the `Accept` header listing every type we read.
    /// Returns the raw bytes (the digest is computed over them, never over re-serialised
    /// JSON), the media type the registry declared, and its `Docker-Content-Digest`.
    pub fn get_manifest(&self, repository: &str, id: &str) -> Result<ManifestAnswer, Error> {
        let url = format!("{}/v2/{repository}/manifests/{id}", self.base);
        let accept = manifest::accept_header(manifest::MANIFEST_TYPES);
        let response =
            self.send(&|| Ok(Request::new(Method::Get, &url).header("Accept", accept.clone())))?;
        if response.status != 200 {
            return Err(registry_error(Method::Get, &url, response));
        }
        let content_type = response.header("content-type").map(str::to_string);
        let digest = response.header("docker-content-digest").map(str::to_string);
        let bytes = response.read_small(SMALL_BODY_LIMIT).map_err(|e| {
            Error::Transport(crate::transport::TransportError {
                method: Method::Get,
                url: url.clone(),
                message: format!("reading the manifest: {e}"),
                transient: true,
            })
        })?;
        Ok((bytes, content_type, digest))
    }

    /// `GET /v2/NAME/blobs/DIGEST`, following redirects by hand (spec.md, "Pulling
    /// blobs": a registry may answer 307 with the blob's real location, often a CDN). The
    /// `Authorization` header is dropped when a redirect leaves the registry's host: it
    /// belongs to the registry, and a pre-signed CDN URL rejects extra credentials.
    pub fn get_blob(&self, repository: &str, digest: &Digest) -> Result<Response, Error> {
        let first = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let mut url = first.clone();
        for _ in 0..5 {
            let here = url.clone();
            let foreign = host_of(&here) != host_of(&self.base);
            let response = if foreign {
                self.transport.send(Request::new(Method::Get, &here))?
            } else {
                self.send(&|| Ok(Request::new(Method::Get, &here)))?
            };
            match response.status {
                200 => return Ok(response),
                301 | 302 | 303 | 307 | 308 => {
                    let Some(location) = response.header("location") else {
                        return Err(registry_error(Method::Get, &here, response));
                    };
                    url = resolve_location(&here, location);
                }
                _ => return Err(registry_error(Method::Get, &here, response)),
            }
        }
        Err(Error::Registry {
            method: Method::Get,
            url: first,
            status: 310,
            detail: " (more than 5 redirects)".into(),
        })
    }

    /// `HEAD /v2/NAME/blobs/DIGEST`: true when the registry has the blob (spec.md,
    /// "Checking if content exists in the registry").
    pub fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, Error> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.send(&|| Ok(Request::new(Method::Head, &url)))?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(registry_error(Method::Head, &url, response)),
        }
    }

    /// `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER` (spec.md, "Mounting a blob
    /// from another repository"): 201 means linked, 202 opens an ordinary upload instead.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, Error> {
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
            self.base
        );
        let response = self.send(&|| Ok(Request::new(Method::Post, &url)))?;
        match response.status {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Upload(self.location(
                Method::Post,
                &url,
                response,
            )?)),
            _ => Err(registry_error(Method::Post, &url, response)),
        }
    }

    /// `POST /v2/NAME/blobs/uploads/`: opens an upload session; returns its URL.
    pub fn start_upload(&self, repository: &str) -> Result<String, Error> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.send(&|| Ok(Request::new(Method::Post, &url)))?;
        match response.status {
            202 => self.location(Method::Post, &url, response),
            _ => Err(registry_error(Method::Post, &url, response)),
        }
    }

    /// Uploads `file` (`size` bytes, digest `digest`) to an open session. With `chunk` set,
    /// in `PATCH` requests of that many bytes with `Content-Range`, then a `PUT` with the
    /// digest (spec.md, "chunked upload"); else in one `PUT` (the "monolithic" upload).
    pub fn upload(
        &self,
        mut location: String,
        path: &Path,
        size: u64,
        digest: &Digest,
        chunk: Option<u64>,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), Error> {
        let open = |offset: u64, len: u64| -> Result<Body, Error> {
            let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek", path, e))?;
            Ok(Body::Stream {
                reader: Box::new(f.take(len)),
                len,
            })
        };
        let mut offset = 0;
        if let Some(chunk) = chunk.filter(|c| *c > 0) {
            while offset < size {
                let len = chunk.min(size - offset);
                let url = location.clone();
                let response = self.send(&|| {
                    Ok(Request::new(Method::Patch, &url)
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", format!("{offset}-{}", offset + len - 1))
                        .body(open(offset, len)?))
                })?;
                if response.status != 202 {
                    return Err(registry_error(Method::Patch, &url, response));
                }
                location = self.location(Method::Patch, &url, response)?;
                offset += len;
                on_sent(len);
            }
        }
        let url = with_query(&location, "digest", &digest.to_string());
        let remaining = size - offset;
        let response = self.send(&|| {
            Ok(Request::new(Method::Put, &url)
                .header("Content-Type", "application/octet-stream")
                .body(if remaining == 0 {
                    Body::Bytes(Vec::new())
                } else {
                    open(offset, remaining)?
                }))
        })?;
        if response.status != 201 {
            return Err(registry_error(Method::Put, &url, response));
        }
        on_sent(remaining);
        Ok(())
    }

    /// `PUT /v2/NAME/manifests/REF` with the manifest's own media type; returns the digest
    /// the registry computed (`Docker-Content-Digest`).
    pub fn put_manifest(
        &self,
        repository: &str,
        id: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, Error> {
        let url = format!("{}/v2/{repository}/manifests/{id}", self.base);
        let response = self.send(&|| {
            Ok(Request::new(Method::Put, &url)
                .header("Content-Type", media_type)
                .body(Body::Bytes(bytes.to_vec())))
        })?;
        if response.status != 201 {
            return Err(registry_error(Method::Put, &url, response));
        }
        Ok(response.header("docker-content-digest").map(str::to_string))
    }

    fn location(&self, method: Method, url: &str, response: Response) -> Result<String, Error> {
        match response.header("location") {
            Some(l) => Ok(resolve_location(url, l)),
            None => Err(Error::Registry {
                method,
                url: url.to_string(),
                status: response.status,
                detail: " (the answer has no Location header)".into(),
            }),
        }
    }
}

/// Reads the challenge of a 401, or says why it cannot.
fn challenge_of(registry: &str, response: &Response) -> Result<Challenge, Error> {
    let headers: Vec<&str> = response.headers_named("www-authenticate").collect();
    if headers.is_empty() {
        return Err(Error::Auth {
            registry: registry.to_string(),
            problem: "401 Unauthorized without a WWW-Authenticate challenge".into(),
        });
    }
    let mut all = Vec::new();
    for h in headers {
        all.extend(auth::parse_challenges(h).map_err(|problem| Error::Auth {
            registry: registry.to_string(),
            problem,
        })?);
    }
    auth::choose(&all).cloned().ok_or_else(|| Error::Auth {
        registry: registry.to_string(),
        problem: format!(
            "no challenge this client can answer (only Basic and Bearer): {}",
            all.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// `Basic realm="x"`, for messages.
pub(crate) fn describe(c: &Challenge) -> String {
    let mut s = c.scheme[..1].to_ascii_uppercase() + &c.scheme[1..];
    let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    if !params.is_empty() {
        s.push(' ');
        s.push_str(&params.join(","));
    }
    s
}

/// The registry's error answer, with its JSON error code and message if it sent them
/// (spec.md, "Error Codes": `{"errors": [{"code": "...", "message": "..."}]}`).
pub fn registry_error(method: Method, url: &str, response: Response) -> Error {
    let status = response.status;
    let body = if method == Method::Head {
        Vec::new()
    } else {
        response.read_small(64 << 10).unwrap_or_default()
    };
    let mut detail = error_detail(&body);
    // A registry with TLS on loopback, where we spoke plain http: say how to trust it.
    if status == 400
        && url.starts_with("http://")
        && String::from_utf8_lossy(&body).contains("HTTP request to an HTTPS server")
    {
        let host = url["http://".len()..].split('/').next().unwrap_or("");
        detail.push_str(&format!(
            "; it speaks https: put the certificate of its CA in {}/{host}/ca.crt",
            crate::tls::certs_roots()[0].display()
        ));
    }
    Error::Registry {
        method,
        url: url.to_string(),
        status,
        detail,
    }
}

/// ` (CODE: message; CODE2: message2)` from an error body, or the start of a non-JSON body.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && !e.errors.is_empty()
    {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|o| match (&o.code, &o.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => "?".into(),
            })
            .collect();
        return format!(" ({})", parts.join("; "));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        let short: String = text.chars().take(200).collect();
        format!(" ({short})")
    }
}

/// `scheme://host[:port]` of a URL.
fn host_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// A `Location` may be absolute, absolute-path (`/v2/...`) or relative to the request.
pub fn resolve_location(request_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{}{location}", host_of(request_url))
    } else {
        let base = request_url.split('?').next().unwrap_or(request_url);
        let dir = base.rsplit_once('/').map_or(base, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

/// Adds `key=value` to a URL that may already have a query (upload URLs carry state).
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", auth::percent_encode(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Canned, Scripted};

    fn client<'t>(t: &'t Scripted, reference: &str, creds: Option<(&str, &str)>) -> Client<'t> {
        let r = Reference::parse(reference).unwrap();
        let creds = creds.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        });
        let scopes = vec![auth::scope(&r.repository, &["pull"])];
        let mut c = Client::new(t, &r, creds, scopes, Arc::new(|_| {}));
        c.backoff = Duration::from_millis(1);
        c
    }

    const HUB_CHALLENGE: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;

    #[test]
    fn the_bearer_flow_asks_v2_then_the_realm_then_retries_with_the_token() {
        let t = Scripted::new(vec![
            Canned::new("GET https://registry-1.docker.io/v2/", 401)
                .header("www-authenticate", HUB_CHALLENGE)
                .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#),
            Canned::new("GET https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull", 200)
                .body(r#"{"token":"tok-1","expires_in":300}"#),
            Canned::new("GET https://registry-1.docker.io/v2/library/busybox/manifests/latest", 200)
                .header("content-type", manifest::OCI_INDEX)
                .body("{}"),
        ]);
        let c = client(&t, "busybox", None);
        c.ping().unwrap();
        let (bytes, ct, _) = c.get_manifest("library/busybox", "latest").unwrap();
        assert_eq!(bytes, b"{}");
        assert_eq!(ct.as_deref(), Some(manifest::OCI_INDEX));
        insta::assert_snapshot!(t.lines().join("\n"), @"
        > GET https://registry-1.docker.io/v2/
        > GET https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull
        > GET https://registry-1.docker.io/v2/library/busybox/manifests/latest (accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, authorization: Bearer [REDACTED])
        ");
        let seen = t.seen();
        assert_eq!(seen[1].authorization, None, "anonymous token request");
        assert_eq!(seen[2].authorization.as_deref(), Some("Bearer tok-1"));
        assert!(t.finished());
    }

    #[test]
    fn credentials_go_to_the_token_endpoint_and_an_expired_token_is_renewed_once() {
        let t = Scripted::new(vec![
            Canned::new("GET https://reg.example/v2/", 401)
                .header("www-authenticate", r#"Bearer realm="https://auth.example/t",service="reg""#),
            Canned::new("GET https://auth.example/t?service=reg&scope=repository%3Aa%2Fb%3Apull", 200)
                .body(r#"{"access_token":"old"}"#),
            Canned::new("GET https://reg.example/v2/a/b/blobs/*", 401).header(
                "www-authenticate",
                r#"Bearer realm="https://auth.example/t",service="reg",scope="repository:a/b:pull",error="invalid_token""#,
            ),
            Canned::new("GET https://auth.example/t?service=reg&scope=repository%3Aa%2Fb%3Apull", 200)
                .body(r#"{"token":"new"}"#),
            Canned::new("GET https://reg.example/v2/a/b/blobs/*", 200).body("blob"),
        ]);
        let c = client(&t, "reg.example/a/b", Some(("me", "pw")));
        c.ping().unwrap();
        let d = Digest::of(b"blob");
        let mut body = String::new();
        c.get_blob("a/b", &d)
            .unwrap()
            .body
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "blob");
        let auths: Vec<Option<String>> = t.seen().into_iter().map(|s| s.authorization).collect();
        let basic = Credentials {
            username: "me".into(),
            password: "pw".into(),
        }
        .basic_header();
        assert_eq!(
            auths,
            vec![
                None,
                Some(basic.clone()),
                Some("Bearer old".into()),
                Some(basic),
                Some("Bearer new".into())
            ]
        );
    }

    #[test]
    fn basic_auth_needs_a_login_and_wrong_credentials_say_so() {
        let challenge = r#"Basic realm="peers-registry""#;
        let t = Scripted::new(vec![
            Canned::new("GET http://127.0.0.1:5000/v2/", 401).header("www-authenticate", challenge),
        ]);
        let err = client(&t, "127.0.0.1:5000/x", None).ping().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"127.0.0.1:5000 asks for credentials (Basic realm="peers-registry"): log in first with `ch05-image-pull login 127.0.0.1:5000`"#
        );
        let unauthorized = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        let t = Scripted::new(vec![
            Canned::new("GET http://127.0.0.1:5000/v2/", 401).header("www-authenticate", challenge),
            Canned::new("GET http://127.0.0.1:5000/v2/x/manifests/latest", 401)
                .header("www-authenticate", challenge)
                .body(unauthorized),
            Canned::new("GET http://127.0.0.1:5000/v2/x/manifests/latest", 401)
                .header("www-authenticate", challenge)
                .body(unauthorized),
        ]);
        let c = client(&t, "127.0.0.1:5000/x", Some(("peers", "wrong")));
        c.ping().unwrap();
        let err = c.get_manifest("x", "latest").unwrap_err();
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            r#"127.0.0.1:5000 refused the credentials of user "peers": GET http://127.0.0.1:5000/v2/x/manifests/latest: 401 Unauthorized (UNAUTHORIZED: authentication required)"#
        );
    }

    #[test]
    fn a_challenge_naming_two_scopes_asks_for_each_in_its_own_parameter() {
        let t = Scripted::new(vec![
            Canned::new("GET https://reg.example/v2/", 401).header(
                "www-authenticate",
                r#"Bearer realm="https://reg.example/token",scope="repository:a:pull,push repository:b:pull""#,
            ),
            Canned::new(
                "GET https://reg.example/token?scope=repository%3Aa%3Apull&scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull",
                200,
            )
            .body(r#"{"token":"t"}"#),
        ]);
        let c = client(&t, "reg.example/a", None);
        c.ping().unwrap();
        assert!(t.finished(), "{:#?}", t.lines());
    }

    #[test]
    fn redirects_are_followed_without_our_credentials() {
        let t = Scripted::new(vec![
            Canned::new("GET https://reg.example/v2/", 401).header(
                "www-authenticate",
                r#"Bearer realm="https://reg.example/token""#,
            ),
            Canned::new(
                "GET https://reg.example/token?scope=repository%3Aa%3Apull",
                200,
            )
            .body(r#"{"token":"t"}"#),
            Canned::new("GET https://reg.example/v2/a/blobs/*", 307)
                .header("location", "https://cdn.example/blobs/xyz?sig=1"),
            Canned::new("GET https://cdn.example/blobs/xyz?sig=1", 200).body("data"),
        ]);
        let c = client(&t, "reg.example/a", None);
        c.ping().unwrap();
        c.get_blob("a", &Digest::of(b"data")).unwrap();
        let seen = t.seen();
        assert_eq!(seen[2].authorization.as_deref(), Some("Bearer t"));
        assert_eq!(seen[3].authorization, None);
    }

    #[test]
    fn temporary_failures_are_retried_a_bounded_number_of_times() {
        let busy = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;
        let t = Scripted::new(vec![
            Canned::new("GET http://127.0.0.1:5000/v2/x/manifests/1", 503),
            Canned::new("GET http://127.0.0.1:5000/v2/x/manifests/1", 429).body(busy),
            Canned::new("GET http://127.0.0.1:5000/v2/x/manifests/1", 429).body(busy),
        ]);
        let notes = Arc::new(Mutex::new(Vec::new()));
        let n2 = notes.clone();
        let r = Reference::parse("127.0.0.1:5000/x").unwrap();
        let mut c = Client::new(
            &t,
            &r,
            None,
            vec![],
            Arc::new(move |m| n2.lock().unwrap().push(m.to_string())),
        );
        c.backoff = Duration::from_millis(1);
        let err = c.get_manifest("x", "1").unwrap_err();
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "gave up after 3 attempts: GET http://127.0.0.1:5000/v2/x/manifests/1: 429 Too Many Requests (TOOMANYREQUESTS: slow down)"
        );
        assert_eq!(
            *notes.lock().unwrap(),
            vec![
                "GET http://127.0.0.1:5000/v2/x/manifests/1: 503 Service Unavailable; retrying in 1 ms (attempt 2 of 3)",
                "GET http://127.0.0.1:5000/v2/x/manifests/1: 429 Too Many Requests; retrying in 2 ms (attempt 3 of 3)",
            ]
        );
    }

    #[test]
    fn locations_and_queries() {
        assert_eq!(
            resolve_location(
                "http://r:1/v2/a/blobs/uploads/",
                "/v2/a/blobs/uploads/u?_state=x"
            ),
            "http://r:1/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(
            resolve_location("http://r/v2/x", "https://cdn/y"),
            "https://cdn/y"
        );
        assert_eq!(
            with_query("http://r/u?_state=x", "digest", "sha256:ab"),
            "http://r/u?_state=x&digest=sha256%3Aab"
        );
        assert_eq!(error_detail(b""), "");
        assert_eq!(
            error_detail(b"404 page not found\n"),
            " (404 page not found)"
        );
    }
}
