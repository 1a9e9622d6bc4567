"""The emulator's fidelity, straight over HTTP: envelope, errors, natural key, concurrency, persistence."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from commctl.client import basic_header
from commctl.sandbox.app import Faults

from .conftest import Cli, Sandbox, ServeSandbox, serve_in_thread, start_sandbox, stop_sandbox, write

AUTH = {"Authorization": basic_header("sandbox", "sandbox")}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
UPSERT = "/v3/targetGroups/4100/targets/5200/communications/upsert"
ITEM = {
    "communicationType": "START",
    "channelId": 2,
    "messageTemplate": "hello",
    "sender": "s",
    "subjectTemplate": "x",
    "offsetDays": 1,
    "active": True,
}


# The sandbox is plain http on loopback: nothing to verify, and no certificate store to load (about
# 20 ms for each client httpx makes).
plain_get = functools.partial(httpx.get, verify=False)
plain_post = functools.partial(httpx.post, verify=False)


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(verify=False, base_url=sandbox.url, headers=AUTH) as client:
        yield client


def test_upsert_envelope_and_attribution(http: httpx.Client) -> None:
    r = http.post(UPSERT, json=[ITEM])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "errors", "warnings"} and body["errors"] is None
    [item] = body["data"]
    assert {k: item[k] for k in ITEM} == ITEM
    assert (item["targetId"], item["targetGroupId"]) == (5200, 4100)
    attribution = item["attribution"]
    assert STAMP.match(attribution["createdOn"]) and STAMP.match(attribution["lastUpdatedOn"])
    assert attribution["createdBy"]["code"] == "sandbox" and attribution["createdBy"]["type"] == "TILL"
    assert r.headers["x-cap-requestid"]


def test_natural_key_updates_in_place(http: httpx.Client) -> None:
    first = http.post(UPSERT, json=[ITEM]).json()["data"][0]
    second = http.post(UPSERT, json=[{**ITEM, "messageTemplate": "changed", "channelId": "2"}]).json()["data"][0]
    assert second["id"] == first["id"]
    assert second["attribution"]["createdOn"] == first["attribution"]["createdOn"]
    assert second["messageTemplate"] == "changed" and second["channelId"] == 2
    other = http.post(UPSERT, json=[{**ITEM, "channelId": 1}]).json()["data"][0]
    assert other["id"] != first["id"]
    listed = http.get("/v3/targetGroups/4100/targets/5200/communications").json()["data"]
    assert [c["id"] for c in listed] == [first["id"], other["id"]]


def test_defaults_on_create(http: httpx.Client) -> None:
    item = http.post(UPSERT, json=[{"communicationType": "CHANGE", "channelId": 3, "messageTemplate": "m"}]).json()
    assert {k: item["data"][0][k] for k in ("sender", "subjectTemplate", "offsetDays", "active")} == {
        "sender": "",
        "subjectTemplate": "",
        "offsetDays": 0,
        "active": True,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (ITEM, "request body must be a JSON array"),
        ([], "must not be an empty array"),
        ([{**ITEM, "communicationType": "BEGIN"}], "communicationType must be one of"),
        ([{**ITEM, "channelId": 99}], "unknown channelId 99"),
        ([{**ITEM, "offsetDays": -1}], "offsetDays must be an integer >= 0"),
        ([{**ITEM, "active": "yes"}], "active must be true or false"),
        ([{k: v for k, v in ITEM.items() if k != "messageTemplate"}], "messageTemplate is required"),
    ],
)
def test_bad_bodies_are_400_with_errors(http: httpx.Client, body: Any, message: str) -> None:
    r = http.post(UPSERT, json=body)
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["code"] == 300004 and message in error["message"]
    assert r.json()["data"] is None


def test_bad_json_is_400(http: httpx.Client) -> None:
    r = http.post(UPSERT, content=b"[{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["errors"][0]["message"]


def test_credentials(sandbox: Sandbox) -> None:
    with httpx.Client(verify=False, base_url=sandbox.url) as anon:
        assert anon.get("/v3/targetGroups/channels").status_code == 401
        bad = {"Authorization": basic_header("sandbox", "wrong")}
        assert anon.get("/v3/targetGroups/channels", headers=bad).status_code == 401
        plain = {"Authorization": "Basic " + __import__("base64").b64encode(b"sandbox:sandbox").decode()}
        assert anon.get("/v3/targetGroups/channels", headers=plain).status_code == 401  # md5 expected, not clear
        token = anon.post("/v3/oauth/token/generate", json={"key": "sandbox", "secret": "sandbox"}).json()["data"]
        assert token["ttlSeconds"] == 3600
        ok = anon.get("/v3/targetGroups/channels", headers={"X-CAP-API-OAUTH-TOKEN": token["accessToken"]})
        assert ok.status_code == 200
        assert anon.get("/v3/targetGroups/channels", headers={"X-CAP-API-OAUTH-TOKEN": "forged"}).status_code == 401
        assert anon.post("/v3/oauth/token/generate", json={"key": "sandbox", "secret": "x"}).status_code == 401


def test_not_found_and_method_not_allowed(http: httpx.Client) -> None:
    assert http.get("/v3/targetGroups/1/targets").status_code == 404
    r = http.get("/v3/targetGroups/4100/targets/1/communications")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == 310902
    assert http.get("/v3/targetGroups/4200/targets/5200/communications").status_code == 404  # wrong group
    assert http.delete("/v3/targetGroups/4100/targets/5200/communications").status_code == 405
    assert http.get("/v3/nothing").status_code == 404


def test_group_object_or_array(http: httpx.Client) -> None:
    assert http.get("/v3/targetGroups/4100").json()["data"]["id"] == 4100
    with_uc = http.get("/v3/targetGroups/4100", params={"includeUserCreatedTargetGroups": "true"}).json()["data"]
    assert isinstance(with_uc, list) and [t["id"] for t in with_uc[0]["targets"]] == [5200, 5201]


def test_concurrent_upserts_on_one_target_all_land(http: httpx.Client, sandbox: Sandbox) -> None:
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()

    def worker(ctype: str, channel: int) -> None:
        try:
            with httpx.Client(verify=False, base_url=sandbox.url, headers=AUTH) as c:
                r = c.post(UPSERT, json=[{**ITEM, "communicationType": ctype, "channelId": channel}])
                assert r.status_code == 200, r.text
                with lock:
                    ids.append(r.json()["data"][0]["id"])
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [
        threading.Thread(target=worker, args=(t, ch))
        for t in ("START", "FINISH", "CHANGE", "REMINDER")
        for ch in (1, 2, 3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 12
    listed = http.get("/v3/targetGroups/4100/targets/5200/communications").json()["data"]
    assert len(listed) == 12


def test_state_survives_a_restart_and_reset_starts_over(tmp_path: Path, cli: Cli) -> None:
    db = tmp_path / "state.db"
    s = serve_in_thread(db)
    try:
        plain_post(s.url + UPSERT, json=[ITEM], headers=AUTH).raise_for_status()
    finally:
        s.stop()
    s = serve_in_thread(db)  # a new store on the same file: nothing carried over in memory
    try:
        listed = plain_get(s.url + "/v3/targetGroups/4100/targets/5200/communications", headers=AUTH).json()["data"]
        assert [c["messageTemplate"] for c in listed] == ["hello"]
        out = cli("sandbox", "reset", "--db", str(db))  # another store resets the file under a running server
        assert out.code == 0, out
        assert plain_get(s.url + "/v3/targetGroups/4100/targets/5200/communications", headers=AUTH).json()["data"] == []
    finally:
        s.stop()


def test_custom_seed(tmp_path: Path, serve_sandbox: ServeSandbox) -> None:
    seed = write(
        tmp_path / "seed.yaml",
        "channels: [{id: 7, name: WHATSAPP}]\ntargetGroups:\n- id: 1\n  targets: "
        "[{id: 2}]\ncredentials:\n  basic: [{username: u, password: p}]\n",
    )
    s = serve_sandbox(seed=seed)
    r = plain_get(s.url + "/v3/targetGroups/channels", headers={"Authorization": basic_header("u", "p")})
    assert r.json()["data"] == [{"id": 7, "name": "WHATSAPP"}]


def test_bad_seed_is_a_clear_error(tmp_path: Path, cli: Cli) -> None:
    seed = write(tmp_path / "seed.yaml", "channels: [{id: x}]\n")
    out = cli("sandbox", "reset", "--db", str(tmp_path / "s.db"), "--seed", str(seed))
    assert out.code == 3, out
    assert "seed.yaml: channels.0.id:" in out.stderr


def test_rate_limit_per_minute_answers_429_with_retry_after(serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox(faults=Faults(rate_limit=2))
    with httpx.Client(verify=False, base_url=s.url, headers=AUTH) as c:
        assert [c.get("/v3/targetGroups/channels").status_code for _ in range(3)] == [200, 200, 429]
        r = c.get("/v3/targetGroups/channels")
        assert 55 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["errors"] == [{"code": 310429, "message": "rate limit of 2 requests per minute exceeded"}]


@pytest.mark.waits
def test_rate_limit_per_second_recovers_after_retry_after(serve_sandbox: ServeSandbox) -> None:
    from commctl.sandbox.app import parse_rate_limit

    s = serve_sandbox(faults=Faults(*(0, 0.0), *parse_rate_limit("3/s")))
    with httpx.Client(verify=False, base_url=s.url, headers=AUTH) as c:
        codes = [c.get("/v3/targetGroups/channels") for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert codes[3].headers["retry-after"] == "1"
        time.sleep(1.0)
        assert c.get("/v3/targetGroups/channels").status_code == 200


@pytest.mark.parametrize(
    ("text", "parsed"), [("20/s", (20, 1.0)), ("20", (20, 60.0)), ("100/m", (100, 60.0)), (" 5 / sec", (5, 1.0))]
)
def test_rate_limit_syntax(text: str, parsed: tuple[int, float]) -> None:
    from commctl.sandbox.app import parse_rate_limit

    assert parse_rate_limit(text) == parsed


@pytest.mark.parametrize("text", ["", "x", "20/h", "-1/s", "2.5/s", "/s"])
def test_rate_limit_syntax_errors(text: str) -> None:
    from commctl.sandbox.app import parse_rate_limit

    with pytest.raises(ValueError, match="is not N \\(per minute\\), N/m or N/s"):
        parse_rate_limit(text)


def token(c: httpx.Client, key: str = "sandbox", secret: str = "sandbox") -> httpx.Response:
    return c.post("/v3/oauth/token/generate", json={"key": key, "secret": secret})


@pytest.mark.waits
def test_tokens_expire_after_the_seeds_ttl(tmp_path: Path, serve_sandbox: ServeSandbox) -> None:
    seed = write(
        tmp_path / "seed.yaml",
        "channels: [{id: 1, name: SMS}]\ncredentials: {oauth: [{key: k, secret: s, ttlSeconds: 1}]}\n",
    )
    s = serve_sandbox(seed=seed)
    with httpx.Client(verify=False, base_url=s.url) as c:
        issued = token(c, "k", "s").json()["data"]
        born = time.monotonic()
        assert issued["ttlSeconds"] == 1
        headers = {"X-CAP-API-OAUTH-TOKEN": issued["accessToken"]}
        assert c.get("/v3/targetGroups/channels", headers=headers).status_code == 200  # remembered from here on
        time.sleep(max(0.0, born + 1.05 - time.monotonic()))
        r = c.get("/v3/targetGroups/channels", headers=headers)
        assert r.status_code == 401 and r.json()["errors"][0]["message"] == "invalid or expired OAuth token"
        fresh = {"X-CAP-API-OAUTH-TOKEN": token(c, "k", "s").json()["data"]["accessToken"]}
        assert c.get("/v3/targetGroups/channels", headers=fresh).status_code == 200


def test_revoked_credentials_from_the_kth_request_on(serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox(faults=Faults(auth_fail_after=3))
    with httpx.Client(verify=False, base_url=s.url) as c:
        oauth = {"X-CAP-API-OAUTH-TOKEN": token(c).json()["data"]["accessToken"]}  # the 1st credentialed request
        assert c.get("/v3/targetGroups/channels", headers=AUTH).status_code == 200  # 2nd
        revoked = [c.get("/v3/targetGroups/channels", headers=h) for h in (AUTH, oauth)]  # 3rd, 4th
        assert [r.status_code for r in revoked] == [401, 401]
        assert "credentials revoked" in revoked[0].json()["errors"][0]["message"]
        assert token(c).status_code == 401  # no way back in: a new token is refused too
        assert c.get("/healthz").status_code == 200  # not an API call: no credentials, not counted


def outcomes(faults: Faults, tmp_path: Path, order: list[int]) -> dict[int, int]:
    """Status of one read per target of the default seed, sent in `order`, against a fresh app."""
    from commctl.sandbox.app import SandboxApp, open_store

    app = SandboxApp(open_store(tmp_path / f"dice-{len(list(tmp_path.iterdir()))}.db"), faults)
    with in_process(app) as c:
        return {n: c.get(f"/v3/targetGroups/4100/targets/5200/communications?n={n}").status_code for n in order}


def test_a_fault_seed_gives_the_same_faults_whatever_the_order(tmp_path: Path) -> None:
    order = list(range(40))
    first = outcomes(Faults(fail_rate=0.5, seed=7), tmp_path, order)
    assert set(first.values()) == {200, 503}
    assert outcomes(Faults(fail_rate=0.5, seed=7), tmp_path, order[::-1]) == first
    assert outcomes(Faults(fail_rate=0.5, seed=8), tmp_path, order) != first


def test_a_dropped_answer_closes_the_connection_after_the_write(serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox(faults=Faults(drop_rate=1))
    with httpx.Client(verify=False, base_url=s.url, headers=AUTH) as c, pytest.raises(httpx.RemoteProtocolError):
        c.post(UPSERT, json=[ITEM])
    calm = serve_sandbox(db=s.db)
    listed = plain_get(calm.url + "/v3/targetGroups/4100/targets/5200/communications", headers=AUTH).json()["data"]
    assert [c["messageTemplate"] for c in listed] == ["hello"]


def test_latency_on_one_connection_does_not_hold_up_the_others(serve_sandbox: ServeSandbox) -> None:
    s = serve_sandbox(faults=Faults(latency_ms=400))
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: plain_get(s.url + "/v3/targetGroups", headers=AUTH), range(6)))
    assert 0.4 <= time.monotonic() - started < 0.4 * 4  # in parallel (with room for a busy machine), not 6 x 400 ms
    assert [r.status_code for r in answers] == [200] * 6


def raw_exchange(url: str, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_requests_are_answered_in_order_on_one_connection(sandbox: Sandbox) -> None:
    auth = AUTH["Authorization"]
    get = f"GET /v3/targetGroups/4100/targets/5200/communications HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n"
    body = b'[{"communicationType": "START", "channelId": 2, "messageTemplate": "piped"}]'
    post = (
        f"POST {UPSERT} HTTP/1.1\r\nAuthorization: {auth}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    last = f"GET /v3/targetGroups/4100/targets/5200/communications HTTP/1.1\r\nAuthorization: {auth}\r\n"
    answers = raw_exchange(sandbox.url, get.encode() + post + (last + "Connection: close\r\n\r\n").encode())
    statuses = re.findall(rb"HTTP/1.1 (\d+)", answers)
    assert statuses == [b"200", b"200", b"200"]
    assert answers.count(b'"messageTemplate": "piped"') == 2  # the upsert's answer and the last read
    assert answers.index(b'"data": []') < answers.index(b"piped")


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"NONSENSE\r\n\r\n", b"malformed request line"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"malformed header line"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"chunked request bodies are not supported; send Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n", b"invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"request body too large"),
    ],
)
def test_malformed_requests_get_400_and_the_connection_closes(
    sandbox: Sandbox, request_bytes: bytes, reason: bytes
) -> None:
    answer = raw_exchange(sandbox.url, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in answer
    assert answer.endswith(reason)


def test_an_emulator_bug_is_a_500_envelope_not_a_dropped_connection(tmp_path: Path, monkeypatch: Any) -> None:
    from commctl.sandbox.app import SandboxApp, open_store

    app = SandboxApp(open_store(tmp_path / "s.db"))
    monkeypatch.setattr(app.store, "channels", lambda: 1 / 0)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://sandbox", headers=AUTH) as client:
        r = client.get("/v3/targetGroups/channels")
    assert r.status_code == 500
    assert r.json() == {
        "data": None,
        "errors": [{"code": 310503, "message": "internal sandbox error: ZeroDivisionError"}],
        "warnings": None,
    }


def test_a_corrupt_state_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    db = write(tmp_path / "state.db", "this is not sqlite " * 100)
    out = cli("channels", "--host", "sandbox", env={"COMMCTL_SANDBOX_DB": str(db)})
    assert out.code == 4, out
    assert out.stderr.splitlines() == [
        f"error: cannot use the sandbox state {db}: file is not a database",
        f"hint: delete {db} to start over",
    ]


def in_process(app: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://sandbox", headers=AUTH)


TWO_GROUPS_ONE_TARGET = (
    "channels: [{id: 1, name: SMS}]\n"
    "targetGroups:\n"
    "- {id: 1, targets: [{id: 7, name: in one}]}\n"
    "- {id: 2, targets: [{id: 7, name: in two}]}\n"
    "credentials: {basic: [{username: sandbox, password: sandbox}]}\n"
)


def test_one_target_id_in_two_groups_is_two_targets(tmp_path: Path) -> None:
    from commctl.sandbox.app import SandboxApp, open_store

    seed = write(tmp_path / "seed.yaml", TWO_GROUPS_ONE_TARGET)
    with in_process(SandboxApp(open_store(tmp_path / "s.db", seed))) as c:
        for group, name in ((1, "in one"), (2, "in two")):
            assert [(t["id"], t["name"]) for t in c.get(f"/v3/targetGroups/{group}/targets").json()["data"]] == [
                (7, name)
            ]
            item = {"communicationType": "START", "channelId": 1, "messageTemplate": f"group {group}"}
            assert c.post(f"/v3/targetGroups/{group}/targets/7/communications/upsert", json=[item]).status_code == 200
        for group in (1, 2):
            listed = c.get(f"/v3/targetGroups/{group}/targets/7/communications").json()["data"]
            assert [(x["targetGroupId"], x["messageTemplate"]) for x in listed] == [(group, f"group {group}")]


def old_layout_state(db: Path) -> None:
    """A state file as the first sandbox wrote it: targets keyed by their id alone, no layout version."""
    import sqlite3

    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
        "CREATE TABLE targets (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL, body TEXT NOT NULL);"
        "CREATE TABLE credentials (kind TEXT NOT NULL, name TEXT NOT NULL, secret_md5 TEXT NOT NULL,"
        " ttl INTEGER, PRIMARY KEY (kind, name));"
        "CREATE TABLE tokens (token TEXT PRIMARY KEY, client TEXT NOT NULL, expires REAL NOT NULL);"
        "CREATE TABLE communications (id INTEGER PRIMARY KEY AUTOINCREMENT, group_id INTEGER NOT NULL,"
        " target_id INTEGER NOT NULL, type TEXT NOT NULL, channel_id INTEGER NOT NULL, sender TEXT NOT NULL,"
        " subject TEXT NOT NULL, message TEXT NOT NULL, offset_days INTEGER NOT NULL, active INTEGER NOT NULL,"
        " created_on TEXT NOT NULL, created_by TEXT NOT NULL, last_updated_on TEXT NOT NULL,"
        " last_updated_by TEXT NOT NULL, UNIQUE (group_id, target_id, type, channel_id));"
        "INSERT INTO meta VALUES ('seeded', '2026-01-01T00:00:00.000+0000');"
        "INSERT INTO channels VALUES (1, 'SMS');"
        """INSERT INTO groups VALUES (1, '{"id": 1}'), (2, '{"id": 2}');"""
        """INSERT INTO targets VALUES (7, 2, '{"id": 7, "name": "moved"}');"""
        "INSERT INTO credentials VALUES ('basic', 'sandbox', '93bc63e0b4f48fbbff568d9fc0dc3def', NULL);"
        "INSERT INTO communications (group_id, target_id, type, channel_id, sender, subject, message, offset_days,"
        " active, created_on, created_by, last_updated_on, last_updated_by) VALUES (2, 7, 'START', 1, '', '',"
        """ 'kept', 0, 1, 't', '{"code": "seed"}', 't', '{"code": "seed"}');"""
    )
    conn.commit()
    conn.close()


def test_an_old_state_file_is_migrated_in_place_and_a_reseed_restores_the_lost_target(tmp_path: Path) -> None:
    from commctl.sandbox.app import SandboxApp, open_store

    db = tmp_path / "old.db"
    old_layout_state(db)
    with in_process(SandboxApp(open_store(db))) as c:
        assert c.get("/v3/targetGroups/1/targets").json()["data"] == []  # the old layout had lost it
        listed = c.get("/v3/targetGroups/2/targets/7/communications").json()["data"]
        assert [x["messageTemplate"] for x in listed] == ["kept"]
    seed = write(tmp_path / "seed.yaml", TWO_GROUPS_ONE_TARGET)
    with in_process(SandboxApp(open_store(db, seed))) as c:
        assert [t["id"] for t in c.get("/v3/targetGroups/1/targets").json()["data"]] == [7]
        assert [t["id"] for t in c.get("/v3/targetGroups/2/targets").json()["data"]] == [7]
        listed = c.get("/v3/targetGroups/2/targets/7/communications").json()["data"]
        assert [x["messageTemplate"] for x in listed] == ["kept"]


def test_a_state_file_from_a_newer_commctl_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "new.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    out = cli("channels", "--host", "sandbox", env={"COMMCTL_SANDBOX_DB": str(db)})
    assert out.code == 4, out
    assert out.stderr.splitlines() == [
        f"error: cannot use the sandbox state {db}: its layout (version 99) is newer than this commctl knows",
        f"hint: delete {db} to start over",
    ]


def test_the_wsgi_module_serves_through_a_standard_wsgi_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    db = tmp_path / "team" / "sandbox.db"
    seed = write(tmp_path / "seed.yaml", TWO_GROUPS_ONE_TARGET.replace("username: sandbox", "username: team"))
    monkeypatch.setenv("COMMCTL_SANDBOX_DB", str(db))
    monkeypatch.setenv("COMMCTL_SANDBOX_SEED", str(seed))
    monkeypatch.delitem(sys.modules, "commctl.sandbox.wsgi", raising=False)
    wsgi = importlib.import_module("commctl.sandbox.wsgi")
    server = make_server("127.0.0.1", 0, wsgi.app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        health = plain_get(url + "/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert plain_post(url + "/healthz").status_code == 405
        team = {"Authorization": basic_header("team", "sandbox")}
        assert plain_get(url + "/v3/targetGroups/channels", headers=team).json()["data"] == [{"id": 1, "name": "SMS"}]
        item = {"communicationType": "START", "channelId": 1, "messageTemplate": "via wsgiref"}
        r = plain_post(url + "/v3/targetGroups/2/targets/7/communications/upsert", json=[item], headers=team)
        assert r.status_code == 200 and r.json()["data"][0]["messageTemplate"] == "via wsgiref"
        assert plain_get(url + "/v3/targetGroups/channels", headers=AUTH).status_code == 401  # only the seed's
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert db.exists()


def test_the_wsgi_module_fails_to_load_with_a_reason(tmp_path: Path) -> None:
    from commctl.sandbox.wsgi import make_app

    seed = write(tmp_path / "seed.yaml", "channels: [{id: x}]\n")
    with pytest.raises(RuntimeError, match=r"^commctl\.sandbox\.wsgi: .*seed\.yaml: channels\.0\.id: "):
        make_app({"COMMCTL_SANDBOX_DB": str(tmp_path / "s.db"), "COMMCTL_SANDBOX_SEED": str(seed)})


def test_serve_flags_reach_the_server_and_the_seeds_credentials_are_printed(tmp_path: Path) -> None:
    seed = write(
        tmp_path / "seed.yaml",
        "channels: [{id: 1, name: SMS}]\n"
        "credentials:\n  basic: [{username: team, password: s3cret}]\n  oauth: [{key: k, secret: s, ttlSeconds: 2}]\n",
    )
    flags = ("--seed", str(seed), "--rate-limit", "2/s", "--auth-fail-after", "4")
    s = start_sandbox(tmp_path / "flags.db", *flags)
    try:
        assert s.process is not None and s.process.stderr is not None
        assert s.process.stderr.readline() == (
            "credentials: Basic team / s3cret; OAuth client key k / secret s (tokens live 2 s)\n"
        )
        team = {"Authorization": basic_header("team", "s3cret")}
        with httpx.Client(verify=False, base_url=s.url, headers=team) as c:
            answers = [c.get("/v3/targetGroups/channels") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 429, 401]
        assert answers[2].headers["retry-after"] == "1"
    finally:
        stop_sandbox(s)


def test_the_fault_seed_flag_gives_the_runs_of_its_seed(tmp_path: Path) -> None:
    from commctl.sandbox.app import SandboxApp, open_store

    s = start_sandbox(tmp_path / "faulty.db", "--fail-rate", "0.5", "--fault-seed", "9")
    paths = [f"/v3/targetGroups/4100/targets/5200/communications?n={n}" for n in range(30)]
    try:
        with httpx.Client(verify=False, base_url=s.url, headers=AUTH) as c:
            served = [c.get(p).status_code for p in paths]
    finally:
        stop_sandbox(s)
    with in_process(SandboxApp(open_store(tmp_path / "same.db"), Faults(fail_rate=0.5, seed=9))) as c:
        assert served == [c.get(p).status_code for p in paths]
    assert set(served) == {200, 503}


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`sandbox serve` in process up to its announcement: the address it would bind is recorded, nothing listens."""
    import commctl.sandbox.server

    bound: list[str] = []

    def fake_serve(app: Any, host: str, port: int, verbose: bool, announce: Callable[[str], None]) -> None:
        bound.append(host)
        announce(f"http://{host}:{port}")

    monkeypatch.setattr(commctl.sandbox.server, "serve", fake_serve)
    return bound


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.1"])
def test_binding_beyond_loopback_warns_that_the_credentials_are_public(
    cli: Cli, tmp_path: Path, announced: list[str], address: str
) -> None:
    out = cli("sandbox", "serve", "--bind", address, "--db", str(tmp_path / "s.db"))
    assert out.code == 0, out
    assert announced == [address]
    assert out.stderr.splitlines()[1:] == [
        "credentials: Basic sandbox / sandbox; OAuth client key sandbox / secret sandbox (tokens live 3600 s)",
        f"warning: {address} is not a loopback address: whoever reaches it can use this sandbox, and its "
        "credentials are public (printed above, and in the seed)",
    ]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_loopback_binds_do_not_warn(cli: Cli, tmp_path: Path, announced: list[str], address: str) -> None:
    out = cli("sandbox", "serve", "--bind", address, "--db", str(tmp_path / "s.db"))
    assert out.code == 0, out
    assert "warning" not in out.stderr


