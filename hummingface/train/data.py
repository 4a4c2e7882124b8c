"""Note features computed once and kept on disk, so training never decodes a WAV twice.

A split's features are one float16 array ``(N, n_bins, frames)`` (64 KB per note at 128 x 251) written as
``<root>/.cache/<split>-<key>.npy`` beside a JSON of the labels. ``key`` hashes the spectrogram config and
the split's ``examples.json`` (a folder of audio: every file's path, size and time), so a re-rendered corpus or
another representation gets a fresh cache. Under data parallelism rank 0 builds it while the others wait.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from hummingface.audio import AudioError
from hummingface.constants import NOTE_SAMPLES
from hummingface.data.datasets import FolderDataset, NSynthDataset
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

    def split(self, share: float, seed: int) -> tuple[NoteFeatures, NoteFeatures]:
        """A seeded ``(rest, held-out)`` split, ``share`` of the notes (at least 2) held out."""
        order = np.random.default_rng([seed, 2]).permutation(len(self))
        held = max(2, round(share * len(self)))
        return self.subset(np.sort(order[held:])), self.subset(np.sort(order[:held]))

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Notes at positions ``index``: float32 ``features`` ``(B, n_bins, frames)`` and int64 labels ``(B,)``."""
        index = np.asarray(index, dtype=np.int64)
        return {
            "features": torch.from_numpy(self.features[self.rows[index]].astype(np.float32)).to(device),
            "pitch": torch.from_numpy(self.pitch[index]).to(device),
            "velocity": torch.from_numpy(self.velocity[index]).to(device),
            "family": torch.from_numpy(self.family[index]).to(device),
        }


SILENT_PEAK = 1e-4  # a file quieter than -80 dBFS throughout holds no sound to learn
MIN_FOLDER_NOTES = 8  # fewer usable sounds than this cannot fit a model nor a latent PCA worth the name
FOLDER_VALID_SHARE = 0.1


