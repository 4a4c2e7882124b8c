"""Note generators (``gan``, ``cdecoder``) against real notes of held-out instruments.

    python benchmarks/generator.py [--checkpoints checkpoints] [--models gan cdecoder] [--data data/notes-fluidr3]
                                   [--ndb-notes 1000] [--seeds 4] [--threads 1] [--out runs/generator-benchmark.json]
    python benchmarks/generator.py --speed-only --threads 2     # then the speed, on 2 threads, into the same file

Figures (definitions: docs/metrics.md); "real" is the same measure on real notes of the *test* split, whose
instruments no model trained on. Generated notes are measured as ``generate`` writes them, on the 16-bit
grid (:func:`as_written`), like the real notes, which are read from 16-bit files:

- **pitch accuracy**: one note per pitch 36-84 and family (all 11), each with its own seed (from ``--seed``:
  one seed for the whole grid would play one ``gan`` mixture component per family); pass when the median
  pyin f0 over voiced frames of the first 2.5 s is within 0.5 semitone of the request. Also over the cells
  whose pitch the family was trained on (the rest are extrapolations: FluidR3's bass stops at 67, its flutes
  start at 55). Real: ``--real-pitch-notes`` test notes, and as many train notes (the instruments the
  generators imitate; FluidR3's electronic organs sound an octave or two below the written pitch, so pyin
  fails nearly all of them).
- **family accuracy**: a small classifier trained on real train-split renders
  (:class:`~hummingface.models.family_classifier.FamilyClassifier`, ``--classifier``, default
  ``checkpoints/family-classifier``, trained by ``python -m hummingface train family-classifier``) applied to
  the same grid, re-analysed
  from the generated audio; real: its accuracy on the test notes (and on 2000 train notes, the instruments
  it and the generators learnt from: the ceiling for notes that imitate them; and on those notes
  phase-reconstructed and re-analysed like the generated ones).
- **NDB/K** (k = 50, :func:`hummingface.metrics.ndb_k`): ``--ndb-notes`` random test notes against as many
  generated notes with the same pitch, family and velocity (seeds 0..N-1), both as log-mel re-analysed from
  audio, pooled to 16 frames; the mean (and standard deviation) over ``--ndb-restarts`` k-means fits, as
  one fit moves the figure by up to 0.1. Real: as many random *train* notes against the test notes (the
  gap between instrument sets that even a perfect model of the training data would show). Beside it, each
  model against random train notes, generated with their labels: how well it models what it learnt.
- **diversity**: mean pairwise LSD_dB between ``--seeds`` seeds at the same pitch (48, 60, 72) and family;
  real: between two test instruments of one family at one pitch and velocity.
- **speed**: median ms per note of generation and of phase reconstruction on ``--threads`` threads.
- **spectrogram grid** ``<model>-spectrograms.png`` beside ``--out`` (families x pitches 36-84), and a
  side-by-side figure there too (real test note | gan, three seeds | cdecoder). Nothing is written into
  ``--checkpoints``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hummingface.audio import read_audio, to_int16
from hummingface.data.gm import FAMILIES
from hummingface.dsp import NoteSpectrogram
from hummingface.errors import UserError
from hummingface.metrics import lsd_db, ndb_k
from hummingface.models.family_classifier import FamilyClassifier
from hummingface.models.generator import NoteGenerator
from hummingface.models.timbre import estimate_pitch
from hummingface.train.data import NoteFeatures, load_features

GRID_PITCHES = range(36, 85)
FIGURE_PITCHES = (36, 48, 60, 72, 84)
DIVERSITY_PITCHES = (48, 60, 72)


def note_audio(data: Path, split: str, note_ids: list[str]) -> torch.Tensor:
    folder = data / f"nsynth-{split}" / "audio"
    return torch.from_numpy(np.stack([read_audio(folder / f"{note}.wav", mono=True)[0][0] for note in note_ids]))


def pooled(features: torch.Tensor, frames: int = 16) -> torch.Tensor:
    """``(B, n_bins, T)`` -> ``(B, n_bins * frames)``: the log-mel averaged into ``frames`` time slices (for NDB)."""
    return F.adaptive_avg_pool1d(features.float(), frames).flatten(1)


@torch.inference_mode()
def classify(classifier: FamilyClassifier, features: torch.Tensor, batch: int = 256) -> np.ndarray:
    return np.concatenate([
        classifier(features[i : i + batch].float()).argmax(-1).numpy() for i in range(0, len(features), batch)
    ])


def pitch_hits(audio: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: pyin's median f0 within 0.5 semitone of the request."""
    hits = []
    for note, pitch in zip(audio, pitches, strict=True):
        estimate = estimate_pitch(note)
        hits.append(estimate is not None and abs(estimate - pitch) <= 0.5)
    return np.asarray(hits)


