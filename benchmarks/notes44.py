"""Notes at 44.1 kHz on held-out instruments: the synth-decoder beside today's 16-kHz cvae, in one run.

    python benchmarks/notes44.py --decoder runs/notes44/synth-decoder [--timbre checkpoints/cvae]
        [--data data/notes44-fluidr3] [--notes 24] [--pitch-latents 1] [--pitch-step 4] [--threads 2]
        [--out docs/benchmarks/notes44.json] [--png runs/notes44/spectrograms.png]

On ``--notes`` random notes of the 44.1-kHz corpus's *test* split (GM programs never trained on), each system
is scored against the true 44.1-kHz note (DESIGN.md, "How we measure"):

- ``synth-decoder``: the cvae's posterior mean of the note (encoded at 16 kHz) decoded by ``--decoder``;
- ``cvae16``: today's cvae reconstruction (16 kHz, mel + phase), resampled to 44.1 kHz;
- ``true_mel16``: the note's own 16-kHz mel spectrogram through today's phase reconstruction (that
  pipeline's ceiling); ``bandlimited8k``: the note resampled to 16 kHz and back (any 16-kHz model's ceiling).

Figures: **ViSQOL** v3 audio mode at 48 kHz (``visqol-python``); full-band **LSD_dB** (STFT 2048/512 at
44.1 kHz, each spectrogram clipped 80 dB below its peak); **pitch**: the median pyin f0 of the first 2.5 s
within 0.5 semitone of the label; **f0 modulation depth**: the standard deviation, in cents, of the pyin f0
over 0.5-2.5 s after removing a straight-line trend, compared with the real note's on string, brass, reed,
flute and vocal notes whose real depth is at least 5 cents (the notes "with vibrato"). Also: pitch of random
cvae latents decoded at MIDI 36-84, and the milliseconds to decode one 4-s note on ``--threads`` threads.
Writes the JSON and a spectrogram grid (real | synth-decoder | cvae16, dB up to 22 kHz).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import librosa
import numpy as np
import soxr
import torch

from hummingface.audio import resample
from hummingface.constants import SAMPLE_RATE
from hummingface.data.datasets import read_note
from hummingface.data.gm import FAMILIES
from hummingface.metrics import lsd_db
from hummingface.models.synth_decoder import SynthDecoder
from hummingface.models.timbre import Timbre
from hummingface.train.data import load_features

RATE = 44100
VISQOL_RATE = 48000
VIBRATO_FAMILIES = ("string", "brass", "reed", "flute", "vocal")
MIN_VIBRATO_CENTS = 5.0
SYSTEMS = ("synth-decoder", "cvae16", "true_mel16", "bandlimited8k")


def visqol_scorer():
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")

    def score(reference: np.ndarray, estimate: np.ndarray) -> float:
        ref = soxr.resample(reference.astype(np.float64), RATE, VISQOL_RATE)
        est = soxr.resample(estimate.astype(np.float64), RATE, VISQOL_RATE)
        return float(api.measure_from_arrays(ref, est, sample_rate=VISQOL_RATE).moslqo)

    return score


def f0_track(audio: np.ndarray) -> np.ndarray:
    """pyin f0 in MIDI of the first 2.5 s of a 44.1-kHz note (analysed at 16 kHz, hop 256), NaN where unvoiced."""
    clip = resample(audio[: int(2.5 * RATE)], RATE, SAMPLE_RATE)
    f0, voiced, _ = librosa.pyin(clip, fmin=librosa.midi_to_hz(24), fmax=librosa.midi_to_hz(96), sr=SAMPLE_RATE,
                                 frame_length=2048, hop_length=256)
    return np.where(voiced & np.isfinite(f0), librosa.hz_to_midi(np.where(np.isfinite(f0), f0, 1.0)), np.nan)


def pitch_and_depth(audio: np.ndarray) -> tuple[float | None, float | None]:
    """(median f0 in MIDI, f0 modulation depth in cents over 0.5-2.5 s), ``None`` where too little is voiced."""
    track = f0_track(audio)
    voiced = np.isfinite(track)
    if not voiced.any():
        return None, None
    times = np.arange(len(track)) * 256 / SAMPLE_RATE
    window = voiced & (times >= 0.5)
    if window.sum() < 20:
        return float(np.median(track[voiced])), None
    cents = 100 * track[window]
    trend = np.polyval(np.polyfit(times[window], cents, 1), times[window])
    return float(np.median(track[voiced])), float(np.std(cents - trend))


@torch.inference_mode()
def systems_audio(timbre: Timbre, decoder: SynthDecoder, features: torch.Tensor, pitch: int,
                  real: np.ndarray) -> dict[str, np.ndarray]:
    """Every system's version of one note, float32 ``(176400,)`` at 44.1 kHz."""
    latent = timbre.encode_features(features[None], pitch)[0]
    length = len(real)
    up = lambda audio: resample(audio, SAMPLE_RATE, RATE)[:length]  # noqa: E731
    return {
        "synth-decoder": decoder.decode(latent, pitch),
        "cvae16": up(timbre.decode(latent, pitch)),
        "true_mel16": up(timbre.spectrogram_audio(features)),
        "bandlimited8k": up(resample(real, RATE, SAMPLE_RATE)),
    }


