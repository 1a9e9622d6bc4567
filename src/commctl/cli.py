"""The Typer app: parse flags, call the modules that do the work, render, return the exit code.

Only the standard library, typer and commctl's light modules (errors, domain, options) are imported
here at start-up; each command imports what it needs (httpx, pydantic, yaml, rich) when it runs.
Shared options come in groups; `command()` adds the groups a command uses to its signature and hands
them to the body as typed objects on `run` (run.out, run.conn, run.write).
"""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import __version__
from .domain import COMM_TYPES, DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from .errors import UsageError
from .options import ConnectionOptions, OutputOptions, WriteOptions

if TYPE_CHECKING:
    from .runtime import Run

app = typer.Typer(
    name="commctl",
    help="Manage the target communications (START / FINISH / CHANGE / REMINDER messages) of Capillary "
    "Loyalty target groups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich would cost --help its 150 ms budget
    context_settings={"help_option_names": ["-h", "--help"]},
)
sandbox_app = typer.Typer(help="Run the local emulator of the API.", no_args_is_help=True, rich_markup_mode=None)
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(sandbox_app, name="sandbox")
auth_app = typer.Typer(help="Credentials in use and the OAuth token cache.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")
app.add_typer(auth_app, name="auth")


def _comm_types(value: Any) -> Any:
    """Check --type values (any case) against the communication types, with a did-you-mean."""
    if value is None:
        return None
    checked = []
    for v in value if isinstance(value, list) else [value]:
        if v.upper() not in COMM_TYPES:
            import difflib

            close = difflib.get_close_matches(v.upper(), COMM_TYPES, n=1)
            tip = f" (did you mean {close[0]}?)" if close else ""
            raise typer.BadParameter(f"{v!r} is not one of {', '.join(COMM_TYPES)}{tip}")
        checked.append(v.upper())
    return checked if isinstance(value, list) else checked[0]


