"""Note features computed once and kept on disk, so training never decodes a WAV twice.

A split's features are one float16 array ``(N, n_bins, frames)`` (64 KB per note at 128 x 251) written as
``<root>/.cache/<split>-<key>.npy`` beside a JSON of the labels. ``key`` hashes the spectrogram config and
the split's ``examples.json``, so a re-rendered corpus or another representation gets a fresh cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from hummingface.data.datasets import NSynthDataset
from hummingface.dsp import NoteSpectrogram, SpectrogramConfig
from hummingface.errors import UserError


@dataclasses.dataclass
class NoteFeatures:
    """A split's notes: float16 features (a memory map of the whole split) and the kept rows' labels.

    ``rows`` ``(N,)`` picks the kept notes out of ``features``; labels are ``(N,)`` int64, aligned with it.
    """

    features: np.ndarray
    rows: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    family: np.ndarray
    instrument: np.ndarray
    note_ids: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> NoteFeatures:
        """The notes at positions ``keep`` (into this set)."""
        keep = np.asarray(keep, dtype=np.int64)
        return NoteFeatures(
            self.features, self.rows[keep], self.pitch[keep], self.velocity[keep], self.family[keep],
            self.instrument[keep], [self.note_ids[i] for i in keep],
        )

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Notes at positions ``index``: float32 ``features`` ``(B, n_bins, frames)`` and int64 labels ``(B,)``."""
        index = np.asarray(index, dtype=np.int64)
        return {
            "features": torch.from_numpy(self.features[self.rows[index]].astype(np.float32)).to(device),
            "pitch": torch.from_numpy(self.pitch[index]).to(device),
            "velocity": torch.from_numpy(self.velocity[index]).to(device),
            "family": torch.from_numpy(self.family[index]).to(device),
        }


def cache_key(root: Path, split: str, spectrogram: SpectrogramConfig) -> str:
    index = root / f"nsynth-{split}" / "examples.json"
    digest = hashlib.sha1(json.dumps(dataclasses.asdict(spectrogram), sort_keys=True).encode())
    digest.update(index.read_bytes())
    return digest.hexdigest()[:12]


def load_features(
    root: str | Path,
    split: str,
    spectrogram: SpectrogramConfig | None = None,
    pitches: range | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> NoteFeatures:
    """A split's features, computed (and cached under ``root/.cache``) on first use.

    Args:
        pitches: keep only these MIDI pitches.
        limit: keep only the first ``limit`` notes (after the pitch filter), e.g. for smoke tests.
    """
    root = Path(root)
    spectrogram = spectrogram or SpectrogramConfig()
    index = root / f"nsynth-{split}" / "examples.json"
    if not index.is_file():
        raise UserError(f"{index} does not exist; --data must be an NSynth-layout root with nsynth-{split}/.")
    key = cache_key(root, split, spectrogram)
    cache = root / ".cache"
    array_path, labels_path = cache / f"{split}-{key}.npy", cache / f"{split}-{key}.json"
    if not (array_path.is_file() and labels_path.is_file()):
        _compute(root, split, spectrogram, array_path, labels_path, progress)
    labels = json.loads(labels_path.read_text())
    features = np.load(array_path, mmap_mode="r")
    notes = NoteFeatures(
        features=features,
        rows=np.arange(len(features)),
        **{name: np.asarray(labels[name], dtype=np.int64) for name in ("pitch", "velocity", "family", "instrument")},
        note_ids=labels["note_ids"],
    )
    keep = np.arange(len(notes))
    if pitches is not None:
        keep = keep[np.isin(notes.pitch, np.asarray(list(pitches)))]
    if limit is not None:
        keep = keep[:limit]
    if len(keep) == 0:
        raise UserError(f"{index} has no notes in the requested pitch range.")
    return notes.subset(keep)


@torch.inference_mode()
def _compute(root: Path, split: str, spectrogram: SpectrogramConfig, array_path: Path, labels_path: Path,
             progress: bool) -> None:
    dataset = NSynthDataset(root, split, transform=lambda audio: audio)  # audio only: the STFT runs batched below
    if len(dataset) == 0:
        raise UserError(f"{root / f'nsynth-{split}'} holds no notes.")
    transform = NoteSpectrogram(spectrogram)
    frames = 64000 // spectrogram.hop_length + 1
    array_path.parent.mkdir(parents=True, exist_ok=True)
    partial = array_path.with_suffix(f".{os.getpid()}.partial.npy")  # concurrent runs never share one
    shape = (len(dataset), transform.n_bins, frames)
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=shape)
    labels: dict[str, list] = {"pitch": [], "velocity": [], "family": [], "instrument": [], "note_ids": []}
    start = 0
    loader = DataLoader(dataset, batch_size=64, num_workers=0)
    for audio, batch in tqdm(loader, desc=f"features {split}", unit="batch", disable=not progress):
        features = transform(audio[:, 0])  # (B, 1, 64000) -> (B, n_bins, frames)
        out[start : start + len(features)] = features.numpy().astype(np.float16)
        start += len(features)
        for name in ("pitch", "velocity", "family", "instrument"):
            labels[name] += batch[name].tolist()
        labels["note_ids"] += list(batch["note_str"])
    out.flush()
    del out
    partial.replace(array_path)
    labels_path.write_text(json.dumps(labels))
