//! Images through mini-docker: `run` pulls what is missing from a real registry (the seed's
//! walkthrough of `docker run`), `push` sends a committed image back, skopeo checks it,
//! `rmi` refuses an image a container uses.
mod common;

use common::Md;
use testkit::registry::{Registry, busybox_layout, skopeo_copy, skopeo_inspect, tools_available};

#[test]
fn run_pulls_a_missing_image_commit_and_push_send_a_new_one() {
    // The registry is on the host's loopback: the store's commands run there too, and
    // its containers without a network, so the host's own network is never changed.
    let Some(md) = Md::with_busybox_on_host() else {
        return;
    };
    testkit::require!(tools_available(), "docker-registry, skopeo and umoci");
    let registry = Registry::start().expect("a registry");
    let layout = busybox_layout("latest").expect("an image layout");
    let dest = format!("docker://{}/demo/busybox:latest", registry.addr);
    let out = skopeo_copy(
        &layout.skopeo_ref("latest"),
        &dest,
        &["--dest-tls-verify=false"],
    )
    .unwrap();
    assert!(out.status.success(), "{}", testkit::show(&out));

    let image = format!("{}/demo/busybox", registry.addr);
    let out = md.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "pulled and ran",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pulled and ran\n",
        "{}",
        testkit::show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("Unable to find image '{image}:latest' locally\n")),
        "{stderr}"
    );
    // Present now: the second run does not pull.
    let again = md.run(&["run", "--rm", "--network", "none", &image, "true"]);
    assert!(again.stderr.is_empty(), "{}", testkit::show(&again));
    // docker's images flags: -a (the same list: no intermediate images), --digests (the
    // registry's digest of a pulled image), --no-trunc (whole IDs).
    // (Compared without CREATED, which may tick from "Less than a second ago" to "1 second
    // ago" between the two commands.)
    let listed = "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}";
    assert_eq!(
        md.ok(&["images", "-a", "--format", listed]),
        md.ok(&["images", "--format", listed])
    );
    let digests = md.ok(&["images", "--digests", &image]);
    assert!(digests.starts_with("REPOSITORY"), "{digests}");
    let row = digests.lines().nth(1).unwrap_or_default();
    assert!(
        row.split_whitespace()
            .nth(2)
            .is_some_and(|d| d.starts_with("sha256:")),
        "{digests}"
    );
    let full = md.ok(&["images", "-q", "--no-trunc", &image]);
    assert!(
        full.starts_with("sha256:") && full.trim().len() == 71,
        "{full}"
    );

    md.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "changer",
        &image,
        "sh",
        "-c",
        "echo changed > /changed",
    ]);
    let pushed = format!("{}/demo/changed:v1", registry.addr);
    md.ok(&["commit", "changer", &pushed]);
    let out = md.run(&["push", &pushed]);
    assert!(out.status.success(), "{}", testkit::show(&out));
    let inspected = skopeo_inspect(&format!("docker://{pushed}"), &["--tls-verify=false"]).unwrap();
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        2,
        "busybox's layer plus the commit's: {inspected}"
    );
    // rmi: refused while a container uses the image, then allowed.
    let refused = md.run(&["rmi", &image]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("must force"),
        "{}",
        testkit::show(&refused)
    );
    md.ok(&["rm", "changer"]);
    let removed = md.ok(&["rmi", &image]);
    assert!(
        removed.starts_with(&format!("Untagged: {image}:latest")),
        "{removed}"
    );
}

