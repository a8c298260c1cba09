//! The one place a hickory resolver is built, so every lookup beamup makes
//! (own hostname, metadata API hosts, peer discovery) goes through the same
//! configuration and never through glibc/NSS (the binary is static musl).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Used when /etc/resolv.conf is missing or lists no nameserver: Docker's
/// embedded DNS on user-defined networks answers at 127.0.0.11, the most
/// likely server a container without resolv.conf still has.
pub const FALLBACK_NAMESERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

/// A resolver plus the warning to log if the system configuration was unusable.
pub struct Built {
    pub resolver: TokioResolver,
    pub warning: Option<String>,
}

/// Builds a resolver: `server` overrides the system configuration; `timeout`
/// and `attempts` bound every lookup (hickory's defaults wait ~15 s on an
/// unreachable server); no cache, so every poll sees the current records;
/// /etc/hosts is consulted first.
pub fn build(
    server: Option<SocketAddr>,
    timeout: Duration,
    attempts: usize,
) -> anyhow::Result<Built> {
    let provider = TokioRuntimeProvider::default();
    let (config, mut opts, warning) = match server {
        Some(addr) => (single_server(addr), ResolverOpts::default(), None),
        None => match hickory_resolver::system_conf::read_system_conf() {
            Ok((config, opts)) if !config.name_servers().is_empty() => (config, opts, None),
            Ok(_) | Err(_) => (
                single_server(SocketAddr::new(FALLBACK_NAMESERVER, 53)),
                ResolverOpts::default(),
                Some(format!(
                    "/etc/resolv.conf is missing or lists no nameserver; using \
                     {FALLBACK_NAMESERVER} (Docker's embedded DNS). Mount a resolv.conf or \
                     give --dns-server IP to choose another"
                )),
            ),
        },
    };
    opts.timeout = timeout;
    opts.attempts = attempts.max(1);
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Always;
    opts.try_tcp_on_error = true;
    let mut builder = TokioResolver::builder_with_config(config, provider);
    *builder.options_mut() = opts;
    let resolver = builder
        .build()
        .map_err(|e| anyhow::anyhow!("while building the DNS resolver: {e}"))?;
    Ok(Built { resolver, warning })
}

fn single_server(addr: SocketAddr) -> ResolverConfig {
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for conn in ns.connections.iter_mut() {
        conn.port = addr.port();
    }
    ResolverConfig::from_name_servers(vec![ns])
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