@torch.inference_mode()
def generate(model: NoteGenerator, pitch, family, velocity, seed, temperature: float = 1.0, batch: int = 32):
    """Features and audio of many notes: ``(N, n_bins, frames)`` tensor, ``(N, 64000)`` float32 (the models are
    loaded without the vocoder: these figures re-analyse 16-kHz audio)."""
    features, audio = [], []
    for start in range(0, len(pitch), batch):
        part = slice(start, start + batch)
        out = model.features(pitch[part], family[part], velocity[part], seed[part], temperature)
        features.append(out.cpu())
        audio.append(as_written(model.audio(out, pitch[part])))
    return torch.cat(features), np.concatenate(audio)


def as_written(audio: np.ndarray) -> np.ndarray:
    """``(B, samples)`` float audio -> the same on the 16-bit grid that ``generate`` and the app deliver.

    Real notes are read from 16-bit files, so generated ones are measured after the same rounding: phase
    reconstruction leaves a residue far below one 16-bit step (about -130 dBFS) where a note has died away,
    which no listener hears and no written file keeps, yet pyin, being level-blind, tracks it as a low pitch.
    """
    return np.stack([to_int16(note) for note in audio]).astype(np.float32) / 32767.0


def ndb_figures(real: torch.Tensor, generated: torch.Tensor, args, name: str = "ndb_k") -> dict[str, float]:
    """NDB/K's mean (``name``) and standard deviation over ``--ndb-restarts`` k-means fits.

    One fit is not enough: with other k-means seeds the same two sets of notes score 0.1 apart.
    """
    values = [ndb_k(real, generated, seed=args.seed + restart) for restart in range(args.ndb_restarts)]
    return {name: float(np.mean(values)), f"{name}_sd": float(np.std(values))}