def _opt(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


CONN, OUT, WRITE = "Connection", "Output", "Writing"
OUTPUT_OPTIONS = [
    _opt(
        "output",
        Annotated[
            Optional[str],
            typer.Option(
                "--output",
                "-o",
                metavar="FORMAT",
                rich_help_panel=OUT,
                help="table, json, yaml; markdown for the writing commands [env COMMCTL_OUTPUT]",
            ),
        ],
    ),
    _opt(
        "quiet",
        Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=OUT, help="Only data and errors.")],
        False,
    ),
    _opt(
        "debug",
        Annotated[bool, typer.Option("--debug", rich_help_panel=OUT, help="Tracebacks for internal errors.")],
        False,
    ),
]
CONNECTION_OPTIONS = [
    _opt(
        "host",
        Annotated[
            Optional[str],
            typer.Option(
                "--host",
                rich_help_panel=CONN,
                help="eu, in/apac, apac2/sg, us, cn, a URL, or sandbox [env COMMCTL_HOST]",
                metavar="HOST",
            ),
        ],
    ),
    _opt(
        "profile",
        Annotated[
            Optional[str],
            typer.Option(
                "--profile",
                rich_help_panel=CONN,
                help="Profile of the config file [env COMMCTL_PROFILE]",
                metavar="NAME",
            ),
        ],
    ),
    _opt(
        "config",
        Annotated[
            Optional[str],
            typer.Option("--config", rich_help_panel=CONN, help="Config file [env COMMCTL_CONFIG]", metavar="FILE"),
        ],
    ),
    _opt(
        "username",
        Annotated[
            Optional[str],
            typer.Option(
                "--username", rich_help_panel=CONN, help="Basic auth till user [env COMMCTL_USERNAME]", metavar="USER"
            ),
        ],
    ),
    _opt(
        "password_stdin",
        Annotated[
            bool,
            typer.Option(
                "--password-stdin", rich_help_panel=CONN, help="Read the password from stdin [env COMMCTL_PASSWORD]"
            ),
        ],
        False,
    ),
    _opt(
        "client_key",
        Annotated[
            Optional[str],
            typer.Option(
                "--client-key", rich_help_panel=CONN, help="OAuth client key [env COMMCTL_CLIENT_KEY]", metavar="KEY"
            ),
        ],
    ),
    _opt(
        "client_secret_stdin",
        Annotated[
            bool,
            typer.Option(
                "--client-secret-stdin",
                rich_help_panel=CONN,
                help="Read the OAuth client secret from stdin [env COMMCTL_CLIENT_SECRET]",
            ),
        ],
        False,
    ),
    _opt(
        "insecure",
        Annotated[
            bool,
            typer.Option("--insecure", rich_help_panel=CONN, help="Allow plain http:// to hosts other than loopback."),
        ],
        False,
    ),
    _opt(
        "timeout",
        Annotated[
            Optional[float],
            typer.Option(
                "--timeout",
                rich_help_panel=CONN,
                help="Seconds for a whole request: connect, headers and body [env COMMCTL_TIMEOUT; default 30]",
                metavar="SECONDS",
            ),
        ],
    ),
    _opt(
        "retries",
        Annotated[
            Optional[int],
            typer.Option(
                "--retries",
                rich_help_panel=CONN,
                help="Retries of failed requests [env COMMCTL_RETRIES; default 3]",
                metavar="N",
            ),
        ],
    ),
    _opt(
        "verbose",
        Annotated[
            bool,
            typer.Option(
                "--verbose", "-v", rich_help_panel=OUT, help="Log each HTTP request and response on stderr (redacted)."
            ),
        ],
        False,
    ),
]
WRITE_OPTIONS = {
    p.name: p
    for p in (
        _opt(
            "dry_run",
            Annotated[bool, typer.Option("--dry-run", rich_help_panel=WRITE, help="Show the plan; send nothing.")],
            False,
        ),
        _opt(
            "force",
            Annotated[bool, typer.Option("--force", rich_help_panel=WRITE, help="Send unchanged communications too.")],
            False,
        ),
        _opt(
            "concurrency",
            Annotated[
                int,
                typer.Option(
                    "--concurrency",
                    min=1,
                    max=MAX_CONCURRENCY,
                    rich_help_panel=WRITE,
                    help="Targets sent in parallel.",
                    metavar="N",
                ),
            ],
            DEFAULT_CONCURRENCY,
        ),
        _opt(
            "report",
            Annotated[
                Optional[str],
                typer.Option(
                    "--report", metavar="FILE", rich_help_panel=WRITE, help="Also write the JSON results to FILE."
                ),
            ],
        ),
        _opt(
            "strict",
            Annotated[bool, typer.Option("--strict", rich_help_panel=WRITE, help="Treat template warnings as errors.")],
            False,
        ),
        _opt(
            "plan_out",
            Annotated[
                Optional[str],
                typer.Option(
                    "--plan-out",
                    metavar="PLAN",
                    rich_help_panel=WRITE,
                    help="With --dry-run (or diff): save the exact change set for `commctl apply PLAN`.",
                ),
            ],
        ),
    )
}
WRITES = tuple(WRITE_OPTIONS)  # every write option: upsert, activate, deactivate
UNDO = ("dry_run", "force", "concurrency", "report")  # restore and apply; restore's --force overwrites conflicts


