//! The chapter's story: one image pulled the simple way. Read this first.
//!
//! A pull, sequential and single-threaded, in the order the protocol goes (the OCI
//! distribution spec, spec.md, "Pulling an image"), each step a function with the reason
//! it is there:
//!
//! 1. [`ping`] the registry (`GET /v2/`);
//! 2. [`parse_challenge`]: the `WWW-Authenticate` header of its 401, if it sent one;
//! 3. [`get_token`]: Basic credentials, or a Bearer token from the challenge's realm;
//! 4. [`fetch_manifest`] the tag names (an image manifest, or an index of them);
//! 5. [`pick_platform`]: from an index, this machine's manifest;
//! 6. [`fetch_config`], the image's settings and the list of its layers' diff-ids;
//! 7. [`fetch_blob`] for each layer, to a file, and [`verify_blob`] its digest;
//! 8. [`apply_layer`] with chapter 4's `apply`, and [`verify_diff_id`] on the way;
//! 9. [`store_image`]: blobs and layers into the store first, the name last.
//!
//! It uses the chapter's pieces where they keep it short: reference parsing, the HTTP seam
//! ([`Transport`], so `--trace` shows every request), the challenge parser ([`auth`]),
//! manifest parsing and platform choice ([`manifest`]), and the store's API. `pull.rs` is
//! the same protocol as production code needs it: several layers at once, each unpacked
//! *while* it downloads instead of read back from disk, retries of broken downloads and of
//! 429/5xx answers, a token renewed when it expires, the blobs and layers already in the
//! store skipped (so an interrupted pull resumes where it stopped), the store's lease taken
//! before a blob lands, progress bars. A test pulls one image both ways into two stores
//! and compares them, so this story cannot drift from the real thing.
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use ch04_unionfs_layers::apply::{ApplyOptions, apply};
use oci_spec::image::ImageConfiguration;

use crate::auth::{self, Challenge, Credentials};
use crate::layer::{self, Hashing};
use crate::manifest::{self, Descriptor, Manifest, Parsed, Platform};
use crate::progress::Reporter;
use crate::pull::{Fetched, PullOptions, layers_of};
use crate::reference::{Digest, Reference};
use crate::registry::{SMALL_BODY_LIMIT, describe, registry_error, resolve_location};
use crate::store::{self, Image, Layer, Store, TempLayer};
use crate::transport::{Method, Request, Response, Transport};
use crate::{Error, manifest_error};

/// Pulls `reference` into `store`, one step after the other, and returns the image. What
/// it stored before failing is collected again, as `pull` does.
pub fn pull(
    store: &Store,
    transport: &dyn Transport,
    reference: &Reference,
    options: &PullOptions,
) -> Result<Image, Error> {
    let downloads = Downloads::new(store)?;
    let result = pull_steps(store, transport, reference, options, &downloads.0);
    if result.is_err() {
        store.release();
        let _ = store.gc();
    }
    result
}

/// The story itself: who the registry is and what it wants, what the image is, its
/// bytes, and only then the store.
fn pull_steps(
    store: &Store,
    transport: &dyn Transport,
    reference: &Reference,
    options: &PullOptions,
    downloads: &Path,
) -> Result<Image, Error> {
    let out = Reporter::new(options.progress);
    // Steps 1 to 3: the registry, and the credentials it asks for.
    let mut session = Session::new(transport, reference);
    if let Some(challenge) = ping(&session, &out)? {
        let credentials = options.config.get(&reference.registry)?;
        let header = get_token(&session, &challenge, credentials.as_ref(), &out)?;
        session.authorization = Some(header);
    }
    // Steps 4 to 6: what the image is.
    let top = fetch_manifest(&session, &reference.manifest_id())?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let image = pick_platform(&session, &top, &wanted, &out)?;
    let Parsed::Image(manifest) = &image.parsed else {
        unreachable!("pick_platform returns an image manifest")
    };
    out.line(&format!("manifest {}: {}", image.digest, image.media_type));
    let (config_file, config) = fetch_config(&session, manifest, downloads, &out)?;
    // Steps 7 and 8: its layers, bottom first, each checked twice.
    let mut fetched = Vec::new();
    for layer in layers_of(manifest, &config)? {
        let desc = Descriptor::new(&layer.media_type, layer.digest.clone(), layer.size);
        let blob = fetch_blob(&session, &desc, downloads)?;
        let dir = apply_layer(store, &blob, &layer)?;
        out.line(&format!(
            "layer {}: verified; diff-id {}: verified, applied",
            layer.digest, layer.diff_id
        ));
        fetched.push(FetchedLayer { layer, blob, dir });
    }
    // Step 9: content first, the name last.
    let stored = store_image(
        store,
        reference,
        &top,
        &image,
        (&manifest.config, &config_file),
        fetched,
    )?;
    out.line(&format!("Digest: {}", top.digest));
    Ok(stored)
}

