"""The SAM template of the processor against the lab's settings and the processor's variables.

Users swap the lab's Java function for the Rust one with this template, so it
must keep what the lab's stack sets (event source mapping BatchSize 1000 on
ExampleTopic, a Direct PUT Firehose stream buffering 5 MB / 120 s into the S3
prefix MSKToS3/) and pass only environment variables the processor reads.
"""

import os
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "processor" / "deploy" / "template.yaml"
CONFIG_RS = ROOT / "processor" / "src" / "config.rs"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short intrinsic tags (!Ref, !Sub, !GetAtt) kept as plain values."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def test_the_function_is_the_bootstrap_on_provided_al2023_fed_like_the_lab():
    fn = load()["Resources"]["ProcessMSKfunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    props = fn["Properties"]
    assert (props["Runtime"], props["Handler"]) == ("provided.al2023", "bootstrap")
    event = props["Events"]["MSKEvent"]
    assert event["Type"] == "MSK"
    assert event["Properties"]["BatchSize"] == 1000
    assert event["Properties"]["Topics"] == [{"Ref": "TopicName"}]
    assert load()["Parameters"]["TopicName"]["Default"] == "ExampleTopic"


def test_the_delivery_stream_buffers_5_mb_or_120_s_into_msktos3():
    stream = load()["Resources"]["DeliveryStream"]
    assert stream["Type"] == "AWS::KinesisFirehose::DeliveryStream"
    dest = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert dest["Prefix"] == "MSKToS3/"
    assert dest["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 120}


def test_lambda_retries_feed_retries_and_every_variable_is_one_the_processor_reads():
    template = load()
    variables = template["Resources"]["ProcessMSKfunction"]["Properties"]["Environment"]["Variables"]
    assert variables["RETRIES"] == {"Ref": "LambdaRetries"}
    assert template["Parameters"]["LambdaRetries"]["Default"] == 3
    lab = {"DELIVERY_STREAM_NAME", "RETRIES", "SCHEMA_REGISTRY_URL", "CSR", "SECONDARY_DESERIALIZER"}
    assert lab <= set(variables)
    read = set(re.findall(r'var\("([A-Z_]+)"\)', CONFIG_RS.read_text())) | {"RUST_LOG"}
    assert set(variables) <= read, f"not read by the processor: {set(variables) - read}"


def test_the_function_may_call_what_it_calls_and_nothing_on_firehose_beyond_putrecordbatch():
    statements = load()["Resources"]["ProcessMSKfunction"]["Properties"]["Policies"][0]["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert {"firehose:PutRecordBatch", "glue:GetSchemaVersion", "s3:PutObject"} <= actions
    assert {a for a in actions if a.startswith("firehose:")} == {"firehose:PutRecordBatch"}


def test_cfn_lint_finds_nothing_in_the_template():
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    linted = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_a_registry_url_that_may_carry_credentials_is_never_echoed():
    assert load()["Parameters"]["SchemaRegistryUrl"].get("NoEcho") is True


def test_every_grant_names_its_resources_but_the_vpc_network_interfaces():
    """Scoped to the cluster, topic, group, stream, bucket prefix and registry:
    "*" only for the EC2 network-interface actions, which take no
    resource-level permissions."""
    statements = load()["Resources"]["ProcessMSKfunction"]["Properties"]["Policies"][0]["Statement"]
    for statement in statements:
        if statement["Resource"] == "*":
            assert all(a.startswith("ec2:") for a in statement["Action"]), statement
    by_action = {a: s["Resource"] for s in statements for a in s["Action"]}
    assert by_action["kafka:DescribeCluster"] == {"Ref": "MSKClusterArn"}
    assert "TopicName" in str(by_action["kafka-cluster:ReadData"]) and ":topic/" in str(by_action["kafka-cluster:ReadData"])
    assert ":group/" in str(by_action["kafka-cluster:AlterGroup"])
    assert all("GlueRegistryName" in str(r) for r in by_action["glue:GetSchemaVersion"])
