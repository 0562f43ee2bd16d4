//! What a scenario run produced, and how it is shown and compared.
//!
//! [`model::RunResult`] is `result.json`: versioned, with the keys other
//! tools and CI read (`schema_version`, `scenario`, `totals`, `latency_ms`,
//! `series`, `slo`). Everything else here is a pure function of it:
//! [`slo`] parses and evaluates SLO expressions such as
//! `throttled_ratio < 0.01`; [`markdown`] renders the summary a CI comment
//! shows; [`html`] renders a self-contained page with inline SVG charts
//! ([`svg`]) of the per-second series against Firehose's quota lines;
//! [`compare`] puts two results side by side and says which metric
//! regressed. No I/O: callers read and write the files.

pub mod compare;
pub mod html;
pub mod markdown;
pub mod model;
pub mod slo;
pub mod svg;

pub use compare::{Comparison, compare};
pub use model::{Percentiles, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals};
pub use slo::{Slo, SloResult};
