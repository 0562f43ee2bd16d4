//! Where a JSON output goes: a file, or `-` for stdout.
//!
//! Every `--…-json PATH` flag takes `-` as stdout, as kcat and jq users
//! expect, so a result can be piped without a temporary file.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Writes `value` as pretty JSON (with a final newline) to `path`, or to
/// stdout when `path` is `-`.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising the JSON output")? + "\n";
    if path == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing the JSON to stdout")
    } else {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}
