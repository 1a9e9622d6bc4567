"""One run of a command: resolved settings, the API client, output streams, and the error boundary.

This is the one place that turns errors into messages and exit codes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

from .domain import DEFAULT_CONCURRENCY
from .errors import AuthError, CommctlError, ExitCode, InputError, UsageError
from .gcpause import collector_paused
from .jsonout import Rows, write_json, write_lines
from .options import ConnectionOptions, OutputOptions, WriteOptions
from .text import github_data, github_property, needs_escape, shown


class Run:
    """What a command receives: its option groups, the settings and client made from them, the streams."""

    def __init__(
        self,
        out: OutputOptions | None = None,
        conn: ConnectionOptions | None = None,
        write: WriteOptions | None = None,
        stdin: IO[str] | None = None,
    ) -> None:
        self.out = out or OutputOptions()
        self.conn = conn or ConnectionOptions()
        self.write = write or WriteOptions()
        self.debug = self.out.debug
        self.verbose = self.conn.verbose
        self.quiet = self.out.quiet
        self.stdin = stdin
        self.report_path = self.write.report
        self._settings: Any = None
        self._output: str | None = None
        self._client: Any = None
        self._report_doc: dict[str, Any] | None = None
        self.run_info: Any = None
        self.journal: Any = None
        self.stopped_by: int | None = None
        self.stopping = threading.Event()  # set by SIGINT/SIGTERM during a batch; the client stops retrying
        self.out_stream: IO[str] = sys.stdout
        self.err_stream: IO[str] = sys.stderr

    # ---- settings and client ----

    @property
    def settings(self) -> Any:
        """Resolved once (it may read a secret from stdin); a failure is kept and raised again."""
        if self._settings is None:
            from . import config

            try:
                self._settings = config.resolve(
                    self.conn, os.environ, self.stdin, self.out.output, rate=self.write.rate
                )
            except CommctlError as e:
                self._settings = e
        if isinstance(self._settings, CommctlError):
            raise self._settings
        return self._settings

    @property
    def output(self) -> str:
        """The output format (flag > env > profile > default), resolved without touching credentials."""
        if self._output is None:
            from . import config

            self._output = config.resolve_output(self.out.output, self.conn, os.environ, self.out.formats)
        return self._output

    @property
    def host(self) -> str:
        """The API root URL, or `sandbox`: what runs, journals and plans are tied to."""
        return str(self.settings.base_url())

    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(
                self.settings,
                log=self.log if self.verbose else None,
                concurrency=self.write.concurrency,
                stop=self.stopping,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # ---- streams ----

    def console(self, stderr: bool = False) -> Any:
        from rich.console import Console

        stream = self.err_stream if stderr else self.out_stream
        # Both sizes given, or Rich takes 80x25 for TERM=dumb whatever the terminal says.
        return Console(
            file=stream, width=width(stream), height=25, soft_wrap=False, highlight=False, emoji=False, markup=False
        )

    @property
    def boxed(self) -> bool:
        """Box lines only where a terminal can draw them (not for TERM=dumb)."""
        return os.environ.get("TERM", "") not in ("dumb", "unknown")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        """A Rich progress bar on stderr for long batches at a terminal; a no-op otherwise."""
        if self.quiet or total < 20 or not self.err_stream.isatty():
            yield lambda: None
            return
        from rich.progress import Progress

        with Progress(console=self.console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)

    def log(self, line: str) -> None:
        """One line on stderr, shown as data: control characters from files or the API are escaped."""
        self.err_stream.write(shown(line) + "\n")

    def note(self, line: str) -> None:
        """Progress and summaries on stderr, silenced by --quiet."""
        if not self.quiet:
            self.log(line)

    def warnings(self, problems: list[str], strict: bool) -> None:
        """Template warnings: each one warned, or with --strict all of them an error (exit 3)."""
        if strict and problems:
            raise InputError(problems, hint="--strict turns template warnings into errors")
        for problem in problems:
            self.warning(problem)

    def warning(self, problem: str) -> None:
        """A file or template warning (`FILE:LINE:COL: field: message`), annotated in GitHub Actions."""
        if not self.quiet:
            self.log(f"warning: {problem}")
            self.annotate("warning", problem)

    def annotate(self, level: str, problem: str) -> None:
        """In GitHub Actions, a located file problem also as a workflow command, so it marks the PR."""
        if os.environ.get("GITHUB_ACTIONS") == "true" and (line := github_annotation(level, problem)):
            self.err_stream.write(line + "\n")

    def emit(self, data: Any, table: Callable[[], Any] | None = None) -> None:
        """Write data on stdout in the chosen format; `table` builds the render.Grid for -o table."""
        fmt = self.output
        if fmt == "json" or (table is None and fmt == "table"):
            # Indented for people at a terminal, compact (and several times faster) for pipes, like gh.
            indent = 2 if self.out_stream.isatty() else None
            write_json(self.out_stream, data, indent)
        elif fmt == "yaml":
            write_lines(self.out_stream, yaml_chunks(data))
        elif fmt == "markdown":
            raise UsageError("-o markdown is available for diff, upsert, activate and deactivate")
        else:
            assert table is not None
            with collector_paused():  # a row of cells per item: 20,000 rows are 220,000 strings, no cycles
                self.table(table())

    def table(self, grid: Any) -> None:
        """A render.Grid: fitted to the terminal, or tab-separated for a pipe (written directly, no Rich)."""
        from . import render

        if not self.out_stream.isatty():
            self.out_stream.writelines(render.tsv(grid, headers=not self.out.no_headers))
            return
        console = self.console()
        renderable, hidden = render.rich_table(grid, console.width, self.boxed, headers=not self.out.no_headers)
        console.print(renderable)
        if hidden:
            self.note(f"hidden to fit {console.width} columns: {', '.join(hidden)}")

    def write_report(self, doc: dict[str, Any]) -> None:
        """Write --report atomically (a temporary file, then rename); a later error of the run adds to it."""
        self._report_doc = doc
        if self.report_path:
            write_atomic(Path(self.report_path), lambda f: write_json(f, doc, 2))

    def check_writable(self, path: str | None, flag: str) -> None:
        """Fail before anything is sent when a file could not be written afterwards (exit 2)."""
        if not path:
            return
        target = Path(path)
        parent = target.parent
        reason = (
            "is a directory"
            if target.is_dir()
            else "No such file or directory"
            if not parent.exists()
            else "Not a directory"
            if not parent.is_dir()
            else "Permission denied"
            if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK))
            else None
        )
        if reason:
            if flag == "--report":
                self.report_path = None  # nothing more to try: the error says why
            raise UsageError(f"{flag} {path}: {reason}")

    # ---- a batch of writes ----

    def start_run(self, command: str) -> Any:
        """A run id for a command that writes, announced on stderr, and its journal."""
        from .journal import Journal, RunInfo, journal_dir, new_run_id, now_iso

        self.run_info = RunInfo(new_run_id(), now_iso(), self.host, command)
        self.journal = Journal(self.run_info, journal_dir())
        self.note(f"run {self.run_info.id}")
        return self.run_info

    @contextmanager
    def batch(self) -> Iterator[threading.Event]:
        """SIGINT/SIGTERM set the event instead of killing the run: nothing new starts, what is in
        flight finishes (without retrying), and the command reports what happened. A second Ctrl-C quits at once."""
        stop = self.stopping

        def handler(signum: int, frame: Any) -> None:
            if stop.is_set() and signum == signal.SIGINT:
                os._exit(ExitCode.INTERRUPTED)
            self.stopped_by = signum
            stop.set()
            self.log("interrupted: finishing the requests in flight, starting no new ones (Ctrl-C again to quit now)")

        if threading.current_thread() is not threading.main_thread():
            yield stop
            return
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield stop
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @property
    def stop_code(self) -> ExitCode | None:
        """130 or 143 when a signal stopped the batch."""
        if self.stopped_by is None:
            return None
        return ExitCode.TERMINATED if self.stopped_by == signal.SIGTERM else ExitCode.INTERRUPTED

    # ---- the error boundary ----

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            closed_pipe()
        except CommctlError as e:
            self._fail(e.kind, e.lines(), e.hint, e.exit_code)
        except KeyboardInterrupt:
            self.log("error: interrupted")
            raise SystemExit(ExitCode.INTERRUPTED) from None
        except Exception as e:  # a bug: say so briefly unless --debug
            if self.debug:
                for line in traceback.format_exc().splitlines():
                    self.log(line)
            self._fail(
                "internal",
                [f"internal error: {type(e).__name__}: {e}"],
                None if self.debug else "rerun with --debug for the traceback, and report it",
                ExitCode.INTERNAL,
            )
        finally:
            self.close()
            if self.journal is not None:
                self.journal.close()

    def _fail(self, kind: str, lines: list[str], hint: str | None, code: int) -> None:
        body = {"error": {"kind": kind, "message": "\n".join(lines), "hint": hint}}
        try:
            for line in lines:
                self.log(f"error: {line}")
                if kind == "input":
                    self.annotate("error", line)
            if hint:
                self.log(f"hint: {hint}")
            # What the run did before the error stays in the report: the error is added, nothing replaced.
            doc = {**(self._report_doc or {"results": [], "summary": {}}), **body}
            if self._safe_output() == "json":
                write_json(self.out_stream, doc if self._report_doc else body)
        except BrokenPipeError:
            closed_pipe()
        try:
            self.write_report(doc)
        except CommctlError as e:
            self.log(f"error: {e.message}")
        raise SystemExit(code)

    def _safe_output(self) -> str:
        try:
            return self.output
        except Exception:  # the config file itself may be what failed
            return (self.out.output or "table").lower()


def write_atomic(path: Path, write: Callable[[IO[str]], object]) -> None:
    """Replace `path` with what `write` writes into it, all at once: readers see the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def width(stream: IO[str]) -> int:
    """The terminal's width: COLUMNS when set (Rich would take 80 for TERM=dumb), else the tty's own."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a real terminal
        return 80


def closed_pipe() -> NoReturn:
    """The reader of stdout went away (`| head`): stop quietly, as a program killed by SIGPIPE does.

    Python's advice: point stdout at devnull so that the final flush at exit cannot fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass
    raise SystemExit(ExitCode.CLOSED_PIPE)


LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)


def github_annotation(level: str, problem: str) -> str | None:
    """`::error file=F,line=L,col=C::message` for a `FILE:LINE:COL: message` problem, else None."""
    m = LOCATED.match(problem)
    if not m:
        return None
    path = m["file"]
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and os.path.isabs(path) and Path(path).is_relative_to(workspace):
        path = os.path.relpath(path, workspace)  # annotations name files relative to the repository
    props = f"file={github_property(path)},line={m['line']},col={m['col']}"
    return f"::{level} {props}::{github_data(m['message'])}"


def to_yaml(data: Any) -> str:
    """YAML of `data`; strings with control characters are double-quoted, so they show as escapes."""
    return "".join(yaml_chunks(data))


def yaml_chunks(data: Any) -> Iterator[str]:
    """The YAML of `data` in pieces, as jsonout.json_chunks: a mapping that holds `Rows` member by
    member, the rows one at a time. The text is one yaml.dump's: the rows share no objects (no
    anchors), and a sequence under a top-level key is written as a top-level one is."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if needs_escape(value) else None)

    Dumper.add_representer(str, text)
    Dumper.add_representer(Rows, lambda dumper, rows: dumper.represent_list(list(rows)))

    def dump(value: Any) -> str:
        return yaml.dump(
            value, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000
        )

    if not (isinstance(data, dict) and any(isinstance(v, Rows) for v in data.values())):
        yield dump(data)
        return
    for key, value in data.items():
        if not isinstance(value, Rows):
            yield dump({key: value})
            continue
        first = True
        for element in value:  # `key:` comes with the first row
            yield dump({key: [element]} if first else [element])
            first = False
        if first:
            yield dump({key: []})


SANDBOX_URL = "http://sandbox.invalid"  # the in-process sandbox's stand-in URL (and its token-cache host)


def api_base(settings: Any) -> tuple[str, bool]:
    """The API root URL (exit 4 without a host) and whether it is the in-process sandbox."""
    from .config import SANDBOX

    base = settings.base_url()
    return (SANDBOX_URL, True) if base == SANDBOX else (base.rstrip("/"), False)


CREDENTIAL_PAIRS = (
    (
        "oauth",
        ("client_key", "client_secret"),
        "OAuth",
        "set COMMCTL_CLIENT_KEY and COMMCTL_CLIENT_SECRET (or --client-secret-stdin)",
    ),
    (
        "basic",
        ("username", "password"),
        "Basic auth",
        "set COMMCTL_USERNAME and COMMCTL_PASSWORD (or --password-stdin)",
    ),
)


def credential_scheme(settings: Any, in_process: bool = False) -> str:
    """Which credentials a command would use: token, oauth, basic or sandbox (exit 4 for none or half a pair)."""
    get = settings.get
    if get("token"):
        return "token"
    for scheme, (first, second), what, hint in CREDENTIAL_PAIRS:
        if get(first) or get(second):
            if not (get(first) and get(second)):
                if in_process:  # the settings hold only credentials given as flags (config.py)
                    from .config import FLAGS

                    both = f"{FLAGS[first]} and {FLAGS[second]}"
                    hint = f"with --host sandbox only flags count: give both {both}, or neither to use the sandbox's own"
                raise AuthError(
                    f"{what} needs both a {first.replace('_', ' ')} and a {second.replace('_', ' ')}", hint=hint
                )
            return scheme
    if in_process:
        return "sandbox"
    raise AuthError(
        "no credentials configured",
        hint="set COMMCTL_USERNAME + COMMCTL_PASSWORD, COMMCTL_CLIENT_KEY + COMMCTL_CLIENT_SECRET, "
        "or COMMCTL_TOKEN (see `commctl config show`)",
    )


def make_auth(settings: Any, scheme: str) -> Any:
    """The client's Auth for a scheme; credentials that cannot travel safely are refused here (exit 4)."""
    from .client import BasicAuth, OAuth, TokenAuth

    get, where = settings.get, settings.sources
    if scheme == "token":
        return TokenAuth(get("token"), where=where)
    if scheme == "oauth":
        from .tokencache import TokenCache

        return OAuth(get("client_key"), get("client_secret"), cache=TokenCache.default(), where=where)
    if scheme == "basic":
        return BasicAuth(get("username"), get("password"), where=where)
    return BasicAuth("sandbox", "sandbox")


def make_client(
    settings: Any,
    log: Callable[[str], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: threading.Event | None = None,
) -> Any:
    from .client import Client
    from .ratelimit import Limiter

    base, in_process = api_base(settings)
    transport = None
    if in_process:
        from .sandbox.app import in_process_transport

        transport = in_process_transport()
    # For the in-process sandbox the settings hold only credentials given as flags (config.py).
    auth = make_auth(settings, credential_scheme(settings, in_process))
    get = settings.get
    backoff = float(os.environ.get("COMMCTL_RETRY_BACKOFF") or 0.5)
    return Client(
        base,
        auth,
        timeout=get("timeout"),
        retries=get("retries"),
        transport=transport,
        log=log,
        backoff=backoff,
        max_connections=max(concurrency, 1),
        limiter=Limiter(get("rate"), max(concurrency, 1), stop=stop),  # every request of the run, reads and writes
        stop=stop,
    )
