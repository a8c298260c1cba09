//! Checks of this node: its address and name, the cookie's origin, its epmd
//! registration, a distribution connection with that cookie, long names and
//! `-proto_dist` as the running VM reports them, and its `nodes()`.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Check, Identity, Section, epmd_names, family_name, list};
use crate::dist::epmd::Registered;
use crate::dist::{DistError, Session, Term};

/// What the peers' checks need from this node's.
#[derive(Debug, Clone)]
pub struct Local {
    pub section: Section,
    /// The running node's `nodes()`, when it was reached.
    pub nodes: Option<BTreeSet<String>>,
    /// The `-proto_dist` the running node reports, else the one its address needs.
    pub proto_dist: String,
    /// The running node rejected doctor's cookie: a peer rejecting it too
    /// says nothing about the peer.
    pub cookie_rejected: bool,
}

pub async fn check(id: &Identity) -> Local {
    let mut checks = vec![
        Check::ok("address", format!("{} (from {})", id.address, id.source)),
        Check::ok(
            "node",
            format!(
                "{} (long names, {} address: -proto_dist {})",
                id.node,
                family_name(id.address),
                id.proto_dist()
            ),
        ),
        cookie(id),
    ];
    let (epmd, registered) = epmd_registration(id).await;
    checks.push(epmd);
    let mut cookie_rejected = false;
    let not_ready =
        (!registered).then(|| format!("`{}` is not registered with epmd", id.basename()));
    let session = match id.connect("reachable", &id.node, not_ready).await {
        Err(skipped) => {
            checks.push(skipped);
            None
        }
        Ok(Ok(session)) => {
            checks.push(Check::ok(
                "reachable",
                format!(
                    "{} accepted {} (hidden) with that cookie",
                    id.node,
                    session.own_name()
                ),
            ));
            Some(session)
        }
        Ok(Err(e)) => {
            cookie_rejected = matches!(e, DistError::CookieRejected { .. });
            checks.push(unreachable(id, &e));
            None
        }
    };
    let mut proto_dist = id.proto_dist().to_string();
    let mut nodes = None;
    match &session {
        Some(session) => {
            let (mode, running) = mode(id, session).await;
            checks.push(mode);
            if let Some(running) = running {
                proto_dist = running;
            }
            match session.nodes().await {
                Ok(found) => {
                    let found: BTreeSet<String> = found.into_iter().collect();
                    let detail = if found.is_empty() {
                        "nodes() is empty: connected to no node".to_string()
                    } else {
                        format!("nodes() = {}", list(&found))
                    };
                    checks.push(Check::ok("nodes", detail));
                    nodes = Some(found);
                }
                Err(e) => checks.push(Check::failed(
                    "nodes",
                    format!("erlang:nodes() failed: {e}"),
                    "erlang:nodes() failed",
                    "the node is overloaded or stopping; run doctor again",
                )),
            }
        }
        None => {
            checks.push(Check::skipped("mode", "the node was not reached"));
            checks.push(Check::skipped("nodes", "the node was not reached"));
        }
    }
    Local {
        section: Section {
            title: format!("this node {}", id.node),
            peer: None,
            checks,
        },
        nodes,
        proto_dist,
        cookie_rejected,
    }
}

fn cookie(id: &Identity) -> Check {
    match &id.cookie_origin {
        Some(origin) => Check::ok("cookie", format!("from {origin} (value not shown)")),
        None => Check::failed(
            "cookie",
            "none found in --cookie-file, RELEASE_COOKIE, RELX_COOKIE, the release's vm.args \
             (-setcookie) or releases/COOKIE, or ~/.erlang.cookie",
            "no cookie found",
            "give doctor the release's cookie as the release gets it: RELEASE_COOKIE, \
             --cookie-file PATH, or the release command after `--` (for its releases/COOKIE)",
        ),
    }
}

/// The node's name part registered with the epmd on its own address (the one
/// peers ask). Returns the check and whether it is registered.
async fn epmd_registration(id: &Identity) -> (Check, bool) {
    let at = SocketAddr::new(id.address, id.epmd_port);
    let basename = id.basename();
    match epmd_names(at).await {
        Ok(names) => match names.iter().find(|r| r.name == basename) {
            Some(r) => (
                Check::ok(
                    "epmd",
                    format!("`{basename}` registered at port {} on {at}", r.port),
                ),
                true,
            ),
            None => (
                Check::failed(
                    "epmd",
                    format!(
                        "epmd on {at} has no `{basename}` (registered: {})",
                        shown(&names)
                    ),
                    format!("not registered with epmd as `{basename}`"),
                    format!(
                        "the release is not running, still booting, or named otherwise: start it \
                         through beamup with the same --basename (BEAMUP_BASENAME / RELEASE_NAME) \
                         that doctor uses (`{basename}`)"
                    ),
                ),
                false,
            ),
        },
        Err(e) => (
            Check::failed(
                "epmd",
                format!("epmd on {at}: {e}"),
                "epmd unreachable",
                "is the release running? epmd starts with the first VM and listens on every \
                 address unless ERL_EPMD_ADDRESS limits it (peers must reach it on this \
                 address too)",
            ),
            false,
        ),
    }
}

/// `other at port 4000, x at port 4001`, or `none`.
pub(super) fn shown(names: &[Registered]) -> String {
    list(
        names
            .iter()
            .map(|r| format!("`{}` at port {}", r.name, r.port)),
    )
}

