//! The networks' state, kept under the store's root in `networks/`:
//!
//! ```text
//! networks/lock                         every change holds it (flock), so concurrent
//!                                       starts never get the same address
//! networks/host.json                    what was changed on the host: the firewall table,
//!                                       ip_forward turned on
//! networks/<id>/network.json            a network: name, subnet, gateway, bridge
//! networks/<id>/endpoints/<container>.json
//!                                       a container on it: address, MAC, veth, ports;
//!                                       the allocation table is this directory
//! ```
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ipam::Subnet;
use crate::ports::PortBinding;

/// The network a container joins when no `--network` says otherwise, as docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its bridge: not docker's `docker0`, so both can run on one host.
pub const DEFAULT_BRIDGE: &str = "mdocker0";

/// The environment variable that sets the default bridge's address and subnet when its
/// network is first made, as dockerd's `--bip`: `10.200.0.1/24`.
pub const BIP_VAR: &str = "MINI_DOCKER_BIP";

/// `--bip`: the bridge's address with the subnet's prefix length.
pub fn parse_bip(bip: &str) -> Result<(Subnet, Ipv4Addr), String> {
    let (ip, prefix) = bip
        .split_once('/')
        .ok_or_else(|| format!("{BIP_VAR}={bip}: expected ADDRESS/PREFIX, like 10.200.0.1/24"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{BIP_VAR}={bip}: {ip} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (8..=30).contains(p))
        .ok_or_else(|| format!("{BIP_VAR}={bip}: a prefix of 8 to 30"))?;
    let mask = u32::MAX << (32 - u32::from(prefix));
    let subnet = Subnet {
        addr: Ipv4Addr::from(u32::from(ip) & mask),
        prefix,
    };
    Ok((subnet, ip))
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// Its ID (64 hex digits).
    pub id: String,
    /// Always `bridge`.
    pub driver: String,
    /// Its subnet.
    pub subnet: String,
    /// The bridge's address: the containers' default route.
    pub gateway: String,
    /// The bridge device.
    pub bridge: String,
    /// No way in or out (`--internal`).
    pub internal: bool,
    /// When it was made (RFC 3339).
    pub created: String,
}

impl Network {
    /// The subnet, parsed.
    pub fn subnet(&self) -> Subnet {
        self.subnet.parse().expect("stored subnets are valid")
    }

    /// The gateway, parsed.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway.parse().expect("stored gateways are valid")
    }

    /// Whether containers on it find each other by name (docker: user networks only).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's ID.
    pub network: String,
    /// The container's ID.
    pub container: String,
    /// The container's name: what others on a user network call it.
    pub name: String,
    /// More names (`--network-alias`).
    pub aliases: Vec<String>,
    /// Its hostname: its own line in `/etc/hosts`.
    pub hostname: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: String,
    /// The host end of its veth pair.
    pub host_veth: String,
    /// The interface inside (`eth0`).
    pub ifname: String,
    /// Its published ports, host ports chosen.
    pub ports: Vec<PortBinding>,
    /// The container's `/etc/hosts` on the host's side, kept current with the names of
    /// the others.
    pub hosts_file: Option<PathBuf>,
    /// The process whose namespace it is in.
    pub pid: i32,
    /// That namespace's inode: the endpoint is live while `/proc/PID/ns/net` is it.
    pub netns_inode: u64,
}

impl Endpoint {
    /// Whether its namespace still exists (its process lives, and is the same one).
    pub fn alive(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(format!("/proc/{}/ns/net", self.pid))
            .is_ok_and(|m| m.ino() == self.netns_inode)
    }
}

