//! The project's firewall table, as text for `nft -f -`, pure.
//!
//! Everything lives in one table, `ip mini_docker`, rebuilt whole from the networks'
//! state at every change and swapped in by one nft transaction. No other table, chain or
//! rule of the host is touched; deleting the table undoes everything.
//!
//! * `postrouting`: what leaves a network for elsewhere is masqueraded (source NAT to the
//!   outgoing interface's address), so the world answers the host; packets a host process
//!   sent to `127.0.0.1:PORT` and that were redirected into a bridge get the bridge's
//!   address as their source too (a 127.0.0.1 source means nothing off the host).
//! * `prerouting`/`output` jump to `published` for packets addressed to one of the host's
//!   own addresses (`fib daddr type local`): from outside, and from the host itself.
//! * `published`: one DNAT rule per published port.
//! * `forward`: an `--internal` network has no way in or out; two networks do not reach
//!   each other; from elsewhere into a bridge only answers and published ports pass.
//! * `loopback`: a container may not address the host's 127.0.0.1 (which `route_localnet`
//!   on the bridges would otherwise allow).
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::ports::PortBinding;

/// The table's name, in the `ip` family.
pub const TABLE: &str = "mini_docker";

/// A network as the firewall sees it.
#[derive(Debug, Clone)]
pub struct Net {
    /// Its bridge.
    pub bridge: String,
    /// Its subnet, `10.87.0.0/24`.
    pub subnet: String,
    /// No way in or out.
    pub internal: bool,
}

/// A published port and the container address it leads to.
#[derive(Debug, Clone)]
pub struct Published {
    /// The binding.
    pub binding: PortBinding,
    /// The container's address.
    pub to: Ipv4Addr,
}

/// The ruleset: the table, replaced whole.
pub fn ruleset(nets: &[Net], published: &[Published]) -> String {
    let mut s = String::new();
    // Declaring the table first makes the delete succeed when there is none yet.
    writeln!(s, "table ip {TABLE}").unwrap();
    writeln!(s, "delete table ip {TABLE}").unwrap();
    writeln!(s, "table ip {TABLE} {{").unwrap();
    // dstnat is -100, the priority of NAT before routing; nft names it for prerouting only.
    for hook in ["prerouting", "output"] {
        writeln!(s, "\tchain {hook} {{").unwrap();
        writeln!(s, "\t\ttype nat hook {hook} priority -100; policy accept;").unwrap();
        writeln!(s, "\t\tfib daddr type local jump published").unwrap();
        writeln!(s, "\t}}").unwrap();
    }
    // route_localnet on the bridges lets the host's own 127.0.0.1 be DNATed into them; it
    // would also let a container address the host's loopback-only services by sending to
    // 127.0.0.1 (CVE-2020-8558). Dropped before routing, in the `raw` hook.
    let bridges: Vec<String> = nets.iter().map(|n| format!("\"{}\"", n.bridge)).collect();
    writeln!(s, "\tchain loopback {{").unwrap();
    writeln!(
        s,
        "\t\ttype filter hook prerouting priority raw; policy accept;"
    )
    .unwrap();
    if !bridges.is_empty() {
        writeln!(
            s,
            "\t\tiifname {{ {} }} ip daddr 127.0.0.0/8 drop",
            bridges.join(", ")
        )
        .unwrap();
    }
    writeln!(s, "\t}}").unwrap();
    writeln!(s, "\tchain published {{").unwrap();
    for p in published {
        let b = &p.binding;
        let only = if b.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", b.host_ip)
        };
        writeln!(
            s,
            "\t\t{only}{} dport {} dnat to {}:{}",
            b.proto, b.host_port, p.to, b.container_port
        )
        .unwrap();
    }
    writeln!(s, "\t}}").unwrap();
    writeln!(s, "\tchain postrouting {{").unwrap();
    writeln!(
        s,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    )
    .unwrap();
    for n in nets {
        writeln!(
            s,
            "\t\toifname \"{}\" ip saddr 127.0.0.0/8 masquerade",
            n.bridge
        )
        .unwrap();
        // A container reaching a published port of its own bridge (through the gateway's
        // address): without a new source the answer would go straight back, not via us.
        writeln!(
            s,
            "\t\toifname \"{0}\" ip saddr {1} ct status dnat masquerade",
            n.bridge, n.subnet
        )
        .unwrap();
        if !n.internal {
            writeln!(
                s,
                "\t\tip saddr {} oifname != \"{}\" masquerade",
                n.subnet, n.bridge
            )
            .unwrap();
        }
    }
    writeln!(s, "\t}}").unwrap();
    writeln!(s, "\tchain forward {{").unwrap();
    writeln!(
        s,
        "\t\ttype filter hook forward priority filter; policy accept;"
    )
    .unwrap();
    for n in nets {
        if n.internal {
            writeln!(s, "\t\tiifname \"{0}\" oifname != \"{0}\" drop", n.bridge).unwrap();
            writeln!(s, "\t\toifname \"{0}\" iifname != \"{0}\" drop", n.bridge).unwrap();
        }
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            writeln!(
                s,
                "\t\tiifname \"{}\" oifname {{ {} }} drop",
                n.bridge,
                others.join(", ")
            )
            .unwrap();
        }
    }
    // Into a bridge from elsewhere: answers, and connections to a published port; nothing
    // else (with ip_forward on, the host would otherwise route anyone's packets to any
    // container port).
    if !bridges.is_empty() {
        let set = bridges.join(", ");
        writeln!(
            s,
            "\t\toifname {{ {set} }} ct state established,related accept"
        )
        .unwrap();
        writeln!(s, "\t\toifname {{ {set} }} ct status dnat accept").unwrap();
        writeln!(s, "\t\toifname {{ {set} }} iifname != {{ {set} }} drop").unwrap();
    }
    writeln!(s, "\t}}").unwrap();
    writeln!(s, "}}").unwrap();
    s
}