fn unreachable(id: &Identity, e: &DistError) -> Check {
    let origin = id.cookie_origin.as_deref().unwrap_or("?");
    match e {
        DistError::CookieRejected { .. } => Check::failed(
            "reachable",
            format!("{} rejected the cookie from {origin}", id.node),
            format!("the running node uses another cookie than {origin}"),
            "doctor needs the release's own cookie: run it with the release's RELEASE_COOKIE or \
             --cookie-file (`docker exec` gets the image's environment, not what the \
             entrypoint exported)",
        ),
        DistError::Refused { .. } => Check::failed(
            "reachable",
            e.to_string(),
            "refused a long-names connection",
            "the node runs short names (an env.sh or vm.args `-sname` overrides beamup's \
             RELEASE_DISTRIBUTION=name) or net_kernel:allow/1 excludes this host",
        ),
        _ => Check::failed(
            "reachable",
            e.to_string(),
            "not reachable as a distribution node",
            format!(
                "epmd knows the node but its port does not answer on {}: it listens on another \
                 address or family (check inet_dist_use_interface and -proto_dist {})",
                id.address,
                id.proto_dist()
            ),
        ),
    }
}

/// Long names and `-proto_dist` as the running VM reports them; also returns
/// the `-proto_dist` in use, when it could be asked.
async fn mode(id: &Identity, session: &Session) -> (Check, Option<String>) {
    let longnames = session.call("net_kernel", "longnames", vec![]).await;
    let argument = session
        .call(
            "init",
            "get_argument",
            vec![Term::from(crate::dist::Atom::from("proto_dist"))],
        )
        .await;
    let (longnames, argument) = match (longnames, argument) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(e), _) | (_, Err(e)) => {
            return (
                Check::failed(
                    "mode",
                    format!("cannot ask the node for its naming mode: {e}"),
                    "naming mode unknown",
                    "the node is overloaded or stopping; run doctor again",
                ),
                None,
            );
        }
    };
    let values = proto_dist_values(&argument);
    let running = match values.as_slice() {
        [] => "inet_tcp".to_string(),
        [one] => one.clone(),
        _ => {
            return (
                Check::failed(
                    "mode",
                    format!(
                        "-proto_dist is given {} times ({}): OTP 25 then listens on IPv4 \
                         whatever the values",
                        values.len(),
                        values.join(", ")
                    ),
                    "-proto_dist given twice",
                    "give -proto_dist once: remove it from ERL_AFLAGS / ELIXIR_ERL_OPTIONS / \
                     vm.args where beamup already adds it (see `beamup inspect`)",
                ),
                None,
            );
        }
    };
    let check = if !is_true(&longnames) {
        Check::failed(
            "mode",
            "the node runs short names",
            "short names",
            "a node named after an address needs long names: remove `-sname` from vm.args and \
             RELEASE_DISTRIBUTION=sname from env.sh (beamup exports RELEASE_DISTRIBUTION=name)",
        )
    } else if running != id.proto_dist() {
        Check::failed(
            "mode",
            format!(
                "the node runs -proto_dist {running} but its address {} is {}",
                id.address,
                family_name(id.address)
            ),
            format!(
                "-proto_dist {running} on an {} address",
                family_name(id.address)
            ),
            format!(
                "an {} node needs -proto_dist {} exactly once; beamup adds it unless \
                 ERL_AFLAGS, ELIXIR_ERL_OPTIONS or env.sh set -proto_dist already",
                family_name(id.address),
                id.proto_dist()
            ),
        )
    } else {
        Check::ok("mode", format!("long names, -proto_dist {running}"))
    };
    (check, Some(running))
}

fn is_true(term: &Term) -> bool {
    matches!(term, Term::Atom(a) if a.name == "true")
}

/// `init:get_argument(proto_dist)`: `{ok, [["inet6_tcp"]]}` → `["inet6_tcp"]`;
/// `error` (not given) → `[]`. Strings arrive as byte lists or integer lists.
fn proto_dist_values(term: &Term) -> Vec<String> {
    let Term::Tuple(t) = term else {
        return Vec::new();
    };
    let [Term::Atom(ok), Term::List(groups)] = t.elements.as_slice() else {
        return Vec::new();
    };
    if ok.name != "ok" {
        return Vec::new();
    }
    groups
        .elements
        .iter()
        .filter_map(|group| match group {
            Term::List(values) => values.elements.first().and_then(charlist),
            _ => None,
        })
        .collect()
}

fn charlist(term: &Term) -> Option<String> {
    match term {
        Term::ByteList(b) => String::from_utf8(b.bytes.clone()).ok(),
        Term::List(l) => l
            .elements
            .iter()
            .map(|e| match e {
                Term::FixInteger(i) => u8::try_from(i.value).ok().map(char::from),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{Atom, FixInteger, List, Tuple};

    fn atom(name: &str) -> Term {
        Term::from(Atom::from(name))
    }

    fn chars(s: &str) -> Term {
        Term::from(List::from(
            s.bytes()
                .map(|b| Term::from(FixInteger::from(i32::from(b))))
                .collect::<Vec<_>>(),
        ))
    }

    fn ok(groups: Vec<Vec<Term>>) -> Term {
        Term::from(Tuple::from(vec![
            atom("ok"),
            Term::from(List::from(
                groups
                    .into_iter()
                    .map(|g| Term::from(List::from(g)))
                    .collect::<Vec<_>>(),
            )),
        ]))
    }

    #[test]
    fn proto_dist_argument() {
        let cases: Vec<(Term, Vec<&str>)> = vec![
            (atom("error"), vec![]),
            (ok(vec![vec![chars("inet6_tcp")]]), vec!["inet6_tcp"]),
            (
                ok(vec![vec![chars("inet6_tcp")], vec![chars("inet6_tcp")]]),
                vec!["inet6_tcp", "inet6_tcp"],
            ),
            (ok(vec![vec![atom("x")]]), vec![]),
        ];
        for (term, want) in cases {
            assert_eq!(proto_dist_values(&term), want, "{term}");
        }
    }
}
