"""Every chart of `report.html` and of `compare --html`, rendered by headless
Chromium (Debian's `chromium`, over the DevTools protocol) at two widths.

A short run with throttling and a Firehose outage window, repeated twice
(and a two-point `[[sweep]]` of its rate, for the latency-against-throughput chart),
gives real charts of every kind: rates against the quota, phases and a
fault band, lag, batch size, invocation duration, PutRecordBatch latency, the
producer's send delay and end-to-end latency over time, and the percentile curves (several runs
overlaid on the comparison page). For each page and width the test checks
in the browser's own layout that every chart rendered with a size and
drew its lines, that no two labels of a chart overlap and none spills out
of it, and that the hover points carry tooltips with values; screenshots
land in the test's temporary folder (kept by pytest) for a person to look at.
"""

import os
import subprocess

from chromium import CHART_PROBE, Browser

SCENARIO = """
name = "charts"
seed = 21
drain = "20s"

[[phases]]
name = "warm-up"
duration = "2s"
rate = 200
measure = false

[[phases]]
name = "steady"
duration = "8s"
rate = 900

[processor]
batch_size = 300
batch_window = "100ms"
retries = 20

[firehose]
quota = "records=600,requests=2000,bytes=5MiB"
buffer_interval = "1s"

[[faults]]
kind = "firehose_down"
mode = "http_503"
from = "4s"
duration = "2s"
"""

RUN_CHARTS = [
    "Incoming records per second",
    "Incoming bytes per second",
    "Put requests per second",
    "Throttling and retries",
    "Event source mapping lag (OffsetLag)",
    "Batch size: records per invocation",
    "Invocation duration",
    "PutRecordBatch latency over time",
    "Producer send delay (actual − intended send time)",
    "End-to-end latency over time",
    "e2e latency by percentile",
    "produce_ack latency by percentile",
    "put_record_batch latency by percentile",
]


def _check_page(browser, url, expected, shots, name):
    page = browser.page()
    try:
        for width in (1280, 600):
            page.set_width(width)
            page.navigate(url)
            charts = page.evaluate(CHART_PROBE)
            titles = [c["title"] for c in charts]
            assert titles == expected, titles
            for c in charts:
                where = f"{name} at {width}px, chart {c['title']!r}"
                assert c["width"] > 0.8 * min(width - 40, 760) and c["height"] > 100, (where, c)
                assert c["overlaps"] == [], f"{where}: labels overlap: {c['overlaps']}"
                assert c["outside"] == [], f"{where}: labels outside the chart: {c['outside']}"
                if "distribution" in c["title"]:
                    assert c["bars"] == 5, f"{where}: {c['bars']} bars drawn"
                    continue
                drawn = [line for line in c["lines"] if line["points"] > 1]
                assert drawn, f"{where}: no line drawn: {c['lines']}"
                assert all(line["width"] > 10 for line in drawn), (where, c["lines"])
                assert c["tooltipCount"] > 0, f"{where}: no tooltips"
                assert any(ch.isdigit() for ch in c["tooltips"][0]), (where, c["tooltips"])
            png = page.screenshot(shots / f"{name}-{width}.png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, (name, width, len(png))
    finally:
        page.close()


def test_every_chart_renders_in_chromium_at_two_widths(tmp_path):
    scenario = tmp_path / "charts.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "runs"
    proc = subprocess.run(
        [os.environ["MSKBENCH_BIN"], "run", str(scenario), "--out", str(out), "--no-progress", "--repeat", "2"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "compare.html"
    proc = subprocess.run(
        [os.environ["MSKBENCH_BIN"], "compare", str(out), str(out), "--html", str(page)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    shots = tmp_path / "screenshots"
    shots.mkdir()
    browser = Browser()
    try:
        _check_page(browser, (out / "run-1" / "report.html").as_uri(), RUN_CHARTS, shots, "report")
        _check_page(
            browser, page.as_uri(),
            ["e2e latency by percentile", "produce_ack latency by percentile", "put_record_batch latency by percentile"],
            shots, "compare",
        )
        # A two-point sweep's latency-against-throughput chart.
        sweep = tmp_path / "sweep.toml"
        sweep.write_text(SCENARIO.split("[[faults]]")[0] + '[[sweep]]\nkey = "phases.1.rate"\nvalues = [300, 600]\n')
        swept = tmp_path / "sweep"
        proc = subprocess.run(
            [os.environ["MSKBENCH_BIN"], "run", str(sweep), "--out", str(swept), "--no-progress"],
            capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        _check_page(
            browser, (swept / "sweep.html").as_uri(), ["Latency against throughput, phases.1.rate swept"], shots, "sweep",
        )
        # Both sides' runs are overlaid: four curves on each of the three charts.
        p = browser.page()
        try:
            p.navigate(page.as_uri())
            curves = p.evaluate("[...document.querySelectorAll('svg')].map(s => s.querySelectorAll('polyline').length)")
            assert curves == [4, 4, 4], curves
        finally:
            p.close()
    finally:
        browser.close()
