"""`sandbox serve` and `sandbox reset`: the local emulator of the API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..runtime import Run

if TYPE_CHECKING:
    from ..sandbox.app import Faults


def serve(
    run: Run,
    host: str,
    port: int,
    db: Path | None,
    seed: Path | None,
    faults: Faults,
    verbose: bool,
) -> int:
    from ..sandbox.app import SandboxApp, default_db, open_store
    from ..sandbox.server import serve as serve_http

    path = db or default_db()
    app = SandboxApp(open_store(path, seed), faults)

    def announce(url: str) -> None:
        run.log(f"commctl sandbox listening on {url} (state: {path}); credentials: sandbox / sandbox")
        run.err_stream.flush()

    try:
        serve_http(app, host, port, verbose, announce)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        run.log("stopped")
    return 0


def reset(run: Run, db: Path | None, seed: Path | None) -> int:
    from ..sandbox.app import default_db, open_store
    from ..sandbox.seed import load_seed

    path = db or default_db()
    store = open_store(path)
    store.reset()
    store.load_seed(load_seed(seed))
    run.note(f"sandbox state reset: {path}")
    return 0
