//! The store's unit tests: real directories in temp dirs, no root needed.
use std::collections::BTreeMap;
use std::fs;

use super::*;
use crate::manifest::{self, Descriptor};
use crate::reference::Reference;

fn layer_blob(store: &Store, files: &[(&str, &str)]) -> (Descriptor, Digest) {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_bytes())).collect();
    let (gz, diff_id, _) = crate::fixtures::gzip_layer(&files);
    let (d, size) = store.put_blob(&mut &gz[..], None).unwrap();
    (Descriptor::new(manifest::OCI_LAYER_GZIP, d, size), diff_id)
}

fn config(diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()}
    }))
    .unwrap()
}

fn image(store: &Store, name: &str, files: &[(&str, &str)]) -> Digest {
    let (desc, diff_id) = layer_blob(store, files);
    let r = Reference::parse(name).unwrap();
    store
        .put_image(
            &config(&[&diff_id]),
            &[NewLayer {
                descriptor: desc,
                diff_id,
            }],
            Some(&r),
        )
        .unwrap()
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let want = Digest::of(b"good");
    let err = store
        .write_blob(&mut &b"evil"[..], Some(&want), Some(4))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = store
        .write_blob(&mut &b"goodandmore"[..], Some(&want), Some(4))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("blob {want}: size mismatch: expected 4 bytes, got more than 4")
    );
    assert!(!store.has_blob(&want));
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
    store
        .write_blob(&mut &b"good"[..], Some(&want), Some(4))
        .unwrap();
    assert!(store.has_blob(&want));
}

#[test]
fn images_are_named_resolved_tagged_and_removed_with_their_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m1 = image(&store, "one", &[("a", "1")]);
    let m2 = image(&store, "localhost:5000/two:v1", &[("b", "2")]);
    let one = store.resolve("one").unwrap().unwrap();
    assert_eq!(one.manifest_digest, m1);
    assert_eq!(one.references, vec!["docker.io/library/one:latest"]);
    assert!(one.size > 0);
    let by_id = store
        .resolve(&one.config_digest.hex()[..12])
        .unwrap()
        .unwrap();
    assert_eq!(by_id.manifest_digest, m1);
    assert_eq!(
        store
            .resolve(&one.config_digest.to_string())
            .unwrap()
            .unwrap()
            .manifest_digest,
        m1
    );
    assert!(store.resolve("three").unwrap().is_none());
    store
        .tag("one", &Reference::parse("one:again").unwrap())
        .unwrap();
    let one = store.resolve("one:again").unwrap().unwrap();
    assert_eq!(one.references.len(), 2);
    assert_eq!(one.size, store.resolve("one").unwrap().unwrap().size);

    // Removing one of two names deletes nothing else.
    let removed = store.remove("one").unwrap();
    assert_eq!(removed.untagged, vec!["docker.io/library/one:latest"]);
    assert!(removed.gc.blobs.is_empty());
    // Removing the last name deletes manifest, config and layer blobs; two stays whole.
    let removed = store.remove("one:again").unwrap();
    assert_eq!(removed.gc.blobs.len(), 3, "{removed:?}");
    assert!(!store.has_blob(&m1));
    let two = store.resolve("localhost:5000/two:v1").unwrap().unwrap();
    assert_eq!(two.manifest_digest, m2);
    for l in &two.layers {
        assert!(store.has_blob(&l.digest));
    }
}

#[test]
fn a_name_that_moves_leaves_a_dangling_image_and_unnamed_images_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = image(&store, "app", &[("f", "1")]);
    let second = image(&store, "app", &[("f", "2")]);
    let list = store.list().unwrap();
    let names: Vec<(&str, &Digest)> = list
        .iter()
        .map(|(n, i)| (n.as_str(), &i.manifest_digest))
        .collect();
    assert_eq!(
        names,
        [("docker.io/library/app:latest", &second), ("", &first)],
        "the old image stays, unnamed, listed after the named ones"
    );
    // Named again (by ID), it is no longer dangling: one entry per image.
    let id = list[1].1.id().to_string();
    store
        .tag(&id, &Reference::parse("app:old").unwrap())
        .unwrap();
    assert!(store.list().unwrap().iter().all(|(n, _)| !n.is_empty()));
    // add_unnamed lists an image once, and not at all if a name has it.
    let entry = store.entry("docker.io/library/app:old").unwrap().unwrap();
    store.add_unnamed(&entry, 1).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
    let (desc, diff_id) = layer_blob(&store, &[("g", "3")]);
    let layers = [NewLayer {
        descriptor: desc,
        diff_id: diff_id.clone(),
    }];
    let third = store
        .put_image(&config(&[&diff_id]), &layers, None)
        .unwrap();
    let again = store
        .put_image(&config(&[&diff_id]), &layers, None)
        .unwrap();
    assert_eq!(third, again);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(
        (list[2].0.as_str(), &list[2].1.manifest_digest),
        ("", &third)
    );
    assert!(store.has_blob(&first));
}

#[test]
fn pins_and_live_leases_keep_blobs_that_no_name_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = image(&store, "pinned", &[("p", "1")]);
    store.pin("container-1", &m, Durability::Durable).unwrap();
    store.remove("pinned").unwrap();
    assert!(store.has_blob(&m), "the pin keeps it");
    // ...and keeps it listed, without a name (docker's image after `rmi -f`).
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].0, "");
    store.unpin("container-1", &m).unwrap();
    assert!(store.gc().unwrap().blobs.is_empty(), "listed: kept");
    let id = list[0].1.id().to_string();
    let removed = store.remove(&id).unwrap();
    assert!(removed.untagged.is_empty());
    assert_eq!(removed.gc.blobs.len(), 3);
    assert!(store.list().unwrap().is_empty());

    // A blob written but not yet named survives another process's GC (our lease)...
    let (d, _) = store.put_blob(&mut &b"in progress"[..], None).unwrap();
    let other = Store::open(dir.path()).unwrap();
    assert!(other.gc().unwrap().blobs.is_empty());
    assert!(store.has_blob(&d));
    // ...until the lease ends; a dead process's lease does not count.
    fs::write(dir.path().join("pins/.lease-999999999-0"), format!("{d}\n")).unwrap();
    drop(store);
    assert_eq!(other.gc().unwrap().blobs, vec![d]);
    assert!(!dir.path().join("pins/.lease-999999999-0").exists());
}

