//! The terms exchanged with `rex`: building a call, recognising its reply and
//! decoding the few results beamup needs. Pure functions, so they are tested
//! without a node.

use erl_dist::message::Message;
use erl_dist::term::{Atom, List, Pid, Reference, Term, Tuple};

use super::DistError;

/// `{'$gen_call', {From, Ref}, {call, Module, Function, Args, user}}`.
///
/// `user` as the group leader makes any output of the call go to the node's
/// own `user` process instead of back to us (rpc.erl: "hidden C nodes doesn't
/// want any I/O").
pub(crate) fn call_request(
    from: Pid,
    reference: Reference,
    module: &str,
    function: &str,
    args: Vec<Term>,
) -> Term {
    let from_tag = Tuple::from(vec![Term::from(from), Term::from(reference)]);
    let call = Tuple::from(vec![
        atom("call"),
        atom(module),
        atom(function),
        Term::from(List::from(args)),
        atom("user"),
    ]);
    Term::from(Tuple::from(vec![
        atom("$gen_call"),
        Term::from(from_tag),
        Term::from(call),
    ]))
}

/// The message that carries a call to `rex`.
pub(crate) fn call_message(
    from: Pid,
    reference: Reference,
    module: &str,
    function: &str,
    args: Vec<Term>,
) -> Message {
    let request = call_request(from.clone(), reference, module, function, args);
    Message::reg_send(from, Atom::from("rex"), request)
}

pub(crate) fn atom(name: &str) -> Term {
    Term::from(Atom::from(name))
}

/// The term a message to one of our pids carries (every way OTP sends one),
/// or None for control messages (ticks, links, exits, ...).
pub(crate) fn payload_of(message: &Message) -> Option<&Term> {
    match message {
        Message::Send(m) => Some(&m.message),
        Message::SendSender(m) => Some(&m.message),
        Message::SendTt(m) => Some(&m.message),
        Message::SendSenderTt(m) => Some(&m.message),
        Message::AliasSend(m) => Some(&m.message),
        _ => None,
    }
}

/// If `message` is the answer `{Ref, Result}` to one of our calls (a
/// reference created by `own_node`), returns the reference's id words (the
/// key callers wait under) and the result.
pub fn reply_of(message: Message, own_node: &str) -> Option<(Vec<u32>, Term)> {
    let Term::Tuple(tuple) = payload_of(&message)? else {
        return None;
    };
    match tuple.elements.as_slice() {
        [Term::Reference(r), result] if r.node.name == own_node => {
            Some((r.id.clone(), result.clone()))
        }
        _ => None,
    }
}

/// Result of `erlang:nodes/0`: a list of node-name atoms.
pub fn decode_nodes(result: Term) -> Result<Vec<String>, DistError> {
    let result = check_badrpc(result)?;
    let elements = match result {
        Term::List(list) => list.elements,
        other => {
            return Err(DistError::Protocol(format!(
                "erlang:nodes() returned {other}, expected a list of atoms"
            )));
        }
    };
    elements
        .into_iter()
        .map(|term| match term {
            Term::Atom(a) => Ok(a.name),
            other => Err(DistError::Protocol(format!(
                "erlang:nodes() returned a list holding {other}, expected atoms"
            ))),
        })
        .collect()
}

/// Result of `net_kernel:connect_node/1` or `erlang:disconnect_node/1`:
/// `true` / `false`, or `ignored` when the local node is not distributed.
pub fn decode_bool(result: Term, call: &str) -> Result<bool, DistError> {
    match check_badrpc(result)? {
        Term::Atom(a) if a.name == "true" => Ok(true),
        Term::Atom(a) if a.name == "false" => Ok(false),
        Term::Atom(a) if a.name == "ignored" => Err(DistError::Rpc(format!(
            "{call} returned ignored: the local node is not running distributed"
        ))),
        other => Err(DistError::Protocol(format!(
            "{call} returned {other}, expected true or false"
        ))),
    }
}

