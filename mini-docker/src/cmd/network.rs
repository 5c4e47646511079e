//! `mini-docker network` (create, ls, inspect, rm, prune, connect, disconnect, diagram)
//! and `mini-docker port`: chapter 7's library, with docker's verbs and output.
use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::record::Status;
use crate::template::Template;
use crate::{Error, containers};

/// The network commands.
#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        /// Driver to manage the Network (bridge only).
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format that represents a network segment.
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 Gateway for the master subnet.
        #[arg(long)]
        gateway: Option<std::net::Ipv4Addr>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Its name.
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long)]
        no_trunc: bool,
        /// Provide filter values (e.g. "driver=bridge").
        #[arg(short, long = "filter", value_name = "FILTER")]
        filter: Vec<String>,
        /// Format output using a Go template (or `json`, `table`, `table TEMPLATE`).
        #[arg(long, value_name = "string")]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format output using a Go template.
        #[arg(short, long, value_name = "string")]
        format: Option<String>,
        /// The networks.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// The networks.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation (there is no prompt).
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        /// The network.
        network: String,
        /// The container.
        container: String,
    },
    /// Draw the networks, their bridges and the containers on them.
    Diagram,
}

/// `network connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address.
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
}

fn store(root: &Path) -> Result<ch07_veth_bridge::Store, Error> {
    Ok(ch07_veth_bridge::Store::open(root)?)
}

/// Runs a network command; failures are printed as docker's CLI prints the daemon's
/// answers, and exit 1 as docker's do.
pub fn main(root: &Path, cmd: &NetworkCommand) -> Result<i32, Error> {
    match run(root, cmd) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("{}", daemon_error(&e));
            Ok(1)
        }
    }
}

/// docker's wording for a failure the daemon reports: `Error: No such network: X` for a
/// missing network (the CLI's own check), `Error response from daemon: ...` otherwise.
fn daemon_error(e: &Error) -> String {
    match e {
        Error::Network(ch07_veth_bridge::Error::NoSuchNetwork(n)) => {
            format!("Error: No such network: {n}")
        }
        Error::NoSuchContainer(_) => format!("Error: {e}"),
        _ => format!("Error response from daemon: {e}"),
    }
}

