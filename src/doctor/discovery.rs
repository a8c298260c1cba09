//! Checks of discovery: the query as rendered, the record type and DNS
//! server, every address in the answer, and whether this node's own address
//! is among them. Also collects the peers to check (the answer and `--peers`,
//! own node excluded), through the reporter's own `Discovery`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Check, Identity, Section, list, poll};
use crate::address::{is_link_local, local_addresses};
use crate::discovery::{Discovery, Poll, PollError, RecordKind, Settings};
use crate::inspect::record_name;

pub struct DiscoveryCheck {
    pub section: Section,
    /// Sorted, own node excluded.
    pub peers: BTreeSet<String>,
}

pub async fn check(id: &Identity) -> DiscoveryCheck {
    let settings = &id.discovery;
    let mut checks = Vec::new();
    let mut peers = BTreeSet::new();
    if !settings.is_active() && id.discovery_known {
        checks.push(Check::skipped(
            "query",
            "nothing to discover: the node was booted with no --query (BEAMUP_QUERY, a platform \
             preset) and no --peers",
        ));
    } else if !settings.is_active() {
        checks.push(Check::failed(
            "query",
            "cannot tell what this node discovers: no node booted through beamup runs here and \
             no --query or --peers was given",
            "unknown discovery",
            "run doctor next to the node (`docker exec <container> beamup doctor`, with the \
             container's environment), or give the same --query / --peers as at boot",
        ));
    }
    if let Some(query) = &settings.query {
        peers.extend(dns(id, query, &mut checks).await);
    } else if settings.is_active() {
        checks.push(Check::skipped("query", "no --query: --peers only"));
    }
    if !settings.static_peers.is_empty() {
        // The static list through the same Discovery (no DNS: query None),
        // so the own node is left out exactly as the reporter does.
        let only_static = Settings {
            query: None,
            ..settings.clone()
        };
        let found = match Discovery::new(only_static) {
            Ok(d) => poll(&d).await.map(|p| p.peers).unwrap_or_default(),
            Err(_) => BTreeSet::new(),
        };
        checks.push(Check::ok(
            "peers",
            format!("--peers: {}", list(&settings.static_peers)),
        ));
        peers.extend(found);
    }
    DiscoveryCheck {
        section: Section {
            title: "discovery".to_string(),
            peer: None,
            checks,
        },
        peers,
    }
}

/// The query's checks; returns the peers the answer names.
async fn dns(id: &Identity, query: &str, checks: &mut Vec<Check>) -> BTreeSet<String> {
    let settings = &id.discovery;
    let record = record_name(settings.record);
    // The answer alone, without the static list.
    let dns_only = Settings {
        static_peers: Vec::new(),
        ..settings.clone()
    };
    let discovery = match Discovery::new(dns_only) {
        Ok(d) => d,
        Err(e) => {
            checks.push(Check::failed(
                "query",
                format!("`{query}` (--record {record}): {e:#}"),
                "no DNS resolver",
                "give --dns-server IP[:PORT] or fix /etc/resolv.conf",
            ));
            return BTreeSet::new();
        }
    };
    let servers = discovery.servers().unwrap_or("?");
    checks.push(Check::ok(
        "query",
        format!("`{query}` (--record {record}), asking {servers}"),
    ));
    let answer = match poll(&discovery).await {
        Ok(answer) => answer,
        Err(e) => {
            let mut failed = lookup_failed(&e, servers);
            // Through the search domains, an empty answer for the full name is
            // reported as the last candidate's error (NXDOMAIN, REFUSED): the
            // name may well have addresses of the other family.
            if let (Some(hint), Some(other)) = (&mut failed.hint, other_family(settings).await) {
                hint.push_str(&format!("; also: {}", no_address_hint(query, Some(other))));
            }
            checks.push(failed);
            checks.push(Check::skipped("own", "no answer"));
            return BTreeSet::new();
        }
    };
    let addresses = answer_addresses(&answer, id.address);
    if addresses.is_empty() {
        let other = other_family(settings).await;
        checks.push(Check::failed(
            "answer",
            format!("`{query}` returned no address for --record {record}"),
            "the query returned no address",
            no_address_hint(query, other),
        ));
        checks.push(Check::skipped("own", "no answer"));
        return answer.peers;
    }
    checks.push(Check::ok(
        "answer",
        match addresses.len() {
            1 => format!("1 address: {}", addresses[0]),
            n => format!("{n} addresses: {}", list(&addresses)),
        },
    ));
    checks.push(if answer.own_listed {
        Check::ok("own", format!("{} is in the answer", id.address))
    } else {
        Check::failed(
            "own",
            format!("{} (from {}) is not in the answer", id.address, id.source),
            "own address not in the answer",
            format!(
                "the query names another network or service than this node's address; this \
                 host's addresses: {}. Pick the one the query returns (--ip query, --ip \
                 interface:NAME, --ip cidr:NET/LEN) or fix --query",
                host_addresses()
            ),
        )
    });
    answer.peers
}

