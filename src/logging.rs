//! Logs go to stderr only: stdout belongs to the release. Compact text by
//! default, JSON with `--log-format json`, level from BEAMUP_LOG (like
//! watchexec's WATCHEXEC_LOG), `info` when unset.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub const LEVEL_VAR: &str = "BEAMUP_LOG";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env(LEVEL_VAR).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
