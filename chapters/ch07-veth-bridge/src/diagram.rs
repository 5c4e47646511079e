//! `diagram`: the current topology as a terminal picture, from the state.
use crate::network::{Endpoint, Network};

/// Draws the networks and who is on them:
///
/// ```text
/// host
/// └── mdocker0 (bridge "bridge") 10.87.0.1/24
///     └── mdv01234567a1b2 ══ eth0 10.87.0.2 02:42:0a:57:00:02  web (pid 4242)
///             0.0.0.0:8080 → 80/tcp
/// ```
pub fn draw(networks: &[(Network, Vec<Endpoint>)]) -> String {
    let mut s = String::from("host\n");
    for (i, (net, eps)) in networks.iter().enumerate() {
        let last_net = i + 1 == networks.len();
        let (branch, indent) = if last_net {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let prefix = net.subnet().prefix;
        s.push_str(&format!(
            "{branch}{} (bridge {:?}) {}/{prefix}{}\n",
            net.bridge,
            net.name,
            net.gateway,
            if net.internal { " internal" } else { "" }
        ));
        if eps.is_empty() {
            s.push_str(&format!("{indent}└── (no containers)\n"));
        }
        for (j, e) in eps.iter().enumerate() {
            let last = j + 1 == eps.len();
            let (b, more) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            let mut names = vec![e.name.clone()];
            names.extend(e.aliases.iter().cloned());
            s.push_str(&format!(
                "{indent}{b}{} ══ {} {} {}  {} (pid {})\n",
                e.host_veth,
                e.ifname,
                e.ip,
                e.mac,
                names.join(","),
                e.pid
            ));
            for p in &e.ports {
                s.push_str(&format!(
                    "{indent}{more}    {}:{} → {}/{}\n",
                    p.host_ip, p.host_port, p.container_port, p.proto
                ));
            }
        }
    }
    s
}
