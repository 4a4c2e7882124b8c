"""The upsampler on held-out music: sinc, sbr and the model in one run (definitions: docs/metrics.md).

    python benchmarks/upsample.py [--data data/music] [--clips 38] [--threads 1] [--rtf-threads 2]
                                  [--long-minutes 10] [--out runs/upsampler-benchmark.json]

Input: each ``test`` clip (44.1 kHz stereo, pieces training never reads, not even to score a checkpoint)
brought to 8 kHz with soxr (HQ).

- **LSD** as AERO/AP-BWE compute it (:func:`hummingface.metrics.lsd_spectral`: STFT 2048/512 Hann at 44.1 kHz,
  log10 power floored at 1e-8, RMS over bins, mean over frames), per channel, averaged; **LSD-LF** over
  bins below 3.8 kHz and **LSD-HF** over bins from 4 kHz, against the original. ``lsd_lf_vs_input`` is the
  LSD-LF against the sinc-upsampled input: what the method changed in the band it must leave alone.
- **ViSQOL** v3, audio mode, 48 kHz (``visqol-python``), on the mid (ViSQOL's audio mode downmixes to mono).
- **Real-time factor**: seconds of processing per second of audio for a 3-minute stereo song (held-out clips
  joined) on ``--rtf-threads`` threads, model already loaded; median of 3 runs. Also the process CPU seconds
  per audio second (all threads), and the 1-minute load average: other jobs on the machine inflate wall time.
- **Memory peak**: peak resident set size (VmHWM) of ``python -m hummingface upsample`` on a
  ``--long-minutes`` stereo 44.1 kHz WAV, in a child process (start-up, model, reading and writing included).
- a spectrogram figure beside ``--out`` (same name, ``.png``): a recording, a score and a procedural song:
  the 8 kHz input, sinc, sbr, model and the original.

Writes ``benchmark.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr
import torch

from hummingface.audio import read_audio, write_audio
from hummingface.metrics import lsd_spectral
from hummingface.models.upsampler import Upsampler
from hummingface.upsampling import INPUT_RATE, OUTPUT_RATE, upsample

MODES = ("sinc", "sbr", "model")
KINDS = {"audio": "recording", "music21": "score", "procedural": "procedural"}
VISQOL_RATE = 48000


def kind_of(path: Path) -> str:
    return KINDS.get(path.name.split("-")[0], "other")


def visqol_scorer():
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")

    def score(reference: np.ndarray, estimate: np.ndarray) -> float:
        ref = soxr.resample(reference.mean(axis=0).astype(np.float64), OUTPUT_RATE, VISQOL_RATE)
        est = soxr.resample(estimate.mean(axis=0).astype(np.float64), OUTPUT_RATE, VISQOL_RATE)
        length = min(len(ref), len(est))
        return float(api.measure_from_arrays(ref[:length], est[:length], sample_rate=VISQOL_RATE).moslqo)

    return score


def figures(reference: np.ndarray, estimate: np.ndarray, sinc: np.ndarray) -> dict[str, float]:
    ref, est, inp = (torch.from_numpy(x) for x in (reference, estimate, sinc))
    return {
        "lsd": float(lsd_spectral(ref, est).mean()),
        "lsd_lf": float(lsd_spectral(ref, est, max_hz=3800).mean()),
        "lsd_hf": float(lsd_spectral(ref, est, min_hz=4000).mean()),
        "lsd_lf_vs_input": float(lsd_spectral(inp, est, max_hz=3800).mean()),
    }


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for mode in MODES:
        values = [row[mode] for row in rows]
        summary[mode] = {
            name: {"mean": float(np.mean(column)), "median": float(np.median(column))}
            for name in values[0]
            for column in [[v[name] for v in values]]
        }
        for kind in sorted({row["kind"] for row in rows}):
            subset = [row[mode] for row in rows if row["kind"] == kind]
            summary[mode][kind] = {name: float(np.mean([v[name] for v in subset])) for name in subset[0]}
    return summary


def real_time_factor(clips: list[np.ndarray], model: Upsampler, threads: int, seconds: float = 180.0) -> dict:
    torch.set_num_threads(threads)
    song = np.concatenate(clips, axis=1)
    while song.shape[1] < seconds * OUTPUT_RATE:
        song = np.concatenate([song, song], axis=1)
    narrow = soxr.resample(song[:, : int(seconds * OUTPUT_RATE)].T, OUTPUT_RATE, INPUT_RATE).T.astype(np.float32)
    result = {"seconds": seconds, "threads": threads, "load_average_1min": os.getloadavg()[0]}
    for mode in ("sinc", "sbr", "model"):
        times, cpu = [], []
        for _ in range(3):
            started, started_cpu = time.perf_counter(), time.process_time()
            upsample(narrow, INPUT_RATE, mode=mode, model=model)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        result[mode] = float(np.median(times)) / seconds
        result[f"{mode}_cpu_seconds_per_second"] = float(np.median(cpu)) / seconds
    return result


def memory_peak(minutes: float, threads: int) -> dict:
    """Peak RSS of the CLI upsampling a long stereo 44.1 kHz WAV, in a child process."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "long.wav"
        length = int(minutes * 60 * OUTPUT_RATE)
        t = np.arange(length) / OUTPUT_RATE
        tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
        audio = np.stack([tone, np.roll(tone, 1000)]) + 0.01 * rng.standard_normal((2, length))
        write_audio(source, audio.astype(np.float32), OUTPUT_RATE)
        del audio, tone, t
        # The child reports its own VmHWM: getrusage(RUSAGE_CHILDREN) would also count the pages a forked
        # child shares with this (large) parent before it execs.
        code = (
            f"import re, sys, torch; torch.set_num_threads({threads}); from hummingface.__main__ import main; "
            f"code = main(['upsample', {str(source)!r}, '-o', {str(Path(folder) / 'out.wav')!r}]); "
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(code)"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        seconds = time.perf_counter() - started
    peak_kb = int(done.stdout.strip().splitlines()[-1])
    return {"minutes": minutes, "channels": 2, "peak_rss_mb": peak_kb / 1024, "wall_seconds": seconds}


def spectrogram_grid(examples: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["input 8 kHz", "sinc", "sbr", "model", "original"]
    figure, axes = plt.subplots(len(examples), 5, figsize=(17, 3.1 * len(examples)), constrained_layout=True)
    axes = np.atleast_2d(axes)
    for row, (name, signals) in enumerate(examples):
        for col, label in enumerate(columns):
            audio, sr = signals[label]
            n_fft, hop = (2048, 512) if sr > 20000 else (512, 93)  # about the same seconds per frame
            spec = np.abs(librosa.stft(audio.mean(axis=0), n_fft=n_fft, hop_length=hop))
            db = librosa.amplitude_to_db(spec, ref=np.max, top_db=90)
            axis = axes[row, col]
            axis.set_facecolor("black")  # the 8-kHz input has nothing above 4 kHz
            seconds = audio.shape[-1] / sr
            axis.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-90, vmax=0,
                        extent=(0, seconds, 0, sr / 2000))
            axis.set_ylim(0, OUTPUT_RATE / 2000)
            axis.set_title(label, fontsize=10, loc="left")
            axis.set_xlabel("s" if row == len(examples) - 1 else "")
            axis.set_ylabel(f"{name}\nkHz" if col == 0 else "", fontsize=9)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/music", help="the music corpus (44.1 kHz clips by split)")
    # The shipped weights were trained before the corpus had a test split: its test pieces were then training
    # pieces, so they are scored on the valid pieces, which they never trained on and never chose a checkpoint
    # with (the run kept its last step). Weights trained on today's corpus are scored on test.
    parser.add_argument("--split", default="test", choices=["test", "valid"], help="held-out clips to score")
    parser.add_argument("--clips", type=int, help="use only this many held-out clips (default: all)")
    parser.add_argument("--weights", help="org/name[@revision] or a folder (default: checkpoints/)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the quality figures")
    parser.add_argument("--rtf-threads", type=int, default=2, help="torch threads for the real-time factor (0: skip)")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the memory test (0: skip)")
    parser.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (slow: ~3 s per clip and mode)")
    parser.add_argument("--out", default="runs/upsampler-benchmark.json", help="the JSON report (the PNG beside it)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = Upsampler.from_pretrained("upsampler", weights=args.weights, device="cpu")
    paths = sorted(Path(args.data, args.split).glob("*.wav"))[: args.clips]
    if not paths:
        raise SystemExit(f"{Path(args.data, args.split)} holds no clips: render the corpus with `data music` "
                         "(it splits off pieces training never reads).")
    score = None if args.no_visqol else visqol_scorer()
    rows, examples, clips = [], [], []
    wanted = {kind: None for kind in ("recording", "score", "procedural")}
    for index, path in enumerate(paths):
        reference, _ = read_audio(path, sample_rate=OUTPUT_RATE)
        clips.append(reference)
        narrow = soxr.resample(reference.T, OUTPUT_RATE, INPUT_RATE, quality="HQ").T.astype(np.float32)
        outputs = {mode: upsample(narrow, INPUT_RATE, mode=mode, model=model)[0] for mode in MODES}
        row = {"clip": path.name, "kind": kind_of(path)}
        for mode, estimate in outputs.items():
            row[mode] = figures(reference, estimate, outputs["sinc"])
            if score is not None:
                row[mode]["visqol"] = score(reference, estimate)
        rows.append(row)
        print(f"[{index + 1}/{len(paths)}] {path.name}: "
              + ", ".join(f"{m} {row[m]['lsd']:.2f}/{row[m].get('visqol', float('nan')):.2f}" for m in MODES),
              flush=True)
        kind = kind_of(path)
        if kind in wanted and wanted[kind] is None and index % 3 == 1:
            wanted[kind] = path.name
            excerpt = slice(0, 4 * OUTPUT_RATE)
            signals = {mode: (outputs[mode][:, excerpt], OUTPUT_RATE) for mode in MODES}
            signals["input 8 kHz"] = (narrow[:, : 4 * INPUT_RATE], INPUT_RATE)
            signals["original"] = (reference[:, excerpt], OUTPUT_RATE)
            examples.append((f"{path.stem} ({kind})", signals))
    spectrogram_grid(examples, out.with_suffix(".png"))
    report = {
        "degradation": "soxr HQ 44.1 -> 8 kHz",
        "clips": len(rows),
        "summary": summarise(rows),
        "real_time_factor": real_time_factor(clips, model, args.rtf_threads) if args.rtf_threads else {},
        "memory": memory_peak(args.long_minutes, args.rtf_threads) if args.long_minutes > 0 else None,
        "rows": rows,
    }
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'mode':<6} {'LSD':>6} {'LSD-LF':>7} {'LSD-HF':>7} {'LF vs in':>9} {'ViSQOL':>7} {'RTF':>7}")
    for mode in MODES:
        s = report["summary"][mode]
        visqol = s.get("visqol", {}).get("mean", float("nan"))
        rtf = report["real_time_factor"].get(mode, float("nan"))
        print(f"{mode:<6} {s['lsd']['mean']:6.3f} {s['lsd_lf']['mean']:7.4f} {s['lsd_hf']['mean']:7.3f} "
              f"{s['lsd_lf_vs_input']['mean']:9.4f} {visqol:7.3f} {rtf:7.4f}")
    rtf = report["real_time_factor"]
    if rtf:
        print(f"RTF on {rtf['threads']} threads, load average {rtf['load_average_1min']:.1f}; CPU s per audio s: "
              + ", ".join(f"{mode} {rtf[f'{mode}_cpu_seconds_per_second']:.4f}" for mode in MODES))
    if report["memory"]:
        memory = report["memory"]
        print(f"memory: {memory['peak_rss_mb']:.0f} MB peak RSS for {memory['minutes']:.0f} min stereo "
              f"({memory['wall_seconds']:.1f} s wall, CLI incl. start-up)")
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
