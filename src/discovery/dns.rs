//! DNS discovery: one lookup of A, AAAA, A+AAAA or SRV records per poll,
//! through the resolver `crate::resolver` builds once.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::task::JoinSet;

use super::{PollError, RecordKind};
use crate::resolver::{self, Hosts};

/// The resolver and a description of where it asks, for error messages.
pub struct Dns {
    resolver: TokioResolver,
    /// e.g. `127.0.0.1:53 (from /etc/resolv.conf)`.
    servers: String,
    deadline: Duration,
}

/// Outcome of one record-type lookup, before the kinds are combined.
enum Answer {
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
}

impl Dns {
    /// Discovery's resolver: /etc/hosts ignored (peers come from DNS only).
    pub fn build(
        resolv_conf: &Path,
        dns_server: Option<SocketAddr>,
        timeout: Duration,
        attempts: usize,
    ) -> Result<(Dns, Option<String>), NetError> {
        let built = resolver::build(resolv_conf, dns_server, timeout, attempts, Hosts::Ignore)?;
        // hickory retries per name and per search domain; one poll must still
        // end within timeout × attempts, whatever the search list holds.
        let deadline = timeout.saturating_mul(u32::try_from(attempts.max(1)).unwrap_or(u32::MAX));
        let dns = Dns {
            resolver: built.resolver,
            servers: built.servers,
            deadline,
        };
        Ok((dns, built.warning))
    }

    /// Where this resolver asks, for messages.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// The addresses behind `query` for `kind`. For SRV, the targets'
    /// addresses of `target_family` (the port is ignored: Erlang
    /// distribution finds the port through epmd).
    pub async fn lookup(
        &self,
        query: &str,
        kind: RecordKind,
        target_family: RecordType,
    ) -> Result<Vec<IpAddr>, PollError> {
        let lookup = async {
            match kind {
                RecordKind::A => self.addresses(query, RecordType::A).await,
                RecordKind::Aaaa => self.addresses(query, RecordType::AAAA).await,
                RecordKind::AAndAaaa => {
                    let (v4, v6) = tokio::join!(
                        self.addresses(query, RecordType::A),
                        self.addresses(query, RecordType::AAAA)
                    );
                    combine(v4?, v6?)
                }
                RecordKind::Srv => self.srv(query, target_family).await,
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
        }
    }

    fn failed(&self, query: &str, reason: String) -> PollError {
        PollError::Failed {
            query: query.to_string(),
            reason: format!("{reason} (asking {})", self.servers),
        }
    }

    /// One A or AAAA lookup (through the search domains).
    async fn addresses(&self, name: &str, record_type: RecordType) -> Result<Answer, NetError> {
        let name = Name::from_str_relaxed(name)?;
        classify(lookup_addresses(&self.resolver, name, record_type).await)
    }

    async fn srv(&self, query: &str, family: RecordType) -> Result<Answer, NetError> {
        let name = Name::from_str_relaxed(query)?;
        let lookup = match self.resolver.srv_lookup(name).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() => return Ok(Answer::NxDomain),
            Err(e) if e.is_no_records_found() => return Ok(Answer::Addresses(Vec::new())),
            Err(e) => return Err(e),
        };
        let mut targets: Vec<Name> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                // A target of "." means "no service here" (RFC 2782).
                RData::SRV(srv) if !srv.target.is_root() => Some(srv.target.clone()),
                _ => None,
            })
            .collect();
        targets.sort();
        targets.dedup();

        // Servers usually send the targets' addresses along in the
        // additional section; only the others cost a lookup each.
        let mut addresses = Vec::new();
        let mut missing = Vec::new();
        for target in targets {
            let known: Vec<IpAddr> = lookup
                .additionals()
                .iter()
                .filter(|r| r.record_type() == family && r.name == target)
                .filter_map(|r| r.data.ip_addr())
                .collect();
            if known.is_empty() {
                missing.push(target);
            } else {
                addresses.extend(known);
            }
        }
        let resolver = &self.resolver;
        let results = bounded(missing, SRV_LOOKUPS_AT_ONCE, |target| {
            let resolver = resolver.clone();
            async move { lookup_addresses(&resolver, target, family).await }
        })
        .await;
        for joined in results {
            let result = joined.map_err(|e| NetError::Msg(format!("SRV target lookup: {e}")))?;
            match classify(result)? {
                Answer::Addresses(found) => addresses.extend(found),
                // A target that vanished between the SRV answer and its own
                // lookup (a pod going away) is simply not a peer.
                Answer::NxDomain => {}
            }
        }
        Ok(Answer::Addresses(addresses))
    }
}

/// How many SRV target lookups run at once: an answer may name hundreds of
/// targets, and each lookup holds a socket; the poll's deadline still bounds
/// the whole.
pub const SRV_LOOKUPS_AT_ONCE: usize = 16;

/// Runs `task` over `items`, at most `limit` at a time; the outputs in
/// completion order.
async fn bounded<T, F, Fut>(
    items: Vec<T>,
    limit: usize,
    mut task: F,
) -> Vec<Result<Fut::Output, tokio::task::JoinError>>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let mut running = JoinSet::new();
    let mut done = Vec::with_capacity(items.len());
    for item in items {
        if running.len() >= limit.max(1) {
            done.extend(running.join_next().await);
        }
        running.spawn(task(item));
    }
    while let Some(joined) = running.join_next().await {
        done.push(joined);
    }
    done
}

async fn lookup_addresses(
    resolver: &TokioResolver,
    name: Name,
    record_type: RecordType,
) -> Result<Vec<IpAddr>, NetError> {
    let lookup = resolver.lookup(name, record_type).await?;
    Ok(lookup
        .answers()
        .iter()
        // CNAMEs on the way are kept in the answer: only the addresses count.
        .filter(|r| r.record_type() == record_type)
        .filter_map(|r| r.data.ip_addr())
        .collect())
}

/// NXDOMAIN is its own answer; "the name exists but has no such records"
/// (NODATA) is a successful, empty answer.
fn classify(result: Result<Vec<IpAddr>, NetError>) -> Result<Answer, NetError> {
    match result {
        Ok(addresses) => Ok(Answer::Addresses(addresses)),
        Err(e) if e.is_nx_domain() => Ok(Answer::NxDomain),
        Err(e) if e.is_no_records_found() => Ok(Answer::Addresses(Vec::new())),
        Err(e) => Err(e),
    }
}

/// A+AAAA: NXDOMAIN only when neither family has an address.
fn combine(v4: Answer, v6: Answer) -> Result<Answer, NetError> {
    Ok(match (v4, v6) {
        (Answer::NxDomain, Answer::NxDomain) => Answer::NxDomain,
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
    })
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
            let got = match combine(a, b).expect("combine") {
                Answer::Addresses(ips) => Some(ips),
                Answer::NxDomain => None,
            };
            assert_eq!(got, want);
        }
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
        let results = runtime.block_on(bounded((0..100).collect(), 16, |i: u32| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i
            }
        }));
        let mut got: Vec<u32> = results.into_iter().map(|r| r.expect("joined")).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 16);
    }
}
