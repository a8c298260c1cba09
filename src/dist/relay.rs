//! The relay: a process the reporter starts inside the local VM so that it
//! learns of every nodeup/nodedown the moment the VM does, instead of at the
//! next poll (issue 11: a dropped connection heals in milliseconds).
//!
//! It is stdlib only and loads no code: the source below is scanned and
//! parsed by the VM's own `erl_scan`/`erl_parse` and run by `erl_eval` in a
//! process spawned through `rex`. The relay links to the reporter's
//! hidden-node process, so it dies with beamup's connection (exit reason
//! `noconnection`) and net_kernel drops its `monitor_nodes` subscription with
//! it: nothing is left in the VM once the reporter is gone. Its link is also
//! how the reporter hears that the relay died (an exit signal to our pid).

use erl_dist::message::Message;
use erl_dist::term::{List, Pid, Term, Tuple};

use super::DistError;
use super::rpc::{self, atom};
use super::session::Session;

/// What the relay runs, with `Owner` bound to the reporter's pid. The
/// dictionary key lets an operator (and the tests) find it with
/// `process_info(P, dictionary)`; `ready` comes after the subscription, so a
/// sync on it catches any drop that happened while the relay was starting.
const SOURCE: &str = "\
link(Owner),
put(beamup_relay, node(Owner)),
ok = net_kernel:monitor_nodes(true),
Owner ! {beamup_relay, ready},
Relay = fun Loop() ->
    receive
        {nodeup, Node} -> Owner ! {beamup_relay, nodeup, Node};
        {nodedown, Node} -> Owner ! {beamup_relay, nodedown, Node};
        _ -> ignored
    end,
    Loop()
end,
Relay().
";

/// The tag of every message the relay sends.
const TAG: &str = "beamup_relay";

/// What the relay (or its link) tells the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// Subscribed to nodeup/nodedown: from now on no drop goes unnoticed.
    Ready,
    /// The local node connected to this (visible) node.
    Up(String),
    /// The local node's connection to this node is gone.
    Down(String),
    /// An exit signal reached our pid: the relay (the only process linked
    /// to us) died with this reason.
    Exited { from: Pid, reason: String },
}

/// Starts the relay in the session's node; returns its pid. Three calls
/// through `rex`: scan, parse, spawn. A node that cannot (an old OTP, a
/// restricted rex) answers with an error, and the reporter falls back to
/// its poll.
pub(crate) async fn start(session: &Session) -> Result<Pid, DistError> {
    // A string: erl_scan wants a list of characters.
    let source = Term::from(SOURCE.to_owned());
    let tokens = match ok_tuple(session.call("erl_scan", "string", vec![source]).await?, 3) {
        Some(mut parts) => parts.swap_remove(1),
        None => return Err(refused("erl_scan:string/1")),
    };
    let exprs = match ok_tuple(
        session
            .call("erl_parse", "parse_exprs", vec![tokens])
            .await?,
        2,
    ) {
        Some(mut parts) => parts.swap_remove(1),
        None => return Err(refused("erl_parse:parse_exprs/1")),
    };
    let owner = Tuple::from(vec![atom("Owner"), Term::from(session.self_pid())]);
    let args = List::from(vec![exprs, Term::from(List::from(vec![Term::from(owner)]))]);
    match session
        .call(
            "erlang",
            "spawn",
            vec![atom("erl_eval"), atom("exprs"), Term::from(args)],
        )
        .await?
    {
        Term::Pid(pid) => Ok(pid),
        other => Err(DistError::Protocol(format!(
            "erlang:spawn/3 returned {other}, expected a pid"
        ))),
    }
}

/// The elements of `{ok, ...}` with `len` elements, or None.
fn ok_tuple(term: Term, len: usize) -> Option<Vec<Term>> {
    match term {
        Term::Tuple(t)
            if t.elements.len() == len
                && matches!(&t.elements[0], Term::Atom(a) if a.name == "ok") =>
        {
            Some(t.elements)
        }
        _ => None,
    }
}

