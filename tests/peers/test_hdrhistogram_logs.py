"""The HdrHistogram interval logs of `mskbench run`, read by HdrHistogram's
Python port (PyPI `hdrhistogram`), a decoder we did not write.

A short run on the embedded default; then `latency.hlog` must decode and
agree with `result.json`: the per-second end-to-end intervals count every
delivered record once, and the measured total's maximum is the reported
maximum. `produce.hlog`'s ack intervals count every produced record.
"""

import json
import os
import subprocess

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

SCENARIO = """
name = "hlog"
seed = 9
drain = "20s"

[[phases]]
name = "warm-up"
duration = "1s"
rate = 100
measure = false

[[phases]]
name = "steady"
duration = "2s"
rate = 300

[processor]
batch_window = "100ms"

[firehose]
buffer_interval = "1s"
"""


def _intervals(path, lowest, highest):
    reader = HistogramLogReader(str(path), HdrHistogram(lowest, highest, 3))
    out = []
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            return out
        out.append(h)


def test_run_logs_decode_with_hdrhistogram_python(tmp_path):
    scenario = tmp_path / "hlog.toml"
    scenario.write_text(SCENARIO)
    run = tmp_path / "run"
    proc = subprocess.run(
        [os.environ["MSKBENCH_BIN"], "run", str(scenario), "--out", str(run), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((run / "result.json").read_text())
    totals = result["totals"]
    assert totals["produced"] == 700 and totals["delivered"] == 700, totals

    latency = _intervals(run / "latency.hlog", 1, 86_400_000)
    tags = [h.get_tag() for h in latency]
    assert "e2e" in tags and "e2e_total" in tags and "put_record_batch" in tags, tags
    per_second = sum(h.get_total_count() for h in latency if h.get_tag() == "e2e")
    assert per_second == totals["delivered"]
    (total,) = [h for h in latency if h.get_tag() == "e2e_total"]
    # Only the measured phase's 600 records enter the distribution.
    assert total.get_total_count() == 600
    reported = result["latency_ms"]["e2e"]["max"]
    assert total.get_max_value() == total.get_highest_equivalent_value(int(reported))
    (put,) = [h for h in latency if h.get_tag() == "put_record_batch"]
    assert put.get_total_count() > 0

    produce = _intervals(run / "produce.hlog", 1, 3_600_000_000)
    acks = sum(h.get_total_count() for h in produce if h.get_tag() == "ack")
    assert acks == totals["produced"]