@torch.inference_mode()
def real_figures(data, test, train, classifier, spectrogram, args) -> dict:
    rng = np.random.default_rng([args.seed, 6])
    in_grid = np.flatnonzero(np.isin(test.pitch, list(GRID_PITCHES)))
    pick = np.sort(rng.choice(in_grid, min(args.real_pitch_notes, len(in_grid)), replace=False))
    audio = note_audio(data, "test", [test.note_ids[i] for i in pick]).numpy()
    pitch_pass = pitch_hits(audio, test.pitch[pick])
    in_grid = np.flatnonzero(np.isin(train.pitch, list(GRID_PITCHES)))
    seen_pick = np.sort(np.random.default_rng([args.seed, 9]).choice(in_grid, len(pick), replace=False))
    seen_audio = note_audio(data, "train", [train.note_ids[i] for i in seen_pick]).numpy()
    seen_pitch_pass = pitch_hits(seen_audio, train.pitch[seen_pick])
    seen_pitch_family = train.family[seen_pick]
    all_features = torch.from_numpy(test.features[test.rows].astype(np.float32))
    family_acc = float((classify(classifier, all_features) == test.family).mean())
    seen = train.subset(np.sort(rng.choice(len(train), 2000, replace=False)))  # the instruments it learnt from
    seen_features = torch.from_numpy(seen.features[seen.rows].astype(np.float32))
    seen_acc = float((classify(classifier, seen_features) == seen.family).mean())
    # The same notes through the generators' path: phase reconstruction, then re-analysis of the audio.
    resynthesised = torch.cat([
        spectrogram(torch.from_numpy(as_written(spectrogram.inverse(seen_features[i : i + 100]).numpy())))
        for i in range(0, len(seen_features), 100)
    ])
    resynth_acc = float((classify(classifier, resynthesised) == seen.family).mean())
    # Diversity between two instruments of one family at one pitch and velocity.
    groups: dict[tuple, list[int]] = {}
    for i in range(len(test)):
        groups.setdefault((test.family[i], test.pitch[i], test.velocity[i]), []).append(i)
    pairs = [(g[0], g[1]) for g in groups.values() if len(g) >= 2 and test.pitch[g[0]] in DIVERSITY_PITCHES]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[: args.real_pairs]]
    a = note_audio(data, "test", [test.note_ids[i] for i, _ in pairs])
    b = note_audio(data, "test", [test.note_ids[j] for _, j in pairs])
    # NDB of real train notes against the test notes.
    ndb_test = ndb_subset(test, args)
    ndb_train = train.subset(np.sort(rng.choice(len(train), len(ndb_test), replace=False)))
    real_pooled = pooled(torch.from_numpy(ndb_test.features[ndb_test.rows].astype(np.float32)))
    train_pooled = pooled(torch.from_numpy(ndb_train.features[ndb_train.rows].astype(np.float32)))
    return {
        "pitch_accuracy": float(pitch_pass.mean()),
        "pitch_notes": len(pick),
        "pitch_accuracy_train_instruments": float(seen_pitch_pass.mean()),
        "pitch_accuracy_train_instruments_by_family": {
            FAMILIES[f]: float(seen_pitch_pass[seen_pitch_family == f].mean())
            for f in range(len(FAMILIES)) if (seen_pitch_family == f).any()
        },
        "family_accuracy": family_acc,
        "family_notes": len(test),
        "family_accuracy_train_instruments": seen_acc,
        "family_accuracy_train_instruments_resynthesised": resynth_acc,
        **ndb_figures(real_pooled, train_pooled, args),
        "pairwise_lsd_db": float(lsd_db(a, b).mean()) if pairs else None,
        "pairs": len(pairs),
    }


def train_subset(train: NoteFeatures, size: int, args) -> NoteFeatures:
    """``size`` random train notes (the instruments the generators learnt), the same for every model."""
    return train.subset(np.sort(np.random.default_rng([args.seed, 10]).choice(len(train), size, replace=False)))


def ndb_subset(test: NoteFeatures, args) -> NoteFeatures:
    rng = np.random.default_rng([args.seed, 7])
    return test.subset(np.sort(rng.choice(len(test), min(args.ndb_notes, len(test)), replace=False)))