@torch.inference_mode()
def decode_ms(decoder: SynthDecoder, timbre: Timbre, repeats: int = 15) -> dict[str, float]:
    latent = timbre.random_latent(0)
    wall, cpu = {}, {}
    for pitch in (36, 60, 84):
        for _ in range(3):
            decoder.decode(latent, pitch)
        times, cpus = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            decoder.decode(latent, pitch)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
        wall[pitch], cpu[pitch] = 1000 * float(np.median(times)), 1000 * float(np.median(cpus))
    return {f"wall_ms_midi{p}": v for p, v in wall.items()} | {f"cpu_ms_midi{p}": v for p, v in cpu.items()}


@torch.inference_mode()
def sample_pitch(decoder: SynthDecoder, timbre: Timbre, latents: int, step: int, seed: int) -> dict[str, dict]:
    """Pass rate of random cvae latents decoded at MIDI 36-84 by both decoders."""
    hits = {"synth-decoder": [], "cvae16": []}
    for pitch in range(36, 85, step):
        for k in range(latents):
            latent = timbre.random_latent(seed * 1000 + pitch * 10 + k)
            for name, audio in (("synth-decoder", decoder.decode(latent, pitch)),
                                ("cvae16", resample(timbre.decode(latent, pitch), SAMPLE_RATE, RATE))):
                estimate, _ = pitch_and_depth(audio)
                hits[name].append(estimate is not None and abs(estimate - pitch) <= 0.5)
    return {name: {"pass_rate": float(np.mean(h)), "notes": len(h)} for name, h in hits.items()}


