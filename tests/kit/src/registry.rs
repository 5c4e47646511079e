//! A real registry for tests: Debian's `docker-registry` (distribution 2.8) on a free
//! 127.0.0.1 port, with a config and storage of its own in a temp dir, optionally behind
//! htpasswd (Basic) or token (Bearer) authentication; and images to seed it with, built
//! with umoci and pushed with skopeo, the independent tools.
//!
//! The one simulated piece is [`TokenServer`]: Docker Hub's token endpoint, played by a
//! small HTTP server in the test that mints JWTs signed (with `openssl`) by a key whose
//! certificate the registry trusts. The registry itself checks them for real.
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// True when `prog` is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the registry, skopeo and umoci are all installed.
pub fn tools_available() -> bool {
    ["docker-registry", "skopeo", "umoci", "htpasswd", "openssl"]
        .iter()
        .all(|p| have(p))
}

/// A free TCP port on 127.0.0.1 (bound, then released: the registry binds it next).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// The status code of `GET url` (plain HTTP on loopback), or None if nothing answers.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

/// How a registry authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Not at all.
    None,
    /// htpasswd (Basic) with one user.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// Token auth (Bearer) against a [`TokenServer`].
    Token {
        /// The token endpoint's URL.
        realm: String,
        /// The service name both agree on.
        service: String,
        /// The issuer both agree on.
        issuer: String,
        /// The certificate of the key that signs tokens.
        cert: PathBuf,
    },
}

/// A running `docker-registry serve`, killed (and waited for) on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The port.
    pub port: u16,
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> io::Result<Registry> {
        Registry::start_with(Auth::None)
    }

    /// Starts a registry with the given authentication and waits until `GET /v2/` answers.
    pub fn start_with(auth: Auth) -> io::Result<Registry> {
        Registry::start_full(auth, None)
    }

    /// Starts a registry that speaks https only, with `certs`' server certificate; with
    /// `client_auth`, clients must show a certificate of the same authority.
    pub fn start_tls(certs: &TestCerts, client_auth: bool) -> io::Result<Registry> {
        Registry::start_full(Auth::None, Some((certs, client_auth)))
    }

    fn start_full(auth: Auth, tls: Option<(&TestCerts, bool)>) -> io::Result<Registry> {
        let dir = tempfile::Builder::new().prefix("registry-").tempdir()?;
        let storage = dir.path().join("data");
        fs::create_dir_all(&storage)?;
        {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
                 cache:\n    blobdescriptor: \"\"\n\
                 http:\n  addr: {addr}\n  secret: test-only-secret\n",
                storage.display()
            );
            if let Some((t, client_auth)) = tls {
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.server_cert.display(),
                    t.server_key.display()
                ));
                if client_auth {
                    config.push_str(&format!("    clientcas:\n      - {}\n", t.ca.display()));
                }
            }
            match &auth {
                Auth::None => {}
                Auth::Basic { user, password } => {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", user, password])
                        .output()?;
                    if !out.status.success() {
                        return Err(io::Error::other("htpasswd -Bbn failed"));
                    }
                    let path = dir.path().join("htpasswd");
                    fs::write(&path, &out.stdout)?;
                    config.push_str(&format!(
                        "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                        path.display()
                    ));
                }
                Auth::Token {
                    realm,
                    service,
                    issuer,
                    cert,
                } => config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    cert.display()
                )),
            }
            let config_path = dir.path().join("config.yml");
            fs::write(&config_path, config)?;
            let log = fs::File::create(dir.path().join("registry.log"))?;
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let mut reg = Registry {
                child,
                dir,
                addr: addr.clone(),
                port,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if http_status(&addr, "/v2/").is_some() {
                    return Ok(reg);
                }
                if let Ok(Some(status)) = reg.child.try_wait() {
                    return Err(io::Error::other(format!(
                        "docker-registry exited with {status}: {}",
                        reg.log()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(io::Error::other(format!(
                "docker-registry did not answer on {addr} within 15 s: {}",
                reg.log()
            )))
        }
    }

    /// The registry's log (warnings and errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The storage root (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The pid, for leak checks.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// Seeding: images built with umoci, pushed with skopeo.
// ------------------------------------------------------------------------------------------

/// Runs a command, failing with its stderr if it fails.
pub fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out)
}

/// An OCI image layout built with umoci, in a temp dir.
#[derive(Debug)]
pub struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    /// An empty layout.
    pub fn new() -> io::Result<Layout> {
        let dir = tempfile::Builder::new().prefix("layout-").tempdir()?;
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(dir.path().join("oci")))?;
        Ok(Layout { dir })
    }

    /// The layout directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    /// `oci:DIR:TAG`, skopeo's name for an image in it.
    pub fn skopeo_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.path().display())
    }

    fn rootless() -> Vec<&'static str> {
        if crate::is_root() {
            vec![]
        } else {
            vec!["--rootless"]
        }
    }

    /// Adds an image `tag` whose one layer is the contents of `rootfs`, with `cmd` as its
    /// command and `arch` as its architecture.
    pub fn add_image(&self, tag: &str, rootfs: &Path, cmd: &str, arch: &str) -> io::Result<()> {
        let image = format!("{}:{tag}", self.path().display());
        run(Command::new("umoci").args(["new", "--image", &image]))?;
        self.add_layer(tag, |dir| {
            run(Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", rootfs.display()))
                .arg(dir))?;
            Ok(())
        })?;
        run(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--config.cmd",
            cmd,
            "--architecture",
            arch,
            "--os",
            "linux",
            "--created",
            "2024-01-02T03:04:05Z",
        ]))?;
        Ok(())
    }

    /// Names the image `src` also `dst` (`umoci tag`).
    pub fn tag(&self, src: &str, dst: &str) -> io::Result<()> {
        let image = format!("{}:{src}", self.path().display());
        run(Command::new("umoci").args(["tag", "--image", &image, dst])).map(|_| ())
    }

    /// Adds a layer on top of `tag`: `change` gets the unpacked rootfs to modify (files it
    /// deletes become whiteouts).
    pub fn add_layer(
        &self,
        tag: &str,
        change: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let image = format!("{}:{tag}", self.path().display());
        let bundle = self.dir.path().join(format!("bundle-{tag}"));
        run(Command::new("umoci")
            .arg("unpack")
            .args(Layout::rootless())
            .args(["--image", &image])
            .arg(&bundle))?;
        change(&bundle.join("rootfs"))?;
        run(Command::new("umoci")
            .arg("repack")
            .args(["--image", &image])
            .arg(&bundle))?;
        fs::remove_dir_all(&bundle)
    }

    /// Makes `tag` an OCI index of the images `entries` (tag, os/arch) name, the way a
    /// multi-platform image is published.
    pub fn add_index(&self, tag: &str, entries: &[(&str, &str)]) -> io::Result<()> {
        let index_path = self.path().join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&fs::read(&index_path)?).map_err(io::Error::other)?;
        let mut manifests = Vec::new();
        for (t, platform) in entries {
            let d = index["manifests"]
                .as_array()
                .and_then(|m| {
                    m.iter()
                        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == *t)
                })
                .ok_or_else(|| io::Error::other(format!("no image {t}")))?
                .clone();
            let (os, arch) = platform.split_once('/').unwrap_or((platform, ""));
            manifests.push(serde_json::json!({
                "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
                "platform": {"os": os, "architecture": arch}
            }));
        }
        let blob = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .map_err(io::Error::other)?;
        let hex = sha256_hex(&blob)?;
        fs::write(self.path().join("blobs/sha256").join(&hex), &blob)?;
        index["manifests"]
            .as_array_mut()
            .ok_or_else(|| io::Error::other("bad index.json"))?
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{hex}"),
                "size": blob.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag}
            }));
        fs::write(
            &index_path,
            serde_json::to_vec(&index).map_err(io::Error::other)?,
        )
    }
}

