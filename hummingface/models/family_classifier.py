"""A small instrument-family classifier on note features: the judge of the generators' family conditioning.

Trained on real FluidR3 renders of the train split (``python -m hummingface train family-classifier``) and
applied to generated notes re-analysed from their audio; its accuracy on real notes of the held-out test
instruments is the ceiling to read the generators' figure against.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch.nn import functional as F

from hummingface.dsp import SpectrogramConfig
from hummingface.hub import Pretrained
from hummingface.models.autoencoder import SILENCE, Encoder


@dataclasses.dataclass(frozen=True)
class FamilyClassifierConfig:
    """Attributes: ``channels`` of the strided convs at 128 .. 8 frames; ``n_families``; ``spectrogram``."""

    channels: tuple[int, ...] = (64, 96, 128, 128, 128)
    n_families: int = 11
    spectrogram: SpectrogramConfig = dataclasses.field(default_factory=SpectrogramConfig)


class FamilyClassifier(Pretrained):
    """Features ``(B, n_bins, frames)`` -> family logits ``(B, n_families)``."""

    config_class = FamilyClassifierConfig
    model_type: ClassVar[str] = "family-classifier"

    def __init__(self, config: FamilyClassifierConfig) -> None:
        super().__init__(config)
        n_bins = config.spectrogram.n_mels or config.spectrogram.n_fft // 2 + 1
        self.encoder = Encoder(n_bins, config.channels, config.n_families)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder(F.pad(features, (0, 256 - features.shape[-1]), value=SILENCE))
