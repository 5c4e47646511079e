//! The chapter binary's commands: each a short story over the library.
use std::os::fd::AsFd;
use std::path::Path;

use ch01_namespaces::process::{self, ChildOptions};
use ch03_rootfs_pivot_root::rootfs::{KernelFiles, RootPlan};
use ch03_rootfs_pivot_root::{Plan, Rootfs};
use nix::sched::CloneFlags;

use crate::cli::{Command, CreateArgs, NetworkCommand, RunArgs};
use crate::sys::{NetSys, Netns};
use crate::{Error, Request, Store};

/// Runs one command; returns the exit code.
pub fn run(root: &Path, sys: &dyn NetSys, command: &Command) -> anyhow::Result<i32> {
    let store = Store::open(root)?;
    match command {
        Command::Run(args) => run_container(root, sys, &store, args),
        Command::Network(NetworkCommand::Create(args)) => create(sys, &store, args),
        Command::Network(NetworkCommand::Ls) => {
            print!("{}", ls(&store)?);
            Ok(0)
        }
        Command::Network(NetworkCommand::Inspect { names }) => {
            let state = store.lock()?;
            let mut out = Vec::new();
            for n in names {
                let net = state.find(n)?;
                let eps = state.endpoints(&net)?;
                out.push(inspect(&net, &eps));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        Command::Network(NetworkCommand::Rm { names }) => {
            for n in names {
                crate::remove_network(sys, &store, n)?;
                println!("{n}");
            }
            Ok(0)
        }
        Command::Diagram => {
            print!("{}", diagram(&store)?);
            Ok(0)
        }
    }
}

/// `network create`.
fn create(sys: &dyn NetSys, store: &Store, a: &CreateArgs) -> anyhow::Result<i32> {
    if a.driver != "bridge" {
        return Err(Error::Usage(format!(
            "plugin \"{}\" not found: this chapter has the bridge driver only",
            a.driver
        ))
        .into());
    }
    let subnet = a
        .subnet
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(Error::Usage)?;
    let net = crate::create_network(sys, store, &a.name, subnet, a.gateway, a.internal)?;
    println!("{}", net.id);
    Ok(0)
}

/// One network as `network ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The full ID (64 hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `bridge`, or `host` and `null` for the predefined ones.
    pub driver: String,
    /// `--internal`.
    pub internal: bool,
    /// When it was created (RFC 3339), empty for the predefined ones.
    pub created: String,
}

/// Every network, the predefined `host` and `none` among them, sorted by name.
pub fn list(store: &Store) -> Result<Vec<Listed>, Error> {
    let state = store.lock()?;
    let mut nets: Vec<Listed> = state
        .networks()?
        .into_iter()
        .map(|n| Listed {
            id: n.id,
            name: n.name,
            driver: n.driver,
            internal: n.internal,
            created: n.created,
        })
        .collect();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        nets.push(Listed {
            id: hex::encode(sha2_of(name)),
            name: name.into(),
            driver: driver.into(),
            internal: false,
            created: String::new(),
        });
    }
    nets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nets)
}

/// `network ls`, as docker's table (the predefined host and none included).
pub fn ls(store: &Store) -> Result<String, Error> {
    let mut rows = vec![[
        "NETWORK ID".to_string(),
        "NAME".into(),
        "DRIVER".into(),
        "SCOPE".into(),
    ]];
    for n in list(store)? {
        rows.push([n.id[..12].to_string(), n.name, n.driver, "local".into()]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let line = (0..4)
            .map(|i| format!("{:w$}", r[i], w = widths[i]))
            .collect::<Vec<_>>()
            .join("   ");
        s.push_str(line.trim_end());
        s.push('\n');
    }
    Ok(s)
}

/// A stable ID for the predefined networks that have no state.
fn sha2_of(name: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!("mini-docker network {name}")).to_vec()
}

/// `network inspect`: docker's shape (Name, Id, Driver, IPAM, Internal, Containers).
pub fn inspect(net: &crate::Network, eps: &[crate::Endpoint]) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = eps
        .iter()
        .filter(|e| e.alive())
        .map(|e| {
            (
                e.container.clone(),
                serde_json::json!({
                    "Name": e.name,
                    "EndpointID": e.host_veth,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, net.subnet().prefix),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    serde_json::json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}],
        },
        "Internal": net.internal,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": {},
    })
}

/// `diagram`.
pub fn diagram(store: &Store) -> Result<String, Error> {
    let state = store.lock()?;
    let mut nets = Vec::new();
    for n in state.networks()? {
        let eps = state.endpoints(&n)?;
        nets.push((n, eps));
    }
    Ok(crate::diagram::draw(&nets))
}

/// `run`: chapter 3's container, with chapter 7's network wired in between its clone and
/// its start (chapter 1's two-phase start).
fn run_container(root: &Path, sys: &dyn NetSys, store: &Store, a: &RunArgs) -> anyhow::Result<i32> {
    let kernel = ch03_rootfs_pivot_root::sys::Kernel::new(false);
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(crate::ports::parse(p).map_err(Error::Usage)?);
    }
    let id = crate::random_id();
    let name = a.name.clone().unwrap_or_else(|| id[..12].to_string());
    let hostname = a.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    // /etc/hostname, /etc/hosts, /etc/resolv.conf of its own (chapter 4's init layer),
    // bound over the rootfs's; /etc/hosts gets the network's names.
    let dir = root.join("ch07").join(&id);
    let init = ch04_unionfs_layers::init::InitLayer {
        hostname: hostname.clone(),
        hosts: Vec::new(),
        dns: Vec::new(),
        dns_search: Vec::new(),
        dns_options: Vec::new(),
    };
    init.write(&dir)
        .map_err(|e| Error::Io(format!("write {}", dir.display()), e))?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let rootfs = Rootfs::prepare(&a.rootfs)?;
    let plan = Plan {
        root: RootPlan {
            rootfs: rootfs.path().to_path_buf(),
            mounts: ch04_unionfs_layers::init::mounts(&dir),
            read_only_root: false,
            console: false,
            kernel_files: KernelFiles::unmasked(),
        },
        env: ch03_rootfs_pivot_root::default_env(&hostname),
        hostname: Some(hostname.clone()),
        workdir: "/".into(),
        argv: a.command.clone(),
        user: false,
    };
    // 1. The child, in new namespaces, waiting.
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    let created = process::create(&kernel, flags, ChildOptions::default(), &mut || {
        ch03_rootfs_pivot_root::enter(&kernel, &plan)
    })?;
    // 2. Its network namespace, wired from here.
    let pid = created.pid().as_raw();
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Error::Io(format!("open /proc/{pid}/ns/net"), e))?;
    let req = Request {
        container: &id,
        name: &name,
        hostname: &hostname,
        aliases: a.aliases.clone(),
        ip: a.ip,
        ports,
        hosts_file: Some(dir.join("etc/hosts")),
        netns: Netns {
            fd: ns.as_fd(),
            pid,
        },
    };
    crate::connect(sys, store, &a.network, &req)?;
    // 3. Released, and waited for; then its place on the network is given back.
    let result = created
        .start(&kernel)
        .and_then(|running| running.wait(&kernel));
    let undone = crate::disconnect(sys, store, &id, None);
    let code = result?.code();
    undone?;
    Ok(code)
}

/// Removes a directory when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
