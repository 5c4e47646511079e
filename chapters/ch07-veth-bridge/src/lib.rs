//! Chapter 7: container networking with a bridge and veth pairs.
//!
//! A container in a network namespace of its own has only `lo`: nothing in, nothing out
//! (chapter 1). Docker's answer, rebuilt here, is a virtual switch on the host and a
//! virtual cable per container:
//!
//! ```text
//!   host namespace                                   container namespace (pid P)
//!  ┌──────────────────────────────────────────┐     ┌───────────────────────────┐
//!  │ eth0 ── routing + nft (NAT, DNAT) ──┐    │     │                           │
//!  │                                     │    │     │                           │
//!  │                mdocker0 10.87.0.1/24 (bridge)  │  eth0 10.87.0.2/24        │
//!  │                   └── mdv<id>… ═════════════════ default via 10.87.0.1     │
//!  └──────────────────────────────────────────┘     └───────────────────────────┘
//! ```
//!
//! [`connect`] is the story, in the order the kernel needs it: an address from the
//! network's allocation table ([`ipam`]), the bridge and the firewall table ([`sync`]),
//! the veth pair with one end created directly in the container's namespace, the host
//! end plugged into the bridge and up, then, inside, the address, the link and the
//! default route. Every change is an [`sys::Op`] through the [`sys::NetSys`] seam.
//! Names: containers on a user network find each other through `/etc/hosts` lines kept
//! current by [`hosts`] (docker runs a DNS server in its daemon; there is no daemon here).
pub mod cli;
pub mod commands;
pub mod diagram;
pub mod firewall;
pub mod hosts;
pub mod ipam;
pub mod network;
pub mod ports;
pub mod sys;

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub use network::{DEFAULT_BRIDGE, DEFAULT_NETWORK, Endpoint, Locked, Network, Store};
pub use ports::PortBinding;
use sys::{At, NetSys, Netns, Op};

/// What the chapter's operations fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink, sysctl or nft op failed.
    #[error(transparent)]
    Net(#[from] sys::NetError),
    /// A state file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A state file is unreadable.
    #[error("{0}: corrupt: {1}")]
    Corrupt(String, String),
    /// No network of that name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// The request conflicts with what exists (a name, a port, a subnet).
    #[error("{0}")]
    Conflict(String),
    /// A value makes no sense.
    #[error("{0}")]
    Usage(String),
}

/// A new random ID: 32 random bytes in hex, as docker's.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    let f = std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut bytes)
    });
    f.expect("/dev/urandom is readable");
    hex::encode(bytes)
}

/// What a container asks of a network.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The container's ID.
    pub container: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its hostname.
    pub hostname: &'a str,
    /// More names on this network.
    pub aliases: Vec<String>,
    /// The address it wants (`--ip`).
    pub ip: Option<Ipv4Addr>,
    /// Ports to publish; a host port of 0 gets a free one.
    pub ports: Vec<PortBinding>,
    /// Its `/etc/hosts` on the host's side.
    pub hosts_file: Option<PathBuf>,
    /// Its namespace.
    pub netns: Netns<'a>,
}

/// The host end's name: `mdv`, the container ID's first eight digits (so `ip link` shows
/// whose it is), and four random ones: a pair the kernel is still tearing down after its
/// container ended (it does that in the background) never blocks the same container's
/// next start. 15 characters, IFNAMSIZ's limit.
pub fn host_veth_name(container: &str) -> String {
    format!(
        "mdv{}{}",
        &container[..8.min(container.len())],
        &random_id()[..4]
    )
}

