"""`mskbench merge` against HdrHistogram's Python port (PyPI `hdrhistogram`).

Three producer workers (`produce --workers 3`, each against its own
librdkafka mock cluster, so no broker is needed) write their stats; the
Python port decodes each worker's `histograms` interval log, adds the
workers' histograms itself, and must find the percentiles `mskbench
merge` reports — the merge is exact, not an average of percentiles —
and the counts the merge summed.
"""

import json
import os
import subprocess

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

TAGS = {"ack_latency": "ack_latency_ms", "ack_latency_from_send": "ack_latency_from_send_ms", "send_delay": "send_delay_ms"}


def _histograms(text, tmp_path, name):
    path = tmp_path / f"{name}.hlog"
    path.write_text(text)
    reader = HistogramLogReader(str(path), HdrHistogram(1, 3_600_000_000, 3))
    out = {}
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            return out
        out[h.get_tag()] = h


def test_merged_percentiles_are_hdrhistograms_own(tmp_path):
    stats = []
    for index, rate in enumerate([2000, 2000, 2000]):
        path = tmp_path / f"worker-{index}.json"
        proc = subprocess.run(
            [os.environ["MSKBENCH_BIN"], "produce", "--brokers", "mock", "--workers", "3", "--worker-index",
             str(index), "--seed", "5", "--rate", str(rate * 3), "--count", "9000", "--no-progress",
             "--stats-interval", "0", "--stats-json", str(path)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        stats.append(path)
    merged_path = tmp_path / "merged.json"
    proc = subprocess.run(
        [os.environ["MSKBENCH_BIN"], "merge", *map(str, stats), "--out", str(merged_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    # The workers started one after another, not at one --start-at: the
    # merge warns about the skew but the histograms are exact regardless.
    assert proc.returncode == 0, proc.stderr
    merged = json.loads(merged_path.read_text())
    workers = [json.loads(p.read_text()) for p in stats]
    assert merged["sent"] == sum(w["sent"] for w in workers) == 9000
    assert [w["sent"] for w in workers] == [3000, 3000, 3000]

    total = {tag: HdrHistogram(1, 3_600_000_000, 3) for tag in TAGS}
    for i, w in enumerate(workers):
        for tag, h in _histograms(w["histograms"], tmp_path, f"w{i}").items():
            total[tag].add(h)
    assert total["ack_latency"].get_total_count() == merged["measured_records"]
    for tag, key in TAGS.items():
        h = total[tag]
        for field, pct in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)]:
            ours_us = round(merged[key][field] * 1000)
            assert h.get_highest_equivalent_value(ours_us) == h.get_value_at_percentile(pct), (tag, field)
        assert h.get_highest_equivalent_value(round(merged[key]["max"] * 1000)) == h.get_max_value(), tag
    # The merged log reads back as the sum.
    again = _histograms(merged["histograms"], tmp_path, "merged")
    for tag in TAGS:
        assert again[tag].get_total_count() == total[tag].get_total_count()