fn run(root: &Path, cmd: &NetworkCommand) -> Result<i32, Error> {
    let sys = crate::netlink();
    let store = store(root)?;
    match cmd {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            internal,
            name,
        } => {
            if driver != "bridge" {
                return Err(Error::Usage(format!(
                    "plugin \"{driver}\" not found (mini-docker has the bridge driver only)"
                )));
            }
            let subnet = subnet
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(Error::Usage)?;
            let net =
                ch07_veth_bridge::create_network(&sys, &store, name, subnet, *gateway, *internal)?;
            println!("{}", net.id);
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            filter,
            format,
        } => ls(&store, *quiet, *no_trunc, filter, format.as_deref())?,
        NetworkCommand::Inspect { format, names } => {
            let template = format
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
            // `host` and `none` have no state of their own: docker's shape, nothing in it.
            let predefined: Vec<_> = ch07_veth_bridge::commands::list(&store)?
                .into_iter()
                .filter(|n| n.driver != "bridge")
                .collect();
            let state = store.lock()?;
            let mut out = Vec::new();
            let mut status = 0;
            for n in names {
                if let Some(p) = predefined
                    .iter()
                    .find(|p| &p.name == n || (n.len() >= 3 && p.id.starts_with(n.as_str())))
                {
                    out.push(json!({
                        "Name": p.name,
                        "Id": p.id,
                        "Created": "0001-01-01T00:00:00Z",
                        "Scope": "local",
                        "Driver": p.driver,
                        "EnableIPv6": false,
                        "IPAM": {"Driver": "default", "Options": null, "Config": []},
                        "Internal": false,
                        "Attachable": false,
                        "Ingress": false,
                        "ConfigFrom": {"Network": ""},
                        "ConfigOnly": false,
                        "Containers": {},
                        "Options": {},
                        "Labels": {},
                    }));
                    continue;
                }
                match state.find(n) {
                    Ok(net) => {
                        let eps = state.endpoints(&net)?;
                        out.push(ch07_veth_bridge::commands::inspect(&net, &eps));
                    }
                    Err(e) => {
                        eprintln!("{}", daemon_error(&Error::from(e)));
                        status = 1;
                    }
                }
            }
            match template {
                Some(t) => {
                    for v in &out {
                        println!("{}", t.render(v).map_err(|e| Error::Usage(e.to_string()))?);
                    }
                }
                None => println!(
                    "{}",
                    crate::format::inspect_json(&serde_json::Value::from(out))
                ),
            }
            return Ok(status);
        }
        NetworkCommand::Rm { names } => {
            let mut status = 0;
            for n in names {
                match ch07_veth_bridge::remove_network(&sys, &store, n) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{}", daemon_error(&Error::from(e)));
                        status = 1;
                    }
                }
            }
            return Ok(status);
        }
        NetworkCommand::Prune { .. } => {
            let gone = prune(root)?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                for n in gone {
                    println!("{n}");
                }
            }
        }
        NetworkCommand::Connect(a) => {
            let c = containers::find(root, &a.container)?;
            // docker's refusals: a namespace that is not the container's own to wire.
            let mode = c.config.host.network_mode.as_str();
            if mode == "host" || mode.starts_with("container:") {
                return Err(Error::Conflict(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ));
            }
            if mode == "none" || mode.is_empty() {
                return Err(Error::Conflict(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
                ));
            }
            let state = c.live_state()?;
            if state.status != Status::Running {
                return Err(Error::Conflict(format!(
                    "container {} is not running",
                    c.id()
                )));
            }
            let ns = std::fs::File::open(format!("/proc/{}/ns/net", state.pid))
                .map_err(|e| Error::io("open", Path::new("/proc/PID/ns/net"), e))?;
            let cfg = &c.config;
            let req = ch07_veth_bridge::Request {
                container: &cfg.id,
                name: &cfg.name,
                hostname: &cfg.hostname,
                aliases: a.alias.clone(),
                ip: a.ip,
                ports: Vec::new(),
                hosts_file: Some(c.path("init/etc/hosts")),
                netns: ch07_veth_bridge::sys::Netns {
                    fd: std::os::fd::AsFd::as_fd(&ns),
                    pid: state.pid,
                },
            };
            ch07_veth_bridge::connect(&sys, &store, &a.network, &req)?;
        }
        NetworkCommand::Disconnect {
            network, container, ..
        } => {
            let c = containers::find(root, container)?;
            ch07_veth_bridge::disconnect(&sys, &store, c.id(), Some(network))?;
        }
        NetworkCommand::Diagram => {
            print!("{}", ch07_veth_bridge::commands::diagram(&store)?);
        }
    }
    Ok(0)
}

/// `network prune` (and `system prune`'s part): addresses of containers that died without
/// giving them back, then every user network nobody is on. Returns their names.
pub fn prune(root: &Path) -> Result<Vec<String>, Error> {
    let sys = crate::netlink();
    let store = store(root)?;
    ch07_veth_bridge::reclaim(&sys, &store)?;
    let unused: Vec<String> = {
        let state = store.lock()?;
        let mut names = Vec::new();
        for n in state.networks()? {
            if n.name != ch07_veth_bridge::DEFAULT_NETWORK && state.endpoints(&n)?.is_empty() {
                names.push(n.name);
            }
        }
        names
    };
    for n in &unused {
        ch07_veth_bridge::remove_network(&sys, &store, n)?;
    }
    Ok(unused)
}

/// The container's endpoints, live: what `inspect` shows as `NetworkSettings` and `port`
/// lists. A stopped container has none (docker clears them too).
pub fn endpoints(
    root: &Path,
    id: &str,
) -> Vec<(ch07_veth_bridge::Network, ch07_veth_bridge::Endpoint)> {
    if !root.join("networks").exists() {
        return Vec::new();
    }
    let Ok(store) = store(root) else {
        return Vec::new();
    };
    let Ok(state) = store.lock() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in state.networks().unwrap_or_default() {
        for e in state.endpoints(&n).unwrap_or_default() {
            if e.container == id {
                out.push((n.clone(), e));
            }
        }
    }
    out
}

