"""Start-up time of the ``hub-models`` command, each run a fresh process as from a shell (hyperfine-style: a warm-up
run, then repeats; mean, median, min and standard deviation in seconds), with the machine's load average:

- ``--version``, ``--help`` and ``list`` (its catalog cached, as from the second listing on): goal 1.5 s;
- ``list`` with a cold cache (the first listing after an install or an edit of a plugin: imports every plugin);
- ``generate gan-toy2d`` (a whole command that loads a model and writes a PNG): must not get slower.

``--baseline DIR`` (a checkout of another hub-models version, e.g. ``git worktree add /tmp/base <commit>``) runs
the same commands from it too, interleaved run by run with this checkout's, so both see the same load; the JSON
then has the ratio of the medians (this checkout / baseline) per command.

    python benchmarks/bench_cli.py [--repeats 5] [--baseline DIR] [--out benchmarks/results/cli.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import write_result

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 1.5
COMMANDS = {
    "version": ["--version"],
    "help": ["--help"],
    "list": ["list"],
    "list_cold_cache": ["list"],
    "generate_gan_toy2d": ["generate", "gan-toy2d", "-n", "16", "-o", "{tmp}/samples.png"],
}


def run_once(checkout: Path, name: str, tmp: Path) -> float:
    """Seconds for one ``hub-models`` command run from ``checkout`` (its package first on the path)."""
    args = [a.format(tmp=tmp) for a in COMMANDS[name]]
    cache = Path(tempfile.mkdtemp(dir=tmp)) if name == "list_cold_cache" else tmp / f"cache-{checkout.name}"
    env = {**os.environ, "PYTHONPATH": str(checkout), "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-m", "hub_models.cli", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def summary(times: list[float]) -> dict[str, float]:
    return {
        "mean_s": round(statistics.mean(times), 3),
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "stdev_s": round(statistics.stdev(times), 3) if len(times) > 1 else 0.0,
        "runs": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="a checkout of another version to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli.json")
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    load_before = os.getloadavg()
    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in COMMANDS} for label in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for name in COMMANDS:
            for checkout in checkouts.values():
                run_once(checkout, name, Path(tmp))  # warm-up: the OS file cache, the catalog file
            for _ in range(args.repeats):
                for label, checkout in checkouts.items():  # interleaved: both see the same load
                    times[label][name].append(run_once(checkout, name, Path(tmp)))
    result: dict = {
        "benchmark": "cli_startup_s",
        "goal_s": GOAL_S,
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    for label in checkouts:
        result[label] = {name: summary(times[label][name]) for name in COMMANDS}
    result["meets_goal"] = all(result["this"][n]["median_s"] <= GOAL_S for n in ("version", "help", "list"))
    if args.baseline:
        result["baseline_dir"] = str(args.baseline)
        result["ratio_this_over_baseline"] = {
            name: round(result["this"][name]["median_s"] / result["baseline"][name]["median_s"], 3) for name in COMMANDS
        }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
