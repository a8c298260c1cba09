//! DNS discovery: one lookup of A, AAAA, A+AAAA or SRV records per poll,
//! each poll through a resolver of its own (see [`Dns::lookup`]), every
//! answer counted against the caps before a name is built from it.

use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::task::JoinSet;

use super::{Capped, PollError, RecordKind};
use crate::resolver::{self, Hosts};

/// How much one answer may hold (`--max-srv-targets`, `--max-peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Distinct SRV targets in one SRV answer.
    pub srv_targets: usize,
    /// Addresses in one answer: A and AAAA together, or every SRV target's.
    pub addresses: usize,
}

/// The resolver configuration and a description of where it asks, for
/// error messages.
pub struct Dns {
    /// Read once (resolv.conf or `--dns-server`); each poll builds its
    /// resolver from it.
    configured: resolver::Configured,
    deadline: Duration,
    caps: Caps,
}

/// Outcome of one record-type lookup, before the kinds are combined.
#[derive(Debug)]
enum Answer {
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// More than a cap: nothing of the answer was kept. `count` is what was
    /// counted before stopping (SRV targets' addresses stop being counted
    /// once over the cap), so the answer held at least that many.
    TooLarge {
        what: Capped,
        count: usize,
    },
}

impl Dns {
    /// Discovery's resolver configuration: /etc/hosts ignored (peers come
    /// from DNS only).
    pub fn build(
        resolv_conf: &Path,
        dns_server: Option<SocketAddr>,
        timeout: Duration,
        attempts: usize,
        caps: Caps,
    ) -> Result<(Dns, Option<String>), NetError> {
        let configured =
            resolver::configure(resolv_conf, dns_server, timeout, attempts, Hosts::Ignore);
        // Built once here so a configuration hickory rejects fails at once,
        // not at every poll.
        drop(configured.resolver()?);
        // hickory retries per name and per search domain; one poll must still
        // end within timeout × attempts, whatever the search list holds.
        let deadline = timeout.saturating_mul(u32::try_from(attempts.max(1)).unwrap_or(u32::MAX));
        let warning = configured.warning.clone();
        let dns = Dns {
            configured,
            deadline,
            caps,
        };
        Ok((dns, warning))
    }

    /// Where this resolver asks, for messages.
    pub fn servers(&self) -> &str {
        &self.configured.servers
    }

    /// The addresses behind `query` for `kind`. For SRV, the targets'
    /// addresses of `target_family` (the port is ignored: Erlang
    /// distribution finds the port through epmd).
    ///
    /// Each call builds a resolver of its own and drops it at the end, so
    /// every poll opens its own sockets: a TCP connection kept across polls
    /// is answered by dnsmasq from a child forked when it opened, with the
    /// records of that moment, and dnsmasq even puts off re-reading its
    /// files while such a connection is open (issue 16). Answers too large
    /// for UDP (~100 A records) come over TCP, so they need this as much as
    /// the cache being off (`resolver::configure`).
    pub async fn lookup(
        &self,
        query: &str,
        kind: RecordKind,
        target_family: RecordType,
    ) -> Result<Vec<IpAddr>, PollError> {
        let caps = self.caps;
        let lookup = async {
            let resolver = self.configured.resolver()?;
            match kind {
                RecordKind::A => addresses(&resolver, query, RecordType::A, caps.addresses).await,
                RecordKind::Aaaa => {
                    addresses(&resolver, query, RecordType::AAAA, caps.addresses).await
                }
                RecordKind::AAndAaaa => {
                    let (v4, v6) = tokio::join!(
                        addresses(&resolver, query, RecordType::A, caps.addresses),
                        addresses(&resolver, query, RecordType::AAAA, caps.addresses)
                    );
                    Ok(combine(v4?, v6?, caps.addresses))
                }
                RecordKind::Srv => srv(&resolver, query, target_family, caps).await,
            }
        };
        let answer = tokio::time::timeout(self.deadline, lookup)
            .await
            .map_err(|_| self.failed(query, format!("no answer within {:?}", self.deadline)))?
            .map_err(|e| self.failed(query, e.to_string()))?;
        match answer {
            Answer::Addresses(addresses) => Ok(addresses),
            Answer::NxDomain => Err(PollError::NxDomain {
                query: query.to_string(),
            }),
            Answer::TooLarge { what, count } => Err(PollError::TooLarge {
                query: query.to_string(),
                what,
                count,
                cap: match what {
                    Capped::SrvTargets => caps.srv_targets,
                    Capped::Addresses => caps.addresses,
                },
            }),
        }
    }