/// `NetworkSettings` as docker's inspect shows it.
pub fn settings(root: &Path, id: &str, mode: &str) -> Value {
    let eps = endpoints(root, id);
    let mut ports = serde_json::Map::new();
    let mut networks = serde_json::Map::new();
    for (n, e) in &eps {
        for b in &e.ports {
            let key = format!("{}/{}", b.container_port, b.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            entry.as_array_mut().expect("array").push(json!({
                "HostIp": b.host_ip.to_string(),
                "HostPort": b.host_port.to_string(),
            }));
        }
        networks.insert(
            n.name.clone(),
            endpoint_json(
                Some(&e.aliases),
                &n.id,
                &e.host_veth,
                &n.gateway,
                &e.ip.to_string(),
                n.subnet().prefix,
                &e.mac,
            ),
        );
    }
    if eps.is_empty() && !mode.is_empty() && !mode.starts_with("container:") {
        let name = if mode == "default" { "bridge" } else { mode };
        networks.insert(name.to_string(), endpoint_json(None, "", "", "", "", 0, ""));
    }
    let first = eps
        .iter()
        .find(|(n, _)| n.name == ch07_veth_bridge::DEFAULT_NETWORK);
    // docker's `types.NetworkSettings`, key for key; the IPv6 and sandbox fields exist
    // but stay empty (no IPv6 here, no daemon's sandbox: the namespace is the
    // container's process's own, /proc/PID/ns/net).
    json!({
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": "",
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": first.map(|(_, e)| e.host_veth.clone()).unwrap_or_default(),
        "Gateway": first.map(|(n, _)| n.gateway.clone()).unwrap_or_default(),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": first.map(|(_, e)| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|(n, _)| n.subnet().prefix).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": first.map(|(_, e)| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

/// `network ls`: docker's table, `-q`, `--no-trunc`, `--filter` (driver, id, name,
/// type=builtin|custom, scope) and `--format` over docker's fields.
fn ls(
    store: &ch07_veth_bridge::Store,
    quiet: bool,
    no_trunc: bool,
    filters: &[String],
    format: Option<&str>,
) -> Result<(), Error> {
    let format = crate::format::Format::parse(format)?;
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    for n in ch07_veth_bridge::commands::list(store)? {
        let builtin = matches!(n.name.as_str(), "host" | "none" | "bridge");
        let mut keep = true;
        for f in filters {
            let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
            keep &= match k {
                "driver" => n.driver == v,
                "id" => n.id.starts_with(v),
                "name" => n.name.contains(v),
                "scope" => v == "local",
                "type" => (v == "builtin") == builtin,
                _ => return Err(Error::Usage(format!("Invalid filter '{k}'"))),
            };
        }
        if !keep {
            continue;
        }
        let id = if no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        };
        if quiet {
            println!("{id}");
            continue;
        }
        objects.push(json!({
            "ID": id,
            "Name": n.name,
            "Driver": n.driver,
            "Scope": "local",
            "IPv6": "false",
            "Internal": n.internal.to_string(),
            "Labels": "",
            "CreatedAt": crate::format::go_time(&n.created),
        }));
        rows.push(vec![id, n.name, n.driver, "local".to_string()]);
    }
    if quiet {
        return Ok(());
    }
    let headers = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ];
    match format.render(&objects, &headers)? {
        Some(out) => print!("{out}"),
        None => print!(
            "{}",
            crate::format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
        ),
    }
    Ok(())
}

/// One network of `NetworkSettings.Networks` (docker's `network.EndpointSettings`).
fn endpoint_json(
    aliases: Option<&Vec<String>>,
    network: &str,
    endpoint: &str,
    gateway: &str,
    ip: &str,
    prefix: u8,
    mac: &str,
) -> Value {
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": aliases.filter(|a| !a.is_empty()),
        "NetworkID": network,
        "EndpointID": endpoint,
        "Gateway": gateway,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": mac,
        "DriverOpts": null,
    })
}

/// `port`.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// The container.
    pub container: String,
    /// PRIVATE_PORT[/PROTO]: only that one.
    pub port: Option<String>,
}

/// `port`: the container's published ports, as docker lists them; errors as docker's
/// (exit 1).
pub fn port(root: &Path, a: &PortArgs) -> Result<i32, Error> {
    match list_ports(root, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::say(&e);
            Ok(1)
        }
    }
}

fn list_ports(root: &Path, a: &PortArgs) -> Result<i32, Error> {
    let c = containers::find(root, &a.container)?;
    let mut bindings: Vec<ch07_veth_bridge::PortBinding> = endpoints(root, c.id())
        .into_iter()
        .flat_map(|(_, e)| e.ports)
        .collect();
    bindings.sort_by_key(|b| (b.container_port, b.proto.clone()));
    match &a.port {
        None => {
            for b in &bindings {
                println!("{b}");
            }
        }
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let found: Vec<_> = bindings
                .iter()
                .filter(|b| b.container_port.to_string() == num && b.proto == proto)
                .collect();
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "No public port '{num}/{proto}' published for {}",
                    a.container
                )));
            }
            for b in found {
                println!("{}:{}", b.host_ip, b.host_port);
            }
        }
    }
    Ok(0)
}
