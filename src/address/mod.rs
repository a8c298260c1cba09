//! Finding the container's own overlay-network address. One file per source;
//! `find` tries the sources in order and explains every refusal.

mod ecs;
mod env;
mod hostname;
mod http;
mod interface;
mod query;
mod rancher;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

pub use interface::local_addresses;

/// `--ip-family`: which address family the own address may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum IpFamily {
    V4,
    V6,
    #[default]
    Any,
}

/// Default Rancher 1.x metadata base URL (beam-facts: also `rancher-metadata`
/// and 169.254.169.250).
pub const RANCHER_DEFAULT: &str = "http://rancher-metadata.rancher.internal";

/// Platform variables the `auto` chain reads, in order: the address a platform
/// hands the container beats any guess from interfaces.
pub const AUTO_ENV_VARS: [&str; 3] = ["POD_IP", "FLY_PRIVATE_IP", "RENDER_INTERNAL_IP"];

/// One place an address can come from (`--ip SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The documented chain: platform variables, ECS metadata (when its
    /// variable is set), the hostname, then the interfaces.
    Auto,
    Env(String),
    Interface(String),
    Cidr(IpNet),
    Hostname,
    /// Any non-loopback interface that is up (the last link of `auto`).
    AnyInterface,
    /// The local address found among the discovery query's answers.
    Query,
    Rancher(String),
    /// ECS task metadata v4; None: from ECS_CONTAINER_METADATA_URI_V4 (or the
    /// older ECS_CONTAINER_METADATA_URI).
    Ecs(Option<String>),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Auto => f.write_str("auto"),
            Source::Env(var) => write!(f, "env:{var}"),
            Source::Interface(name) => write!(f, "interface:{name}"),
            Source::Cidr(net) => write!(f, "cidr:{net}"),
            Source::Hostname => f.write_str("hostname"),
            Source::AnyInterface => f.write_str("interfaces"),
            Source::Query => f.write_str("query"),
            Source::Rancher(url) if url == RANCHER_DEFAULT => f.write_str("rancher"),
            Source::Rancher(url) => write!(f, "rancher:{url}"),
            Source::Ecs(None) => f.write_str("ecs"),
            Source::Ecs(Some(url)) => write!(f, "ecs:{url}"),
        }
    }
}

impl Source {
    /// Whether the source does network I/O (DNS, HTTP), so finding the
    /// address needs an async runtime with its I/O and time drivers.
    pub fn needs_network(&self) -> bool {
        match self {
            Source::Auto
            | Source::Hostname
            | Source::Query
            | Source::Rancher(_)
            | Source::Ecs(_) => true,
            Source::Env(_) | Source::Interface(_) | Source::Cidr(_) | Source::AnyInterface => false,
        }
    }

    /// Parses one `--ip` value.
    pub fn parse(input: &str) -> Result<Source, String> {
        let input = input.trim();
        let (kind, arg) = match input.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (input, None),
        };
        let need = |what: &str| {
            arg.filter(|a| !a.is_empty()).ok_or_else(|| {
                format!(
                    "--ip `{input}` needs {what} after the colon, e.g. {kind}:{}",
                    example(kind)
                )
            })
        };
        match kind {
            "auto" if arg.is_none() => Ok(Source::Auto),
            "hostname" if arg.is_none() => Ok(Source::Hostname),
            "interfaces" if arg.is_none() => Ok(Source::AnyInterface),
            "query" if arg.is_none() => Ok(Source::Query),
            "env" => {
                let var = need("a variable name")?;
                if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("--ip `{input}`: `{var}` is not a variable name"));
                }
                Ok(Source::Env(var.to_string()))
            }
            "interface" => Ok(Source::Interface(need("an interface name")?.to_string())),
            "cidr" => {
                let net = need("a network")?;
                let net: IpNet = net.parse().map_err(|_| {
                    format!(
                        "--ip `{input}`: `{net}` is not a network in CIDR form: write e.g. \
                         cidr:10.0.0.0/8 or cidr:fd00::/8"
                    )
                })?;
                Ok(Source::Cidr(net.trunc()))
            }
            "rancher" => match arg {
                None => Ok(Source::Rancher(RANCHER_DEFAULT.to_string())),
                Some(url) => Ok(Source::Rancher(base_url(input, url)?)),
            },
            "ecs" => match arg {
                None => Ok(Source::Ecs(None)),
                Some(url) => Ok(Source::Ecs(Some(base_url(input, url)?))),
            },
            _ => Err(format!(
                "--ip `{input}` is not an address source: use auto, env:VAR, interface:NAME, \
                 cidr:NET/LEN, hostname, interfaces, query, rancher[:URL] or ecs[:URL]"
            )),
        }
    }
}