/// Puts a container on a network: see the module's picture.
pub fn connect(
    sys: &dyn NetSys,
    store: &Store,
    network: &str,
    req: &Request<'_>,
) -> Result<Endpoint, Error> {
    let state = store.lock()?;
    let net = state.find(network)?;
    // Records of containers that ended without giving back (a killed monitor, a reboot)
    // hold addresses and ports, and this container's own would refuse it: freed first.
    forget_dead(sys, &state)?;
    let all = state.all_endpoints()?;
    let mine: Vec<&Endpoint> = all
        .iter()
        .filter(|e| e.container == req.container)
        .collect();
    if mine.iter().any(|e| e.network == net.id) {
        return Err(Error::Conflict(format!(
            "endpoint with name {} already exists in network {}",
            req.name, net.name
        )));
    }
    // 1. An address, and host ports for the published ones.
    let used: Vec<Ipv4Addr> = state.endpoints(&net)?.iter().map(|e| e.ip).collect();
    let ip =
        ipam::allocate(&net.subnet(), net.gateway(), &used, req.ip).map_err(Error::Conflict)?;
    let ports = publish(&all, req)?;
    let n = (0..)
        .find(|n| !mine.iter().any(|e| e.ifname == format!("eth{n}")))
        .expect("a free index");
    let netns_inode = std::fs::metadata(format!("/proc/{}/ns/net", req.netns.pid))
        .map_err(|e| Error::Io(format!("stat /proc/{}/ns/net", req.netns.pid), e))?
        .ino();
    let endpoint = Endpoint {
        network: net.id.clone(),
        container: req.container.to_string(),
        name: req.name.to_string(),
        aliases: req.aliases.clone(),
        hostname: req.hostname.to_string(),
        ip,
        mac: ipam::mac_text(&ipam::mac_of(ip)),
        host_veth: host_veth_name(req.container),
        ifname: format!("eth{n}"),
        ports,
        hosts_file: req.hosts_file.clone(),
        pid: req.netns.pid,
        netns_inode,
    };
    // Recorded first: a crash from here on leaves a record that `reclaim` finds.
    state.put_endpoint(&endpoint)?;
    let wired = (|| -> Result<(), Error> {
        // 2. The bridge and the firewall table, with this endpoint's ports.
        sync(sys, &state)?;
        // 3 and 4: the cable, and the container's end of it.
        wire(sys, &endpoint, &net, req.netns, mine.is_empty())
    })();
    if let Err(e) = wired {
        let _ = sys.link_exists(&endpoint.host_veth).unwrap_or(false)
            && sys
                .apply(
                    At::Host,
                    &Op::DelLink {
                        link: endpoint.host_veth.clone(),
                    },
                )
                .is_ok();
        let _ = state.remove_endpoint(&endpoint);
        let _ = sync(sys, &state);
        return Err(e);
    }
    // 5. Names: everyone on the network learns of it, and it of them.
    hosts::refresh(&state)?;
    Ok(endpoint)
}

/// Steps 3 and 4 of [`connect`]: a veth pair whose peer is created straight into the
/// container's namespace (`IFLA_NET_NS_FD`, so it never appears on the host), the host end
/// on the bridge and up; inside, the address, the links up, and, on the container's first
/// network (`first`) unless it is internal, the default route through the gateway.
pub fn wire(
    sys: &dyn NetSys,
    endpoint: &Endpoint,
    net: &Network,
    netns: Netns<'_>,
    first: bool,
) -> Result<(), Error> {
    // exercise(ch07.veth): AddVeth with the peer born in the namespace, SetMaster the bridge, Up; inside AddAddr, Up eth, Up lo, and the default route on a first, non-internal network
    // 3. The cable: one end here, the other born in the container's namespace.
    sys.apply(
        At::Host,
        &Op::AddVeth {
            host: endpoint.host_veth.clone(),
            peer: endpoint.ifname.clone(),
            peer_mac: ipam::mac_of(endpoint.ip),
            netns,
        },
    )?;
    sys.apply(
        At::Host,
        &Op::SetMaster {
            link: endpoint.host_veth.clone(),
            master: net.bridge.clone(),
        },
    )?;
    sys.apply(
        At::Host,
        &Op::Up {
            link: endpoint.host_veth.clone(),
        },
    )?;
    // 4. Inside: the address, the link up, the way out.
    let inside = At::Netns(netns);
    sys.apply(
        inside,
        &Op::AddAddr {
            link: endpoint.ifname.clone(),
            addr: endpoint.ip,
            prefix: net.subnet().prefix,
        },
    )?;
    sys.apply(
        inside,
        &Op::Up {
            link: endpoint.ifname.clone(),
        },
    )?;
    sys.apply(inside, &Op::Up { link: "lo".into() })?;
    if first && !net.internal {
        sys.apply(inside, &Op::DefaultRoute { via: net.gateway() })?;
    }
    Ok(())
    // end exercise
}

