//! The one home of hickory resolvers: building one from /etc/resolv.conf (or
//! `--dns-server`, or a fallback), `--dns-server` parsing, the resolver for
//! the own hostname and metadata hosts, and reqwest's resolver, so no lookup
//! goes through glibc/NSS (the binary is static musl). Discovery's lookups
//! are in `discovery::dns`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{TokioResolver, system_conf};

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

/// A resolver and what building it found out about the configuration.
pub struct Built {
    pub resolver: TokioResolver,
    /// Where it asks, e.g. `127.0.0.1:53 (from /etc/resolv.conf)`.
    pub servers: String,
    /// Set when the fallback nameservers are used: the caller logs it.
    pub warning: Option<String>,
}

/// Whether /etc/hosts is consulted before DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// Discovery: peers come from DNS only.
    Ignore,
    /// The own hostname and metadata hosts: /etc/hosts first, like glibc.
    First,
}

/// A resolver configuration, read once: [`Configured::resolver`] builds
/// resolvers from it without reading any file again.
#[derive(Clone)]
pub struct Configured {
    config: ResolverConfig,
    opts: ResolverOpts,
    /// Where it asks, e.g. `127.0.0.1:53 (from /etc/resolv.conf)`.
    pub servers: String,
    /// Set when the fallback nameservers are used: the caller logs it.
    pub warning: Option<String>,
}

impl Configured {
    /// A new resolver with its own connections: nothing (no cache, no TCP
    /// connection) is shared with resolvers built before.
    pub fn resolver(&self) -> Result<TokioResolver, NetError> {
        TokioResolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default())
            .with_options(self.opts.clone())
            .build()
    }
}

/// Reads the system configuration from `resolv_conf` (search domains, ndots,
/// edns0) unless `dns_server` overrides the nameserver; timeout, attempts
/// and whether /etc/hosts is read first always come from the caller. The one
/// place beamup builds a resolver, so every lookup (own hostname, metadata
/// API hosts, peers) shares one configuration and none goes through
/// glibc/NSS.
pub fn build(
    resolv_conf: &Path,
    dns_server: Option<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    hosts: Hosts,
) -> Result<Built, NetError> {
    let configured = configure(resolv_conf, dns_server, timeout, attempts, hosts);
    Ok(Built {
        resolver: configured.resolver()?,
        servers: configured.servers,
        warning: configured.warning,
    })
}

/// [`build`]'s configuration step alone (reads `resolv_conf`, builds no
/// resolver).
pub fn configure(
    resolv_conf: &Path,
    dns_server: Option<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    hosts: Hosts,
) -> Configured {
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
    Configured {
        config,
        opts,
        servers,
        warning,
    }
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

/// A resolver for the own hostname and metadata API hosts: /etc/hosts first,
/// then the system's DNS (with discovery's fallback when resolv.conf is
/// unusable), one attempt bounded by `timeout`.
pub fn for_lookups(timeout: Duration) -> anyhow::Result<TokioResolver> {
    let built = build(Path::new(RESOLV_CONF), None, timeout, 1, Hosts::First)
        .map_err(|e| anyhow::anyhow!("while building the DNS resolver: {e}"))?;
    if let Some(w) = built.warning {
        tracing::debug!("{w}");
    }
    Ok(built.resolver)
}

/// Parses `--dns-server`: `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_server(input: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = input.parse::<SocketAddr>() {
        return Ok(addr);
    }
    input
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "--dns-server `{input}` is not an address: write IP or IP:PORT, e.g. 10.0.0.2:53"
            )
        })
}

/// Lets reqwest resolve metadata hosts (rancher-metadata...) through hickory.
pub struct ReqwestResolver(pub Arc<TokioResolver>);

impl reqwest::dns::Resolve for ReqwestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = resolver.lookup_ip(host.as_str()).await?;
            let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
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
            let built =
                build(conf, dns_server, Duration::from_secs(1), 2, Hosts::Ignore).expect("build");
            assert!(
                built.servers.starts_with(servers),
                "{conf:?}: {}",
                built.servers
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
    fn servers() {
        let table = [
            ("10.0.0.2", "10.0.0.2:53"),
            ("10.0.0.2:5353", "10.0.0.2:5353"),
            ("fd00::2", "[fd00::2]:53"),
            ("[fd00::2]:54", "[fd00::2]:54"),
        ];
        for (input, want) in table {
            assert_eq!(parse_server(input).unwrap().to_string(), want);
        }
        assert!(parse_server("dns.example").is_err());
    }
}
