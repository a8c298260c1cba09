//! Checks of one peer, each step bounded by [`STEP_TIMEOUT`]: its epmd and
//! the names registered there, its distribution port, the handshake (our
//! name, the cookie, the protocol version), the address family against this
//! node's `-proto_dist`, and whether this node is connected to it.
//!
//! A step that fails skips the steps that need it, so a dead peer costs one
//! timeout.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;

use super::local::{Local, shown};
use super::{Check, Identity, STEP_TIMEOUT, Section, epmd_names, family_name, list};
use crate::dist::DistError;

/// The key of the last check, which the verdict counts.
pub const CONNECTED: &str = "connected";

pub async fn check(node: &str, id: &Identity, local: &Local) -> Section {
    Section {
        title: format!("peer {node}"),
        peer: Some(node.to_string()),
        checks: steps(node, id, local).await,
    }
}

async fn steps(node: &str, id: &Identity, local: &Local) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some((name, host)) = node.split_once('@') else {
        // Discovery and --peers only hand on validated `name@host` names.
        checks.push(Check::failed(
            "name",
            format!("`{node}` is not a node name"),
            "not a node name",
            "write --peers as name@host",
        ));
        return checks;
    };
    let ip = match resolve(host).await {
        Ok(ip) => ip,
        Err(why) => {
            checks.push(Check::failed(
                "address",
                why,
                "its host does not resolve",
                "give --peers with addresses, or fix the host name",
            ));
            return checks;
        }
    };

    let reachable =
        match registered_port(SocketAddr::new(ip, id.epmd_port), name, &mut checks).await {
            Ok(port) => port_reachable(SocketAddr::new(ip, port), &mut checks).await,
            Err(why) => {
                checks.push(Check::skipped("port", why));
                false
            }
        };
    let not_ready = (!reachable).then(|| "the distribution port was not reached".to_string());
    let handshake_ok = match id.connect("handshake", node, not_ready).await {
        Err(skipped) => {
            checks.push(skipped);
            false
        }
        Ok(outcome) => {
            let check = handshake(node, id, local, outcome.map(drop));
            let ok = check.status == super::Status::Ok;
            checks.push(check);
            ok
        }
    };
    checks.push(family(ip, local));
    checks.push(connected(node, id, local, handshake_ok, &checks));
    checks
}

/// A node's host is usually an address; a `--peers` host name is looked up.
async fn resolve(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    match tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, 0))).await {
        Err(_) => Err(format!(
            "looking up `{host}` took longer than {STEP_TIMEOUT:?}"
        )),
        Ok(Err(e)) => Err(format!("`{host}` does not resolve: {e}")),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("`{host}` resolves to no address")),
    }
}

/// The epmd check of the epmd `at`; returns the name's distribution port
/// when registered, else why the port cannot be checked.
async fn registered_port(
    at: SocketAddr,
    name: &str,
    checks: &mut Vec<Check>,
) -> Result<u16, String> {
    let names = match epmd_names(at).await {
        Ok(names) => names,
        Err(e) => {
            checks.push(epmd_failed(at, &e));
            return Err("epmd did not answer".to_string());
        }
    };
    if let Some(r) = names.iter().find(|r| r.name == name) {
        let others: Vec<_> = names.iter().filter(|o| o.name != name).cloned().collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (also registered: {})", shown(&others))
        };
        checks.push(Check::ok(
            "epmd",
            format!("`{name}` registered at port {} on {at}{also}", r.port),
        ));
        return Ok(r.port);
    }
    checks.push(if names.is_empty() {
        Check::failed(
            "epmd",
            format!("epmd on {at} answers but has no node registered"),
            "no VM registered with its epmd",
            "the release there is not running or still booting: check that host's logs",
        )
    } else {
        Check::failed(
            "epmd",
            format!(
                "epmd on {at} has no `{name}`; registered: {}",
                shown(&names)
            ),
            format!(
                "registered as {}, not `{name}`",
                list(names.iter().map(|r| format!("`{}`", r.name)))
            ),
            format!(
                "the peer runs under another name part: give every node the same --basename \
                 (BEAMUP_BASENAME or RELEASE_NAME), or --query lists another application's \
                 hosts (expected `{name}`)"
            ),
        )
    });
    Err(format!("no `{name}` registered with epmd"))
}

fn epmd_failed(at: SocketAddr, e: &DistError) -> Check {
    let port = at.port();
    let cut_off = format!(
        "the host is down or cut off from this one, or a firewall drops TCP {port}: put the \
         nodes on one network and open {port} and the distribution ports between them"
    );
    match e {
        DistError::Timeout(_) => Check::failed(
            "epmd",
            format!("no answer from {at} within {STEP_TIMEOUT:?}"),
            "epmd unreachable (no answer)",
            cut_off,
        ),
        DistError::Io(reason) => Check::failed("epmd", reason.clone(), "host unreachable", cut_off),
        DistError::EpmdUnreachable { reason, .. } => Check::failed(
            "epmd",
            format!("epmd on {at}: {reason}"),
            "epmd not running",
            format!(
                "nothing listens on port {port} there: no VM runs on that host (epmd starts \
                 with the first one), or its epmd is bound elsewhere (ERL_EPMD_ADDRESS, \
                 ERL_EPMD_PORT: the same on every node)"
            ),
        ),
        other => Check::failed(
            "epmd",
            format!("epmd on {at}: {other}"),
            "epmd answers wrongly",
            format!("something other than epmd listens on {port} there"),
        ),
    }
}

