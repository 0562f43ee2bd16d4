"""A Python function under AWS's runtime interface client (awslambdaric),
invoked by `mskbench process --runtime-api` over the Lambda Runtime API, as
Lambda would invoke it: records from `mskbench serve kafka` after
`mskbench produce`.

The function writes down every record it is given (partition and offset)
and answers; the failing variants fail their first invocation — an
exception (the runtime's `/error`), a sleep past the function timeout, a
process that exits — and the mapping, held to one attempt, stops without
committing. A second mapping in the same group then gets every record
back: a failed invocation committed nothing.

Every process is started with a bounded wait and stopped by the test."""

import base64
import json
import struct
import subprocess
import sys

import pytest

from conftest import _binary

COUNT = 300

HANDLER = r'''
import json, os, pathlib, time

STATE = pathlib.Path(os.environ["STATE_DIR"])
MODE = os.environ.get("MODE", "record")


def fn(event, context):
    first = not (STATE / "failed-once").exists()
    if MODE != "record" and first:
        (STATE / "failed-once").write_text(context.aws_request_id)
        if MODE == "error":
            raise ValueError("boom: this batch is refused")
        if MODE == "timeout":
            time.sleep(30)
        if MODE == "crash":
            os._exit(3)
    records = [r for group in event["records"].values() for r in group]
    with open(STATE / "records.jsonl", "a") as out:
        for r in records:
            out.write(json.dumps({
                "request": context.aws_request_id,
                "partition": r["partition"],
                "offset": r["offset"],
                "value": r["value"],
                "left_ms": context.get_remaining_time_in_millis(),
                "function": context.function_name,
                "memory": context.memory_limit_in_mb,
                "arn": context.invoked_function_arn,
            }) + "\n")
    return {"handled": len(records)}
'''


def _produce(kafka, registry, tmp_path):
    stats = tmp_path / "produce.json"
    done = subprocess.run(
        [_binary(), "produce", "--brokers", kafka.url, "--topic", "Clicks", "--registry", registry.url,
         "--count", str(COUNT), "--rate", "5000", "--seed", "5", "--no-progress", "--stats-interval", "0",
         "--stats-json", str(stats)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(stats.read_text())
    assert summary["acked"] == COUNT, summary
    return int(summary["schema"])


def _process(kafka, tmp_path, state, mode, *extra, timeout_s="10s", pollers=1, expect_code=0):
    summary = tmp_path / f"process-{mode}.json"
    command = f"{sys.executable} -m awslambdaric handler.fn"
    done = subprocess.run(
        [_binary(), "process", "--brokers", kafka.url, "--topic", "Clicks", "--group", "mine",
         "--batch-size", "100", "--batch-window", "200ms", "--idle-exit", "4s", "--pollers", str(pollers),
         "--runtime-api", "127.0.0.1:0", "--function-command", command, "--function-timeout", timeout_s,
         "--function-name", "peer-fn", "--function-memory", "512",
         "-E", f"STATE_DIR={state}", "-E", f"MODE={mode}", "--summary-json", str(summary), *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == expect_code, f"exit {done.returncode}: {done.stderr}"
    # One address per instance, first on stdout.
    lines = done.stdout.splitlines()
    assert len(lines) >= pollers and all(line.startswith("127.0.0.1:") for line in lines[:pollers]), done.stdout
    return done, (json.loads(summary.read_text()) if summary.exists() else None)


def _handled(state):
    path = state / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def topic(serve, tmp_path):
    (tmp_path / "handler.py").write_text(HANDLER)
    kafka = serve("kafka", "--partitions", "2", "--topic", "Clicks")
    registry = serve("registry")
    schema_id = _produce(kafka, registry, tmp_path)
    return kafka, schema_id


def test_a_python_function_under_awslambdaric_gets_every_record_once(topic, tmp_path):
    kafka, schema_id = topic
    state = tmp_path / "state"
    state.mkdir()
    done, summary = _process(kafka, tmp_path, state, "record", pollers=2)
    assert summary["function"] == "runtime-api"
    assert (summary["records_in"], summary["failed_invocations"]) == (COUNT, 0), summary
    handled = _handled(state)
    coordinates = sorted((h["partition"], h["offset"]) for h in handled)
    assert len(coordinates) == COUNT and len(set(coordinates)) == COUNT, "every record once"
    assert {p for p, _ in coordinates} == {0, 1}
    first = handled[0]
    # The context awslambdaric built from the Runtime API's headers and Lambda's variables.
    assert (first["function"], first["memory"]) == ("peer-fn", "512")
    assert first["arn"].startswith("arn:aws:lambda:") and first["arn"].endswith(":function:peer-fn")
    assert 0 < first["left_ms"] <= 10_000, "the deadline header: the function timeout from the pickup"
    # The event carries the records as the MSK event source mapping does: Confluent-framed values, base64.
    magic, framed = struct.unpack(">bI", base64.b64decode(first["value"])[:5])
    assert (magic, framed) == (0, schema_id)

    # Everything was committed after the function's success: a second mapping finds nothing.
    state2 = tmp_path / "state2"
    state2.mkdir()
    _, again = _process(kafka, tmp_path, state2, "record")
    assert again["records_in"] == 0 and _handled(state2) == []


@pytest.mark.parametrize("mode, reason", [
    ("error", "the function reported ValueError: boom: this batch is refused"),
    ("timeout", "did not answer within its timeout of 2s"),
    ("crash", "the function's process exited (exit status 3)"),
])
def test_a_failed_invocation_commits_nothing_and_its_records_come_back(topic, tmp_path, mode, reason):
    kafka, _ = topic
    state = tmp_path / "state"
    state.mkdir()
    done, _ = _process(kafka, tmp_path, state, mode, "--max-attempts", "1", timeout_s="2s", expect_code=1)
    assert reason in done.stderr, done.stderr
    assert "giving up without committing" in done.stderr
    failed_request = (state / "failed-once").read_text()
    assert failed_request, "the function saw the batch"
    assert _handled(state) == [], "the failed invocation's process wrote nothing down"

    # The same group again: every record comes back, the failed batch's first.
    _, summary = _process(kafka, tmp_path, state, mode)
    assert (summary["records_in"], summary["failed_invocations"]) == (COUNT, 0), summary
    coordinates = sorted((h["partition"], h["offset"]) for h in _handled(state))
    assert len(coordinates) == COUNT and len(set(coordinates)) == COUNT


def test_a_failed_invocation_is_retried_and_the_batch_then_commits(topic, tmp_path):
    kafka, _ = topic
    state = tmp_path / "state"
    state.mkdir()
    done, summary = _process(kafka, tmp_path, state, "crash", timeout_s="2s")
    assert summary["failed_invocations"] == 1 and summary["records_in"] == COUNT, summary
    assert "Function process ended; starting it again" in done.stdout, "the mapping's log, on stdout"
    coordinates = sorted((h["partition"], h["offset"]) for h in _handled(state))
    assert len(coordinates) == COUNT and len(set(coordinates)) == COUNT, "the crashed batch came back once"
