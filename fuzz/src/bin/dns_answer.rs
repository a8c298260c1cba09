//! A DNS answer from a hostile or misconfigured server, as discovery counts it
//! (issue 16): the bytes as a DNS message, the cap from the first byte. An
//! answer within the cap gives at most `cap` addresses or SRV targets; one over
//! it is refused with a count above the cap, before any node name is built.
use beamup::discovery::dns::{addresses_within, srv_targets_within};
use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::RecordType;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&first, rest)) = data.split_first() else {
            return;
        };
        let cap = usize::from(first) + 1;
        let Ok(message) = Message::from_vec(rest) else {
            return;
        };
        let answers = &message.answers;
        for record_type in [RecordType::A, RecordType::AAAA] {
            match addresses_within(answers, record_type, cap) {
                Ok(addresses) => assert!(addresses.len() <= cap, "{} > {cap}", addresses.len()),
                Err(count) => assert!(count > cap, "refused {count} <= {cap}"),
            }
        }
        match srv_targets_within(answers, cap) {
            Ok(targets) => assert!(targets.len() <= cap, "{} > {cap}", targets.len()),
            Err(count) => assert!(count > cap, "refused {count} <= {cap}"),
        }
    });
}