/// sha256 of bytes, with `sha256sum` (the kit stays free of hashing crates).
pub fn sha256_hex(bytes: &[u8]) -> io::Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped").write_all(bytes)?;
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string())
}

/// `skopeo copy` with TLS off for loopback registries; `creds` as `user:pass`.
pub fn skopeo_copy(src: &str, dest: &str, extra: &[&str]) -> io::Result<Output> {
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([src, dest]))
}

/// `skopeo inspect --raw` or not, as JSON.
pub fn skopeo_inspect(image: &str, extra: &[&str]) -> io::Result<serde_json::Value> {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(image))?;
    serde_json::from_slice(&out.stdout).map_err(io::Error::other)
}

/// A layout holding a busybox image at `tag` (one layer: the test kit's busybox rootfs).
pub fn busybox_layout(tag: &str) -> io::Result<Layout> {
    let rootfs = crate::rootfs::Rootfs::busybox()?;
    let layout = Layout::new()?;
    layout.add_image(tag, rootfs.path(), "/bin/sh", "amd64")?;
    Ok(layout)
}

// ------------------------------------------------------------------------------------------
// The token endpoint (the simulated piece).
// ------------------------------------------------------------------------------------------

/// A request the token server got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Path and query.
    pub target: String,
    /// The Basic user, if credentials came.
    pub user: Option<String>,
}

