"""How well can the synth-decoder's synthesiser represent a real 44.1-kHz note at all? (an oracle, no network)

    python -m benchmarks.synth_oracle [--data data/notes44-fluidr3] [--notes 6] [--steps 150]
                                      [--out docs/benchmarks/synth_oracle.json]

For ``--notes`` test-split notes (one per family, seeded), the controls of
:class:`~hummingface.models.synth_decoder.SynthDecoder` -- spectral envelope, harmonic detail and noise bands
per frame -- are fitted *directly* to the note by Adam on the training loss (multi-resolution STFT), with the
f0 curve fixed to the note's pyin track (its label pitch where unvoiced). The fitted note's full-band LSD_dB
and ViSQOL (as ``benchmarks/notes44.py`` measures them) are the ceiling of the representation: a network
decoding a global latent can only approach it. Beside it, on the same notes, the note band-limited to 8 kHz
(resampled to 16 kHz and back): the ceiling of any 16-kHz model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.notes44 import RATE, f0_track, visqol_scorer
from hummingface.audio import resample
from hummingface.data.datasets import read_note
from hummingface.data.gm import FAMILIES
from hummingface.metrics import lsd_db
from hummingface.models.synth_decoder import SynthDecoder, SynthDecoderConfig, exp_sigmoid, midi_to_hz
from hummingface.train.synth_decoder import MultiResolutionSTFTLoss, SynthDecoderTrainConfig


def fit(model: SynthDecoder, real: torch.Tensor, f0: torch.Tensor, steps: int) -> torch.Tensor:
    """Fit free control curves to ``real`` ``(samples,)`` with f0 ``(1, T)`` fixed; return the fitted audio."""
    config = model.config
    frames = config.control_frames
    loudness = torch.full((1, frames), -2.0, requires_grad=True)
    envelope = torch.zeros(1, frames, config.n_envelope, requires_grad=True)
    detail = torch.zeros(1, frames, config.n_detail, requires_grad=True)
    noise = torch.full((1, frames, config.n_noise), -4.0, requires_grad=True)
    loss_fn = MultiResolutionSTFTLoss(SynthDecoderTrainConfig.fft_sizes)
    optimizer = torch.optim.Adam([loudness, envelope, detail, noise], lr=0.05)
    model.eval()  # fixed noise table
    for _ in range(steps):
        audio = model.harmonics(f0, exp_sigmoid(loudness), envelope, detail) + model.noise(noise)
        loss = loss_fn(audio, real[None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (model.harmonics(f0, exp_sigmoid(loudness), envelope, detail) + model.noise(noise))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/notes44-fluidr3")
    parser.add_argument("--notes", type=int, default=6)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/benchmarks/synth_oracle.json")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    folder = Path(args.data) / "nsynth-test"
    examples = [e for e in json.loads((folder / "examples.json").read_text()).values() if 36 <= e["pitch"] <= 84]
    rng = np.random.default_rng([args.seed, 4])
    by_family: dict[int, list[dict]] = {}
    for example in examples:
        by_family.setdefault(example["instrument_family"], []).append(example)
    families = rng.permutation(sorted(by_family))[: args.notes]
    chosen = [by_family[f][int(rng.integers(len(by_family[f])))] for f in families]

    model = SynthDecoder(SynthDecoderConfig())
    score = visqol_scorer()
    rows = []
    for example in chosen:
        real = read_note(folder / "audio" / f"{example['note_str']}.wav", RATE)[0]
        track = f0_track(real)  # 16-kHz hop-256 frames over 2.5 s; held at its last value after that
        track = np.where(np.isfinite(track), track, example["pitch"])
        curve = np.interp(np.linspace(0, 4.0, model.config.control_frames),
                          np.arange(len(track)) * 256 / 16000, track)
        f0 = midi_to_hz(torch.from_numpy(curve).float())[None]
        fitted = fit(model, torch.from_numpy(real), f0, args.steps).numpy()
        bandlimited = resample(resample(real, RATE, 16000), 16000, RATE)[: len(real)]
        row = {"note": example["note_str"], "family": FAMILIES[example["instrument_family"]], "pitch": example["pitch"]}
        for name, audio in (("oracle", fitted), ("bandlimited8k", bandlimited)):
            row[name] = {"lsd_db": float(lsd_db(torch.from_numpy(real), torch.from_numpy(audio), 2048, 512)),
                         "visqol": score(real, audio)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary: dict = {"notes": len(rows), "steps": args.steps}
    for name in ("oracle", "bandlimited8k"):
        summary[name] = {key: float(np.mean([r[name][key] for r in rows])) for key in ("lsd_db", "visqol")}
        print(f"{name} over {len(rows)} notes: LSD {summary[name]['lsd_db']:.2f} dB, "
              f"ViSQOL {summary[name]['visqol']:.2f}")
    summary["per_note"] = rows
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
