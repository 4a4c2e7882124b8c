"""The ``cdecoder`` note generator's task for :mod:`hummingface.train.engine`: labels in, notes out, L1.

The loss is ``recon/l1``, the mean absolute error of the normalised log-mel features. Not MSE on linear
magnitudes: on those sparse targets the all-zero spectrogram is a deep local minimum (the original project's
outputs collapsed to it); the log-mel is dense and L1 keeps the median's sharp partials. The model keeps each
family's most frequent (source, qualities) vectors as its presets (:func:`presets`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hummingface.models.generator import CDecoder, GeneratorConfig
from hummingface.train.generator import GeneratorTask, GeneratorTrainConfig, Labels


@dataclasses.dataclass(frozen=True)
class CDecoderTrainConfig(GeneratorTrainConfig):
    """How the ``cdecoder`` is trained: :class:`GeneratorTrainConfig`'s fields, nothing more."""


class CDecoderTask(GeneratorTask):
    name = "cdecoder"
    config: CDecoderTrainConfig
    model: CDecoder

    def build(self, resume: Path | None) -> None:
        if resume is None:
            self.model_config = dataclasses.replace(self.model_config, latent_size=0)
        super().build(resume)
        config = self.config
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), config.learning_rate, config.betas)}

    def initialise(self, progress: bool) -> None:
        self.model.presets.copy_(presets(self.train_set.family, self.train_labels, self.model.config))
        super().initialise(progress)

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def forward(self, batch: dict[str, torch.Tensor], model: torch.nn.Module) -> torch.Tensor:
        return model(batch["pitch"], batch["family"], batch["velocity"], batch["source"], batch["qualities"])

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        batch = self.batch(self.train_set, self.train_labels, index)
        with self.autocast():
            loss = F.l1_loss(self.forward(batch, self.trained).float(), batch["features"])
        self.update(loss, self.optimizers["optimizer"])
        return {"recon/l1": loss.item()}

    @torch.inference_mode()
    def evaluate(self, batch_size: int = 64) -> dict[str, float]:
        """``recon/l1`` against the validation notes."""
        notes, total = self.valid_set, 0.0
        for start in range(0, len(notes), batch_size):
            index = np.arange(start, min(start + batch_size, len(notes)))
            batch = self.batch(notes, self.valid_labels, index)
            total += float((self.forward(batch, self.model) - batch["features"]).abs().mean()) * len(index)
        return {"recon/l1": total / len(notes)}


def presets(family: np.ndarray, labels: Labels, config: GeneratorConfig) -> torch.Tensor:
    """Each family's most frequent (source, qualities) vectors ``(n_families, presets, 1 + n_qualities)``.

    A family with fewer distinct vectors repeats its most frequent one; an absent family gets zeros.
    """
    table = torch.zeros(config.n_families, config.presets, 1 + config.n_qualities)
    for index in range(config.n_families):
        rows = np.flatnonzero(family == index)
        if len(rows) == 0:
            continue
        counts = Counter((int(labels.source[r]), *labels.qualities[r].astype(int).tolist()) for r in rows)
        ranked = [vector for vector, _ in counts.most_common(config.presets)]
        ranked += [ranked[0]] * (config.presets - len(ranked))
        table[index] = torch.tensor(ranked, dtype=torch.float32)
    return table
