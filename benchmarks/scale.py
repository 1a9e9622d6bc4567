"""Scale (SPEC 9): `validate`, `diff` and `upsert --dry-run` per communication, from 1k to 50k, per file shape.

    python benchmarks/scale.py [--sizes 1000,10000,50000] [--shapes document,documents,json-list]

Shapes: one document per file; many documents per file (`---`, one target each); a JSON file holding
a list of such documents. Files hold at most 5,000 communications each (the 8 MiB limit), so 50k is
ten files (one directory). `diff` and `upsert --dry-run` run against the in-process sandbox (`--host sandbox`),
seeded with every target and empty, so every communication is a would-create. Each command runs in
a fresh process; printed: wall time, microseconds per communication once the start-up (the same
command on 4 communications) is taken off, peak RSS, and the ratio of that cost per communication
at the largest size to the smallest (target: about 1, no quadratic step).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.test_scale import GROUP, SHAPES, write_files  # noqa: E402  (the files the scaling test counts work on)

MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - t
if done.returncode not in (0, 7):
    sys.exit(f"exit {done.returncode}: {done.stderr[-2000:]}")
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def seed(directory: Path, targets: int) -> dict[str, str]:
    """A sandbox state with group GROUP and `targets` targets; the environment that points commctl at it."""
    import yaml

    seed_file = directory / "seed.yaml"
    seed_file.write_text(
        yaml.safe_dump(
            {
                "channels": [{"id": 1, "name": "SMS"}, {"id": 2, "name": "EMAIL"}],
                "targetGroups": [
                    {
                        "id": GROUP,
                        "name": "scale",
                        "targets": [{"id": t, "name": f"t{t}"} for t in range(1, targets + 1)],
                    }
                ],
                "credentials": {"basic": [{"username": "sandbox", "password": "sandbox"}]},
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COMMCTL_SANDBOX_DB": str(directory / "sandbox.db")}
    env = {k: v for k, v in env.items() if not k.startswith("COMMCTL_") or k == "COMMCTL_SANDBOX_DB"}
    subprocess.run(
        [sys.executable, "-m", "commctl", "sandbox", "reset", "--seed", str(seed_file)],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of `commctl ARGS` in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "commctl", *args], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"commctl {' '.join(args[:2])} failed: {out.stderr}")
    seconds, rss_kib = out.stdout.split()
    return float(seconds), int(rss_kib) / 1024


COMMANDS = {
    "validate": lambda paths: ["validate", *paths],
    "diff": lambda paths: ["diff", "--host", "sandbox", "-o", "json", *(a for p in paths for a in ("-f", p))],
    "upsert --dry-run": lambda paths: [
        "upsert",
        "--host",
        "sandbox",
        "--dry-run",
        "-o",
        "json",
        *(a for p in paths for a in ("-f", p)),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--commands", default=",".join(COMMANDS))
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        env = seed(Path(tmp), max(sizes) // 4)
        one = Path(tmp) / "one"
        one.mkdir()
        write_files(one, "document", 4)
        base = {
            name: min(measure(COMMANDS[name]([str(one)]), env)[0] for _ in range(3))
            for name in opts.commands.split(",")
        }
        print("start-up (4 communications): " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in base.items()))
        print(f"{'command':<17} {'shape':<10} {'comms':>6} {'seconds':>8} {'us/comm':>8} {'peak RSS':>9}")
        for shape in opts.shapes.split(","):
            for name in opts.commands.split(","):
                costs = []
                for size in sizes:
                    directory = Path(tmp) / f"{shape}-{size}"
                    if not directory.exists():
                        directory.mkdir()
                        write_files(directory, shape, size)
                    seconds, rss = measure(COMMANDS[name]([str(directory)]), env)
                    per = (seconds - base[name]) / size  # the cost of the communications, start-up aside
                    costs.append(per)
                    print(
                        f"{name:<17} {shape:<10} {size:>6} {seconds:>8.2f} {per * 1e6:>8.1f} {rss:>7.0f} MiB",
                        flush=True,
                    )
                print(
                    f"{name:<17} {shape:<10} cost per communication at {sizes[-1]} / at {sizes[0]}: {costs[-1] / costs[0]:.2f}"
                )


if __name__ == "__main__":
    main()
