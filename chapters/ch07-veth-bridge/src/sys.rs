//! The chapter's seam with the kernel: every change this chapter makes to the network is
//! an [`Op`], and every [`Op`] goes through [`NetSys::apply`].
//!
//! That gives three views of one sequence: [`Netlink`] carries the ops out (rtnetlink
//! messages, see rtnetlink(7), a sysctl file, or a ruleset fed to `nft -f -`), `--trace`
//! prints each one symbolically as it goes (`RTM_NEWLINK veth …`), and `--explain` prints
//! the `ip`/`sysctl`/`nft` command a learner would type to do the same by hand. Unit tests
//! use [`Recorder`] to check the order without touching the host.
//!
//! Links are created and configured with rtnetlink, the protocol `ip` itself speaks. A
//! netlink socket belongs to the network namespace it was *created* in, so talking to the
//! container's namespace means making a socket there: the calling thread joins the
//! namespace with setns(2), opens the socket and goes back; the socket stays in the
//! container's namespace for as long as it is used.
use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;

/// A network namespace the caller holds open (`/proc/PID/ns/net`), and the pid it was
/// opened from, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Netns<'a> {
    /// The open namespace.
    pub fd: BorrowedFd<'a>,
    /// Whose namespace it is.
    pub pid: i32,
}

impl PartialEq for Netns<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}

/// Where an op runs: in the caller's namespace (the host's), or in a container's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At<'a> {
    /// The caller's network namespace.
    Host,
    /// A container's.
    Netns(Netns<'a>),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Host => write!(f, "host"),
            At::Netns(n) => write!(f, "netns of pid {}", n.pid),
        }
    }
}

/// One change to the network.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'a> {
    /// A bridge: a virtual switch; its own address is the containers' gateway.
    AddBridge {
        /// Its name.
        name: String,
    },
    /// A veth pair: two interfaces joined by a virtual cable. One end stays on the host,
    /// the other is created directly in the container's namespace, with its MAC address.
    AddVeth {
        /// The host end's name.
        host: String,
        /// The container end's name (`eth0`).
        peer: String,
        /// The container end's MAC address.
        peer_mac: [u8; 6],
        /// The container's namespace.
        netns: Netns<'a>,
    },
    /// Plugs a link into a bridge.
    SetMaster {
        /// The link.
        link: String,
        /// The bridge.
        master: String,
    },
    /// Brings a link up.
    Up {
        /// The link.
        link: String,
    },
    /// Gives a link an address.
    AddAddr {
        /// The link.
        link: String,
        /// The address.
        addr: Ipv4Addr,
        /// The prefix length of its subnet.
        prefix: u8,
    },
    /// The default route, through the gateway.
    DefaultRoute {
        /// The gateway.
        via: Ipv4Addr,
    },
    /// Brings a link down.
    Down {
        /// The link.
        link: String,
    },
    /// Takes a link out of its bridge.
    NoMaster {
        /// The link.
        link: String,
    },
    /// Deletes a link (a veth's peer goes with it).
    DelLink {
        /// The link.
        link: String,
    },
    /// Writes a sysctl (`/proc/sys/...`) of the namespace it runs in.
    Sysctl {
        /// Its dotted name: `net.ipv4.ip_forward`.
        name: String,
        /// The value.
        value: String,
    },
    /// Replaces the project's firewall table with a ruleset, in one transaction.
    Nft {
        /// The ruleset, as `nft -f` reads it.
        ruleset: String,
    },
}

impl fmt::Display for Op<'_> {
    /// The op as `--trace` shows it: the netlink message and what it carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddBridge { name } => write!(f, "RTM_NEWLINK {name} type bridge"),
            Op::AddVeth {
                host,
                peer,
                peer_mac,
                netns,
            } => write!(
                f,
                "RTM_NEWLINK {host} type veth peer {peer} address {} netns(pid {})",
                crate::ipam::mac_text(peer_mac),
                netns.pid
            ),
            Op::SetMaster { link, master } => write!(f, "RTM_SETLINK {link} master {master}"),
            Op::Up { link } => write!(f, "RTM_SETLINK {link} up"),
            Op::AddAddr { link, addr, prefix } => {
                write!(f, "RTM_NEWADDR {addr}/{prefix} dev {link}")
            }
            Op::DefaultRoute { via } => write!(f, "RTM_NEWROUTE default via {via}"),
            Op::Down { link } => write!(f, "RTM_SETLINK {link} down"),
            Op::NoMaster { link } => write!(f, "RTM_SETLINK {link} nomaster"),
            Op::DelLink { link } => write!(f, "RTM_DELLINK {link}"),
            Op::Sysctl { name, value } => write!(f, "sysctl {name}={value}"),
            Op::Nft { ruleset } => write!(
                f,
                "nft -f - ({} lines for table ip mini_docker)",
                ruleset.lines().count()
            ),
        }
    }
}

