"""Powertools for AWS Lambda (Python) reads what our event source mapping builds.

Run by processor/tests/powertools.rs with the test venv's Python:

    powertools_kafka.py EVENT.json SCHEMA.avsc POISON_OFFSET

1. Powertools' `KafkaEvent` data class parses the event: every record's
   coordinates, timestamp, decoded key and headers are printed.
2. Powertools' Kafka consumer (`kafka_consumer` with an AVRO `SchemaConfig`,
   Confluent wire format) deserializes every value but the poison one with
   the schema, as a function using Powertools would.
3. Powertools' `BatchProcessor(EventType.Kafka)` runs a record handler that
   fails on the poison record, and its partial batch response is printed:
   the mapping must read it.

Prints one JSON document on stdout. Nothing here is mskbench code.
"""

import base64
import json
import sys

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEvent
from aws_lambda_powertools.utilities.kafka import SchemaConfig, kafka_consumer


class Context:
    function_name = "mskbench-peer"
    aws_request_id = "peer-1"


def main():
    event = json.load(open(sys.argv[1]))
    schema = open(sys.argv[2]).read()
    poison = int(sys.argv[3])

    parsed = KafkaEvent(event)
    records = []
    for r in parsed.records:
        records.append(
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "timestamp_type": r.timestamp_type,
                "key": None if r.decoded_key is None else r.decoded_key.decode("latin-1"),
                "headers": {k: list(v) for k, v in r.decoded_headers.items()},
                "value_bytes": base64.b64encode(r.decoded_value).decode(),
            }
        )

    # The consumer deserializes every value it is given: the poison record is left out.
    decodable = dict(event)
    decodable["records"] = {
        group: [r for r in rs if r["offset"] != poison] for group, rs in event["records"].items()
    }
    config = SchemaConfig(value_schema_type="AVRO", value_schema=schema, value_schema_wire_format="CONFLUENT")

    @kafka_consumer(schema_config=config)
    def consume(ev, _ctx):
        return [{"partition": r.partition, "offset": r.offset, "value": r.value} for r in ev.records]

    values = consume(decodable, Context())

    def handle(record):
        if record.offset == poison:
            raise ValueError("poison record")

    processor = BatchProcessor(event_type=EventType.Kafka)
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=Context())
    json.dump({"records": records, "values": values, "response": response}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
