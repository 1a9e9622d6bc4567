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
from .helptext import Command
from .helptext import Group as HelpGroup
from .options import ConnectionOptions, OutputOptions, WriteOptions

if TYPE_CHECKING:
    from .runtime import Run

app = typer.Typer(
    name="commctl",
    help="Manage the target communications (START / FINISH / CHANGE / REMINDER messages) of Capillary "
    "Loyalty target groups.",
    epilog="""
# try it on the local emulator, no account needed
commctl upsert -f comms/ --host sandbox
# what the server holds
commctl show -g 4100
# what a merge would change (exit 7 when it differs)
commctl diff -f comms/ -o markdown
# a command's options and examples
commctl COMMAND -h
""",
    cls=HelpGroup,
    no_args_is_help=True,
    add_completion=False,  # `commctl completion SHELL` instead of --install-completion (and faster)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich would cost --help its 150 ms budget
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _family(name: str, help: str, *examples: str) -> typer.Typer:
    """A command family (`commctl NAME ...`) with the root's plain help and its examples as the epilog."""
    family = typer.Typer(
        help=help, epilog="\n".join(examples), cls=HelpGroup, no_args_is_help=True, rich_markup_mode=None
    )
    app.add_typer(family, name=name)
    return family


sandbox_app = _family(
    "sandbox", "Run the local emulator of the API.", "commctl sandbox serve --port 8080", "commctl sandbox reset"
)
config_app = _family("config", "Inspect settings.", "commctl config show")
auth_app = _family(
    "auth", "Credentials in use and the OAuth token cache.", "commctl auth status", "commctl auth logout"
)


def _one_of(values: tuple[str, ...], case: Callable[[str], str] = str.lower) -> Callable[[Any], Any]:
    """A callback that checks a flag's value(s) against `values` (any case), exit 2 with a did-you-mean."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        checked = []
        for v in value if isinstance(value, list) else [value]:
            if case(v) not in values:
                import difflib

                close = difflib.get_close_matches(case(v), values, n=1)
                tip = f" (did you mean {close[0]}?)" if close else ""
                raise typer.BadParameter(f"{v!r} is not one of {', '.join(values)}{tip}")
            checked.append(case(v))
        return checked if isinstance(value, list) else checked[0]

    return check


_comm_types = _one_of(COMM_TYPES, str.upper)


def _opt(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


CONN, OUT, WRITE = "Connection", "Output", "Writing"
COMPLETE_VAR = "_COMMCTL_COMPLETE"  # the environment variable through which a shell asks for completions
TABLES = ("table", "json", "yaml")
REPORTS = (*TABLES, "markdown")


def _output_options(formats: tuple[str, ...], tables: bool) -> list[inspect.Parameter]:
    """-o with this command's formats, --no-headers for commands that print tables, --quiet, --debug."""
    params = []
    if formats:
        output = typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            rich_help_panel=OUT,
            callback=_one_of(formats),
            autocompletion=lambda: list(formats),
            help=f"{', '.join(formats)} [env COMMCTL_OUTPUT; default table]",
        )
        params.append(_opt("output", Annotated[Optional[str], output]))
    if tables:
        no_headers = typer.Option("--no-headers", rich_help_panel=OUT, help="Piped tables without the header line.")
        params.append(_opt("no_headers", Annotated[bool, no_headers], False))
    return [
        *params,
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


def _hosts(incomplete: str) -> list[str]:
    from .config import CLUSTERS, SANDBOX

    return [h for h in (*CLUSTERS, SANDBOX) if h.startswith(incomplete)]


def _profiles(ctx: typer.Context, incomplete: str) -> list[str]:
    """Profile names from the config file (--config, COMMCTL_CONFIG or the default path)."""
    import os

    from .config import config_path

    path = ctx.params.get("config") or os.environ.get("COMMCTL_CONFIG") or str(config_path(os.environ))
    try:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        names = [str(n) for n in (data.get("profiles") or {})] if isinstance(data, dict) else []
    except Exception:  # completion must never fail loudly
        names = []
    return [n for n in names if n.startswith(incomplete)]


def _types(incomplete: str) -> list[str]:
    """In the case the user began typing (--type takes either): zsh and fish keep only what starts with it."""
    matches = [t for t in COMM_TYPES if t.startswith(incomplete.upper())]
    return [t.lower() for t in matches] if incomplete.islower() else matches


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
                autocompletion=_hosts,
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
                autocompletion=_profiles,
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
            "rate",
            Annotated[
                Optional[float],
                typer.Option(
                    "--rate",
                    min=0.001,
                    max=1_000_000,
                    rich_help_panel=WRITE,
                    help="At most N requests per second (slows down further on 429) [env COMMCTL_RATE]",
                    metavar="N",
                ),
            ],
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
    output: tuple[str, ...] = TABLES,
    tables: bool = True,
    name: str | None = None,
    examples: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register fn(run, ...) as a command with the option groups it uses, inside the error boundary.

    `api` adds the connection options; `write` names the write options the command takes; `output`
    the -o formats it offers (none: no -o); `tables` adds --no-headers; `examples` is the help epilog.
    """
    out_params = _output_options(output, tables)
    shared = [*out_params, *(CONNECTION_OPTIONS if api else []), *(WRITE_OPTIONS[n] for n in write)]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(fn).parameters.values())[1:]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            from .runtime import Run

            def take(names: Any) -> dict[str, Any]:
                return {n: kwargs.pop(n) for n in names}

            out = OutputOptions(**take(p.name for p in out_params), formats=output)
            conn = ConnectionOptions(**take(p.name for p in CONNECTION_OPTIONS)) if api else None
            run = Run(out, conn, WriteOptions(**take(write)))
            with run.guard():
                if output:
                    _ = run.output  # a bad COMMCTL_OUTPUT or config value fails (exit 4) before any work
                code = fn(run, **kwargs)
            raise typer.Exit(int(code or 0))

        params = own + shared
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        target.command(name or fn.__name__.replace("_", "-"), cls=Command, epilog=examples)(wrapper)
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
    typer.Option(
        "--type", callback=_comm_types, autocompletion=_types, metavar="TYPE", help="Communication type (repeatable)."
    ),
]
Channels = Annotated[
    Optional[list[str]], typer.Option("--channel", "-c", metavar="ID|NAME", help="Channel id or name (repeatable).")
]


def _need(value: Any, flag: str, why: str) -> Any:
    if value is None or value == []:
        raise UsageError(f"{flag} is required {why}")
    return value


@command(
    write=WRITES,
    output=REPORTS,
    examples="""
# everything the files declare; only changes are sent
commctl upsert -f comms/
# the plan, nothing sent
commctl upsert -f comms/ --dry-run
# one communication from flags (fields left out keep their live value)
commctl upsert -g 4100 -t 5200 --type REMINDER -c SMS --message "2 days left!"
commctl upsert -g 4100 -t 5200 --type START -c 2 --message-file a.html -o json
""",
)
def upsert(
    run: "Run",
    group: Group = None,
    target: Annotated[Optional[int], typer.Option("--target", "-t", min=1, metavar="ID", help="Target id.")] = None,
    type_: Annotated[
        Optional[str],
        typer.Option(
            "--type",
            callback=_comm_types,
            autocompletion=_types,
            help="START, FINISH, CHANGE or REMINDER.",
            metavar="TYPE",
        ),
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
        from .commands.read import load_files

        return write.upsert(run, load_files(run, files))
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


@command(
    write=("report", "strict", "concurrency", "plan_out", "rate"),
    output=REPORTS,
    examples="""
# exit 0 in sync, 7 when the live state differs
commctl diff -f comms/
# a pull-request comment
commctl diff -f comms/ -o markdown > plan.md
# nightly drift check in CI
commctl diff -f comms/ --report drift.json
""",
)
def diff(run: "Run", files: Files = None) -> int:
    """Compare files with the live state field by field; exit 7 when they differ."""
    from .commands import write

    return write.diff(run, _need(files, "-f", "(the files to compare)"))


def _switch(active: bool, name: str, doc: str, examples: str) -> None:
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
    command(write=WRITES, output=REPORTS, examples=examples)(switch)


_switch(
    True,
    "activate",
    "Switch matching live communications on (all targets of the group unless --target is given).",
    """
commctl activate -g 4100 -t 5200 --type REMINDER
# the communications these files name
commctl activate -f comms/summer.yaml
""",
)
_switch(
    False,
    "deactivate",
    "Switch matching live communications off (there is no delete in the API).",
    """
commctl deactivate -g 4100 --type REMINDER -c SMS --dry-run
commctl deactivate -g 4100 -t 5200 -t 5201
""",
)


@command(
    examples="""
# the live communications of a group
commctl show -g 4100
commctl show -g 4100 -t 5200 -o json | jq '.[].messageTemplate'
# piped tables are tab-separated
commctl show -g 4100 --no-headers | cut -f4
# what the files declare (offline)
commctl show -f comms/
""",
)
def show(run: "Run", group: Group = None, targets: Targets = None, files: Files = None) -> int:
    """Show the live communications of a group, or with -f what files declare (offline)."""
    from .commands import read

    if files:
        return read.show_files(run, files)
    return read.show_live(run, _need(group, "--group", "(or give -f FILE)"), targets or [])


@command(
    api=False,
    write=("strict",),
    tables=False,
    examples="""
# every *.yaml, *.yml, *.json under comms/
commctl validate comms/
# template warnings fail too (exit 3)
commctl validate comms/ --strict
cat summer.yaml | commctl validate -
""",
)
def validate(
    run: "Run", paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files, directories or -.")]
) -> int:
    """Check communication files offline: schema, duplicates, template warnings. Exit 0 or 3."""
    from .commands import read

    return read.validate(run, paths)


GroupRequired = Annotated[int, typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id.")]


@command(
    tables=False,
    examples="""
# the live state as a file; upsert -f of it is a no-op
commctl export -g 4100 > comms/summer.yaml
# writes comms/group-4100.yaml
commctl export -g 4100 --out comms/
""",
)
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


@command(examples="commctl channels\ncommctl channels -o json | jq -r '.[] | \"\\(.id) \\(.name)\"'")
def channels(run: "Run") -> int:
    """List the channels enabled for target loyalty (id and name)."""
    from .commands import read

    return read.discover(run, "channels")


@command(examples="commctl groups\ncommctl groups --no-headers | cut -f1")
def groups(run: "Run") -> int:
    """List the target groups of the org."""
    from .commands import read

    return read.discover(run, "groups")


@command(examples="commctl targets -g 4100\ncommctl targets -g 4100 -o json")
def targets(run: "Run", group: GroupRequired) -> int:
    """List the targets of a target group."""
    from .commands import read

    return read.discover(run, "targets", group)


@command(
    api=False,
    output=(),
    tables=False,
    examples="""
commctl schema > commctl.schema.json
# then, first line of a YAML file:  # yaml-language-server: $schema=commctl.schema.json
""",
)
def schema(run: "Run") -> int:
    """Print the JSON Schema of the communication file format."""
    from .commands import read

    return read.schema(run)


@command(
    config_app, name="show", examples="commctl config show\ncommctl config show --profile staging -o json"
)
def config_show(run: "Run") -> int:
    """Show the resolved settings and where each came from (secrets masked)."""
    from .commands import config

    return config.show(run)


@command(auth_app, name="status", examples="commctl auth status\ncommctl auth status --profile eu-prod -o json")
def auth_status(run: "Run") -> int:
    """Show which credentials would be used, where they came from, and the cached OAuth token (no secrets)."""
    from .commands import auth

    return auth.status(run)


@command(auth_app, api=False, name="logout", tables=False, examples="commctl auth logout")
def auth_logout(run: "Run") -> int:
    """Forget the cached OAuth tokens (the next run asks the token endpoint again)."""
    from .commands import auth

    return auth.logout(run)


Groups = Annotated[
    Optional[list[int]], typer.Option("--group", "-g", min=1, metavar="ID", help="Target group id (repeatable).")
]


@command(
    api=False,
    examples="""
commctl history -n 20
commctl history -g 4100 --type REMINDER -o json
# what one run wrote
commctl history --run 20261127T160255Z-3f9c
""",
)
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


@command(
    write=UNDO,
    output=REPORTS,
    examples="""
# undo a run: what it overwrote is put back, what it created is deactivated
commctl restore 20261127T160255Z-3f9c --dry-run
commctl restore --from apply.json -g 4100
""",
)
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


@command(
    write=UNDO,
    output=REPORTS,
    examples="""
# reviewed in a pull request, applied unchanged after merge
commctl diff -f comms/ --plan-out plan.json
commctl apply plan.json
""",
)
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


@command(
    sandbox_app,
    api=False,
    output=(),
    tables=False,
    examples="""
# then: --host http://127.0.0.1:8080 --username sandbox
commctl sandbox serve --port 8080
# a flaky API, for testing retries
commctl sandbox serve --port 0 --fail-rate 0.2 --latency-ms 300
""",
)
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


@command(sandbox_app, api=False, output=(), tables=False, examples="commctl sandbox reset")
def reset(run: "Run", db: Db = None, seed: Seed = None) -> int:
    """Forget all sandbox state and seed it again."""
    from .commands import sandbox

    return sandbox.reset(run, db, seed)


SHELLS = ("bash", "zsh", "fish")


@command(
    api=False,
    output=(),
    tables=False,
    examples="""
# bash: in ~/.bashrc
eval "$(commctl completion bash)"
# zsh: in ~/.zshrc (after compinit)
eval "$(commctl completion zsh)"
# fish
commctl completion fish > ~/.config/fish/completions/commctl.fish
""",
)
def completion(
    run: "Run",
    shell: Annotated[
        str,
        typer.Argument(
            metavar="SHELL", callback=_one_of(SHELLS), autocompletion=lambda: list(SHELLS), help="bash, zsh or fish."
        ),
    ],
) -> int:
    """Print the shell completion script (commands, options, --type, -o, --host and profile names)."""
    from typer._completion_shared import get_completion_script

    run.out_stream.write(get_completion_script(prog_name="commctl", complete_var=COMPLETE_VAR, shell=shell))
    run.out_stream.write("\n")
    return 0
