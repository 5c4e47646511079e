//! IP address management, pure: subnets, the next free address, the MAC address docker
//! derives from an address, and choosing a subnet that collides with nothing on the host.
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet: `10.87.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// Its first address (host bits zero).
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` is in it.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The broadcast address: every host bit set.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The first usable address, which a network's gateway gets by default (docker's
    /// `.1`).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The usable addresses: all but the subnet's own and its broadcast.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.addr) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    /// `A.B.C.D/N`, host bits zero, as docker's `--subnet` (it refuses `10.0.0.1/24`
    /// too: "invalid subnet").
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| format!("invalid CIDR address: {s} (a prefix of 0 to 30)"))?;
        let subnet = Subnet { addr, prefix };
        if u32::from(addr) & !subnet.mask() != 0 {
            return Err(format!(
                "invalid subnet {s}: it has host bits set (the subnet is {}/{prefix})",
                Ipv4Addr::from(u32::from(addr) & subnet.mask())
            ));
        }
        Ok(subnet)
    }
}

/// The MAC address docker gives an endpoint: `02:42` (a locally administered, unicast
/// prefix) followed by the four bytes of its IPv4 address, so no two containers on a
/// host share one.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `02:42:0a:57:00:02`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The next address to give out: `wanted` if it is free (`--ip`), else the lowest free
/// one. The gateway and the addresses in `used` are taken.
pub fn allocate(
    subnet: &Subnet,
    gateway: Ipv4Addr,
    used: &[Ipv4Addr],
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, String> {
    // exercise(ch07.allocate): `wanted` if it is in the subnet and free, else the lowest free host address (not the gateway, not used)
    let free = |ip: &Ipv4Addr| *ip != gateway && !used.contains(ip);
    match wanted {
        Some(ip) if !subnet.hosts().any(|h| h == ip) => Err(format!(
            "no available IPv4 addresses on this network's address pools: {ip} is not in {subnet}"
        )),
        Some(ip) if !free(&ip) => Err(format!("Address already in use: {ip}")),
        Some(ip) => Ok(ip),
        None => subnet.hosts().find(free).ok_or_else(|| {
            format!("no available IPv4 addresses on this network's address pools: {subnet}")
        }),
    }
    // end exercise
}

/// The IPv4 routes of the caller's namespace, read from `/proc/net/route`'s text: one
/// subnet per route, the default route excluded (it overlaps everything).
pub fn routes(proc_net_route: &str) -> Vec<Subnet> {
    // exercise(ch07.routes): one Subnet per line after the header, from the Destination and Mask columns (little-endian hex); skip the default route (mask 0)
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...: little-endian hex.
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            (mask != 0).then(|| Subnet {
                addr: Ipv4Addr::from(dest & mask),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
    // end exercise
}

/// Where networks take their subnets from: `10.87.N.0/24`, N from 0. Docker's own
/// `172.17.0.0/16` (and the `172.18+` it gives user networks) stay free, so mini-docker
/// and docker can run side by side.
pub fn pool() -> impl Iterator<Item = Subnet> {
    (0..=255u8).map(|n| Subnet {
        addr: Ipv4Addr::new(10, 87, n, 0),
        prefix: 24,
    })
}

/// The first subnet of the [`pool`] that overlaps neither a route of the host nor
/// another network.
pub fn choose(taken: &[Subnet]) -> Option<Subnet> {
    pool().find(|s| !taken.iter().any(|t| t.overlaps(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_as_dockers_subnet_flag() {
        let s: Subnet = "10.87.0.0/24".parse().unwrap();
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 87, 0, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 87, 0, 1));
        assert_eq!(s.hosts().count(), 254);
        assert!(s.contains(Ipv4Addr::new(10, 87, 0, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 87, 1, 0)));
        for bad in ["10.87.0.0", "10.87.0.1/24", "10.87.0.0/31", "x/24"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
        let wide: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(wide.overlaps(&s) && s.overlaps(&wide));
    }

    #[test]
    fn addresses_are_given_lowest_first_and_never_twice() {
        let s: Subnet = "10.87.0.0/29".parse().unwrap();
        let gw = s.first_host();
        let mut used = Vec::new();
        for want in [2, 3, 4, 5, 6] {
            let ip = allocate(&s, gw, &used, None).unwrap();
            assert_eq!(ip, Ipv4Addr::new(10, 87, 0, want));
            used.push(ip);
        }
        assert!(
            allocate(&s, gw, &used, None)
                .unwrap_err()
                .contains("no available")
        );
        // A released address is the next one given.
        used.retain(|ip| *ip != Ipv4Addr::new(10, 87, 0, 3));
        assert_eq!(
            allocate(&s, gw, &used, None).unwrap(),
            Ipv4Addr::new(10, 87, 0, 3)
        );
        // --ip: free, taken, outside.
        let free = allocate(&s, gw, &[], Some(Ipv4Addr::new(10, 87, 0, 6))).unwrap();
        assert_eq!(free, Ipv4Addr::new(10, 87, 0, 6));
        assert!(
            allocate(&s, gw, &[], Some(gw))
                .unwrap_err()
                .contains("in use")
        );
        assert!(
            allocate(&s, gw, &[], Some(Ipv4Addr::new(10, 88, 0, 2)))
                .unwrap_err()
                .contains("not in")
        );
    }

    #[test]
    fn a_bip_gives_the_bridge_address_and_its_subnet() {
        let (subnet, gw) = crate::network::parse_bip("10.200.0.1/24").unwrap();
        assert_eq!(subnet.to_string(), "10.200.0.0/24");
        assert_eq!(gw, Ipv4Addr::new(10, 200, 0, 1));
        for bad in ["10.200.0.1", "10.200.0.1/4", "x/24"] {
            assert!(crate::network::parse_bip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_addresses_carry_the_ip_as_dockers_do() {
        let mac = mac_of(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac_text(&mac), "02:42:ac:11:00:02");
    }

    #[test]
    fn the_routing_table_rules_out_subnets() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
wg0\t0000570A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = routes(table);
        assert_eq!(
            r,
            [
                "192.0.2.0/24".parse::<Subnet>().unwrap(),
                "10.87.0.0/16".parse().unwrap()
            ]
        );
        // 10.87.0.0/16 is routed elsewhere: the whole pool collides.
        assert_eq!(choose(&r), None);
        let r = routes(&table.replace("0000FFFF", "00FFFFFF"));
        assert_eq!(choose(&r), Some("10.87.1.0/24".parse().unwrap()));
    }
}
