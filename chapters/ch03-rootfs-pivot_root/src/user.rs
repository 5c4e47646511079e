//! Who `-u user[:group]` is *inside* a rootfs: looked up in the rootfs's own `/etc/passwd`
//! and `/etc/group` (the host's mean nothing there), the way Docker resolves `--user`.
use std::fmt;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` memberships).
    pub groups: Vec<u32>,
    /// The home directory (`/` when unknown), for `HOME`.
    pub home: String,
}

/// Why a user could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownUser(pub String);

impl fmt::Display for UnknownUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownUser {}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) against the texts of
/// a rootfs's `/etc/passwd` and `/etc/group`. Numbers need no entry; names do.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User, UnknownUser> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    // name:x:uid:gid:gecos:home:shell
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 7
                && (f[0] == user || user.parse::<u32>().is_ok_and(|n| f[2].parse() == Ok(n)))
        });
    let (uid, mut gid, name, home) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| UnknownUser(format!("bad uid for {user:?} in passwd")))?,
            f[3].parse().unwrap_or(0),
            Some(f[0].to_string()),
            f[5].to_string(),
        ),
        (None, Ok(n)) => (n, 0, None, "/".to_string()),
        (None, Err(_)) => {
            return Err(UnknownUser(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )));
        }
    };
    // name:x:gid:member,member
    let groups_lines: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups_lines
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    UnknownUser(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = &name {
        for f in &groups_lines {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
                && !groups.contains(&g)
            {
                groups.push(g);
            }
        }
    }
    Ok(User {
        uid,
        gid,
        groups,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nlogs:x:4:www\n";

    #[test]
    fn users_resolve_like_docker() {
        let u = |s| resolve(s, PASSWD, GROUP);
        assert_eq!(
            u(""),
            Ok(User {
                uid: 0,
                gid: 0,
                groups: vec![0],
                home: "/root".into()
            })
        );
        assert_eq!(
            u("www"),
            Ok(User {
                uid: 33,
                gid: 33,
                groups: vec![33, 4],
                home: "/var/www".into()
            })
        );
        assert_eq!(u("33").unwrap().home, "/var/www");
        assert_eq!(
            u("1000:1000"),
            Ok(User {
                uid: 1000,
                gid: 1000,
                groups: vec![1000],
                home: "/".into()
            })
        );
        assert_eq!(u("www:logs").unwrap().gid, 4);
        assert_eq!(
            u("nobody").unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            u("www:staff").unwrap_err().to_string(),
            "unable to find group staff: no matching entries in group file"
        );
    }
}
