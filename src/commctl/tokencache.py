"""OAuth tokens kept on disk between runs, so that 50 CI jobs do not make 50 token requests.

One file per (host, client key) under `$XDG_CACHE_HOME/commctl/` (default `~/.cache/commctl/`),
named by a hash of the two. The token is stored, in a file of mode 0600 in a directory of mode 0700;
the client secret never is: only a salted PBKDF2 digest of it, so that a token is reused only by a
run that holds the same secret (a wrong or rotated secret gets no free ride on an old token). The cache is an optimisation only: a file that is missing,
corrupt, foreign (another owner, readable by others, a symlink) or unwritable is ignored, and a run
goes on as if there were no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "oauth-token-"
MAX_FILE = 64 * 1024
PBKDF2_ROUNDS = 20_000  # an equality check on a high-entropy API secret, not a password store: keep runs fast


@dataclass(frozen=True)
class CachedToken:
    host: str
    token: str
    issued: float  # wall-clock seconds
    expires: float
    path: Path
    salt: str = ""
    digest: str = ""

    def matches(self, secret: str) -> bool:
        """Whether this token was obtained with `secret`."""
        return bool(self.salt) and hmac.compare_digest(self.digest, _digest(secret, self.salt))

    @property
    def ttl(self) -> float:
        return self.expires - self.issued


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "commctl"


def key_hash(host: str, client_key: str) -> str:
    return hashlib.sha256(f"{host}\n{client_key}".encode()).hexdigest()[:32]


def _digest(secret: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), bytes.fromhex(salt), PBKDF2_ROUNDS).hex()


def _usable_token(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 8192
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


class TokenCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def default(cls, env: Mapping[str, str] = os.environ) -> TokenCache:
        return cls(cache_dir(env))

    def path(self, host: str, client_key: str) -> Path:
        return self.directory / f"{PREFIX}{key_hash(host, client_key)}.json"

    def load(self, host: str, client_key: str, secret: str) -> CachedToken | None:
        """The cached token of (host, key), if it was obtained with this secret."""
        entry = self._read(self.path(host, client_key))
        return entry if entry is not None and entry.host == host and entry.matches(secret) else None

    def store(self, host: str, client_key: str, secret: str, token: str, *, ttl: float, issued: float) -> None:
        salt = os.urandom(16).hex()
        doc = {
            "version": 1,
            "host": host,
            "accessToken": token,
            "issuedAt": issued,
            "expiresAt": issued + ttl,
            "secretSalt": salt,
            "secretDigest": _digest(secret, salt),
        }
        try:
            self._ensure_dir()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(doc, f)
                os.replace(tmp, self.path(host, client_key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only home or a full disk costs one token request per run, nothing more

    def drop(self, host: str, client_key: str, token: str | None = None) -> None:
        """Forget the cached token of (host, key); with `token`, only if it is still that one."""
        path = self.path(host, client_key)
        if token is not None:
            entry = self._read(path)
            if entry is not None and entry.token != token:
                return
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)

    def entries(self) -> list[CachedToken]:
        """Every readable cached token, for `auth status`."""
        try:
            paths = sorted(self.directory.glob(f"{PREFIX}*.json"))
        except OSError:
            return []
        return [e for e in (self._read(p) for p in paths) if e is not None]

    def clear(self) -> int:
        """Delete every cached token file (readable or not); return how many were removed."""
        removed = 0
        try:
            paths = list(self.directory.glob(f"{PREFIX}*.json"))
        except OSError:
            return 0
        for path in paths:
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.directory.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            self.directory.chmod(0o700)

    @staticmethod
    def _read(path: Path) -> CachedToken | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            # Only a file of ours that nobody else can read or have replaced: anything else is not our token.
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
                return None
            if info.st_size > MAX_FILE:
                return None
            with os.fdopen(fd, "rb") as f:
                fd = -1
                doc = json.loads(f.read(MAX_FILE))
        except (OSError, ValueError, RecursionError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        if not isinstance(doc, dict):
            return None
        host, token, issued, expires = (doc.get(k) for k in ("host", "accessToken", "issuedAt", "expiresAt"))
        salt, digest = doc.get("secretSalt"), doc.get("secretDigest")
        if not (isinstance(host, str) and _usable_token(token) and isinstance(salt, str) and isinstance(digest, str)):
            return None
        try:
            bytes.fromhex(salt)
        except ValueError:
            return None
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (issued, expires)
        ):
            return None
        assert isinstance(token, str) and isinstance(issued, int | float) and isinstance(expires, int | float)
        if not issued < expires:
            return None
        return CachedToken(host, token, float(issued), float(expires), path, salt, digest)
