//! A network namespace made for one test, standing in for the host: the bridge, the
//! firewall table, the veths and the containers of a networking test all live in it, so
//! a test never touches the real host's interfaces, routes or rules. It is held by a
//! descriptor: when the test drops it and the last process in it is gone, the kernel
//! removes everything in it (links, addresses, nft tables).
//!
//! Commands enter it through `nsenter --net=/proc/PID/fd/N`, so no `unsafe` pre_exec
//! is needed.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// The namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
}

impl Netns {
    /// A new, empty namespace with `lo` up (127.0.0.1 works in it, as on a host).
    pub fn new() -> std::io::Result<Netns> {
        // unshare(2) changes the calling thread's namespace only: a thread of its own
        // makes it, opens it and ends, and the test's threads stay where they are.
        let file = std::thread::spawn(|| -> std::io::Result<File> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .expect("the unshare thread does not panic")?;
        let ns = Netns { file };
        let out = ns
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "ip link set lo up: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(ns)
    }

    /// Where `nsenter --net=` finds it.
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd())
    }

    /// `program` to be run inside.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        c
    }

    /// A TCP listener bound inside the namespace: made on a thread that joins it
    /// (setns(2) changes only that thread); the socket stays in the namespace it was
    /// made in.
    pub fn listen_tcp(&self, addr: &str) -> std::io::Result<std::net::TcpListener> {
        let file = self.file.try_clone()?;
        let addr = addr.to_string();
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            std::net::TcpListener::bind(addr)
        })
        .join()
        .expect("the setns thread does not panic")
    }

    /// The namespace's links, as `ip -o link` lists them.
    pub fn links(&self) -> String {
        self.command("ip")
            .args(["-o", "link"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}
