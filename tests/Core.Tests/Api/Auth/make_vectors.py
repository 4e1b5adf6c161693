#!/usr/bin/env python3
"""Regenerates the botocore-signed fixtures pasted into SigV4VerifierTests.cs.

Run: python3 tests/Core.Tests/Api/Auth/make_vectors.py

Every ECS / Application Auto Scaling request goes through a real botocore client (the stack the
AWS CLI v1 uses), so the fixtures carry exactly the headers the CLI sends and signs
(amz-sdk-invocation-id, amz-sdk-request, Content-Length, ...). The HTTP send is short-circuited
by a 'before-send' handler, and the signing clock is pinned by patching
botocore.auth.get_current_datetime. The AWS SigV4 test-suite requests are signed with SigV4Auth
and checked against the signatures AWS publishes, so botocore and the suite are known to agree
before the C# tests rely on either.
"""
import datetime
import json
from hashlib import sha256
from unittest import mock

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ECS_TIME = datetime.datetime(2026, 11, 25, 4, 10, 0)
SUITE_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)


def pinned(moment):
    return mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment)


def capture(service, operation, params, region="us-east-1", endpoint="https://ecs.example.test"):
    """Calls one operation through a real client and returns the request as it would go out."""
    session = botocore.session.get_session()
    client = session.create_client(
        service, region_name=region, endpoint_url=endpoint,
        aws_access_key_id=AKID, aws_secret_access_key=SECRET)
    sent = {}

    def before_send(request, **_):
        sent["request"] = request
        return AWSResponse(request.url, 200, {}, mock.Mock(stream=lambda: iter([b"{}"]), content=b"{}"))

    client.meta.events.register("before-send", before_send)
    with pinned(ECS_TIME):
        try:
            getattr(client, operation)(**params)
        except Exception:  # the fake response may not parse; the request is what we want
            pass
    return sent["request"]


def dump(name, request):
    split = botocore.compat.urlsplit(request.url)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    # The HTTP client adds Host from the URL; botocore signed it from the same URL.
    headers.insert(0, ("Host", split.netloc))
    print(f"// {name}")
    print(json.dumps({"method": request.method, "path": split.path or "/", "query": split.query,
                      "headers": headers, "body": body.decode()}, indent=2))
    print()


def suite_signature(method, target, headers, body=b""):
    request = AWSRequest(method=method, url="https://example.amazonaws.com" + target, data=body)
    for name, value in headers:  # HTTPHeaders appends on assignment: repeated names stay repeated
        request.headers[name] = value
    with pinned(SUITE_TIME):
        botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "service", "us-east-1").add_auth(request)
    return request.headers["Authorization"].split("Signature=")[1]


# Published by AWS (aws-sig-v4-test-suite, 2015-08-30).
SUITE = {
    "get-vanilla": ("GET", "/", [], b"", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    "get-vanilla-query-order-key-case": ("GET", "/?Param2=value2&Param1=value1", [], b"",
                                         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    "get-vanilla-query-order-value": ("GET", "/?Param1=value2&Param1=value1", [], b"",
                                      "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
    "get-unreserved": ("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", [], b"",
                       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    "get-slashes": ("GET", "//example//", [], b"", "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
    "get-header-value-order": ("GET", "/", [("My-Header1", v) for v in ("value4", "value1", "value3", "value2")],
                               b"", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
    "get-header-key-duplicate": ("GET", "/", [("My-Header1", v) for v in ("value2", "value2", "value1")], b"",
                                 "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    "get-header-value-trim": ("GET", "/", [("My-Header1", " value1"), ("My-Header2", '"a   b   c"')], b"",
                              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    "post-x-www-form-urlencoded": ("POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
                                   b"Param1=value1",
                                   "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
}

if __name__ == "__main__":
    print(f"// botocore {botocore.__version__}")
    for name, (method, target, headers, body, published) in SUITE.items():
        # get-slashes is sent by botocore as is; the published vector's request line is '//example//'.
        ours = suite_signature(method, target, headers, body)
        assert ours == published, (name, ours, published)
    print("// botocore agrees with every published test-suite signature")
    print()

    dump("ecs ListClusters", capture("ecs", "list_clusters", {}))
    dump("ecs RunTask", capture("ecs", "run_task", {
        "cluster": "default", "taskDefinition": "web:3", "count": 2, "clientToken": "fixture-1",
        "overrides": {"containerOverrides": [{"name": "web", "command": ["echo", "héllo   wörld"]}]}}))
    dump("application-autoscaling DescribeScalableTargets, eu-west-1", capture(
        "application-autoscaling", "describe_scalable_targets", {"ServiceNamespace": "ecs"},
        region="eu-west-1", endpoint="https://ecs.example.test"))

    # A path with dot segments, an empty segment and an escape, and a query out of order: botocore
    # normalises the wire path then encodes it again (%20 signs as %2520) and sorts the query as sent.
    odd = AWSRequest(method="GET", url="https://ecs.example.test/a/./b/../c%20d//e?b=2&a=%2F&a=1")
    with pinned(ECS_TIME):
        botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "ecs", "us-east-1").add_auth(odd)
    dump("odd path and query, SigV4Auth", odd)

    # Presigned (query) auth, as SigV4QueryAuth produces it for a non-S3 service.
    presigned = AWSRequest(method="GET", url="https://ecs.example.test/?Action=ListClusters&Version=2014-11-13")
    with pinned(ECS_TIME):
        botocore.auth.SigV4QueryAuth(Credentials(AKID, SECRET), "ecs", "us-east-1", expires=300).add_auth(presigned)
    dump("presigned GET, SigV4QueryAuth", presigned)

    # A caller that declares the payload hash: botocore signs the header's value instead of hashing.
    for declared in (sha256(b'{"cluster":"default"}').hexdigest(), "UNSIGNED-PAYLOAD"):
        hashed = AWSRequest(method="POST", url="https://ecs.example.test/", data=b'{"cluster":"default"}',
                            headers={"Content-Type": "application/x-amz-json-1.1",
                                     "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeClusters",
                                     "X-Amz-Content-SHA256": declared})
        with pinned(ECS_TIME):
            botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "ecs", "us-east-1").add_auth(hashed)
        dump(f"X-Amz-Content-SHA256: {declared}", hashed)

    # A caller that sets a Date header: botocore then signs 'date' and sends no X-Amz-Date.
    dated = AWSRequest(method="POST", url="https://ecs.example.test/", data=b"{}",
                       headers={"Date": "x", "Content-Type": "application/x-amz-json-1.1",
                                "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"})
    with pinned(ECS_TIME):
        botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "ecs", "us-east-1").add_auth(dated)
    dump("Date header instead of X-Amz-Date", dated)
