//! DNS helpers outside discovery: the resolver for the own hostname and
//! metadata hosts (built by `discovery::dns`, the one place a hickory
//! resolver is made), `--dns-server` parsing, and reqwest's resolver, so no
//! lookup goes through glibc/NSS (the binary is static musl).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;

use crate::discovery::dns::{self, Hosts, RESOLV_CONF};

/// A resolver for the own hostname and metadata API hosts: /etc/hosts first,
/// then the system's DNS (with discovery's fallback when resolv.conf is
/// unusable), one attempt bounded by `timeout`.
pub fn for_lookups(timeout: Duration) -> anyhow::Result<TokioResolver> {
    let built = dns::build_with(Path::new(RESOLV_CONF), None, timeout, 1, Hosts::First)
        .map_err(|e| anyhow::anyhow!("while building the DNS resolver: {e}"))?;
    if let Some(w) = built.warning {
        tracing::debug!("{w}");
    }
    Ok(built.dns.into_resolver())
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