/// `{badrpc, Reason}` becomes an error; anything else passes through.
pub fn check_badrpc(result: Term) -> Result<Term, DistError> {
    if let Term::Tuple(t) = &result
        && let [Term::Atom(tag), reason] = t.elements.as_slice()
        && tag.name == "badrpc"
    {
        return Err(DistError::Rpc(crate::untrusted::shown(&reason.to_string())));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::message::Message;

    const OWN: &str = "beamup-1@127.0.0.1";

    fn pid() -> Pid {
        Pid::new(OWN, 1, 0, 7)
    }

    fn reference(id: Vec<u32>, node: &str) -> Reference {
        Reference {
            node: Atom::from(node),
            id,
            creation: 7,
        }
    }

    fn tuple(elements: Vec<Term>) -> Term {
        Term::from(Tuple::from(elements))
    }

    fn list(elements: Vec<Term>) -> Term {
        Term::from(List::from(elements))
    }

    type ReplyCase = (&'static str, Message, Option<(Vec<u32>, Term)>);
    type NodesCase = (&'static str, Term, Result<Vec<&'static str>, &'static str>);

    fn send(message: Term) -> Message {
        Message::send(pid(), message)
    }

    #[test]
    fn call_request_is_a_gen_call_to_rex() {
        let r = reference(vec![1, 2, 3], OWN);
        let got = call_request(
            pid(),
            r.clone(),
            "net_kernel",
            "connect_node",
            vec![atom("b@127.0.0.1")],
        );
        let want = tuple(vec![
            atom("$gen_call"),
            tuple(vec![Term::from(pid()), Term::from(r)]),
            tuple(vec![
                atom("call"),
                atom("net_kernel"),
                atom("connect_node"),
                list(vec![atom("b@127.0.0.1")]),
                atom("user"),
            ]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn call_request_round_trips_through_the_external_term_format() {
        let request = call_request(
            pid(),
            reference(vec![9, 8, 7], OWN),
            "erlang",
            "nodes",
            vec![],
        );
        let mut bytes = Vec::new();
        request.encode(&mut bytes).expect("encode");
        // 131 is the external term format version byte every encoded term starts with.
        assert_eq!(bytes.first(), Some(&131));
        let decoded = Term::decode(bytes.as_slice()).expect("decode");
        assert_eq!(decoded, request);
    }

    #[test]
    fn call_message_is_a_reg_send_to_rex() {
        match call_message(pid(), reference(vec![1], OWN), "erlang", "nodes", vec![]) {
            Message::RegSend(m) => {
                assert_eq!(m.to_name.name, "rex");
                assert_eq!(m.from_pid, pid());
            }
            other => panic!("expected RegSend, got {other:?}"),
        }
    }

    #[test]
    fn reply_of_table() {
        let ours = Term::from(reference(vec![4, 5, 6], OWN));
        let theirs = Term::from(reference(vec![4, 5, 6], "a@127.0.0.1"));
        let cases: Vec<ReplyCase> = vec![
            (
                "our ref",
                send(tuple(vec![ours.clone(), atom("true")])),
                Some((vec![4, 5, 6], atom("true"))),
            ),
            (
                "send_sender",
                Message::send_sender(pid(), pid(), tuple(vec![ours.clone(), atom("ok")])),
                Some((vec![4, 5, 6], atom("ok"))),
            ),
            (
                "ref of another node",
                send(tuple(vec![theirs, atom("true")])),
                None,
            ),
            (
                "three elements",
                send(tuple(vec![ours.clone(), atom("a"), atom("b")])),
                None,
            ),
            ("not a tuple", send(atom("hello")), None),
            (
                "first element not a ref",
                send(tuple(vec![atom("io_request"), atom("x")])),
                None,
            ),
            ("a tick", Message::Tick, None),
            (
                "a reg_send",
                Message::reg_send(pid(), Atom::from("x"), tuple(vec![ours, atom("true")])),
                None,
            ),
        ];
        for (name, message, want) in cases {
            assert_eq!(reply_of(message, OWN), want, "case {name}");
        }
    }

    #[test]
    fn decode_nodes_table() {
        let cases: Vec<NodesCase> = vec![
            ("empty", list(vec![]), Ok(vec![])),
            (
                "two",
                list(vec![atom("b@127.0.0.1"), atom("c@::1")]),
                Ok(vec!["b@127.0.0.1", "c@::1"]),
            ),
            ("not a list", atom("undefined"), Err("expected a list")),
            (
                "not atoms",
                list(vec![tuple(vec![])]),
                Err("expected atoms"),
            ),
            (
                "badrpc",
                tuple(vec![atom("badrpc"), atom("nodedown")]),
                Err("remote call failed: 'nodedown'"),
            ),
        ];
        for (name, term, want) in cases {
            let got = decode_nodes(term);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "case {name}"),
                (Err(e), Err(needle)) => {
                    assert!(e.to_string().contains(needle), "case {name}: {e}")
                }
                (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn decode_bool_table() {
        let cases: Vec<(Term, Result<bool, &str>)> = vec![
            (atom("true"), Ok(true)),
            (atom("false"), Ok(false)),
            (atom("ignored"), Err("not running distributed")),
            (atom("maybe"), Err("expected true or false")),
            (list(vec![]), Err("expected true or false")),
            (
                tuple(vec![
                    atom("badrpc"),
                    tuple(vec![atom("EXIT"), atom("boom")]),
                ]),
                Err("remote call failed"),
            ),
        ];
        for (term, want) in cases {
            let shown = term.to_string();
            let got = decode_bool(term, "net_kernel:connect_node/1");
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "case {shown}"),
                (Err(e), Err(needle)) => {
                    assert!(e.to_string().contains(needle), "case {shown}: {e}")
                }
                (got, want) => panic!("case {shown}: got {got:?}, want {want:?}"),
            }
        }
    }
}