impl Op<'_> {
    /// The command a learner would type to do the same, run in the same namespace
    /// (`ip netns exec` or `nsenter -n -t PID` for a container's).
    pub fn explain(&self) -> String {
        match self {
            Op::AddBridge { name } => format!("ip link add {name} type bridge"),
            Op::AddVeth {
                host,
                peer,
                peer_mac,
                netns,
            } => format!(
                "ip link add {host} type veth peer name {peer} address {} netns {}",
                crate::ipam::mac_text(peer_mac),
                netns.pid
            ),
            Op::SetMaster { link, master } => format!("ip link set {link} master {master}"),
            Op::Up { link } => format!("ip link set {link} up"),
            Op::AddAddr { link, addr, prefix } => format!("ip addr add {addr}/{prefix} dev {link}"),
            Op::DefaultRoute { via } => format!("ip route add default via {via}"),
            Op::Down { link } => format!("ip link set {link} down"),
            Op::NoMaster { link } => format!("ip link set {link} nomaster"),
            Op::DelLink { link } => format!("ip link del {link}"),
            Op::Sysctl { name, value } => format!("sysctl -w {name}={value}"),
            Op::Nft { ruleset } => format!("nft -f - <<'EOF'\n{}EOF", ruleset),
        }
    }
}

/// A failed op: which one, where, and the kernel's (or nft's) answer.
#[derive(Debug, thiserror::Error)]
#[error("{op} ({at}): {detail}")]
pub struct NetError {
    /// The op, as `--trace` prints it.
    pub op: String,
    /// Where it ran.
    pub at: String,
    /// The errno, when the kernel answered with one.
    pub errno: Option<Errno>,
    /// What went wrong, in words.
    pub detail: String,
}

impl NetError {
    fn new(op: &Op<'_>, at: At<'_>, errno: Errno) -> NetError {
        NetError {
            op: op.to_string(),
            at: at.to_string(),
            errno: Some(errno),
            detail: format!("{} ({errno:?})", errno.desc()),
        }
    }
}

/// Carries out the chapter's ops, and answers the one question the story asks the
/// kernel: does a link of that name exist?
pub trait NetSys {
    /// Carries out `op` in `at`'s namespace.
    fn apply(&self, at: At<'_>, op: &Op<'_>) -> Result<(), NetError>;
    /// Whether the caller's namespace has a link called `name`.
    fn link_exists(&self, name: &str) -> Result<bool, NetError>;
    /// The host's sysctl `name` (dotted), if it can be read.
    fn read_sysctl(&self, name: &str) -> Option<String>;
}

/// How ops are shown as they are carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Show {
    /// Not at all.
    #[default]
    Quiet,
    /// `--trace`: each op symbolically, on stderr.
    Trace,
    /// `--explain`: the equivalent command, on stderr.
    Explain,
}

/// The real kernel.
#[derive(Debug, Default)]
pub struct Netlink {
    /// Whether to print each op on stderr.
    pub show: Show,
}

impl Netlink {
    /// A kernel handle that shows its ops as `show` asks.
    pub fn new(show: Show) -> Netlink {
        Netlink { show }
    }
}

impl NetSys for Netlink {
    fn apply(&self, at: At<'_>, op: &Op<'_>) -> Result<(), NetError> {
        match self.show {
            Show::Quiet => {}
            Show::Trace => eprintln!("[{at}] {op}"),
            Show::Explain => match at {
                At::Host => eprintln!("{}", op.explain()),
                At::Netns(n) => eprintln!("nsenter -n -t {} {}", n.pid, op.explain()),
            },
        }
        match op {
            Op::Sysctl { name, value } => sysctl(at, op, name, value),
            Op::Nft { ruleset } => nft(at, op, ruleset),
            _ => {
                let socket = Rtnl::open(at).map_err(|e| NetError::new(op, at, e))?;
                socket.carry_out(op).map_err(|e| NetError::new(op, at, e))
            }
        }
    }

    fn read_sysctl(&self, name: &str) -> Option<String> {
        read_sysctl(name)
    }

    fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        let socket = Rtnl::open(At::Host).map_err(|e| NetError {
            op: format!("RTM_GETLINK {name}"),
            at: "host".into(),
            errno: Some(e),
            detail: e.desc().into(),
        })?;
        match socket.index(name) {
            Ok(_) => Ok(true),
            Err(Errno::ENODEV) => Ok(false),
            Err(e) => Err(NetError {
                op: format!("RTM_GETLINK {name}"),
                at: "host".into(),
                errno: Some(e),
                detail: e.desc().into(),
            }),
        }
    }
}

