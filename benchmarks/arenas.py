"""Resident memory of the studio's work spread over many threads, in one process: glibc's malloc arenas.

    python -m benchmarks.arenas [--rounds 8] [--threads 16] [--out docs/benchmarks/load-rss-inprocess.json]

The app's soak (``benchmarks/load.py``) takes 20 minutes to show its resident memory climbing; this shows the
same in a few, on one core. Each setting runs in a fresh process, which loads the shipped weights and then
repeats a round of what the soak's users do (20 ``design``, 4 ``generate_note``, 4 ``explore``, one SFZ export,
one 16-s MIDI render, one upsample of a 10-minute stereo WAV), one call at a time but each on the next of
``--threads`` worker threads, as Gradio hands requests to whichever of its threads is free:

- ``main``: every call on the main thread (one malloc arena);
- ``threads``: on the workers, glibc's default (an arena per thread, up to 8 per core);
- ``threads+trim``: the same, with the app's cache sweep (``studio.sweep_every``) trimming every minute;
- ``threads+limit``: after ``studio.limit_malloc_arenas(2)``, as ``app.py`` starts;
- ``threads+limit+trim``: both, as the app runs now.

Per round: resident memory (VmRSS, MB) at its end and its peak (sampled every 0.5 s), and Python's live object
count after ``gc.collect()`` (flat if nothing is retained); at the end, resident memory after ``malloc_trim``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.load import long_song, short_song

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("main", "threads", "threads+trim", "threads+limit", "threads+limit+trim")


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def run(setting: str, rounds: int, threads: int) -> dict:
    """One setting, in this process: ``{"rounds": [...], "after_trim_mb": ...}``."""
    import numpy as np
    import torch

    from hummingface.instruments.source import Design
    from hummingface.studio import Studio, limit_malloc_arenas, sweep, sweep_every, trim_memory
    from hummingface.vibrato import Vibrato

    torch.set_num_threads(1)
    if "limit" in setting:
        assert limit_malloc_arenas(2), "not glibc, or MALLOC_ARENA_MAX is set"
    with tempfile.TemporaryDirectory(prefix="hummingface-arenas-") as work:
        work = Path(work)
        song, midi, out = long_song(work / "song.wav", 10.0), short_song(work / "chords.mid"), work / "out"
        out.mkdir()
        studio = Studio.load(keep_seconds=60)
        if "trim" in setting:
            sweep_every(out, 60, every_seconds=60)
        workers = [ThreadPoolExecutor(1) for _ in range(threads if setting != "main" else 0)]
        calls = [0]

        def call(fn, *args):
            calls[0] += 1
            return workers[calls[0] % len(workers)].submit(fn, *args).result() if workers else fn(*args)

        peak = [0.0]

        def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_mb())
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        rng, sliders, design = np.random.default_rng(0), [0.0] * 16, Design(model="cvae", sliders=(0.0,) * 16)
        rows = []
        for _ in range(rounds):
            peak[0], started = 0.0, time.monotonic()
            for _ in range(20):
                index = rng.integers(4)
                sliders[index] = float(np.clip(sliders[index] + rng.uniform(-0.3, 0.3), -4, 4))
                call(studio.design, "cvae", sliders, 60, None, Vibrato())
            for _ in range(4):
                call(studio.generate_note, "gan", int(rng.integers(36, 85)), "keyboard", 100, int(rng.integers(999)))
                call(studio.explore, "cvae", 1, 2, (float(rng.uniform(80, 480)), float(rng.uniform(60, 420))))
            call(studio.export_instrument, design, "sfz", (24, 96), 3, "", out / "instruments")
            call(studio.render_midi, design, str(midi), out / "rendered")
            call(studio.upsample, str(song), "model", out / "upsampled")
            gc.collect()
            rows.append({"rss_mb": round(rss_mb()), "peak_mb": round(max(peak[0], rss_mb())),
                         "python_objects": len(gc.get_objects()), "seconds": round(time.monotonic() - started, 1)})
            sweep(out, 60)
            print(setting, rows[-1], flush=True)
        trim_memory()
        return {"rounds": rows, "after_trim_mb": round(rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=16, help="worker threads (Gradio's pool has up to 40)")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--out", default="docs/benchmarks/load-rss-inprocess.json")
    parser.add_argument("--one", choices=SETTINGS, help=argparse.SUPPRESS)  # a child process: one setting
    args = parser.parse_args()
    if not (1 <= args.rounds <= 30 and 1 <= args.threads <= 64):
        parser.error("keep it bounded: 1-30 rounds, 1-64 threads")
    if args.one:
        print(json.dumps(run(args.one, args.rounds, args.threads)))
        return
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    env.setdefault("OMP_NUM_THREADS", "1")
    report = {"command": "python -m benchmarks.arenas " + " ".join(sys.argv[1:]), "rounds": args.rounds,
              "threads": args.threads, "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "settings": {}}
    for setting in args.settings:
        child = subprocess.run([sys.executable, "-m", "benchmarks.arenas", "--one", setting, "--rounds",
                                str(args.rounds), "--threads", str(args.threads)], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=True)
        report["settings"][setting] = result = json.loads(child.stdout.splitlines()[-1])
        rss = [row["rss_mb"] for row in result["rounds"]]
        peaks = [row["peak_mb"] for row in result["rounds"]]
        print(f"{setting:<20} rss per round {rss} MB; peaks {min(peaks)}-{max(peaks)} MB; "
              f"after malloc_trim {result['after_trim_mb']} MB", flush=True)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