@torch.inference_mode()
def model_figures(model: NoteGenerator, test: NoteFeatures, seen: NoteFeatures, classifier, spectrogram,
                  args) -> dict:
    """The figures of one generator; ``seen``: train notes to compare with, as many as the NDB test notes."""
    cells = list(itertools.product(range(len(FAMILIES)), GRID_PITCHES[:: args.pitch_step]))
    family = np.array([f for f, _ in cells])
    pitch = np.array([p for _, p in cells])
    count = len(cells)
    seeds = args.seed * 10_000 + np.arange(count)  # a seed per cell: the gan's mixture components all get played
    _, audio = generate(model, pitch, family, np.full(count, 100), seeds, args.temperature)
    pitch_pass = pitch_hits(audio, pitch)
    predicted = classify(classifier, spectrogram(torch.from_numpy(audio)))
    family_pass = predicted == family
    ranges = model.model.pitch_range.cpu().numpy()
    trained = (pitch >= ranges[family, 0]) & (pitch <= ranges[family, 1])

    lsds = []
    for f, p in itertools.product(range(len(FAMILIES)), DIVERSITY_PITCHES):
        seeds = np.arange(args.seeds)
        _, notes = generate(model, np.full(args.seeds, p), np.full(args.seeds, f), np.full(args.seeds, 100), seeds,
                            args.temperature)
        notes = torch.from_numpy(notes)
        for i, j in itertools.combinations(range(args.seeds), 2):
            lsds.append(float(lsd_db(notes[i], notes[j])))

    ndb_test = ndb_subset(test, args)
    _, ndb_audio = generate(model, ndb_test.pitch, ndb_test.family, ndb_test.velocity, np.arange(len(ndb_test)),
                            args.temperature)
    real_pooled = pooled(torch.from_numpy(ndb_test.features[ndb_test.rows].astype(np.float32)))
    fake_pooled = pooled(spectrogram(torch.from_numpy(ndb_audio)))
    # The same against the training notes (the distribution it learnt), generated with their labels.
    _, seen_audio = generate(model, seen.pitch, seen.family, seen.velocity, np.arange(len(seen)), args.temperature)
    seen_pooled = pooled(torch.from_numpy(seen.features[seen.rows].astype(np.float32)))
    seen_fake_pooled = pooled(spectrogram(torch.from_numpy(seen_audio)))
    return {
        "pitch_accuracy": float(pitch_pass.mean()),
        "pitch_accuracy_trained_range": float(pitch_pass[trained].mean()),
        "pitch_accuracy_by_family": {FAMILIES[f]: float(pitch_pass[family == f].mean()) for f in range(len(FAMILIES))},
        "pitch_notes": count,
        "family_accuracy": float(family_pass.mean()),
        "family_accuracy_trained_range": float(family_pass[trained].mean()),
        "trained_range_cells": int(trained.sum()),
        "family_accuracy_by_family": {
            FAMILIES[f]: float(family_pass[family == f].mean()) for f in range(len(FAMILIES))
        },
        **ndb_figures(real_pooled, fake_pooled, args),
        **ndb_figures(seen_pooled, seen_fake_pooled, args, name="ndb_k_train_instruments"),
        "pairwise_lsd_db": float(np.mean(lsds)),
        "pairwise_lsd_db_min": float(np.min(lsds)),
        **speed_ms(model),
    }


@torch.inference_mode()
def speed_ms(model: NoteGenerator, repeats: int = 20) -> dict[str, float]:
    for _ in range(3):
        model.audio(model.features(60, "guitar"), 60)
    generation, phase = [], []
    for seed in range(repeats):
        start = time.perf_counter()
        features = model.features(60, "guitar", 100, seed)
        middle = time.perf_counter()
        model.audio(features[0], 60)
        generation.append(middle - start)
        phase.append(time.perf_counter() - middle)
    generation_ms, phase_ms = 1000 * float(np.median(generation)), 1000 * float(np.median(phase))
    return {"generation_ms": generation_ms, "phase_ms": phase_ms, "total_ms": generation_ms + phase_ms}


def _image(axis, image, title: str | None = None, label: str | None = None) -> None:
    axis.imshow(image.cpu().numpy(), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma")
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=8)
    if label:
        axis.set_ylabel(label, fontsize=7)


