"""fastavro, an Avro implementation we did not write, checks our transcoder.

1. fastavro reads the values of the shipped sample event (after unframing
   Confluent, Glue and zlib-Glue values here, independently of our code);
   `mskbench process-event` must print the same records.
2. fastavro writes random datums of a schema using every Avro type; our
   transcoder must turn each into the JSON of the value fastavro was given,
   under our conventions (unions unwrapped, bytes/fixed as U+0000–U+00FF
   strings, non-finite floats as null).

Run by scripts/test with MSKBENCH_BIN pointing at the built binary.
"""

import base64
import io
import json
import math
import os
import random
import struct
import subprocess
import zlib
from pathlib import Path

import fastavro
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "core" / "tests" / "data"
GLUE_VERSION = "b7b4a7f0-0c5e-4a5b-9a0e-3f2c7d9e1a42"


def mskbench(*args, stdin=None):
    binary = os.environ.get("MSKBENCH_BIN")
    if not binary:
        pytest.fail("MSKBENCH_BIN is not set: run the tests through scripts/test")
    return subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=60)


def unframe(raw: bytes) -> bytes:
    if raw[0] == 0x00:
        return raw[5:]
    assert raw[0] == 0x03, raw[:2]
    datum = raw[18:]
    return zlib.decompress(datum) if raw[1] == 0x05 else datum


def test_sample_event_matches_fastavro():
    schema = fastavro.parse_schema(json.loads((DATA / "clickevent.avsc").read_text()))
    event = json.loads((DATA / "lab-event.json").read_text())
    expected = []
    for records in event["records"].values():
        for record in records:
            datum = unframe(base64.b64decode(record["value"]))
            expected.append(fastavro.schemaless_reader(io.BytesIO(datum), schema))

    avsc = DATA / "clickevent.avsc"
    out = mskbench(
        "process-event",
        str(DATA / "lab-event.json"),
        "--schema",
        f"1={avsc}",
        "--schema",
        f"{GLUE_VERSION}={avsc}",
    )
    assert out.returncode == 0, out.stderr.decode()
    ours = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert ours == expected
    # fields in schema order
    order = [f["name"] for f in json.loads(avsc.read_text())["fields"]]
    assert all(list(o.keys()) == order for o in ours)


EVERYTHING = {
    "type": "record",
    "name": "Everything",
    "namespace": "mskbench.test",
    "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "by", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "a", "type": {"type": "array", "items": ["null", "long", "string"]}},
        {"name": "m", "type": {"type": "map", "values": "double"}},
        {
            "name": "nested",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Inner",
                    "fields": [
                        {"name": "tags", "type": {"type": "array", "items": "string"}},
                        {"name": "color", "type": "Color"},
                    ],
                },
            ],
        },
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}


def random_text(rng):
    alphabet = ["a", "Z", "0", " ", '"', "\\", "\n", "\t", "\x01", "\x7f", "é", "€", "😀", "/", "<"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


def random_float(rng):
    return rng.choice([0.0, -0.0, 1.5, -2.25e-7, 3.4e38, float("inf"), float("nan"), rng.uniform(-1e6, 1e6)])


def random_value(rng):
    return {
        "n": None,
        "b": rng.random() < 0.5,
        "i": rng.randrange(-(2**31), 2**31),
        "l": rng.randrange(-(2**63), 2**63),
        "f": random_float(rng),
        "d": random_float(rng),
        "by": bytes(rng.randrange(256) for _ in range(rng.randrange(0, 8))),
        "s": random_text(rng),
        "e": rng.choice(["RED", "GREEN", "BLUE"]),
        "fx": bytes(rng.randrange(256) for _ in range(4)),
        "a": [rng.choice([None, rng.randrange(-(2**40), 2**40), random_text(rng)]) for _ in range(rng.randrange(0, 4))],
        "m": {random_text(rng): rng.uniform(-10, 10) for _ in range(rng.randrange(0, 4))},
        "nested": None
        if rng.random() < 0.3
        else {"tags": [random_text(rng) for _ in range(rng.randrange(0, 3))], "color": rng.choice(["RED", "BLUE"])},
        "ts": rng.randrange(0, 2**41),
        "day": rng.randrange(-1000, 30000),
    }


def as_json(value, field=None):
    """The JSON our transcoder must write for a fastavro input value."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if field == "f":  # float: written in its shortest f32 form
            return struct.unpack("<f", struct.pack("<f", value))[0]
        return value
    if isinstance(value, dict):
        return {k: as_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def same(ours, expected):
    if isinstance(expected, float) and isinstance(ours, (int, float)):
        return ours == expected or struct.pack("<f", ours) == struct.pack("<f", expected)
    if isinstance(expected, dict):
        return isinstance(ours, dict) and list(ours) == list(expected) and all(same(ours[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(ours, list) and len(ours) == len(expected) and all(map(same, ours, expected))
    return ours == expected


def test_fastavro_written_datums_transcode_to_their_values(tmp_path):
    rng = random.Random(20261127)
    schema = fastavro.parse_schema(EVERYTHING)
    values = [random_value(rng) for _ in range(300)]
    records = []
    for offset, value in enumerate(values):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, value)
        framed = b"\x00" + struct.pack(">I", 7) + buf.getvalue()
        records.append(
            {
                "topic": "t",
                "partition": 0,
                "offset": offset,
                "timestamp": 0,
                "timestampType": "CREATE_TIME",
                "value": base64.b64encode(framed).decode(),
            }
        )
    event = {"eventSource": "aws:kafka", "records": {"t-0": records}}
    avsc = tmp_path / "everything.avsc"
    avsc.write_text(json.dumps(EVERYTHING))
    out = mskbench("process-event", "-", "--schema", f"7={avsc}", stdin=json.dumps(event).encode())
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) == len(values) + 1
    for line, value in zip(lines, values):
        ours = json.loads(line)
        assert same(ours, as_json(value)), f"\nours:     {line}\nexpected: {as_json(value)}"
