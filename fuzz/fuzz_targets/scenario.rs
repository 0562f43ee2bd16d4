//! The scenario parser: any TOML text, `Ok` or a clear `Err`, never a
//! panic.
//!
//! Text that is not UTF-8 is refused before parsing, as `Scenario::load`
//! refuses it when reading the file. A scenario that parses is used the way
//! `mskbench run` uses it — its plan printed (`Display`), its duration and
//! record count computed — and written out as JSON (the `result.json`
//! settings); that JSON must read back as the same scenario, the registry
//! aside (its credentials are not written out). An error names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mskbench_scenarios::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let scenario = match Scenario::parse(text, "fuzz.toml") {
        Ok(scenario) => scenario,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("fuzz.toml"), "an error that does not name the file: {message}");
            return;
        }
    };
    let _ = scenario.to_string();
    let _ = scenario.total_duration();
    let _ = scenario.planned_records();
    let json = match serde_json::to_value(&scenario) {
        Ok(json) => json,
        Err(e) => panic!("a parsed scenario cannot be written out: {e}"),
    };
    let mut back: Scenario = match serde_json::from_value(json.clone()) {
        Ok(back) => back,
        Err(e) => panic!("a written-out scenario does not read back ({e}): {json}"),
    };
    back.registry = scenario.registry.clone();
    assert_eq!(back, scenario, "a written-out scenario reads back differently: {json}");
});
