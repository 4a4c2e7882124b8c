"""Timbre models on held-out instruments: reconstruction, pitch of samples, speed, smoothness, spectrograms.

    python benchmarks/notes.py [--checkpoints checkpoints] [--data data/notes-fluidr3] [--notes 200]
                               [--pitch-latents 2] [--threads 2] [--out runs/notes-benchmark.json]

For every ``ae``/``vae``/``mog-vae``/``cvae`` checkpoint found (definitions: docs/metrics.md):

- **LSD_dB** of reconstructions of ``--notes`` random notes of the *test* split (GM programs never trained
  on): encode (posterior mean), decode, phase by ``NoteSpectrogram.inverse``, against the original audio.
  Beside it, the same phase reconstruction of the *true* mel spectrogram: the ceiling the mel representation
  sets, and a dataset-mean spectrum: the floor.
- **pitch accuracy** (cvae): a random latent (``Timbre.random_latent``) decoded at each pitch 36-84; pass when
  the median pyin f0 over voiced frames of the first 2.5 s is within 0.5 semitone of the request.
- **speed**: median milliseconds of decode and of phase reconstruction for one note on ``--threads`` threads.
- **smoothness**: straight latent paths (16 steps) between pairs of encoded test notes; the ratio of the
  largest to the mean step of the decoded log-mel spectrogram (1 = perfectly even; the target is <= 3).
- **spectrogram grid** (``<model>-spectrograms.png`` beside ``--out``; nothing is written into checkpoints): per
  family, a real test note, its reconstruction, and a random note of that family's centroid at the same pitch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hummingface.audio import read_audio
from hummingface.data.gm import FAMILIES
from hummingface.dsp import NoteSpectrogram
from hummingface.latent import smoothness_ratio
from hummingface.metrics import lsd_db
from hummingface.models.autoencoder import MODELS
from hummingface.models.timbre import Timbre, estimate_pitch
from hummingface.train.data import NoteFeatures, load_features


def test_audio(data: Path, notes: NoteFeatures) -> torch.Tensor:
    """The original 4-s test notes ``(N, 64000)``."""
    folder = data / "nsynth-test" / "audio"
    return torch.from_numpy(np.stack([read_audio(folder / f"{note}.wav", mono=True)[0][0] for note in notes.note_ids]))


@torch.inference_mode()
def reconstruction_lsd(model: Timbre, notes: NoteFeatures, audio: torch.Tensor, batch: int = 16) -> np.ndarray:
    distances = []
    for start in range(0, len(notes), batch):
        index = np.arange(start, min(start + batch, len(notes)))
        data = notes.batch(index)
        latents = model.encode_features(data["features"], data["pitch"])
        features = model.decode_features(latents, data["pitch"])
        rebuilt = model.spectrogram.inverse(features, length=audio.shape[-1])
        distances.append(lsd_db(audio[index], rebuilt).numpy())
    return np.concatenate(distances)


@torch.inference_mode()
def reference_lsd(notes: NoteFeatures, audio: torch.Tensor, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """LSD of the true mel spectrogram's phase reconstruction, and of the dataset-mean spectrogram's."""
    spectrogram = NoteSpectrogram()
    true_mel, mean = [], None
    mean = torch.from_numpy(notes.features[notes.rows].astype(np.float32).mean(axis=0))
    mean_audio = spectrogram.inverse(mean, length=audio.shape[-1])
    for start in range(0, len(notes), batch):
        index = np.arange(start, min(start + batch, len(notes)))
        rebuilt = spectrogram.inverse(notes.batch(index)["features"], length=audio.shape[-1])
        true_mel.append(lsd_db(audio[index], rebuilt).numpy())
    return np.concatenate(true_mel), lsd_db(audio, mean_audio.expand_as(audio)).numpy()


@torch.inference_mode()
def speed_ms(model: Timbre, repeats: int = 20) -> dict[str, float]:
    latent = model.random_latent(0)
    pitch = 60 if model.conditional else None
    for _ in range(3):
        features = model.decode_features(latent, pitch)
        model.spectrogram.inverse(features, length=64000)
    decode, phase = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        features = model.decode_features(latent, pitch)
        middle = time.perf_counter()
        model.spectrogram.inverse(features, length=64000)
        decode.append(middle - start)
        phase.append(time.perf_counter() - middle)
    decode_ms, phase_ms = 1000 * float(np.median(decode)), 1000 * float(np.median(phase))
    return {"decode_ms": decode_ms, "phase_ms": phase_ms, "total_ms": decode_ms + phase_ms}


@torch.inference_mode()
def smoothness(model: Timbre, notes: NoteFeatures, pairs: int, seed: int, steps: int = 16) -> list[float]:
    rng = np.random.default_rng([seed, 2])
    ratios = []
    for _ in range(pairs):
        a, b = rng.choice(len(notes), 2, replace=False)
        data = notes.batch(np.array([a, b]))
        latents = model.encode_features(data["features"], data["pitch"])
        path = model.interpolate(latents[0], latents[1], torch.linspace(0, 1, steps))
        pitch = int(data["pitch"][0]) if model.conditional else None
        ratios.append(smoothness_ratio(model.decode_features(path, pitch)))
    return ratios


@torch.inference_mode()
def pitch_accuracy(model: Timbre, latents_per_pitch: int, seed: int, step: int = 1) -> dict[str, float]:
    hits, errors = 0, []
    pitches = range(36, 85, step)
    for pitch in pitches:
        for k in range(latents_per_pitch):
            audio = model.decode(model.random_latent(seed * 1000 + pitch * 10 + k), pitch=pitch)
            estimate = estimate_pitch(audio)
            error = abs(estimate - pitch) if estimate is not None else np.inf
            hits += error <= 0.5
            errors.append(error)
    return {
        "pass_rate": hits / len(errors),
        "notes": len(errors),
        "median_error_semitones": float(np.median(errors)),
    }


@torch.inference_mode()
def spectrogram_grid(models: dict[str, Timbre], notes: NoteFeatures, seed: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng([seed, 3])
    families = [f for f in range(len(FAMILIES)) if (notes.family == f).any()]
    picks = [int(rng.choice(np.flatnonzero(notes.family == f))) for f in families]
    columns = ["real"] + [f"{name} {kind}" for name in models for kind in ("recon", "sample")]
    figure, axes = plt.subplots(len(picks), len(columns), figsize=(1.6 * len(columns), 1.25 * len(picks)),
                                squeeze=False, constrained_layout=True)
    for row, (family, index) in enumerate(zip(families, picks, strict=True)):
        data = notes.batch(np.array([index]))
        pitch = int(data["pitch"][0])
        images = [data["features"][0]]
        for model in models.values():
            latent = model.encode_features(data["features"], data["pitch"])
            images.append(model.decode_features(latent, data["pitch"])[0])
            sample = model.random_latent(seed + row, family=family, pitch=pitch)
            images.append(model.decode_features(sample, pitch))
        for col, image in enumerate(images):
            axis = axes[row, col]
            axis.imshow(image.cpu().numpy(), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[col], fontsize=8)
            if col == 0:
                axis.set_ylabel(f"{FAMILIES[family]}\n{pitch}", fontsize=7)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoint folders")
    parser.add_argument("--models", nargs="+", help="only these checkpoint names")
    parser.add_argument("--data", default="data/notes-fluidr3", help="NSynth-layout corpus (its test split is used)")
    parser.add_argument("--notes", type=int, default=200, help="test notes for LSD")
    parser.add_argument("--pairs", type=int, default=20, help="latent paths for smoothness")
    parser.add_argument("--pitch-latents", type=int, default=2, help="random latents per pitch 36-84 (cvae)")
    parser.add_argument("--pitch-step", type=int, default=1, help="test every n-th pitch of 36-84 (quick checks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/notes-benchmark.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data, out = Path(args.data), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = load_features(data, "test", pitches=range(24, 97), progress=False)
    notes = notes.subset(np.sort(np.random.default_rng([args.seed, 1]).permutation(len(notes))[: args.notes]))
    audio = test_audio(data, notes)
    true_mel, mean_spectrum = reference_lsd(notes, audio)
    results = {
        "test_notes": len(notes),
        "reference": {"true_mel_lsd_db": float(true_mel.mean()), "mean_spectrum_lsd_db": float(mean_spectrum.mean())},
        "models": {},
    }
    print(f"{len(notes)} test notes; true mel + phase: LSD {true_mel.mean():.2f} dB; mean spectrum "
          f"{mean_spectrum.mean():.2f} dB")
    models = {}
    for folder in sorted(Path(args.checkpoints).iterdir()):
        config = folder / "config.json"
        if not config.is_file() or json.loads(config.read_text()).get("model_type") not in MODELS:
            continue
        if args.models and folder.name not in args.models:
            continue
        model = Timbre.from_folder(folder, device="cpu")
        models[folder.name] = model
        lsd = reconstruction_lsd(model, notes, audio)
        ratios = smoothness(model, notes, args.pairs, args.seed)
        figures = {
            "lsd_db": float(lsd.mean()),
            "lsd_db_median": float(np.median(lsd)),
            **speed_ms(model),
            "smoothness_max_ratio": float(np.max(ratios)),
            "smoothness_median_ratio": float(np.median(ratios)),
            "n_sliders": model.n_sliders,
        }
        metrics_path = folder / "metrics.json"
        if metrics_path.is_file():
            trained = json.loads(metrics_path.read_text())
            figures.update(train_steps=trained["step"], train_epochs=trained["epochs"],
                           train_minutes=trained["train_minutes"])
        if model.conditional:
            figures["pitch"] = pitch_accuracy(model, args.pitch_latents, args.seed, args.pitch_step)
        spectrogram_grid({folder.name: model}, notes, args.seed, out.parent / f"{folder.name}-spectrograms.png")
        results["models"][folder.name] = figures
        print(f"{folder.name:8s} " + json.dumps(figures))
    if models:
        spectrogram_grid(models, notes, args.seed, out.with_suffix(".png"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