/// The conversation with one registry about one repository: where its API is, and the
/// `Authorization` header once [`get_token`] has one.
pub struct Session<'t> {
    transport: &'t dyn Transport,
    registry: String,
    repository: String,
    /// `http://127.0.0.1:5000`: plain http for loopback, as docker does.
    base: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for Session<'_> {
    /// Without the `Authorization` header: it is a password or a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl<'t> Session<'t> {
    fn new(transport: &'t dyn Transport, reference: &Reference) -> Session<'t> {
        let has_certs = crate::tls::certs_dir(&reference.registry).is_some();
        Session {
            transport,
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            base: reference.api_base(has_certs),
            authorization: None,
        }
    }

    /// `GET /v2/REPOSITORY/PATH` with our credentials. A registry may answer a blob
    /// request with a redirect to where the bytes really are (a CDN); that request goes
    /// without our `Authorization`, which belongs to the registry (spec.md, "Pulling
    /// blobs").
    fn get(&self, path: &str, accept: Option<&str>) -> Result<Response, Error> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut request = Request::new(Method::Get, &url);
        if let Some(a) = accept {
            request = request.header("Accept", a);
        }
        if let Some(h) = &self.authorization {
            request = request.header("Authorization", h.clone());
        }
        let response = self.transport.send(request)?;
        let (url, response) = match (response.status, response.header("location")) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                let elsewhere = resolve_location(&url, location);
                let response = self.transport.send(Request::new(Method::Get, &elsewhere))?;
                (elsewhere, response)
            }
            _ => (url, response),
        };
        match response.status {
            200 => Ok(response),
            _ => Err(registry_error(Method::Get, &url, response)),
        }
    }
}

/// `GET /v2/`: is this a registry speaking the v2 API, and does it want credentials? A 200
/// says no; a 401 says how, in its challenge (spec.md, "Determining support").
pub fn ping(session: &Session<'_>, out: &Reporter) -> Result<Option<Challenge>, Error> {
    let url = format!("{}/v2/", session.base);
    let response = session.transport.send(Request::new(Method::Get, &url))?;
    match response.status {
        200 => {
            out.line(&format!("GET {url}: 200, no credentials needed"));
            Ok(None)
        }
        401 => {
            let challenge = parse_challenge(&session.registry, &response)?;
            out.line(&format!("GET {url}: 401, {}", describe(&challenge)));
            Ok(Some(challenge))
        }
        _ => Err(registry_error(Method::Get, &url, response)),
    }
}

/// Reads the 401's `WWW-Authenticate` header (RFC 7235, section 4.1): which scheme, and for
/// Bearer, where to get a token (`realm`) and for what (`service`, `scope`). Nothing about
/// the token server is hard-coded: it all comes from here.
pub fn parse_challenge(registry: &str, response: &Response) -> Result<Challenge, Error> {
    let problem = |problem: String| Error::Auth {
        registry: registry.to_string(),
        problem,
    };
    // Several headers mean the same as one with the values joined by commas (RFC 9110 5.3).
    let header = response
        .headers_named("www-authenticate")
        .collect::<Vec<_>>()
        .join(", ");
    let challenges = auth::parse_challenges(&header).map_err(problem)?;
    auth::choose(&challenges)
        .cloned()
        .ok_or_else(|| problem(format!("no Basic or Bearer challenge in {header:?}")))
}

