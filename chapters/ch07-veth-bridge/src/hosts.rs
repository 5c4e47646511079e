//! Names on a user network, the daemonless way: each container's `/etc/hosts` ends with a
//! section listing its own address and the names of the containers that share a user
//! network with it, rewritten whenever one comes or goes.
//!
//! Docker answers names from a DNS server inside its daemon (127.0.0.11 in every
//! container). Without a daemon there is nothing to run it, and a resolver per container
//! would be one more process to keep alive; `/etc/hosts` is read by every libc (and
//! busybox) on each lookup, so a rewrite is seen at once. The file is rewritten *in place*
//! (same inode): it is bind-mounted into the container, and a rename would leave the
//! container looking at the old file. Limits: names only (no DNS queries for them, so a
//! program that speaks DNS itself does not see them), and no round-robin over aliases.
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::Error;
use crate::network::{Endpoint, Locked};

/// The line after which this chapter writes; everything before it is left as it is.
pub const MARKER: &str = "# container networks (mini-docker chapter 7)";

/// The section's lines for `me`: its own address with its hostname (first network
/// only), then everyone sharing a user network with it.
pub fn lines(me: &[&Endpoint], user_networks: &[(String, Vec<Endpoint>)]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(first) = me.first() {
        out.push(format!("{}\t{}", first.ip, first.hostname));
    }
    for (id, endpoints) in user_networks {
        if !me.iter().any(|e| &e.network == id) {
            continue;
        }
        for other in endpoints {
            if me.iter().any(|m| m.container == other.container) {
                continue;
            }
            let mut names = vec![other.name.clone()];
            names.extend(other.aliases.iter().cloned());
            out.push(format!("{}\t{}", other.ip, names.join(" ")));
        }
    }
    out
}

/// Replaces the section of `file` with `lines` (none: the section goes).
pub fn rewrite(file: &Path, lines: &[String]) -> Result<(), Error> {
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        // The container was removed meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io(format!("read {}", file.display()), e)),
    };
    let mut kept = match text.find(MARKER) {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    if !lines.is_empty() {
        kept.push_str(MARKER);
        kept.push('\n');
        for l in lines {
            kept.push_str(l);
            kept.push('\n');
        }
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .map_err(|e| Error::Io(format!("open {}", file.display()), e))?;
    f.write_all(kept.as_bytes())
        .map_err(|e| Error::Io(format!("write {}", file.display()), e))
}

/// Rewrites every container's section from the state.
pub fn refresh(state: &Locked<'_>) -> Result<(), Error> {
    let mut user = Vec::new();
    let mut all = Vec::new();
    for net in state.networks()? {
        let eps = state.endpoints(&net)?;
        all.extend(eps.iter().cloned());
        if net.resolves_names() {
            user.push((net.id.clone(), eps));
        }
    }
    let mut done: Vec<&str> = Vec::new();
    for e in &all {
        if done.contains(&e.container.as_str()) {
            continue;
        }
        done.push(&e.container);
        let me: Vec<&Endpoint> = all.iter().filter(|x| x.container == e.container).collect();
        if let Some(f) = &e.hosts_file {
            rewrite(f, &lines(&me, &user))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(net: &str, c: &str, ip: [u8; 4], aliases: &[&str]) -> Endpoint {
        Endpoint {
            network: net.into(),
            container: c.into(),
            name: c.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            hostname: format!("{c}-host"),
            ip: ip.into(),
            mac: String::new(),
            host_veth: String::new(),
            ifname: "eth0".into(),
            ports: vec![],
            hosts_file: None,
            pid: 0,
            netns_inode: 0,
        }
    }

    #[test]
    fn a_container_sees_itself_and_its_user_networks_only() {
        let a = ep("n1", "a", [10, 87, 1, 2], &[]);
        let b = ep("n1", "b", [10, 87, 1, 3], &["db"]);
        let c = ep("n2", "c", [10, 87, 2, 2], &[]);
        let user = vec![
            ("n1".to_string(), vec![a.clone(), b.clone()]),
            ("n2".to_string(), vec![c.clone()]),
        ];
        assert_eq!(
            lines(&[&a], &user),
            ["10.87.1.2\ta-host", "10.87.1.3\tb db"]
        );
        assert_eq!(lines(&[&c], &user), ["10.87.2.2\tc-host"]);
    }

    #[test]
    fn the_section_is_replaced_in_place_and_the_rest_kept() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        fs::write(&f, "127.0.0.1\tlocalhost\n").unwrap();
        let inode = fs::metadata(&f).unwrap().ino();
        rewrite(&f, &["10.0.0.2\tweb".into()]).unwrap();
        rewrite(&f, &["10.0.0.3\tweb".into()]).unwrap();
        assert_eq!(
            fs::read_to_string(&f).unwrap(),
            format!("127.0.0.1\tlocalhost\n{MARKER}\n10.0.0.3\tweb\n")
        );
        assert_eq!(fs::metadata(&f).unwrap().ino(), inode);
        rewrite(&f, &[]).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "127.0.0.1\tlocalhost\n");
    }
}