def test_host_is_a_deprecated_alias_of_bind(cli: Cli, tmp_path: Path, announced: list[str]) -> None:
    out = cli("sandbox", "serve", "--host", "localhost", "--db", str(tmp_path / "s.db"))
    assert out.code == 0, out
    assert announced == ["localhost"]
    assert out.stderr.splitlines()[0] == (
        "warning: `sandbox serve --host` is deprecated: use --bind (--host names the API everywhere else)"
    )
    both = cli("sandbox", "serve", "--host", "localhost", "--bind", "::1", "--db", str(tmp_path / "s.db"))
    assert both.code == 2, both
    assert announced == ["localhost"]


def test_credentials_a_reseed_replaced_are_not_guessed(cli: Cli, tmp_path: Path, announced: list[str]) -> None:
    seed = write(tmp_path / "seed.yaml", "credentials: {basic: [{username: sandbox, password: other}]}\n")
    assert cli("sandbox", "reset", "--db", str(tmp_path / "s.db"), "--seed", str(seed)).code == 0
    out = cli("sandbox", "serve", "--db", str(tmp_path / "s.db"))  # the built-in seed's password no longer fits
    assert out.code == 0, out
    assert out.stderr.splitlines()[1] == "credentials: Basic sandbox / (secret from the seed that set it)"


