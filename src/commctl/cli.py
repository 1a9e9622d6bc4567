"""The Typer app: parse flags, call the modules that do the work, render, return the exit code.

Only the standard library, typer and commctl.errors are imported here at start-up; each command
imports what it needs (httpx, pydantic, yaml, rich) when it runs.
"""

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import __version__
from .errors import UsageError

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
app.add_typer(config_app, name="config")


class CommType(str, Enum):
    START = "START"
    FINISH = "FINISH"
    CHANGE = "CHANGE"
    REMINDER = "REMINDER"


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
                help="Seconds per request [env COMMCTL_TIMEOUT; default 30]",
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
WRITE_OPTIONS = [
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
                "--concurrency", min=1, max=64, rich_help_panel=WRITE, help="Targets sent in parallel.", metavar="N"
            ),
        ],
        8,
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
]


def command(
    target: typer.Typer = app,
    *,
    api: bool = True,
    writes: bool = False,
    name: str | None = None,
    extra: tuple[inspect.Parameter, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register fn(run, ...) as a command with the shared options, inside the error boundary."""
    shared = [*OUTPUT_OPTIONS, *(CONNECTION_OPTIONS if api else []), *(WRITE_OPTIONS if writes else []), *extra]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(fn).parameters.values())[1:]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            from .runtime import Run

            opts = {p.name: kwargs.pop(p.name) for p in shared}
            run = Run(opts)
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
    Optional[list[CommType]],
    typer.Option("--type", case_sensitive=False, metavar="TYPE", help="Communication type (repeatable)."),
]
Channels = Annotated[
    Optional[list[str]], typer.Option("--channel", "-c", metavar="ID|NAME", help="Channel id or name (repeatable).")
]


def _need(value: Any, flag: str, why: str) -> Any:
    if value is None or value == []:
        raise UsageError(f"{flag} is required {why}")
    return value


@command(writes=True)
def upsert(
    run: Any,
    group: Group = None,
    target: Annotated[Optional[int], typer.Option("--target", "-t", min=1, metavar="ID", help="Target id.")] = None,
    type_: Annotated[
        Optional[CommType],
        typer.Option("--type", case_sensitive=False, help="START, FINISH, CHANGE or REMINDER.", metavar="TYPE"),
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
    from . import actions

    if files:
        given = [
            n
            for n, v in (
                ("--group", group),
                ("--target", target),
                ("--type", type_),
                ("--channel", channel),
                ("--sender", sender),
                ("--subject", subject),
                ("--subject-file", subject_file),
                ("--message", message),
                ("--message-file", message_file),
                ("--offset-days", offset_days),
                ("--active/--inactive", active),
            )
            if v is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with -f", hint="put the values in the file")
        desired = actions.load_files(run, files)
    else:
        why = "(or give -f FILE)"
        desired = [
            actions.desired_from_flags(
                _need(group, "--group", why),
                _need(target, "--target", why),
                _need(type_, "--type", why).value,
                _need(channel, "--channel", why),
                sender=sender,
                subject=subject,
                subject_file=subject_file,
                message=message,
                message_file=message_file,
                offset_days=offset_days,
                active=active,
            )
        ]
    return actions.apply_desired(run, desired, title="commctl upsert")


@command(writes=True)
def diff(run: Any, files: Files = None) -> int:
    """Compare files with the live state field by field; exit 7 when they differ."""
    from . import actions

    desired = actions.load_files(run, _need(files, "-f", "(the files to compare)"))
    return actions.apply_desired(run, desired, title="commctl diff", diff=True)


def _switch(active: bool, name: str, doc: str) -> None:
    def switch(
        run: Any,
        group: Group = None,
        targets: Targets = None,
        types: Types = None,
        channels: Channels = None,
        files: Files = None,
    ) -> int:
        from . import actions

        return actions.set_active(run, active, group, targets, [t.value for t in types or []], channels, files)

    switch.__name__, switch.__doc__ = name, doc
    command(writes=True)(switch)


_switch(True, "activate", "Switch matching live communications on (all targets of the group unless --target is given).")
_switch(False, "deactivate", "Switch matching live communications off (there is no delete in the API).")


@command()
def show(run: Any, group: Group = None, targets: Targets = None, files: Files = None) -> int:
    """Show the live communications of a group, or with -f what files declare (offline)."""
    from . import actions

    if files:
        return actions.show_files(run, files)
    return actions.show_live(run, _need(group, "--group", "(or give -f FILE)"), targets or [])


@command(
    api=False,
    extra=(_opt("strict", Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")], False),),
)
def validate(
    run: Any, paths: Annotated[list[str], typer.Argument(metavar="PATH", help="Files, directories or -.")]
) -> int:
    """Check communication files offline: schema, duplicates, template warnings. Exit 0 or 3."""
    from . import actions

    return actions.validate(run, paths, strict=bool(run.opts.get("strict")))


@command()
def export(
    run: Any,
    group: Annotated[int, typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id.")],
    targets: Targets = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write one file per group into DIR.", metavar="DIR")
    ] = None,
) -> int:
    """Write the live state in the file format, so that `upsert -f` of it is a no-op."""
    from . import actions

    return actions.export(run, group, targets or [], out)


@command()
def channels(run: Any) -> int:
    """List the channels enabled for target loyalty (id and name)."""
    from . import actions

    return actions.discover(run, "channels")


@command()
def groups(run: Any) -> int:
    """List the target groups of the org."""
    from . import actions

    return actions.discover(run, "groups")


@command()
def targets(
    run: Any, group: Annotated[int, typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id.")]
) -> int:
    """List the targets of a target group."""
    from . import actions

    return actions.discover(run, "targets", group)


@command(api=False)
def schema(run: Any) -> int:
    """Print the JSON Schema of the communication file format."""
    from . import actions

    return actions.schema(run)


@command(config_app, name="show")
def config_show(run: Any) -> int:
    """Show the resolved settings and where each came from (secrets masked)."""
    from . import actions

    return actions.config_show(run)


Db = Annotated[
    Optional[Path],
    typer.Option("--db", help="SQLite state file [default $XDG_STATE_HOME/commctl/sandbox.db]", metavar="FILE"),
]
Seed = Annotated[
    Optional[Path],
    typer.Option("--seed", metavar="FILE", help="Seed file (YAML) with channels, groups, targets, credentials."),
]


@command(sandbox_app, api=False)
def serve(
    run: Any,
    host: Annotated[str, typer.Option("--host", help="Address to bind.", metavar="HOST")] = "127.0.0.1",
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
        int, typer.Option("--rate-limit", min=0, help="Requests per minute, then 429.", metavar="N")
    ] = 0,
    rate_window: Annotated[float, typer.Option("--rate-window", min=0.1, hidden=True)] = 60.0,
    drop_rate: Annotated[
        float,
        typer.Option(
            "--drop-rate", min=0, max=1, help="Share of requests whose connection is closed unanswered.", metavar="P"
        ),
    ] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
) -> int:
    """Serve the emulator over HTTP on loopback (state in SQLite)."""
    from . import actions

    return actions.sandbox_serve(
        run, host, port, db, seed, latency_ms, fail_rate, rate_limit, rate_window, drop_rate, verbose
    )


@command(sandbox_app, api=False)
def reset(run: Any, db: Db = None, seed: Seed = None) -> int:
    """Forget all sandbox state and seed it again."""
    from . import actions

    return actions.sandbox_reset(run, db, seed)
