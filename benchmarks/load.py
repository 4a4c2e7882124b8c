"""Load and soak test of the app on loopback: many users at once while one of them upsamples a long file.

    python benchmarks/load.py [--users 4] [--minutes 3] [--alone-seconds 45] [--upsample-minutes 10]
                              [--cache-minutes 1] [--out docs/benchmarks/load.json] [--keep-cache DIR]

Starts ``app.py`` as a child process on 127.0.0.1 (shipped weights, or ``$HUMMINGFACE_WEIGHTS``) with its own
``TMPDIR`` and ``GRADIO_TEMP_DIR``, so every temporary file it makes is counted, then drives it through
``gradio_client`` like browsers would:

1. **Alone** (``--alone-seconds``): ``--users`` simulated users each drag a slider, calling ``/design`` with
   new slider values up to 10 times a second (the next call starts when the previous one is answered, at
   most every 100 ms), generate a note every 5 s and click the Explorer map every 5 s.
   One more user exports the current sound as an instrument (.zip) and renders a short MIDI file with it,
   one after the other, every 10 s.
2. **Soak** (``--minutes``): the same users, while one more user uploads a ``--upsample-minutes`` stereo
   44.1 kHz WAV and upsamples it with the model, again and again.

Every call's latency and outcome is kept (per endpoint p50/p95, errors; ``/design`` split by whether an
upsample was running), and every 5 s the server's resident memory (its whole process tree), the size of its
temporary folders and the age of the oldest file in Gradio's cache. Before the server stops (Gradio then wipes
what it knows of), the files left in its cache are listed by where they lie and their extension, with their
size and age (``leftovers``). ``--keep-cache DIR`` keeps the app's temporary folders and its log
(``DIR/.../server.log``) to look at afterwards. Output: JSON (``--out``) and a summary on stdout. Everything
stops by itself at the end, or after ``--minutes`` + 5 minutes whatever happens; loopback only.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SLIDERS = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (MB), from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pending += [int(child) for child in children]
        except (OSError, StopIteration):
            continue
    return total / 1024


def files_under(folder: Path):
    """``(path, os.stat_result)`` of every file under ``folder``. ``os.walk``, not ``Path.rglob``: the app's sweep
    deletes files and folders while this walks, and rglob raises on a folder that vanished under it (which ended
    the monitor thread of a 20-minute soak)."""
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                yield path, path.stat()
            except OSError:  # deleted meanwhile
                continue


def folder_usage(folder: Path) -> tuple[float, float]:
    """Size of the files under ``folder`` (MB) and the age of the oldest one (s, since it was last written)."""
    size, oldest, now = 0, 0.0, time.time()
    for _, stat in files_under(folder):
        size, oldest = size + stat.st_size, max(oldest, now - stat.st_mtime)
    return size / 1e6, oldest


def leftovers(folder: Path) -> list[dict]:
    """Files under ``folder`` grouped by where they lie and their extension: count, MB, oldest and newest age (s,
    since last written).

    Where: the first folder under ``folder`` when it has a name (the studio's ``upsampled``, ``instruments``,
    ``rendered``), else ``<hash>`` (Gradio's content-addressed folders of uploads and returned files).
    """
    now, groups = time.time(), collections.defaultdict(list)
    for path, stat in files_under(folder):
        top = path.relative_to(folder).parts[0]
        where = "<hash>" if len(top) >= 32 and all(c in "0123456789abcdef" for c in top) else top
        groups[where, "".join(path.suffixes[-1:]) or path.name[:8]].append((stat.st_size, now - stat.st_mtime))
    return [{"where": where, "extension": extension, "files": len(rows),
             "mb": round(sum(r[0] for r in rows) / 1e6, 1), "oldest_s": round(max(r[1] for r in rows)),
             "newest_s": round(min(r[1] for r in rows))}
            for (where, extension), rows in sorted(groups.items(), key=lambda item: -sum(r[0] for r in item[1]))]


def long_song(path: Path, minutes: float, rate: int = 44100) -> Path:
    """A stereo 16-bit WAV of ``minutes``: chords with a beat and a little noise, written block by block."""
    rng = np.random.default_rng(0)
    block = 10 * rate
    with sf.SoundFile(str(path), "w", rate, 2, "PCM_16") as file:
        for start in range(0, int(minutes * 60 * rate), block):
            t = (start + np.arange(block)) / rate
            chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) / 4
            beat = 0.6 + 0.4 * np.sin(2 * np.pi * 2 * t) ** 8
            left = 0.3 * chord * beat + 0.01 * rng.standard_normal(block)
            file.write(np.stack([left, np.roll(left, 300)], axis=1).astype(np.float32))
    return path


class Recorder:
    """Thread-safe log of calls: (endpoint, start time, seconds, ok, an upsample was running)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, bool, bool]] = []
        self.errors: dict[str, list[str]] = {}
        self.upsampling = threading.Event()
        self.lock = threading.Lock()

    def call(self, client, endpoint: str, *args) -> None:
        during = self.upsampling.is_set()
        started = time.monotonic()
        try:
            client.predict(*args, api_name=endpoint)
            ok = True
        except Exception as error:  # every failure is a measured error, whatever its kind
            ok = False
            with self.lock:
                self.errors.setdefault(endpoint, []).append(str(error).splitlines()[0][:200])
        with self.lock:
            self.calls.append((endpoint, started, time.monotonic() - started, ok, during or self.upsampling.is_set()))


