//! Chapter 7 through mini-docker: every test runs in a network namespace of its own
//! (common::Md), which stands in for the host; traffic goes only to its loopback and to
//! the containers' addresses in it.
mod common;

use common::Md;

/// The httpd a container serves: busybox's, with one page.
const SERVE: &str =
    "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_alias() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&["network", "create", "appnet"]);
    md.ok(&["network", "create", "othernet"]);
    md.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "web",
        "--network",
        "appnet",
        "--network-alias",
        "www",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ]);
    // By name and by alias, from a container started after it (seed 001's ping busybox2).
    let out = md.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        "ping -c1 -W2 web >/dev/null && echo ping ok; wget -qO- http://www/",
    ]);
    assert_eq!(out, "ping ok\nhello from web\n");
    // And the first finds one started later.
    md.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = md.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "ping -c1 -W2 late >/dev/null && echo found late",
    ]);
    assert_eq!(out, "found late\n");
    // Another network cannot reach it, not even by address.
    let ip = md.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "web",
    ]);
    let ip = ip.trim();
    assert!(ip.starts_with("10.87."), "{ip}");
    let o = md.run(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "sh",
        "-c",
        &format!("ping -c1 -W1 web; wget -T 2 -qO- http://{ip}/"),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", testkit::show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad address 'web'"),
        "{}",
        testkit::show(&o)
    );
    // In use: refused, as docker.
    let o = md.run(&["network", "rm", "appnet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has active endpoints"),
        "{}",
        testkit::show(&o)
    );
    md.ok(&["rm", "-f", "web", "late"]);
    md.ok(&["network", "rm", "appnet", "othernet"]);
    // Nothing of the project's is left in the namespace: no bridge, no veth, no table
    // (the default bridge went with its last container).
    let ns = md.netns.as_ref().unwrap();
    assert!(
        testkit::wait_until(10, || !ns.links().contains("md")),
        "{}",
        ns.links()
    );
    let rules = ns
        .command("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rules.stdout), "");
}

#[test]
fn published_ports_answer_on_the_hosts_loopback_and_taken_ports_fail_cleanly() {
    let Some(md) = Md::with_busybox() else { return };
    let ns = md.netns.as_ref().unwrap();
    md.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "web",
        "-p",
        "127.0.0.1:18080:80",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ]);
    assert_eq!(md.ok(&["port", "web"]), "80/tcp -> 127.0.0.1:18080\n");
    let fetch = |url: &str| {
        let o = ns
            .command("curl")
            .args(["-s", "--max-time", "5", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(testkit::wait_until(5, || fetch("http://127.0.0.1:18080/") == "hello from web\n"));
    // Another container on the default bridge reaches it by address.
    let ip = md.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let out = md.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{}/", ip.trim()),
    ]);
    assert_eq!(out, "hello from web\n");
    let ps = md.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps, "web 127.0.0.1:18080->80/tcp\n");
    // The same port again: docker's message, exit 125, and no container left running.
    let o = md.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "-p",
        "127.0.0.1:18080:80",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", testkit::show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("Bind for 127.0.0.1:18080 failed: port is already allocated"),
        "{}",
        testkit::show(&o)
    );
    assert!(
        md.wait_status("again", "created"),
        "{:?}",
        md.state("again")
    );
    // -P: every EXPOSEd port to a free one.
    md.ok(&[
        "run", "-d", "--name", "all", "--expose", "80", "-P", "busybox", "sh", "-c", SERVE,
    ]);
    let port = md.ok(&["port", "all", "80"]);
    let url = format!("http://{}/", port.trim());
    assert!(port.starts_with("0.0.0.0:"), "{port}");
    let url = url.replace("0.0.0.0", "127.0.0.1");
    assert!(
        testkit::wait_until(5, || fetch(&url).starts_with("hello from")),
        "{url}"
    );
    // A container on the same bridge reaches it through the gateway's address too (the
    // DNAT brings it back into the bridge, the masquerade brings the answer back to us).
    let via_gateway = port.trim().replace("0.0.0.0", "10.87.0.1");
    let out = md.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{via_gateway}/"),
    ]);
    assert!(out.starts_with("hello from"), "{out}");
    md.ok(&["rm", "-f", "web", "again", "all"]);
}

