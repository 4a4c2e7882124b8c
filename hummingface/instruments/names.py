"""Named sliders: what each PCA direction of a timbre model measurably does to the sound.

For ``count`` random base sounds (drawn from the latent PCA's Gaussian), each slider is moved ``step`` std
down and up and both notes are decoded and described (:mod:`.descriptors`). A descriptor names the slider
when it moves the same way for at least :data:`AGREEMENT` of the base sounds (a margin above the 90 % it should
hold on any other sounds); the (at most two) names with
the largest typical change, in units of the descriptor's spread over the bases, make the label, e.g.
``"3 · brighter, shorter decay"`` (moving slider 3 up). Computed once per checkpoint and saved beside its
weights as ``slider_names.json`` (``python -m hummingface name-sliders --model M``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from hummingface.instruments.descriptors import NAMES, WORDS, describe_many

NAMES_FILE = "slider_names.json"
AGREEMENT = 0.96  # above the 90 % a word must hold on new sounds: a 50-sound estimate near 90 % often falls short
MAX_WORDS = 2
CONDITIONAL_PITCH = 60  # the cvae's sounds are described at middle C


@torch.inference_mode()
def decode_notes(timbre, latents: torch.Tensor, batch: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Latents ``(B, D)`` -> (audio ``(B, samples)``, MIDI pitches ``(B,)``): the cvae at middle C, the other
    models at the pitch their latent holds."""
    audio, pitches = [], []
    for part in torch.split(latents.float(), batch):
        if timbre.conditional:
            pitch = torch.full((len(part),), CONDITIONAL_PITCH)
        else:
            pitch = timbre.model.read_pitch(part.to(timbre.device)).cpu()
        audio.append(timbre.audio(timbre.decode_features(part, pitch), pitch))
        pitches.append(pitch.numpy())
    return np.concatenate(audio), np.concatenate(pitches)


def slider_changes(timbre, count: int = 50, seed: int = 0, step: float = 1.0,
                   sliders: list[int] | None = None) -> dict[int, dict[str, np.ndarray]]:
    """Per slider (0-based; default all), ``{descriptor: (count,)}`` changes from ``step`` std below to ``step``
    std above each of ``count`` random base sounds, plus ``"_spread"``: each descriptor's std over the bases."""
    space = timbre.latent
    bases = space.random(torch.Generator().manual_seed(seed), count)
    sr = timbre.sample_rate
    audio, pitches = decode_notes(timbre, bases)
    spread = {name: float(values.std() + 1e-12) for name, values in describe_many(audio, sr, pitches).items()}
    changes = {}
    for k in range(space.n_sliders) if sliders is None else sliders:
        move = step * space.std[k] * space.components[k]
        audio, pitches = decode_notes(timbre, torch.cat([bases - move, bases + move]))
        described = describe_many(audio, sr, pitches)
        changes[k] = {name: described[name][count:] - described[name][:count] for name in NAMES}
        changes[k]["_spread"] = spread
    return changes


def name_sliders(timbre, count: int = 50, seed: int = 0, step: float = 1.0) -> dict:
    """The ``slider_names.json`` content for ``timbre`` (see the module docstring)."""
    sliders = []
    for k, change in slider_changes(timbre, count, seed, step).items():
        terms = []
        for name in NAMES:
            up = float((change[name] > 0).mean())
            direction = 1 if up >= 0.5 else -1
            agreement = max(up, float((change[name] < 0).mean()))
            effect = float(abs(np.median(change[name])) / change["_spread"][name])
            terms.append({"descriptor": name, "direction": direction, "agreement": agreement, "effect": effect})
        named = sorted((t for t in terms if t["agreement"] >= AGREEMENT), key=lambda t: -t["effect"])[:MAX_WORDS]
        words = [WORDS[t["descriptor"]][0 if t["direction"] > 0 else 1] for t in named]
        sliders.append({"slider": k + 1, "label": ", ".join(words), "named": named, "terms": terms})
    return {"format": 1, "model": timbre.name, "bases": count, "seed": seed, "step_std": step,
            "agreement": AGREEMENT, "sliders": sliders}


def save_names(names: dict, folder: str | os.PathLike) -> Path:
    path = Path(folder) / NAMES_FILE
    path.write_text(json.dumps(names, indent=2) + "\n")
    return path


def load_labels(folder: str | os.PathLike | None, count: int) -> list[str]:
    """Slider labels ``["1 · brighter, longer decay", "Direction 2", ...]`` from ``folder``'s names."""
    words = {}
    path = Path(folder) / NAMES_FILE if folder is not None else None
    if path is not None and path.is_file():
        try:
            words = {entry["slider"]: entry["label"] for entry in json.loads(path.read_text())["sliders"]}
        except (OSError, ValueError, KeyError, TypeError):
            words = {}  # an unreadable names file only costs the names
    return [f"{k} · {words[k]}" if words.get(k) else f"Direction {k}" for k in range(1, count + 1)]
