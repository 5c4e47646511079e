//! Images through mini-docker: `run` pulls what is missing from a real registry (the seed's
//! walkthrough of `docker run`), `push` sends a committed image back, skopeo checks it,
//! `rmi` refuses an image a container uses.
mod common;

use common::Md;
use testkit::registry::{Registry, busybox_layout, skopeo_copy, skopeo_inspect, tools_available};

#[test]
fn run_pulls_a_missing_image_commit_and_push_send_a_new_one() {
    let Some(md) = Md::with_busybox() else { return };
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
    let out = md.run(&["run", "--rm", &image, "echo", "pulled and ran"]);
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
    let again = md.run(&["run", "--rm", &image, "true"]);
    assert!(again.stderr.is_empty(), "{}", testkit::show(&again));

    md.ok(&[
        "run",
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
