//! Writes a starting corpus for every target into `<dir>/<target>/`: valid
//! inputs the fuzzer mutates from (the distribution ones are encoded by
//! erl_dist itself, so they are byte-exact protocol messages).
use std::path::Path;

use beamup_fuzz::{OWN_NODE, Peer, block_on};
use erl_dist::message::{Message, channel};
use erl_dist::term::{Atom, List, Pid, Reference, Term, Tuple};
use hickory_resolver::proto::op::{Message as DnsMessage, OpCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let dir = Path::new(&dir);
    let texts: &[(&str, &[&str])] = &[
        (
            "template",
            &[
                "-name ${A}@h\n-setcookie ${EMPTY:-x}\n",
                "tasks.${SERVICE:-web}.${B}",
                "$$HOME $ ${A:-${B}}\n${1X}\n${",
            ],
        ),
        (
            "flag_values",
            &[
                "500ms",
                "1.5s",
                "2m",
                "1h",
                "99999999999999999999s",
                "env:POD_IP",
                "cidr:10.42.0.0/16",
                "rancher:http://169.254.169.250/",
                "ecs",
                "interface:eth0",
                "demo@10.0.0.2",
                "demo@fd00::2",
                "/app/bin/my_app",
            ],
        ),
        (
            "peers_file",
            &[
                "demo@10.0.0.1\ndemo@10.0.0.2\ndemo@10.0.0.3\tconnected",
                "a@'b\\\nc@d\tfailed\treason \"x\"",
            ],
        ),
    ];
    for (target, inputs) in texts {
        for (i, input) in inputs.iter().enumerate() {
            write(dir, target, i, input.as_bytes())?;
        }
    }
    let vm_args = "## comment\n-name x@y\n-sname z\n-setcookie c\n+K true\n-proto_dist inet6_tcp\n";
    for knobs in [0u8, 1, 2, 13] {
        let mut input = vec![knobs];
        input.extend_from_slice(vm_args.as_bytes());
        write(dir, "vm_args", knobs.into(), &input)?;
    }

    // A node's side of the handshake: status `ok`, then its challenge
    // (protocol 6 'N': flags, challenge, creation, name), then an ack.
    let mut shake = frame16(b"sok");
    let mut challenge = vec![b'N'];
    challenge.extend_from_slice(&0x0000_0003_0d07_df7du64.to_be_bytes());
    challenge.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    challenge.extend_from_slice(&7u32.to_be_bytes());
    challenge.extend_from_slice(&(14u16).to_be_bytes());
    challenge.extend_from_slice(b"demo@127.0.0.1");
    shake.extend(frame16(&challenge));
    let mut ack = vec![b'a'];
    ack.extend_from_slice(&[0; 16]);
    shake.extend(frame16(&ack));
    write(dir, "dist_handshake", 0, &shake)?;
    write(dir, "dist_handshake", 1, &frame16(b"salive"))?;
    // epmd's PORT2_RESP: tag 119, result 0, port, type, protocol, versions, name, extra.
    let mut epmd = vec![119, 0, 0x9c, 0x40, 77, 0, 0, 6, 0, 5, 0, 4];
    epmd.extend_from_slice(b"demo");
    epmd.extend_from_slice(&[0, 0]);
    write(dir, "dist_handshake", 2, &epmd)?;

    // Replies as the node sends them: a tick, `{Ref, Nodes}`, `{Ref, true}`, a badrpc.
    let pid = Pid::new(OWN_NODE, 1, 0, 5);
    let reference = || Reference {
        node: Atom::from(OWN_NODE),
        id: vec![1, 2, 3],
        creation: 5,
    };
    let atom = |a: &str| Term::from(Atom::from(a));
    let reply = |result: Term| Term::from(Tuple::from(vec![Term::from(reference()), result]));
    let messages = [
        Message::Tick,
        Message::send(
            pid.clone(),
            reply(Term::from(List::from(vec![
                atom("b@10.0.0.2"),
                atom("c@fd00::3"),
            ]))),
        ),
        Message::send(pid.clone(), reply(atom("true"))),
        Message::send_sender(
            pid.clone(),
            pid.clone(),
            reply(Term::from(Tuple::from(vec![
                atom("badrpc"),
                atom("nodedown"),
            ]))),
        ),
    ];
    let wire = Peer::default();
    let (mut tx, _rx) = channel(wire.clone(), Default::default());
    for (i, message) in messages.into_iter().enumerate() {
        block_on(tx.send(message)).map_err(std::io::Error::other)?;
        write(dir, "dist_messages", i, &wire.written())?;
    }
    dns_answers(dir)
}

/// DNS answers as a server sends them, each after the cap byte (cap = byte + 1):
/// A records under and over the cap, AAAA, and SRV targets.
fn dns_answers(dir: &Path) -> std::io::Result<()> {
    let name = |n: &str| Name::from_ascii(n).map_err(std::io::Error::other);
    let service = name("demo.svc.test.")?;
    let answer = |records: Vec<RData>| -> std::io::Result<Vec<u8>> {
        let mut message = DnsMessage::response(7, OpCode::Query);
        for rdata in records {
            message.add_answer(Record::from_rdata(service.clone(), 30, rdata));
        }
        message.to_vec().map_err(std::io::Error::other)
    };
    let a = |i: u8| RData::A(A::new(10, 0, 0, i));
    let aaaa = |i: u16| RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, i));
    let srv = |i: u8| -> std::io::Result<RData> {
        Ok(RData::SRV(SRV::new(
            0,
            10,
            4369,
            name(&format!("h{i}.svc.test."))?,
        )))
    };
    let seeds: [(u8, Vec<RData>); 4] = [
        (3, (1..=3).map(a).collect()),
        (1, (1..=5).map(a).collect()),
        (7, (1..=2).map(aaaa).chain((1..=2).map(a)).collect()),
        (2, (1..=4).map(srv).collect::<std::io::Result<_>>()?),
    ];
    for (i, (cap, records)) in seeds.into_iter().enumerate() {
        let mut input = vec![cap];
        input.extend(answer(records)?);
        write(dir, "dns_answer", i, &input)?;
    }
    Ok(())
}

fn frame16(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn write(dir: &Path, target: &str, i: usize, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("seed-{i}")), bytes)
}