/// Chooses host ports where none were given, and refuses a port another container or a
/// host process already has, with docker's messages.
fn publish(all: &[Endpoint], req: &Request<'_>) -> Result<Vec<PortBinding>, Error> {
    let mut out: Vec<PortBinding> = Vec::new();
    for b in &req.ports {
        let mut b = b.clone();
        let clash = |p: &PortBinding, taken: &PortBinding| {
            taken.proto == p.proto
                && taken.host_port == p.host_port
                && (taken.host_ip == p.host_ip
                    || taken.host_ip.is_unspecified()
                    || p.host_ip.is_unspecified())
        };
        let auto = b.host_port == 0;
        let taken: Vec<&PortBinding> = all
            .iter()
            .flat_map(|e| e.ports.iter())
            .chain(out.iter())
            .collect();
        if auto {
            // The kernel's free port may be another container's (a DNAT rule holds no
            // socket): drawn again until it is nobody's.
            for _ in 0..64 {
                b.host_port = free_port(&b)?;
                if !taken.iter().any(|t| clash(&b, t)) {
                    break;
                }
            }
        }
        for t in taken {
            if clash(&b, t) {
                return Err(Error::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): Bind for {}:{} failed: port is already allocated",
                    req.name, req.container, b.host_ip, b.host_port
                )));
            }
        }
        // A host process listening there: docker's proxy could not bind either.
        if let Err(e) = probe(&b) {
            return Err(Error::Conflict(format!(
                "driver failed programming external connectivity on endpoint {} ({}): Error starting userland proxy: listen {}4 {}:{}: bind: {}",
                req.name,
                req.container,
                b.proto,
                b.host_ip,
                b.host_port,
                e.to_string()
                    .split(" (os error")
                    .next()
                    .unwrap_or_default()
                    .to_lowercase()
            )));
        }
        out.push(b);
    }
    Ok(out)
}

/// Binds the port for a moment: whether a host process holds it.
fn probe(b: &PortBinding) -> std::io::Result<()> {
    let addr = std::net::SocketAddr::from((b.host_ip, b.host_port));
    if b.proto == "udp" {
        std::net::UdpSocket::bind(addr).map(drop)
    } else {
        std::net::TcpListener::bind(addr).map(drop)
    }
}

/// A free host port, as the kernel picks one for port 0 (docker picks from its own
/// range; any free port does the same job).
fn free_port(b: &PortBinding) -> Result<u16, Error> {
    let addr = std::net::SocketAddr::from((b.host_ip, 0));
    let port = if b.proto == "udp" {
        std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(addr).and_then(|s| s.local_addr())
    };
    port.map(|a| a.port()).map_err(|e| {
        Error::Io(
            format!("choose a free {} port on {}", b.proto, b.host_ip),
            e,
        )
    })
}

/// Takes a container off its networks (`network`: only that one): the veth goes (its
/// peer with it), the address is free, the others forget its name.
pub fn disconnect(
    sys: &dyn NetSys,
    store: &Store,
    container: &str,
    network: Option<&str>,
) -> Result<Vec<Endpoint>, Error> {
    let state = store.lock()?;
    let only = network.map(|n| state.find(n)).transpose()?;
    let gone: Vec<Endpoint> = state
        .all_endpoints()?
        .into_iter()
        .filter(|e| e.container == container && only.as_ref().is_none_or(|n| n.id == e.network))
        .collect();
    if let (Some(n), true) = (&only, gone.is_empty()) {
        return Err(Error::Conflict(format!(
            "container {container} is not connected to network {}",
            n.name
        )));
    }
    forget(sys, &state, &gone)?;
    Ok(gone)
}

