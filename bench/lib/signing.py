"""Pre-signed ECS requests: signed once with botocore, replayed byte for byte by wrk and the
open-loop generator.

A SigV4 signature covers the Host header, so a request is signed for one server; the bodies
are identical for every server, which is what makes the comparison fair. Signatures expire
(our server accepts +-5 minutes of skew), so callers sign right before each run.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIALOCALDEVELOPMENT"
SECRET_KEY = "local-development-secret-key-not-for-production"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class SignedRequest:
    host: str          # host:port, exactly as signed
    headers: tuple     # ((name, value), ...) in send order, Content-Length excluded
    body: bytes

    def raw(self) -> bytes:
        """The whole HTTP/1.1 request as wrk sends it."""
        lines = ["POST / HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + self.body


def sign(url: str, action: str, params: dict, target_prefix: str = TARGET_PREFIX, service: str = "ecs") -> SignedRequest:
    """ECS by default; CloudWatch Logs with target_prefix="Logs_20140328.", service="logs"."""
    netloc = urlsplit(url).netloc
    body = json.dumps(params, separators=(",", ":")).encode("ascii")
    # Host is set explicitly so the signed value is exactly the one wrk sends.
    request = AWSRequest(
        method="POST",
        url=f"http://{netloc}/",
        data=body,
        headers={
            "Host": netloc,
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": target_prefix + action,
        },
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(request)
    wanted = ("Host", "Content-Type", "X-Amz-Target", "X-Amz-Date", "Authorization")
    headers = tuple((name, request.headers[name]) for name in wanted)
    return SignedRequest(netloc, headers, body)


def lua_string(data: bytes) -> str:
    """A Lua string literal holding data exactly (wrk loads the request list with dofile)."""
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def write_lua_requests(path: str, requests: list) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write("return {\n")
        for request in requests:
            f.write("  " + lua_string(request.raw()) + ",\n")
        f.write("}\n")
