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
    bind: str,
    port: int,
    db: Path | None,
    seed: Path | None,
    faults: Faults,
    verbose: bool,
    *,
    deprecated_host: str | None = None,
) -> int:
    from ..sandbox.app import SandboxApp, default_db, open_store
    from ..sandbox.seed import describe_credentials, load_seed
    from ..sandbox.server import serve as serve_http

    if deprecated_host is not None:
        if bind != "127.0.0.1":
            raise UsageError("give --bind only (--host is its old name on `sandbox serve`)")
        run.log("warning: `sandbox serve --host` is deprecated: use --bind (--host names the API everywhere else)")
        bind = deprecated_host
    path = db or default_db()
    store = open_store(path, seed)
    credentials = describe_credentials(store.credentials(), load_seed(seed))
    app = SandboxApp(store, faults)

    def announce(url: str) -> None:
        run.log(f"commctl sandbox listening on {url} (state: {path})")
        run.log(f"credentials: {'; '.join(credentials) or 'none (the seed declares none: every API call is 401)'}")
        if not is_loopback(bind):
            run.log(
                f"warning: {bind} is not a loopback address: whoever reaches it can use this sandbox, and its "
                "credentials are public (printed above, and in the seed)"
            )
        run.err_stream.flush()

    try:
        serve_http(app, bind, port, verbose, announce)
    except OSError as e:
        raise UsageError(f"cannot listen on {bind}:{port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        run.log("stopped")
    return 0


def is_loopback(address: str) -> bool:
    """True when every address the name resolves to is a loopback one (0.0.0.0 and :: are not)."""
    import ipaddress
    import socket

    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(address, None)}
    except (OSError, UnicodeError):
        return False
    return all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in resolved)


def reset(run: Run, db: Path | None, seed: Path | None) -> int:
    from ..sandbox.app import default_db, open_store
    from ..sandbox.seed import load_seed

    path = db or default_db()
    store = open_store(path)
    store.reset()
    store.load_seed(load_seed(seed))
    run.note(f"sandbox state reset: {path}")
    return 0