fn forget(sys: &dyn NetSys, state: &Locked<'_>, gone: &[Endpoint]) -> Result<(), Error> {
    for e in gone {
        if sys.link_exists(&e.host_veth)? {
            // A running container leaving a network: its pair is deleted (the peer goes
            // with it). An ended one's namespace is on its way out, and the kernel deletes
            // the pair with it, in the background; deleting it here would only wait for
            // that (RTM_DELLINK waits out an RCU grace period, some 15 ms, at every exit).
            // Its host end is taken down and out of the bridge at once instead, so nothing
            // reaches it while its address goes to another (also when another container
            // still holds the namespace: `--network container:X`).
            let ops: Vec<Op<'_>> = if e.alive() {
                vec![Op::DelLink {
                    link: e.host_veth.clone(),
                }]
            } else {
                vec![
                    Op::Down {
                        link: e.host_veth.clone(),
                    },
                    Op::NoMaster {
                        link: e.host_veth.clone(),
                    },
                ]
            };
            for op in &ops {
                match sys.apply(At::Host, op) {
                    // Gone meanwhile with its namespace: what was wanted.
                    Err(err) if err.errno == Some(nix::errno::Errno::ENODEV) => break,
                    other => other?,
                }
            }
        }
        state.remove_endpoint(e)?;
    }
    if !gone.is_empty() {
        hosts::refresh(state)?;
        for e in gone {
            if let Some(f) = &e.hosts_file {
                hosts::rewrite(f, &[])?;
            }
        }
        sync(sys, state)?;
    }
    Ok(())
}

/// Frees what containers that died without [`disconnect`] left (a monitor killed with
/// `kill -9`): every endpoint whose namespace is gone. Returns them.
pub fn reclaim(sys: &dyn NetSys, store: &Store) -> Result<Vec<Endpoint>, Error> {
    forget_dead(sys, &store.lock()?)
}

/// Forgets every endpoint whose namespace is gone; returns them.
fn forget_dead(sys: &dyn NetSys, state: &Locked<'_>) -> Result<Vec<Endpoint>, Error> {
    let dead: Vec<Endpoint> = state
        .all_endpoints()?
        .into_iter()
        .filter(|e| !e.alive())
        .collect();
    forget(sys, state, &dead)?;
    Ok(dead)
}