/// Runs `f` in `at`'s network namespace: the calling thread joins it with setns(2),
/// runs `f`, and goes back to its own. A thread of its own would be tidier, but a process
/// that has joined another PID namespace for its children (mini-docker's
/// `--pid container:X`) may not create threads at all (clone(2): EINVAL for CLONE_THREAD
/// when pid_for_children differs), and only sockets made inside need the switch.
fn in_namespace<T>(at: At<'_>, f: impl FnOnce() -> T) -> Result<T, Errno> {
    match at {
        At::Host => Ok(f()),
        At::Netns(n) => {
            let home = std::fs::File::open("/proc/thread-self/ns/net").map_err(errno)?;
            nix::sched::setns(n.fd, nix::sched::CloneFlags::CLONE_NEWNET)?;
            // Back home when this ends, even by a panic in `f`.
            let _back = GoBack(home);
            Ok(f())
        }
    }
}

/// Returns the thread to the network namespace it holds when dropped.
struct GoBack(std::fs::File);

impl Drop for GoBack {
    fn drop(&mut self) {
        // Held open since before the switch, and ours: going back cannot fail short of a
        // kernel bug, and staying in a container's namespace would be worse than stopping.
        nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns back into the caller's own network namespace");
    }
}

/// A sysctl of `at`'s namespace: the files under `/proc/sys/net` are those of the
/// namespace of the thread that opens them.
fn sysctl(at: At<'_>, op: &Op<'_>, name: &str, value: &str) -> Result<(), NetError> {
    let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
    let written = in_namespace(at, || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
    })
    .map_err(|e| NetError::new(op, at, e))?;
    written.map_err(|e| NetError {
        op: op.to_string(),
        at: at.to_string(),
        errno: e.raw_os_error().map(Errno::from_raw),
        detail: format!("write {}: {e}", path.display()),
    })
}