/// Dangling images, docker's `<none>:<none>`: `import` and `commit` without a name make
/// one, a name that moves to another image leaves one behind, `rmi -f` of an image a
/// container uses keeps it listed without a name, and `image prune` removes the dangling
/// images no container uses (and only those).
#[test]
fn dangling_images_come_from_unnamed_imports_and_moved_names_and_prune_removes_them() {
    let Some(md) = Md::with_busybox() else { return };
    let dangling = |md: &Md| -> Vec<String> {
        md.ok(&["images", "--filter", "dangling=true"])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    md.ok(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /v",
    ]);
    // commit without a name: the image is known by its ID alone.
    let id = md.ok(&["commit", "maker"]);
    let short = &id.trim().trim_start_matches("sha256:")[..12];
    assert_eq!(dangling(&md), [format!("<none> <none> {short}")]);
    assert_eq!(md.ok(&["run", "--rm", short, "cat", "/v"]), "1\n");
    // Named later, it is no longer dangling.
    md.ok(&["tag", short, "mine:v1"]);
    assert!(dangling(&md).is_empty());
    // The name moves to a new commit: the old image stays, dangling.
    md.ok(&["start", "-a", "maker"]);
    md.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/v\"]",
        "maker",
        "mine:v1",
    ]);
    assert_eq!(dangling(&md), [format!("<none> <none> {short}")]);
    let named = md.ok(&["images", "--filter", "dangling=false", "mine"]);
    assert!(!named.contains(short), "{named}");

    // rmi -f of the name of an image a container uses: the image stays, dangling.
    md.ok(&["create", "--name", "user", "mine:v1"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&md.ok(&["inspect", "--type", "container", "user"])).unwrap();
    let new_short = inspect[0]["Image"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")[..12]
        .to_string();
    md.ok(&["rmi", "-f", "mine:v1"]);
    let mut want = vec![
        format!("<none> <none> {short}"),
        format!("<none> <none> {new_short}"),
    ];
    want.sort();
    let mut got = dangling(&md);
    got.sort();
    assert_eq!(got, want);

    // prune: the unused dangling image goes, the used one stays, busybox (named) stays.
    let out = md.ok(&["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(
        out.contains(&format!("deleted: sha256:{}", &id.trim()[7..])),
        "{out}"
    );
    assert_eq!(dangling(&md), [format!("<none> <none> {new_short}")]);
    assert_eq!(md.ok(&["start", "-a", "user"]), "1\n");
    md.ok(&["rm", "user", "maker"]);
    md.ok(&["image", "prune", "-f"]);
    assert!(dangling(&md).is_empty());
    let images = md.ok(&["images"]);
    assert!(images.contains("busybox "), "{images}");

    // import from stdin without a name, as `cat x.tar | docker import -` does.
    let tar = md.path().join("one-file.tar");
    let dir = md.path().join("one-file");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "x").unwrap();
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = md
        .cmd()
        .args(["import", "-"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", testkit::show(&out));
    let imported = String::from_utf8_lossy(&out.stdout);
    assert!(imported.starts_with("sha256:"), "{imported}");
    assert_eq!(dangling(&md).len(), 1);
}

/// `save` and `load`: an archive skopeo reads both as a docker archive and as an OCI
/// archive, loaded into another store where it runs; an archive skopeo wrote loads too;
/// one with a blob changed on the way is refused by digest, and leaves nothing behind.
#[test]
fn save_and_load_carry_images_between_stores_and_from_skopeo() {
    let Some(md) = Md::with_busybox() else { return };
    testkit::require!(tools_available(), "skopeo");
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    let tar_text = tar.display().to_string();
    assert_eq!(md.ok(&["save", "-o", &tar_text, "busybox"]), "");
    let as_docker = skopeo_inspect(&format!("docker-archive:{tar_text}"), &[]).unwrap();
    let as_oci = skopeo_inspect(&format!("oci-archive:{tar_text}:latest"), &[]).unwrap();
    assert_eq!(as_docker["Layers"], as_oci["Layers"]);

    // Into an empty store, and it runs there.
    let other = Md::empty();
    assert_eq!(
        other.ok(&["load", "-i", &tar_text]),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(
        other.ok(&["run", "--rm", "busybox", "echo", "carried"]),
        "carried\n"
    );

    // What skopeo writes (a docker archive without index.json), from stdin, with its name.
    let theirs = dir.path().join("theirs.tar");
    let out = skopeo_copy(
        &format!("oci-archive:{tar_text}:latest"),
        &format!("docker-archive:{}:other/bb:v9", theirs.display()),
        &[],
    )
    .unwrap();
    assert!(out.status.success());
    let loaded = other
        .cmd()
        .arg("image")
        .arg("load")
        .stdin(std::fs::File::open(&theirs).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout),
        "Loaded image: other/bb:v9\n"
    );
    let images = other.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "busybox:latest\nother/bb:v9\n");
    // And an OCI archive skopeo wrote (index.json only, its name in ref.name).
    let oci = dir.path().join("oci.tar");
    let out = skopeo_copy(
        &format!("docker-archive:{}", theirs.display()),
        &format!("oci-archive:{}:third/bb:v1", oci.display()),
        &[],
    )
    .unwrap();
    assert!(out.status.success());
    assert_eq!(
        other.ok(&["load", "-i", &oci.display().to_string()]),
        "Loaded image: third/bb:v1\n"
    );

    // A byte changed inside the layer: its digest no longer matches its name.
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes
        .windows(11)
        .rposition(|w| w == b"bin/busybox")
        .expect("the layer names bin/busybox");
    bytes[at] = b'c';
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let fresh = Md::empty();
    let out = fresh.run(&["load", "-i", &bad.display().to_string()]);
    // docker's CLI: 1 for whatever its daemon refuses.
    assert_eq!(out.status.code(), Some(1), "{}", testkit::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("digest"),
        "{}",
        testkit::show(&out)
    );
    assert_eq!(fresh.ok(&["images", "-q"]), "");
    let blobs = fresh.path().join("images/blobs/sha256");
    let left = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing stored");
}
