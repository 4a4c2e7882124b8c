"""Start-up cost: ``import hummingface`` and ``python -m hummingface info``, median of several fresh processes.

python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    commands = {
        "import hummingface": [sys.executable, "-c", "import hummingface"],
        "python -m hummingface info": [sys.executable, "-m", "hummingface", "info"],
    }
    for name, command in commands.items():
        print(f"{name:<30}{median_seconds(command, args.runs):6.2f} s")


if __name__ == "__main__":
    main()
