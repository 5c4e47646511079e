//! Pull and push against a real registry (Debian's docker-registry on 127.0.0.1), through
//! the real binary, with skopeo and umoci as the independent judges.
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use testkit::registry::{self, Auth, Layout, Registry, TokenServer};
use testkit::{require, show_with};

const BIN: &str = env!("CARGO_BIN_EXE_ch05-image-pull");

/// A store root and a credentials dir of the test's own.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::Builder::new().prefix("store-").tempdir().unwrap(),
        }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("MINI_DOCKER_ROOT", self.root())
            .env("MINI_DOCKER_CONFIG", self.dir.path().join("config"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run ch05-image-pull")
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", testkit::show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn images(&self) -> String {
        self.ok(&["images"])
    }
    /// The store as skopeo sees it: `oci:ROOT/images:REF`.
    fn skopeo(&self, name: &str) -> serde_json::Value {
        registry::skopeo_inspect(&format!("oci:{}/images:{name}", self.root().display()), &[])
            .unwrap_or_else(|e| panic!("skopeo inspect {name}: {e}"))
    }
    fn blob_count(&self) -> usize {
        fs::read_dir(self.root().join("images/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// The output with the registry's address, short ids (12 hex) and manifest sizes redacted.
fn show(out: &Output, reg: &Registry) -> String {
    let s = show_with(out, &[(&reg.addr, "[REGISTRY]")]);
    let s = regex::Regex::new(r"\b[0-9a-f]{12}\b")
        .unwrap()
        .replace_all(&s, "[SHORT]");
    regex::Regex::new(r"size: \d+")
        .unwrap()
        .replace_all(&s, "size: [N]")
        .into_owned()
}

fn tools() -> bool {
    registry::tools_available() && testkit::rootfs::busybox_available()
}

/// A registry seeded with busybox as `busybox:latest` (OCI manifest) and `busybox:v2s2`
/// (Docker schema 2).
fn seeded(auth: Auth, creds: Option<&str>) -> (Registry, Layout) {
    let reg = Registry::start_with(auth).expect("start docker-registry");
    let layout = registry::busybox_layout("latest").unwrap();
    let mut extra: Vec<&str> = Vec::new();
    if let Some(c) = creds {
        extra.extend(["--dest-creds", c]);
    }
    let dest = |t: &str| format!("docker://{}/busybox:{t}", reg.addr);
    registry::skopeo_copy(&layout.skopeo_ref("latest"), &dest("latest"), &extra).unwrap();
    extra.extend(["--format", "v2s2"]);
    registry::skopeo_copy(&layout.skopeo_ref("latest"), &dest("v2s2"), &extra).unwrap();
    (reg, layout)
}

#[test]
fn pull_stores_an_image_that_skopeo_and_umoci_read_and_a_second_pull_downloads_nothing() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    let env = Env::new();
    let image = format!("{}/busybox", reg.addr);
    let out = env.run(&["pull", &image]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 0
    --- stdout
    latest: Pulling from [REGISTRY]/busybox
    [SHORT]: Pulling fs layer
    [SHORT]: Download complete
    [SHORT]: Pull complete
    Digest: sha256:[DIGEST]
    Status: Downloaded newer image for [REGISTRY]/busybox:latest
    [REGISTRY]/busybox:latest
    ");
    // skopeo reads the store's OCI layout and agrees with the registry, digest for digest.
    let name = format!("{image}:latest");
    let local = env.skopeo(&name);
    let remote = registry::skopeo_inspect(&format!("docker://{name}"), &[]).unwrap();
    assert_eq!(local["Digest"], remote["Digest"]);
    assert_eq!(local["Layers"], remote["Layers"]);
    // umoci lists the name and unpacks the image (an OCI manifest) from our layout.
    let ls = registry::run(
        Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(env.root().join("images")),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), name);
    let bundle = env.dir.path().join("bundle");
    registry::run(
        Command::new("umoci")
            .args([
                "unpack",
                "--image",
                &format!("{}/images:{name}", env.root().display()),
            ])
            .arg(&bundle),
    )
    .unwrap();
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    // The layer is extracted once, for overlayfs, and matches what umoci unpacked.
    let layers: Vec<_> = fs::read_dir(env.root().join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 1);
    let ours = layers[0].path();
    assert_eq!(
        fs::read(ours.join("bin/busybox")).unwrap(),
        fs::read(bundle.join("rootfs/bin/busybox")).unwrap()
    );
    assert_eq!(
        fs::read_link(ours.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );

    // Pulled again: nothing downloaded.
    let out = env.run(&["--trace", "pull", &image]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("/blobs/"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": Already exists"), "{stdout}");
    assert!(
        stdout.contains("Status: Image is up to date for"),
        "{stdout}"
    );
    let table = env.images().replace(&reg.addr, "[REGISTRY]");
    let table = regex::Regex::new(r"\b[0-9a-f]{12}\b")
        .unwrap()
        .replace_all(&table, "[SHORT]");
    let table = regex::Regex::new(r"\d+ years ago")
        .unwrap()
        .replace_all(&table, "N years ago");
    let table = regex::Regex::new(r"\d+(\.\d+)?MB")
        .unwrap()
        .replace_all(&table, "[SIZE]");
    insta::assert_snapshot!(table, @r"
    REPOSITORY                TAG       IMAGE ID       CREATED       SIZE
    [REGISTRY]/busybox   latest    [SHORT]   N years ago   [SIZE]
    ");
}

#[test]
fn docker_schema2_images_and_digest_pulls_are_verified_and_kept_as_they_came() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    let env = Env::new();
    env.ok(&["pull", "-q", &format!("{}/busybox:v2s2", reg.addr)]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", &format!("{}/busybox:v2s2", reg.addr)])).unwrap();
    assert_eq!(
        inspect[0]["ManifestMediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digest = inspect[0]["ManifestDigest"].as_str().unwrap().to_string();
    // Byte for byte what the registry serves (skopeo 1.9's oci: transport skips index
    // entries with Docker media types, so the raw bytes are compared instead).
    let raw = registry::run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/busybox:v2s2", reg.addr)),
    )
    .unwrap()
    .stdout;
    let stored = env
        .root()
        .join("images/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert_eq!(fs::read(stored).unwrap(), raw);
    let by_digest = format!("{}/busybox@{digest}", reg.addr);
    let out = env.run(&["pull", "-q", &by_digest]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        by_digest,
        "{}",
        show(&out, &reg)
    );
    let ids: Vec<String> = env
        .ok(&["images", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 1, "one image, two names: {ids:?}");
    // A digest the registry does not have is a 404 with the registry's own words.
    let wrong = format!("{}/busybox@sha256:{}", reg.addr, "0".repeat(64));
    let out = env.run(&["pull", &wrong]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 125
    --- stdout
    sha256:[DIGEST]: Pulling from [REGISTRY]/busybox
    --- stderr
    ch05-image-pull: pull [REGISTRY]/busybox@sha256:[DIGEST]: GET http://[REGISTRY]/v2/busybox/manifests/sha256:[DIGEST]: 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)
    ");
}

#[test]
fn push_then_skopeo_pulls_it_and_a_second_push_mounts_or_skips_every_blob() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    let env = Env::new();
    env.ok(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
    let target = format!("{}/mine/box:v1", reg.addr);
    env.ok(&["tag", &format!("{}/busybox", reg.addr), &target]);
    // Blobs the registry has under busybox are mounted, not uploaded.
    let out = env.run(&["push", &target]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 0
    --- stdout
    The push refers to repository [[REGISTRY]/mine/box]
    [SHORT]: Preparing
    [SHORT]: Mounted from busybox
    v1: digest: sha256:[DIGEST] size: [N]
    ");
    // skopeo pulls what we pushed and finds the same image.
    let copy = env.dir.path().join("skopeo-copy");
    registry::skopeo_copy(
        &format!("docker://{target}"),
        &format!("oci:{}:x", copy.display()),
        &[],
    )
    .unwrap();
    let theirs = registry::skopeo_inspect(&format!("oci:{}:x", copy.display()), &[]).unwrap();
    assert_eq!(theirs["Digest"], env.skopeo(&target)["Digest"]);

    // Another registry, where nothing can be mounted from: the blobs are uploaded, in chunks.
    let reg2 = Registry::start().unwrap();
    let fresh = Env::new();
    fresh.ok(&["pull", "-q", &target]);
    let other = format!("{}/other:v2", reg2.addr);
    fresh.ok(&["tag", &target, &other]);
    let out = fresh.run(&["--trace", "push", "--chunk-size", "300000", &other]);
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", show(&out, &reg));
    assert!(trace.contains("> PATCH http://"), "{trace}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": Pushed"));
    let theirs = registry::skopeo_inspect(&format!("docker://{other}"), &[]).unwrap();
    assert_eq!(theirs["Digest"], fresh.skopeo(&other)["Digest"]);
    // Pushed again: every blob is already there.
    let out = fresh.run(&["push", &other]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(": Layer already exists"));
}

#[test]
fn multi_layer_images_with_deletions_and_an_index_with_two_platforms() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let reg = Registry::start().unwrap();
    let rootfs = testkit::rootfs::Rootfs::busybox().unwrap();
    let layout = Layout::new().unwrap();
    layout
        .add_image("amd", rootfs.path(), "/bin/sh", "amd64")
        .unwrap();
    layout
        .add_layer("amd", |r| {
            fs::write(r.join("hello.txt"), "second layer\n")?;
            fs::remove_file(r.join("bin/vi"))
        })
        .unwrap();
    layout
        .add_image("arm", rootfs.path(), "/bin/sh", "arm64")
        .unwrap();
    layout
        .add_index("multi", &[("amd", "linux/amd64"), ("arm", "linux/arm64")])
        .unwrap();
    registry::skopeo_copy(
        &layout.skopeo_ref("multi"),
        &format!("docker://{}/multi:1", reg.addr),
        &["--all"],
    )
    .unwrap();
    registry::skopeo_copy(
        &layout.skopeo_ref("arm"),
        &format!("docker://{}/armonly:1", reg.addr),
        &[],
    )
    .unwrap();

    let env = Env::new();
    let multi = format!("{}/multi:1", reg.addr);
    env.ok(&["pull", "-q", &multi]);
    let img: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &multi])).unwrap();
    assert_eq!(img[0]["Config"]["architecture"], "amd64");
    assert_eq!(img[0]["Layers"].as_array().unwrap().len(), 2);
    // The top layer records the deletion as an overlay whiteout (a 0/0 character device).
    let top = img[0]["Layers"][1]["DiffID"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let vi = env.root().join("layers").join(top).join("bin/vi");
    let meta = fs::symlink_metadata(&vi).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &meta.file_type()
    ));
    assert_eq!(std::os::unix::fs::MetadataExt::rdev(&meta), 0);
    // skopeo, asked for the same platform, finds the manifest we chose.
    let theirs =
        registry::skopeo_inspect(&format!("docker://{multi}"), &["--override-arch", "amd64"])
            .unwrap();
    assert_eq!(theirs["Layers"], env.skopeo(&multi)["Layers"]);

    // --platform picks the other one.
    let other = Env::new();
    other.ok(&["pull", "-q", "--platform", "linux/arm64", &multi]);
    let img: serde_json::Value = serde_json::from_str(&other.ok(&["inspect", &multi])).unwrap();
    assert_eq!(img[0]["Config"]["architecture"], "arm64");

    // Bad case: an index without our platform, and an image for another platform only.
    let none = Env::new();
    let out = none.run(&["pull", "--platform", "linux/s390x", &multi]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/multi:1: [REGISTRY]/multi:1: no manifest for platform linux/s390x in the index (it has: linux/amd64, linux/arm64)");
    let out = none.run(&["pull", &format!("{}/armonly:1", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/armonly:1: [REGISTRY]/armonly:1: the image is for linux/arm64, not for linux/amd64 (use --platform linux/arm64 to pull it anyway)");
    assert_eq!(none.blob_count(), 0, "nothing left in the store");
    assert_eq!(none.images().lines().count(), 1);
}

#[test]
fn basic_auth_login_pull_push_logout_and_a_wrong_password() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let auth = Auth::Basic {
        user: "tester".into(),
        password: "s3cret".into(),
    };
    let (reg, _layout) = seeded(auth, Some("tester:s3cret"));
    let env = Env::new();
    let image = format!("{}/busybox", reg.addr);
    let out = env.run(&["pull", &image]);
    insta::assert_snapshot!(show(&out, &reg), @r#"
    exit: 125
    --- stdout
    latest: Pulling from [REGISTRY]/busybox
    --- stderr
    ch05-image-pull: pull [REGISTRY]/busybox:latest: [REGISTRY] asks for credentials (Basic realm="test-registry"): log in first with `ch05-image-pull login [REGISTRY]`
    "#);
    let out = env.run(&["login", "-u", "tester", "-p", "wrong", &reg.addr]);
    insta::assert_snapshot!(show(&out, &reg), @r#"
    exit: 125
    --- stderr
    WARNING! Using --password via the CLI is insecure. Use --password-stdin.
    ch05-image-pull: login [REGISTRY]: [REGISTRY] refused the credentials of user "tester": GET http://[REGISTRY]/v2/: 401 Unauthorized (UNAUTHORIZED: authentication required)
    "#);
    let mut login = env.cmd(&["login", "-u", "tester", "--password-stdin", &reg.addr]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 0
    --- stdout
    Login Succeeded
    ");
    // Stored the way docker stores it.
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(env.dir.path().join("config/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["auths"][&reg.addr]["auth"], "dGVzdGVyOnMzY3JldA==");
    env.ok(&["pull", "-q", &image]);
    let target = format!("{}/pushed:1", reg.addr);
    env.ok(&["tag", &image, &target]);
    env.ok(&["push", "-q", &target]);
    let theirs =
        registry::skopeo_inspect(&format!("docker://{target}"), &["--creds", "tester:s3cret"])
            .unwrap();
    assert_eq!(theirs["Digest"], env.skopeo(&target)["Digest"]);
    insta::assert_snapshot!(show(&env.run(&["logout", &reg.addr]), &reg), @r"
    exit: 0
    --- stdout
    Removing login credentials for [REGISTRY]
    ");
    assert_eq!(env.run(&["pull", "-q", &image]).status.code(), Some(125));
}

#[test]
fn docker_config_json_logins_are_used() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let auth = Auth::Basic {
        user: "dockeruser".into(),
        password: "pw".into(),
    };
    let (reg, _layout) = seeded(auth, Some("dockeruser:pw"));
    let env = Env::new();
    let docker = env.dir.path().join("docker-config");
    fs::create_dir_all(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"ZG9ja2VydXNlcjpwdw=="}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    env.ok(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
}

#[test]
fn the_bearer_token_flow_against_a_registry_with_token_auth() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let tokens = TokenServer::start("hubuser", "hubpass").unwrap();
    let reg = Registry::start_with(tokens.auth()).unwrap();
    let layout = registry::busybox_layout("latest").unwrap();
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{}/library/busybox:latest", reg.addr),
        &["--dest-creds", "hubuser:hubpass"],
    )
    .unwrap();
    let env = Env::new();
    let image = format!("{}/library/busybox", reg.addr);
    // Anonymous pull: the challenge names the realm; the token is for pull only.
    let before = tokens.requests().len();
    let out = env.run(&["--trace", "pull", "-q", &image]);
    assert!(out.status.success(), "{}", show(&out, &reg));
    let trace = String::from_utf8_lossy(&out.stderr).replace(&reg.addr, "[REGISTRY]");
    let trace = trace.replace(tokens.realm.as_str(), "[REALM]");
    let first: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with("> ") || l.contains("www-authenticate"))
        .take(4)
        .collect();
    insta::assert_snapshot!(first.join("\n"), @r#"
    > GET http://[REGISTRY]/v2/
    < 401 Unauthorized (www-authenticate: Bearer realm="[REALM]",service="test-registry", content-type: application/json; charset=utf-8, content-length: 87)
    > GET [REALM]?service=test-registry&scope=repository%3Alibrary%2Fbusybox%3Apull
    > GET http://[REGISTRY]/v2/library/busybox/manifests/latest (accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, authorization: Bearer [REDACTED])
    "#);
    let asked = &tokens.requests()[before..];
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].user, None);

    // Push needs the account: anonymous gets a pull-only token and the registry says no.
    let target = format!("{}/hubuser/box:1", reg.addr);
    env.ok(&["tag", &image, &target]);
    let out = env.run(&["push", "-q", &target]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out, &reg));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401 Unauthorized"),
        "{}",
        show(&out, &reg)
    );
    // A wrong password is refused by the token endpoint.
    let out = env.run(&["login", "-u", "hubuser", "-p", "nope", &reg.addr]);
    let shown = show(&out, &reg).replace(tokens.realm.as_str(), "[REALM]");
    assert!(shown.contains("refused the credentials of user \"hubuser\": GET [REALM]?account=hubuser&service=test-registry: 401 Unauthorized"), "{shown}");
    env.ok(&["login", "-u", "hubuser", "-p", "hubpass", &reg.addr]);
    env.ok(&["push", "-q", &target]);
    let last = tokens.requests().last().unwrap().clone();
    assert_eq!(last.user.as_deref(), Some("hubuser"));
    assert!(
        last.target
            .contains("scope=repository%3Ahubuser%2Fbox%3Apull%2Cpush"),
        "{last:?}"
    );
    let theirs = registry::skopeo_inspect(
        &format!("docker://{target}"),
        &["--creds", "hubuser:hubpass"],
    )
    .unwrap();
    assert_eq!(theirs["Digest"], env.skopeo(&target)["Digest"]);
}

#[test]
fn bad_cases_fail_clearly_and_leave_nothing_in_the_store() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    // Unknown repository and unknown tag: 404 with the registry's error code.
    let env = Env::new();
    let out = env.run(&["pull", &format!("{}/nope", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/nope:latest: GET http://[REGISTRY]/v2/nope/manifests/latest: 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)");
    let out = env.run(&["pull", &format!("{}/busybox:nope", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:nope: GET http://[REGISTRY]/v2/busybox/manifests/nope: 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)");
    // A bad reference says which part is wrong.
    let out = env.run(&["pull", "Busybox:-1"]);
    insta::assert_snapshot!(show(&out, &reg), @r#"
    exit: 125
    --- stderr
    ch05-image-pull: invalid reference "Busybox:-1": tag "-1" must start with a letter, a digit or '_'
    "#);
    // A registry that is down.
    let down = format!("127.0.0.1:{}", registry::free_port());
    let out = env.run(&["pull", &format!("{down}/busybox")]);
    let shown = show(&out, &reg).replace(&down, "[DOWN]");
    insta::assert_snapshot!(shown.lines().last().unwrap(), @"ch05-image-pull: pull [DOWN]/busybox:latest: GET http://[DOWN]/v2/: connection refused");

    // A tampered blob (same size, other bytes) and a truncated one, in the registry's storage.
    let manifest =
        registry::skopeo_inspect(&format!("docker://{}/busybox:latest", reg.addr), &[]).unwrap();
    let layer = manifest["Layers"][0].as_str().unwrap().to_string();
    let data = reg.blob_data(&layer);
    let original = fs::read(&data).unwrap();
    let mut tampered = original.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    fs::write(&data, &tampered).unwrap();
    let out = env.run(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:latest: blob sha256:[DIGEST]: digest mismatch: the content's sha256 is sha256:[DIGEST]");
    fs::write(&data, &original[..original.len() - 1000]).unwrap();
    let out = env.run(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
    let shown = show(&out, &reg);
    let shown = regex::Regex::new(r"\d+ bytes, got \d+")
        .unwrap()
        .replace_all(&shown, "N bytes, got M");
    insta::assert_snapshot!(shown.lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:latest: blob sha256:[DIGEST]: size mismatch: expected N bytes, got M (the registry's Content-Length)");
    // Nothing listed, no layer blob, no temp file, no layer directory.
    assert_eq!(env.images().lines().count(), 1);
    assert!(
        !env.root()
            .join("images/blobs/sha256")
            .join(layer.trim_start_matches("sha256:"))
            .exists()
    );
    assert_eq!(fs::read_dir(env.root().join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(env.root().join("layers")).unwrap().count(), 0);
    // Repaired: the next pull completes the image.
    fs::write(&data, &original).unwrap();
    env.ok(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
    assert_eq!(env.images().lines().count(), 2);
}

#[test]
fn rmi_drops_unused_blobs_and_layers_but_keeps_shared_ones() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    let env = Env::new();
    let a = format!("{}/busybox:latest", reg.addr);
    let b = format!("{}/busybox:v2s2", reg.addr);
    env.ok(&["pull", "-q", &a]);
    env.ok(&["pull", "-q", &b]);
    // Same layer, different manifests and configs: one extracted layer for both.
    assert_eq!(fs::read_dir(env.root().join("layers")).unwrap().count(), 1);
    let out = env.run(&["rmi", &b]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 0
    --- stdout
    Untagged: [REGISTRY]/busybox:v2s2
    Deleted: sha256:[DIGEST]
    ");
    assert_eq!(fs::read_dir(env.root().join("layers")).unwrap().count(), 1);
    env.skopeo(&a);
    let out = env.run(&["rmi", &a]);
    assert!(out.status.success());
    assert_eq!(env.blob_count(), 0);
    assert_eq!(fs::read_dir(env.root().join("layers")).unwrap().count(), 0);
    let out = env.run(&["rmi", &a]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 125
    --- stderr
    ch05-image-pull: rmi [REGISTRY]/busybox:latest: no such image: [REGISTRY]/busybox:latest
    ");
}

#[test]
fn concurrent_pulls_sharing_layers_and_pulls_killed_midway_leave_a_consistent_store() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let reg = Registry::start().unwrap();
    // A base layer, and two images on top of it with a big layer each.
    let rootfs = testkit::rootfs::Rootfs::busybox().unwrap();
    let layout = Layout::new().unwrap();
    layout
        .add_image("one", rootfs.path(), "/bin/sh", "amd64")
        .unwrap();
    layout.tag("one", "two").unwrap();
    for (tag, seed) in [("one", 1u8), ("two", 2u8)] {
        layout
            .add_layer(tag, |r| {
                // 24 MB that gzip cannot shrink: a download that takes a moment.
                let mut x: u64 = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let bytes: Vec<u8> = (0..24_000_000)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                fs::write(r.join("big.bin"), bytes)
            })
            .unwrap();
        registry::skopeo_copy(
            &layout.skopeo_ref(tag),
            &format!("docker://{}/big:{tag}", reg.addr),
            &[],
        )
        .unwrap();
    }
    let env = Env::new();
    let one = format!("{}/big:one", reg.addr);
    let two = format!("{}/big:two", reg.addr);
    // Killed at several moments: never a listed image, and the store stays usable.
    for delay_ms in [5u64, 30, 80, 150] {
        let mut child = env
            .cmd(&["pull", "-q", &one])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let listed = env.images();
        assert!(
            listed.lines().count() == 1 || env.skopeo(&one)["Digest"].is_string(),
            "{listed}"
        );
    }
    // Two pulls at once, sharing the base layer; one also racing the leftovers of the kills.
    let p1 = env
        .cmd(&["pull", "-q", &one])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p2 = env
        .cmd(&["pull", "-q", &two])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for p in [p1, p2] {
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show(&out, &reg));
    }
    for name in [&one, &two] {
        let ours = env.skopeo(name);
        let theirs = registry::skopeo_inspect(&format!("docker://{name}"), &[]).unwrap();
        assert_eq!(ours["Digest"], theirs["Digest"]);
    }
    // Every blob in the store has the digest it is named by.
    for e in fs::read_dir(env.root().join("images/blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let hex = registry::sha256_hex(&fs::read(e.path()).unwrap()).unwrap();
        assert_eq!(hex, e.file_name().to_string_lossy());
    }
    // Three distinct layers (base shared, one big each), extracted once each (and maybe
    // the temp directories of the killed pulls).
    let extracted = fs::read_dir(env.root().join("layers"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(extracted, 3);
    // The temp files of the killed pulls go with the next garbage collection.
    env.ok(&["rmi", &two]);
    assert_eq!(fs::read_dir(env.root().join("tmp")).unwrap().count(), 0);
    let left: Vec<_> = fs::read_dir(env.root().join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}
