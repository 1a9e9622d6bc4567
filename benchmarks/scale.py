"""Scale (SPEC 9): `validate`, `diff` and `upsert --dry-run` per communication, from 1k to 50k, per file shape.

    python benchmarks/scale.py [--sizes 1000,10000,50000] [--shapes document,documents,json-list]

Shapes: one document per file; many documents per file (`---`, one target each); a JSON file holding
a list of such documents. Files hold at most 5,000 communications each (the 8 MiB limit), so 50k is
ten files (one directory). `diff` and `upsert --dry-run` run against the in-process sandbox (`--host sandbox`),
seeded with every target and empty, so every communication is a would-create. Each command runs in
a fresh process, best of --repeat; printed: wall and CPU time (CPU time is what other users of a
shared machine disturb least), CPU microseconds per communication once the start-up (the same
command on 4 communications) is taken off, peak RSS, and the ratio of that cost per communication at
the largest size to the smallest (target: about 1, no quadratic step). tests/test_scale.py checks
the same property exactly, by counting lines executed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
from tests.test_scale import GROUP, SHAPES, write_files  # noqa: E402  (the files the scaling test counts work on)

MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - t
if done.returncode not in (0, 7):
    sys.exit(f"exit {done.returncode}: {done.stderr[-2000:]}")
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
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


def measure(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, float]:
    """Best wall seconds, best CPU seconds and peak RSS (MiB) of `commctl ARGS`, each run a fresh process."""
    runs = []
    for _ in range(repeat):
        cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "commctl", *args]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"commctl {' '.join(args[:2])} failed: {out.stderr}")
        wall, cpu, rss_kib = out.stdout.split()
        runs.append((float(wall), float(cpu), int(rss_kib) / 1024))
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


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


def start_up(tmp: Path, env: dict[str, str], names: list[str], repeat: int) -> dict[str, float]:
    """CPU seconds of each command on 4 communications: what is taken off to get a cost per communication."""
    one = tmp / "one"
    one.mkdir(exist_ok=True)
    write_files(one, "document", 4)
    return {name: measure(COMMANDS[name]([str(one)]), env, repeat)[1] for name in names}


def runs(
    tmp: Path, env: dict[str, str], base: dict[str, float], shape: str, name: str, sizes: list[int], repeat: int
) -> Iterator[tuple[int, float, float, float, float]]:
    """(size, wall s, CPU s, CPU s per communication with start-up taken off, peak RSS MiB) for each size."""
    for size in sizes:
        directory = tmp / f"{shape}-{size}"
        if not directory.exists():
            directory.mkdir()
            write_files(directory, shape, size)
        wall, cpu, rss = measure(COMMANDS[name]([str(directory)]), env, repeat)
        yield size, wall, cpu, (cpu - base[name]) / size, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is kept")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    names = opts.commands.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        env = seed(Path(tmp), max(sizes) // 4)
        base = start_up(Path(tmp), env, names, opts.repeat + 1)
        print("start-up CPU (4 communications): " + ", ".join(f"{name} {cpu:.2f} s" for name, cpu in base.items()))
        print(
            f"{'command':<17} {'shape':<10} {'comms':>6} {'wall s':>7} {'CPU s':>6} {'CPU us/comm':>11} {'peak RSS':>9}"
        )
        for shape in opts.shapes.split(","):
            for name in names:
                costs = []
                for size, wall, cpu, per, rss in runs(Path(tmp), env, base, shape, name, sizes, opts.repeat):
                    costs.append(per)
                    print(
                        f"{name:<17} {shape:<10} {size:>6} {wall:>7.2f} {cpu:>6.2f} {per * 1e6:>11.1f} {rss:>5.0f} MiB",
                        flush=True,
                    )
                print(
                    f"{name:<17} {shape:<10} CPU per communication at {sizes[-1]} / at {sizes[0]}: {costs[-1] / costs[0]:.2f}"
                )


if __name__ == "__main__":
    main()
