"""Kafka over TLS, mTLS and SASL/SCRAM, against peers we did not write.

MSK serves TLS on 9094, SASL/SCRAM on 9096 and IAM on 9098. Here the broker
is `mskbench serve kafka` (tansu), TLS is terminated by stunnel (Debian's
stunnel4) in front of it with certificates made by the openssl CLI, the
broker advertises stunnel's address as MSK's brokers advertise their TLS
listeners, and SCRAM is enforced by tansu's own SASL layer. kafka-python,
which shares no code with librdkafka, reads back what `mskbench produce`
wrote through the same TLS and SCRAM. Settings that can never connect (an
untrusted certificate, a wrong password, a plaintext client on a TLS port)
end with exit 2 and a one-line reason within seconds.

Every process is stopped by its fixture; every wait is bounded.
"""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from conftest import _binary, _free_port

COUNT = 300
PASSWORD = "correct horse battery staple"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    signed by it, and a second CA that signed nothing here."""
    d = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=mskbench test {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)
    return d


def _wait_port(port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port} within {timeout} s")


def _stop(proc, what):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{what} did not stop within 20 s of SIGTERM")


class Listener:
    """`mskbench serve kafka` on a plaintext port, advertising a TLS port
    where stunnel terminates TLS (verify_clients: mTLS). The producer creates
    the topic through the TLS port, as it would on MSK."""

    def __init__(self, certs, tmp, scram=False, verify_clients=False):
        self.plain_port, self.tls_port = _free_port(), _free_port()
        env = dict(os.environ, KAFKA_TEST_PASSWORD=PASSWORD)
        args = [_binary(), "serve", "kafka", "--listen", f"127.0.0.1:{self.plain_port}", "--advertise",
                f"127.0.0.1:{self.tls_port}", "--partitions", "3"]
        if scram:
            args += ["--scram-user", "alice", "--scram-password-env", "KAFKA_TEST_PASSWORD"]
        self.broker = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.broker.stdout.readline().strip()
        if first != f"127.0.0.1:{self.tls_port}":
            self.broker.kill()
            pytest.fail(f"serve kafka printed {first!r}: {self.broker.stderr.read()}")
        conf = tmp / "stunnel.conf"
        lines = ["foreground = yes", "pid =", "debug = 3", "[kafka]", f"accept = 127.0.0.1:{self.tls_port}",
                 f"connect = 127.0.0.1:{self.plain_port}", f"cert = {certs / 'server.pem'}",
                 f"key = {certs / 'server.key'}"]
        if verify_clients:
            lines += ["verifyChain = yes", "requireCert = yes", f"CAfile = {certs / 'ca.pem'}"]
        conf.write_text("\n".join(lines) + "\n")
        self.stunnel = subprocess.Popen(["stunnel4", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        _wait_port(self.tls_port, self.stunnel, "stunnel")
        self.tls = f"127.0.0.1:{self.tls_port}"

    def stop(self):
        _stop(self.stunnel, "stunnel")
        _stop(self.broker, "mskbench serve kafka")
        assert self.broker.returncode == 0, self.broker.stderr.read()


@pytest.fixture
def listener(certs, tmp_path):
    started = []

    def start(**kwargs):
        listener = Listener(certs, tmp_path, **kwargs)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def _produce(brokers, registry, tmp, *security, env=None, timeout=120):
    stats = tmp / "stats.json"
    started = time.monotonic()
    done = subprocess.run(
        [_binary(), "produce", "--brokers", brokers, "--topic", "Clicks", "--registry", registry,
         "--count", str(COUNT), "--rate", "3000", "--seed", "5", "--no-progress", "--stats-interval", "0",
         "--stats-json", str(stats), *security],
        capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})),
    )
    return done, (json.loads(stats.read_text()) if done.returncode == 0 else None), time.monotonic() - started


def _process(brokers, registry, firehose, tmp, *security, env=None):
    """`mskbench process` over the topic into the Firehose stand-in; its totals."""
    summary = tmp / "summary.json"
    processed = subprocess.run(
        [_binary(), "process", "--brokers", brokers, "--topic", "Clicks", "--group", "lab", *security,
         "--batch-size", "100", "--batch-window", "100ms", "--idle-exit", "3s", "--summary-json", str(summary),
         "-E", "DELIVERY_STREAM_NAME=MSKToS3", "-E", f"AWS_ENDPOINT_URL_FIREHOSE={firehose}",
         "-E", "CSR=true", "-E", f"SCHEMA_REGISTRY_URL={registry}", "-E", "AWS_REGION=us-east-1",
         "-E", "AWS_ACCESS_KEY_ID=test", "-E", "AWS_SECRET_ACCESS_KEY=test"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})),
    )
    assert processed.returncode == 0, processed.stderr
    return json.loads(summary.read_text())


def _read_all(brokers, **security):
    consumer = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=10_000, request_timeout_ms=20_000, **security)
    try:
        partitions = [TopicPartition("Clicks", p) for p in sorted(consumer.partitions_for_topic("Clicks"))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        for message in consumer:
            records.append(message)
            if len(records) == COUNT:
                break
        return records
    finally:
        consumer.close()


def test_produce_and_process_over_tls_and_kafka_python_reads_it_back(listener, serve, certs, tmp_path):
    kafka = listener()
    registry = serve("registry")
    firehose = serve("firehose", "--s3-dir", str(tmp_path / "s3"), "--stream", "MSKToS3")
    tls = ["--msk-auth", "tls", "--kafka-ca", str(certs / "ca.pem")]
    done, stats, _ = _produce(kafka.tls, registry.url, tmp_path, *tls)
    assert done.returncode == 0, done.stderr
    assert (stats["acked"], stats["failed"]) == (COUNT, 0)

    records = _read_all(kafka.tls, security_protocol="SSL", ssl_cafile=str(certs / "ca.pem"))
    assert len(records) == COUNT
    assert len({(r.partition, r.offset) for r in records}) == COUNT

    totals = _process(kafka.tls, registry.url, firehose.url, tmp_path, *tls)
    assert (totals["records_in"], totals["delivered"]) == (COUNT, COUNT), totals


def test_mtls_needs_the_client_certificate(listener, serve, certs, tmp_path):
    kafka = listener(verify_clients=True)
    registry = serve("registry")
    ca = ["--msk-auth", "tls", "--kafka-ca", str(certs / "ca.pem")]
    mtls = [*ca, "--kafka-cert", str(certs / "client.pem"), "--kafka-key", str(certs / "client.key")]
    done, stats, _ = _produce(kafka.tls, registry.url, tmp_path, *mtls)
    assert done.returncode == 0, done.stderr
    assert stats["acked"] == COUNT
    records = _read_all(kafka.tls, security_protocol="SSL", ssl_cafile=str(certs / "ca.pem"),
                        ssl_certfile=str(certs / "client.pem"), ssl_keyfile=str(certs / "client.key"))
    assert len(records) == COUNT

    done, _, took = _produce(kafka.tls, registry.url, tmp_path, *ca, timeout=60)
    assert done.returncode == 2, done.stderr
    assert took < 40, f"without its certificate the client gave up after {took:.0f} s"


def test_an_untrusted_certificate_fails_fast_with_the_reason(listener, serve, certs, tmp_path):
    kafka = listener()
    registry = serve("registry")
    done, _, took = _produce(kafka.tls, registry.url, tmp_path, "--msk-auth", "tls", "--kafka-ca",
                             str(certs / "other-ca.pem"), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "untrusted broker certificate" in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") < 6, f"a short answer, not a log: {done.stderr}"
    assert took < 15, f"gave up after {took:.0f} s"


def test_a_plaintext_client_on_a_tls_listener_is_told_so(listener, serve, tmp_path):
    kafka = listener()
    registry = serve("registry")
    done, _, took = _produce(kafka.tls, registry.url, tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "security.protocol" in done.stderr, done.stderr
    assert took < 15, f"gave up after {took:.0f} s"


def test_scram_over_tls_as_msk_serves_it(listener, serve, certs, tmp_path):
    kafka = listener(scram=True)
    registry = serve("registry")
    firehose = serve("firehose", "--s3-dir", str(tmp_path / "s3"), "--stream", "MSKToS3")
    scram = ["--msk-auth", "scram", "--kafka-ca", str(certs / "ca.pem"), "--kafka-user", "alice",
             "--kafka-password-env", "MSK_PASSWORD"]
    done, stats, _ = _produce(kafka.tls, registry.url, tmp_path, *scram, env={"MSK_PASSWORD": PASSWORD})
    assert done.returncode == 0, done.stderr
    assert stats["acked"] == COUNT
    assert PASSWORD not in done.stderr and PASSWORD not in done.stdout

    records = _read_all(kafka.tls, security_protocol="SASL_SSL", ssl_cafile=str(certs / "ca.pem"),
                        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password=PASSWORD)
    assert len(records) == COUNT

    totals = _process(kafka.tls, registry.url, firehose.url, tmp_path, *scram, env={"MSK_PASSWORD": PASSWORD})
    assert (totals["records_in"], totals["delivered"]) == (COUNT, COUNT), totals

    done, _, took = _produce(kafka.tls, registry.url, tmp_path, *scram, env={"MSK_PASSWORD": "wrong"}, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "authentication failed" in done.stderr, done.stderr
    assert "wrong" not in done.stderr.replace("wrong password", "")
    assert took < 15, f"gave up after {took:.0f} s"


def test_run_accounts_for_every_record_over_scram_and_tls(listener, certs, tmp_path):
    kafka = listener(scram=True)
    scenario = tmp_path / "scram.toml"
    scenario.write_text(f"""
name = "scram-tls"
seed = 3
drain = "20s"
slo = ["unaccounted == 0", "delivered > 0"]

[[phases]]
name = "steady"
duration = "4s"
rate = 500

[kafka]
brokers = "{kafka.tls}"
topic = "Clicks"
sasl_mechanism = "SCRAM-SHA-512"
username = "alice"
password_env = "MSK_PASSWORD"
ca = "{certs / 'ca.pem'}"

[processor]
batch_window = "100ms"
""")
    out = tmp_path / "run"
    done = subprocess.run([_binary(), "run", str(scenario), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=240, env=dict(os.environ, MSK_PASSWORD=PASSWORD))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())
    totals = result["totals"]
    assert totals["produced"] > 0 and totals["unaccounted"] == 0, totals
    assert totals["delivered"] == totals["produced"], totals
    text = (out / "result.json").read_text() + (out / "report.md").read_text()
    text += (out / "processor.log").read_text()
    assert PASSWORD not in text