/// Answers the challenge, giving the `Authorization` header every later request carries:
/// Basic is the user name and password themselves; Bearer trades them (or nothing, for an
/// anonymous pull) for a short-lived token, scoped to pulling this one repository
/// (distribution's token.md, "Requesting a Token").
pub fn get_token(
    session: &Session<'_>,
    challenge: &Challenge,
    credentials: Option<&Credentials>,
    out: &Reporter,
) -> Result<String, Error> {
    // exercise(ch05.token): Basic: the credentials themselves; Bearer: GET the realm with service and a pull scope, Basic-authenticated if we have credentials, and return "Bearer TOKEN"
    let auth_error = |problem: String| Error::Auth {
        registry: session.registry.clone(),
        problem,
    };
    if challenge.scheme == "basic" {
        let Some(c) = credentials else {
            return Err(Error::NeedLogin {
                registry: session.registry.clone(),
                challenge: describe(challenge),
            });
        };
        out.line(&format!("token: Basic, as {}", c.username));
        return Ok(c.basic_header());
    }
    let realm = challenge
        .param("realm")
        .ok_or_else(|| auth_error(format!("no realm in {}", describe(challenge))))?;
    let scope = auth::scope(&session.repository, &["pull"]);
    let url = auth::token_url(realm, challenge.param("service"), &[scope], None);
    let mut request = Request::new(Method::Get, &url);
    if let Some(c) = credentials {
        request = request.header("Authorization", c.basic_header());
    }
    let response = session.transport.send(request)?;
    if response.status != 200 {
        return Err(registry_error(Method::Get, &url, response));
    }
    let body = response.read_small(SMALL_BODY_LIMIT).map_err(Error::Read)?;
    let token = serde_json::from_slice::<auth::TokenResponse>(&body)
        .ok()
        .and_then(auth::TokenResponse::into_token)
        .ok_or_else(|| auth_error(format!("the token endpoint {url} gave no token")))?;
    out.line(&format!("token: Bearer, from {realm}"));
    Ok(format!("Bearer {token}"))
    // end exercise
}

/// `GET /v2/NAME/manifests/REF` with an `Accept` header listing every type we read
/// (without it, this registry hides OCI manifests and turns Docker's into the old schema
/// 1). The bytes are kept as they came: the digest is over them, never over JSON parsed
/// and written again.
pub fn fetch_manifest(session: &Session<'_>, id: &str) -> Result<Fetched, Error> {
    let accept = manifest::accept_header(manifest::MANIFEST_TYPES);
    let response = session.get(&format!("manifests/{id}"), Some(&accept))?;
    let content_type = response.header("content-type").map(str::to_string);
    let announced = response.header("docker-content-digest").map(str::to_string);
    let bytes = response.read_small(SMALL_BODY_LIMIT).map_err(Error::Read)?;
    let digest = Digest::of(&bytes);
    verify_manifest(id, announced.as_deref(), &digest)?;
    let what = format!(
        "manifest {id} of {}/{}",
        session.registry, session.repository
    );
    let (parsed, media_type) =
        manifest::parse(&bytes, content_type.as_deref()).map_err(|p| manifest_error(&what, p))?;
    Ok(Fetched {
        bytes,
        digest,
        media_type,
        parsed,
    })
}

/// A manifest asked for by digest must hash to that digest (the reason to pull by
/// digest); one asked for by tag, to the digest the registry announced
/// (`Docker-Content-Digest`, spec.md, "Pulling manifests").
pub fn verify_manifest(id: &str, announced: Option<&str>, actual: &Digest) -> Result<(), Error> {
    // exercise(ch05.verify): by digest, the id itself; by tag, the announced digest (if any); a different actual digest is a DigestMismatch
    let expected = if id.starts_with("sha256:") {
        Some(id)
    } else {
        announced
    };
    match expected.map(Digest::parse) {
        Some(Ok(want)) if want != *actual => Err(Error::DigestMismatch {
            expected: want,
            actual: actual.clone(),
        }),
        _ => Ok(()),
    }
    // end exercise
}