    fn failed(&self, query: &str, reason: String) -> PollError {
        PollError::Failed {
            query: query.to_string(),
            // hickory's errors may quote what the server answered.
            reason: format!(
                "{} (asking {})",
                crate::untrusted::shown(&reason),
                self.servers()
            ),
        }
    }
}

/// One A or AAAA lookup (through the search domains), at most `cap`
/// addresses.
async fn addresses(
    resolver: &TokioResolver,
    name: &str,
    record_type: RecordType,
    cap: usize,
) -> Result<Answer, NetError> {
    let name = Name::from_str_relaxed(name)?;
    lookup_addresses(resolver, name, record_type, cap).await
}

/// The addresses of `record_type` in `records`, or how many there are when
/// that is more than `cap`: counted before anything is collected, so an
/// answer over the cap costs no allocation beyond hickory's own message.
/// CNAMEs on the way are kept in an answer: only the addresses count.
pub fn addresses_within(
    records: &[Record],
    record_type: RecordType,
    cap: usize,
) -> Result<Vec<IpAddr>, usize> {
    let of_type = || {
        records
            .iter()
            .filter(move |r| r.record_type() == record_type)
    };
    let count = of_type().count();
    if count > cap {
        return Err(count);
    }
    Ok(of_type().filter_map(|r| r.data.ip_addr()).collect())
}

/// The distinct SRV targets in `records`, sorted, or how many there are
/// when that is more than `cap` (counted over borrowed names: no target is
/// copied before the count is known). A target of "." means "no service
/// here" (RFC 2782) and is not one.
pub fn srv_targets_within(records: &[Record], cap: usize) -> Result<Vec<Name>, usize> {
    let mut targets: Vec<&Name> = records
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) if !srv.target.is_root() => Some(&srv.target),
            _ => None,
        })
        .collect();
    targets.sort();
    targets.dedup();
    if targets.len() > cap {
        return Err(targets.len());
    }
    Ok(targets.into_iter().cloned().collect())
}

/// An SRV lookup: the targets (at most `caps.srv_targets`, counted before
/// any is resolved), then their addresses of `family` (at most
/// `caps.addresses` in all; the lookups stop once over it).
async fn srv(
    resolver: &TokioResolver,
    query: &str,
    family: RecordType,
    caps: Caps,
) -> Result<Answer, NetError> {
    let name = Name::from_str_relaxed(query)?;
    let lookup = match resolver.srv_lookup(name).await {
        Ok(lookup) => lookup,
        Err(e) if e.is_nx_domain() => return Ok(Answer::NxDomain),
        Err(e) if e.is_no_records_found() => return Ok(Answer::Addresses(Vec::new())),
        Err(e) => return Err(e),
    };
    let targets = match srv_targets_within(lookup.answers(), caps.srv_targets) {
        Ok(targets) => targets,
        Err(count) => {
            return Ok(Answer::TooLarge {
                what: Capped::SrvTargets,
                count,
            });
        }
    };

    // Servers usually send the targets' addresses along in the
    // additional section; only the others cost a lookup each.
    let mut addresses = Vec::new();
    let mut missing = Vec::new();
    let over = |count: usize| Answer::TooLarge {
        what: Capped::Addresses,
        count,
    };
    for target in targets {
        let known = lookup
            .additionals()
            .iter()
            .filter(|r| r.record_type() == family && r.name == target);
        let before = addresses.len();
        for record in known {
            if addresses.len() >= caps.addresses {
                return Ok(over(addresses.len() + 1));
            }
            addresses.extend(record.data.ip_addr());
        }
        if addresses.len() == before {
            missing.push(target);
        }
    }
    drop(lookup);
    let cap = caps.addresses;
    let stopped = bounded(
        missing,
        SRV_LOOKUPS_AT_ONCE,
        |target| {
            let resolver = resolver.clone();
            async move { lookup_addresses(&resolver, target, family, cap).await }
        },
        |joined| {
            let answer = match joined {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => return ControlFlow::Break(Err(e)),
                Err(e) => {
                    return ControlFlow::Break(Err(NetError::Msg(format!(
                        "SRV target lookup: {e}"
                    ))));
                }
            };
            match answer {
                Answer::Addresses(found) if addresses.len() + found.len() > cap => {
                    ControlFlow::Break(Ok(over(addresses.len() + found.len())))
                }
                Answer::Addresses(found) => {
                    addresses.extend(found);
                    ControlFlow::Continue(())
                }
                // A target that vanished between the SRV answer and its own
                // lookup (a pod going away) is simply not a peer.
                Answer::NxDomain => ControlFlow::Continue(()),
                Answer::TooLarge { what, count } => ControlFlow::Break(Ok(Answer::TooLarge {
                    what,
                    count: addresses.len() + count,
                })),
            }
        },
    )
    .await;
    match stopped {
        Some(result) => result,
        None => Ok(Answer::Addresses(addresses)),
    }
}

