"""The family classifier's task for :mod:`hummingface.train.engine`: the judge of the generators' families.

Trained on real train-split notes, augmented so that it learns families rather than the training instruments:
a random gain (+-0.3 in feature units, about +-22 dB), a shift of up to 2 mel bands (a slightly detuned or
brighter instrument) and up to 8 frames of delay. Its accuracy on validation notes is reported at each
checkpoint; ``benchmarks/generator.py`` reports it on the held-out test instruments beside the generators'.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hummingface.constants import TRAIN_PITCHES
from hummingface.models.family_classifier import FamilyClassifier
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.engine import Task, TrainConfig


@dataclasses.dataclass(frozen=True)
class ClassifierTrainConfig(TrainConfig):
    """How the family classifier is trained: a constant rate (``final_lr_ratio`` 1), no clipping."""

    minutes: float | None = 30.0
    batch_size: int = 64
    final_lr_ratio: float = 1.0
    grad_clip: float | None = None


class ClassifierTask(Task):
    name = "family-classifier"
    config: ClassifierTrainConfig
    model: FamilyClassifier

    def load_data(self, progress: bool) -> int:
        config, spectrogram = self.config, self.model_config.spectrogram
        self.train_set = load_features(config.data, "train", spectrogram, TRAIN_PITCHES, config.limit, progress)
        self.valid_set = load_features(config.data, "valid", spectrogram, TRAIN_PITCHES, config.limit, progress)
        return len(self.train_set)

    def build(self, resume: Path | None) -> None:
        model_config = FamilyClassifier.from_folder(resume).config if resume is not None else self.model_config
        self.model = FamilyClassifier(model_config).to(self.device)
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)}

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        batch = self.train_set.batch(index, self.device)
        features = augment(batch["features"], np.random.default_rng([self.config.seed, 5, step, self.dist.rank]))
        with self.autocast():
            loss = F.cross_entropy(self.trained(features).float(), batch["family"])
        self.update(loss, self.optimizers["optimizer"])
        return {"ce": loss.item()}

    def evaluate(self) -> dict[str, float]:
        return {"accuracy": accuracy(self.model, self.valid_set, self.device)}

    def save(self, folder: Path) -> dict:
        return {"train_notes": len(self.train_set), "valid_notes": len(self.valid_set)}


def augment(features: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``(B, n_bins, frames)`` features with a random gain per note, and a band shift and delay per batch."""
    gain = torch.from_numpy(rng.uniform(-0.3, 0.3, (len(features), 1, 1)).astype(np.float32)).to(features.device)
    features = torch.roll(features + gain, int(rng.integers(-2, 3)), dims=1)
    delay = int(rng.integers(0, 9))
    return F.pad(features, (delay, 0), value=-1.0)[..., : features.shape[-1]]


@torch.inference_mode()
def accuracy(model: FamilyClassifier, notes: NoteFeatures, device: torch.device | str = "cpu",
             batch_size: int = 256) -> float:
    """Share of ``notes`` whose family the classifier names."""
    model.eval()
    hits = 0
    for start in range(0, len(notes), batch_size):
        batch = notes.batch(np.arange(start, min(start + batch_size, len(notes))), device)
        hits += int((model(batch["features"]).argmax(-1) == batch["family"]).sum())
    return hits / len(notes)