/// Docker Hub's token endpoint in miniature: `GET /token?service=S&scope=...`, anonymous
/// (pull only) or with Basic credentials (what was asked). Tokens are JWTs (RS256) whose
/// header carries the signing certificate (`x5c`), which the registry's `rootcertbundle`
/// trusts. Stopped on drop.
#[derive(Debug)]
pub struct TokenServer {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The service name.
    pub service: String,
    /// The issuer.
    pub issuer: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    addr: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// Generates a key and certificate with openssl and starts serving; `user:password` is
    /// the one account it knows.
    pub fn start(user: &str, password: &str) -> io::Result<TokenServer> {
        let dir = tempfile::Builder::new().prefix("token-").tempdir()?;
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=mini-docker-test-token-issuer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert))?
        .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let service = "test-registry".to_string();
        let issuer = "test-token-issuer".to_string();
        let ctx = Minter {
            key,
            x5c,
            service: service.clone(),
            issuer: issuer.clone(),
            account: (user.to_string(), password.to_string()),
        };
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    let _ = serve(c, &ctx, &reqs);
                }
            }
        });
        Ok(TokenServer {
            realm: format!("http://{addr}/token"),
            dir,
            service,
            issuer,
            requests,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// The registry auth config that trusts this server's tokens.
    pub fn auth(&self) -> Auth {
        Auth::Token {
            realm: self.realm.clone(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            cert: self.dir.path().join("cert.pem"),
        }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr); // wakes accept()
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Minter {
    key: PathBuf,
    x5c: String,
    service: String,
    issuer: String,
    account: (String, String),
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unescape_query(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(n);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(mut conn: TcpStream, ctx: &Minter, log: &Mutex<Vec<TokenRequest>>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let user_pass = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    log.lock().expect("not poisoned").push(TokenRequest {
        target: target.clone(),
        user: user_pass.as_ref().map(|(u, _)| u.clone()),
    });
    let respond = |conn: &mut TcpStream, status: &str, body: &str| {
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let authenticated = match &user_pass {
        None => false,
        Some(up) if *up == ctx.account => true,
        Some(_) => {
            return respond(
                &mut conn,
                "401 Unauthorized",
                r#"{"details":"incorrect username or password"}"#,
            );
        }
    };
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut access = Vec::new();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "scope" {
            continue;
        }
        let scope = unescape_query(v);
        let parts: Vec<&str> = scope.splitn(3, ':').collect();
        if parts.len() != 3 || parts[0] != "repository" {
            continue;
        }
        // Anonymous users may pull; the account may do what it asks.
        let actions: Vec<&str> = parts[2]
            .split(',')
            .filter(|a| authenticated || *a == "pull")
            .collect();
        access
            .push(serde_json::json!({"type": "repository", "name": parts[1], "actions": actions}));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [ctx.x5c]});
    let claims = serde_json::json!({
        "iss": ctx.issuer, "sub": user_pass.as_ref().map(|(u, _)| u.clone()).unwrap_or_default(),
        "aud": ctx.service, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", std::process::id()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&ctx.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    openssl
        .stdin
        .take()
        .expect("piped")
        .write_all(signing_input.as_bytes())?;
    let mut signature = Vec::new();
    openssl
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut signature)?;
    openssl.wait()?;
    let token = format!("{signing_input}.{}", b64url(&signature));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    respond(&mut conn, "200 OK", &body)
}

/// A certificate authority of a test's own and a server certificate it signed for
/// 127.0.0.1, made with openssl(1) (EC P-256, valid two days).
#[derive(Debug)]
pub struct TestCerts {
    _dir: tempfile::TempDir,
    /// The authority's certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate of the same authority (for mutual TLS).
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
}

impl TestCerts {
    /// Makes them.
    pub fn make() -> io::Result<TestCerts> {
        let dir = tempfile::Builder::new().prefix("certs-").tempdir()?;
        let p = |n: &str| dir.path().join(n);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", "/CN=mini-docker test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.crt")))?;
        // A key and a certificate signed by the CA, with these X.509 extensions.
        let issue = |name: &str, subject: &str, extensions: &str| -> io::Result<()> {
            run(Command::new("openssl")
                .arg("req")
                .args(ec)
                .args(["-subj", subject])
                .arg("-keyout")
                .arg(p(&format!("{name}.key")))
                .arg("-out")
                .arg(p(&format!("{name}.csr"))))?;
            fs::write(p(&format!("{name}.cnf")), extensions)?;
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(p(&format!("{name}.csr")))
                .arg("-CA")
                .arg(p("ca.crt"))
                .arg("-CAkey")
                .arg(p("ca.key"))
                .arg("-extfile")
                .arg(p(&format!("{name}.cnf")))
                .arg("-out")
                .arg(p(&format!("{name}.crt"))))
            .map(drop)
        };
        issue(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        issue(
            "client",
            "/CN=mini-docker test client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )?;
        Ok(TestCerts {
            ca: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            client_cert: p("client.crt"),
            client_key: p("client.key"),
            _dir: dir,
        })
    }
}