fn example(kind: &str) -> &'static str {
    match kind {
        "env" => "POD_IP",
        "interface" => "eth0",
        "cidr" => "10.42.0.0/16",
        _ => "...",
    }
}

fn base_url(input: &str, url: &str) -> Result<String, String> {
    // `rancher:http://host` splits at the first colon: the URL keeps its scheme.
    let base = url.trim_end_matches('/');
    http::check_url(url)
        .and_then(|()| {
            // `http://` alone would print as `http:`, which parses to nothing
            // (fuzz/flag_values checks that a source prints to text that
            // parses back to it): refused here, not at the first request.
            let host = base.strip_prefix("http://").unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                Err(format!("`{url}` has no host"))
            } else if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
                // `http:// //` kept `http:// ` (found by fuzz/flag_values).
                Err(format!("`{url}` holds a space or a control character"))
            } else {
                Ok(())
            }
        })
        .map(|()| base.to_string())
        .map_err(|e| format!("--ip `{input}`: {e}, e.g. rancher:http://169.254.169.250"))
}

/// What the sources may read: the environment and the metadata timeout.
pub struct Context<'a> {
    pub env: &'a HashMap<String, String>,
    pub family: IpFamily,
    pub metadata_timeout: Duration,
    /// The discovery query rendered from the environment (for `query`).
    pub query: Option<String>,
    /// `--dns-server` (for `query`).
    pub dns_server: Option<std::net::SocketAddr>,
}

/// An address and the source that gave it, plus variables the source offers to
/// templates (RANCHER_SERVICE_NAME).
#[derive(Debug, Clone)]
pub struct OwnAddress {
    pub address: IpAddr,
    pub source: String,
    pub extras: Vec<(String, String)>,
}

/// A source that said no, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub source: String,
    pub reason: String,
}

/// Every source was tried and none gave an address.
#[derive(Debug, Clone, thiserror::Error)]
pub struct NoAddress(pub Vec<Refusal>);

impl fmt::Display for NoAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "no address source gave an address for this node:")?;
        for r in &self.0 {
            writeln!(f, "  - {}: {}", r.source, r.reason)?;
        }
        write!(
            f,
            "give --ip with a source that works here, e.g. --ip env:POD_IP or --ip interface:eth0 \
             (see `beamup --help`)"
        )
    }
}

/// Tries `sources` in order; the first acceptable address wins.
pub async fn find(sources: &[Source], ctx: &Context<'_>) -> Result<OwnAddress, NoAddress> {
    let mut refusals = Vec::new();
    for source in sources {
        let chain = match source {
            Source::Auto => auto_chain(ctx.env),
            other => vec![other.clone()],
        };
        for s in chain {
            match try_source(&s, ctx).await {
                Ok(found) => {
                    tracing::info!(source = %found.source, address = %found.address, "own address found");
                    return Ok(found);
                }
                Err(reason) => {
                    tracing::info!(source = %s, %reason, "address source said no");
                    refusals.push(Refusal {
                        source: s.to_string(),
                        reason,
                    });
                }
            }
        }
    }
    Err(NoAddress(refusals))
}

/// The `auto` chain. Platform-given addresses first (they name the overlay
/// network address exactly), then the hostname (Docker and Kubernetes write
/// the container's address for its hostname into /etc/hosts), then a guess
/// from the interfaces. Never loopback or link-local.
pub fn auto_chain(env: &HashMap<String, String>) -> Vec<Source> {
    let mut chain: Vec<Source> = AUTO_ENV_VARS
        .iter()
        .filter(|v| env.contains_key(**v))
        .map(|v| Source::Env(v.to_string()))
        .collect();
    if ecs::configured(env) {
        chain.push(Source::Ecs(None));
    }
    chain.push(Source::Hostname);
    chain.push(Source::AnyInterface);
    chain
}

