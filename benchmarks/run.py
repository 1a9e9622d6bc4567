"""Every target of SPEC section 9 in one run, each as a ratio measured in that run, with "met" / "NOT met".

    python benchmarks/run.py [--quick] [--only startup,bulk,memory,rate,tables,scale] [--targets 2000] ...

Machines here are shared and noisy: each figure is the best of several fresh runs, and every ratio
compares figures taken minutes apart in the same run. Where a target is not met, the line below it
prints the measured floor that stops it (the same work done by the bare libraries commctl is built on).

- start-up: `commctl --version` <= 3x `python -c pass`; every command's `--help`, `validate` of
  sample-configs/, one live `show` and one-item `upsert` against `sandbox serve` on loopback <= 10x.
- bulk: `upsert -f` of N new targets (N GETs, N POSTs, and the channel list) against `sandbox serve`,
  >= 0.9x the speed of a bare keep-alive httpx client sending the same requests at the same
  concurrency, >= 10x a shell loop of curl; a bare stdlib http.client client is the floor.
- memory: peak RSS of `upsert --dry-run` of 20,000 communications in ten files <= 100 MiB, of `diff`
  of 50,000 <= 150 MiB (`sandbox serve` in its own process, so the figure is commctl's alone).
- rate limits: against `sandbox serve --rate-limit R/s`, a bulk run gets <= 5% of its requests
  answered 429 and takes <= 1.25x the time the limit allows (requests / R).
- piped tables: rendering 20,000 rows tab-separated for a pipe <= 1.5x rendering them as JSON.
- scale: CPU per communication of `validate`, `diff` and `upsert --dry-run` at 50,000 <= 1.5x that at
  5,000 (no quadratic step), in each file shape (benchmarks/scale.py has the full table).

Runs without an install (commctl from src/, compiled to bytecode first as pip does). Start-up depends on the installed typer: pyproject pins
the release whose help is light; run this in an environment installed from pyproject.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
from tests.conftest import communications, start_sandbox, stop_sandbox  # noqa: E402

PY = sys.executable
ENTRY = "import sys; from commctl.__main__ import main; sys.exit(main())"  # what the console script runs
COMMCTL = [PY, "-c", ENTRY]
GROUP = 900
MIB = 1024 * 1024
TYPES = ("START", "FINISH", "CHANGE", "REMINDER")

AUTH = 'import base64, hashlib\nAUTH = "Basic " + base64.b64encode(b"sandbox:" + hashlib.md5(b"sandbox").hexdigest().encode()).decode()\n'

BARE_HTTPX = (
    AUTH
    + """
import sys
from concurrent.futures import ThreadPoolExecutor
import httpx
url, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
with httpx.Client(base_url=url + "/v3", headers={"Authorization": AUTH}, limits=limits) as c:
    c.get("/targetGroups/channels").raise_for_status()
    def one(t):
        c.get(f"/targetGroups/%d/targets/{t}/communications").raise_for_status()
        body = [{"active": True, "channelId": 2, "communicationType": "START", "messageTemplate": f"Start {t}",
                 "offsetDays": 0, "sender": "", "subjectTemplate": ""}]
        c.post(f"/targetGroups/%d/targets/{t}/communications/upsert", json=body).raise_for_status()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(1, n + 1)))
""".replace("%d", str(GROUP))
)

BARE_HTTP_CLIENT = (
    AUTH
    + """
import http.client, json, sys, threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
url, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
where = urlsplit(url)
local = threading.local()
def call(method, path, body=None):
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(where.hostname, where.port)
    headers = {"Authorization": AUTH, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, "/v3" + path, body=body, headers=headers)
    reply = conn.getresponse()
    reply.read()
    if reply.status != 200:
        raise SystemExit(f"{method} {path}: HTTP {reply.status}")