/// Reads a sysctl of the caller's namespace.
pub fn read_sysctl(name: &str) -> Option<String> {
    let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Feeds a ruleset to `nft -f -`: nft applies a whole file as one transaction, so the
/// table is replaced at once or not at all.
fn nft(at: At<'_>, op: &Op<'_>, ruleset: &str) -> Result<(), NetError> {
    let fail = |detail: String| NetError {
        op: op.to_string(),
        at: at.to_string(),
        errno: None,
        detail,
    };
    if at != At::Host {
        return Err(fail("nft runs in the caller's namespace only".into()));
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("run nft (install the nftables package): {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(ruleset.as_bytes())
        .map_err(|e| fail(format!("write to nft: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "nft refused the ruleset: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// An rtnetlink socket in one namespace.
struct Rtnl {
    socket: Socket,
    seq: std::cell::Cell<u32>,
}

impl Rtnl {
    fn open(at: At<'_>) -> Result<Rtnl, Errno> {
        let socket = in_namespace(at, || -> Result<Socket, Errno> {
            let mut s = Socket::new(NETLINK_ROUTE).map_err(errno)?;
            s.bind_auto().map_err(errno)?;
            s.connect(&SocketAddr::new(0, 0)).map_err(errno)?;
            Ok(s)
        })??;
        Ok(Rtnl {
            socket,
            seq: std::cell::Cell::new(1),
        })
    }

    /// Sends one request and reads until the kernel's acknowledgement (an error message
    /// with code 0) or its error; the replies before it are returned.
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Errno> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(errno)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(errno)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|_| Errno::EBADMSG)?;
                offset += reply.header.length as usize;
                if reply.header.length == 0 {
                    return Err(Errno::EBADMSG);
                }
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(Errno::from_raw(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }

    /// A link's index, asked by name (RTM_GETLINK with IFLA_IFNAME).
    fn index(&self, name: &str) -> Result<u32, Errno> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        for reply in self.request(RouteNetlinkMessage::GetLink(msg), 0)? {
            if let RouteNetlinkMessage::NewLink(l) = reply {
                return Ok(l.header.index);
            }
        }
        Err(Errno::ENODEV)
    }

    fn carry_out(&self, op: &Op<'_>) -> Result<(), Errno> {
        const NEW: u16 = NLM_F_CREATE | NLM_F_EXCL;
        match op {
            Op::AddBridge { name } => {
                let mut msg = LinkMessage::default();
                msg.attributes.push(LinkAttribute::IfName(name.clone()));
                msg.attributes
                    .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                        InfoKind::Bridge,
                    )]));
                self.request(RouteNetlinkMessage::NewLink(msg), NEW)?;
            }
            Op::AddVeth {
                host,
                peer,
                peer_mac,
                netns,
            } => {
                // The peer's attributes travel inside the request (VETH_INFO_PEER): the
                // kernel creates it directly in the namespace IFLA_NET_NS_FD names.
                let mut other = LinkMessage::default();
                other.attributes.push(LinkAttribute::IfName(peer.clone()));
                other
                    .attributes
                    .push(LinkAttribute::Address(peer_mac.to_vec()));
                other
                    .attributes
                    .push(LinkAttribute::NetNsFd(netns.fd.as_raw_fd()));
                let mut msg = LinkMessage::default();
                msg.attributes.push(LinkAttribute::IfName(host.clone()));
                msg.attributes.push(LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Veth),
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(other))),
                ]));
                self.request(RouteNetlinkMessage::NewLink(msg), NEW)?;
            }
            Op::SetMaster { link, master } => {
                let mut msg = LinkMessage::default();
                msg.header.index = self.index(link)?;
                msg.attributes
                    .push(LinkAttribute::Controller(self.index(master)?));
                self.request(RouteNetlinkMessage::SetLink(msg), 0)?;
            }
            Op::Up { link } => {
                let mut msg = LinkMessage::default();
                msg.header.index = self.index(link)?;
                msg.header.flags = LinkFlags::Up;
                msg.header.change_mask = LinkFlags::Up;
                self.request(RouteNetlinkMessage::SetLink(msg), 0)?;
            }
            Op::AddAddr { link, addr, prefix } => {
                let mut msg = AddressMessage::default();
                msg.header.family = AddressFamily::Inet;
                msg.header.prefix_len = *prefix;
                msg.header.index = self.index(link)?;
                let host_bits = u32::MAX.checked_shr(u32::from(*prefix)).unwrap_or(0);
                let broadcast = Ipv4Addr::from(u32::from(*addr) | host_bits);
                msg.attributes.push(AddressAttribute::Local((*addr).into()));
                msg.attributes
                    .push(AddressAttribute::Address((*addr).into()));
                msg.attributes.push(AddressAttribute::Broadcast(broadcast));
                self.request(RouteNetlinkMessage::NewAddress(msg), NEW)?;
            }
            Op::DefaultRoute { via } => {
                let mut msg = RouteMessage::default();
                msg.header.address_family = AddressFamily::Inet;
                msg.header.table = 254; // RT_TABLE_MAIN
                msg.header.protocol = RouteProtocol::Boot;
                msg.header.scope = RouteScope::Universe;
                msg.header.kind = RouteType::Unicast;
                msg.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::Inet(*via)));
                self.request(RouteNetlinkMessage::NewRoute(msg), NEW)?;
            }
            Op::Down { link } => {
                let mut msg = LinkMessage::default();
                msg.header.index = self.index(link)?;
                msg.header.change_mask = LinkFlags::Up;
                self.request(RouteNetlinkMessage::SetLink(msg), 0)?;
            }
            Op::NoMaster { link } => {
                let mut msg = LinkMessage::default();
                msg.header.index = self.index(link)?;
                msg.attributes.push(LinkAttribute::Controller(0));
                self.request(RouteNetlinkMessage::SetLink(msg), 0)?;
            }
            Op::DelLink { link } => {
                let mut msg = LinkMessage::default();
                msg.header.index = self.index(link)?;
                self.request(RouteNetlinkMessage::DelLink(msg), 0)?;
            }
            Op::Sysctl { .. } | Op::Nft { .. } => unreachable!("not netlink"),
        }
        Ok(())
    }
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Records ops instead of carrying them out, for unit tests of the order; `links` are the
/// links it says exist.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Each op as `[where] op`.
    pub ops: RefCell<Vec<String>>,
    /// The links that exist, kept current by the ops.
    pub links: RefCell<Vec<String>>,
    /// The host's sysctls as the recorder says they are, kept current by the ops (the
    /// real ones are never read: a test's result must not depend on the host).
    pub sysctls: RefCell<std::collections::BTreeMap<String, String>>,
}

impl NetSys for Recorder {
    fn apply(&self, at: At<'_>, op: &Op<'_>) -> Result<(), NetError> {
        self.ops.borrow_mut().push(format!("[{at}] {op}"));
        if at == At::Host {
            match op {
                Op::AddBridge { name } => self.links.borrow_mut().push(name.clone()),
                Op::AddVeth { host, .. } => self.links.borrow_mut().push(host.clone()),
                Op::DelLink { link } => self.links.borrow_mut().retain(|l| l != link),
                Op::Sysctl { name, value } => {
                    self.sysctls
                        .borrow_mut()
                        .insert(name.to_string(), value.to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        Ok(self.links.borrow().iter().any(|l| l == name))
    }

    fn read_sysctl(&self, name: &str) -> Option<String> {
        self.sysctls.borrow().get(name).cloned()
    }
}