/// How many SRV target lookups run at once: an answer may name hundreds of
/// targets, and each lookup holds a socket; the poll's deadline still bounds
/// the whole.
pub const SRV_LOOKUPS_AT_ONCE: usize = 16;

/// Runs `task` over `items`, at most `limit` at a time, handing each output
/// to `done` as it completes; stops at the first `Break` (the tasks still
/// running are aborted) and returns its value.
async fn bounded<T, F, Fut, B>(
    items: Vec<T>,
    limit: usize,
    mut task: F,
    mut done: impl FnMut(Result<Fut::Output, tokio::task::JoinError>) -> ControlFlow<B>,
) -> Option<B>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    // Dropping the set aborts what still runs.
    let mut running = JoinSet::new();
    for item in items {
        if running.len() >= limit.max(1)
            && let Some(joined) = running.join_next().await
            && let ControlFlow::Break(b) = done(joined)
        {
            return Some(b);
        }
        running.spawn(task(item));
    }
    while let Some(joined) = running.join_next().await {
        if let ControlFlow::Break(b) = done(joined) {
            return Some(b);
        }
    }
    None
}

/// One address lookup of `name`, at most `cap` addresses. NXDOMAIN is its
/// own answer; "the name exists but has no such records" (NODATA) is a
/// successful, empty answer.
async fn lookup_addresses(
    resolver: &TokioResolver,
    name: Name,
    record_type: RecordType,
    cap: usize,
) -> Result<Answer, NetError> {
    let lookup = match resolver.lookup(name, record_type).await {
        Ok(lookup) => lookup,
        Err(e) if e.is_nx_domain() => return Ok(Answer::NxDomain),
        Err(e) if e.is_no_records_found() => return Ok(Answer::Addresses(Vec::new())),
        Err(e) => return Err(e),
    };
    Ok(match addresses_within(lookup.answers(), record_type, cap) {
        Ok(addresses) => Answer::Addresses(addresses),
        Err(count) => Answer::TooLarge {
            what: Capped::Addresses,
            count,
        },
    })
}

