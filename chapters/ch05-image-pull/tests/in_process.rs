//! `pull` called as a library, the way mini-docker calls it. mini-docker clones containers
//! right after a pull, and cloning into new namespaces needs a single-threaded process: so
//! every thread a pull starts (three downloads, each with its extraction) must have ended
//! when `pull` returns. This file holds one test, so no other test's threads are counted.
use std::fs;

use ch05_image_pull::{ConfigFiles, Http, Progress, PullOptions, Reference, Store};
use testkit::registry::{self, Layout, Registry};

fn threads() -> usize {
    fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn pull_leaves_no_thread_behind_and_the_layers_are_ready() {
    testkit::require!(
        registry::tools_available() && testkit::rootfs::busybox_available(),
        "docker-registry, skopeo, umoci, htpasswd, openssl, busybox-static"
    );
    let reg = Registry::start().unwrap();
    // Four layers: more than the three downloads that run at once.
    let rootfs = testkit::rootfs::Rootfs::busybox().unwrap();
    let layout = Layout::new().unwrap();
    layout
        .add_image("four", rootfs.path(), "/bin/sh", "amd64")
        .unwrap();
    for n in 1..4 {
        layout
            .add_layer("four", |r| fs::write(r.join(format!("layer-{n}")), "x\n"))
            .unwrap();
    }
    let name = format!("{}/four:1", reg.addr);
    registry::skopeo_copy(
        &layout.skopeo_ref("four"),
        &format!("docker://{name}"),
        &["--format", "v2s2"],
    )
    .unwrap();

    let dir = tempfile::Builder::new().prefix("store-").tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    let options = PullOptions {
        platform: None,
        progress: Progress::Quiet,
        config: ConfigFiles {
            ours: dir.path().join("config/config.json"),
            docker: None,
        },
    };
    let before = threads();
    let image = ch05_image_pull::pull(
        &store,
        &Http::new(false),
        &Reference::parse(&name).unwrap(),
        &options,
    )
    .unwrap();
    assert_eq!(threads(), before, "a thread outlived pull");
    // What mini-docker does next: the overlay's lower directories, all extracted already.
    let dirs = store.layer_dirs(&image).unwrap();
    assert_eq!(dirs.len(), 4);
    assert!(dirs[3].join("layer-3").is_file());
    assert!(dirs[0].join("bin/busybox").is_file());
    // The image the store names is OCI; the registry's digest is the original's.
    assert_eq!(
        image.manifest_media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let original = image.original_manifest.clone().unwrap();
    let remote = registry::skopeo_inspect(&format!("docker://{name}"), &[]).unwrap();
    assert_eq!(remote["Digest"], original.digest.to_string());
    assert_eq!(image.original_digest(), &original.digest);
    assert_eq!(
        image.repo_digests,
        vec![format!("{}/four@{}", reg.addr, original.digest)]
    );
}
