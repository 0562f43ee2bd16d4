//! Log output for the `bootstrap` binary and `mskbench process`.
//!
//! Text lines on stdout without colours (CloudWatch keeps them as they are),
//! filtered by `RUST_LOG` in the `target=level,…` form (`info` when unset or
//! unreadable). The processor's events never carry payloads or secrets, so
//! no level leaks them.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the global subscriber; a second call does nothing.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| Targets::from_str(&v).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_target(false);
    let _ = tracing_subscriber::registry().with(filter).with(fmt).try_init();
}
