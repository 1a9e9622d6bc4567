"""Benchmarks: start-up and bulk upsert, printed as ratios measured in the same run.

    python benchmarks/run.py [--targets 500]

Start-up: `commctl --version` against `python -c pass` (target: within 3x), `commctl --help`
(target: under 150 ms). Bulk: `upsert -f` of N targets against `commctl sandbox serve`, against a
shell loop of curl calls doing the same requests (target: 10x faster) and a bare httpx keep-alive
client with the same concurrency (target: at least 80% of its speed). Memory: peak RSS of the
upsert at N/5 and N targets (target: flat). Every bulk run starts from a fresh sandbox state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import start_sandbox, stop_sandbox  # noqa: E402

PY = sys.executable
COMMCTL = [PY, "-m", "commctl"]
ENV = {**os.environ, "COMMCTL_PASSWORD": "sandbox"}
GROUP = 900

BARE_CLIENT = """
import base64, hashlib, json, sys
from concurrent.futures import ThreadPoolExecutor
import httpx
url, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"sandbox:" + hashlib.md5(b"sandbox").hexdigest().encode()).decode()
with httpx.Client(base_url=url, headers={"Authorization": auth},
                  limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers)) as c:
    c.get("/v3/targetGroups/channels").raise_for_status()
    def one(t):
        c.get(f"/v3/targetGroups/%d/targets/{t}/communications").raise_for_status()
        body = [{"active": True, "channelId": 2, "communicationType": "START", "messageTemplate": f"Start {t}",
                 "offsetDays": 0, "sender": "", "subjectTemplate": ""}]
        c.post(f"/v3/targetGroups/%d/targets/{t}/communications/upsert", json=body).raise_for_status()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(1, n + 1)))
""".replace("%d", str(GROUP))

CURL_LOOP = """
auth="Authorization: Basic $(printf 'sandbox:%s' "$(printf sandbox | md5sum | cut -d' ' -f1)" | base64 -w0)"
curl -sf -H "$auth" "$1/v3/targetGroups/channels" > /dev/null
for t in $(seq 1 "$2"); do
  curl -sf -H "$auth" "$1/v3/targetGroups/%d/targets/$t/communications" > /dev/null
  curl -sf -H "$auth" -H 'Content-Type: application/json' -X POST \
    -d "[{\\"active\\": true, \\"channelId\\": 2, \\"communicationType\\": \\"START\\", \\"messageTemplate\\": \\"Start $t\\", \\"offsetDays\\": 0, \\"sender\\": \\"\\", \\"subjectTemplate\\": \\"\\"}]" \
    "$1/v3/targetGroups/%d/targets/$t/communications/upsert" > /dev/null
done
""".replace("%d", str(GROUP))


def best(cmd: list[str], runs: int = 7, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return min(times)


def write_inputs(work: Path, n: int) -> tuple[Path, Path]:
    seed = work / f"seed-{n}.yaml"
    seed.write_text(
        "channels: [{id: 1, name: SMS}, {id: 2, name: EMAIL}]\n"
        f"targetGroups:\n- id: {GROUP}\n  targets:\n"
        + "".join(f"  - {{id: {t}}}\n" for t in range(1, n + 1))
        + "credentials:\n  basic: [{username: sandbox, password: sandbox}]\n"
    )
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


def timed_against_fresh_sandbox(work: Path, seed: Path, name: str, cmd: list[str], runs: int = 3) -> float:
    """Best wall time of `runs` runs, each against a new sandbox state (so every run creates everything)."""
    times = []
    for n in range(runs):
        sandbox = start_sandbox(work / f"{name}-{n}.db", "--seed", str(seed))
        try:
            start = time.perf_counter()
            subprocess.run(
                [c.replace("{url}", sandbox.url) for c in cmd], check=True, stdout=subprocess.DEVNULL, env=ENV
            )
            times.append(time.perf_counter() - start)
        finally:
            stop_sandbox(sandbox)
    return min(times)


def rss_kib(cmd: list[str]) -> int:
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    return int(out.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    n, workers = args.targets, args.concurrency

    base = best([PY, "-c", "pass"])
    version = best(
        [*COMMCTL[:1], "-c", "import sys; sys.argv=['commctl','--version']; from commctl.__main__ import main; main()"]
    )
    script = shutil.which("commctl")
    if script:
        version = min(version, best([script, "--version"]))
    help_time = best([script or PY, *([] if script else ["-m", "commctl"]), "--help"])
    print(
        f"start-up: python -c pass {base * 1000:.0f} ms, commctl --version {version * 1000:.0f} ms "
        f"-> ratio {version / base:.2f} (target <= 3)"
    )
    print(f"start-up: commctl --help {help_time * 1000:.0f} ms (target < 150 ms)")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed, comms = write_inputs(work, n)
        upsert = [
            *COMMCTL,
            "upsert",
            "-f",
            str(comms),
            "--host",
            "{url}",
            "--username",
            "sandbox",
            "-q",
            "-o",
            "json",
            "--concurrency",
            str(workers),
        ]
        ours = timed_against_fresh_sandbox(work, seed, "commctl", upsert)
        bare = timed_against_fresh_sandbox(work, seed, "bare", [PY, "-c", BARE_CLIENT, "{url}", str(n), str(workers)])
        print(
            f"bulk ({n} targets, {2 * n + 1} requests): commctl {ours:.2f} s, bare httpx {bare:.2f} s "
            f"-> commctl runs at {bare / ours:.0%} of bare httpx speed (target >= 80%)"
        )
        if shutil.which("curl"):
            curl = timed_against_fresh_sandbox(work, seed, "curl", ["bash", "-c", CURL_LOOP, "loop", "{url}", str(n)])
            print(f"bulk: shell loop of curl {curl:.2f} s -> commctl is {curl / ours:.1f}x faster (target >= 10x)")
        else:
            print("bulk: curl not installed; skipped the shell-loop comparison (apt-get install curl)")

        small_seed, small_comms = write_inputs(work, max(n // 5, 1))
        peaks = []
        for s, c, label in ((small_seed, small_comms, "small"), (seed, comms, "large")):
            sandbox = start_sandbox(work / f"rss-{label}.db", "--seed", str(s))
            try:
                cmd = [a.replace("{url}", sandbox.url) for a in upsert]
                cmd[cmd.index("-f") + 1] = str(c)
                peaks.append(rss_kib(cmd))
            finally:
                stop_sandbox(sandbox)
        print(
            f"memory: peak RSS {peaks[0] / 1024:.1f} MiB at {max(n // 5, 1)} targets, {peaks[1] / 1024:.1f} MiB at "
            f"{n} targets -> ratio {peaks[1] / peaks[0]:.2f} for {n / max(n // 5, 1):.0f}x the targets"
        )


if __name__ == "__main__":
    main()
