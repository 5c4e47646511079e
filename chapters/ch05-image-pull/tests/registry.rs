//! Pull and push against a real registry (Debian's docker-registry on 127.0.0.1), through
//! the real binary, with skopeo and umoci as the independent judges: after each pull, every
//! image the store names is read back by both ([`judge_every_image`]).
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
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
    fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self
            .root()
            .join("images/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
    fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    registry::run(cmd).unwrap().stdout
}

/// The independent judges, on every image the store names. For each index.json entry:
/// it is an OCI image manifest; skopeo's `oci:` transport reads it (its raw manifest is
/// our blob byte for byte, its config our config blob, its digest and layers ours); umoci
/// lists it, `umoci stat` agrees on the layers and their diff-ids, and `umoci unpack`
/// makes the same tree as the store's extracted layers stacked the way overlayfs stacks
/// them. Returns how many images were judged.
fn judge_every_image(env: &Env) -> usize {
    let images = env.root().join("images");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(images.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap().clone();
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| {
            e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let listed = stdout_of(Command::new("umoci").args(["ls", "--layout"]).arg(&images));
    let mut listed: Vec<String> = String::from_utf8_lossy(&listed)
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    names.sort();
    assert_eq!(listed, names, "umoci ls lists every name");
    for (i, entry) in entries.iter().enumerate() {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(entry["mediaType"], OCI_MANIFEST, "{name}");
        // skopeo.
        let oci = format!("oci:{}:{name}", images.display());
        let raw = stdout_of(Command::new("skopeo").args(["inspect", "--raw", &oci]));
        assert!(raw == env.blob(digest), "{name}: skopeo reads our manifest");
        let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        // Optional in an OCI manifest (umoci leaves it out), Docker's in a Docker one.
        assert!(
            [serde_json::json!(OCI_MANIFEST), serde_json::Value::Null]
                .contains(&manifest["mediaType"]),
            "{name}: {}",
            manifest["mediaType"]
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let t = l["mediaType"].as_str().unwrap();
                assert!(t.starts_with("application/vnd.oci.image.layer."), "{t}");
                l["digest"].as_str().unwrap().to_string()
            })
            .collect();
        let config_raw =
            stdout_of(Command::new("skopeo").args(["inspect", "--config", "--raw", &oci]));
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        assert!(config_raw == env.blob(config_digest), "{name}: the config");
        let inspected = registry::skopeo_inspect(&oci, &[]).unwrap();
        assert_eq!(inspected["Digest"], digest, "{name}");
        assert_eq!(inspected["Layers"], serde_json::json!(layers), "{name}");
        // umoci.
        let config: serde_json::Value = serde_json::from_slice(&config_raw).unwrap();
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        let image = format!("{}:{name}", images.display());
        let stat: serde_json::Value = serde_json::from_slice(&stdout_of(
            Command::new("umoci").args(["stat", "--json", "--image", &image]),
        ))
        .unwrap();
        let stat_layers: Vec<(String, String)> = stat["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| !h["layer"].is_null())
            .map(|h| {
                (
                    h["layer"]["digest"].as_str().unwrap().to_string(),
                    h["diff_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let ours: Vec<(String, String)> = layers.iter().cloned().zip(diff_ids.clone()).collect();
        assert_eq!(stat_layers, ours, "{name}: umoci stat");
        let bundle = env.dir.path().join(format!("umoci-unpack-{i}"));
        registry::run(
            Command::new("umoci")
                .args(["unpack", "--image", &image])
                .arg(&bundle),
        )
        .unwrap();
        let theirs = tree(&bundle.join("rootfs"));
        fs::remove_dir_all(&bundle).unwrap();
        let stacked = stack(env, &diff_ids);
        assert!(!theirs.is_empty());
        if theirs != stacked {
            let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
                a.iter()
                    .filter(|(k, v)| b.get(*k) != Some(v))
                    .map(|(k, v)| format!("{k}: {v}"))
                    .take(10)
                    .collect::<Vec<_>>()
            };
            panic!(
                "{name}: umoci unpack differs from our layers\numoci only: {:#?}\nours only: {:#?}",
                only(&theirs, &stacked),
                only(&stacked, &theirs)
            );
        }
    }
    entries.len()
}

/// Every path under `root` (root itself left out) with its type, mode, owner and content
/// (a file's sha256, a link's target); an overlay whiteout (0/0 character device) as such.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let m = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let who = format!("{:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
            let t = m.file_type();
            let shown = if t.is_dir() {
                stack.push(path.clone());
                format!("dir {who}")
            } else if t.is_symlink() {
                format!("link {who} -> {}", fs::read_link(&path).unwrap().display())
            } else if t.is_file() {
                let content = fs::read(&path).unwrap();
                format!("file {who} {}", ch05_image_pull::Digest::of(&content))
            } else if t.is_char_device() && m.rdev() == 0 {
                "whiteout".to_string()
            } else {
                format!("special {who} {:?} {}", t, m.rdev())
            };
            out.insert(rel, shown);
        }
    }
    out
}

/// The store's extracted layers for these diff-ids, stacked as overlayfs does: an upper
/// entry hides the lower one (and, unless both are directories, everything below it); a
/// whiteout deletes. (Opaque directories, an xattr, do not occur in these images.)
fn stack(env: &Env, diff_ids: &[String]) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for d in diff_ids {
        let dir = env
            .root()
            .join("layers")
            .join(d.trim_start_matches("sha256:"));
        for (rel, shown) in tree(&dir) {
            let below = format!("{rel}/");
            let replaces_dir = !(shown.starts_with("dir ")
                && merged.get(&rel).is_some_and(|s| s.starts_with("dir ")));
            if replaces_dir {
                merged.retain(|k, _| !k.starts_with(&below));
            }
            if shown == "whiteout" {
                merged.remove(&rel);
            } else {
                merged.insert(rel, shown);
            }
        }
    }
    merged
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
    latest: Pulling from busybox
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
    // The layer is extracted once, for overlayfs, while it downloaded; umoci lists the
    // name, and unpacks from our layout the same tree as our extracted layer.
    let layers: Vec<_> = fs::read_dir(env.root().join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        fs::read_link(layers[0].path().join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(judge_every_image(&env), 1);
    // docker's RepoDigests: the digest the registry gave.
    let shown = env.inspect(&name);
    assert_eq!(shown["ManifestMediaType"], OCI_MANIFEST);
    assert_eq!(shown["OriginalManifest"], serde_json::Value::Null);
    assert_eq!(
        shown["RepoDigests"],
        serde_json::json!([format!("{image}@{}", remote["Digest"].as_str().unwrap())])
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
fn docker_schema2_images_are_kept_as_they_came_and_named_by_an_oci_manifest_of_the_same_blobs() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let (reg, _layout) = seeded(Auth::None, None);
    let env = Env::new();
    let name = format!("{}/busybox:v2s2", reg.addr);
    let remote = registry::skopeo_inspect(&format!("docker://{name}"), &[]).unwrap();
    let registry_digest = remote["Digest"].as_str().unwrap().to_string();
    let out = env.run(&["pull", &name]);
    assert!(out.status.success(), "{}", show(&out, &reg));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Digest: {registry_digest}\n")),
        "pull shows the registry's digest: {stdout}"
    );
    // The manifest as the registry serves it, byte for byte, is kept...
    let raw = registry::run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{name}")),
    )
    .unwrap()
    .stdout;
    let docker: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(docker["mediaType"], DOCKER_MANIFEST);
    assert!(env.blob(&registry_digest) == raw);
    // ...but the name points at an OCI manifest of the same config and layers.
    let shown = env.inspect(&name);
    assert_eq!(shown["ManifestMediaType"], OCI_MANIFEST);
    assert_ne!(shown["ManifestDigest"], registry_digest.as_str());
    assert_eq!(
        shown["OriginalManifest"],
        serde_json::json!({"Digest": registry_digest, "MediaType": DOCKER_MANIFEST, "Size": raw.len()})
    );
    assert_eq!(
        shown["RepoDigests"],
        serde_json::json!([format!("{}/busybox@{registry_digest}", reg.addr)])
    );
    let oci = &shown["Manifest"];
    assert_eq!(oci["config"]["digest"], docker["config"]["digest"]);
    assert_eq!(oci["config"]["size"], docker["config"]["size"]);
    let pairs = |m: &serde_json::Value| -> Vec<(String, u64)> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["digest"].as_str().unwrap().into(),
                    l["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(pairs(oci), pairs(&docker));
    // skopeo and umoci read it (skopeo 1.9 skips index entries of Docker types).
    assert_eq!(judge_every_image(&env), 1);
    assert_eq!(env.skopeo(&name)["Layers"], remote["Layers"]);
    // Pulled again: the original manifest is recognised.
    let out = env.run(&["pull", &name]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Digest: {registry_digest}\nStatus: Image is up to date for {name}"
        )),
        "{stdout}"
    );

    // By digest (the registry's): the same image under a second name.
    let by_digest = format!("{}/busybox@{registry_digest}", reg.addr);
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
    assert_eq!(
        env.inspect(&by_digest)["RepoDigests"],
        serde_json::json!([by_digest])
    );
    assert_eq!(judge_every_image(&env), 2);

    // Pushed, the image is its OCI manifest: the digest changes (as with podman).
    let target = format!("{}/converted:1", reg.addr);
    env.ok(&["tag", &name, &target]);
    assert_eq!(
        env.inspect(&target)["RepoDigests"],
        shown["RepoDigests"],
        "a tag adds no repository digest"
    );
    let out = env.run(&["push", &target]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let oci_digest = shown["ManifestDigest"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("1: digest: {oci_digest} size: ")),
        "{}",
        show(&out, &reg)
    );
    let pushed = registry::skopeo_inspect(&format!("docker://{target}"), &["--raw"]).unwrap();
    assert_eq!(pushed["mediaType"], OCI_MANIFEST);
    assert_eq!(
        registry::skopeo_inspect(&format!("docker://{target}"), &[]).unwrap()["Digest"],
        oci_digest
    );

    // A digest the registry does not have is a 404 with the registry's own words.
    let wrong = format!("{}/busybox@sha256:{}", reg.addr, "0".repeat(64));
    let out = env.run(&["pull", &wrong]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 125
    --- stdout
    sha256:[DIGEST]: Pulling from busybox
    --- stderr
    ch05-image-pull: pull [REGISTRY]/busybox@sha256:[DIGEST]: GET http://[REGISTRY]/v2/busybox/manifests/sha256:[DIGEST]: 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)
    ");
    // Removing every name removes both manifests with the rest.
    for n in [&name, &by_digest, &target] {
        env.ok(&["rmi", n]);
    }
    assert_eq!(env.blob_count(), 0);
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
    // The same two images as a Docker manifest list of Docker schema 2 manifests.
    let list = format!("{}/multi:v2s2", reg.addr);
    registry::skopeo_copy(
        &layout.skopeo_ref("multi"),
        &format!("docker://{list}"),
        &["--all", "--format", "v2s2"],
    )
    .unwrap();
    let list_raw = registry::run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{list}")),
    )
    .unwrap()
    .stdout;
    let list_json: serde_json::Value = serde_json::from_slice(&list_raw).unwrap();
    assert_eq!(
        list_json["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let list_digest = format!("sha256:{}", registry::sha256_hex(&list_raw).unwrap());

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
    // From the Docker manifest list: the same layers, under an OCI manifest of its own;
    // RepoDigests name the list, as docker's do.
    let out = env.run(&["pull", &list]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Digest: {list_digest}\n")),
        "{}",
        show(&out, &reg)
    );
    let from_list = env.inspect(&list);
    assert_eq!(from_list["ManifestMediaType"], OCI_MANIFEST);
    assert_eq!(from_list["OriginalManifest"]["MediaType"], DOCKER_MANIFEST);
    assert_eq!(from_list["Layers"], img[0]["Layers"]);
    assert_eq!(from_list["Id"], img[0]["Id"]);
    assert_eq!(
        from_list["RepoDigests"],
        serde_json::json!([format!("{}/multi@{list_digest}", reg.addr)])
    );
    assert_eq!(judge_every_image(&env), 2);

    // --platform picks the other one.
    let other = Env::new();
    other.ok(&["pull", "-q", "--platform", "linux/arm64", &multi]);
    let img: serde_json::Value = serde_json::from_str(&other.ok(&["inspect", &multi])).unwrap();
    assert_eq!(img[0]["Config"]["architecture"], "arm64");
    other.ok(&["pull", "-q", "--platform", "linux/arm64", &list]);
    assert_eq!(other.inspect(&list)["Config"]["architecture"], "arm64");
    assert_eq!(judge_every_image(&other), 2);

    // Bad case: an index without our platform, and an image for another platform only.
    let none = Env::new();
    let out = none.run(&["pull", "--platform", "linux/s390x", &multi]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/multi:1: [REGISTRY]/multi:1: no manifest for platform linux/s390x in the index (it has: linux/amd64, linux/arm64)");
    let out = none.run(&["pull", &format!("{}/armonly:1", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/armonly:1: [REGISTRY]/armonly:1: the image is for linux/arm64, not for linux/amd64 (use --platform linux/arm64 to pull it anyway)");
    assert_eq!(none.blob_count(), 0, "nothing left in the store");
    assert_eq!(none.images().lines().count(), 1);
}

/// The index.json entry named `name`.
fn entry_named(env: &Env, name: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(env.root().join("images/index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("no entry named {name}"))
        .clone()
}

/// The names of the entries of one store directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Pulls `name` (full form) with `pull` into `real` and with `pull --simple`, the chapter's
/// story, into `simple`; then both stores must hold the same: the index.json entry
/// (manifest digest, name, media type, annotations), the same blobs, and the same extracted
/// layers, file for file. Returns what the story printed.
fn pull_both_ways(real: &Env, simple: &Env, name: &str) -> Output {
    real.ok(&["pull", "-q", name]);
    let told = simple.run(&["pull", "--simple", name]);
    assert!(told.status.success(), "{}", testkit::show(&told));
    assert_eq!(entry_named(simple, name), entry_named(real, name), "{name}");
    let blobs = |env: &Env| names_in(&env.root().join("images/blobs/sha256"));
    assert_eq!(blobs(simple), blobs(real), "{name}: the blobs");
    let layers = names_in(&real.root().join("layers"));
    assert_eq!(names_in(&simple.root().join("layers")), layers, "{name}");
    for l in &layers {
        let dir = |env: &Env| tree(&env.root().join("layers").join(l));
        assert!(dir(simple) == dir(real), "{name}: layer {l} differs");
    }
    told
}

#[test]
fn the_story_pulls_what_pull_pulls() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    // busybox as OCI and as Docker schema 2, and an OCI index of two platforms whose
    // amd64 image has a second layer that deletes a file (a whiteout).
    let (reg, _busybox) = seeded(Auth::None, None);
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
    let (real, simple) = (Env::new(), Env::new());

    let told = pull_both_ways(&real, &simple, &format!("{}/busybox:latest", reg.addr));
    insta::assert_snapshot!(show(&told, &reg), @r"
    exit: 0
    --- stdout
    GET http://[REGISTRY]/v2/: 200, no credentials needed
    manifest sha256:[DIGEST]: application/vnd.oci.image.manifest.v1+json
    config sha256:[DIGEST]: verified, linux/amd64, 1 layer(s)
    layer sha256:[DIGEST]: verified; diff-id sha256:[DIGEST]: verified, applied
    Digest: sha256:[DIGEST]
    [REGISTRY]/busybox:latest
    ");
    let told = pull_both_ways(&real, &simple, &format!("{}/busybox:v2s2", reg.addr));
    let told = String::from_utf8_lossy(&told.stdout).into_owned();
    assert!(
        told.contains(": application/vnd.docker.distribution.manifest.v2+json\n"),
        "{told}"
    );
    let told = pull_both_ways(&real, &simple, &format!("{}/multi:1", reg.addr));
    let told = String::from_utf8_lossy(&told.stdout).into_owned();
    assert!(
        told.contains(" 2 manifest(s), linux/amd64 is sha256:"),
        "{told}"
    );
    assert!(told.contains("2 layer(s)"), "{told}");
    // The story's store is one skopeo and umoci read, like pull's.
    assert_eq!(judge_every_image(&simple), 3);
    // Nothing of the story's downloads is left.
    assert_eq!(names_in(&simple.root().join("tmp")), Vec::<String>::new());
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
    latest: Pulling from busybox
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
    // The story asks for the same token, and stores the same image.
    let simple = Env::new();
    let told = pull_both_ways(&env, &simple, &format!("{image}:latest"));
    let told = String::from_utf8_lossy(&told.stdout).replace(tokens.realm.as_str(), "[REALM]");
    assert!(
        told.contains(
            "401, Bearer realm=\"[REALM]\",service=\"test-registry\"\ntoken: Bearer, from [REALM]\n"
        ),
        "{told}"
    );
    let asked = &tokens.requests()[before..];
    assert_eq!(asked.len(), 3, "one token for each pull: {asked:?}");
    assert_eq!(asked[2].target, asked[0].target);

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
    let before = tokens.requests().len();
    env.ok(&["push", "-q", &target]);
    // One token serves the whole push: pull and push on the target, and pull on the
    // repository its layers are mounted from.
    let asked = &tokens.requests()[before..];
    assert_eq!(asked.len(), 1, "one token for the push: {asked:?}");
    assert_eq!(asked[0].user.as_deref(), Some("hubuser"));
    assert!(
        asked[0]
            .target
            .contains("scope=repository%3Ahubuser%2Fbox%3Apull%2Cpush&scope=repository%3Alibrary%2Fbusybox%3Apull"),
        "{asked:?}"
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
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:latest: GET http://[REGISTRY]/v2/busybox/blobs/sha256:[DIGEST]: blob sha256:[DIGEST]: digest mismatch: the content's sha256 is sha256:[DIGEST]");
    // The story refuses them too.
    let out = env.run(&["pull", "--simple", &format!("{}/busybox", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:latest: blob sha256:[DIGEST]: digest mismatch: the content's sha256 is sha256:[DIGEST]");
    fs::write(&data, &original[..original.len() - 1000]).unwrap();
    let out = env.run(&["pull", "-q", &format!("{}/busybox", reg.addr)]);
    let shown = show(&out, &reg);
    let shown = regex::Regex::new(r"\d+ bytes, got \d+")
        .unwrap()
        .replace_all(&shown, "N bytes, got M");
    insta::assert_snapshot!(shown.lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/busybox:latest: GET http://[REGISTRY]/v2/busybox/blobs/sha256:[DIGEST]: blob sha256:[DIGEST]: size mismatch: expected N bytes, got M (the registry's Content-Length)");
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

    // A config that lies about the layer's diff-id: the blob is what the manifest says,
    // the tar inside is not what the config says. Both checks run as the layer streams,
    // and neither the blob nor the extracted layer is kept.
    let liar = registry::busybox_layout("latest").unwrap();
    let truth = lie_about_the_diff_id(&liar, "latest");
    registry::skopeo_copy(
        &liar.skopeo_ref("latest"),
        &format!("docker://{}/liar:1", reg.addr),
        &[],
    )
    .unwrap();
    let fresh = Env::new();
    let out = fresh.run(&["pull", "-q", &format!("{}/liar:1", reg.addr)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the uncompressed layer's sha256 is {truth}\n")),
        "{stderr}"
    );
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/liar:1: GET http://[REGISTRY]/v2/liar/blobs/sha256:[DIGEST]: layer with diff-id sha256:[DIGEST]: the uncompressed layer's sha256 is sha256:[DIGEST]");
    // The story checks the diff-id as it applies the layer, and keeps nothing either.
    let out = fresh.run(&["pull", "--simple", &format!("{}/liar:1", reg.addr)]);
    insta::assert_snapshot!(show(&out, &reg).lines().last().unwrap(), @"ch05-image-pull: pull [REGISTRY]/liar:1: layer with diff-id sha256:[DIGEST]: the uncompressed layer's sha256 is sha256:[DIGEST]");
    assert_eq!(fresh.images().lines().count(), 1);
    assert_eq!(fresh.blob_count(), 0);
    assert_eq!(fs::read_dir(fresh.root().join("tmp")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(fresh.root().join("layers")).unwrap().count(),
        0
    );
}

/// Rewrites image `tag` of `layout` so that its config gives a wrong diff-id for the first
/// layer (a new config blob, a new manifest). Returns the true diff-id.
fn lie_about_the_diff_id(layout: &Layout, tag: &str) -> String {
    let blobs = layout.path().join("blobs/sha256");
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap())
            .unwrap()
    };
    let write = |v: &serde_json::Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).unwrap();
        let hex = registry::sha256_hex(&bytes).unwrap();
        fs::write(blobs.join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let index_path = layout.path().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let mut manifest = read(entry["digest"].as_str().unwrap());
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    let truth = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let lie = format!("sha256:{}", registry::sha256_hex(b"another layer").unwrap());
    config["rootfs"]["diff_ids"][0] = lie.into();
    let (digest, size) = write(&config);
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = write(&manifest);
    entry["digest"] = digest.into();
    entry["size"] = size.into();
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    truth
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
    // Same layer and config, different manifests: one extracted layer for both.
    assert_eq!(fs::read_dir(env.root().join("layers")).unwrap().count(), 1);
    assert_eq!(judge_every_image(&env), 2);
    // The schema 2 image had two manifests of its own: its OCI form and the original.
    let out = env.run(&["rmi", &b]);
    insta::assert_snapshot!(show(&out, &reg), @r"
    exit: 0
    --- stdout
    Untagged: [REGISTRY]/busybox:v2s2
    Deleted: sha256:[DIGEST]
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
    assert_eq!(judge_every_image(&env), 2);
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

/// A private registry with a certificate of its own CA (seed 001's "private registry,
/// advanced": TLS): trusted through `certs.d/HOST:PORT/ca.crt`, as docker does, and spoken
/// to over https although it is on loopback. Without the CA, or with another one, the
/// pull fails naming the registry and what TLS said, and stores nothing.
#[test]
fn a_registry_with_its_own_ca_is_trusted_through_certs_d() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, openssl, busybox-static"
    );
    let certs = registry::TestCerts::make().expect("openssl makes a CA and a certificate");
    let reg = Registry::start_tls(&certs, false).expect("start docker-registry with TLS");
    let layout = registry::busybox_layout("latest").unwrap();
    let dest = format!("docker://{}/busybox:latest", reg.addr);
    registry::skopeo_copy(&layout.skopeo_ref("latest"), &dest, &[]).unwrap();
    let image = format!("{}/busybox", reg.addr);

    // No certs.d entry: loopback means plain http, which a TLS server answers with 400.
    let env = Env::new();
    let out = env.run(&["pull", "-q", &image]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out, &reg));
    let said = show(&out, &reg);
    assert!(
        said.contains("GET http://[REGISTRY]/v2/: 400 Bad Request")
            && said.contains("it speaks https: put the certificate of its CA in ")
            && said.contains("/config/certs.d/[REGISTRY]/ca.crt"),
        "{said}"
    );
    assert_eq!(env.blob_count(), 0);

    // Another CA: the handshake fails, and says so.
    let other = registry::TestCerts::make().unwrap();
    let certs_d = env.dir.path().join("config/certs.d").join(&reg.addr);
    fs::create_dir_all(&certs_d).unwrap();
    fs::copy(&other.ca, certs_d.join("ca.crt")).unwrap();
    let out = env.run(&["pull", "-q", &image]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out, &reg));
    let said = show(&out, &reg);
    assert!(said.contains("https://[REGISTRY]/v2/"), "{said}");
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    assert_eq!(env.blob_count(), 0);

    // Its own CA: pulled over https, verified as any pull.
    fs::copy(&certs.ca, certs_d.join("ca.crt")).unwrap();
    let out = env.run(&["--trace", "pull", "-q", &image]);
    assert!(out.status.success(), "{}", show(&out, &reg));
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains(&format!("> GET https://{}/v2/", reg.addr)),
        "{trace}"
    );
    assert!(env.images().contains(&image), "{}", env.images());
    // And a push goes the same way.
    let target = format!("{}/copy:1", reg.addr);
    env.ok(&["tag", &image, &target]);
    env.ok(&["push", "-q", &target]);
    let theirs =
        registry::skopeo_inspect(&format!("docker://{target}"), &["--tls-verify=false"]).unwrap();
    assert_eq!(theirs["Digest"], env.skopeo(&target)["Digest"]);
}

/// A registry that wants clients to show a certificate (mutual TLS): `client.cert` with
/// `client.key` in its `certs.d` directory, beside `ca.crt`.
#[test]
fn a_registry_that_wants_a_client_certificate_gets_the_one_in_certs_d() {
    require!(
        tools(),
        "docker-registry, skopeo, umoci, openssl, busybox-static"
    );
    let certs = registry::TestCerts::make().expect("openssl makes a CA and certificates");
    let reg = Registry::start_tls(&certs, true).expect("start docker-registry with mTLS");
    let env = Env::new();
    let certs_d = env.dir.path().join("config/certs.d").join(&reg.addr);
    fs::create_dir_all(&certs_d).unwrap();
    fs::copy(&certs.ca, certs_d.join("ca.crt")).unwrap();
    let image = format!("{}/busybox", reg.addr);
    // The CA alone is not enough: the server ends the handshake at once, at /v2/.
    let out = env.run(&["pull", "-q", &image]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out, &reg));
    let said = show(&out, &reg);
    // rustls: the server's alert, e.g. "received fatal alert: BadCertificate".
    assert!(
        said.contains("GET https://[REGISTRY]/v2/: received fatal alert"),
        "{said}"
    );
    // With the client's certificate and key (skopeo reads the same directory), a pull
    // and a push go through.
    fs::copy(&certs.client_cert, certs_d.join("client.cert")).unwrap();
    fs::copy(&certs.client_key, certs_d.join("client.key")).unwrap();
    let layout = registry::busybox_layout("latest").unwrap();
    let cert_dir = certs_d.display().to_string();
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{image}:latest"),
        &["--dest-cert-dir", &cert_dir, "--dest-tls-verify=true"],
    )
    .unwrap();
    env.ok(&["pull", "-q", &image]);
    assert!(env.images().contains(&image), "{}", env.images());
    let target = format!("{}/copy:1", reg.addr);
    env.ok(&["tag", &image, &target]);
    env.ok(&["push", "-q", &target]);
}

/// zstd layers (`application/vnd.oci.image.layer.v1.tar+zstd`), as skopeo writes them with
/// `--dest-compress-format zstd`: pulled, unpacked and checked against the config's
/// diff-ids like gzip ones, and stored as they came.
#[test]
fn zstd_layers_are_pulled_and_unpacked() {
    require!(tools(), "docker-registry, skopeo, umoci, busybox-static");
    let reg = Registry::start().expect("start docker-registry");
    let layout = registry::busybox_layout("latest").unwrap();
    let image = format!("{}/zstd/busybox", reg.addr);
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{image}:latest"),
        &["--dest-compress-format", "zstd"],
    )
    .unwrap();
    let theirs = registry::skopeo_inspect(
        &format!("docker://{image}:latest"),
        &["--tls-verify=false", "--raw"],
    )
    .unwrap();
    assert_eq!(
        theirs["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "skopeo wrote zstd: {theirs}"
    );
    let env = Env::new();
    env.ok(&["pull", "-q", &image]);
    let stored = env.inspect(&image);
    assert_eq!(
        stored["Layers"][0]["MediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "{stored}"
    );
    // The same files as the gzip image's: the diff-id (of the uncompressed tar) is one.
    let gzip = format!("{}/gzip/busybox", reg.addr);
    registry::skopeo_copy(
        &layout.skopeo_ref("latest"),
        &format!("docker://{gzip}:latest"),
        &["--dest-compress-format", "gzip"],
    )
    .unwrap();
    env.ok(&["pull", "-q", &gzip]);
    let gzipped = env.inspect(&gzip);
    assert_eq!(
        gzipped["Layers"][0]["DiffID"],
        stored["Layers"][0]["DiffID"]
    );
    assert_ne!(
        gzipped["Layers"][0]["Digest"],
        stored["Layers"][0]["Digest"]
    );
    assert_eq!(gzipped["Id"], stored["Id"]);
}