def test_a_bad_rate_limit_is_a_usage_error(cli: Cli) -> None:
    out = cli("sandbox", "serve", "--rate-limit", "10/h")
    assert out.code == 2, out
    assert "'10/h' is not N (per minute), N/m or N/s" in out.stderr


def seed_with_password(password: str) -> dict[str, Any]:
    return {"credentials": {"basic": [{"username": "sandbox", "password": password}]}}


def test_verified_credentials_are_answered_from_memory(tmp_path: Path) -> None:
    from commctl.sandbox.store import Store, md5

    store = Store(tmp_path / "s.db")
    store.load_seed(seed_with_password("sandbox"))
    assert store.check_basic("sandbox", md5("sandbox"))
    statements: list[str] = []
    store.conn().set_trace_callback(statements.append)
    assert store.check_basic("sandbox", md5("sandbox").upper())  # the digest's case does not matter
    assert not store.check_basic("sandbox", md5("wrong"))
    assert statements == []


def test_a_reseed_or_reset_forgets_remembered_credentials_at_once(tmp_path: Path) -> None:
    from commctl.sandbox.store import Store, md5

    store = Store(tmp_path / "s.db")
    store.load_seed(seed_with_password("old"))
    assert store.check_basic("sandbox", md5("old"))
    store.load_seed(seed_with_password("new"))
    assert not store.check_basic("sandbox", md5("old")) and store.check_basic("sandbox", md5("new"))
    store.reset()
    assert not store.check_basic("sandbox", md5("new"))


