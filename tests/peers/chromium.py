"""Headless Chromium driven over the DevTools protocol (PyPI `websocket-client`).

`Browser` starts Debian's `chromium` on a loopback DevTools port of its
choosing, with a throwaway profile, and `page()` hands out the first tab as
a `Page` that can navigate, resize, evaluate JavaScript and take
screenshots. Everything has a timeout; the browser is killed at `close()`.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import websocket


def chromium_binary():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is not installed: scripts/setup-system installs it")
    return path


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(method)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}…: {r['exceptionDetails']}")
        return r["result"].get("value")

    def navigate(self, url):
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.1)
        raise TimeoutError(f"loading {url}")

    def set_width(self, width, height=900):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(r["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        self.ws.close()


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mskbench-chromium-")
        self.proc = subprocess.Popen(
            [chromium_binary(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = None
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.close()
            pytest.fail("chromium did not open its DevTools port:\n" + "".join(seen))
        # Keep reading stderr so chromium never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def page(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        tab = next(t for t in targets if t.get("type") == "page")
        return Page(tab["webSocketDebuggerUrl"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


# What each chart's check needs, evaluated in the page: per <svg>, its
# rendered size, its title, its polylines' rendered sizes and point counts,
# its tooltips, and every pair of <text> boxes that overlap.
CHART_PROBE = r"""
(() => {
  const boxes = (svg) => [...svg.querySelectorAll('text')]
      .map(t => ({text: t.textContent, r: t.getBoundingClientRect()}))
      .filter(b => b.text.trim() !== '' && b.r.width > 0);
  return [...document.querySelectorAll('svg')].map(svg => {
    const r = svg.getBoundingClientRect();
    const texts = boxes(svg);
    const overlaps = [];
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].r, b = texts[j].r;
        // A pixel of slack for anti-aliased edges.
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1) overlaps.push([texts[i].text, texts[j].text]);
      }
    }
    const lines = [...svg.querySelectorAll('polyline')].map(p => {
      const b = p.getBoundingClientRect();
      return {points: p.points.numberOfItems, width: b.width, height: b.height};
    });
    const outside = texts.filter(t => t.r.left < r.left - 1 || t.r.right > r.right + 1).map(t => t.text);
    return {
      title: svg.getAttribute('aria-label'),
      width: r.width, height: r.height,
      lines,
      tooltips: [...svg.querySelectorAll('circle > title')].map(t => t.textContent).slice(0, 5),
      tooltipCount: svg.querySelectorAll('circle > title').length,
      bars: [...svg.querySelectorAll('rect')].filter(b => b.getAttribute('fill') === '#1f77b4'
          && b.getBoundingClientRect().height > 0).length,
      overlaps,
      outside,
    };
  });
})()
"""