fn refused(call: &str) -> DistError {
    DistError::Rpc(format!("{call} did not accept beamup's relay source"))
}

/// If `message` is from the relay (or its exit signal), what it says.
pub(crate) fn event_of(message: &Message) -> Option<NodeEvent> {
    match message {
        Message::Exit(m) => return Some(exited(&m.from_pid, &m.reason)),
        Message::ExitTt(m) => return Some(exited(&m.from_pid, &m.reason)),
        Message::PayloadExit(m) => return Some(exited(&m.from_pid, &m.reason)),
        Message::PayloadExitTt(m) => return Some(exited(&m.from_pid, &m.reason)),
        _ => {}
    }
    let Term::Tuple(tuple) = rpc::payload_of(message)? else {
        return None;
    };
    let atoms: Option<Vec<&str>> = tuple
        .elements
        .iter()
        .map(|t| match t {
            Term::Atom(a) => Some(a.name.as_str()),
            _ => None,
        })
        .collect();
    match atoms?.as_slice() {
        [TAG, "ready"] => Some(NodeEvent::Ready),
        // A node name the VM reports is logged and dialed: it must be one.
        [TAG, "nodeup", node] if crate::naming::parse_node(node).is_ok() => {
            Some(NodeEvent::Up((*node).to_owned()))
        }
        [TAG, "nodedown", node] if crate::naming::parse_node(node).is_ok() => {
            Some(NodeEvent::Down((*node).to_owned()))
        }
        _ => None,
    }
}

fn exited(from: &Pid, reason: &Term) -> NodeEvent {
    NodeEvent::Exited {
        from: from.clone(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "beamup-1@127.0.0.1";

    fn ours() -> Pid {
        Pid::new(OWN, 1, 0, 7)
    }

    fn relay_pid() -> Pid {
        Pid::new("demo@127.0.0.1", 90, 0, 3)
    }

    fn tuple(names: &[&str]) -> Term {
        Term::from(Tuple::from(
            names.iter().map(|n| atom(n)).collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn event_of_table() {
        let cases: Vec<(&str, Message, Option<NodeEvent>)> = vec![
            (
                "ready",
                Message::send(ours(), tuple(&["beamup_relay", "ready"])),
                Some(NodeEvent::Ready),
            ),
            (
                "nodeup",
                Message::send(ours(), tuple(&["beamup_relay", "nodeup", "b@10.0.0.2"])),
                Some(NodeEvent::Up("b@10.0.0.2".into())),
            ),
            (
                "nodedown",
                Message::send(ours(), tuple(&["beamup_relay", "nodedown", "b@10.0.0.2"])),
                Some(NodeEvent::Down("b@10.0.0.2".into())),
            ),
            (
                "another tag",
                Message::send(ours(), tuple(&["other", "nodeup", "b@10.0.0.2"])),
                None,
            ),
            (
                "an unknown event",
                Message::send(ours(), tuple(&["beamup_relay", "sideways", "b"])),
                None,
            ),
            (
                "a node that is no atom",
                Message::send(
                    ours(),
                    Term::from(Tuple::from(vec![
                        atom("beamup_relay"),
                        atom("nodeup"),
                        Term::from(List::nil()),
                    ])),
                ),
                None,
            ),
            ("a tick", Message::Tick, None),
            (
                "the relay's exit",
                Message::exit(relay_pid(), ours(), atom("killed")),
                Some(NodeEvent::Exited {
                    from: relay_pid(),
                    reason: "'killed'".into(),
                }),
            ),
        ];
        for (name, message, want) in cases {
            assert_eq!(event_of(&message), want, "case {name}");
        }
    }

    #[test]
    fn the_source_binds_only_owner() {
        // The spawn passes one binding; any other free variable would make
        // erl_eval fail with {unbound_var, _} inside the VM.
        assert!(SOURCE.contains("Owner"));
        assert!(SOURCE.trim_end().ends_with('.'));
        assert!(SOURCE.is_ascii());
    }
}
