"""Fixtures for the peer tests: the built mskbench binary as a server, and moto.

Every process started here listens on 127.0.0.1, is stopped at the end of
its fixture (SIGTERM, then SIGKILL after a timeout), and its exit status is
checked: a server that does not stop cleanly fails the test.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest


def _binary():
    path = os.environ.get("MSKBENCH_BIN")
    if not path:
        pytest.fail("MSKBENCH_BIN is not set: run scripts/test, which builds mskbench and sets it")
    return path


class Served:
    """A `mskbench serve ...` process; `url` is the first line of its stdout."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [_binary(), "serve", *args, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        # HTTP servers print a URL, `serve kafka` a bootstrap address.
        expected = "127.0.0.1:" if args[0] == "kafka" else "http://127.0.0.1:"
        if not self.url.startswith(expected):
            self.proc.kill()
            pytest.fail(f"mskbench serve {' '.join(args)} printed {self.url!r}: {self.proc.stderr.read()}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("mskbench serve did not stop within 30 s of SIGTERM")
        stderr = self.proc.stderr.read()
        assert code == 0, f"mskbench serve exited {code}: {stderr}"
        return stderr


@pytest.fixture
def serve():
    started = []

    def start(*args):
        s = Served(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url():
    """moto's server on a loopback port for the whole session, stopped at the end."""
    port = _free_port()
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto_server did not start; run scripts/test to install it")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
