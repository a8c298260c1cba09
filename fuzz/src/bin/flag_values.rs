//! The small parsers of flag values, all fed the same string: durations
//! (plain, and each flag's range), `--ip` sources, node names (`--peers`,
//! `--basename`) and the basename inferred from the command.
use beamup::address::Source;
use beamup::{duration, naming};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };

        if let Ok(d) = duration::parse(text) {
            assert!(!d.is_zero(), "{text:?} parsed to zero");
        }
        for bounds in [
            duration::INTERVAL,
            duration::DNS_TIMEOUT,
            duration::METADATA_TIMEOUT,
        ] {
            if let Ok(d) = bounds.parse(text) {
                assert!(
                    bounds.min <= d && d <= bounds.max,
                    "{text:?}: {d:?} for {bounds:?}"
                );
            }
        }

        // What `inspect` shows for a source parses back to the same source.
        if let Ok(source) = Source::parse(text) {
            let shown = source.to_string();
            assert_eq!(
                Source::parse(&shown),
                Ok(source),
                "{text:?} shown as {shown:?}"
            );
        }

        if let Ok((name, host)) = naming::parse_node(text) {
            assert!(naming::validate_basename(name).is_ok());
            assert!(!host.is_empty());
            assert_eq!(format!("{name}@{host}"), text);
        }
        if let Some(name) = naming::basename_from_command(text) {
            assert!(
                !name.is_empty() && !name.contains('/'),
                "{text:?} -> {name:?}"
            );
        }
    });
}