@torch.inference_mode()
def grid_figure(model: NoteGenerator, seed: int, path: Path) -> None:
    """Families (rows) x pitches (columns) of one model's generated features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(FAMILIES), len(FIGURE_PITCHES), figsize=(1.5 * len(FIGURE_PITCHES) + 0.4, 13),
                                squeeze=False, constrained_layout=True)
    for row, family in enumerate(FAMILIES):
        images = model.features(list(FIGURE_PITCHES), family, 100, seed)
        for col, pitch in enumerate(FIGURE_PITCHES):
            trained = pitch in model.family_pitches(family)
            _image(axes[row, col], images[col], f"MIDI {pitch}" if row == 0 else None,
                   family if col == 0 else None)
            if not trained:  # outside the pitches this family was trained on
                axes[row, col].text(0.97, 0.95, "x", color="white", fontsize=7, ha="right", va="top",
                                    transform=axes[row, col].transAxes)
    figure.suptitle(f"{model.name}: generated log-mel, seed {seed} (x: pitch never trained for that family)",
                    fontsize=9)
    figure.savefig(path, dpi=80)
    plt.close(figure)


@torch.inference_mode()
def side_by_side(models: dict[str, NoteGenerator], test: NoteFeatures, seed: int, path: Path) -> None:
    """Per family: a real held-out note at the pitch nearest 60, then each model at that pitch (3 gan seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng([seed, 8])
    columns = ["real (test)"] + [f"{n} seed {s}" for n, m in models.items() for s in range(3 if n == "gan" else 1)]
    figure, axes = plt.subplots(len(FAMILIES), len(columns), figsize=(1.6 * len(columns) + 0.4, 13),
                                squeeze=False, constrained_layout=True)
    for row, family in enumerate(FAMILIES):
        rows = np.flatnonzero(test.family == row)
        nearest = rows[np.abs(test.pitch[rows] - 60) == np.abs(test.pitch[rows] - 60).min()]
        index = int(rng.choice(nearest))
        pitch = int(test.pitch[index])
        images = [test.batch(np.array([index]))["features"][0]]
        for name, model in models.items():
            seeds = list(range(3 if name == "gan" else 1))
            images += list(model.features(pitch, family, 100, seeds))
        for col, image in enumerate(images):
            _image(axes[row, col], image, columns[col] if row == 0 else None,
                   f"{family}\n{pitch}" if col == 0 else None)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoint folders")
    parser.add_argument("--models", nargs="+", default=["gan", "cdecoder"], help="checkpoint names")
    parser.add_argument("--data", default="data/notes-fluidr3", help="NSynth-layout corpus (test split used)")
    parser.add_argument("--ndb-notes", type=int, default=1000, help="test notes (and generated notes) for NDB/K")
    parser.add_argument("--ndb-restarts", type=int, default=5, help="k-means fits NDB/K is averaged over")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per pitch and family for diversity")
    parser.add_argument("--temperature", type=float, default=1.0, help="gan noise scale (below 1: more typical)")
    parser.add_argument("--pitch-step", type=int, default=1, help="test every n-th pitch of 36-84 (quick checks)")
    parser.add_argument("--real-pitch-notes", type=int, default=300, help="real test notes for the pitch check")
    parser.add_argument("--real-pairs", type=int, default=100, help="pairs of real test notes for diversity")
    parser.add_argument("--classifier", default="checkpoints/family-classifier",
                        help="the judge (train it with `python -m hummingface train family-classifier`)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed-only", action="store_true",
                        help="measure only the speed, and update it in --out (quality runs on 1 thread, speed on 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/generator-benchmark.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data, checkpoints = Path(args.data), Path(args.checkpoints)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.speed_only:
        results = json.loads(out.read_text()) if out.is_file() else {"models": {}}
        for name in args.models:
            figures = speed_ms(NoteGenerator.from_folder(checkpoints / name, device="cpu"))
            results["models"].setdefault(name, {}).update(figures, speed_threads=args.threads)
            print(f"{name:8s} " + json.dumps(figures))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    classifier = FamilyClassifier.from_folder(args.classifier, device="cpu")
    spectrogram = NoteSpectrogram()
    test = load_features(data, "test", pitches=range(24, 97), progress=False)
    print("real notes ...", flush=True)
    train = load_features(data, "train", pitches=range(24, 97), progress=False)
    results = {"real": real_figures(data, test, train, classifier, spectrogram, args), "models": {}}
    seen = train_subset(train, len(ndb_subset(test, args)), args)
    print("real     " + json.dumps(results["real"]))
    models = {}
    for name in args.models:
        try:
            model = NoteGenerator.from_folder(checkpoints / name, device="cpu")
        except UserError as error:
            print(f"skipping {name}: {error}")
            continue
        models[name] = model
        print(f"{name} ...", flush=True)
        figures = {**model_figures(model, test, seen, classifier, spectrogram, args), "speed_threads": args.threads,
                   # the judge's own accuracy on real notes of held-out instruments: read family accuracy beside it
                   "family_accuracy_judge_held_out": results["real"]["family_accuracy"]}
        metrics_path = checkpoints / name / "metrics.json"
        if metrics_path.is_file():
            trained = json.loads(metrics_path.read_text())
            figures.update(train_steps=trained["step"], train_epochs=trained["epochs"],
                           train_minutes=trained["train_minutes"])
        grid_figure(model, args.seed, out.parent / f"{name}-spectrograms.png")
        results["models"][name] = figures
        print(f"{name:8s} " + json.dumps(figures))
    if models:
        side_by_side(models, test, args.seed, out.with_suffix(".png"))
    results["settings"] = vars(args)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
