"""Property: whatever a server answers, the client returns data or raises a classified commctl error.

Random statuses, encodings and bodies (bytes, JSON, envelopes of near-communications) go to every
endpoint, through httpx.MockTransport (fast, many examples) and through the CLI against the hostile
server (fewer): only exit 0, 4, 5 or 6, never a traceback, never a multi-line message.
"""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commctl.client import BasicAuth, Client
from commctl.errors import CommctlError, ExitCode

from .conftest import Cli
from .hostile import HostileServer, reply

CLASSIFIED = {ExitCode.CONFIG, ExitCode.API_REJECTED, ExitCode.UNAVAILABLE}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
field = st.one_of(values, st.integers(1, 5), st.sampled_from(["START", "REMINDER", "2", ""]))
near_communication = st.fixed_dictionaries(
    {},
    optional={
        "id": field,
        "communicationType": field,
        "channelId": field,
        "messageTemplate": field,
        "offsetDays": field,
        "active": field,
        "attribution": field,
        "accessToken": field,
        "ttlSeconds": field,
        "name": field,
    },
)
envelopes = st.fixed_dictionaries(
    {"data": st.one_of(values, st.lists(near_communication, max_size=3), near_communication)},
    optional={
        "errors": st.one_of(
            values, st.lists(st.fixed_dictionaries({}, optional={"code": field, "message": field}), max_size=2)
        ),
        "warnings": values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    values.map(lambda v: json.dumps(v).encode()),
    envelopes.map(lambda v: json.dumps(v).encode()),
    envelopes.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)
statuses = st.sampled_from([200, 201, 204, 400, 401, 403, 404, 405, 410, 429, 461, 500, 502, 503, 521]) | st.integers(
    200, 599
)
encodings = st.sampled_from(["", "gzip", "deflate", "br", "identity", "gzip, gzip"])
ENDPOINTS = {
    "communications": lambda c: c.communications(1, 2),
    "upsert": lambda c: c.upsert(1, 2, [{"messageTemplate": "m"}]),
    "channels": lambda c: c.channels(),
    "channels_raw": lambda c: c.channels_raw(),
    "groups": lambda c: c.groups(),
    "targets": lambda c: c.targets(1),
    "token": lambda c: c.generate_token("k", "secret-1"),
}


def encode(body: bytes, encoding: str, compress: bool) -> bytes:
    if not compress:
        return body
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@settings(max_examples=100, deadline=None)
@given(
    status=statuses,
    body=bodies,
    encoding=encodings,
    compress=st.booleans(),
    retry_after=st.none() | st.text(max_size=12),
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
)
def test_any_reply_is_data_or_a_classified_one_line_error(
    status: int, body: bytes, encoding: str, compress: bool, retry_after: str | None, endpoint: str
) -> None:
    headers = {"Content-Encoding": encoding} if encoding else {}
    if retry_after is not None and retry_after.isprintable() and retry_after.isascii():
        headers["Retry-After"] = retry_after
    content = encode(body, encoding, compress)

    def handler(request: httpx.Request) -> httpx.Response:
        # A stream, not content=: httpx would decode (unbounded) a body given whole, before the client sees it.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))

    client = Client(
        "https://api.example",
        BasicAuth("till", "pw-fuzz-1"),
        retries=1,
        backoff=0,
        budget=1,
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    try:
        ENDPOINTS[endpoint](client)
    except CommctlError as e:
        assert e.exit_code in CLASSIFIED, (e.exit_code, e.message)
        assert "\n" not in e.message and "\r" not in e.message, e.message
    finally:
        client.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=statuses, body=bodies, content_type=st.sampled_from(["application/json", "text/html", "", "x/y"]))
def test_the_cli_answers_any_reply_with_a_documented_exit_code(
    cli: Cli, hostile: HostileServer, status: int, body: bytes, content_type: str
) -> None:
    hostile.mode = reply(status, body, {"Content-Type": content_type} if content_type else {})
    env = {"COMMCTL_USERNAME": "till", "COMMCTL_PASSWORD": "pw-fuzz-1"}
    out = cli("show", "-g", "1", "-t", "2", "-o", "json", "--retries", "0", "--host", hostile.url, env=env)
    assert out.code in {0, *CLASSIFIED}, out
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out
    assert json.loads(out.stdout) is not None  # data, or {"error": ...}: always JSON on stdout