/// An index lists one manifest per platform (image-spec image-index.md): take the one for
/// this machine (or `--platform`), and fetch it by its digest, which also verifies it.
pub fn pick_platform(
    session: &Session<'_>,
    top: &Fetched,
    wanted: &Platform,
    out: &Reporter,
) -> Result<Fetched, Error> {
    let Parsed::Index(index) = &top.parsed else {
        return Ok(top.clone());
    };
    let what = format!("index {}", top.digest);
    let chosen = manifest::select_platform(index, wanted).map_err(|p| manifest_error(&what, p))?;
    out.line(&format!(
        "index {}: {} manifest(s), {wanted} is {}",
        top.digest,
        index.manifests.len(),
        chosen.digest
    ));
    let image = fetch_manifest(session, &chosen.digest.to_string())?;
    match image.parsed {
        Parsed::Image(_) => Ok(image),
        Parsed::Index(_) => Err(manifest_error(&what, "an index inside an index".into())),
    }
}

/// The config is a blob like any other, fetched and verified the same way; it holds the
/// image's settings (command, environment) and, in `rootfs.diff_ids`, the digest of each
/// layer uncompressed (image-spec config.md).
pub fn fetch_config(
    session: &Session<'_>,
    manifest: &Manifest,
    downloads: &Path,
    out: &Reporter,
) -> Result<(PathBuf, ImageConfiguration), Error> {
    let desc = &manifest.config;
    let path = fetch_blob(session, desc, downloads)?;
    let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let config: ImageConfiguration = serde_json::from_slice(&bytes).map_err(|e| {
        manifest_error(
            &format!("config {}", desc.digest),
            format!("not an image config: {e}"),
        )
    })?;
    out.line(&format!(
        "config {}: verified, {}/{}, {} layer(s)",
        desc.digest,
        config.os(),
        config.architecture(),
        manifest.layers.len()
    ));
    Ok((path, config))
}

/// `GET /v2/NAME/blobs/DIGEST` into a file, hashing the bytes on their way there: a layer
/// may be gigabytes, so it goes to disk, not memory. One byte more than the descriptor's
/// size is read at most: that is enough to know the blob is too long (image-spec
/// descriptor.md: the size is a limit, against a registry that never stops sending).
pub fn fetch_blob(session: &Session<'_>, desc: &Descriptor, dir: &Path) -> Result<PathBuf, Error> {
    let response = session.get(&format!("blobs/{}", desc.digest), None)?;
    let path = dir.join(desc.digest.hex());
    let mut file = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
    let mut body = Hashing::new(io::Read::take(response.body, desc.size + 1));
    io::copy(&mut body, &mut file).map_err(|e| Error::io("download into", &path, e))?;
    let (actual, len) = body.finish();
    verify_blob(desc, &actual, len)?;
    Ok(path)
}

/// A blob is the bytes whose sha256 is its name (image-spec descriptor.md, "Digests"), and
/// exactly as many as its descriptor says: anything else is refused, whoever sent it.
pub fn verify_blob(desc: &Descriptor, actual: &Digest, len: u64) -> Result<(), Error> {
    if len != desc.size {
        return Err(Error::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: if len > desc.size {
                format!("more than {}", desc.size)
            } else {
                len.to_string()
            },
        });
    }
    if *actual != desc.digest {
        return Err(Error::DigestMismatch {
            expected: desc.digest.clone(),
            actual: actual.clone(),
        });
    }
    Ok(())
}

/// Decompresses a layer blob (its media type says how) and applies the tar with chapter
/// 4's `apply` into a fresh directory of the store, whiteouts turned into overlayfs's, so
/// the directory can be a lower layer as it is. The tar is hashed on its way to `apply`:
/// that is the diff-id to check.
pub fn apply_layer(store: &Store, blob: &Path, layer: &Layer) -> Result<TempLayer, Error> {
    let failed = |doing: &str, e: &dyn std::fmt::Display| Error::Layer {
        layer: layer.digest.to_string(),
        problem: format!("{doing}: {e}"),
    };
    let dir = store.temp_layer(&layer.diff_id)?;
    let mut tar = Hashing::new(layer::decompress(blob, &layer.media_type)?);
    apply(&mut tar, dir.path(), &ApplyOptions::layer()).map_err(|e| failed("extracting", &e))?;
    // The diff-id covers every byte, the end-of-archive blocks `apply` did not read too.
    tar.drain().map_err(|e| failed("decompressing", &e))?;
    let (actual, _) = tar.finish();
    verify_diff_id(&layer.diff_id, actual)?;
    Ok(dir)
}

