//! What a scenario run produced, and how it is shown and compared.
//!
//! [`model::RunResult`] is `result.json`: versioned, with the keys other
//! tools and CI read (`schema_version`, `scenario`, `totals`, `latency_ms`,
//! `series`, `slo`). [`catalogue`] is the one table of the flat metric
//! names read off it (`unaccounted`, `throttled_ratio`, `e2e_p99_ms`), with
//! each one's unit, window, direction and how a comparison judges it.
//! Everything else here is a pure function of the two: [`slo`] parses and
//! evaluates SLO expressions such as `throttled_ratio < 0.01`; [`markdown`]
//! renders the summary a CI comment shows; [`html`] renders a
//! self-contained page with inline SVG charts of the per-second series
//! against Firehose's quota lines; [`mod@compare`] puts two results side by
//! side and says which metric regressed — beyond noise when a side is the
//! [`aggregate`] of repeated runs, by the statistics of [`noise`]. No I/O:
//! callers read and write the files.
//!
//! Modules depend one way: `model` ← `catalogue` ← `slo`, `compare`,
//! `markdown` ← `html`; `noise` ← `aggregate` ← `compare`.

#![warn(missing_docs)]

pub mod aggregate;
pub mod catalogue;
pub mod compare;
pub mod html;
pub mod markdown;
pub mod model;
pub mod noise;
pub mod saturation;
pub mod slo;
mod svg;
pub mod sweep;

pub use aggregate::{Aggregate, Side};
pub use compare::{Comparison, Options, Verdict, compare, compare_sides};
pub use model::{
    Aborted, FaultRecord, Percentiles, PhaseSpan, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, SloResult, Totals,
    curve_quantiles,
};
pub use slo::{Slo, SloError};