call("GET", "/targetGroups/channels")
def one(t):
    call("GET", f"/targetGroups/%d/targets/{t}/communications")
    body = [{"active": True, "channelId": 2, "communicationType": "START", "messageTemplate": f"Start {t}",
             "offsetDays": 0, "sender": "", "subjectTemplate": ""}]
    call("POST", f"/targetGroups/%d/targets/{t}/communications/upsert", json.dumps(body).encode())
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(one, range(1, n + 1)))
""".replace("%d", str(GROUP))
)

CURL_LOOP = """
auth="Authorization: Basic $(printf 'sandbox:%s' "$(printf sandbox | md5sum | cut -d' ' -f1)" | base64 -w0)"
curl -sf -H "$auth" "$1/v3/targetGroups/channels" > /dev/null
for t in $(seq 1 "$2"); do
  curl -sf -H "$auth" "$1/v3/targetGroups/%d/targets/$t/communications" > /dev/null
  curl -sf -H "$auth" -H 'Content-Type: application/json' -X POST \\
    -d "[{\\"active\\": true, \\"channelId\\": 2, \\"communicationType\\": \\"START\\", \\"messageTemplate\\": \\"Start $t\\", \\"offsetDays\\": 0, \\"sender\\": \\"\\", \\"subjectTemplate\\": \\"\\"}]" \\
    "$1/v3/targetGroups/%d/targets/$t/communications/upsert" > /dev/null
done
""".replace("%d", str(GROUP))

# The floors: the least the design's libraries (SPEC: typer parses, httpx sends, PyYAML reads,
# pydantic checks) cost for the same job, in a bare script with one tiny model.
LIVE_FLOOR = (
    AUTH
    + """
import sys, typer, httpx, pydantic
class Communication(pydantic.BaseModel):
    communicationType: str
    channelId: int
with httpx.Client(base_url=sys.argv[1] + "/v3", headers={"Authorization": AUTH}) as c:
    [Communication.model_validate(x) for x in c.get("/targetGroups/4100/targets/5200/communications").json()["data"]]
"""
)
VALIDATE_FLOOR = """
import pathlib, sys, typer, yaml, pydantic
class Document(pydantic.BaseModel, extra="forbid"):
    targetGroupId: int
    defaults: dict | None = None
    targets: list[dict]
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        Document.model_validate(doc)
"""

# Peak RSS of one command: run in a fresh measuring process, so RUSAGE_CHILDREN is that command alone.
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if done.returncode not in (0, 7):
    sys.exit(f"exit {done.returncode}: {done.stderr[-2000:]}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


class Report:
    def __init__(self) -> None:
        self.missed: list[str] = []
        self.floored: list[str] = []  # missed, and the bare libraries alone already miss it too

    def target(self, what: str, figure: str, ok: bool, goal: str) -> None:
        print(f"  {what}: {figure}  (target {goal}) -> {'met' if ok else 'NOT met'}", flush=True)
        if not ok:
            self.missed.append(what)

    def floor_over_target(self, *whats: str) -> None:
        """These targets cannot be met here: the floor printed under them is over the target."""
        self.floored += [w for w in whats if w in self.missed]

    def summary(self) -> str:
        rest = [w for w in self.missed if w not in self.floored]
        if not self.missed:
            return "all targets met"
        floored = f"where the floor itself is over the target: {'; '.join(self.floored)}" if self.floored else ""
        if not rest:
            return f"every target met, except {floored}"
        return f"NOT met: {'; '.join(rest)}" + (f". Also not met, {floored}" if floored else "")

    def note(self, text: str) -> None:
        print(f"    {text}", flush=True)


def env_for(work: Path, **extra: str) -> dict[str, str]:
    """commctl from src/, no user config, state or cache, the sandbox's credentials."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_STATE_HOME": str(work / "state"),
        "XDG_CACHE_HOME": str(work / "cache"),
        "COMMCTL_USERNAME": "sandbox",
        "COMMCTL_PASSWORD": "sandbox",
        **extra,
    }
    for name in ("COMMCTL_HOST", "COMMCTL_PROFILE", "COMMCTL_CONFIG", "COMMCTL_TOKEN", "COMMCTL_RATE", "NO_COLOR"):
        if name not in extra:
            env.pop(name, None)
    return env


def best(
    cmd: list[str] | Callable[[int], list[str]], env: dict[str, str], runs: int, codes: tuple[int, ...] = (0,)
) -> float:
    """Best wall time of `runs` runs (a callable gives each run its own command)."""
    times = []
    for n in range(runs):
        args = cmd(n) if callable(cmd) else cmd
        start = time.perf_counter()
        done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in codes:
            raise SystemExit(f"{' '.join(args[:6])}...: exit {done.returncode}\n{done.stderr[-2000:]}")
    return min(times)