/// The config names each layer by the sha256 of its *uncompressed* tar (image-spec
/// config.md, `rootfs.diff_ids`), so what was applied is checked against the config too:
/// a blob could be the right compressed bytes of the wrong layer.
pub fn verify_diff_id(expected: &Digest, actual: Digest) -> Result<(), Error> {
    if actual != *expected {
        return Err(Error::DiffIdMismatch {
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// One layer, verified, waiting for [`store_image`].
#[derive(Debug)]
pub struct FetchedLayer {
    /// Its digests, size and media type.
    pub layer: Layer,
    /// The blob, in this pull's downloads.
    pub blob: PathBuf,
    /// The layer applied, in `layers/.tmp-PID-N`.
    pub dir: TempLayer,
}

/// Puts the image into the store, content before names (see the store's module comment):
/// every blob into `blobs/` (the store hashes each again on the way in: it trusts no
/// caller), each extracted layer into `layers/DIFFID/`, and only then the name, in
/// index.json. A Docker schema 2 manifest is kept as it came and the name points at an OCI
/// copy of it (same blobs), which OCI tools read; the entry records both, and the digest
/// the registry knows the image by, as `pull` does.
pub fn store_image(
    store: &Store,
    reference: &Reference,
    top: &Fetched,
    image: &Fetched,
    (config, config_file): (&Descriptor, &Path),
    layers: Vec<FetchedLayer>,
) -> Result<Image, Error> {
    let open = |path: &Path| File::open(path).map_err(|e| Error::io("open", path, e));
    store.put_blob(&mut &image.bytes[..], Some(&image.digest))?;
    store.put_blob(&mut open(config_file)?, Some(&config.digest))?;
    let mut size = 0;
    for l in layers {
        store.put_blob(&mut open(&l.blob)?, Some(&l.layer.digest))?;
        store.commit(None, Some(l.dir), false)?;
        size += store::dir_size(&store.layer_path(&l.layer.diff_id))?;
    }
    let served = Descriptor::new(
        &image.media_type,
        image.digest.clone(),
        image.bytes.len() as u64,
    );
    let mut entry = match &image.parsed {
        Parsed::Image(m) if image.media_type == manifest::DOCKER_MANIFEST => {
            let oci = manifest::to_oci(m).map_err(|p| manifest_error("manifest", p))?;
            let mut entry = store.put_manifest(&oci)?;
            let notes = entry.annotations.get_or_insert_with(Default::default);
            notes.insert(store::ORIGINAL_MANIFEST.into(), served.digest.to_string());
            notes.insert(store::ORIGINAL_MEDIA_TYPE.into(), served.media_type.clone());
            entry
        }
        _ => served,
    };
    entry
        .annotations
        .get_or_insert_with(Default::default)
        .insert(store::REGISTRY_DIGEST.into(), top.digest.to_string());
    store.name_image(reference, entry, size)?;
    store
        .resolve(&reference.store_name())?
        .ok_or_else(|| Error::NoSuchImage(reference.to_string()))
}

/// `ROOT/tmp/PID-N.story/`: this pull's downloads, removed when it ends. The name starts
/// with the process's ID, so a garbage collection removes it if the process is killed.
struct Downloads(PathBuf);

impl Downloads {
    fn new(store: &Store) -> Result<Downloads, Error> {
        let path = store
            .tmp_dir()
            .join(format!("{}.story", store::unique_name()));
        fs::create_dir(&path).map_err(|e| Error::io("create directory", &path, e))?;
        Ok(Downloads(path))
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        let _ = store::remove_tree(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_dance_trades_credentials_for_a_bearer_token_scoped_to_pulling() {
        use crate::auth::{Challenge, Credentials};
        use crate::transport::{Canned, Scripted};
        let reference = Reference {
            registry: "reg.test".into(),
            repository: "library/busybox".into(),
            tag: Some("latest".into()),
            digest: None,
        };
        let out = Reporter::new(crate::progress::Progress::Quiet);
        let alice = Credentials {
            username: "alice".into(),
            password: "secret".into(),
        };
        let bearer = Challenge {
            scheme: "bearer".into(),
            params: vec![
                ("realm".into(), "http://auth.test/token".into()),
                ("service".into(), "reg.test".into()),
            ],
        };
        let t = Scripted::new(vec![
            Canned::new(
                "GET http://auth.test/token?service=reg.test&scope=repository%3Alibrary%2Fbusybox%3Apull",
                200,
            )
            .body(r#"{"token":"t0k3n"}"#),
        ]);
        let session = Session::new(&t, &reference);
        let header = get_token(&session, &bearer, Some(&alice), &out).unwrap();
        assert_eq!(header, "Bearer t0k3n");
        assert!(t.finished(), "one request, to the realm");
        assert_eq!(
            t.seen()[0].authorization.as_deref(),
            Some("Basic YWxpY2U6c2VjcmV0"),
            "the credentials go to the token server, as Basic"
        );
        // OAuth2's field name is accepted too, and an anonymous pull sends no credentials.
        let t = Scripted::new(vec![
            Canned::new("GET http://auth.test/token?*", 200).body(r#"{"access_token":"a"}"#),
        ]);
        let session = Session::new(&t, &reference);
        assert_eq!(
            get_token(&session, &bearer, None, &out).unwrap(),
            "Bearer a"
        );
        assert_eq!(t.seen()[0].authorization, None);
        // Basic needs no request: the credentials are the answer; without them, a login.
        let basic = Challenge {
            scheme: "basic".into(),
            params: vec![("realm".into(), "r".into())],
        };
        let t = Scripted::new(vec![]);
        let session = Session::new(&t, &reference);
        assert_eq!(
            get_token(&session, &basic, Some(&alice), &out).unwrap(),
            "Basic YWxpY2U6c2VjcmV0"
        );
        assert!(matches!(
            get_token(&session, &basic, None, &out),
            Err(Error::NeedLogin { .. })
        ));
        assert!(t.seen().is_empty());
    }

    #[test]
    fn a_blob_is_its_digest_and_its_size_and_a_manifest_its_announced_digest() {
        let good = Digest::of(b"good");
        let desc = Descriptor::new(manifest::OCI_LAYER_GZIP, good.clone(), 4);
        assert!(verify_blob(&desc, &good, 4).is_ok());
        let shown = |r: Result<(), Error>| r.unwrap_err().to_string();
        assert_eq!(
            shown(verify_blob(&desc, &good, 5)),
            format!("blob {good}: size mismatch: expected 4 bytes, got more than 4")
        );
        assert_eq!(
            shown(verify_blob(&desc, &good, 3)),
            format!("blob {good}: size mismatch: expected 4 bytes, got 3")
        );
        let evil = Digest::of(b"evil");
        assert_eq!(
            shown(verify_blob(&desc, &evil, 4)),
            format!("blob {good}: digest mismatch: the content's sha256 is {evil}")
        );
        // By digest: that digest, whatever the registry announces; by tag: the announced one.
        let (g, e) = (good.to_string(), evil.to_string());
        assert!(verify_manifest(&g, Some(&e), &good).is_ok());
        assert!(verify_manifest(&e, None, &good).is_err());
        assert!(verify_manifest("latest", Some(&g), &good).is_ok());
        assert!(verify_manifest("latest", Some(&e), &good).is_err());
        assert!(verify_manifest("latest", None, &good).is_ok());
        let diff_id = Digest::of(b"tar");
        assert!(verify_diff_id(&diff_id, diff_id.clone()).is_ok());
        assert!(verify_diff_id(&diff_id, evil).is_err());
    }
}
