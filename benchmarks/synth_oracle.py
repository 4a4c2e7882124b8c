"""How well can the vocoder's synthesiser represent a real 44.1-kHz note at all? (an oracle, no network)

    PYTHONPATH=. python -m benchmarks.synth_oracle [--data data/notes44-fluidr3] [--notes 6] [--steps 150]
                                                   [--out docs/benchmarks/synth_oracle.json]

For ``--notes`` test-split notes (one per family, seeded), the control curves of
:class:`~hummingface.models.vocoder.Vocoder` -- spectral envelope, harmonic detail and noise bands per frame,
the dict :meth:`~hummingface.models.vocoder.Vocoder.control_curves` returns -- are fitted *directly* to the
note by Adam on the vocoder's training loss (multi-resolution STFT), rendered by
:meth:`~hummingface.models.vocoder.Vocoder.render` with the f0 fixed to the note's tracked f0
(:func:`~hummingface.train.vocoder.track_f0`, as in training). They start from what an untrained vocoder
reads off the note's own 16-kHz mel features (``mel_envelope``: the mel-derived envelope, no learned
correction). The fitted note's full-band LSD_dB and ViSQOL (as ``benchmarks/notes44.py`` measures them) are the
ceiling of the representation: a network reading mel frames can only approach it. Beside it, on the same
notes, the note band-limited to 8 kHz (resampled to 16 kHz and back): the ceiling of any 16-kHz model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.notes44 import RATE, visqol_scorer
from hummingface.audio import fit_length, resample
from hummingface.constants import SAMPLE_RATE
from hummingface.data.datasets import read_note
from hummingface.data.gm import FAMILIES
from hummingface.dsp import NoteSpectrogram
from hummingface.metrics import lsd_db
from hummingface.models.vocoder import Vocoder, VocoderConfig
from hummingface.train.vocoder import MultiResolutionSTFTLoss, VocoderTrainConfig, track_f0

FITTED = ("envelope", "detail", "noise")  # the deviation curve is not rendered: the f0 is given


def fit(model: Vocoder, start: dict[str, torch.Tensor], real: torch.Tensor, f0: torch.Tensor,
        steps: int) -> torch.Tensor:
    """Fit free control curves (from ``start``) to ``real`` ``(samples,)`` with f0 ``(1, T)`` Hz fixed; return
    the fitted audio ``(samples,)``."""
    curves = {name: start[name].detach().clone().requires_grad_(True) for name in FITTED}
    loss_fn = MultiResolutionSTFTLoss(VocoderTrainConfig.fft_sizes)
    optimizer = torch.optim.Adam(curves.values(), lr=0.05)
    for _ in range(steps):
        loss = loss_fn(model.render(curves, f0), real[None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return model.render(curves, f0)[0]


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

    model = Vocoder(VocoderConfig()).eval()  # untrained: its controls are the mel-derived envelope; fixed noise
    spectrogram = NoteSpectrogram(model.config.spectrogram)
    score = visqol_scorer()
    rows = []
    for example in chosen:
        real = read_note(folder / "audio" / f"{example['note_str']}.wav", RATE)[0]
        pitch = torch.tensor([float(example["pitch"])])
        audio16 = resample(real, RATE, SAMPLE_RATE)
        with torch.no_grad():
            start = model.control_curves(spectrogram(torch.from_numpy(audio16))[None], pitch)
            frames = start["envelope"].shape[1]
            f0, _ = track_f0(torch.from_numpy(real)[None], pitch, RATE, model.config.frame_rate, frames)
            mel_envelope = model.render(start, f0)[0].numpy()
        fitted = fit(model, start, torch.from_numpy(real), f0, args.steps).numpy()
        bandlimited = fit_length(resample(audio16, SAMPLE_RATE, RATE), len(real))
        row = {"note": example["note_str"], "family": FAMILIES[example["instrument_family"]], "pitch": example["pitch"]}
        for name, audio in (("oracle", fitted), ("mel_envelope", mel_envelope), ("bandlimited8k", bandlimited)):
            row[name] = {"lsd_db": float(lsd_db(torch.from_numpy(real), torch.from_numpy(audio), 2048, 512)),
                         "visqol": score(real, audio)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary: dict = {"notes": len(rows), "steps": args.steps}
    for name in ("oracle", "mel_envelope", "bandlimited8k"):
        summary[name] = {key: float(np.mean([r[name][key] for r in rows])) for key in ("lsd_db", "visqol")}
        print(f"{name} over {len(rows)} notes: LSD {summary[name]['lsd_db']:.2f} dB, "
              f"ViSQOL {summary[name]['visqol']:.2f}")
    summary["per_note"] = rows
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
