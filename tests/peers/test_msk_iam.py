"""Our MSK IAM token against AWS's own signer, aws-msk-iam-sasl-signer-python.

For fixed credentials, region and clock, both tokens must decode to the same
presigned `kafka-cluster:Connect` request (every signed parameter, the
signature included, equal; only the `User-Agent` naming the library
differs), and botocore's SigV4 query signer, given our parameters, must
compute our signature. Credentials come from the AWS default chain in both:
environment variables in one test, a profile in a temporary HOME in the
other, so the chain is exercised as users set it up.
"""

import base64
import calendar
import os
import subprocess
from datetime import datetime
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import botocore.credentials
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from botocore.awsrequest import AWSRequest

from conftest import _binary

AT = datetime(2026, 12, 3, 10, 30, 0)
KEY, SECRET, SESSION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzE/+session=="


def _decode(token):
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


def _ours(env, region="eu-west-1"):
    done = subprocess.run([_binary(), "msk-iam-token", "--region", region, "--at", AT.strftime("%Y-%m-%dT%H:%M:%SZ")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "expires 2026-12-03T10:45:00Z" in done.stderr, done.stderr
    return done.stdout.strip()


def _theirs(region="eu-west-1"):
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=AT):
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return token, expiry_ms


def _clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


def _same_request(ours, theirs):
    o, t = _decode(ours), _decode(theirs)
    assert o[:3] == t[:3] == ("https", "kafka.eu-west-1.amazonaws.com", "/")
    o_params, t_params = dict(o[3]), dict(t[3])
    assert o_params.pop("User-Agent").startswith("mskbench/")
    assert t_params.pop("User-Agent").startswith("aws-msk-iam-sasl-signer-python/")
    assert o_params == t_params
    return o_params


def test_our_token_is_aws_signers_token_from_environment_credentials(tmp_path, monkeypatch):
    env = _clean_env(tmp_path, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=SESSION)
    ours = _ours(env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in [k for k in os.environ if k.startswith("AWS_") and k not in env]:
        monkeypatch.delenv(k)
    theirs, expiry_ms = _theirs()
    params = _same_request(ours, theirs)
    assert params["Action"] == "kafka-cluster:Connect"
    assert params["X-Amz-Security-Token"] == SESSION
    assert expiry_ms == calendar.timegm((2026, 12, 3, 10, 45, 0)) * 1000

    # botocore verifies: signing our request's parameters gives our signature.
    signed = {k: v for k, v in params.items() if k not in ("X-Amz-Signature",)}
    request = AWSRequest(method="GET", url="https://kafka.eu-west-1.amazonaws.com/",
                         params={"Action": "kafka-cluster:Connect"})
    creds = botocore.credentials.Credentials(KEY, SECRET, SESSION)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=AT):
        botocore.auth.SigV4QueryAuth(creds, "kafka-cluster", "eu-west-1", expires=900).add_auth(request)
    _, _, _, botocore_params = _decode(base64.urlsafe_b64encode(request.url.encode()).decode().rstrip("="))
    assert botocore_params["X-Amz-Signature"] == params["X-Amz-Signature"]
    assert {k: botocore_params[k] for k in signed} == signed


def test_credentials_come_from_a_profile_as_the_chain_reads_it(tmp_path, monkeypatch):
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(f"[lab]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
    (aws / "config").write_text("[profile lab]\nregion = eu-west-1\n")
    env = _clean_env(tmp_path, AWS_PROFILE="lab", AWS_CONFIG_FILE=str(aws / "config"),
                     AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"))
    done = subprocess.run([_binary(), "msk-iam-token", "--at", AT.strftime("%Y-%m-%dT%H:%M:%SZ")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    ours = done.stdout.strip()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in [k for k in os.environ if k.startswith("AWS_") and k not in env]:
        monkeypatch.delenv(k)
    theirs, _ = _theirs()
    params = _same_request(ours, theirs)
    assert params["X-Amz-Credential"].startswith(f"{KEY}/20261203/eu-west-1/kafka-cluster/")
    assert "X-Amz-Security-Token" not in params


def test_no_credentials_is_a_clear_error(tmp_path):
    done = subprocess.run([_binary(), "msk-iam-token", "--region", "us-east-1"], capture_output=True, text=True,
                          timeout=60, env=_clean_env(tmp_path))
    assert done.returncode == 2
    assert "no AWS credentials" in done.stderr, done.stderr
