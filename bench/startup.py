"""Start-up cost of the CLI: ``osmgap --help`` against a bare ``python -c "import numpy"``.

Issue 13's target is a ratio <= 3. Both are timed alternately in one run (the machine is shared
and noisy), best of N each, in fresh interpreters as a user's shell starts them.

    .venv/bin/python bench/startup.py [--runs 7]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time


def best_of(cmd: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cases = {"python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
             "osmgap --help": [sys.executable, "-m", "osmgap", "--help"],
             "osmgap diff --help": [sys.executable, "-m", "osmgap", "diff", "--help"],
             "osmgap --version": [sys.executable, "-m", "osmgap", "--version"]}
    seconds = {name: best_of(cmd, args.runs) for name, cmd in cases.items()}
    base = seconds["python -c 'import numpy'"]
    for name, s in seconds.items():
        print(f"{name:28s} {s:6.3f} s  ratio {s / base:4.2f}")
    print(f"target: osmgap --help <= 3x import numpy: {'met' if seconds['osmgap --help'] <= 3 * base else 'NOT met'}")


if __name__ == "__main__":
    main()