def every_command() -> list[list[str]]:
    import typer

    from commctl.cli import app

    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        out = []
        for name, cmd in sorted(getattr(group, "commands", {}).items()):
            out += walk(cmd, [*prefix, name]) if hasattr(cmd, "commands") else [[*prefix, name]]
        return out

    return walk(typer.main.get_group(app), [])


# ---- start-up ----


def startup(report: Report, work: Path, runs: int) -> None:
    print(f"start-up (best of {runs} fresh processes each)", flush=True)
    env = env_for(work)
    base = best([PY, "-c", "pass"], env, runs)
    print(f"  python -c pass: {base * 1000:.1f} ms", flush=True)

    def ratio(t: float) -> str:
        return f"{t * 1000:.0f} ms = {t / base:.1f}x"

    version = best([*COMMCTL, "--version"], env, runs)
    report.target("commctl --version", ratio(version), version <= 3 * base, "<= 3x")

    # Round-robin over the commands, so a burst of load from other users spoils no single command.
    commands = [[], *every_command()]
    times: dict[int, list[float]] = {i: [] for i in range(len(commands))}
    for _ in range(runs):
        for i, c in enumerate(commands):
            times[i].append(best([*COMMCTL, *c, "--help"], env, 1))
    helps = [(c, min(times[i])) for i, c in enumerate(commands)]
    worst_cmd, worst = max(helps, key=lambda h: h[1])
    report.target(
        f"--help of all {len(helps)} commands (slowest: {' '.join(['commctl', *worst_cmd, '--help'])})",
        ratio(worst),
        worst <= 10 * base,
        "<= 10x",
    )
    report.note("each: " + ", ".join(f"{' '.join(c) or 'commctl'} {t / base:.1f}x" for c, t in helps))

    validate = best([*COMMCTL, "validate", str(ROOT / "sample-configs")], env, runs)
    report.target("validate sample-configs/", ratio(validate), validate <= 10 * base, "<= 10x")
    if validate > 10 * base:
        floor = best([PY, "-c", VALIDATE_FLOOR, str(ROOT / "sample-configs")], env, runs)
        report.note(
            f"floor: a bare script importing typer, yaml and pydantic and checking the YAML samples "
            f"with one model: {ratio(floor)}; commctl adds {(validate - floor) * 1000:.0f} ms"
            + ("" if floor <= 10 * base else " -- the floor is over the target before commctl does anything")
        )
        if floor > 10 * base:
            report.floor_over_target("validate sample-configs/")

    sandbox = start_sandbox(work / "startup.db")
    try:
        live = env_for(work, COMMCTL_HOST=sandbox.url)
        show = best([*COMMCTL, "show", "-g", "4100", "-t", "5200"], live, runs)
        one = ["upsert", "-g", "4100", "-t", "5200", "--type", "START", "-c", "2"]
        upsert = best(lambda n: [*COMMCTL, *one, "--message", f"run {n} {time.time()}"], live, runs)
        floor = best([PY, "-c", LIVE_FLOOR, sandbox.url], live, runs)
        httpie = shutil.which("http")
        httpie_time = (
            best(
                [httpie, "--ignore-stdin", "-a", "sandbox:x", f"{sandbox.url}/v3/targetGroups/channels"],
                live,
                runs,
                (0, 4),
            )
            if httpie
            else None
        )
    finally:
        stop_sandbox(sandbox)
    live_cases = (("show -g 4100 -t 5200 (live, loopback)", show), ("one-item upsert (live, loopback)", upsert))
    for what, t in live_cases:
        report.target(what, ratio(t), t <= 10 * base, "<= 10x")
    if floor > 10 * base:
        report.floor_over_target(*(what for what, _ in live_cases))
    report.note(
        f"floor: a bare script importing typer, httpx and pydantic, sending the one GET and checking the reply "
        f"with one model: {ratio(floor)}; commctl adds {(show - floor) * 1000:.0f} ms (show), "
        f"{(upsert - floor) * 1000:.0f} ms (upsert, which also reads before it writes)"
        + ("" if floor <= 10 * base else " -- the floor is over the target before commctl does anything")
    )
    report.note(
        f"HTTPie sending one request: {ratio(httpie_time)}"
        if httpie_time
        else "HTTPie not installed (pip install httpie to compare)"
    )


