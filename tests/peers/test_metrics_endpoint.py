"""`mskbench run --metrics ADDR`, scraped while the run is live and read by
prometheus_client's own parsers (PyPI `prometheus-client`), which we did
not write: the Prometheus text format, and OpenMetrics when asked for.

A run of a dozen seconds over a small record quota (so throttling and
retries move too) serves on 127.0.0.1 port 0; the test reads the bound URL
from stderr, scrapes twice a few seconds apart mid-run and checks that the
counters move forward, that histogram buckets are cumulative and end in
`+Inf == _count`, and that the last scrape agrees with `result.json`.
"""

import json
import os
import re
import subprocess
import threading
import time
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

SCENARIO = """
name = "metrics"
seed = 5
drain = "20s"

[[phases]]
name = "steady"
duration = "12s"
rate = 600

[processor]
batch_size = 200
batch_window = "100ms"
retries = 20

[firehose]
quota = "records=400,requests=2000,bytes=5MiB"
buffer_interval = "1s"
"""


def _scrape(url, openmetrics=False):
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def _values(families):
    """{sample name (with labels): value} of parsed families."""
    out = {}
    for family in families:
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def _check_histogram(families, name):
    family = next(f for f in families if f.name == name)
    assert family.type == "histogram", family.type
    buckets = [(s.labels["le"], s.value) for s in family.samples if s.name == name + "_bucket"]
    assert buckets[-1][0] in ("+Inf", "inf"), buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"{name}: buckets not cumulative: {buckets}"
    count = next(s.value for s in family.samples if s.name == name + "_count")
    assert counts[-1] == count, (buckets, count)
    return count


def test_metrics_are_served_live_and_parse_in_both_formats(tmp_path):
    scenario = tmp_path / "metrics.toml"
    scenario.write_text(SCENARIO)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [os.environ["MSKBENCH_BIN"], "run", str(scenario), "--out", str(run), "--no-progress",
         "--metrics", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    url = None
    try:
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
            if m:
                url = m.group(1)
        assert url, "no metrics URL on stderr:\n" + "".join(lines)
        # Keep draining stderr so the run never blocks on a full pipe.
        rest = []
        drain = threading.Thread(target=lambda: rest.extend(proc.stderr), daemon=True)
        drain.start()

        # Wait for the load to be under way, then scrape twice, 3 s apart.
        scrapes = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(scrapes) < 2:
            ctype, text = _scrape(url)
            values = _values(parse_prometheus(text))
            if values["mskbench_accepted_records_total"] > 0 and (not scrapes or time.monotonic() - scrapes[-1][0] >= 3):
                scrapes.append((time.monotonic(), values, text))
            time.sleep(0.5)
        assert len(scrapes) == 2, "the run never accepted a record while the endpoint was watched"
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        (_, first, _), (_, second, text) = scrapes
        for name in ["mskbench_produced_records_total", "mskbench_accepted_records_total",
                     "mskbench_consumed_records_total", "mskbench_elapsed_seconds"]:
            assert second[name] > first[name], f"{name} did not move: {first[name]} → {second[name]}"
        for name in first:
            if name.endswith("_total") or name.endswith("_count"):
                assert second[name] >= first[name], name
        assert first["mskbench_stage_info{stage=steady}"] == 1, first
        families = list(parse_prometheus(text))
        assert _check_histogram(families, "mskbench_put_record_batch_latency_seconds") > 0
        assert _check_histogram(families, "mskbench_accept_latency_seconds") > 0

        # OpenMetrics, when asked for: its parser is strict (`# EOF`, unit suffixes).
        ctype, text = _scrape(url, openmetrics=True)
        assert ctype.startswith("application/openmetrics-text; version=1.0.0"), ctype
        families = list(parse_openmetrics(text))
        kinds = {f.name: f.type for f in families}
        assert kinds["mskbench_accepted_records"] == "counter", kinds
        assert kinds["mskbench_stage"] == "info", kinds
        assert kinds["mskbench_accept_latency_seconds"] == "histogram", kinds
        om = _values(families)
        assert om["mskbench_accepted_records_total"] >= second["mskbench_accepted_records_total"]
        _check_histogram(families, "mskbench_put_record_batch_latency_seconds")

        # While draining, the last counts stay readable; the run ends by itself.
        last = second
        while proc.poll() is None and time.monotonic() < deadline + 120:
            try:
                last = _values(parse_prometheus(_scrape(url)[1]))
            except OSError:
                break  # the run stopped serving as it ended
            time.sleep(0.5)
        code = proc.wait(timeout=120)
        drain.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, "".join(lines + rest)
    result = json.loads((run / "result.json").read_text())
    totals = result["totals"]
    # The series and the endpoint read the same counters; the last scrape is at most a second old.
    assert last["mskbench_produced_records_total"] <= totals["produced"]
    assert last["mskbench_retried_records_total"] <= totals["retries"]
    assert last["mskbench_throttled_records_total"] <= totals["throttled_records"]
    assert totals["throttled_records"] > 0 and totals["unaccounted"] == 0, totals
