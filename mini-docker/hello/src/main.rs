//! The program of the `hello-world` image, built as a static binary (no libc in the image,
//! which is `FROM scratch`):
//!
//! ```text
//! rustc -O -C target-feature=+crt-static -C strip=symbols -o hello mini-docker/hello/src/main.rs
//! ```
//!
//! Like Docker's hello-world, it explains how its own message reached the terminal; unlike
//! it, it can look around and report what isolation it finds.

fn main() {
    let pid = std::process::id();
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let entries = std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0);
    println!(
        "
Hello from mini-docker!
This message shows that your installation appears to be working correctly.

To generate this message, mini-docker took the following steps:
 1. The mini-docker client found the \"hello-world\" image in its store (an OCI image
    layout under /var/lib/mini-docker/images, or the --root you gave it).
 2. It created a container: an overlay of the image's layer, an init layer with
    /etc/hostname, /etc/hosts and /etc/resolv.conf, and an empty writable layer.
 3. It started this program in new PID, mount, UTS, IPC and network namespaces and in
    a cgroup of its own, after pivot_root into the overlay.
 4. It relayed this program's output to your terminal, and kept a copy in the
    container's log (see `mini-docker logs`).

What this program sees from inside:
 - its own pid: {pid} (the first process of its PID namespace)
 - its hostname: {}
 - entries in its /: {entries} (the image holds this one file; the rest are mount points)

To try something more ambitious, run a shell in a busybox container:
 $ mini-docker run -it busybox sh
",
        hostname.trim()
    );
}
