"""The sandbox for any WSGI server: `commctl.sandbox.wsgi:app`.

    COMMCTL_SANDBOX_DB=/srv/sandbox.db gunicorn --workers 4 --bind 0.0.0.0:8080 commctl.sandbox.wsgi:app
    COMMCTL_SANDBOX_DB=/srv/sandbox.db waitress-serve --listen 0.0.0.0:8080 commctl.sandbox.wsgi:app

State from `COMMCTL_SANDBOX_DB` (default `$XDG_STATE_HOME/commctl/sandbox.db`); `COMMCTL_SANDBOX_SEED`
names a seed file applied when the app loads (as `sandbox serve --seed`; a new state file gets the
built-in seed otherwise). Workers may share one state file: SQLite serialises the writes.
`GET /healthz` answers 200 `{"status": "ok"}` without credentials, for load balancers.

No fault injection here: latency, 503s and rate limits are `commctl sandbox serve` flags, and a
dropped connection (`--drop-rate`) needs that server, since WSGI has no way to close a connection
unanswered.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import CommctlError
from .app import SandboxApp, default_db, open_store


def make_app(env: Mapping[str, str]) -> SandboxApp:
    """The sandbox app on the state and seed the environment names."""
    seed = env.get("COMMCTL_SANDBOX_SEED")
    try:
        return SandboxApp(open_store(default_db(dict(env)), Path(seed) if seed else None))
    except CommctlError as e:  # a WSGI server shows this when the app fails to load: say what to fix
        hint = f" (hint: {e.hint})" if e.hint else ""
        raise RuntimeError(f"commctl.sandbox.wsgi: {'; '.join(e.lines())}{hint}") from None


app = make_app(os.environ)