#[test]
fn concurrent_starts_get_distinct_addresses_and_give_them_back() {
    let Some(md) = Md::with_busybox() else { return };
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let mut c = md.cmd();
            c.args([
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "busybox",
                "sleep",
                "60",
            ]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", testkit::show(&o));
    }
    let mut ips: Vec<String> = (0..20)
        .map(|i| {
            md.ok(&[
                "inspect",
                "-f",
                "{{.NetworkSettings.IPAddress}}",
                &format!("c{i}"),
            ])
            .trim()
            .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    // A monitor killed with -9 takes its container with it and gives nothing back: the
    // address stays held (the record says so) until `system prune` reclaims it.
    let id = md
        .ok(&["inspect", "-f", "{{.Id}}", "c0"])
        .trim()
        .to_string();
    let monitor = testkit::leaks::processes_with(&format!("__monitor {id}"));
    assert_eq!(monitor.len(), 1, "{monitor:?}");
    testkit::kill_and_reap(monitor[0]);
    assert!(md.wait_status("c0", "exited"));
    let held = md.ok(&["network", "diagram"]);
    assert!(held.contains("  c0 (pid"), "{held}");
    md.ok(&["system", "prune", "-f"]);
    let after = md.ok(&["network", "diagram"]);
    assert!(!after.contains("  c0 (pid"), "{after}");
    assert_eq!(after.matches(" ══ ").count(), 19, "{after}");
    let names: Vec<String> = (1..20).map(|i| format!("c{i}")).collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    md.ok(&rm);
    let diagram = md.ok(&["network", "diagram"]);
    assert!(
        diagram.contains("(no containers)") && !diagram.contains(" ══ "),
        "{diagram}"
    );
}

#[test]
fn outbound_traffic_is_masqueraded_to_the_hosts_address() {
    let Some(md) = Md::with_busybox() else { return };
    let ns = md.netns.as_ref().unwrap();
    // A "world" the test makes: another namespace behind a veth the test owns, with a
    // server that reports who connected. 192.0.2.0/24 is TEST-NET-1 (RFC 5737).
    let world = testkit::netns::Netns::new().unwrap();
    let sh = |n: &testkit::netns::Netns, script: &str| {
        let o = n.command("sh").args(["-c", script]).output().unwrap();
        assert!(o.status.success(), "{script}: {}", testkit::show(&o));
    };
    sh(
        ns,
        &format!(
            "ip link add wan0 type veth peer name wan1 netns {} && \
         ip addr add 192.0.2.1/24 dev wan0 && ip link set wan0 up",
            world.path()
        ),
    );
    sh(
        &world,
        "ip addr add 192.0.2.2/24 dev wan1 && ip link set wan1 up",
    );
    let listener = world.listen_tcp("192.0.2.2:9000").unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        use std::io::Read;
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        (peer.ip().to_string(), text)
    });
    md.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hi from a container | nc 192.0.2.2 9000",
    ]);
    let (peer, text) = server.join().unwrap();
    assert_eq!(text, "hi from a container\n");
    // The world sees the host's address on its link, never the container's 10.87.x.y.
    assert_eq!(peer, "192.0.2.1");

    // And back in: the world reaches a published port at the host's address (DNAT in
    // prerouting), but not a container port nobody published, even with a route to it.
    md.ok(&[
        "run", "-d", "--name", "web", "-p", "18082:80", "busybox", "sh", "-c", SERVE,
    ]);
    let ip = md.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    sh(&world, "ip route add 10.87.0.0/16 via 192.0.2.1");
    let fetch = |url: &str| {
        let o = world
            .command("curl")
            .args(["-s", "--max-time", "2", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        testkit::wait_until(5, || fetch("http://192.0.2.1:18082/")
            .starts_with("hello from")),
        "the published port did not answer from outside"
    );
    assert_eq!(fetch(&format!("http://{}/", ip.trim())), "");
    md.ok(&["rm", "-f", "web"]);
}

#[test]
fn dns_flags_and_host_gateway_go_into_the_containers_files() {
    let Some(md) = Md::with_busybox() else { return };
    let out = md.ok(&[
        "run",
        "--rm",
        "-h",
        "box",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; grep -E 'gw|box' /etc/hosts; ping -c1 -W2 gw >/dev/null && echo gateway answers",
    ]);
    assert_eq!(
        out,
        "search example.test\nnameserver 192.0.2.53\noptions ndots:2\n\
         10.87.0.1\tgw\n10.87.0.2\tbox\ngateway answers\n"
    );
}

#[test]
fn connect_disconnect_internal_fixed_addresses_and_a_shared_namespace() {
    let Some(md) = Md::with_busybox() else { return };
    md.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.99.7.0/24",
        "--gateway",
        "10.99.7.254",
        "inside",
    ]);
    let net = md.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .IPAM.Config}} {{.Internal}}",
        "inside",
    ]);
    assert_eq!(
        net,
        "[{\"Subnet\":\"10.99.7.0/24\",\"Gateway\":\"10.99.7.254\"}] true\n"
    );
    md.ok(&[
        "run",
        "-d",
        "--name",
        "box-a",
        "--network",
        "inside",
        "--ip",
        "10.99.7.42",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        md.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.inside.IPAddress}}",
            "box-a"
        ]),
        "10.99.7.42\n"
    );
    // --internal: no default route, so no way out; the gateway's side is dropped too.
    let routes = md.ok(&["exec", "box-a", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    // A container on the default network, connected to `inside` while it runs: a second
    // interface, the names, and gone again after disconnect.
    md.ok(&["run", "-d", "--name", "box-b", "busybox", "sleep", "60"]);
    md.ok(&["network", "connect", "--alias", "bee", "inside", "box-b"]);
    let links = md.ok(&[
        "exec",
        "box-b",
        "sh",
        "-c",
        "ip -o -4 addr | awk '{print $2, $4}'",
    ]);
    assert!(links.contains("eth1 10.99.7.1/24"), "{links}");
    assert_eq!(
        md.ok(&[
            "exec",
            "box-a",
            "sh",
            "-c",
            "ping -c1 -W2 bee >/dev/null && echo a reaches b"
        ]),
        "a reaches b\n"
    );
    md.ok(&["network", "disconnect", "inside", "box-b"]);
    let links = md.ok(&["exec", "box-b", "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    let o = md.run(&["exec", "box-a", "ping", "-c1", "-W1", "bee"]);
    assert_ne!(o.status.code(), Some(0), "{}", testkit::show(&o));
    // --network container:b: b's interfaces, b's address.
    let shared = md.ok(&[
        "run",
        "--rm",
        "--network",
        "container:box-b",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    let b_ip = md.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "box-b"]);
    assert!(shared.contains(&format!("{}/24", b_ip.trim())), "{shared}");
    // docker's refusals and wording.
    md.ok(&[
        "run",
        "-d",
        "--name",
        "box-h",
        "--network",
        "host",
        "busybox",
        "sleep",
        "60",
    ]);
    let o = md.run(&["network", "connect", "inside", "box-h"]);
    assert_eq!(o.status.code(), Some(1), "{}", testkit::show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error response from daemon: container sharing network namespace with another container or host cannot be connected to any other network\n"
    );
    let o = md.run(&["run", "--rm", "--ip", "10.87.0.9", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", testkit::show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("user specified IP address is supported on user defined networks only"),
        "{}",
        testkit::show(&o)
    );
    let o = md.run(&["network", "rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error: No such network: nosuch\n"
    );
    md.ok(&["rm", "-f", "box-a", "box-b", "box-h"]);
    md.ok(&["network", "rm", "inside"]);
}

#[test]
fn the_default_bridges_subnet_is_configurable_like_dockers_bip() {
    let Some(md) = Md::with_busybox() else { return };
    let o = md
        .cmd()
        .env("MINI_DOCKER_BIP", "10.200.0.1/24")
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -o -4 addr show eth0 | awk '{print $4}'; ip route | head -1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "10.200.0.2/24\ndefault via 10.200.0.1 dev eth0 \n",
        "{}",
        testkit::show(&o)
    );
}