def spectrogram_grid(rows: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ("real", "synth-decoder", "cvae16")
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(3.2 * len(columns), 1.6 * len(rows)),
                                squeeze=False, constrained_layout=True)
    for row, (label, audio) in enumerate(rows):
        for col, name in enumerate(columns):
            spec = np.abs(librosa.stft(audio[name], n_fft=2048, hop_length=512))
            db = librosa.amplitude_to_db(spec, ref=np.max(np.abs(librosa.stft(audio["real"], n_fft=2048,
                                                                              hop_length=512))), top_db=None)
            axis = axes[row, col]
            axis.imshow(db, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
                        extent=(0, len(audio[name]) / RATE, 0, RATE / 2000))
            axis.tick_params(labelsize=6)
            if row == 0:
                axis.set_title(name, fontsize=8)
            if col == 0:
                axis.set_ylabel(f"{label}\nkHz", fontsize=7)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def summarise(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", required=True, help="synth-decoder checkpoint folder")
    parser.add_argument("--timbre", default="checkpoints/cvae", help="the cvae whose latent it decodes")
    parser.add_argument("--data", default="data/notes44-fluidr3", help="44.1-kHz NSynth-layout corpus (test split)")
    parser.add_argument("--notes", type=int, default=24, help="test notes scored")
    parser.add_argument("--pitch-latents", type=int, default=1, help="random latents per tested pitch")
    parser.add_argument("--pitch-step", type=int, default=4, help="test every n-th pitch of 36-84")
    parser.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (about 2 s per note and system)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/benchmarks/notes44.json")
    parser.add_argument("--png", default="runs/notes44/spectrograms.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    timbre = Timbre.from_folder(args.timbre, device="cpu")
    decoder = SynthDecoder.from_folder(args.decoder, device="cpu")
    # Timed first: after pyin and ViSQOL have run, their worker threads inflated the same decode 30-fold here.
    speed = {"threads": args.threads, **decode_ms(decoder, timbre)}
    data = Path(args.data)
    notes = load_features(data, "test", timbre.model.config.spectrogram, range(24, 97), progress=False)
    notes = notes.subset(np.sort(np.random.default_rng([args.seed, 1]).permutation(len(notes))[: args.notes]))
    score = None if args.no_visqol else visqol_scorer()

    per_note, grid = [], []
    for i, note_id in enumerate(notes.note_ids):
        real = read_note(data / "nsynth-test" / "audio" / f"{note_id}.wav", RATE)[0]
        batch = notes.batch(np.array([i]))
        pitch, family = int(batch["pitch"][0]), FAMILIES[int(batch["family"][0])]
        audio = systems_audio(timbre, decoder, batch["features"][0], pitch, real)
        real_pitch, real_depth = pitch_and_depth(real)
        row = {"note": note_id, "family": family, "pitch": pitch, "real_depth_cents": real_depth,
               "real_pitch_ok": real_pitch is not None and abs(real_pitch - pitch) <= 0.5}
        for name, estimate in audio.items():
            f0, depth = pitch_and_depth(estimate)
            row[name] = {
                "lsd_db": float(lsd_db(torch.from_numpy(real), torch.from_numpy(estimate), 2048, 512)),
                "visqol": score(real, estimate) if score else None,
                "pitch_ok": f0 is not None and abs(f0 - pitch) <= 0.5,
                "depth_cents": depth,
            }
        per_note.append(row)
        if len(grid) < 6 and family not in {label.split()[0] for label, _ in grid}:
            grid.append((f"{family} {pitch}", {"real": real, **audio}))
        print(f"{note_id}: " + ", ".join(f"{n} {row[n]['lsd_db']:.2f} dB/{row[n]['visqol'] or float('nan'):.2f}"
                                         for n in SYSTEMS), flush=True)

    results: dict = {"test_notes": len(per_note), "systems": {}, "per_family": {}}
    for name in SYSTEMS:
        vibrato = [(r[name]["depth_cents"], r["real_depth_cents"]) for r in per_note
                   if r["family"] in VIBRATO_FAMILIES and (r["real_depth_cents"] or 0) >= MIN_VIBRATO_CENTS]
        ratios = [d / real for d, real in vibrato if d is not None]
        results["systems"][name] = {
            "visqol": summarise([r[name]["visqol"] for r in per_note]),
            "lsd_db": summarise([r[name]["lsd_db"] for r in per_note]),
            "pitch_pass_rate": float(np.mean([r[name]["pitch_ok"] for r in per_note])),
            "vibrato_notes": len(vibrato),
            "vibrato_depth_ratio_median": float(np.median(ratios)) if ratios else None,
        }
        results["per_family"][name] = {
            family: {"notes": len(rows), "visqol": summarise([r[name]["visqol"] for r in rows]),
                     "lsd_db": summarise([r[name]["lsd_db"] for r in rows])}
            for family in FAMILIES if (rows := [r for r in per_note if r["family"] == family])
        }
    results["real_pitch_pass_rate"] = float(np.mean([r["real_pitch_ok"] for r in per_note]))
    results["sample_pitch"] = sample_pitch(decoder, timbre, args.pitch_latents, args.pitch_step, args.seed)
    results["decode_speed"] = speed
    results["decoder"] = {"folder": str(args.decoder), "parameters": sum(p.numel() for p in decoder.parameters())}
    metrics = Path(args.decoder) / "metrics.json"
    if metrics.is_file():
        trained = json.loads(metrics.read_text())
        results["decoder"].update(step=trained["step"], train_minutes=trained["train_minutes"])
    results["notes"] = per_note
    for name, figures in results["systems"].items():
        print(f"{name:14s} {json.dumps(figures)}")
    print("sample pitch", json.dumps(results["sample_pitch"]), "speed", json.dumps(results["decode_speed"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    spectrogram_grid(grid, Path(args.png))
    print(f"wrote {args.out} and {args.png}")


if __name__ == "__main__":
    main()
