"""Sandbox state in SQLite: safe under concurrent requests (one connection per thread, WAL, immediate writes)."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1  # PRAGMA user_version; 0 is the first layout, which keyed targets by their id alone
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (group_id INTEGER NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (group_id, id));
CREATE TABLE IF NOT EXISTS credentials (kind TEXT NOT NULL, name TEXT NOT NULL, secret_md5 TEXT NOT NULL,
    ttl INTEGER, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, client TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS communications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL, target_id INTEGER NOT NULL, type TEXT NOT NULL, channel_id INTEGER NOT NULL,
    sender TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL, offset_days INTEGER NOT NULL,
    active INTEGER NOT NULL, created_on TEXT NOT NULL, created_by TEXT NOT NULL,
    last_updated_on TEXT NOT NULL, last_updated_by TEXT NOT NULL,
    UNIQUE (group_id, target_id, type, channel_id)
);
"""
# Layout 0 -> 1: a target's key becomes (group, target), so one target id can live in several groups.
MIGRATE_0_TO_1 = (
    "ALTER TABLE targets RENAME TO targets_layout0",
    "CREATE TABLE targets (group_id INTEGER NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (group_id, id))",
    "INSERT INTO targets (group_id, id, body) SELECT group_id, id, body FROM targets_layout0",
    "DROP TABLE targets_layout0",
)
# A credential, token or seed fact verified in SQLite is trusted from memory for this long: the hot path
# skips SQLite, this process's reseed or reset forgets at once, another process's within this bound.
CACHE_SECONDS = 1.0
COLUMNS = (
    "id, group_id, target_id, type, channel_id, sender, subject, message, offset_days, active, "
    "created_on, created_by, last_updated_on, last_updated_by"
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def timestamp() -> str:
    """Attribution time as the API writes it: yyyy-MM-ddTHH:mm:ss.SSS+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


@functools.lru_cache(maxsize=1024)
def till_json(name: str) -> str:
    """The stored attribution of a till (one per credential: computed once, not per write)."""
    return json.dumps(till(name))


def parse_till(stored: str) -> dict[str, Any]:
    """A stored attribution as the API shows it: a fresh dict from a cached parse."""
    return dict(_parsed_till(stored))


@functools.lru_cache(maxsize=1024)
def _parsed_till(stored: str) -> dict[str, Any]:
    return json.loads(stored)  # type: ignore[no-any-return]


def till(name: str) -> dict[str, Any]:
    return {
        "id": 75000000 + int(md5(name)[:6], 16) % 1000000,
        "code": name,
        "description": "",
        "name": name,
        "type": "TILL",
    }


class SchemaError(Exception):
    """The state file was written by a newer commctl, with a layout this one does not know."""


class Facts:
    """Seed facts (credentials, tokens, channels, targets) verified in SQLite, remembered for CACHE_SECONDS.

    Only what SQLite confirmed is remembered; `forget()` (on reseed, reset) drops everything, and a
    lookup that started before a `forget()` does not store its now outdated answer.
    """

    def __init__(self) -> None:
        self._known: dict[Hashable, tuple[float, Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The remembered value, or None when unknown or too old."""
        hit = self._known.get(key)
        if hit is None or time.monotonic() - hit[0] >= CACHE_SECONDS:
            return None
        return hit[1]

    def generation(self) -> int:
        return self._generation

    def put(self, generation: int, key: Hashable, value: Any) -> None:
        with self._lock:
            if generation == self._generation:
                self._known[key] = (time.monotonic(), value)

    def forget(self, key: Hashable | None = None) -> None:
        with self._lock:
            if key is None:
                self._generation += 1
                self._known.clear()
            else:
                self._known.pop(key, None)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []  # every thread's connection, for close()
        self.facts = Facts()
        self._migrate()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            self._opened.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (when no request is running any more)."""
        while self._opened:
            self._opened.pop().close()
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Create the tables of a new state file, or bring an older layout up to date in place."""
        if self.conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # up to date: no write lock taken just to open the state
        with self.write() as db:  # under the write lock: two processes opening one old file migrate it once
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaError(f"its layout (version {version}) is newer than this commctl knows")
            if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'targets'").fetchone():
                for statement in MIGRATE_0_TO_1:
                    db.execute(statement)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _remembered(self, key: Hashable, look_up: Callable[[], Any]) -> Any:
        """A seed fact from memory, or from SQLite (remembered when it exists)."""
        value = self.facts.get(key)
        if value is None:
            generation = self.facts.generation()
            value = look_up()
            if value is not None:
                self.facts.put(generation, key, value)
        return value

    # ---- seed ----

    def seeded(self) -> bool:
        return self.conn().execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone() is not None

    def load_seed(self, seed: dict[str, Any]) -> None:
        """Insert or replace the seed's channels, groups, targets and credentials (communications kept)."""
        now = timestamp()
        with self.write() as db:
            for c in seed.get("channels", []):
                db.execute("INSERT OR REPLACE INTO channels (id, name) VALUES (?, ?)", (c["id"], c["name"]))
            for g in seed.get("targetGroups", []):
                targets = g.get("targets", [])
                body = {k: v for k, v in g.items() if k != "targets"}
                db.execute("INSERT OR REPLACE INTO groups (id, body) VALUES (?, ?)", (g["id"], json.dumps(body)))
                for t in targets:
                    db.execute(
                        "INSERT OR REPLACE INTO targets (group_id, id, body) VALUES (?, ?, ?)",
                        (g["id"], t["id"], json.dumps(t)),
                    )
            creds = seed.get("credentials", {})
            for b in creds.get("basic", []):
                db.execute(
                    "INSERT OR REPLACE INTO credentials VALUES ('basic', ?, ?, NULL)",
                    (b["username"], md5(b["password"])),
                )
            for o in creds.get("oauth", []):
                db.execute(
                    "INSERT OR REPLACE INTO credentials VALUES ('oauth', ?, ?, ?)",
                    (o["key"], md5(o["secret"]), o.get("ttlSeconds", 3600)),
                )
            for c in seed.get("communications", []):
                self._upsert_one(db, c["targetGroupId"], c["targetId"], c, "seed", now)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seeded', ?)", (now,))
        self.facts.forget()

    def reset(self) -> None:
        with self.write() as db:
            for table in ("meta", "channels", "groups", "targets", "credentials", "tokens", "communications"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'communications'")
        self.facts.forget()

    # ---- reads ----

    def channels(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn().execute("SELECT id, name FROM channels ORDER BY id")]

    def channel_ids(self) -> frozenset[int]:
        ids = self._remembered(("channels",), lambda: frozenset(c["id"] for c in self.channels()))
        return ids  # type: ignore[no-any-return]

    def groups(self) -> list[dict[str, Any]]:
        rows = self.conn().execute("SELECT body FROM groups ORDER BY id")
        return [json.loads(r["body"]) for r in rows]

    def group(self, group_id: int) -> dict[str, Any] | None:
        row = self.conn().execute("SELECT body FROM groups WHERE id = ?", (group_id,)).fetchone()
        return json.loads(row["body"]) if row else None

    def targets(self, group_id: int) -> list[dict[str, Any]]:
        rows = self.conn().execute("SELECT body FROM targets WHERE group_id = ? ORDER BY id", (group_id,))
        return [json.loads(r["body"]) for r in rows]

    def target_in_group(self, group_id: int, target_id: int) -> bool:
        def look_up() -> bool | None:
            sql = "SELECT 1 FROM targets WHERE group_id = ? AND id = ?"
            return True if self.conn().execute(sql, (group_id, target_id)).fetchone() else None

        return self._remembered(("target", group_id, target_id), look_up) is not None

    def communications(self, group_id: int, target_id: int) -> list[dict[str, Any]]:
        sql = f"SELECT {COLUMNS} FROM communications WHERE group_id = ? AND target_id = ? ORDER BY id"
        return [row_to_api(r) for r in self.conn().execute(sql, (group_id, target_id))]

    def _credential(self, kind: str, name: str) -> tuple[str, int] | None:
        """(md5 of the secret, token lifetime) of a seeded credential."""

        def look_up() -> tuple[str, int] | None:
            sql = "SELECT secret_md5, ttl FROM credentials WHERE kind = ? AND name = ?"
            row = self.conn().execute(sql, (kind, name)).fetchone()
            return (row["secret_md5"], row["ttl"] or 0) if row else None

        return self._remembered(("credential", kind, name), look_up)  # type: ignore[no-any-return]

    def credentials(self) -> list[tuple[str, str, str, int]]:
        """(kind, name, md5 of the secret, token lifetime) of every credential the state accepts."""
        sql = "SELECT kind, name, secret_md5, ttl FROM credentials ORDER BY kind, name"
        return [(r["kind"], r["name"], r["secret_md5"], r["ttl"] or 0) for r in self.conn().execute(sql)]

    def check_basic(self, username: str, digest: str) -> bool:
        known = self._credential("basic", username)
        return known is not None and secrets.compare_digest(known[0], digest.lower())

    def issue_token(self, key: str, secret: str) -> tuple[str, int] | None:
        known = self._credential("oauth", key)
        if known is None or not secrets.compare_digest(known[0], md5(secret)):
            return None
        token, ttl = "sbx." + secrets.token_urlsafe(24), known[1]
        with self.write() as db:
            db.execute("DELETE FROM tokens WHERE expires < ?", (time.time(),))
            db.execute("INSERT INTO tokens VALUES (?, ?, ?)", (token, key, time.time() + ttl))
        return token, ttl

    def token_client(self, token: str) -> str | None:
        """The client key behind a token that has not expired."""

        def look_up() -> tuple[str, float] | None:
            row = self.conn().execute("SELECT client, expires FROM tokens WHERE token = ?", (token,)).fetchone()
            return (row["client"], row["expires"]) if row else None

        known: tuple[str, float] | None = self._remembered(("token", token), look_up)
        if known is None:
            return None
        if known[1] <= time.time():
            self.facts.forget(("token", token))
            return None
        return known[0]

    # ---- writes ----

    def upsert(self, group_id: int, target_id: int, items: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
        """Insert or update by natural key, all in one transaction; return the stored items in request order."""
        now = timestamp()
        with self.write() as db:
            ids = [self._upsert_one(db, group_id, target_id, item, user, now) for item in items]
            sql = f"SELECT {COLUMNS} FROM communications WHERE id = ?"
            return [row_to_api(db.execute(sql, (i,)).fetchone()) for i in ids]

    def _upsert_one(
        self, db: sqlite3.Connection, group_id: int, target_id: int, item: dict[str, Any], user: str, now: str
    ) -> int:
        key = (group_id, target_id, item["communicationType"], int(item["channelId"]))
        values = (
            item.get("sender", ""),
            item.get("subjectTemplate", ""),
            item["messageTemplate"],
            item.get("offsetDays", 0),
            int(item.get("active", True)),
        )
        by = till_json(user)
        row = db.execute(
            "SELECT id FROM communications WHERE group_id = ? AND target_id = ? AND type = ? AND channel_id = ?", key
        ).fetchone()
        if row:
            db.execute(
                "UPDATE communications SET sender = ?, subject = ?, message = ?, offset_days = ?, active = ?, "
                "last_updated_on = ?, last_updated_by = ? WHERE id = ?",
                (*values, now, by, row["id"]),
            )
            return int(row["id"])
        cur = db.execute(
            "INSERT INTO communications (group_id, target_id, type, channel_id, sender, subject, message, "
            "offset_days, active, created_on, created_by, last_updated_on, last_updated_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, *values, now, by, now, by),
        )
        return int(cur.lastrowid or 0)


def row_to_api(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "attribution": {
            "createdOn": r["created_on"],
            "lastUpdatedOn": r["last_updated_on"],
            "lastUpdatedBy": parse_till(r["last_updated_by"]),
            "createdBy": parse_till(r["created_by"]),
        },
        "targetId": r["target_id"],
        "targetGroupId": r["group_id"],
        "communicationType": r["type"],
        "channelId": r["channel_id"],
        "subjectTemplate": r["subject"],
        "messageTemplate": r["message"],
        "sender": r["sender"],
        "offsetDays": r["offset_days"],
        "active": bool(r["active"]),
        "configs": [],
    }