async fn port_reachable(at: SocketAddr, checks: &mut Vec<Check>) -> bool {
    let hint = "epmd answers but the distribution port does not: open the nodes' distribution \
                ports between them (pin them with -kernel inet_dist_listen_min/max), and check \
                inet_dist_use_interface";
    match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(at)).await {
        Ok(Ok(_)) => {
            checks.push(Check::ok("port", format!("{at} accepts connections")));
            true
        }
        Ok(Err(e)) => {
            checks.push(Check::failed(
                "port",
                format!("{at}: {e}"),
                "distribution port unreachable",
                hint,
            ));
            false
        }
        Err(_) => {
            checks.push(Check::failed(
                "port",
                format!("no answer from {at} within {STEP_TIMEOUT:?}"),
                "distribution port unreachable (no answer)",
                hint,
            ));
            false
        }
    }
}

fn handshake(node: &str, id: &Identity, local: &Local, outcome: Result<(), DistError>) -> Check {
    let origin = id.cookie_origin.as_deref().unwrap_or("?");
    match outcome {
        Ok(()) => Check::ok(
            "handshake",
            format!(
                "{node} accepted our name {} and the cookie from {origin}",
                id.hidden_name()
            ),
        ),
        Err(DistError::CookieRejected { .. }) if local.cookie_rejected => Check::failed(
            "handshake",
            format!("{node} rejected the cookie from {origin}, as this node did"),
            format!("rejects doctor's cookie ({origin}) too"),
            "doctor does not have the cluster's cookie: run it with the release's \
             RELEASE_COOKIE or --cookie-file",
        ),
        Err(DistError::CookieRejected { .. }) => Check::failed(
            "handshake",
            format!(
                "{node} rejected our challenge reply: it uses another cookie than this node \
                 ({origin})"
            ),
            "cookie differs",
            "give every node the same cookie: one RELEASE_COOKIE or --cookie-file (one \
             Docker or Kubernetes secret) for the whole service",
        ),
        Err(e @ DistError::Refused { .. }) => Check::failed(
            "handshake",
            e.to_string(),
            "refused our name (short names?)",
            "every node must run long names (beamup exports RELEASE_DISTRIBUTION=name; a \
             vm.args `-sname` or an env.sh overrides it), and net_kernel:allow/1 must not \
             exclude this host",
        ),
        Err(e @ DistError::Protocol(_)) => Check::failed(
            "handshake",
            e.to_string(),
            "distribution protocol differs",
            "run OTP 23 or later on every node",
        ),
        Err(e) => Check::failed(
            "handshake",
            e.to_string(),
            "handshake failed",
            "the peer is overloaded, stopping, or not an Erlang node; run doctor again",
        ),
    }
}

/// This node can only dial peers of its own family: inet_tcp reaches IPv4
/// addresses, inet6_tcp IPv6 ones.
fn family(ip: IpAddr, local: &Local) -> Check {
    let peer = family_name(ip);
    let ours = &local.proto_dist;
    let ours_v6 = ours == "inet6_tcp";
    if ip.to_canonical().is_ipv6() == ours_v6 {
        Check::ok("family", format!("{peer}, which this node's {ours} dials"))
    } else {
        Check::failed(
            "family",
            format!("the peer's address is {peer} but this node speaks {ours}: it cannot dial it"),
            format!("{peer} peer, this node speaks {ours}"),
            "run every node on one address family: the same --ip-family (v4 or v6) on all \
             of them, and --record a (or aaaa) so discovery returns only that family",
        )
    }
}

fn connected(
    node: &str,
    id: &Identity,
    local: &Local,
    reachable: bool,
    earlier: &[Check],
) -> Check {
    let Some(nodes) = &local.nodes else {
        return Check::skipped(CONNECTED, "this node was not reached");
    };
    if nodes.contains(node) {
        // OTP keeps no start time for a connection (net_kernel:node_info/1
        // has packet counts only), so "for how long" cannot be told.
        return Check::ok(CONNECTED, format!("in {}'s nodes()", id.node));
    }
    let all_else_ok = reachable && earlier.iter().all(|c| c.status != super::Status::Failed);
    Check::failed(
        CONNECTED,
        format!("not in {}'s nodes()", id.node),
        "not connected",
        if all_else_ok {
            "everything answers but nothing dials it: start the nodes with beamup --connect \
             (or a clustering library such as dns_cluster or libcluster with this query)"
        } else {
            "fix the ✗ above first"
        },
    )
}
