"""boto3 against moto and against `mskbench serve firehose`: same shapes, same codes.

moto is the reference reading of the Firehose API; ours must answer every
call boto3 makes here with the same keys and error codes, and additionally
throttle over its quota with per-record ServiceUnavailableException.
"""

import os

import boto3
import botocore.config
import botocore.exceptions
import pytest

BUCKET = "lab-bucket"
DEST = {
    "BucketARN": f"arn:aws:s3:::{BUCKET}",
    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
    "Prefix": "MSKToS3/",
    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
}


def client(service, url):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def error_code(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"]


def shape(value):
    """Keys and value types, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def observe(fh):
    seen = {}
    seen["create"] = shape(fh.create_delivery_stream(
        DeliveryStreamName="lab", ExtendedS3DestinationConfiguration=DEST))
    seen["create again"] = error_code(
        fh.create_delivery_stream, DeliveryStreamName="lab", ExtendedS3DestinationConfiguration=DEST)
    d = fh.describe_delivery_stream(DeliveryStreamName="lab")["DeliveryStreamDescription"]
    seen["describe"] = {k: shape(d[k]) for k in (
        "DeliveryStreamName", "DeliveryStreamARN", "DeliveryStreamStatus",
        "DeliveryStreamType", "VersionId", "HasMoreDestinations")}
    s3 = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    seen["describe destination"] = {k: s3[k] for k in ("BucketARN", "Prefix", "BufferingHints")}
    seen["list"] = fh.list_delivery_streams()
    seen["list"].pop("ResponseMetadata")
    batch = fh.put_record_batch(
        DeliveryStreamName="lab", Records=[{"Data": f'{{"n":{i}}}\n'.encode()} for i in range(3)])
    seen["batch"] = shape(batch)
    seen["batch failed"] = batch["FailedPutCount"]
    seen["put"] = shape(fh.put_record(DeliveryStreamName="lab", Record={"Data": b"x\n"}))
    seen["batch missing"] = error_code(
        fh.put_record_batch, DeliveryStreamName="nope", Records=[{"Data": b"x"}])
    seen["put missing"] = error_code(fh.put_record, DeliveryStreamName="nope", Record={"Data": b"x"})
    seen["describe missing"] = error_code(fh.describe_delivery_stream, DeliveryStreamName="nope")
    seen["delete"] = shape(fh.delete_delivery_stream(DeliveryStreamName="lab"))
    seen["list after delete"] = fh.list_delivery_streams()["DeliveryStreamNames"]
    return seen


def test_boto3_sees_the_same_shapes_and_codes_as_against_moto(moto_url, serve, tmp_path):
    client("s3", moto_url).create_bucket(Bucket=BUCKET)
    from_moto = observe(client("firehose", moto_url))
    ours = serve("firehose", "--s3-dir", str(tmp_path), "--seed", "1")
    from_us = observe(client("firehose", ours.url))
    assert from_us == from_moto
    ours.stop()
    # The deleted stream's records were still delivered: 3 + 1 records.
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert len(files) == 1 and files[0].split(os.sep)[-6] == "MSKToS3"
    assert open(files[0], "rb").read() == b'{"n":0}\n{"n":1}\n{"n":2}\nx\n'


def test_validation_errors_match_aws(serve, tmp_path):
    ours = serve("firehose", "--s3-dir", str(tmp_path), "--stream", "s", "--seed", "1")
    fh = client("firehose", ours.url)
    assert error_code(fh.put_record_batch, DeliveryStreamName="s",
                      Records=[{"Data": b"x"}] * 501) == "InvalidArgumentException"
    assert error_code(fh.put_record_batch, DeliveryStreamName="s",
                      Records=[{"Data": b"x" * (1000 * 1024 + 1)}]) == "InvalidArgumentException"
    assert error_code(fh.put_record_batch, DeliveryStreamName="s",
                      Records=[{"Data": b"x" * (1000 * 1024)}] * 5) == "InvalidArgumentException"
    # Still serving.
    assert fh.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"ok\n"}])["FailedPutCount"] == 0


def test_throttling_has_the_shape_clients_must_handle(serve, tmp_path):
    ours = serve("firehose", "--s3-dir", str(tmp_path), "--stream", "s", "--seed", "1",
                 "--quota", "records=10,requests=2,bytes=1MiB")
    fh = client("firehose", ours.url)
    out = fh.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"r\n"}] * 15)
    assert out["FailedPutCount"] == 5
    responses = out["RequestResponses"]
    assert all("RecordId" in r for r in responses[:10])
    assert all(r == {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
               for r in responses[10:])
    fh.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"r\n"}])
    # The request quota (2/s, burst 2) is spent: the whole call fails.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"r\n"}])
    assert e.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