async fn try_source(source: &Source, ctx: &Context<'_>) -> Result<OwnAddress, String> {
    let (address, extras) = match source {
        Source::Auto => return Err("auto is expanded before this point".into()),
        Source::Env(var) => (env::lookup(var, ctx)?, vec![]),
        Source::Interface(name) => (interface::by_name(name, ctx.family)?, vec![]),
        Source::Cidr(net) => (interface::in_network(net, ctx.family)?, vec![]),
        Source::AnyInterface => (interface::any(ctx.family)?, vec![]),
        Source::Query => (query::lookup(ctx).await?, vec![]),
        Source::Hostname => (hostname::lookup(ctx).await?, vec![]),
        Source::Rancher(url) => rancher::lookup(url, ctx).await?,
        Source::Ecs(url) => (ecs::lookup(url.as_deref(), ctx).await?, vec![]),
    };
    Ok(OwnAddress {
        address,
        source: source.to_string(),
        extras,
    })
}

/// Why an address is no good as a node's own address, if it is not.
/// `explicit`: the user named this exact address (env:VAR), so loopback is
/// allowed (with a warning elsewhere) — useful on a laptop.
pub fn unusable(address: IpAddr, family: IpFamily, explicit: bool) -> Option<String> {
    match (family, address) {
        (IpFamily::V4, IpAddr::V6(_)) => {
            return Some(format!("{address} is IPv6 and --ip-family is v4"));
        }
        (IpFamily::V6, IpAddr::V4(_)) => {
            return Some(format!("{address} is IPv4 and --ip-family is v6"));
        }
        _ => {}
    }
    let broadcast = matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
    if address.is_unspecified() || address.is_multicast() || broadcast {
        return Some(format!("{address} is not a unicast address"));
    }
    if !explicit && address.is_loopback() {
        return Some(format!(
            "{address} is loopback: other hosts cannot reach it"
        ));
    }
    if is_link_local(address) {
        return Some(format!(
            "{address} is link-local: other hosts cannot route to it"
        ));
    }
    None
}

pub fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Picks from candidates in order: with family `any`, the first IPv4 address
/// wins over any IPv6 one (v4 preferred); unusable ones are skipped.
pub fn pick(candidates: &[IpAddr], family: IpFamily) -> Option<IpAddr> {
    let usable = candidates
        .iter()
        .copied()
        .filter(|a| unusable(*a, family, false).is_none());
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = usable.partition(|a| a.is_ipv4());
    v4.into_iter().chain(v6).next()
}

