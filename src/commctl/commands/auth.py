"""`auth status` and `auth logout`: which credentials a command would use, and the OAuth token cache.

Nothing here talks to the API and nothing here shows a secret: secrets appear as `****` with the
place they came from.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .. import render
from ..runtime import Run, api_base, credential_scheme, make_auth

SCHEME_SETTINGS = {
    "token": ("token",),
    "oauth": ("client_key", "client_secret"),
    "basic": ("username", "password"),
    "sandbox": (),
}
SCHEME_NAMES = {
    "token": "OAuth token (X-CAP-API-OAUTH-TOKEN)",
    "oauth": "OAuth client key + secret (token from /v3/oauth/token/generate)",
    "basic": "Basic auth (till user + md5 of the password)",
    "sandbox": "the sandbox's own credentials",
}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cached(settings: Any, host: str | None) -> dict[str, Any] | None:
    """The cached token for these OAuth credentials on this host: its state and expiry, never its value."""
    from ..client import renewal_margin
    from ..tokencache import TokenCache

    if host is None:
        return None
    entry = TokenCache.default().load(host, settings.get("client_key"), settings.get("client_secret"))
    if entry is None:
        return None
    now = time.time()
    state = (
        "expired"
        if now >= entry.expires
        else "expiring"
        if now >= entry.expires - renewal_margin(entry.ttl)
        else "valid"
    )
    return {"state": state, "expiresAt": _iso(entry.expires), "expiresIn": max(0, int(entry.expires - now))}


def status(run: Run) -> int:
    from ..tokencache import cache_dir

    settings = run.settings
    host, in_process = api_base(settings) if settings.host else (None, False)
    scheme = credential_scheme(settings, in_process)
    make_auth(settings, scheme)  # refuses credentials that cannot travel safely, as a real command would (exit 4)
    shown = {name: (value, source) for name, value, source in settings.shown()}
    credentials = [
        {"setting": name, "value": shown[name][0], "source": shown[name][1]} for name in SCHEME_SETTINGS[scheme]
    ]
    token = _cached(settings, host) if scheme == "oauth" else None
    doc = {
        "host": settings.host,
        "hostSource": settings.sources.get("host") if settings.host else None,
        "scheme": scheme,
        "credentials": credentials,
        "tokenCache": {"directory": str(cache_dir()), "token": token} if scheme == "oauth" else None,
    }

    def table() -> Any:
        rows = [
            ("host", settings.host or "(none)", doc["hostSource"] or ""),
            ("credentials", SCHEME_NAMES[scheme], ""),
            *((c["setting"], c["value"], c["source"]) for c in credentials),
        ]
        if scheme == "oauth":
            cached = "none" if token is None else f"{token['state']}, expires {token['expiresAt']}"
            rows.append(("cached token", cached, str(cache_dir())))
        return render.rows_table(render.SETTING_COLUMNS, rows)

    run.emit(doc, table)
    return 0


def logout(run: Run) -> int:
    from ..tokencache import TokenCache

    cache = TokenCache.default()
    removed = cache.clear()
    if run.output in ("json", "yaml"):
        run.emit({"removed": removed, "directory": str(cache.directory)})
    else:
        run.note(f"forgot {removed} cached OAuth token{'' if removed == 1 else 's'} ({cache.directory})")
    return 0
