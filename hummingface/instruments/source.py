"""A design -> notes at any pitch and velocity: what a multisample is rendered from.

Two kinds of design:

- a timbre model (``cvae``, ``vae``, ``mog-vae``, ``ae``) with a latent (slider values in std units, or a whole
  latent): the ``cvae`` is given each pitch; the other three hold the pitch in their latent and feed it to
  the decoder through a pitch read-out (see :mod:`hummingface.models.autoencoder`), so each sampled pitch is
  played by moving the latent along the pitch direction (the difference of the Explorer notes' centroids at
  the two pitches) *and* conditioning the decoder on that pitch -- the designed timbre stays, and no note is
  ever stretched over octaves by resampling;
- a note generator (``gan``, ``cdecoder``) with a family and a seed, which takes pitch and velocity itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from hummingface.errors import UserError
from hummingface.vibrato import Vibrato

GENERATORS = ("gan", "cdecoder")
TIMBRES = ("cvae", "vae", "mog-vae", "ae")


@dataclasses.dataclass(frozen=True)
class Design:
    """What to play. Attributes as the ``export``/``render`` flags mean them.

    Attributes:
        model: checkpoint name (a timbre model or a note generator).
        sliders: slider values in std units along the PCA directions (timbre models); ``None``: the mean sound.
        latent: a whole latent ``(D,)`` the sliders move away from (the app's Designer base); ``None``: the
            family's centroid or the mean.
        seed: the generator's seed (its instrument).
        family: the generator's family, or the timbre model's starting centroid.
        velocity: one velocity for the generator (else several layers), or the timbre model's velocity offset.
        vibrato: the pitch swing every note plays with (none by default).
    """

    model: str = "cvae"
    sliders: tuple[float, ...] | None = None
    latent: tuple[float, ...] | None = None
    seed: int = 0
    family: str | None = None
    velocity: int | None = None
    vibrato: Vibrato = dataclasses.field(default_factory=Vibrato)


class NoteSource:
    """Notes of one design. ``sample_rate`` is the model's (read from it, never assumed).

    Attributes:
        velocity_layers: whether the model plays velocity itself (else velocity is gain only).
        vibrato: the pitch swing of every note (a sustain loop spans whole swings of it).
    """

    sample_rate: int
    velocity_layers: bool
    vibrato: Vibrato = Vibrato()  # frozen: one shared instance is safe

    def render(self, pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """MIDI pitches ``(B,)`` -> float32 notes ``(B, samples)`` at :attr:`sample_rate`."""
        raise NotImplementedError


class TimbreSource(NoteSource):
    """A timbre model at one latent ``(D,)``."""

    velocity_layers = False

    def __init__(self, timbre, latent: torch.Tensor, vibrato: Vibrato | None = None) -> None:
        self.timbre = timbre
        self.latent = torch.as_tensor(latent, dtype=torch.float32).cpu()
        self.sample_rate = timbre.sample_rate
        self.vibrato = vibrato or Vibrato()

    @torch.inference_mode()
    def render(self, pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        timbre, model = self.timbre, self.timbre.model
        low, high = model.config.min_pitch, model.config.max_pitch
        if not all(low <= p <= high for p in pitches):
            raise UserError(f"The {timbre.name} model plays MIDI pitches {low}-{high}; choose --pitches within them.")
        pitch = torch.as_tensor(list(pitches), dtype=torch.long)
        latents = self.latent.expand(len(pitch), -1).clone()
        if timbre.conditional:
            features = timbre.decode_features(latents, pitch)
        else:
            latents = latents + self._pitch_shift(pitch)
            device = timbre.device
            cond = model.pitch(pitch.to(device))
            features = model.decoder(latents.to(device), cond)[..., : model.config.frames]
        return self.timbre.audio(features, pitch, self.vibrato)

    def _pitch_shift(self, pitch: torch.Tensor) -> torch.Tensor:
        """``(B, D)``: from the pitch the latent holds to each requested pitch, by Explorer-note centroids."""
        space = self.timbre.latent
        if space is None:  # an untrained model without a latent space: conditioning alone sets the pitch
            return torch.zeros(len(pitch), self.latent.shape[0])
        held = int(self.timbre.model.read_pitch(self.latent[None].to(self.timbre.device))[0])
        stored = torch.unique(space.point_pitch)

        def centroid(p: int) -> torch.Tensor:
            nearest = stored[(stored - p).abs().argmin()]
            return space.point_latents[space.point_pitch == nearest].mean(dim=0)

        start = centroid(held)
        return torch.stack([centroid(int(p)) - start for p in pitch])


class GeneratorSource(NoteSource):
    """A note generator with one family and seed; it plays velocity itself."""

    velocity_layers = True

    def __init__(self, generator, family: str, seed: int, vibrato: Vibrato | None = None) -> None:
        self.generator = generator
        self.family = family
        self.seed = int(seed)
        self.sample_rate = generator.sample_rate
        self.vibrato = vibrato or Vibrato()

    def render(self, pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        features = self.generator.features(list(pitches), self.family, int(velocity), self.seed)
        return self.generator.audio(features, list(pitches), self.vibrato)


def source_for(design: Design, timbres: dict | None = None, generators: dict | None = None,
               weights: str | None = None, device: str | None = None) -> NoteSource:
    """The :class:`NoteSource` of ``design``, from loaded models (the app's) or loaded from ``weights``."""
    if design.model in GENERATORS:
        from hummingface.data.gm import FAMILIES, family_index
        from hummingface.models.generator import NoteGenerator

        if design.sliders is not None or design.latent is not None:
            raise UserError(f"--latent sets timbre-model sliders; the {design.model} takes --seed and --family.")
        generator = (generators or {}).get(design.model) or NoteGenerator.load(design.model, weights, device)
        family = FAMILIES[family_index(design.family)] if design.family is not None else "keyboard"
        return GeneratorSource(generator, family, design.seed, design.vibrato)
    from hummingface.models.timbre import Timbre

    timbre = (timbres or {}).get(design.model) or Timbre.load(design.model, weights, device)
    if design.velocity is not None and not 1 <= design.velocity <= 127:
        raise UserError(f"Velocity {design.velocity} is not a MIDI velocity (1-127).")
    if design.latent is not None and len(design.latent) == timbre.latent_size:
        base = torch.tensor(design.latent, dtype=torch.float32)
    else:
        base = timbre.base_latent(design.family, None, design.velocity)
    latent = base if design.sliders is None else timbre.from_sliders(list(design.sliders), base=base)
    return TimbreSource(timbre, latent, design.vibrato)