def test_another_processs_reset_is_seen_within_the_cache_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import commctl.sandbox.store
    from commctl.sandbox.store import Store, md5

    monkeypatch.setattr(commctl.sandbox.store, "CACHE_SECONDS", 0.2)
    serving = Store(tmp_path / "s.db")
    serving.load_seed(seed_with_password("old"))
    assert serving.check_basic("sandbox", md5("old"))
    other = Store(tmp_path / "s.db")  # as `commctl sandbox reset` in another process
    other.reset()
    other.load_seed(seed_with_password("new"))
    assert serving.check_basic("sandbox", md5("old"))  # still remembered, for at most CACHE_SECONDS
    time.sleep(0.25)
    assert not serving.check_basic("sandbox", md5("old")) and serving.check_basic("sandbox", md5("new"))


def test_fault_dice_count_repeats_and_forget_them_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import commctl.sandbox.app
    from commctl.sandbox.app import Dice

    dice = Dice(seed=1)
    first, again = dice.request("GET", "/x", b""), dice.request("GET", "/x", b"")
    assert first != again  # a retry is a new throw
    assert Dice(seed=1).request("GET", "/x", b"") == first  # and the same throw in the next run
    monkeypatch.setattr(commctl.sandbox.app, "SEEN_REQUESTS", 3)
    for n in range(3):
        dice.request("GET", f"/other/{n}", b"")
    assert len(dice.seen) <= 3
