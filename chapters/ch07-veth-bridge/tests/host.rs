//! The one test that runs on the real host's network namespace, as the demo and a
//! learner do: while a container with a published port runs and after it is gone, the
//! host's own rules (everything outside the table `ip mini_docker`), its routes and its
//! links are exactly as they were. Its traffic goes only to loopback.
use std::process::{Command, Stdio};

/// Text of a command's stdout ("" if it is not installed).
fn text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The host's rules outside the project's table, without counters (traffic moves them).
fn foreign_rules() -> String {
    let ruleset = text("nft", &["-s", "list", "ruleset"]);
    let mut out = String::new();
    let mut ours = false;
    for line in ruleset.lines() {
        if line.starts_with("table ip mini_docker ") {
            ours = true;
        }
        if !ours {
            out.push_str(line);
            out.push('\n');
        }
        if ours && line == "}" {
            ours = false;
        }
    }
    // iptables-save's chain lines carry [packets:bytes]: dropped, the rest kept.
    let legacy = text("iptables-save", &[]);
    for line in legacy.lines().filter(|l| !l.starts_with('#')) {
        out.push_str(line.split(" [").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn host_state() -> (String, String, String) {
    (
        foreign_rules(),
        text("ip", &["route", "show", "table", "all"]),
        text("cat", &["/proc/sys/net/ipv4/ip_forward"]),
    )
}

#[test]
fn the_hosts_own_rules_routes_and_links_are_left_as_they_were() {
    testkit::require_root!();
    let Some(rootfs) = testkit::rootfs::require_busybox() else {
        return;
    };
    let before = host_state();
    let links_before = text("ip", &["-o", "link"]);
    if links_before.contains(" mdocker0:") {
        // A learner's (or the demo's) default bridge is up: not ours to share.
        testkit::gate(&testkit::test_name(), false, "no mdocker0 on the host");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_ch07-veth-bridge");
    let port = testkit::registry::free_port().to_string();
    let mut child = Command::new(bin)
        .env("MINI_DOCKER_ROOT", root.path())
        .args(["run", "-p", &format!("127.0.0.1:{port}:80"), "--rootfs"])
        .arg(rootfs.path())
        .args([
            "--",
            "sh",
            "-c",
            // httpd goes to the background and the shell, PID 1, ends after a while:
            // PID 1 ignores signals it has no handler for, so `timeout` could not stop it.
            // A while long enough for an emulated guest (the VM lanes' TCG) to answer.
            "mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www && sleep 12",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Reached from the host over loopback, through the DNAT rule.
    let url = format!("http://127.0.0.1:{port}/");
    let served = testkit::wait_until(12, || {
        text("curl", &["-s", "--max-time", "1", &url]) == "served\n"
    });
    // While it runs, the host's own rules are those it had.
    let during = foreign_rules();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(served, "127.0.0.1:{port} did not answer");
    assert_eq!(
        during, before.0,
        "the host's own rules changed while a container ran"
    );
    assert_eq!(
        host_state(),
        before,
        "the host's rules, routes or ip_forward changed"
    );
    assert_eq!(
        text("ip", &["-o", "link"]).lines().count(),
        links_before.lines().count()
    );
    assert!(!text("nft", &["list", "tables"]).contains("mini_docker"));
}
