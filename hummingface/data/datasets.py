"""PyTorch datasets of 4-s notes: the NSynth layout, and any folder of audio.

Both yield ``(features, labels)``: ``features = transform(audio)`` where ``audio`` is float32 ``(1, 4 * rate)``
in [-1, 1] and ``transform`` defaults to :class:`hummingface.dsp.NoteSpectrogram` (the representation every
note model shares); ``labels`` is a dict that the default ``DataLoader`` collate batches. Notes come at 16 kHz
unless a ``sample_rate`` is asked for; ``NSynthDataset(..., sample_rate=None)`` gives a corpus's own recorded
rate (``examples.json``'s ``sample_rate``: 16 kHz for the real NSynth, any for :mod:`hummingface.data.notes`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hummingface.audio import fit_length, read_audio
from hummingface.constants import NOTE_SAMPLES, SAMPLE_RATE
from hummingface.data.gm import FAMILIES, SOURCES
from hummingface.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
NSYNTH_NAME = re.compile(r"-(?P<pitch>\d{3})-(?P<velocity>\d{3})$")  # note_str ends "-060-100"

Transform = Callable[[torch.Tensor], torch.Tensor]


def _default_transform() -> Transform:
    from hummingface.dsp import NoteSpectrogram

    return NoteSpectrogram()


def read_note(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any audio file -> float32 ``(1, 4 * sample_rate)``: mono at ``sample_rate``, trimmed or zero-padded to 4 s."""
    audio, _ = read_audio(path, sample_rate=sample_rate, mono=True)
    return fit_length(audio, NOTE_SAMPLES * sample_rate // SAMPLE_RATE)


def corpus_rate(examples: dict) -> int:
    """The sample rate an NSynth-layout split's ``examples.json`` records (NSynth's 16 kHz when it is silent)."""
    return int(next(iter(examples.values()), {}).get("sample_rate", SAMPLE_RATE))


def _features(note: np.ndarray, transform: Transform) -> torch.Tensor:
    with torch.no_grad():
        return transform(torch.from_numpy(note))


class NSynthDataset(Dataset):
    """One split of an NSynth-layout corpus: ``root/nsynth-<split>/examples.json`` + ``audio/<note_str>.wav``.

    Works on our renders (:mod:`hummingface.data.notes`) and on the real NSynth download alike.

    Args:
        root: folder holding ``nsynth-train``, ``nsynth-valid``, ``nsynth-test``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        families: keep only these families (names like ``"guitar"`` or NSynth indices); ``None`` keeps all.
        pitches: keep only these MIDI pitches (e.g. ``range(24, 85)``); ``None`` keeps all.
        sources: keep only these sources (``"acoustic"``, ``"electronic"``, ``"synthetic"`` or indices).
        transform: ``(1, samples)`` float32 audio -> features; default ``NoteSpectrogram()`` (16 kHz).
        sample_rate: Hz the audio is read at (resampled when the corpus holds another rate); ``None``: the
            corpus's recorded rate, :attr:`corpus_rate`.

    Items are ``(features, labels)`` with labels ``pitch``, ``velocity``, ``family``, ``source``, ``instrument``
    (ints), ``note_str`` (str) and ``qualities`` (float32 tensor of NSynth's 10 flags).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        families: Iterable[str | int] | None = None,
        pitches: Iterable[int] | None = None,
        sources: Iterable[str | int] | None = None,
        transform: Transform | None = None,
        sample_rate: int | None = SAMPLE_RATE,
    ) -> None:
        self.folder = Path(root) / f"nsynth-{split}"
        index = self.folder / "examples.json"
        if not index.is_file():
            raise UserError(f"{index} does not exist; expected the NSynth layout root/nsynth-{split}/examples.json.")
        try:
            examples = json.loads(index.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{index} cannot be read as JSON ({error}).") from None
        self.corpus_rate = corpus_rate(examples)
        self.sample_rate = sample_rate or self.corpus_rate
        keep_families = _indices(families, FAMILIES, "family")
        keep_sources = _indices(sources, SOURCES, "source")
        keep_pitches = None if pitches is None else set(pitches)
        self.examples = [
            example for _, example in sorted(examples.items())
            if (keep_families is None or example["instrument_family"] in keep_families)
            and (keep_sources is None or example["instrument_source"] in keep_sources)
            and (keep_pitches is None or example["pitch"] in keep_pitches)
        ]
        self.transform = transform if transform is not None else _default_transform()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        example = self.examples[index]
        audio = read_note(self.folder / "audio" / f"{example['note_str']}.wav", self.sample_rate)
        features = _features(audio, self.transform)
        return features, {
            "pitch": example["pitch"],
            "velocity": example["velocity"],
            "family": example["instrument_family"],
            "source": example["instrument_source"],
            "instrument": example["instrument"],
            "note_str": example["note_str"],
            "qualities": torch.tensor(example["qualities"], dtype=torch.float32),
        }


class FolderDataset(Dataset):
    """Every audio file under a folder (recursively), as 4-s 16-kHz mono notes with NSynth-like labels.

    Files are resampled, mixed to mono, and trimmed or zero-padded to 4 s. Labels:

    - ``label_str``: the file name up to its first ``_`` (the Free Spoken Digit Dataset's ``7_jackson_32.wav``
      is ``"7"``; a one-shot ``kick_03.wav`` is ``"kick"``) and ``label``, its index into :attr:`classes`;
    - ``pitch`` and ``velocity``: from an NSynth-style name ending ``-PPP-VVV`` (``guitar_001-060-100.wav``);
      otherwise the pyin estimate of the pitch (middle C, 60, for unpitched sounds) and velocity 100;
    - ``family``: the NSynth family the label names, else ``label`` modulo the 11 families (so a collection's
      own classes still get apart colours in the Explorer);
    - ``note_str``: the file's stem; ``path``.

    Raises (on reading an item): :class:`hummingface.audio.AudioError` for a file that is not usable audio.
    """

    def __init__(self, path: str | os.PathLike, transform: Transform | None = None) -> None:
        folder = Path(path)
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder.")
        self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not self.files:
            raise UserError(f"{folder} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
        self.labels = [p.stem.split("_", 1)[0] for p in self.files]
        self.classes = sorted(set(self.labels))
        self.transform = transform if transform is not None else _default_transform()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        from hummingface.models.timbre import note_pitch

        path = self.files[index]
        note = read_note(path)
        features = _features(note, self.transform)
        label = self.labels[index]
        label_index = self.classes.index(label)
        named = NSYNTH_NAME.search(path.stem)
        pitch = int(named["pitch"]) if named else note_pitch(note[0])
        return features, {
            "label": label_index,
            "label_str": label,
            "pitch": pitch,
            "velocity": int(named["velocity"]) if named else 100,
            "family": FAMILIES.index(label) if label in FAMILIES else label_index % len(FAMILIES),
            "note_str": path.stem,
            "path": str(path),
        }


def _indices(values: Iterable[str | int] | None, vocabulary: tuple[str, ...], name: str) -> set[int] | None:
    """Names or indices -> a set of indices into ``vocabulary``; ``None`` stays ``None``."""
    if values is None:
        return None
    indices = set()
    for value in [values] if isinstance(values, str) else values:
        if isinstance(value, (int, np.integer)) and 0 <= value < len(vocabulary):
            indices.add(int(value))
        elif value in vocabulary:
            indices.add(vocabulary.index(value))
        else:
            raise UserError(f"Unknown {name} {value!r}; choose from {', '.join(vocabulary)}.")
    return indices