/// Parses an address as platforms write it: plain, or IPv6 in brackets, or
/// with a zone (`fe80::1%eth0`, rejected later as link-local).
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or(t);
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        let table = [
            ("auto", Source::Auto),
            ("env:POD_IP", Source::Env("POD_IP".into())),
            ("interface:eth0", Source::Interface("eth0".into())),
            (
                "cidr:10.0.0.0/8",
                Source::Cidr("10.0.0.0/8".parse().unwrap()),
            ),
            (
                "cidr:10.1.2.3/16",
                Source::Cidr("10.1.0.0/16".parse().unwrap()),
            ),
            ("cidr:fd00::/8", Source::Cidr("fd00::/8".parse().unwrap())),
            ("hostname", Source::Hostname),
            ("query", Source::Query),
            ("rancher", Source::Rancher(RANCHER_DEFAULT.into())),
            (
                "rancher:http://127.0.0.1:8080/",
                Source::Rancher("http://127.0.0.1:8080".into()),
            ),
            ("ecs", Source::Ecs(None)),
            (
                "ecs:http://127.0.0.1:9/v4",
                Source::Ecs(Some("http://127.0.0.1:9/v4".into())),
            ),
        ];
        for (input, want) in table {
            assert_eq!(Source::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "auto",
            "env:POD_IP",
            "interface:eth0",
            "cidr:10.0.0.0/8",
            "hostname",
            "rancher",
            "rancher:http://x:1",
            "ecs",
        ] {
            assert_eq!(Source::parse(input).unwrap().to_string(), input);
        }
    }

    #[test]
    fn rejects_bad_sources() {
        let table = [
            ("dhcp", "not an address source"),
            ("env:", "needs a variable name"),
            ("env:POD-IP", "not a variable name"),
            ("interface:", "needs an interface name"),
            ("cidr:10.0.0.0/33", "not a network in CIDR form"),
            ("cidr:banana", "not a network in CIDR form"),
            ("rancher:metadata", "not an http:// URL"),
            ("ecs:http://", "has no host"),
            ("rancher:http:///", "has no host"),
            ("rancher:http:// //", "holds a space"),
            ("ecs:http://a b/v4", "holds a space"),
            ("auto:x", "not an address source"),
        ];
        for (input, want) in table {
            let e = Source::parse(input).unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn auto_chain_prefers_platform_variables() {
        let env: HashMap<String, String> = [("FLY_PRIVATE_IP", "fdaa::2"), ("POD_IP", "10.1.2.3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let chain: Vec<String> = auto_chain(&env).iter().map(|s| s.to_string()).collect();
        assert_eq!(
            chain,
            ["env:POD_IP", "env:FLY_PRIVATE_IP", "hostname", "interfaces"]
        );
        let mut ecs = HashMap::new();
        ecs.insert(
            "ECS_CONTAINER_METADATA_URI_V4".to_string(),
            "http://x".to_string(),
        );
        let chain: Vec<String> = auto_chain(&ecs).iter().map(|s| s.to_string()).collect();
        assert_eq!(chain, ["ecs", "hostname", "interfaces"]);
    }

    #[test]
    fn usability_and_preference() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            unusable(a("127.0.0.1"), IpFamily::Any, false)
                .unwrap()
                .contains("loopback")
        );
        assert!(unusable(a("127.0.0.1"), IpFamily::Any, true).is_none());
        assert!(
            unusable(a("169.254.1.1"), IpFamily::Any, true)
                .unwrap()
                .contains("link-local")
        );
        assert!(
            unusable(a("fe80::1"), IpFamily::Any, false)
                .unwrap()
                .contains("link-local")
        );
        assert!(unusable(a("0.0.0.0"), IpFamily::Any, true).is_some());
        assert!(
            unusable(a("10.0.0.1"), IpFamily::V6, false)
                .unwrap()
                .contains("--ip-family is v6")
        );
        assert!(
            unusable(a("fd00::1"), IpFamily::V4, false)
                .unwrap()
                .contains("--ip-family is v4")
        );
        let cands = [a("fe80::1"), a("fd00::5"), a("127.0.0.1"), a("10.0.0.5")];
        assert_eq!(pick(&cands, IpFamily::Any), Some(a("10.0.0.5")));
        assert_eq!(pick(&cands, IpFamily::V6), Some(a("fd00::5")));
        assert_eq!(pick(&[a("fe80::1"), a("::1")], IpFamily::Any), None);
    }

    #[test]
    fn parses_platform_addresses() {
        let table = [
            ("10.0.0.1\n", "10.0.0.1"),
            ("[fdaa::1]", "fdaa::1"),
            (" fe80::1%eth0", "fe80::1"),
        ];
        for (input, want) in table {
            assert_eq!(
                parse_address(input),
                Some(want.parse().unwrap()),
                "{input:?}"
            );
        }
        assert_eq!(parse_address("<html>"), None);
    }

    #[test]
    fn no_address_lists_every_refusal() {
        let e = NoAddress(vec![
            Refusal {
                source: "env:POD_IP".into(),
                reason: "POD_IP is not set".into(),
            },
            Refusal {
                source: "hostname".into(),
                reason: "resolves only to loopback".into(),
            },
        ]);
        let msg = e.to_string();
        assert!(msg.contains("env:POD_IP: POD_IP is not set"), "{msg}");
        assert!(msg.contains("hostname: resolves only to loopback"), "{msg}");
        assert!(msg.contains("give --ip"), "{msg}");
    }
}
