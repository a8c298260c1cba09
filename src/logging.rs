//! Logs go to stderr only: stdout belongs to the release. Compact text by
//! default, JSON with `--log-format json`, level from BEAMUP_LOG (like
//! watchexec's WATCHEXEC_LOG), `info` when unset.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub const LEVEL_VAR: &str = "BEAMUP_LOG";

/// The level for beamup's own events: a plain level (error, warn, info,
/// debug, trace, off). tracing-subscriber's EnvFilter directives would pull in
/// a regex engine, a third of the binary.
pub fn level() -> LevelFilter {
    std::env::var(LEVEL_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO)
}

pub fn init(format: LogFormat) {
    let level = level();
    // Libraries (hickory's per-query internals, hyper) stay at info at most:
    // at debug they would drown beamup's own lines; `trace` shows everything.
    let libraries = if level == LevelFilter::TRACE {
        LevelFilter::TRACE
    } else {
        level.min(LevelFilter::INFO)
    };
    let filter = Targets::new()
        .with_target("beamup", level)
        .with_default(libraries);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Plain text: container logs are files and pipes, not terminals.
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => registry.with(fmt.compact()).try_init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
    };
    if let Some(value) = std::env::var(LEVEL_VAR)
        .ok()
        .filter(|v| v.trim().parse::<LevelFilter>().is_err())
    {
        tracing::warn!(
            "{LEVEL_VAR}=`{value}` is not a level (error, warn, info, debug, trace, off); using info"
        );
    }
}
