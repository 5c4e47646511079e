//! Published ports: docker's `-p` syntax, pure.
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One published port: a host address and port forwarded to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// The host address it listens on (`0.0.0.0`: all of them).
    pub host_ip: Ipv4Addr,
    /// The host port; 0 until a free one is chosen (`-p 80`, `-P`).
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

impl fmt::Display for PortBinding {
    /// As `docker port` prints it: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port, self.proto, self.host_ip, self.host_port
        )
    }
}

fn port(s: &str, what: &str, spec: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid {what} port: {s:?} in {spec:?}"))
}

/// A port or a range: `80`, `8000-8003`.
fn range(s: &str, what: &str, spec: &str) -> Result<Vec<u16>, String> {
    match s.split_once('-') {
        None => Ok(vec![port(s, what, spec)?]),
        Some((a, b)) => {
            let (a, b) = (port(a, what, spec)?, port(b, what, spec)?);
            if b < a {
                return Err(format!("invalid {what} port range: {s:?} in {spec:?}"));
            }
            Ok((a..=b).collect())
        }
    }
}

/// Parses one `-p`: `[ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]`; an empty or
/// missing host port is chosen later. Ranges must be the same length, as docker's.
pub fn parse(spec: &str) -> Result<Vec<PortBinding>, String> {
    // exercise(ch07.ports): [IP:][HOST:]CONTAINER[/PROTO], ports or ranges (range()), one binding per container port; host port 0 means "choose one"
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p @ ("tcp" | "udp"))) => (r, p),
        Some((_, p)) => return Err(format!("invalid proto: {p}")),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err(format!("invalid port format: {spec:?}")),
    };
    let host_ip: Ipv4Addr = if ip.is_empty() {
        Ipv4Addr::UNSPECIFIED
    } else {
        ip.parse()
            .map_err(|_| format!("invalid IP address: {ip}"))?
    };
    let containers = range(container, "container", spec)?;
    let hosts = if host.is_empty() {
        vec![0; containers.len()]
    } else {
        range(host, "host", spec)?
    };
    if hosts.len() != containers.len() && !(hosts.len() > 1 && containers.len() == 1) {
        return Err(format!(
            "invalid ranges specified for container and host ports: {spec:?}"
        ));
    }
    if hosts.len() > 1 && containers.len() == 1 {
        // docker: `-p 8000-8010:80` takes the first free port of the range; the range
        // here narrows to its first port.
        return Ok(vec![PortBinding {
            host_ip,
            host_port: hosts[0],
            container_port: containers[0],
            proto: proto.into(),
        }]);
    }
    Ok(hosts
        .into_iter()
        .zip(containers)
        .map(|(h, c)| PortBinding {
            host_ip,
            host_port: h,
            container_port: c,
            proto: proto.into(),
        })
        .collect())
    // end exercise
}

/// `EXPOSE`d ports (`80/tcp`) as bindings to ports chosen later (`-P`).
pub fn exposed(ports: &[String]) -> Result<Vec<PortBinding>, String> {
    let mut out = Vec::new();
    for p in ports {
        out.extend(parse(p)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: [u8; 4], h: u16, c: u16, proto: &str) -> PortBinding {
        PortBinding {
            host_ip: Ipv4Addr::from(ip),
            host_port: h,
            container_port: c,
            proto: proto.into(),
        }
    }

    #[test]
    fn dockers_publish_forms() {
        let table: &[(&str, Vec<PortBinding>)] = &[
            ("80", vec![b([0; 4], 0, 80, "tcp")]),
            ("8080:80", vec![b([0; 4], 8080, 80, "tcp")]),
            (
                "127.0.0.1:8080:80",
                vec![b([127, 0, 0, 1], 8080, 80, "tcp")],
            ),
            ("127.0.0.1::80", vec![b([127, 0, 0, 1], 0, 80, "tcp")]),
            ("53:53/udp", vec![b([0; 4], 53, 53, "udp")]),
            (
                "8000-8001:80-81",
                vec![b([0; 4], 8000, 80, "tcp"), b([0; 4], 8001, 81, "tcp")],
            ),
        ];
        for (spec, want) in table {
            assert_eq!(&parse(spec).unwrap(), want, "{spec}");
        }
        for bad in [
            "80/sctp?",
            "x:80",
            "1.2.3:8080:80",
            "8000-8002:80-81",
            "0:80",
            "a:b:c:d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            b([0; 4], 8080, 80, "tcp").to_string(),
            "80/tcp -> 0.0.0.0:8080"
        );
    }
}
