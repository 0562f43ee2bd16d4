//! Instruction counts of the hot paths under callgrind, with gungraun: the
//! regression gate of `scripts/bench-compare` (see BENCHMARKS.md).
//!
//! Each benchmark runs its case's `run_*` once in a fresh process under
//! Valgrind; the case's `new` (inputs, compiled schema, one warming run) is
//! the setup expression, which gungraun leaves out of the count. Each
//! function hands its case back so that freeing it happens in gungraun's
//! caller, outside the count: a by-value argument dropped inside would add
//! a `free` per input buffer (1,000 of them for the packing case). The cases
//! and why their counts are deterministic are in `src/lib.rs`.
//!
//! `cargo bench -p mskbench-icount` measures (needs `valgrind` and
//! `gungraun-runner` 0.20.0: `scripts/setup-system`, `scripts/setup-tools`).
//! `cargo test --all-targets` runs this file in gungraun's test mode — each
//! function once, natively, in well under a second — which still starts
//! `gungraun-runner`, so that too needs the runner on `PATH`.

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use mskbench_icount::{Base64, Event, Pack, Parse, Transcode};

#[library_benchmark]
#[bench::kib_1(Base64::new(1024))]
fn base64_mskbench(mut case: Base64) -> Base64 {
    black_box(case.run_mskbench());
    case
}

#[library_benchmark]
#[bench::kib_1(Base64::new(1024))]
fn base64_base64_crate(mut case: Base64) -> Base64 {
    black_box(case.run_base64_crate());
    case
}

library_benchmark_group!(name = base64_decode, benchmarks = [base64_mskbench, base64_base64_crate]);

#[library_benchmark]
#[bench::clickevents_64(Transcode::new())]
fn transcode_mskbench(mut case: Transcode) -> Transcode {
    black_box(case.run_mskbench());
    case
}

#[library_benchmark]
#[bench::clickevents_64(Transcode::new())]
fn transcode_apache_avro(case: Transcode) -> Transcode {
    black_box(case.run_apache_avro());
    case
}

library_benchmark_group!(name = transcode_clickevent, benchmarks = [transcode_mskbench, transcode_apache_avro]);

#[library_benchmark]
#[bench::records_1000(Pack::new())]
fn pack_mskbench(mut case: Pack) -> Pack {
    black_box(case.run_mskbench());
    case
}

#[library_benchmark]
#[bench::records_1000(Pack::new())]
fn pack_copied_lines(case: Pack) -> Pack {
    black_box(case.run_copied_lines());
    case
}

library_benchmark_group!(name = pack_put_record_batch, benchmarks = [pack_mskbench, pack_copied_lines]);

#[library_benchmark]
#[bench::clickevents_1000(Event::new())]
fn event_mskbench(mut case: Event) -> Event {
    black_box(case.run_mskbench());
    case
}

#[library_benchmark]
#[bench::clickevents_1000(Event::new())]
fn event_straightforward(case: Event) -> Event {
    black_box(case.run_straightforward());
    case
}

library_benchmark_group!(name = lambda_event_1000_clickevents, benchmarks = [event_mskbench, event_straightforward]);

#[library_benchmark]
#[bench::records_1000(Parse::new())]
fn parse_mskbench(case: Parse) -> Parse {
    black_box(case.run_mskbench());
    case
}

#[library_benchmark]
#[bench::records_1000(Parse::new())]
fn parse_serde_json(case: Parse) -> Parse {
    black_box(case.run_serde_json());
    case
}

library_benchmark_group!(name = event_json_parse, benchmarks = [parse_mskbench, parse_serde_json]);

main!(
    library_benchmark_groups = base64_decode,
    transcode_clickevent,
    pack_put_record_batch,
    lambda_event_1000_clickevents,
    event_json_parse
);