/// The ruleset that removes the table (and nothing else).
pub fn removal() -> String {
    format!("table ip {TABLE}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_with_nat_ports_and_isolation() {
        let nets = [
            Net {
                bridge: "mdocker0".into(),
                subnet: "10.87.0.0/24".into(),
                internal: false,
            },
            Net {
                bridge: "mdbr-1a2b3c4d5e".into(),
                subnet: "10.87.1.0/24".into(),
                internal: true,
            },
        ];
        let published = [Published {
            binding: PortBinding {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 8080,
                container_port: 80,
                proto: "tcp".into(),
            },
            to: Ipv4Addr::new(10, 87, 0, 2),
        }];
        let r = ruleset(&nets, &published);
        assert!(r.starts_with("table ip mini_docker\ndelete table ip mini_docker\n"));
        assert!(r.contains("\t\tip daddr 127.0.0.1 tcp dport 8080 dnat to 10.87.0.2:80\n"));
        assert!(r.contains("\t\tip saddr 10.87.0.0/24 oifname != \"mdocker0\" masquerade\n"));
        // The internal network is never masqueraded, and is cut off both ways.
        assert!(!r.contains("ip saddr 10.87.1.0/24 oifname !="));
        assert!(r.contains("iifname \"mdbr-1a2b3c4d5e\" oifname != \"mdbr-1a2b3c4d5e\" drop"));
        assert!(r.contains("\t\tiifname \"mdocker0\" oifname { \"mdbr-1a2b3c4d5e\" } drop\n"));
        assert!(
            r.contains("iifname { \"mdocker0\", \"mdbr-1a2b3c4d5e\" } ip daddr 127.0.0.0/8 drop")
        );
        assert!(r.contains("oifname \"mdocker0\" ip saddr 10.87.0.0/24 ct status dnat masquerade"));
        assert!(r.contains("ct status dnat accept"));
        // Nothing outside the table.
        let outside = r
            .lines()
            .filter(|l| !l.starts_with('\t') && !l.starts_with('}'))
            .collect::<Vec<_>>();
        assert_eq!(
            outside,
            [
                "table ip mini_docker",
                "delete table ip mini_docker",
                "table ip mini_docker {"
            ]
        );
    }
}