# ---- bulk ----


def write_seed(path: Path, targets: int) -> Path:
    """A sandbox seed: two channels, group GROUP with targets 1..`targets`, the sandbox's credentials."""
    path.write_text(
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}]\n"
        f"targetGroups:\n- id: {GROUP}\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in range(1, targets + 1))
        + "credentials:\n  basic: [{username: sandbox, password: sandbox}]\n"
    )
    return path


def write_bulk_inputs(work: Path, n: int) -> tuple[Path, Path]:
    seed = write_seed(work / f"seed-{n}.yaml", n)
    comms = work / f"comms-{n}.yaml"
    comms.write_text(
        f"targetGroupId: {GROUP}\ntargets:\n"
        + "".join(
            f"- targetId: {t}\n  communications:\n  - {{communicationType: START, channelId: 2, "
            f"messageTemplate: 'Start {t}'}}\n"
            for t in range(1, n + 1)
        )
    )
    return seed, comms


def against_fresh_sandbox(
    work: Path, seed: Path, name: str, cmd: list[str], runs: int, *flags: str, env: dict[str, str] | None = None
) -> float:
    """Best wall time of `runs` runs, each against a new sandbox state (so every run creates everything)."""
    times = []
    for n in range(runs):
        sandbox = start_sandbox(work / f"{name}-{n}.db", "--seed", str(seed), *flags)
        try:
            args = [c.replace("{url}", sandbox.url) for c in cmd]
            start = time.perf_counter()
            done = subprocess.run(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_for(work, **(env or {})), text=True
            )
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
        finally:
            stop_sandbox(sandbox)
    return min(times)


def bulk(report: Report, work: Path, n: int, workers: int, runs: int, curl_runs: int) -> None:
    requests = 2 * n + 1
    print(f"bulk: {n} new targets, {requests} requests, concurrency {workers}, best of {runs}", flush=True)
    seed, comms = write_bulk_inputs(work, n)
    upsert = [
        *COMMCTL,
        "upsert",
        "-f",
        str(comms),
        "--host",
        "{url}",
        "-q",
        "-o",
        "json",
        "--concurrency",
        str(workers),
    ]
    ours = against_fresh_sandbox(work, seed, "commctl", upsert, runs)
    shm = Path("/dev/shm")
    # The journal (SPEC 8.1) syncs each write's record to disk before the write is sent; on tmpfs
    # that costs nothing, which shows what the durability costs on this machine's disk.
    tmpfs = (
        against_fresh_sandbox(
            work, seed, "tmpfs", upsert, runs, env={"COMMCTL_JOURNAL_DIR": str(shm / f"commctl-bench-{os.getpid()}")}
        )
        if shm.is_dir()
        else None
    )
    bare = against_fresh_sandbox(work, seed, "httpx", [PY, "-c", BARE_HTTPX, "{url}", str(n), str(workers)], runs)
    floor = against_fresh_sandbox(
        work, seed, "stdlib", [PY, "-c", BARE_HTTP_CLIENT, "{url}", str(n), str(workers)], runs
    )
    print(
        f"  commctl {ours:.2f} s ({requests / ours:.0f} req/s), bare httpx {bare:.2f} s ({requests / bare:.0f} req/s), "
        f"bare http.client {floor:.2f} s ({requests / floor:.0f} req/s, the floor)",
        flush=True,
    )
    report.target("commctl vs bare httpx", f"{bare / ours:.2f}x its speed", bare / ours >= 0.9, ">= 0.9x")
    if tmpfs is not None:
        shutil.rmtree(shm / f"commctl-bench-{os.getpid()}", ignore_errors=True)
        report.note(
            f"with the journal on tmpfs (no disk sync): commctl {tmpfs:.2f} s = {bare / tmpfs:.2f}x bare httpx's speed; "
            f"the journal's syncs to disk cost {ours - tmpfs:.2f} s of this run"
        )
    report.note(f"the stdlib floor is {bare / floor:.2f}x as fast as bare httpx (what httpx itself costs)")
    if curl_runs <= 0:
        print("  shell loop of curl: skipped (--curl-runs 0)", flush=True)
    elif shutil.which("curl"):
        curl = against_fresh_sandbox(work, seed, "curl", ["bash", "-c", CURL_LOOP, "loop", "{url}", str(n)], curl_runs)
        print(f"  shell loop of curl {curl:.2f} s", flush=True)
        report.target("commctl vs a shell loop of curl", f"{curl / ours:.1f}x faster", curl / ours >= 10, ">= 10x")
    else:
        print("  curl not installed: shell-loop comparison skipped (apt-get install curl)", flush=True)


