"""Sends one SigV4-signed AWS JSON request with an arbitrary body, the way a client that bypasses
botocore's own validation would; prints the HTTP status and response body as JSON.
usage: raw_request.py TARGET BODY_FILE_OR_- [--secret S] [--no-sign] [--date-offset-seconds N]"""
import argparse, datetime, json, os, sys, urllib.request, urllib.error
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

p = argparse.ArgumentParser()
p.add_argument("target")
p.add_argument("body")
p.add_argument("--secret", default=os.environ["AWS_SECRET_ACCESS_KEY"])
p.add_argument("--access-key", default=os.environ["AWS_ACCESS_KEY_ID"])
p.add_argument("--no-sign", action="store_true")
p.add_argument("--date-offset-seconds", type=int, default=0)
a = p.parse_args()

body = sys.stdin.buffer.read() if a.body == "-" else (open(a.body, "rb").read() if os.path.exists(a.body) else a.body.encode())
url = os.environ["ECS_ENDPOINT"] + "/"
headers = {"Content-Type": "application/x-amz-json-1.1"}
if a.target:
    headers["X-Amz-Target"] = a.target
request = AWSRequest(method="POST", url=url, data=body, headers=headers)
if not a.no_sign:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=a.date_offset_seconds)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(a.access_key, a.secret), "ecs", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")).add_auth(request)
prepared = request.prepare()
http = urllib.request.Request(url, data=body, headers=dict(prepared.headers.items()), method="POST")
try:
    with urllib.request.urlopen(http, timeout=30) as response:
        status, payload = response.status, response.read()
except urllib.error.HTTPError as e:
    status, payload = e.code, e.read()
print(json.dumps({"status": status, "body": json.loads(payload) if payload else None}))
