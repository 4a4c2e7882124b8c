"""What the note generators' tasks share (``gan`` in :mod:`.gan`, ``cdecoder`` in :mod:`.cdecoder`).

Both train on an NSynth-layout corpus with its extra labels (source, qualities), start each family's pitch
range from the data, and warm-start from the ``cvae`` (``init``, default ``checkpoints/cvae``): they copy its
pitch conditioning and decoder. Each checkpoint adds ``samples.png``: one generated note per family at MIDI 60,
from fixed noise (the same notes at every checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from hummingface.constants import TRAIN_PITCHES
from hummingface.data.gm import FAMILIES
from hummingface.errors import UserError
from hummingface.models.autoencoder import CVAE
from hummingface.models.generator import MODELS, CDecoder, warm_start
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.engine import Task, TrainConfig

SAMPLE_PITCH = 60


@dataclasses.dataclass(frozen=True)
class GeneratorTrainConfig(TrainConfig):
    """What both generators' configs add to :class:`TrainConfig`.

    Attributes:
        init: ``cvae`` checkpoint folder to warm-start from, or ``None`` for a random start.
        betas: Adam's betas (GANs like a small beta1).
        min_pitch, max_pitch: MIDI pitches trained on (inclusive).
        valid_notes: validation notes evaluated at each checkpoint.
    """

    init: str | None = "checkpoints/cvae"
    betas: tuple[float, float] = (0.5, 0.99)
    min_pitch: int = TRAIN_PITCHES.start
    max_pitch: int = TRAIN_PITCHES.stop - 1
    valid_notes: int = 512


@dataclasses.dataclass
class Labels:
    """Labels beyond :class:`NoteFeatures`' (from ``examples.json``): source ``(N,)``, qualities ``(N, 10)``."""

    source: np.ndarray
    qualities: np.ndarray

    @classmethod
    def read(cls, root: Path, split: str, notes: NoteFeatures) -> Labels:
        examples = json.loads((root / f"nsynth-{split}" / "examples.json").read_text())
        rows = [examples[note] for note in notes.note_ids]
        return cls(
            np.asarray([row["instrument_source"] for row in rows], dtype=np.int64),
            np.asarray([row["qualities"] for row in rows], dtype=np.float32),
        )


class GeneratorTask(Task):
    """Data, building and the ``cvae`` warm start of a note generator; subclasses add the step and evaluation."""

    config: GeneratorTrainConfig

    def load_data(self, progress: bool) -> int:
        config, root = self.config, Path(self.config.data)
        pitches = range(config.min_pitch, config.max_pitch + 1)
        spectrogram = self.model_config.spectrogram
        self.train_set = load_features(root, "train", spectrogram, pitches, config.limit, progress)
        valid = load_features(root, "valid", spectrogram, pitches, config.limit, progress)
        order = np.random.default_rng([config.seed, 1]).permutation(len(valid))
        self.valid_set = valid.subset(np.sort(order[: config.valid_notes]))
        self.train_labels = Labels.read(root, "train", self.train_set)
        self.valid_labels = Labels.read(root, "valid", self.valid_set)
        return len(self.train_set)

    def build(self, resume: Path | None) -> None:
        cls = MODELS[self.name]
        model_config = cls.from_folder(resume).config if resume is not None else self.model_config
        self.model = cls(model_config).to(self.device)

    def batch(self, notes: NoteFeatures, labels: Labels, index: np.ndarray) -> dict[str, torch.Tensor]:
        batch = notes.batch(index, self.device)
        batch["source"] = torch.from_numpy(labels.source[index]).to(self.device)
        batch["qualities"] = torch.from_numpy(labels.qualities[index]).to(self.device)
        return batch

    def initialise(self, progress: bool) -> None:
        """Pitch ranges from the training labels, then the warm start from ``config.init``, if any."""
        notes = self.train_set
        for family in range(self.model.config.n_families):
            pitches = notes.pitch[notes.family == family]
            if len(pitches):
                self.model.pitch_range[family] = torch.tensor([int(pitches.min()), int(pitches.max())])
        if self.config.init is not None:
            self.cvae = load_cvae(Path(self.config.init), self.model, self.device)
            warm_start(self.model, self.cvae)

    def save(self, folder: Path) -> dict:
        plot_samples(self.model, self.config.seed, self.device, folder / "samples.png")
        return {"train_notes": len(self.train_set), "valid_notes": len(self.valid_set), "init": self.config.init}


def load_cvae(folder: Path, model: torch.nn.Module, device: torch.device) -> CVAE:
    """The ``cvae`` in ``folder``, checked to fit ``model`` (same conditioning, decoder and features).

    Raises:
        UserError: no checkpoint there, or one that differs from the generator.
    """
    if not (folder / "config.json").is_file():
        raise UserError(f"--init {folder} is not a checkpoint folder (no config.json); give a cvae or 'none'.")
    cvae = CVAE.from_folder(folder, device=device)
    mismatch = [name for name in ("channels", "pitch_embedding", "min_pitch", "max_pitch", "spectrogram")
                if getattr(cvae.config, name) != getattr(model.config, name)]
    if not isinstance(model, CDecoder) and cvae.config.latent_size != model.config.latent_size:
        mismatch.append("latent_size")
    if cvae.pitch.size != model.config.cond_size:
        mismatch.append("cond_size")
    if mismatch:
        raise UserError(f"--init {folder} differs from the generator in {', '.join(mismatch)}; it cannot start it.")
    return cvae


@torch.inference_mode()
def plot_samples(model, seed: int, device: torch.device, path: Path) -> None:
    """One note per family at :data:`SAMPLE_PITCH` from fixed noise (the same at every checkpoint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    n = model.config.n_families
    pitch = torch.full((n,), SAMPLE_PITCH, device=device)
    family = torch.arange(n, device=device)
    velocity = torch.full((n,), 100, device=device)
    if isinstance(model, CDecoder):
        vector = model.presets[family, 0]
        images = model(pitch, family, velocity, vector[:, 0].long(), vector[:, 1:])
    else:
        images = model(*model.random_inputs(n, torch.Generator().manual_seed(seed)), pitch, family, velocity)
    figure, axes = plt.subplots(1, n, figsize=(1.3 * n, 1.8), constrained_layout=True)
    for axis, image, name in zip(axes, images, FAMILIES, strict=True):
        axis.imshow(image.float().cpu().numpy(), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma")
        axis.set_title(name, fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.savefig(path, dpi=80)
    plt.close(figure)
