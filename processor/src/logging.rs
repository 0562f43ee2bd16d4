//! Log output for the `bootstrap` binary and `mskbench process`.
//!
//! Text lines on stdout without colours (CloudWatch keeps them as they are),
//! filtered by `RUST_LOG` in the `target=level,…` form (when unset or
//! unreadable: this crate's events from `info`, other crates' from `warn`). The processor's events never carry payloads or secrets, so
//! no level leaks them.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Our events at `info`; other crates' (the embedded broker's, the SDK's)
/// only from `warn`, so they do not drown the function's own lines.
fn default_filter() -> Targets {
    Targets::new()
        .with_default(tracing::Level::WARN)
        .with_target("mskbench_processor", tracing::Level::INFO)
        .with_target("bootstrap", tracing::Level::INFO)
}

/// Installs the global subscriber, writing to stdout; a second call does nothing.
pub fn init() {
    init_to(std::io::stdout);
}

/// Installs the global subscriber writing to `writer` (a log file of a
/// run, say); a second call does nothing.
pub fn init_to<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| Targets::from_str(&v).ok()).unwrap_or_else(default_filter);
    let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(writer);
    let _ = tracing_subscriber::registry().with(filter).with(fmt).try_init();
}
