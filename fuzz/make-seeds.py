#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the fixtures.

Standard library only. The inputs come from the repository's fixtures
(core/tests/data, scenarios/*.toml) and from the request shapes the
stand-ins' tests send (sim/tests), laid out as each target reads its input
(see the header of fuzz/fuzz_targets/<target>.rs). Run it again after a
fixture changes; it rewrites the seeds it owns (`seed-*`) and leaves other
files (minimized inputs, crash regressions) alone.
"""
import base64
import hashlib
import json
import pathlib
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
DATA = ROOT / "core" / "tests" / "data"
GLUE_VERSION = bytes.fromhex("b7b4a7f00c5e4a5b9a0e3f2c7d9e1a42")
SEP = b"\xff"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def main():
    for old in CORPUS.glob("*/seed-*"):
        old.unlink()
    lab = json.loads((DATA / "lab-event.json").read_text())
    records = [r for group in lab["records"].values() for r in group]
    values = [base64.b64decode(r["value"]) for r in records if r.get("value")]
    click = (DATA / "clickevent.avsc").read_text()

    # event: the fixtures, a one-record event in each framing, a tombstone.
    write("event", "lab-event.json", (DATA / "lab-event.json").read_bytes())
    write("event", "bad-event.json", (DATA / "bad-event.json").read_bytes())
    datum = values[0][5:]
    framings = {
        "confluent": values[0],
        "glue": b"\x03\x00" + GLUE_VERSION + datum,
        "glue-zlib": b"\x03\x05" + GLUE_VERSION + zlib.compress(datum),
    }
    for name, value in framings.items():
        record = dict(records[0], value=base64.b64encode(value).decode(),
                      headers=[{"h": [104, -1, 255]}], key=None)
        event = {"eventSource": "aws:kafka", "records": {"ExampleTopic-0": [record]}}
        write("event", f"{name}.json", json.dumps(event))
    tomb = {"records": {"t-1": [{"topic": "t", "partition": 1, "offset": 9, "value": None}]}}
    write("event", "tombstone.json", json.dumps(tomb))

    # base64: record values and keys as the mapping writes them, edge cases.
    for i, r in enumerate(records[:3]):
        write("base64", f"value-{i}", r["value"])
    write("base64", "key", records[0]["key"])
    for name, text in {"empty": "", "pad1": "YWI=", "pad2": "YQ==", "trailing-bits": "YR==",
                       "bad-char": "YW-j", "short": "YQ"}.items():
        write("base64", name, text)

    # wire: two bytes of inflate limit (little-endian), then the value.
    limit = struct.pack("<H", 4096)
    for name, value in framings.items():
        write("wire", name, limit + value)
    write("wire", "zlib-bomb", struct.pack("<H", 100) + b"\x03\x05" + GLUE_VERSION + zlib.compress(b"\0" * 5000))
    write("wire", "unknown-magic", limit + b"{\"ip\":1}")

    # transcode: schema text, NUL, datum.
    for i, value in enumerate(values[:4]):
        write("transcode", f"clickevent-{i}", click.encode() + b"\0" + value[5:])
        write("transcode", f"builtin-0-{i}", b"0\0" + value[5:])
    # Built-in 1: u = string "a", map {"k": [1]}, e = B, f = 3 bytes, b = "", x = 1.5f, d = 7, id = "u".
    rich = b"\x02\x02a" + b"\x02\x02k\x02\x02\x00\x00" + b"\x02" + b"xyz" + b"\x00" + struct.pack("<f", 1.5) + b"\x0e" + b"\x02u"
    write("transcode", "builtin-1", b"1\0" + rich)
    write("transcode", "builtin-2", b"2\0" + b"\x02\x02\x04\x02\x06\x00")
    write("transcode", "builtin-3", b"3\0" + b"\x02\x02\x02k\x02\x00\x00")
    ref = '{"type":"record","name":"Ref","fields":[{"name":"n","type":"int"}]}'
    main_schema = '{"type":"record","name":"Top","fields":[{"name":"r","type":"Ref"},{"name":"s","type":["null","string"]}]}'
    write("transcode", "references", (ref + "\x01" + main_schema).encode() + b"\0" + b"\x04\x02\x02z")

    # packer: 7 header bytes (bit 0 of the first: own limits), then 3-byte sizes.
    sizes = b"".join(struct.pack("<I", s)[:3] for s in (100, 2000, 0x400000 | 0x700, 5000))
    write("packer", "firehose-limits", b"\0" * 7 + sizes * 4)
    write("packer", "own-limits", bytes([0x21]) + struct.pack("<HHH", 8, 1000, 4000) + sizes * 8)

    # firehose: operation byte, body; calls separated by 0xFF.
    def call(op, body):
        return bytes([op]) + (json.dumps(body).encode() if not isinstance(body, bytes) else body)
    data = [base64.b64encode(b"{\"ip\":\"1.2.3.4\"}\n").decode(), base64.b64encode(b"x").decode()]
    batch = {"DeliveryStreamName": "s", "Records": [{"Data": d} for d in data]}
    create = {"DeliveryStreamName": "t", "DeliveryStreamType": "DirectPut",
              "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b", "RoleARN": "arn:aws:iam::1:role/r",
                                                     "Prefix": "p/q/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}}}
    write("firehose", "put-record-batch", call(0, batch))
    write("firehose", "put-record", call(1, {"DeliveryStreamName": "s", "Record": {"Data": data[0]}}))
    write("firehose", "create", call(2, create))
    write("firehose", "describe", call(3, {"DeliveryStreamName": "s"}))
    write("firehose", "list", call(4, {"Limit": 2, "ExclusiveStartDeliveryStreamName": "a"}))
    write("firehose", "delete", call(5, {"DeliveryStreamName": "s"}))
    write("firehose", "session", SEP.join([call(2, create), call(0, dict(batch, DeliveryStreamName="t")),
                                           call(4, b"{}"), call(5, {"DeliveryStreamName": "t"}),
                                           call(1, {"DeliveryStreamName": "t", "Record": {"Data": "eA=="}})]))

    # registry: method byte (0 GET, 1 POST, 2 PUT, 3 DELETE), path, newline, body.
    def req(method, path, body=None):
        return bytes([method]) + path.encode() + b"\n" + (json.dumps(body).encode() if body is not None else b"")
    v1 = {"schema": click}
    v2 = {"schema": click.replace('"fields": [', '"fields": [{"name": "extra", "type": ["null", "int"], "default": null},', 1)
          if '"fields": [' in click else click, "schemaType": "AVRO"}
    write("registry", "register", req(1, "/subjects/ExampleTopic-value/versions", v1))
    write("registry", "session", SEP.join([
        req(1, "/subjects/s-value/versions", v1),
        req(1, "/compatibility/subjects/s-value/versions/latest?verbose=true", v2),
        req(1, "/subjects/s-value/versions", v2),
        req(1, "/subjects/s-value", v1),
        req(0, "/subjects/s-value/versions/latest"),
        req(0, "/subjects/s-value/versions/1/schema"),
        req(0, "/schemas/ids/1"),
        req(2, "/config/s-value", {"compatibility": "FULL_TRANSITIVE"}),
        req(0, "/config/s-value?defaultToGlobal=true"),
    ]))
    write("registry", "config", SEP.join([req(2, "/config", {"compatibility": "NONE"}), req(0, "/config"),
                                          req(3, "/config/x"), req(0, "/subjects")]))
    write("registry", "delete", SEP.join([req(1, "/subjects/d/versions", {"schema": "\"string\""}), req(3, "/subjects/d")]))
    write("registry", "bad-bodies", SEP.join([req(1, "/subjects/x/versions", {"schema": 5}),
                                              bytes([1]) + b"/subjects/x/versions\n{not json",
                                              req(1, "/subjects/x/versions", {"schema": "{}", "schemaType": "JSON"}),
                                              req(1, "/subjects/x/versions", {"schema": "\"int\"", "references": [{"name": "a"}]})]))

    # scenario: every shipped file.
    for path in sorted(p for p in (ROOT / "scenarios").glob("*.toml") if p.name != "Cargo.toml"):
        write("scenario", path.name, path.read_bytes())

    total = sum(p.stat().st_size for p in CORPUS.glob("*/*"))
    print(f"seed corpora: {len(list(CORPUS.glob('*/seed-*')))} files, {total} bytes in all")


if __name__ == "__main__":
    main()
