"""The latent space of a note model: PCA sliders, fidelity, family centroids, the Explorer map, interpolation.

Following RAVE (Caillon & Esling 2021, https://arxiv.org/abs/2111.05011), a PCA is fitted on the latents of
validation notes (posterior means); the cumulative explained-variance ratio is the *fidelity* curve, and the
number of directions that reaches 95 % (capped at 16) is the number of sliders the Designer shows. Sliders
are in units of standard deviation along each direction, from the mean.

Stored beside the weights as ``latent.safetensors``: tensors below, plus the Explorer's note ids and the
family names as JSON in the file's metadata (safetensors holds only tensors).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hummingface.data.gm import FAMILIES
from hummingface.errors import UserError

FORMAT_VERSION = "1"
FIDELITY = 0.95
MAX_SLIDERS = 16
MAX_POINTS = 2048


@dataclasses.dataclass
class LatentSpace:
    """PCA of validation latents and what the Designer and the Explorer read from it.

    Attributes:
        mean: ``(D,)`` mean latent.
        components: ``(D, D)`` principal directions, one per row, by decreasing variance.
        explained_variance: ``(D,)`` variance along each direction.
        fidelity: ``(D,)`` cumulative explained-variance ratio (``fidelity[k - 1]`` = share kept by k sliders).
        n_sliders: directions reaching :data:`FIDELITY`, at most :data:`MAX_SLIDERS`.
        family_centroids: ``(11, D)`` mean latent per NSynth family (the overall mean where a family is absent).
        family_counts: ``(11,)`` notes per family behind each centroid.
        points: ``(N, 2)`` Explorer coordinates: the notes' latents on the first two directions, in std units.
        point_latents: ``(N, D)`` the notes' latents, so a clicked point can be played exactly.
        point_family, point_pitch, point_velocity: ``(N,)`` int labels.
        note_ids: the N notes' ``note_str``.
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor
    fidelity: torch.Tensor
    n_sliders: int
    family_centroids: torch.Tensor
    family_counts: torch.Tensor
    points: torch.Tensor
    point_latents: torch.Tensor
    point_family: torch.Tensor
    point_pitch: torch.Tensor
    point_velocity: torch.Tensor
    note_ids: list[str]

    @classmethod
    def fit(
        cls,
        latents: torch.Tensor,
        family: torch.Tensor,
        pitch: torch.Tensor,
        velocity: torch.Tensor,
        note_ids: list[str],
        max_points: int = MAX_POINTS,
        seed: int = 0,
    ) -> LatentSpace:
        """Fit on ``latents`` ``(N, D)`` with their labels ``(N,)``; keeps ``max_points`` of them for the map."""
        latents = latents.detach().double().cpu()
        n, dim = latents.shape
        if n < 2:
            raise UserError(f"A latent PCA needs at least 2 notes, not {n}.")
        mean = latents.mean(dim=0)
        centred = latents - mean
        _, singular, vh = torch.linalg.svd(centred, full_matrices=False)  # vh: (min(n, D), D)
        variance = singular.square() / (n - 1)
        if vh.shape[0] < dim:  # fewer notes than dimensions: complete the basis with zero-variance directions
            q, _ = torch.linalg.qr(torch.cat([vh.T, torch.eye(dim, dtype=vh.dtype)], dim=1))
            vh = torch.cat([vh, q[:, vh.shape[0] : dim].T], dim=0)
            variance = torch.cat([variance, variance.new_zeros(dim - variance.shape[0])])
        fidelity = variance.cumsum(0) / variance.sum().clamp_min(1e-12)
        n_sliders = min(int((fidelity < FIDELITY).sum()) + 1, MAX_SLIDERS, dim)
        family = family.long().cpu()
        counts = torch.bincount(family, minlength=len(FAMILIES))[: len(FAMILIES)]
        centroids = mean.repeat(len(FAMILIES), 1)
        for index in torch.nonzero(counts).flatten().tolist():
            centroids[index] = latents[family == index].mean(dim=0)
        keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points].sort().values
        std = variance[:2].sqrt().clamp_min(1e-12)
        points = (centred[keep] @ vh[:2].T) / std
        return cls(
            mean=mean.float(),
            components=vh.float(),
            explained_variance=variance.float(),
            fidelity=fidelity.float(),
            n_sliders=n_sliders,
            family_centroids=centroids.float(),
            family_counts=counts,
            points=points.float(),
            point_latents=latents[keep].float(),
            point_family=family[keep],
            point_pitch=pitch.long().cpu()[keep],
            point_velocity=velocity.long().cpu()[keep],
            note_ids=[note_ids[i] for i in keep.tolist()],
        )

    @property
    def std(self) -> torch.Tensor:
        """``(D,)`` standard deviation along each direction."""
        return self.explained_variance.clamp_min(0).sqrt()

    def to_sliders(self, latent: torch.Tensor, count: int | None = None) -> torch.Tensor:
        """``(..., D)`` latents -> ``(..., count)`` slider values (std units; default ``n_sliders``)."""
        count = self.n_sliders if count is None else count
        coords = (latent.float().cpu() - self.mean) @ self.components[:count].T
        return coords / self.std[:count].clamp_min(1e-12)

    def from_sliders(self, values: torch.Tensor | list[float], base: torch.Tensor | None = None) -> torch.Tensor:
        """Slider values ``(..., k)`` (std units, any ``k`` <= D) -> latents ``(..., D)``.

        Directions without a value stay where ``base`` is (default: the mean latent).
        """
        values = torch.as_tensor(values, dtype=torch.float32)
        k = values.shape[-1]
        if k > self.components.shape[0]:
            raise UserError(f"{k} slider values given; this latent space has {self.components.shape[0]} directions.")
        base = self.mean if base is None else base.float().cpu()
        start = self.to_sliders(base, k)
        return base + ((values - start) * self.std[:k]) @ self.components[:k]

    def random(self, generator: torch.Generator, count: int = 1, base: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Latents ``(count, D)`` drawn from the Gaussian the PCA fits (centred on ``base``, default the mean)."""
        noise = torch.randn(count, self.mean.shape[0], generator=generator) * temperature
        base = self.mean if base is None else base.float().cpu()
        return base + (noise * self.std) @ self.components

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        tensors = {
            field.name: getattr(self, field.name).contiguous()
            for field in dataclasses.fields(self)
            if isinstance(getattr(self, field.name), torch.Tensor)
        }
        tensors["n_sliders"] = torch.tensor(self.n_sliders)
        metadata = {"format": FORMAT_VERSION, "note_ids": json.dumps(self.note_ids), "families": json.dumps(FAMILIES)}
        save_file(tensors, str(path), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatentSpace:
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as file:
                metadata = file.metadata() or {}
                tensors = {key: file.get_tensor(key) for key in file.keys()}
        except Exception as error:  # OSError, or safetensors' own SafetensorError
            raise UserError(f"{path} is not a readable latent file ({error}).") from None
        if metadata.get("format") != FORMAT_VERSION:
            raise UserError(f"{path} has latent format {metadata.get('format')!r}; expected {FORMAT_VERSION!r}.")
        names = [field.name for field in dataclasses.fields(cls) if field.name not in ("n_sliders", "note_ids")]
        missing = [name for name in [*names, "n_sliders"] if name not in tensors]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}.")
        return cls(
            **{name: tensors[name] for name in names},
            n_sliders=int(tensors["n_sliders"]),
            note_ids=json.loads(metadata["note_ids"]),
        )


def interpolate(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor | np.ndarray) -> torch.Tensor:
    """Straight-line interpolation ``a + t (b - a)``: ``(D,)`` latents and ``t`` scalar -> ``(D,)``, or
    ``t`` ``(T,)`` -> ``(T, D)``.

    A straight line, not slerp: our sliders and centroids live in the PCA's linear geometry, and the
    benchmark checks that equal steps along it change the sound evenly (``benchmarks/notes.py``).
    """
    t = torch.as_tensor(t, dtype=torch.float32)
    a, b = a.float(), b.float()
    if t.ndim == 0:
        return a + t * (b - a)
    return a + t[:, None] * (b - a)


def smoothness_ratio(features: torch.Tensor) -> float:
    """Largest step over mean step along a path of decoded features ``(T, ...)``: 1 is perfectly even."""
    steps = (features[1:] - features[:-1]).flatten(1).norm(dim=-1)
    return float(steps.max() / steps.mean().clamp_min(1e-12))
