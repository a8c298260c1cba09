//! `interface:NAME`, `cidr:NET/LEN` and the interface guess at the end of
//! `auto`, all from getifaddrs(3) through nix.

use std::net::IpAddr;

use ipnet::IpNet;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

use super::{pick, unusable};
use crate::address::IpFamily;

/// One address on one interface.
#[derive(Debug, Clone)]
pub struct LocalAddress {
    pub interface: String,
    pub address: IpAddr,
    pub up: bool,
    pub loopback: bool,
}

/// Every address of every interface, in the kernel's order.
pub fn local_addresses() -> Result<Vec<LocalAddress>, String> {
    let addrs = getifaddrs().map_err(|e| format!("cannot list interfaces: {e}"))?;
    Ok(addrs
        .filter_map(|ifa| {
            let sa = ifa.address?;
            let address = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                return None;
            };
            Some(LocalAddress {
                interface: ifa.interface_name,
                address,
                up: ifa.flags.contains(InterfaceFlags::IFF_UP),
                loopback: ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            })
        })
        .collect())
}

pub fn by_name(name: &str, family: IpFamily) -> Result<IpAddr, String> {
    let all = local_addresses()?;
    let mine: Vec<&LocalAddress> = all.iter().filter(|a| a.interface == name).collect();
    if mine.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        for a in &all {
            if !names.contains(&a.interface.as_str()) {
                names.push(&a.interface);
            }
        }
        return Err(format!(
            "no interface named {name} with an address (interfaces here: {})",
            names.join(", ")
        ));
    }
    let candidates: Vec<IpAddr> = mine.iter().map(|a| a.address).collect();
    pick(&candidates, family).ok_or_else(|| {
        format!(
            "{name} has no global address{} (it has {})",
            family_note(family),
            list(&candidates)
        )
    })
}

pub fn in_network(net: &IpNet, family: IpFamily) -> Result<IpAddr, String> {
    let all = local_addresses()?;
    let inside: Vec<IpAddr> = all
        .iter()
        .map(|a| a.address)
        .filter(|a| net.contains(a))
        .collect();
    if inside.is_empty() {
        return Err(format!(
            "no local address inside {net} (addresses here: {})",
            list(&all.iter().map(|a| a.address).collect::<Vec<_>>())
        ));
    }
    // Inside the user's own network, loopback is what they asked for (cidr:127.0.0.0/8).
    inside
        .iter()
        .copied()
        .find(|a| unusable(*a, family, true).is_none())
        .ok_or_else(|| {
            format!(
                "the addresses inside {net} ({}) are not usable{}",
                list(&inside),
                family_note(family)
            )
        })
}

/// Names of interfaces the guess skips: container bridges and veth ends are
/// the host side of other containers' networks, never this node's own.
fn is_host_side(name: &str) -> bool {
    name.starts_with("docker")
        || name.starts_with("br-")
        || name.starts_with("veth")
        || name.starts_with("virbr")
        || name.starts_with("cni")
}

pub fn any(family: IpFamily) -> Result<IpAddr, String> {
    let all = local_addresses()?;
    let candidates: Vec<IpAddr> = all
        .iter()
        .filter(|a| a.up && !a.loopback && !is_host_side(&a.interface))
        .map(|a| a.address)
        .collect();
    pick(&candidates, family).ok_or_else(|| {
        format!(
            "no interface that is up has a global address{} (addresses here: {})",
            family_note(family),
            list(&all.iter().map(|a| a.address).collect::<Vec<_>>())
        )
    })
}

fn family_note(family: IpFamily) -> &'static str {
    match family {
        IpFamily::Any => "",
        IpFamily::V4 => " of family v4",
        IpFamily::V6 => " of family v6",
    }
}

fn list(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_interface_has_no_global_address() {
        let e = by_name("lo", IpFamily::Any).unwrap_err();
        assert!(e.contains("lo has no global address"), "{e}");
        let e = by_name("nosuch0", IpFamily::Any).unwrap_err();
        assert!(e.contains("no interface named nosuch0"), "{e}");
        assert!(e.contains("lo"), "{e}");
    }

    #[test]
    fn cidr_finds_loopback_when_asked() {
        let net: IpNet = "127.0.0.0/8".parse().unwrap();
        assert_eq!(
            in_network(&net, IpFamily::Any).unwrap().to_string(),
            "127.0.0.1"
        );
        // A documentation network this machine has no address in.
        let local = local_addresses().unwrap();
        let net: IpNet = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
            .iter()
            .map(|n| n.parse::<IpNet>().unwrap())
            .find(|n| !local.iter().any(|a| n.contains(&a.address)))
            .expect("one documentation network unused here");
        let e = in_network(&net, IpFamily::Any).unwrap_err();
        assert!(e.contains(&format!("no local address inside {net}")), "{e}");
    }

    #[test]
    fn host_side_interfaces() {
        for n in ["docker0", "br-1234", "veth9a"] {
            assert!(is_host_side(n));
        }
        for n in ["eth0", "ens3", "bu1h0"] {
            assert!(!is_host_side(n));
        }
    }
}
