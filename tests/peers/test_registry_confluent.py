"""confluent-kafka's registry client, Avro serializer and deserializer against
`mskbench serve registry`."""

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

CLICK = {
    "type": "record", "name": "ClickEvent", "namespace": "samples.clickstream.avro",
    "fields": [
        {"name": "ip", "type": "string"},
        {"name": "eventtimestamp", "type": "long"},
        {"name": "devicetype", "type": "string"},
        {"name": "event_type", "type": ["string", "null"]},
        {"name": "product_type", "type": ["string", "null"]},
        {"name": "userid", "type": "int"},
        {"name": "globalseq", "type": "long"},
        {"name": "prevglobalseq", "type": "long", "default": 0},
    ],
}


def with_field(field):
    schema = json.loads(json.dumps(CLICK))
    schema["fields"].append(field)
    return json.dumps(schema)


@pytest.fixture
def registry(serve):
    served = serve("registry")
    return served, SchemaRegistryClient({"url": served.url})


def test_register_lookup_and_fetch(registry):
    _, client = registry
    text = json.dumps(CLICK)
    schema_id = client.register_schema("ExampleTopic-value", Schema(text, "AVRO"))
    # Formatting differences do not mint a new id.
    again = SchemaRegistryClient({"url": registry[0].url})
    assert again.register_schema("ExampleTopic-value", Schema(json.dumps(CLICK, indent=2), "AVRO")) == schema_id
    assert client.get_subjects() == ["ExampleTopic-value"]
    latest = again.get_latest_version("ExampleTopic-value")
    assert (latest.schema_id, latest.version) == (schema_id, 1)
    assert json.loads(again.get_schema(schema_id).schema_str) == CLICK
    found = again.lookup_schema("ExampleTopic-value", Schema(text, "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)
    assert again.get_versions("ExampleTopic-value") == [1]
    with pytest.raises(SchemaRegistryError) as e:
        again.get_version("ExampleTopic-value", 2)
    assert (e.value.http_status_code, e.value.error_code) == (404, 40402)
    with pytest.raises(SchemaRegistryError) as e:
        again.get_latest_version("missing-value")
    assert e.value.error_code == 40401
    assert again.delete_subject("ExampleTopic-value") == [1]
    assert again.get_subjects() == []


def test_serializer_and_deserializer_round_trip(registry):
    _, client = registry
    serializer = AvroSerializer(client, json.dumps(CLICK))
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry[0].url}))
    ctx = SerializationContext("ExampleTopic", MessageField.VALUE)
    event = {"ip": "66.249.1.7", "eventtimestamp": 1700000000000, "devicetype": "mobile",
             "event_type": "home_page", "product_type": None, "userid": 1000,
             "globalseq": 1, "prevglobalseq": 0}
    framed = serializer(event, ctx)
    assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == 1, "Confluent framing, id 1"
    assert deserializer(framed, ctx) == event
    assert client.get_subjects() == ["ExampleTopic-value"]


def test_compatibility_refusals(registry):
    _, client = registry
    subject = "ExampleTopic-value"
    client.register_schema(subject, Schema(json.dumps(CLICK), "AVRO"))
    assert client.get_compatibility() == "BACKWARD"
    no_default = Schema(with_field({"name": "sessionid", "type": "string"}), "AVRO")
    with_default = Schema(with_field({"name": "sessionid", "type": "string", "default": ""}), "AVRO")
    assert client.test_compatibility(subject, no_default) is False
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(subject, no_default)
    assert (e.value.http_status_code, e.value.error_code) == (409, 409)
    assert client.register_schema(subject, with_default) == 2
    # NONE lets anything through; FULL refuses what only one direction reads.
    assert client.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility(subject) == "NONE"
    client.register_schema(subject, Schema('{"type":"string"}', "AVRO"))
    client.set_compatibility(level="FULL")
    assert client.get_compatibility() == "FULL"
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema("other-value", Schema('"not a schema"', "AVRO"))
    assert e.value.error_code == 42201
    with pytest.raises(SchemaRegistryError) as e:
        client.set_compatibility(level="SIDEWAYS")
    assert e.value.error_code == 42203


def test_data_survives_a_restart(serve, tmp_path):
    data = str(tmp_path / "registry.json")
    first = serve("registry", "--data", data)
    schema_id = SchemaRegistryClient({"url": first.url}).register_schema(
        "ExampleTopic-value", Schema(json.dumps(CLICK), "AVRO"))
    first.stop()
    second = serve("registry", "--data", data)
    client = SchemaRegistryClient({"url": second.url})
    assert client.get_latest_version("ExampleTopic-value").schema_id == schema_id
    assert json.loads(client.get_schema(schema_id).schema_str) == CLICK
