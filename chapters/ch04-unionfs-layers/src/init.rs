//! The init layer: a small layer between the image's layers and the container's writable
//! layer, holding the files whose contents belong to *this* container rather than to the
//! image: `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`.
//!
//! Written into the writable layer, they would end up in `docker commit` and in every image
//! built from the container. In a layer of their own they show through the merged view,
//! and the writable layer stays free of them. A runtime also bind-mounts them onto the
//! merged view (as Docker does), so that a container that *edits* them edits the init
//! layer's copy, and the writable layer never gets a copied-up version either.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ch03_rootfs_pivot_root::rootfs::{Mount, MountKind};

/// The files the init layer holds, relative to the root.
pub const FILES: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/// What goes into the init layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitLayer {
    /// The container's hostname.
    pub hostname: String,
    /// Extra `/etc/hosts` lines: (address, names).
    pub hosts: Vec<(String, String)>,
    /// Name servers for `/etc/resolv.conf` (empty: the host's, minus loopback ones).
    pub dns: Vec<String>,
    /// Search domains.
    pub dns_search: Vec<String>,
    /// Resolver options (`--dns-option ndots:2`); none: the host's.
    pub dns_options: Vec<String>,
}

impl InitLayer {
    /// `/etc/hosts`: docker's default lines (loopback names, and the IPv6 multicast names
    /// of RFC 4291 that libnetwork writes), then the extra lines.
    pub fn hosts_file(&self) -> String {
        let mut s = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n",
        );
        for (addr, names) in &self.hosts {
            s.push_str(&format!("{addr}\t{names}\n"));
        }
        s
    }

    /// `/etc/resolv.conf`: the given servers, or the host's. A nameserver on the host's
    /// loopback (systemd-resolved's 127.0.0.53) means nothing inside a network namespace of
    /// its own, so those lines are dropped, as Docker drops them; when none is left, Docker
    /// puts Google's public servers in their place, and so does this. The host's `options`
    /// are kept unless `--dns-option` gives others.
    pub fn resolv_conf(&self, host_resolv: &str) -> String {
        let mut s = String::new();
        let of_host = |key: &str| -> Vec<String> {
            host_resolv
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter(|rest| rest.starts_with([' ', '\t']))
                .map(|a| a.trim().to_string())
                .collect()
        };
        let mut servers: Vec<String> = if self.dns.is_empty() {
            of_host("nameserver")
                .into_iter()
                .filter(|a| !a.starts_with("127.") && a != "::1")
                .collect()
        } else {
            self.dns.clone()
        };
        if servers.is_empty() {
            servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
        let search: Vec<String> = if self.dns_search.is_empty() && self.dns.is_empty() {
            of_host("search")
        } else {
            self.dns_search.clone()
        };
        let options: Vec<String> = if self.dns_options.is_empty() {
            of_host("options")
        } else {
            vec![self.dns_options.join(" ")]
        };
        if !search.is_empty() {
            s.push_str(&format!("search {}\n", search.join(" ")));
        }
        for server in servers {
            s.push_str(&format!("nameserver {server}\n"));
        }
        for o in options {
            s.push_str(&format!("options {o}\n"));
        }
        s
    }

    /// Writes the layer into `dir` (created if missing): the three files, docker's empty
    /// `/.dockerenv`, and the mount points a container needs (`proc`, `sys`, `dev`), so the
    /// writable layer does not get those either. Returns the three files.
    pub fn write(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for d in ["etc", "proc", "sys", "dev"] {
            fs::create_dir_all(dir.join(d))?;
        }
        let contents = [
            format!("{}\n", self.hostname),
            self.hosts_file(),
            self.resolv_conf(&host),
        ];
        // Docker's marker that a process runs in a container (an empty file at the root);
        // programs test for it.
        fs::write(dir.join(".dockerenv"), "")?;
        let mut written = Vec::new();
        for (file, text) in FILES.iter().zip(contents) {
            let path = dir.join(file);
            fs::write(&path, text)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Bind mounts of the init layer's files onto the same paths in the container, for chapter
/// 3's mount sequence: edits inside then change the init layer's copies, and the writable
/// layer never receives a copied-up version.
pub fn mounts(init_dir: &Path) -> Vec<Mount> {
    FILES
        .iter()
        .map(|f| Mount {
            kind: MountKind::Bind(init_dir.join(f)),
            target: Path::new("/").join(f),
            read_only: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers_or_uses_the_given_ones() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\n";
        let init = InitLayer {
            hostname: "box".into(),
            hosts: vec![],
            dns: vec![],
            dns_search: vec![],
            dns_options: vec![],
        };
        assert_eq!(
            init.resolv_conf(host),
            "search corp.example\nnameserver 10.0.0.2\n"
        );
        // Only loopback servers on the host: docker's public fallback; host options kept.
        assert_eq!(
            init.resolv_conf("nameserver 127.0.0.53\noptions edns0 trust-ad\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0 trust-ad\n"
        );
        let init = InitLayer {
            dns: vec!["9.9.9.9".into()],
            dns_search: vec!["example.org".into()],
            dns_options: vec!["ndots:2".into(), "timeout:1".into()],
            ..init
        };
        assert_eq!(
            init.resolv_conf(host),
            "search example.org\nnameserver 9.9.9.9\noptions ndots:2 timeout:1\n"
        );
    }

    #[test]
    fn hosts_lists_loopback_and_the_extra_names() {
        let init = InitLayer {
            hostname: "box".into(),
            hosts: vec![("172.18.0.2".into(), "box".into())],
            dns: vec![],
            dns_search: vec![],
            dns_options: vec![],
        };
        assert_eq!(
            init.hosts_file(),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n172.18.0.2\tbox\n"
        );
    }
}