/// What was changed on the host, to undo when the last network goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostChanges {
    /// The firewall table is installed.
    pub table: bool,
    /// ip_forward was 0 and this project set it to 1.
    pub ip_forward_was_off: bool,
    /// The SHA-256 of the ruleset last installed: the same ruleset is not fed to nft
    /// again (a container without published ports changes nothing in the table).
    #[serde(default)]
    pub ruleset_sha256: String,
    /// The boot it was installed in (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot_id: String,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{what} {}", path.display()), e)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value).expect("JSON"))
        .map_err(|e| io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io("rename", path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Error> {
    let bytes = fs::read(path).map_err(|e| io("read", path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Corrupt(path.display().to_string(), e.to_string()))
}

impl Store {
    /// The state under `root/networks`, made if missing.
    pub fn open(root: &Path) -> Result<Store, Error> {
        let dir = root.join("networks");
        fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        Ok(Store { dir })
    }

    /// Takes the lock: every read that leads to a change, and the change, happen under
    /// it. It is an flock(2), so a process that dies lets go of it.
    pub fn lock(&self) -> Result<Locked<'_>, Error> {
        let path = self.dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        file.lock().map_err(|e| io("lock", &path, e))?;
        let locked = Locked {
            store: self,
            _file: file,
        };
        locked.ensure_default()?;
        Ok(locked)
    }
}

/// The state, locked.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a Store,
    _file: File,
}

impl Locked<'_> {
    fn dir(&self) -> &Path {
        &self.store.dir
    }

    /// Every network, the default first, then by name.
    pub fn networks(&self) -> Result<Vec<Network>, Error> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.dir()).map_err(|e| io("read", self.dir(), e))? {
            let e = e.map_err(|e| io("read", self.dir(), e))?;
            let file = e.path().join("network.json");
            if file.exists() {
                out.push(read_json::<Network>(&file)?);
            }
        }
        out.sort_by(|a, b| {
            (a.name != DEFAULT_NETWORK, &a.name).cmp(&(b.name != DEFAULT_NETWORK, &b.name))
        });
        Ok(out)
    }

    /// A network by name, full ID or ID prefix, as docker finds them.
    pub fn find(&self, name: &str) -> Result<Network, Error> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.name == name || n.id == name) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&Network> = all.iter().filter(|n| n.id.starts_with(name)).collect();
        match by_prefix.as_slice() {
            [one] if !name.is_empty() => Ok((*one).clone()),
            _ => Err(Error::NoSuchNetwork(name.to_string())),
        }
    }

    /// The default network's record, made on first use with a subnet that collides with
    /// nothing, or with the bridge address [`BIP_VAR`] gives (docker's `--bip`).
    fn ensure_default(&self) -> Result<(), Error> {
        if self.networks()?.iter().any(|n| n.name == DEFAULT_NETWORK) {
            return Ok(());
        }
        let (subnet, gateway) = match std::env::var(BIP_VAR) {
            Ok(bip) if !bip.is_empty() => {
                let (subnet, gateway) = parse_bip(&bip).map_err(Error::Usage)?;
                (Some(subnet), Some(gateway))
            }
            _ => (None, None),
        };
        self.create(DEFAULT_NETWORK, DEFAULT_BRIDGE, subnet, gateway, false)?;
        Ok(())
    }

    /// Subnets in use: the host's routes and the other networks'.
    fn taken(&self) -> Result<Vec<Subnet>, Error> {
        let table = fs::read_to_string("/proc/net/route").unwrap_or_default();
        let mut taken = crate::ipam::routes(&table);
        for n in self.networks()? {
            taken.push(n.subnet());
        }
        Ok(taken)
    }

    /// Makes a network's record (its bridge comes with [`crate::sync`]).
    pub fn create(
        &self,
        name: &str,
        bridge: &str,
        subnet: Option<Subnet>,
        gateway: Option<Ipv4Addr>,
        internal: bool,
    ) -> Result<Network, Error> {
        let all = self.networks()?;
        if all.iter().any(|n| n.name == name) {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let subnet = match subnet {
            Some(s) => {
                if let Some(other) = all.iter().find(|n| n.subnet().overlaps(&s)) {
                    return Err(Error::Conflict(format!(
                        "Pool overlaps with other one on this address space: {s} and network {} ({})",
                        other.name, other.subnet
                    )));
                }
                s
            }
            None => crate::ipam::choose(&self.taken()?).ok_or_else(|| {
                Error::Conflict(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
            })?,
        };
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.hosts().any(|h| h == gateway) {
            return Err(Error::Usage(format!(
                "no matching subnet for gateway {gateway}"
            )));
        }
        let id = crate::random_id();
        let bridge = if bridge.is_empty() {
            format!("mdbr-{}", &id[..10])
        } else {
            bridge.to_string()
        };
        let network = Network {
            name: name.to_string(),
            id: id.clone(),
            driver: "bridge".into(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            bridge,
            internal,
            created: jiff::Timestamp::now().to_string(),
        };
        let dir = self.dir().join(&id);
        fs::create_dir_all(dir.join("endpoints")).map_err(|e| io("create", &dir, e))?;
        write_json(&dir.join("network.json"), &network)?;
        Ok(network)
    }

    /// Removes a network's record (its bridge goes with [`crate::sync`]).
    pub fn remove(&self, network: &Network) -> Result<(), Error> {
        let dir = self.dir().join(&network.id);
        fs::remove_dir_all(&dir).map_err(|e| io("remove", &dir, e))
    }

    /// The endpoints on one network.
    pub fn endpoints(&self, network: &Network) -> Result<Vec<Endpoint>, Error> {
        let dir = self.dir().join(&network.id).join("endpoints");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io("read", &dir, e))? {
            let path = e.map_err(|e| io("read", &dir, e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                out.push(read_json::<Endpoint>(&path)?);
            }
        }
        out.sort_by_key(|e| e.ip);
        Ok(out)
    }

    /// Every endpoint of every network.
    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        let mut out = Vec::new();
        for n in self.networks()? {
            out.extend(self.endpoints(&n)?);
        }
        Ok(out)
    }

    /// Records an endpoint.
    pub fn put_endpoint(&self, e: &Endpoint) -> Result<(), Error> {
        let path = self
            .dir()
            .join(&e.network)
            .join("endpoints")
            .join(format!("{}.json", e.container));
        write_json(&path, e)
    }

    /// Forgets an endpoint (its address is free again).
    pub fn remove_endpoint(&self, e: &Endpoint) -> Result<(), Error> {
        let path = self
            .dir()
            .join(&e.network)
            .join("endpoints")
            .join(format!("{}.json", e.container));
        match fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path, err)),
            _ => Ok(()),
        }
    }

    /// What was changed on the host.
    pub fn host_changes(&self) -> HostChanges {
        read_json(&self.dir().join("host.json")).unwrap_or_default()
    }

    /// Records what was changed on the host.
    pub fn set_host_changes(&self, c: &HostChanges) -> Result<(), Error> {
        write_json(&self.dir().join("host.json"), c)
    }
}