/// Makes the host match the state: a bridge (with its address, up) for every user
/// network and for the default one while it has containers, none for the others; the
/// firewall table with every network's rules and published ports, or no table when no
/// bridge is left; ip_forward on while a bridge exists (and back off after, if this
/// project turned it on).
pub fn sync(sys: &dyn NetSys, state: &Locked<'_>) -> Result<(), Error> {
    let mut made_bridge = false;
    let mut wanted = Vec::new();
    let mut published = Vec::new();
    for net in state.networks()? {
        let endpoints = state.endpoints(&net)?;
        let want = net.name != DEFAULT_NETWORK || !endpoints.is_empty();
        let exists = sys.link_exists(&net.bridge)?;
        if want && !exists {
            make_bridge(sys, &net)?;
            made_bridge = true;
        }
        if !want && exists {
            sys.apply(
                At::Host,
                &Op::DelLink {
                    link: net.bridge.clone(),
                },
            )?;
        }
        if want {
            for e in &endpoints {
                for b in &e.ports {
                    published.push(firewall::Published {
                        binding: b.clone(),
                        to: e.ip,
                    });
                }
            }
            wanted.push(firewall::Net {
                bridge: net.bridge.clone(),
                subnet: net.subnet.clone(),
                internal: net.internal,
            });
        }
    }
    let mut changes = state.host_changes();
    if wanted.is_empty() {
        if changes.table {
            sys.apply(
                At::Host,
                &Op::Nft {
                    ruleset: firewall::removal(),
                },
            )?;
        }
        if changes.ip_forward_was_off {
            sys.apply(
                At::Host,
                &Op::Sysctl {
                    name: "net.ipv4.ip_forward".into(),
                    value: "0".into(),
                },
            )?;
        }
        changes = network::HostChanges::default();
    } else {
        let ruleset = firewall::ruleset(&wanted, &published);
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(ruleset.as_bytes()))
        };
        // Running nft costs a process and a netlink transaction: skipped when the table
        // already holds exactly this ruleset, as installed since this boot (the kernel
        // forgets tables at a reboot) and with no bridge made anew meanwhile. A table
        // flushed by another tool is put back at the next change of any network.
        let boot = sys::read_sysctl("kernel.random.boot_id").unwrap_or_default();
        if made_bridge
            || !changes.table
            || changes.ruleset_sha256 != digest
            || changes.boot_id != boot
        {
            sys.apply(At::Host, &Op::Nft { ruleset })?;
            changes.table = true;
            changes.ruleset_sha256 = digest;
            changes.boot_id = boot;
        }
        if sys.read_sysctl("net.ipv4.ip_forward").as_deref() == Some("0") {
            // Recorded before it is done: a crash in between still has it undone.
            changes.ip_forward_was_off = true;
            state.set_host_changes(&changes)?;
            sys.apply(
                At::Host,
                &Op::Sysctl {
                    name: "net.ipv4.ip_forward".into(),
                    value: "1".into(),
                },
            )?;
        }
    }
    state.set_host_changes(&changes)
}

/// A network's bridge, with its address, `route_localnet` and up; deleted again if a step
/// fails, so a half-made bridge is never left for the next sync to take as done.
fn make_bridge(sys: &dyn NetSys, net: &Network) -> Result<(), Error> {
    sys.apply(
        At::Host,
        &Op::AddBridge {
            name: net.bridge.clone(),
        },
    )?;
    let rest = [
        Op::AddAddr {
            link: net.bridge.clone(),
            addr: net.gateway(),
            prefix: net.subnet().prefix,
        },
        // 127.0.0.1:PORT from the host is DNATed into the bridge: the kernel drops
        // packets with a loopback source on other interfaces unless this is on.
        Op::Sysctl {
            name: format!("net.ipv4.conf.{}.route_localnet", net.bridge),
            value: "1".into(),
        },
        Op::Up {
            link: net.bridge.clone(),
        },
    ];
    for op in &rest {
        if let Err(e) = sys.apply(At::Host, op) {
            let _ = sys.apply(
                At::Host,
                &Op::DelLink {
                    link: net.bridge.clone(),
                },
            );
            return Err(e.into());
        }
    }
    Ok(())
}

/// Deletes a bridge if it is there.
fn drop_bridge(sys: &dyn NetSys, bridge: &str) -> Result<(), Error> {
    if sys.link_exists(bridge)? {
        sys.apply(
            At::Host,
            &Op::DelLink {
                link: bridge.to_string(),
            },
        )?;
    }
    Ok(())
}