/// A+AAAA: NXDOMAIN only when neither family has an address; over the cap
/// when either is, or both together are.
fn combine(v4: Answer, v6: Answer, cap: usize) -> Answer {
    match (v4, v6) {
        (over @ Answer::TooLarge { .. }, _) | (_, over @ Answer::TooLarge { .. }) => over,
        (Answer::NxDomain, Answer::NxDomain) => Answer::NxDomain,
        (Answer::Addresses(a), Answer::Addresses(b)) if a.len() + b.len() > cap => {
            Answer::TooLarge {
                what: Capped::Addresses,
                count: a.len() + b.len(),
            }
        }
        (Answer::Addresses(mut a), Answer::Addresses(b)) => {
            a.extend(b);
            Answer::Addresses(a)
        }
        (Answer::Addresses(a), Answer::NxDomain) | (Answer::NxDomain, Answer::Addresses(a)) => {
            if a.is_empty() {
                Answer::NxDomain
            } else {
                Answer::Addresses(a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_families() {
        let v4: IpAddr = "10.0.0.1".parse().expect("ip");
        let v6: IpAddr = "fd00::1".parse().expect("ip");
        let some = |ips: &[IpAddr]| Answer::Addresses(ips.to_vec());
        // (A answer, AAAA answer, expected: None = NXDOMAIN)
        let table: Vec<(Answer, Answer, Option<Vec<IpAddr>>)> = vec![
            (Answer::NxDomain, Answer::NxDomain, None),
            (some(&[v4]), some(&[v6]), Some(vec![v4, v6])),
            (some(&[v4]), Answer::NxDomain, Some(vec![v4])),
            (Answer::NxDomain, some(&[v6]), Some(vec![v6])),
            (some(&[]), some(&[]), Some(vec![])),
            (some(&[]), Answer::NxDomain, None),
        ];
        for (a, b, want) in table {
            let got = match combine(a, b, 2) {
                Answer::Addresses(ips) => Some(ips),
                Answer::NxDomain => None,
                over => panic!("{over:?}"),
            };
            assert_eq!(got, want);
        }
        // Each family within the cap, both together over it.
        let over = combine(some(&[v4, v4]), some(&[v6]), 2);
        assert!(
            matches!(
                over,
                Answer::TooLarge {
                    what: Capped::Addresses,
                    count: 3
                }
            ),
            "{over:?}"
        );
        let too_large = || Answer::TooLarge {
            what: Capped::Addresses,
            count: 5,
        };
        for (a, b) in [(too_large(), some(&[v6])), (Answer::NxDomain, too_large())] {
            assert!(matches!(
                combine(a, b, 2),
                Answer::TooLarge { count: 5, .. }
            ));
        }
    }

    fn a(name: &str, ip: &str) -> Record {
        let ip: std::net::Ipv4Addr = ip.parse().expect("ip");
        Record::from_rdata(
            Name::from_ascii(name).expect("name"),
            0,
            RData::A(ip.into()),
        )
    }

    fn srv(name: &str, target: &str) -> Record {
        use hickory_resolver::proto::rr::rdata::SRV;
        Record::from_rdata(
            Name::from_ascii(name).expect("name"),
            0,
            RData::SRV(SRV::new(
                0,
                0,
                4369,
                Name::from_ascii(target).expect("target"),
            )),
        )
    }

    #[test]
    fn answers_are_counted_against_the_cap() {
        let cname = Record::from_rdata(
            Name::from_ascii("web.test.").expect("name"),
            0,
            RData::CNAME(hickory_resolver::proto::rr::rdata::CNAME(
                Name::from_ascii("real.test.").expect("name"),
            )),
        );
        let records = vec![
            cname,
            a("real.test.", "10.0.0.1"),
            a("real.test.", "10.0.0.2"),
            a("real.test.", "10.0.0.3"),
        ];
        // (cap, expected: Ok(number of addresses) or Err(count))
        let table: [(usize, Result<usize, usize>); 4] =
            [(3, Ok(3)), (4, Ok(3)), (2, Err(3)), (0, Err(3))];
        for (cap, want) in table {
            let got = addresses_within(&records, RecordType::A, cap).map(|a| a.len());
            assert_eq!(got, want, "cap {cap}");
        }
        assert_eq!(addresses_within(&records, RecordType::AAAA, 0), Ok(vec![]));

        // SRV: distinct targets count, "." is no target.
        let records = vec![
            srv("_e._tcp.test.", "b.test."),
            srv("_e._tcp.test.", "a.test."),
            srv("_e._tcp.test.", "b.test."),
            srv("_e._tcp.test.", "."),
            a("a.test.", "10.0.0.1"),
        ];
        let names = |v: Vec<Name>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            srv_targets_within(&records, 2).map(names),
            Ok(vec!["a.test.".to_string(), "b.test.".to_string()])
        );
        assert_eq!(srv_targets_within(&records, 1).map(names), Err(2));
    }

    #[test]
    fn srv_target_lookups_are_bounded() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let task = |i: u32| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i
            }
        };
        let mut got = Vec::new();
        let stopped: Option<()> = runtime.block_on(bounded((0..100).collect(), 16, task, |r| {
            got.push(r.expect("joined"));
            ControlFlow::Continue(())
        }));
        assert_eq!(stopped, None);
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 16);

        // A Break stops it: no task is started after it.
        let started = Arc::new(AtomicUsize::new(0));
        let mut seen = 0;
        let stopped = runtime.block_on(bounded(
            (0..100).collect(),
            4,
            |i: u32| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    i
                }
            },
            |r| {
                r.expect("joined");
                seen += 1;
                if seen == 10 {
                    ControlFlow::Break("enough")
                } else {
                    ControlFlow::Continue(())
                }
            },
        ));
        assert_eq!(stopped, Some("enough"));
        assert!(started.load(Ordering::SeqCst) <= 14, "{started:?}");
    }
}
