"""kafka-python — a Kafka client that shares no code with librdkafka — reads
what `mskbench produce` wrote to `mskbench serve kafka`, and fastavro decodes
each value under the schema `mskbench serve registry` serves for its id.

The Rust tests read the topic back with rdkafka (our own client library) and
with Debian's kcat (librdkafka again); this one holds the broker and the
producer to an implementation of the protocol written independently."""

import io
import json
import struct
import subprocess
import urllib.request

import fastavro
from kafka import KafkaConsumer, TopicPartition

from conftest import _binary

COUNT = 500


def test_kafka_python_reads_every_produced_record(serve, tmp_path):
    kafka = serve("kafka", "--partitions", "3", "--topic", "Clicks")
    registry = serve("registry")
    stats = tmp_path / "stats.json"
    produced = subprocess.run(
        [_binary(), "produce", "--brokers", kafka.url, "--topic", "Clicks", "--registry", registry.url,
         "--count", str(COUNT), "--rate", "5000", "--seed", "11", "--no-progress", "--stats-interval", "0",
         "--stats-json", str(stats)],
        capture_output=True, text=True, timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    summary = json.loads(stats.read_text())
    assert (summary["sent"], summary["acked"], summary["failed"]) == (COUNT, COUNT, 0)
    schema_id = int(summary["schema"])
    with urllib.request.urlopen(f"{registry.url}/schemas/ids/{schema_id}", timeout=10) as answer:
        schema = fastavro.parse_schema(json.loads(json.loads(answer.read())["schema"]))

    consumer = KafkaConsumer(bootstrap_servers=kafka.url, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=10_000, request_timeout_ms=20_000)
    try:
        partitions = [TopicPartition("Clicks", p) for p in sorted(consumer.partitions_for_topic("Clicks"))]
        assert len(partitions) == 3
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # Not end_offsets(): tansu 0.6 answers ListOffsets(latest) with 1 for
        # any non-empty partition (harness/src/accounting.rs reads to the end
        # for the same reason).
        records = []
        for message in consumer:
            records.append(message)
            if len(records) == COUNT:
                break
    finally:
        consumer.close()

    assert len(records) == COUNT
    by_partition = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r.offset)
    assert len(by_partition) == 3, "the keys spread over every partition"
    for partition, offsets in by_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {partition}: every offset once, in order"
    for r in records:
        magic, framed_id = struct.unpack(">bI", r.value[:5])
        assert (magic, framed_id) == (0, schema_id), "Confluent framing: 0x00 and the registered id"
        event = fastavro.schemaless_reader(io.BytesIO(r.value[5:]), schema)
        # Keys are the user id as text, as the lab's producer writes them.
        assert r.key.decode() == str(event["userid"])
        assert event["globalseq"] > 0