# ---- memory ----


def peak_rss(cmd: list[str], env: dict[str, str]) -> int:
    out = subprocess.run([PY, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return int(out.stdout.strip()) * 1024


def memory(report: Report, work: Path, scale: float, workers: int) -> None:
    print("memory: peak RSS (sandbox serve in its own process)", flush=True)
    for command, total, limit in (("upsert --dry-run", 20_000, 100), ("diff", 50_000, 150)):
        total = int(total * scale)
        directory = work / f"memory-{total}"
        communications(directory, total)  # the shape tests/test_memory.py traces
        targets = total // len(TYPES)
        seed = write_seed(work / f"memory-seed-{targets}.yaml", targets)
        sandbox = start_sandbox(work / f"memory-{total}.db", "--seed", str(seed))
        try:
            args = [*COMMCTL, *command.split(), "-f", str(directory), "--host", sandbox.url, "-q", "-o", "json"]
            args += ["--concurrency", str(workers)]
            start = time.perf_counter()
            rss = peak_rss(args, env_for(work))
            took = time.perf_counter() - start
        finally:
            stop_sandbox(sandbox)
        report.target(
            f"{command} of {total:,} communications ({targets:,} targets, 10 files, {took:.1f} s)",
            f"{rss / MIB:.0f} MiB",
            rss <= limit * MIB,
            f"<= {limit} MiB",
        )


# ---- rate limits ----


def rate(report: Report, work: Path, n: int, limit: int, workers: int) -> None:
    requests = 2 * n + 1
    allowed = requests / limit
    print(
        f"rate limits: {n} new targets ({requests} requests) against sandbox serve --rate-limit {limit}/s "
        f"(the limit allows {allowed:.1f} s)",
        flush=True,
    )
    seed, comms = write_bulk_inputs(work, n)
    for label, extra in (("adaptive (no --rate)", []), (f"--rate {limit}", ["--rate", str(limit)])):
        sandbox = start_sandbox(
            work / f"rate-{len(extra)}.db", "--seed", str(seed), "--rate-limit", f"{limit}/s", "--verbose"
        )
        assert sandbox.process is not None and sandbox.process.stderr is not None
        stream, lines = sandbox.process.stderr, list[str]()
        # Read its request log as it comes: a full pipe would stall the server.
        reader = threading.Thread(target=lines.extend, args=(iter(stream.readline, ""),), daemon=True)
        reader.start()
        try:
            args = [*COMMCTL, "upsert", "-f", str(comms), "--host", sandbox.url, "-q", "-o", "json", "--retries", "8"]
            start = time.perf_counter()
            done = subprocess.run(
                [*args, "--concurrency", str(workers), *extra], capture_output=True, text=True, env=env_for(work)
            )
            took = time.perf_counter() - start
        finally:
            sandbox.process.terminate()
            sandbox.process.wait(timeout=10)
            reader.join(timeout=10)
            stop_sandbox(sandbox)
        statuses = re.findall(r" /v3/\S* (\d{3})\b", "".join(lines))
        refused = statuses.count("429")
        share = refused / max(len(statuses), 1)
        if done.returncode != 0:
            report.target(f"{label}: complete", f"exit {done.returncode}: {done.stderr[-300:]}", False, "exit 0")
            continue
        report.target(f"{label}: answered 429", f"{refused} of {len(statuses)} = {share:.1%}", share <= 0.05, "<= 5%")
        report.target(f"{label}: time", f"{took:.1f} s = {took / allowed:.2f}x", took <= 1.25 * allowed, "<= 1.25x")


# ---- piped tables ----


def tables(report: Report, rows: int, pairs: int) -> None:
    """A piped table (tab-separated) against `-o json` of the same rows, rendered in this process:
    whole commands would mostly time their start-up and file loading, which both share."""
    import io
    import statistics

    from commctl import render
    from commctl.models import Communication
    from commctl.options import OutputOptions
    from commctl.runtime import Run

    print(f"piped tables: {rows} rows of show, table (tab-separated) vs -o json, median of {pairs} pairs", flush=True)
    data = [
        Communication(
            id=n,
            targetGroupId=GROUP,
            targetId=1 + n // 4,
            communicationType=TYPES[n % 4],
            channelId=2,
            messageTemplate=f"Hello {{{{first_name}}}}, {n} days left!\n" * 3,
        ).api_dict()
        for n in range(rows)
    ]

    def emit(output: str) -> float:
        run = Run(OutputOptions(output=output))
        run.out_stream = io.StringIO()  # not a terminal: what a pipe gets
        start = time.perf_counter()
        run.emit(data, lambda: render.comms_table(data, {2: "EMAIL"}))
        return time.perf_counter() - start

    ratios = []
    for _ in range(pairs):  # interleaved: both formats see the same load
        as_json = emit("json")
        ratios.append(emit("table") / as_json)
    ratio = statistics.median(ratios)
    report.target("piped table vs -o json", f"{ratio:.2f}x", ratio <= 1.5, "<= 1.5x")


# ---- scale ----


def scale(report: Report, work: Path, sizes: list[int]) -> None:
    """CPU per communication of validate, diff and upsert --dry-run at the smallest and largest size, per file shape."""
    from benchmarks import scale as s

    print(
        f"scale: CPU per communication at {sizes[-1]:,} vs {sizes[0]:,} communications, start-up taken off",
        flush=True,
    )
    env = s.seed(work, max(sizes) // 4)
    base = s.start_up(work, env, list(s.COMMANDS), 3)
    for shape in s.SHAPES:
        for name in s.COMMANDS:
            figures = list(s.runs(work, env, base, shape, name, sizes, 1))
            (_, _, _, small, _), (_, wall, _, large, rss) = figures[0], figures[-1]
            report.target(
                f"{name}, {shape}",
                f"{small * 1e6:.0f} -> {large * 1e6:.0f} us = {large / small:.2f}x ({wall:.1f} s, {rss:.0f} MiB at {sizes[-1]:,})",
                large / small <= 1.5,
                "<= 1.5x",
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="startup,bulk,memory,rate,tables,scale", help="sections to run, comma-separated"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs (about a minute)")
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--targets", type=int, default=2000, help="bulk upsert size")
    parser.add_argument("--runs", type=int, default=3, help="bulk runs per client (best kept)")
    parser.add_argument("--curl-runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--memory-scale", type=float, default=1.0, help="fraction of 20,000 / 50,000 communications")
    parser.add_argument("--rate-limit", type=int, default=100, help="the sandbox's limit, requests per second")
    parser.add_argument("--rate-targets", type=int, default=1000)
    parser.add_argument("--table-rows", type=int, default=20_000)
    parser.add_argument("--scale-sizes", default="5000,50000", help="smallest and largest, comma-separated")
    args = parser.parse_args()
    if args.quick:
        args.startup_runs, args.targets, args.runs, args.memory_scale = 5, 500, 1, 0.2
        args.rate_targets, args.rate_limit = 300, 100
        args.table_rows, args.scale_sizes = 5000, "1000,10000"
    sections = set(args.only.split(","))
    import typer

    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}, typer {typer.__version__}"
    )
    # An installed commctl runs from bytecode pip compiled at install; from src/ under
    # PYTHONDONTWRITEBYTECODE every run would compile it again (about 25 ms of each start-up).
    compileall.compile_dir(ROOT / "src" / "commctl", quiet=1)
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "startup" in sections:
            startup(report, work, args.startup_runs)
        if "bulk" in sections:
            bulk(report, work, args.targets, args.concurrency, args.runs, args.curl_runs)
        if "memory" in sections:
            memory(report, work, args.memory_scale, args.concurrency)
        if "rate" in sections:
            rate(report, work, args.rate_targets, args.rate_limit, args.concurrency)
        if "tables" in sections:
            tables(report, args.table_rows, 7)
        if "scale" in sections:
            (work / "scale").mkdir()
            scale(report, work / "scale", [int(n) for n in args.scale_sizes.split(",")])
    print(report.summary())


if __name__ == "__main__":
    main()