def user(url: str, recorder: Recorder, stop: threading.Event, seed: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    rng = random.Random(seed)
    values = [0.0] * SLIDERS
    next_note = next_click = time.monotonic() + rng.uniform(0, 5)
    while not stop.is_set():
        started = time.monotonic()
        index = rng.randrange(4)  # a drag moves one slider a little at a time
        values[index] = max(-4.0, min(4.0, values[index] + rng.uniform(-0.3, 0.3)))
        recorder.call(client, "/design", "cvae", 60, *values)
        if started >= next_note:
            recorder.call(client, "/generate_note", "gan", rng.randrange(36, 85), "keyboard", 100, rng.randrange(999),
                          "note")
            next_note = started + 5
        if started >= next_click:
            recorder.call(client, "/explore", "cvae", 1, 2, rng.uniform(80, 480), rng.uniform(60, 420))
            next_click = started + 5
        stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


def short_song(path: Path) -> Path:
    """A 16-s MIDI file of 4-voice chords, one every half second, for the render endpoint."""
    import mido

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    for bar in range(32):
        chord = [48 + bar % 12 + step for step in (0, 4, 7, 12)]
        track.extend(mido.Message("note_on", note=n, velocity=90, time=0) for n in chord)
        track.append(mido.Message("note_off", note=chord[0], velocity=0, time=480))
        track.extend(mido.Message("note_off", note=n, velocity=0, time=0) for n in chord[1:])
    song.save(path)
    return path


def musician(url: str, recorder: Recorder, stop: threading.Event, song: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    while not stop.is_set():
        started = time.monotonic()
        recorder.call(client, "/export_instrument", "cvae", *([0.0] * SLIDERS), "sfz", 24, 96, 3, "")
        recorder.call(client, "/render_midi", "cvae", *([0.0] * SLIDERS), handle_file(str(song)))
        stop.wait(max(0.0, 10 - (time.monotonic() - started)))


def upsampler(url: str, recorder: Recorder, stop: threading.Event, song: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    while not stop.is_set():
        recorder.upsampling.set()
        recorder.call(client, "/upsample", handle_file(str(song)), "model")
        recorder.upsampling.clear()


def percentiles(durations: list[float]) -> dict:
    if not durations:
        return {"count": 0}
    values = np.asarray(durations) * 1000
    p50, p95 = np.percentile(values, [50, 95])
    return {"count": len(values), "p50_ms": float(p50), "p95_ms": float(p95), "max_ms": float(values.max())}


def summarise(recorder: Recorder, phase_start: float, phase_end: float) -> dict:
    calls = [c for c in recorder.calls if phase_start <= c[1] < phase_end]
    result = {}
    for endpoint in sorted({c[0] for c in calls}):
        mine = [c for c in calls if c[0] == endpoint]
        result[endpoint] = {**percentiles([c[2] for c in mine if c[3]]), "errors": sum(not c[3] for c in mine)}
    design = [c for c in calls if c[0] == "/design" and c[3]]
    result["/design during upsample"] = percentiles([c[2] for c in design if c[4]])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4, help="simulated users on the Designer and Explorer")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the soak with the upsample")
    parser.add_argument("--alone-seconds", type=float, default=45.0, help="length of the phase without it")
    parser.add_argument("--upsample-minutes", type=float, default=10.0, help="length of the upsampled file")
    parser.add_argument("--cache-minutes", type=float, default=1.0, help="the app's HUMMINGFACE_CACHE_MINUTES")
    parser.add_argument("--out", default="docs/benchmarks/load.json")
    parser.add_argument("--keep-cache", metavar="DIR", help="keep the app's temporary folders and log here")
    args = parser.parse_args()
    if not (0 <= args.users <= 16 and 0 < args.minutes <= 30 and 0 < args.alone_seconds <= 600):
        parser.error("keep it bounded: 0-16 users, up to 30 minutes, up to 600 s alone")

    if args.keep_cache:
        Path(args.keep_cache).mkdir(parents=True, exist_ok=True)
        kept = contextlib.nullcontext(tempfile.mkdtemp(prefix="hummingface-load-", dir=args.keep_cache))
    else:
        kept = tempfile.TemporaryDirectory(prefix="hummingface-load-")
    with kept as work:
        work = Path(work)
        tmp, cache = work / "tmp", work / "gradio"
        tmp.mkdir()
        song = long_song(work / "song.wav", args.upsample_minutes)
        midi = short_song(work / "chords.mid")
        port = free_port()
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "TMPDIR": str(tmp),
               "GRADIO_TEMP_DIR": str(cache), "HUMMINGFACE_CACHE_MINUTES": str(args.cache_minutes),
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
        log = (work / "server.log").open("w") if args.keep_cache else subprocess.DEVNULL
        server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
        hard_stop = threading.Timer(args.minutes * 60 + args.alone_seconds + 300, server.kill)
        hard_stop.start()
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "config", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None:
                        sys.exit("the app did not start")
                    time.sleep(0.5)
            recorder, stop, timeline = Recorder(), threading.Event(), []
            began = time.monotonic()

            def monitor() -> None:
                while not stop.wait(5.0):
                    cache_mb, oldest_s = folder_usage(cache)
                    timeline.append({"t_s": round(time.monotonic() - began, 1), "rss_mb": tree_rss_mb(server.pid),
                                     "gradio_cache_mb": cache_mb, "gradio_cache_oldest_s": round(oldest_s),
                                     "other_tmp_mb": folder_usage(tmp)[0], "upsampling": recorder.upsampling.is_set()})

            threads = [threading.Thread(target=monitor, daemon=True)]
            threads += [threading.Thread(target=user, args=(url, recorder, stop, i), daemon=True)
                        for i in range(args.users)]
            threads += [threading.Thread(target=musician, args=(url, recorder, stop, midi), daemon=True)]
            for thread in threads:
                thread.start()
            time.sleep(args.alone_seconds)
            soak_start = time.monotonic()
            heavy = threading.Thread(target=upsampler, args=(url, recorder, stop, song), daemon=True)
            heavy.start()
            time.sleep(args.minutes * 60)
            stop.set()
            for thread in [*threads, heavy]:
                thread.join(timeout=600)
            end = time.monotonic()
            left = leftovers(cache)
        finally:
            hard_stop.cancel()
            server.terminate()
            server.wait(timeout=60)

    upsamples = [c for c in recorder.calls if c[0] == "/upsample"]
    soak = [row for row in timeline if row["t_s"] >= soak_start - began]
    warm = [row for row in soak if row["t_s"] >= soak_start - began + 60]  # after the first minute of the soak
    report = {
        "command": "python " + " ".join(sys.argv),
        "users": args.users, "minutes": args.minutes, "alone_seconds": args.alone_seconds,
        "upsample_file": {"minutes": args.upsample_minutes, "channels": 2, "rate": 44100,
                          "mb": round(args.upsample_minutes * 60 * 44100 * 4 / 1e6, 1)},
        "cache_minutes": args.cache_minutes, "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
        "alone": summarise(recorder, began, soak_start),
        "soak": summarise(recorder, soak_start, end),
        "upsamples_finished": sum(c[3] for c in upsamples),
        "upsample_seconds": [round(c[2], 1) for c in upsamples if c[3]],
        "errors": {k: v[:5] for k, v in recorder.errors.items()},
        "growth_after_warm_up": {
            key: round(warm[-1][key] - warm[0][key], 1) if len(warm) > 1 else None
            for key in ("rss_mb", "gradio_cache_mb", "other_tmp_mb")
        },
        "peak": {key: max((row[key] for row in timeline), default=None)
                 for key in ("rss_mb", "gradio_cache_mb", "gradio_cache_oldest_s", "other_tmp_mb")},
        "leftovers": left,
        "timeline": timeline,
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    for phase in ("alone", "soak"):
        for endpoint, row in report[phase].items():
            if row.get("count"):
                print(f"{phase:<5} {endpoint:<26} n={row['count']:<6} p50 {row['p50_ms']:7.0f} ms  "
                      f"p95 {row['p95_ms']:7.0f} ms  errors {row.get('errors', 0)}")
    print(f"upsamples finished: {report['upsamples_finished']} ({report['upsample_seconds']} s)")
    print(f"growth after warm-up: {report['growth_after_warm_up']}; peak: {report['peak']}")
    for row in left[:8]:
        print(f"left in the cache: {row}")
    print(f"wrote {out}" + (f"; the app's folders and log are in {work}" if args.keep_cache else ""))


if __name__ == "__main__":
    main()
