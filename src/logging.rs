//! Logs go to stderr only: stdout belongs to the release. Compact text by
//! default, JSON with `--log-format json`, level from BEAMUP_LOG (like
//! watchexec's WATCHEXEC_LOG), `info` when unset.

use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogFormat;

pub const LEVEL_VAR: &str = "BEAMUP_LOG";

pub fn init(format: LogFormat) {
    // A plain level (error, warn, info, debug, trace, off): tracing-subscriber's
    // EnvFilter directives would pull in a regex engine, a third of the binary.
    let filter = std::env::var(LEVEL_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        // Plain text: container logs are files and pipes, not terminals.
        .with_ansi(false)
        .with_target(false);
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