def command(
    target: typer.Typer = app,
    *,
    api: bool = True,
    write: tuple[str, ...] = (),
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register fn(run, ...) as a command with the option groups it uses, inside the error boundary.

    `api` adds the connection options; `write` names the write options the command takes.
    """
    shared = [*OUTPUT_OPTIONS, *(CONNECTION_OPTIONS if api else []), *(WRITE_OPTIONS[n] for n in write)]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(fn).parameters.values())[1:]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            from .runtime import Run

            def take(names: Any) -> dict[str, Any]:
                return {n: kwargs.pop(n) for n in names}

            out = OutputOptions(**take(p.name for p in OUTPUT_OPTIONS))
            conn = ConnectionOptions(**take(p.name for p in CONNECTION_OPTIONS)) if api else None
            run = Run(out, conn, WriteOptions(**take(write)))
            with run.guard():
                code = fn(run, **kwargs)
            raise typer.Exit(int(code or 0))

        params = own + shared
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        target.command(name or fn.__name__.replace("_", "-"))(wrapper)
        return fn

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"commctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Manage Capillary Loyalty target communications."""


Group = Annotated[Optional[int], typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id.")]
Targets = Annotated[
    Optional[list[int]], typer.Option("--target", "-t", min=1, metavar="ID", help="Target id (repeatable).")
]
Files = Annotated[
    Optional[list[str]],
    typer.Option("--file", "-f", metavar="PATH", help="YAML/JSON file, directory or - (repeatable)."),
]
Types = Annotated[
    Optional[list[str]],
    typer.Option("--type", callback=_comm_types, metavar="TYPE", help="Communication type (repeatable)."),
]
Channels = Annotated[
    Optional[list[str]], typer.Option("--channel", "-c", metavar="ID|NAME", help="Channel id or name (repeatable).")
]


def _need(value: Any, flag: str, why: str) -> Any:
    if value is None or value == []:
        raise UsageError(f"{flag} is required {why}")
    return value


@command(write=WRITES)
def upsert(
    run: "Run",
    group: Group = None,
    target: Annotated[Optional[int], typer.Option("--target", "-t", min=1, metavar="ID", help="Target id.")] = None,
    type_: Annotated[
        Optional[str],
        typer.Option("--type", callback=_comm_types, help="START, FINISH, CHANGE or REMINDER.", metavar="TYPE"),
    ] = None,
    channel: Annotated[
        Optional[str], typer.Option("--channel", "-c", metavar="ID|NAME", help="Channel id or name.")
    ] = None,
    sender: Annotated[Optional[str], typer.Option("--sender", help="Sender id.", metavar="TEXT")] = None,
    subject: Annotated[Optional[str], typer.Option("--subject", help="Subject template.", metavar="TEXT")] = None,
    subject_file: Annotated[
        Optional[Path], typer.Option("--subject-file", help="Read the subject from a file.", metavar="FILE")
    ] = None,
    message: Annotated[Optional[str], typer.Option("--message", help="Message template.", metavar="TEXT")] = None,
    message_file: Annotated[
        Optional[Path], typer.Option("--message-file", help="Read the message from a file.", metavar="FILE")
    ] = None,
    offset_days: Annotated[
        Optional[int],
        typer.Option("--offset-days", min=0, max=2**31 - 1, help="Delivery offset in days.", metavar="DAYS"),
    ] = None,
    active: Annotated[Optional[bool], typer.Option("--active/--inactive", help="Switch on or off.")] = None,
    files: Files = None,
) -> int:
    """Create or update communications from flags or files; only what changed is sent.

    Note: Capillary marks this upsert endpoint as being phased out in favour of loyalty promotions.
    """
    from .commands import write

    flags = {
        "--group": group,
        "--target": target,
        "--type": type_,
        "--channel": channel,
        "--sender": sender,
        "--subject": subject,
        "--subject-file": subject_file,
        "--message": message,
        "--message-file": message_file,
        "--offset-days": offset_days,
        "--active/--inactive": active,
    }
    if files:
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with -f", hint="put the values in the file")
        return write.upsert(run, write.load_files(run, files))
    why = "(or give -f FILE)"
    desired = write.desired_from_flags(
        _need(group, "--group", why),
        _need(target, "--target", why),
        _need(type_, "--type", why),
        _need(channel, "--channel", why),
        sender=sender,
        subject=subject,
        subject_file=subject_file,
        message=message,
        message_file=message_file,
        offset_days=offset_days,
        active=active,
    )
    return write.upsert(run, [desired])


@command(write=("report", "strict", "concurrency", "plan_out"))
def diff(run: "Run", files: Files = None) -> int:
    """Compare files with the live state field by field; exit 7 when they differ."""
    from .commands import write

    return write.diff(run, _need(files, "-f", "(the files to compare)"))


def _switch(active: bool, name: str, doc: str) -> None:
    def switch(
        run: "Run",
        group: Group = None,
        targets: Targets = None,
        types: Types = None,
        channels: Channels = None,
        files: Files = None,
        everything: Annotated[
            bool, typer.Option("--all", help="Allow changing every communication of the group (only --group given).")
        ] = False,
    ) -> int:
        from .commands import write

        return write.set_active(run, active, group, targets or [], types or [], channels or [], files or [], everything)

    switch.__name__, switch.__doc__ = name, doc
    command(write=WRITES)(switch)


_switch(True, "activate", "Switch matching live communications on (all targets of the group unless --target is given).")
_switch(False, "deactivate", "Switch matching live communications off (there is no delete in the API).")


@command()
def show(run: "Run", group: Group = None, targets: Targets = None, files: Files = None) -> int:
    """Show the live communications of a group, or with -f what files declare (offline)."""
    from .commands import read

    if files:
        return read.show_files(run, files)
    return read.show_live(run, _need(group, "--group", "(or give -f FILE)"), targets or [])


@command(api=False, write=("strict",))
def validate(
    run: "Run", paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files, directories or -.")]
) -> int:
    """Check communication files offline: schema, duplicates, template warnings. Exit 0 or 3."""
    from .commands import read

    return read.validate(run, paths)


GroupRequired = Annotated[int, typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id.")]


@command()
def export(
    run: "Run",
    group: GroupRequired,
    targets: Targets = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write one file per group into DIR.", metavar="DIR")
    ] = None,
) -> int:
    """Write the live state in the file format, so that `upsert -f` of it is a no-op."""
    from .commands import read

    return read.export(run, group, targets or [], out)


@command()
def channels(run: "Run") -> int:
    """List the channels enabled for target loyalty (id and name)."""
    from .commands import read

    return read.discover(run, "channels")


@command()
def groups(run: "Run") -> int:
    """List the target groups of the org."""
    from .commands import read

    return read.discover(run, "groups")


@command()
def targets(run: "Run", group: GroupRequired) -> int:
    """List the targets of a target group."""
    from .commands import read

    return read.discover(run, "targets", group)


@command(api=False)
def schema(run: "Run") -> int:
    """Print the JSON Schema of the communication file format."""
    from .commands import read

    return read.schema(run)


@command(config_app, name="show")
def config_show(run: "Run") -> int:
    """Show the resolved settings and where each came from (secrets masked)."""
    from .commands import config

    return config.show(run)


@command(auth_app, name="status")
def auth_status(run: "Run") -> int:
    """Show which credentials would be used, where they came from, and the cached OAuth token (no secrets)."""
    from .commands import auth

    return auth.status(run)


@command(auth_app, api=False, name="logout")
def auth_logout(run: "Run") -> int:
    """Forget the cached OAuth tokens (the next run asks the token endpoint again)."""
    from .commands import auth

    return auth.logout(run)


Groups = Annotated[
    Optional[list[int]], typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id (repeatable).")
]


@command(api=False)
def history(
    run: "Run",
    groups: Groups = None,
    targets: Targets = None,
    types: Types = None,
    run_id: Annotated[Optional[str], typer.Option("--run", metavar="RUN_ID", help="Only this run.")] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", "-n", min=1, metavar="N", help="At most N entries.")
    ] = None,
) -> int:
    """Show the journal of writes, newest first [journal: $XDG_STATE_HOME/commctl/journal or COMMCTL_JOURNAL_DIR]."""
    from .commands import journal

    return journal.history(run, groups or [], targets or [], types or [], run_id, limit)


@command(write=UNDO)
def restore(
    run: "Run",
    run_id: Annotated[
        Optional[str], typer.Argument(metavar="[RUN_ID]", help="A run id from `commctl history`.")
    ] = None,
    source: Annotated[
        Optional[str], typer.Option("--from", metavar="FILE", help="A journal file or a --report file instead.")
    ] = None,
    groups: Groups = None,
    targets: Targets = None,
    types: Types = None,
) -> int:
    """Put back what a run overwrote (what it created is deactivated); items changed since are conflicts (exit 5)."""
    from .commands import journal

    if (run_id is None) == (source is None):
        raise UsageError("give a RUN_ID or --from FILE (one of them)", hint="`commctl history` lists the runs")
    return journal.restore(run, run_id, source, groups or [], targets or [], types or [])


@command(write=UNDO)
def apply(
    run: "Run", plan: Annotated[str, typer.Argument(metavar="PLAN", help="A plan from `diff --plan-out`.")]
) -> int:
    """Apply a saved plan exactly; items whose live value moved since the plan are conflicts (exit 5, not sent)."""
    from .commands import journal

    return journal.apply(run, plan)


Db = Annotated[
    Optional[Path],
    typer.Option("--db", help="SQLite state file [default $XDG_STATE_HOME/commctl/sandbox.db]", metavar="FILE"),
]
Seed = Annotated[
    Optional[Path],
    typer.Option("--seed", metavar="FILE", help="Seed file (YAML) with channels, groups, targets, credentials."),
]


def _rate_limit(value: str) -> str:
    """Check --rate-limit (N per minute, N/m, N/s) here, so that a bad one is a usage error."""
    from .sandbox.app import parse_rate_limit

    try:
        parse_rate_limit(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value


@command(sandbox_app, api=False)
def serve(
    run: "Run",
    bind: Annotated[
        str,
        typer.Option(
            "--bind", metavar="ADDRESS", help="Address to listen on; any other than loopback exposes public credentials."
        ),
    ] = "127.0.0.1",
    host: Annotated[Optional[str], typer.Option("--host", hidden=True, metavar="ADDRESS")] = None,  # old --bind
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, metavar="PORT", help="Port (0 picks a free one).")
    ] = 8080,
    db: Db = None,
    seed: Seed = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, help="Delay every answer.", metavar="MS")] = 0,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", min=0, max=1, help="Share of requests answered 503.", metavar="P")
    ] = 0.0,
    rate_limit: Annotated[
        str,
        typer.Option(
            "--rate-limit",
            callback=_rate_limit,
            metavar="N[/s]",
            help="Requests per minute (N/s: per second) per credential, then 429 with Retry-After.",
        ),
    ] = "0",
    drop_rate: Annotated[
        float,
        typer.Option(
            "--drop-rate", min=0, max=1, help="Share of requests whose connection is closed unanswered.", metavar="P"
        ),
    ] = 0.0,
    fault_seed: Annotated[
        Optional[int],
        typer.Option(
            "--fault-seed", min=0, metavar="N", help="Pick the --fail-rate/--drop-rate requests reproducibly from N."
        ),
    ] = None,
    auth_fail_after: Annotated[
        int,
        typer.Option(
            "--auth-fail-after", min=0, metavar="K", help="Revoke the credentials: 401 from the K-th request using them."
        ),
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
) -> int:
    """Serve the emulator over HTTP (state in SQLite)."""
    from .commands import sandbox
    from .sandbox.app import Faults, parse_rate_limit

    limit, window = parse_rate_limit(rate_limit)
    faults = Faults(latency_ms, fail_rate, limit, window, drop_rate, fault_seed, auth_fail_after)
    return sandbox.serve(run, bind, port, db, seed, faults, verbose, deprecated_host=host)


@command(sandbox_app, api=False)
def reset(run: "Run", db: Db = None, seed: Seed = None) -> int:
    """Forget all sandbox state and seed it again."""
    from .commands import sandbox

    return sandbox.reset(run, db, seed)