fn lookup_failed(e: &PollError, servers: &str) -> Check {
    match e {
        PollError::NxDomain { query } => Check::failed(
            "answer",
            format!("`{query}` does not exist (NXDOMAIN from {servers})"),
            "the query does not exist (NXDOMAIN)",
            "the name is wrong or not in this network's DNS: check --query (Swarm: \
             tasks.<service>; Kubernetes: the headless service <svc>.<ns>.svc.cluster.local; \
             Compose: the service name) and the search domains in /etc/resolv.conf",
        ),
        PollError::TooLarge { what, .. } => Check::failed(
            "answer",
            e.to_string(),
            "the answer is larger than beamup takes from one answer",
            format!(
                "check that --query names this service only (not a wildcard or a whole \
                 zone); if the service really is that large, raise {}",
                what.flag()
            ),
        ),
        PollError::Failed { .. } => Check::failed(
            "answer",
            e.to_string(),
            "the DNS lookup failed",
            "the DNS server gave no answer (timeout, SERVFAIL or REFUSED, which a server \
             answers for names outside its zones): check the name in --query, \
             /etc/resolv.conf, or give --dns-server IP[:PORT]",
        ),
    }
}

fn no_address_hint(query: &str, other: Option<(RecordKind, Vec<IpAddr>)>) -> String {
    match other {
        Some((kind, found)) => format!(
            "`{query}` has addresses for --record {} ({}), this node asks for the other \
             family: run every node on one family (--ip-family) or give --record {}",
            record_name(kind),
            list(&found),
            record_name(kind)
        ),
        None => format!(
            "`{query}` exists but lists no running task or pod: check that the service's \
             containers are up and in this network, and that --query names this service"
        ),
    }
}

/// An empty A (AAAA) answer: does the name have addresses of the other family?
async fn other_family(settings: &Settings) -> Option<(RecordKind, Vec<IpAddr>)> {
    let other = match settings.record {
        RecordKind::A => RecordKind::Aaaa,
        RecordKind::Aaaa => RecordKind::A,
        RecordKind::AAndAaaa | RecordKind::Srv => return None,
    };
    let probe = Settings {
        record: other,
        static_peers: Vec::new(),
        ..settings.clone()
    };
    let answer = poll(&Discovery::new(probe).ok()?).await.ok()?;
    let found = answer_addresses(&answer, settings.own_address);
    (!found.is_empty()).then_some((other, found))
}

/// Every address of a DNS-only poll: the peers' and the own one when listed.
fn answer_addresses(poll: &Poll, own: IpAddr) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = poll.peers.iter().filter_map(|n| address_of(n)).collect();
    if poll.own_listed {
        addresses.push(own);
    }
    addresses.sort();
    addresses
}

/// `demo@10.0.0.2` → 10.0.0.2 (discovered peers are always named after an address).
pub(super) fn address_of(node: &str) -> Option<IpAddr> {
    node.split_once('@')?.1.parse().ok()
}

/// `eth0 10.0.1.5, eth1 172.18.0.3`: where the query's answer could have
/// pointed, for the hint.
fn host_addresses() -> String {
    match local_addresses() {
        Ok(all) => list(
            all.iter()
                .filter(|a| a.up && !a.loopback && !is_link_local(a.address))
                .map(|a| format!("{} {}", a.interface, a.address)),
        ),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn lookup_failures_say_which() {
        let nx = lookup_failed(
            &PollError::NxDomain {
                query: "tasks.web".into(),
            },
            "127.0.0.11:53 (from /etc/resolv.conf)",
        );
        assert_eq!(nx.status, Status::Failed);
        assert_eq!(
            nx.detail,
            "`tasks.web` does not exist (NXDOMAIN from 127.0.0.11:53 (from /etc/resolv.conf))"
        );
        assert_eq!(
            nx.summary.as_deref(),
            Some("the query does not exist (NXDOMAIN)")
        );
        assert!(nx.hint.as_deref().unwrap_or("").contains("tasks.<service>"));
        let failed = lookup_failed(
            &PollError::Failed {
                query: "web".into(),
                reason: "no answer within 2s".into(),
            },
            "10.0.0.2:53",
        );
        assert_eq!(failed.summary.as_deref(), Some("the DNS lookup failed"));
        assert!(
            failed
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("--dns-server")
        );
    }

    #[test]
    fn empty_answers_point_at_the_other_family() {
        let v6: IpAddr = "fd00::5".parse().expect("ip");
        let hint = no_address_hint("web", Some((RecordKind::Aaaa, vec![v6])));
        assert!(
            hint.contains("`web` has addresses for --record aaaa (fd00::5)"),
            "{hint}"
        );
        let hint = no_address_hint("web", None);
        assert!(hint.contains("lists no running task or pod"), "{hint}");
    }

    #[test]
    fn peers_are_named_after_addresses() {
        assert_eq!(
            address_of("demo@fd00::1"),
            Some("fd00::1".parse().expect("ip"))
        );
        assert_eq!(address_of("demo@host.example"), None);
        assert_eq!(address_of("nohost"), None);
    }
}
