"""Phase reconstruction: quality (LSD_dB) and speed of PhaseGradient beside Griffin-Lim on real notes.

    python benchmarks/phase.py [--notes 48] [--threads 2]

Notes are rendered from FluidR3 across all pitched General MIDI families at pitches 36-84, held 3 s and
released for 1 s (4 s at 16 kHz), as the corpus renders them. Each method rebuilds the audio from the
true linear STFT magnitude (1024/256) and, to show what the models' mel representation costs, from the true
128-band mel spectrogram. Times are the median over notes, one note at a time, on ``--threads`` CPU threads.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hummingface.data.synth import FLUIDR3_GM, FluidRenderer
from hummingface.dsp import STFT, GriffinLim, MelScale, PhaseGradient
from hummingface.metrics import lsd_db

PROGRAMS = [0, 4, 11, 19, 24, 27, 32, 38, 40, 48, 52, 56, 61, 65, 68, 73, 80, 88]


def render_notes(count: int, seed: int = 0) -> torch.Tensor:
    """``(count, 64000)`` float32 notes at 16 kHz, peak-normalised to 0.5."""
    rng = np.random.default_rng(seed)
    renderer = FluidRenderer(FLUIDR3_GM, sample_rate=16000, effects=False)
    notes = []
    for i in range(count):
        program, pitch = PROGRAMS[i % len(PROGRAMS)], int(rng.integers(36, 85))
        renderer.select(0, program)
        note = renderer.note(pitch, 100, hold_frames=48000, total_frames=64000)
        notes.append(0.5 * note / max(np.abs(note).max(), 1e-6))
    renderer.close()
    return torch.from_numpy(np.stack(notes).astype(np.float32))


def evaluate(method, magnitudes: torch.Tensor, notes: torch.Tensor) -> tuple[float, float]:
    """Mean LSD_dB and median milliseconds per note."""
    distances, times = [], []
    method(magnitudes[0], 64000)  # warm-up
    for magnitude, note in zip(magnitudes, notes, strict=True):
        start = time.perf_counter()
        rebuilt = method(magnitude, 64000)
        times.append(time.perf_counter() - start)
        distances.append(lsd_db(note, rebuilt).item())
    return float(np.mean(distances)), 1000 * float(np.median(times))


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    notes = render_notes(args.notes)
    stft, mel = STFT(1024, 256), MelScale(16000, 1024, 128)
    magnitudes = stft(notes).abs()
    from_mel = mel.inverse(mel(magnitudes))
    methods = {
        "griffin-lim 32 (baseline)": GriffinLim(stft, n_iter=32),
        "phase-gradient, no polish": PhaseGradient(stft, n_iter=0),
        "phase-gradient + 6 GL (default)": PhaseGradient(stft, n_iter=6),
    }
    print(f"{args.notes} FluidR3 notes, 4 s at 16 kHz, {args.threads} threads\n")
    print(f"{'method':<34}{'LSD_dB (STFT)':>14}{'LSD_dB (mel)':>14}{'ms/note':>10}")
    for name, method in methods.items():
        lsd, ms = evaluate(method, magnitudes, notes)
        lsd_mel, _ = evaluate(method, from_mel, notes)
        print(f"{name:<34}{lsd:>14.2f}{lsd_mel:>14.2f}{ms:>10.1f}")


if __name__ == "__main__":
    main()