#[test]
fn repo_digests_are_the_registrys_and_do_not_follow_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = image(&store, "127.0.0.1:5000/a:1", &[("f", "1")]);
    let pulled_as = Digest::of(b"the registry's index");
    let mut entry = store.entry("127.0.0.1:5000/a:1").unwrap().unwrap();
    entry.annotations = Some(BTreeMap::from([(
        REGISTRY_DIGEST.to_string(),
        pulled_as.to_string(),
    )]));
    store
        .name_image(&Reference::parse("127.0.0.1:5000/a:1").unwrap(), entry, 7)
        .unwrap();
    store
        .tag("127.0.0.1:5000/a:1", &Reference::parse("b:2").unwrap())
        .unwrap();
    let by_digest = Reference::parse(&format!("127.0.0.1:5000/a@{m}")).unwrap();
    store.tag("b:2", &by_digest).unwrap();
    let img = store.resolve("b:2").unwrap().unwrap();
    assert_eq!(
        img.repo_digests,
        vec![
            format!("127.0.0.1:5000/a@{m}"),
            format!("127.0.0.1:5000/a@{pulled_as}"),
        ]
    );
    assert_eq!(img.size, 7);
    assert_eq!(img.original_manifest, None);
    assert_eq!(img.original_digest(), &m);
    let shown = crate::images::inspect(&img, b"{}", b"{}");
    assert_eq!(
        shown["RepoTags"],
        serde_json::json!(["127.0.0.1:5000/a:1", "b:2"])
    );
    assert_eq!(shown["OriginalManifest"], serde_json::Value::Null);
}

#[test]
fn commit_names_a_blob_and_its_layer_together_and_a_lost_race_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let diff_id = Digest::of(b"tar");
    let mut w = store.blob_writer(None, Some(4)).unwrap();
    w.write(b"blob").unwrap();
    let blob = w.finish().unwrap();
    let layer = store.temp_layer(&diff_id).unwrap();
    fs::write(layer.path().join("ours"), "1").unwrap();
    let digest = blob.digest.clone();
    store.commit(Some(blob), Some(layer), false).unwrap();
    assert!(store.has_blob(&digest));
    assert!(store.layer_path(&diff_id).join("ours").is_file());
    // Another extraction of the same diff-id: the first one stays, the second goes.
    let layer = store.temp_layer(&diff_id).unwrap();
    fs::write(layer.path().join("theirs"), "2").unwrap();
    store.commit(None, Some(layer), false).unwrap();
    assert!(!store.layer_path(&diff_id).join("theirs").exists());
    // Dropped before commit: nothing left behind.
    let mut w = store.blob_writer(None, None).unwrap();
    w.write(b"half").unwrap();
    drop(w);
    drop(store.temp_layer(&diff_id).unwrap());
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 1);
}

#[test]
fn the_layout_is_an_oci_image_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    image(&store, "127.0.0.1:5055/a/b:tag", &[("x", "y")]);
    let layout = fs::read_to_string(dir.path().join("images/oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("images/index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["manifests"][0]["annotations"][REF_NAME],
        "127.0.0.1:5055/a/b:tag"
    );
    assert_eq!(index["manifests"][0]["mediaType"], manifest::OCI_MANIFEST);
}

#[test]
fn a_killed_writers_temp_index_is_deleted_by_the_next_write_and_a_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    image(&store, "a:1", &[("x", "y")]);
    // A process that is gone (reaped) and one that is running: this one.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let images = dir.path().join("images");
    let dead_tmp = images.join(format!(".index.json.tmp-{dead}-0"));
    let live_tmp = images.join(format!(".index.json.tmp-{}-999", std::process::id()));
    fs::write(&dead_tmp, "{half").unwrap();
    fs::write(&live_tmp, "{half").unwrap();
    image(&store, "a:2", &[("x", "z")]);
    assert!(!dead_tmp.exists(), "a dead writer's temp file is swept");
    assert!(
        live_tmp.exists(),
        "a running writer's temp file is left alone"
    );
    // So is a killed command's lease, without a GC, and a running one's is kept.
    let pins = dir.path().join("pins");
    let dead_lease = pins.join(format!(".lease-{dead}-0"));
    let live_lease = pins.join(format!(".lease-{}-999", std::process::id()));
    fs::write(&dead_lease, "").unwrap();
    fs::write(&live_lease, "").unwrap();
    image(&store, "a:3", &[("x", "w")]);
    assert!(!dead_lease.exists(), "a dead command's lease is swept");
    assert!(live_lease.exists(), "a running command's lease is kept");
}

#[test]
fn atomic_write_replaces_a_file_whole_and_leaves_no_temp_file_when_it_fails() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    atomic_write(&path, b"old").unwrap();
    atomic_write(&path, b"new").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    atomic_write_with_mode(&path, b"secret", 0o600).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The rename fails (a directory is in the way): the error says so, and the temp file
    // is gone.
    let blocked = dir.path().join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("inside"), "").unwrap();
    let err = atomic_write(&blocked, b"x").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("rename into place {}: ", blocked.display())),
        "{err}"
    );
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blocked", "config.json"]);
}