/// Creates a user network and its bridge.
pub fn create_network(
    sys: &dyn NetSys,
    store: &Store,
    name: &str,
    subnet: Option<ipam::Subnet>,
    gateway: Option<Ipv4Addr>,
    internal: bool,
) -> Result<Network, Error> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(Error::Usage(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if ["host", "none", "bridge", "default"].contains(&name) {
        return Err(Error::Conflict(format!(
            "operation is not permitted on predefined {name} network"
        )));
    }
    let state = store.lock()?;
    let net = state.create(name, "", subnet, gateway, internal)?;
    if let Err(e) = sync(sys, &state) {
        // Its bridge first: once the record is gone, sync no longer knows it.
        let _ = drop_bridge(sys, &net.bridge);
        let _ = state.remove(&net);
        let _ = sync(sys, &state);
        return Err(e);
    }
    Ok(net)
}

/// Removes a user network, refused while containers are on it (as docker).
pub fn remove_network(sys: &dyn NetSys, store: &Store, name: &str) -> Result<Network, Error> {
    let state = store.lock()?;
    let net = state.find(name)?;
    if net.name == DEFAULT_NETWORK {
        return Err(Error::Conflict(
            "bridge is a pre-defined network and cannot be removed".into(),
        ));
    }
    // Containers that died without saying so (their namespace is gone) do not count.
    let (live, dead): (Vec<Endpoint>, Vec<Endpoint>) = state
        .endpoints(&net)?
        .into_iter()
        .partition(Endpoint::alive);
    forget(sys, &state, &dead)?;
    if !live.is_empty() {
        return Err(Error::Conflict(format!(
            "error while removing network: network {} id {} has active endpoints",
            net.name, net.id
        )));
    }
    // The bridge before the record: a failure leaves both, and the next `rm` tries again.
    drop_bridge(sys, &net.bridge)?;
    state.remove(&net)?;
    sync(sys, &state)?;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn wiring_makes_the_peer_inside_the_namespace_then_addresses_and_routes_it_there() {
        let rec = sys::Recorder::default();
        let ns = std::fs::File::open("/proc/self/ns/net").unwrap();
        let pid = std::process::id() as i32;
        let netns = Netns {
            fd: ns.as_fd(),
            pid,
        };
        let net = Network {
            name: "frontend".into(),
            id: "f".repeat(64),
            driver: "bridge".into(),
            subnet: "10.87.3.0/24".into(),
            gateway: "10.87.3.1".into(),
            bridge: "mdbr-ffffffffff".into(),
            internal: false,
            created: String::new(),
        };
        let ip = Ipv4Addr::new(10, 87, 3, 2);
        let endpoint = Endpoint {
            network: net.id.clone(),
            container: "0123456789abcdef".into(),
            name: "web".into(),
            aliases: vec![],
            hostname: "web".into(),
            ip,
            mac: ipam::mac_text(&ipam::mac_of(ip)),
            host_veth: "mdv01234567abcd".into(),
            ifname: "eth0".into(),
            ports: vec![],
            hosts_file: None,
            pid,
            netns_inode: 0,
        };
        wire(&rec, &endpoint, &net, netns, true).unwrap();
        let inside = format!("[netns of pid {pid}]");
        assert_eq!(
            rec.ops.borrow().clone(),
            [
                format!(
                    "[host] RTM_NEWLINK mdv01234567abcd type veth peer eth0 address 02:42:0a:57:03:02 netns(pid {pid})"
                ),
                "[host] RTM_SETLINK mdv01234567abcd master mdbr-ffffffffff".into(),
                "[host] RTM_SETLINK mdv01234567abcd up".into(),
                format!("{inside} RTM_NEWADDR 10.87.3.2/24 dev eth0"),
                format!("{inside} RTM_SETLINK eth0 up"),
                format!("{inside} RTM_SETLINK lo up"),
                format!("{inside} RTM_NEWROUTE default via 10.87.3.1"),
            ]
        );
        // A second network's interface, or an internal network's, gives no way out.
        rec.ops.borrow_mut().clear();
        wire(&rec, &endpoint, &net, netns, false).unwrap();
        assert!(!rec.ops.borrow().iter().any(|o| o.contains("RTM_NEWROUTE")));
        rec.ops.borrow_mut().clear();
        let internal = Network {
            internal: true,
            ..net.clone()
        };
        wire(&rec, &endpoint, &internal, netns, true).unwrap();
        assert!(!rec.ops.borrow().iter().any(|o| o.contains("RTM_NEWROUTE")));
    }

    #[test]
    fn connect_wires_in_kernel_order_and_disconnect_undoes_it() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let rec = sys::Recorder::default();
        // A host that does not forward yet (Debian's default).
        rec.sysctls
            .borrow_mut()
            .insert("net.ipv4.ip_forward".into(), "0".into());
        // Our own namespace stands in for the container's: the recorder touches nothing.
        let ns = std::fs::File::open("/proc/self/ns/net").unwrap();
        let pid = std::process::id() as i32;
        let id = "0123456789abcdef";
        let req = Request {
            container: id,
            name: "web",
            hostname: "web",
            aliases: vec![],
            ip: None,
            ports: vec![],
            hosts_file: None,
            netns: Netns {
                fd: ns.as_fd(),
                pid,
            },
        };
        let e = connect(&rec, &store, DEFAULT_NETWORK, &req).unwrap();
        let ops = rec.ops.borrow().clone();
        // Forwarding is turned on once, for the bridge.
        assert_eq!(
            ops.iter()
                .filter(|o| o.contains("ip_forward"))
                .collect::<Vec<_>>(),
            ["[host] sysctl net.ipv4.ip_forward=1"],
            "{ops:#?}"
        );
        let subnet = e.ip.octets();
        let gw = format!("{}.{}.{}.1", subnet[0], subnet[1], subnet[2]);
        let want = [
            "[host] RTM_NEWLINK mdocker0 type bridge".to_string(),
            format!("[host] RTM_NEWADDR {gw}/24 dev mdocker0"),
            "[host] sysctl net.ipv4.conf.mdocker0.route_localnet=1".into(),
            "[host] RTM_SETLINK mdocker0 up".into(),
        ];
        assert_eq!(ops[..4], want, "{ops:#?}");
        let rest: Vec<&String> = ops[4..]
            .iter()
            .filter(|o| !o.contains("ip_forward"))
            .collect();
        assert!(rest[0].starts_with("[host] nft -f -"), "{ops:#?}");
        let veth = &e.host_veth;
        assert!(
            veth.starts_with("mdv01234567") && veth.len() == 15,
            "{veth}"
        );
        assert_eq!(
            rest[1],
            &format!(
                "[host] RTM_NEWLINK {veth} type veth peer eth0 address {} netns(pid {pid})",
                e.mac
            )
        );
        assert_eq!(
            rest[2],
            &format!("[host] RTM_SETLINK {veth} master mdocker0")
        );
        assert_eq!(rest[3], &format!("[host] RTM_SETLINK {veth} up"));
        assert_eq!(
            rest[4],
            &format!("[netns of pid {pid}] RTM_NEWADDR {}/24 dev eth0", e.ip)
        );
        assert_eq!(
            rest[5],
            &format!("[netns of pid {pid}] RTM_SETLINK eth0 up")
        );
        assert_eq!(
            rest[7],
            &format!("[netns of pid {pid}] RTM_NEWROUTE default via {gw}")
        );
        // A second container gets the next address.
        let e2 = connect(
            &rec,
            &store,
            DEFAULT_NETWORK,
            &Request {
                container: "fedcba9876543210",
                ..req.clone()
            },
        )
        .unwrap();
        assert_eq!(u32::from(e2.ip), u32::from(e.ip) + 1);
        rec.ops.borrow_mut().clear();
        disconnect(&rec, &store, id, None).unwrap();
        disconnect(&rec, &store, "fedcba9876543210", None).unwrap();
        let ops = rec.ops.borrow().clone();
        assert_eq!(ops[0], format!("[host] RTM_DELLINK {veth}"), "{ops:#?}");
        // The last one out takes the bridge and the table.
        assert!(
            ops.iter().any(|o| o == "[host] RTM_DELLINK mdocker0"),
            "{ops:#?}"
        );
        // Then forwarding goes back off: this project turned it on.
        let n = ops.len();
        assert!(
            ops[n - 2].starts_with("[host] nft -f - (2 lines"),
            "{ops:#?}"
        );
        assert_eq!(
            ops[n - 1],
            "[host] sysctl net.ipv4.ip_forward=0",
            "{ops:#?}"
        );
        let state = store.lock().unwrap();
        assert!(state.all_endpoints().unwrap().is_empty());
    }
}
