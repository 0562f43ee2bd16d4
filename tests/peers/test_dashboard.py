"""`mskbench run --serve-dashboard ADDR`, loaded mid-run by headless Chromium
(Debian's `chromium`, over the DevTools protocol) as a person would open it.

The run serves on 127.0.0.1 port 0 and prints the URL on stderr; the
browser loads the page while the load is under way and, a few seconds
apart, reads what the page's own script fetched: the elapsed seconds and
the produced count must move, and the charts (rates against the quota)
must be drawn with lines that grow. The run then ends by itself.
"""

import os
import re
import subprocess
import threading
import time

from chromium import Browser

SCENARIO = """
name = "dashboard"
seed = 3
drain = "20s"

[[phases]]
name = "steady"
duration = "14s"
rate = 500

[processor]
batch_window = "100ms"

[firehose]
quota = "records=400,requests=2000,bytes=5MiB"
buffer_interval = "1s"
"""

READ = """
(() => {
  const cell = (name) => document.querySelector(`[data-${name}]`);
  const svgs = [...document.querySelectorAll('#live svg')];
  const first = svgs.length ? svgs[0].querySelector('polyline') : null;
  return {
    elapsed: cell('elapsed') ? Number(cell('elapsed').dataset.elapsed) : null,
    produced: cell('produced') ? Number(cell('produced').dataset.produced) : null,
    charts: svgs.map(s => s.getAttribute('aria-label')),
    points: first ? first.points.numberOfItems : 0,
    width: svgs.length ? svgs[0].getBoundingClientRect().width : 0,
    state: document.getElementById('state').textContent,
  };
})()
"""


def test_the_dashboard_moves_in_a_real_browser_mid_run(tmp_path):
    scenario = tmp_path / "dashboard.toml"
    scenario.write_text(SCENARIO)
    proc = subprocess.Popen(
        [os.environ["MSKBENCH_BIN"], "run", str(scenario), "--out", str(tmp_path / "run"), "--no-progress",
         "--serve-dashboard", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    browser = None
    lines = []
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
        assert url, "no dashboard URL on stderr:\n" + "".join(lines)
        threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()

        browser = Browser()
        page = browser.page()
        page.set_width(1000)
        page.navigate(url)
        # Wait until the page's script shows the load under way.
        first = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = page.evaluate(READ)
            if seen["produced"]:
                first = seen
                break
            time.sleep(0.5)
        assert first, f"the page never showed a produced record: {seen}"
        time.sleep(3.5)
        later = page.evaluate(READ)
        page.close()
        assert later["elapsed"] >= first["elapsed"] + 2, (first, later)
        assert later["produced"] > first["produced"], (first, later)
        assert later["points"] > first["points"], (first, later)
        assert later["charts"][:4] == [
            "Incoming records per second", "Incoming bytes per second", "Put requests per second",
            "Throttling and retries",
        ], later["charts"]
        assert later["width"] > 500, later
        assert later["state"].startswith("live"), later
        code = proc.wait(timeout=120)
    finally:
        if browser:
            browser.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, "".join(lines)
