//! DNS lookups through hickory-resolver: building the resolver once from the
//! system configuration (or `--dns-server`), and one lookup of A, AAAA,
//! A+AAAA or SRV records per poll.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{TokioResolver, system_conf};
use tokio::task::JoinSet;

use super::{PollError, RecordKind};

/// The system resolver configuration glibc reads too.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where to ask when /etc/resolv.conf is missing or names no nameserver.
/// First 127.0.0.11, Docker's embedded DNS on user-defined networks (the
/// setting beamup runs in most; Docker normally writes it into resolv.conf,
/// so it is the best guess when that file was lost or replaced), then
/// 127.0.0.1, which is what glibc itself uses without a `nameserver` line
/// (resolv.conf(5): "the default is to use the name server on the local
/// machine"). Both are loopback, so an absent server answers with a fast
/// "connection refused" instead of a timeout.
pub const FALLBACK_NAMESERVERS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)),
    IpAddr::V4(Ipv4Addr::LOCALHOST),
];

/// The resolver and a description of where it asks, for error messages.
pub struct Dns {
    resolver: TokioResolver,
    /// e.g. `127.0.0.1:53 (from /etc/resolv.conf)`.
    servers: String,
    deadline: Duration,
}

/// What building the resolver found out about the configuration.
pub struct Built {
    pub dns: Dns,
    /// Set when the fallback nameservers are used: the caller logs it.
    pub warning: Option<String>,
}

/// Reads the system configuration from `resolv_conf` (search domains, ndots,
/// edns0) unless `dns_server` overrides the nameserver; timeout and attempts
/// always come from the caller.
pub fn build(
    resolv_conf: &Path,
    dns_server: Option<SocketAddr>,
    timeout: Duration,
    attempts: usize,
) -> Result<Built, NetError> {
    build_with(resolv_conf, dns_server, timeout, attempts, Hosts::Ignore)
}

/// Whether /etc/hosts is consulted before DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// Discovery: peers come from DNS only.
    Ignore,
    /// The own hostname and metadata hosts: /etc/hosts first, like glibc.
    First,
}

/// `build`, choosing whether /etc/hosts is read first. The one place beamup
/// builds a resolver, so every lookup (own hostname, metadata API hosts,
/// peers) shares one configuration and none goes through glibc/NSS.
pub fn build_with(
    resolv_conf: &Path,
    dns_server: Option<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    hosts: Hosts,
) -> Result<Built, NetError> {
    let system = std::fs::read(resolv_conf)
        .map_err(|e| e.to_string())
        .and_then(|data| system_conf::parse_resolv_conf(data).map_err(|e| e.to_string()));
    let mut warning = None;
    let (config, mut opts, origin) = match (dns_server, system) {
        (Some(server), system) => {
            // --dns-server replaces the nameservers but keeps the search
            // domains and ndots, so Kubernetes short names still work.
            let (search, opts) = match system {
                Ok((config, opts)) => (config.search().to_vec(), opts),
                Err(_) => (Vec::new(), ResolverOpts::default()),
            };
            let config = ResolverConfig::from_parts(None, search, vec![name_server(server)]);
            (config, opts, "--dns-server".to_string())
        }
        (None, Ok((config, opts))) => (config, opts, resolv_conf.display().to_string()),
        (None, Err(reason)) => {
            warning = Some(fallback_warning(resolv_conf, &reason));
            let servers = FALLBACK_NAMESERVERS
                .iter()
                .map(|ip| name_server(SocketAddr::new(*ip, 53)))
                .collect();
            let config = ResolverConfig::from_name_servers(servers);
            (config, ResolverOpts::default(), "fallback".to_string())
        }
    };

    opts.timeout = timeout;
    // hickory's `attempts` counts retries after the first try (its
    // RetryDnsHandle); ours counts tries.
    opts.attempts = attempts.max(1) - 1;
    // Discovery must see a changed record on the very next poll: no answer
    // (positive or negative) outlives the lookup that fetched it.
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    // Peers come from DNS only; a container's /etc/hosts holds just its own
    // name, which would hide the service's other addresses.
    opts.use_hosts_file = match hosts {
        Hosts::Ignore => ResolveHosts::Never,
        Hosts::First => ResolveHosts::Always,
    };

    let servers = describe(&config, &origin);
    let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()?;
    // hickory retries per name and per search domain; one poll must still
    // end within timeout × attempts, whatever the search list holds.
    let deadline = timeout.saturating_mul(u32::try_from(attempts.max(1)).unwrap_or(u32::MAX));
    Ok(Built {
        dns: Dns {
            resolver,
            servers,
            deadline,
        },
        warning,
    })
}

fn fallback_warning(resolv_conf: &Path, reason: &str) -> String {
    let fallback = FALLBACK_NAMESERVERS
        .iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(" then ");
    format!(
        "no usable nameserver in {} ({reason}); falling back to {fallback} (Docker's embedded \
         DNS, then the local machine); give --dns-server IP[:PORT] to choose the DNS server",
        resolv_conf.display()
    )
}

/// UDP first, TCP for truncated answers (hickory retries over TCP when the
/// UDP answer has the TC bit set, which a large record set needs).
fn name_server(server: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = server.port();
    NameServerConfig::new(server.ip(), true, vec![udp, tcp])
}

fn describe(config: &ResolverConfig, origin: &str) -> String {
    let mut out = String::new();
    for (i, ns) in config.name_servers().iter().enumerate() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", SocketAddr::new(ns.ip, port));
    }
    let _ = write!(out, " (from {origin})");
    out
}

/// Outcome of one record-type lookup, before the kinds are combined.
enum Answer {
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
}

impl Dns {
    /// The resolver itself, for lookups other than discovery's.
    pub fn into_resolver(self) -> TokioResolver {
        self.resolver
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

    fn write_conf(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write resolv.conf");
        path
    }

    #[test]
    fn configuration_sources() {
        let dir = std::env::temp_dir().join(format!("beamup-dns-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = write_conf(&dir, "good", "search svc.test\nnameserver 127.0.0.53\n");
        let empty = write_conf(&dir, "empty", "search svc.test\n");
        let missing = dir.join("missing");
        let server: SocketAddr = "127.0.0.9:5353".parse().expect("addr");

        // (resolv.conf, --dns-server, servers description, warning expected)
        let table = [
            (&good, None, "127.0.0.53:53 (from ", false),
            (
                &empty,
                None,
                "127.0.0.11:53, 127.0.0.1:53 (from fallback)",
                true,
            ),
            (
                &missing,
                None,
                "127.0.0.11:53, 127.0.0.1:53 (from fallback)",
                true,
            ),
            (
                &missing,
                Some(server),
                "127.0.0.9:5353 (from --dns-server)",
                false,
            ),
            (
                &good,
                Some(server),
                "127.0.0.9:5353 (from --dns-server)",
                false,
            ),
        ];
        for (conf, dns_server, servers, warns) in table {
            let built = build(conf, dns_server, Duration::from_secs(1), 2).expect("build");
            assert!(
                built.dns.servers().starts_with(servers),
                "{conf:?}: {}",
                built.dns.servers()
            );
            assert_eq!(built.warning.is_some(), warns, "{conf:?}");
            if let Some(warning) = built.warning {
                assert!(warning.contains("--dns-server"), "{warning}");
                assert!(warning.contains(&conf.display().to_string()), "{warning}");
            }
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

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
