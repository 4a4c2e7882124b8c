"""The app's speed over HTTP on loopback: start-up, memory, and round trips of its endpoints.

Starts ``python app.py`` as a user would (shipped weights, offline), waits for the first page, reads the
server's resident memory, then times each endpoint twice: over Gradio's REST API with one keep-alive HTTP
connection (``POST /gradio_api/call/<name>``, then its event stream up to the result; the output files
are not fetched), and through ``gradio_client``, which also downloads every output file:

    python benchmarks/app.py [--repeats 30] [--threads 2] [--out runs/app-benchmark.json]

Targets (2 CPU cores): first page <= 10 s; resident memory <= 1.5 GB after start; ``/design`` p50 <= 100 ms;
``/generate_note`` p50 <= 150 ms; ``/upsample`` of a 10-s clip <= 2 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "assets" / "examples" / "pop-0011-01-8k.flac"  # 10 s, stereo, 8 kHz, held-out music


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (MB), from /proc."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def wait_for_page(url: str, process: subprocess.Popen, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no page at {url} after {timeout:.0f} s")


def timed(call, repeats: int) -> list[float]:
    call()  # warm-up: the first call also opens the queue's websocket
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def rest_call(http, url: str, api: str, data: list) -> None:
    """One call over Gradio's REST API: queue the event, then read its stream until the result arrives."""
    event = http.post(f"{url}gradio_api/call/{api}", json={"data": data}).json()["event_id"]
    with http.stream("GET", f"{url}gradio_api/call/{api}/{event}") as stream:
        body = "".join(stream.iter_text())
    if "event: complete" not in body:
        raise SystemExit(f"/{api} failed: {body[:300]}")


def summary(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1000
    return {"p50_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "calls": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the app (OMP_NUM_THREADS)")
    parser.add_argument("--out", default="runs/app-benchmark.json")
    args = parser.parse_args()

    port = free_port()
    env = {
        **os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
        "OMP_NUM_THREADS": str(args.threads), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
    }
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        startup = wait_for_page(url, process)
        memory = resident_mb(process.pid)
        from gradio_client import Client, handle_file

        with tempfile.TemporaryDirectory() as downloads:
            client = Client(url, verbose=False, download_files=downloads)
            sliders = np.random.default_rng(0).uniform(-2, 2, size=(args.repeats + 1, 16))
            calls = iter(range(10**6))

            def design():
                i = next(calls) % len(sliders)
                client.predict("cvae", 60, *sliders[i].tolist(), api_name="/design")

            # Explorer clicks over the map: the first click on a note fits its latent to the original, a click
            # on it again reuses the fit (Studio.explore); the cycle gives each pass the same notes.
            pixels = itertools.cycle(np.random.default_rng(1).uniform((40, 40), (600, 440), (args.repeats + 1, 2)))

            def explore():
                client.predict("cvae", 1, 2, *next(pixels).tolist(), api_name="/explore")

            import httpx

            http = httpx.Client(timeout=60)
            # The REST API takes every input, the vibrato (depth in cents, rate in Hz) last; gradio_client fills it.
            rest_design = ["cvae", 60, *sliders[0].tolist(), 0, 5.5]
            rest_note = ["gan", 60, "keyboard", 100, 0, "note", 0, 5.5]
            figures = {
                "startup_s": startup,
                "resident_mb_after_start": memory,
                "rest_design": summary(timed(lambda: rest_call(http, url, "design", rest_design), args.repeats)),
                "rest_generate_note": summary(timed(lambda: rest_call(http, url, "generate_note", rest_note),
                                                    args.repeats)),
                "design": summary(timed(design, args.repeats)),
                "generate_note": summary(timed(lambda: client.predict(api_name="/generate_note"), args.repeats)),
                "explore_first_click": summary(timed(explore, args.repeats)),
                "explore_click_again": summary(timed(explore, args.repeats)),
                "upsample_10s": summary(timed(
                    lambda: client.predict(handle_file(str(CLIP)), api_name="/upsample"), max(3, args.repeats // 10)
                )),
                "resident_mb_after_calls": resident_mb(process.pid),
                "threads": args.threads,
            }
    finally:
        process.terminate()
        process.wait(timeout=30)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