def load_features(
    root: str | Path,
    split: str,
    spectrogram: SpectrogramConfig | None = None,
    pitches: range | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> NoteFeatures:
    """An NSynth-layout split's features, computed (and cached under ``root/.cache``) on first use.

    Args:
        pitches: keep only these MIDI pitches.
        limit: keep only the first ``limit`` notes (after the pitch filter), e.g. for smoke tests.
    """
    root = Path(root)
    spectrogram = spectrogram or SpectrogramConfig()
    index = root / f"nsynth-{split}" / "examples.json"
    if not index.is_file():
        raise UserError(f"{index} does not exist; --data must be an NSynth-layout root with nsynth-{split}/.")
    digest = _digest(spectrogram)
    digest.update(index.read_bytes())
    key = f"{split}-{digest.hexdigest()[:12]}"
    notes, _ = _cached(lambda: NSynthDataset(root, split, transform=_identity), root, key, spectrogram, progress)
    if len(notes) == 0:
        raise UserError(f"{root / f'nsynth-{split}'} holds no notes.")
    return _select(notes, pitches, limit, index)


def load_folder_features(
    folder: str | Path,
    spectrogram: SpectrogramConfig | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[NoteFeatures, int]:
    """Every usable sound of a folder of audio, and how many files were skipped as unreadable or silent.

    Labels come from :class:`~hummingface.data.datasets.FolderDataset` (pitch from NSynth-style names, else
    estimated). Features are cached under ``folder/.cache``, keyed by the spectrogram config and every file's
    path, size and time.

    Raises:
        UserError: not a folder, or fewer than :data:`MIN_FOLDER_NOTES` usable sounds.
    """
    folder = Path(folder)
    dataset = FolderDataset(folder, transform=_identity)
    spectrogram = spectrogram or SpectrogramConfig()
    digest = _digest(spectrogram)
    for path in dataset.files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    notes, skipped = _cached(lambda: dataset, folder, f"folder-{digest.hexdigest()[:12]}", spectrogram, progress)
    if len(notes) < MIN_FOLDER_NOTES:
        raise UserError(
            f"{folder} holds {len(notes)} usable sounds ({skipped} of {len(dataset.files)} files skipped as "
            f"unreadable or silent); training needs at least {MIN_FOLDER_NOTES}."
        )
    return _select(notes, None, limit, folder), skipped


def _identity(audio: torch.Tensor) -> torch.Tensor:
    return audio  # audio only: the STFT runs batched in _compute


def _digest(spectrogram: SpectrogramConfig):
    return hashlib.sha1(json.dumps(dataclasses.asdict(spectrogram), sort_keys=True).encode())


def _select(notes: NoteFeatures, pitches: range | None, limit: int | None, source: Path) -> NoteFeatures:
    keep = np.arange(len(notes))
    if pitches is not None:
        keep = keep[np.isin(notes.pitch, np.asarray(list(pitches)))]
    if limit is not None:
        keep = keep[:limit]
    if len(keep) == 0:
        raise UserError(f"{source} has no notes in the requested pitch range.")
    return notes.subset(keep)


def _cached(dataset: Callable[[], Dataset], root: Path, key: str, spectrogram: SpectrogramConfig,
            progress: bool) -> tuple[NoteFeatures, int]:
    """The features and labels cached as ``root/.cache/<key>.{npy,json}`` (computed first if absent)."""
    array_path, labels_path = root / ".cache" / f"{key}.npy", root / ".cache" / f"{key}.json"
    if not (array_path.is_file() and labels_path.is_file()):
        _compute(dataset(), spectrogram, array_path, labels_path, progress)
    labels = json.loads(labels_path.read_text())
    count = len(labels["note_ids"])
    notes = NoteFeatures(
        features=np.load(array_path, mmap_mode="r"),
        rows=np.arange(count),
        **{name: np.asarray(labels[name], dtype=np.int64) for name in ("pitch", "velocity", "family", "instrument")},
        note_ids=labels["note_ids"],
    )
    return notes, labels["skipped"]


@torch.inference_mode()
def _compute(dataset: Dataset, spectrogram: SpectrogramConfig, array_path: Path, labels_path: Path,
             progress: bool, batch_size: int = 64) -> None:
    """Features of every usable item (unreadable or silent files are counted and skipped), in dataset order."""
    transform = NoteSpectrogram(spectrogram)
    frames = NOTE_SAMPLES // spectrogram.hop_length + 1
    array_path.parent.mkdir(parents=True, exist_ok=True)
    partial = array_path.with_suffix(f".{os.getpid()}.partial.npy")  # concurrent runs never share one
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16,
                                    shape=(len(dataset), transform.n_bins, frames))
    labels: dict = {"pitch": [], "velocity": [], "family": [], "instrument": [], "note_ids": [], "skipped": 0}
    pending: list[torch.Tensor] = []
    for index in tqdm(range(len(dataset)), desc=f"features {array_path.stem}", unit="note", disable=not progress):
        try:
            audio, item = dataset[index]
        except AudioError:
            labels["skipped"] += 1
            continue
        if float(audio.abs().max()) < SILENT_PEAK:
            labels["skipped"] += 1
            continue
        pending.append(audio)
        for name in ("pitch", "velocity", "family"):
            labels[name].append(int(item[name]))
        labels["instrument"].append(int(item.get("instrument", item.get("label", 0))))
        labels["note_ids"].append(item["note_str"])
        if len(pending) == batch_size:
            _write(out, len(labels["note_ids"]), pending, transform)
    if pending:
        _write(out, len(labels["note_ids"]), pending, transform)
    out.flush()
    del out
    partial.replace(array_path)
    labels_path.write_text(json.dumps(labels))


def _write(out: np.ndarray, end: int, pending: list[torch.Tensor], transform: NoteSpectrogram) -> None:
    """Features of the ``pending`` audio ``(1, samples)`` each, batched, into ``out`` rows ending at ``end``."""
    out[end - len(pending) : end] = transform(torch.stack(pending)[:, 0]).numpy().astype(np.float16)
    pending.clear()
