"""Note generators: ``gan`` (pitch-, family- and velocity-conditional GAN) and ``cdecoder`` (feature vector -> note).

Both write the shared note features of :class:`hummingface.dsp.NoteSpectrogram` (normalised log-mel
``(B, 128, 251)``, roughly in [-1, 1]) with the autoencoders' :class:`~hummingface.models.autoencoder.Decoder`
(mel bands as channels, sub-pixel upsampling along time, FiLM by a conditioning vector at every stage), so a
note costs a few milliseconds on a CPU and the ``cvae`` decoder is a valid warm start for either.

- ``gan``: ``G(z, c, pitch, family, velocity)``. ``z`` ``(B, latent_size)`` is standard normal and ``c`` picks
  one of the family's ``components`` uniformly: a mixture of Gaussians per family (``prior_mean[f, c] +
  prior_scale[f] @ z``, plus a velocity direction) turns them into the decoder's latent -- DeLiGAN's learnt
  mixture prior (Gurumurthy et al. 2017, https://arxiv.org/abs/1706.02071), which suits a family made of a
  few distinct instruments better than one Gaussian, whose centre sounds like none of them. Pitch, family
  and velocity also reach every decoder stage through the conditioning vector. Trained against
  :class:`Discriminator`, which has auxiliary classifiers for pitch, family and velocity (AC-GAN, Odena et
  al. 2017, https://arxiv.org/abs/1610.09585; GANSynth's auxiliary pitch loss, Engel et al. 2019,
  https://arxiv.org/abs/1902.08710), spectral normalisation and a minibatch-std feature.
- ``cdecoder``: the deterministic "upscaler" -- the vector (pitch, family, source, velocity, NSynth's ten
  qualities) straight to a spectrogram, trained with L1 on the normalised log-mel. It is the regression
  baseline: one vector gives one note, the median of every instrument that matches it.

:class:`NoteGenerator` wraps either with its spectrogram (phase reconstruction) for the app and the CLI:

    >>> gen = NoteGenerator.load("gan")
    >>> note = gen.generate(pitch=60, family="guitar", velocity=100, seed=3)   # float32 (176400,), 44.1 kHz
    >>> note, pitch, family = gen.surprise(seed=7)                             # random pitch and family
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hummingface.constants import TRAIN_PITCHES
from hummingface.data.gm import FAMILIES, family_index
from hummingface.device import get_device
from hummingface.dsp import NoteSpectrogram, SpectrogramConfig
from hummingface.errors import UserError
from hummingface.hub import Pretrained, WeightsSource, model_class
from hummingface.models.autoencoder import SILENCE, Decoder, PitchConditioning
from hummingface.models.note_audio import VOCODER, NoteAudio, load_vocoder
from hummingface.models.vocoder import Vocoder
from hummingface.vibrato import Vibrato

VELOCITIES = (25, 50, 75, 100, 127)  # NSynth's velocity levels: the discriminator's velocity classes
GENERATE_PITCHES = TRAIN_PITCHES  # what the generators are trained on and accept (MIDI, inclusive)
SURPRISE_PITCHES = range(36, 85)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Everything that builds a note generator; saved as ``config.json`` beside the weights.

    Attributes:
        latent_size: size of the GAN's noise ``z`` and of the decoder's latent (0 for ``cdecoder``).
        components: Gaussians in each family's mixture prior (``gan``).
        channels: decoder conv channels at 128, 64, 32, 16 and 8 frames (as :class:`AutoencoderConfig`).
        pitch_embedding: size of the learned pitch embedding beside the harmonic template.
        cond_size: size of the conditioning vector that FiLMs every decoder stage.
        min_pitch, max_pitch: MIDI pitches the pitch embedding covers (the discriminator's pitch classes).
        n_families, n_sources, n_qualities: NSynth's label vocabularies.
        presets: ``cdecoder`` only -- feature vectors (source + qualities) kept per family, by frequency.
        frames: feature frames per note (251 for 4 s at hop 256).
        spectrogram: the feature representation.
    """

    latent_size: int = 64
    components: int = 32
    channels: tuple[int, ...] = (256, 256, 384, 384, 512)
    pitch_embedding: int = 32
    cond_size: int = 128
    min_pitch: int = 21
    max_pitch: int = 108
    n_families: int = 11
    n_sources: int = 3
    n_qualities: int = 10
    presets: int = 8
    frames: int = 251
    spectrogram: SpectrogramConfig = dataclasses.field(default_factory=SpectrogramConfig)

    def __post_init__(self) -> None:
        if len(self.channels) != 5:
            raise ValueError(f"channels needs 5 entries (128 .. 8 frames), not {len(self.channels)}.")

    @property
    def n_bins(self) -> int:
        return self.spectrogram.n_mels or self.spectrogram.n_fft // 2 + 1

    @property
    def n_pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1


def velocity_unit(velocity: torch.Tensor) -> torch.Tensor:
    """MIDI velocity ``(B,)`` -> ``(B, 1)`` float, about [-1, 1]."""
    return ((velocity.float() - 64.0) / 64.0).unsqueeze(-1)


def velocity_class(velocity: torch.Tensor) -> torch.Tensor:
    """MIDI velocity ``(B,)`` -> index of the nearest of :data:`VELOCITIES` ``(B,)``."""
    levels = torch.tensor(VELOCITIES, device=velocity.device)
    return (velocity[:, None] - levels).abs().argmin(dim=-1)


class NoteConditioning(nn.Module):
    """Labels -> conditioning vector ``(B, cond_size)``: pitch (embedding + harmonic template) plus the rest.

    Family, velocity (and, with ``vector``, source and qualities) are added to the pitch vector through
    zero-initialised layers, so a warm start from the ``cvae`` (whose decoder knows only the pitch) begins
    exactly where that decoder is.
    """

    def __init__(self, config: GeneratorConfig, vector: bool = False) -> None:
        super().__init__()
        self.pitch = PitchConditioning(config, config.cond_size)
        self.family = nn.Embedding(config.n_families, config.cond_size)
        self.velocity = nn.Linear(1, config.cond_size)
        self.source = nn.Embedding(config.n_sources, config.cond_size) if vector else None
        self.qualities = nn.Linear(config.n_qualities, config.cond_size, bias=False) if vector else None
        for module in (self.family, self.velocity, self.source, self.qualities):
            if module is not None:
                for parameter in module.parameters():
                    nn.init.zeros_(parameter)

    def forward(
        self,
        pitch: torch.Tensor,
        family: torch.Tensor,
        velocity: torch.Tensor,
        source: torch.Tensor | None = None,
        qualities: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cond = self.pitch(pitch) + self.family(family) + self.velocity(velocity_unit(velocity))
        if self.source is not None:
            cond = cond + self.source(source) + self.qualities(qualities.float())
        return cond


class NoteGAN(Pretrained):
    """The generator ``G(z, c, pitch, family, velocity)`` -> features ``(B, n_bins, frames)``.

    Shapes: ``noise`` ``(B, latent_size)`` standard normal; ``component`` ``(B,)`` int in ``[0, components)``,
    uniform; ``pitch``, ``family``, ``velocity`` ``(B,)`` int. ``pitch_range`` ``(n_families, 2)`` holds the
    lowest and highest pitch each family was trained on.
    """

    config_class = GeneratorConfig
    model_type: ClassVar[str] = "gan"

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        if config.latent_size < 1 or config.components < 1:
            raise ValueError("The gan needs latent_size >= 1 and components >= 1.")
        self.conditioning = NoteConditioning(config)
        size = config.latent_size
        self.prior_mean = nn.Parameter(torch.zeros(config.n_families, config.components, size))
        self.prior_scale = nn.Parameter(torch.eye(size).repeat(config.n_families, 1, 1))
        self.velocity_direction = nn.Parameter(torch.zeros(size))
        self.decoder = Decoder(config.n_bins, config.channels, size, config.cond_size)
        self.register_buffer("pitch_range", torch.tensor([[config.min_pitch, config.max_pitch]] * config.n_families))

    def latent(
        self, noise: torch.Tensor, component: torch.Tensor, family: torch.Tensor, velocity: torch.Tensor
    ) -> torch.Tensor:
        """``z`` ``(B, latent_size)`` -> the decoder's latent: a Gaussian of the family's mixture, plus velocity."""
        scaled = torch.einsum("bij,bj->bi", self.prior_scale[family], noise)
        return self.prior_mean[family, component] + scaled + velocity_unit(velocity) * self.velocity_direction

    def forward(
        self,
        noise: torch.Tensor,
        component: torch.Tensor,
        pitch: torch.Tensor,
        family: torch.Tensor,
        velocity: torch.Tensor,
    ) -> torch.Tensor:
        cond = self.conditioning(pitch, family, velocity)
        return self.decoder(self.latent(noise, component, family, velocity), cond)[..., : self.config.frames]

    def random_inputs(self, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` draws of the GAN's randomness: ``noise`` ``(count, latent_size)``, ``component`` ``(count,)``."""
        noise = torch.randn(count, self.config.latent_size, generator=generator)
        component = torch.randint(self.config.components, (count,), generator=generator)
        device = self.prior_mean.device
        return noise.to(device), component.to(device)

    @torch.no_grad()
    def fit_prior(
        self,
        latents: torch.Tensor,
        family: torch.Tensor,
        velocity: torch.Tensor,
        spread: float = 0.3,
        generator: torch.Generator | None = None,
    ) -> None:
        """Fit the family mixtures and the velocity direction to ``latents`` ``(N, latent_size)`` of labelled notes.

        The warm start from the ``cvae`` (its encoder's posterior means of training notes). The velocity
        direction is the least-squares slope of the latents on velocity within families. With the velocity
        part removed, each family's component means are ``components`` of its notes' latents drawn at random
        (real timbres, which the decoder renders as such; averages of them sound like no instrument), and its
        scale is ``spread`` times the Cholesky factor of its latents' covariance: the variation around each.
        """
        latents, family = latents.double(), family.long()
        unit = velocity_unit(velocity).double()[:, 0]
        present = [index for index in range(self.config.n_families) if int((family == index).sum()) >= 2]
        residual, centred = torch.zeros_like(latents), torch.zeros_like(unit)
        for index in present:
            rows = family == index
            residual[rows] = latents[rows] - latents[rows].mean(dim=0)
            centred[rows] = unit[rows] - unit[rows].mean()
        direction = centred @ residual / centred.square().sum().clamp_min(1e-9)
        self.velocity_direction.copy_(direction.float())
        without = latents - unit[:, None] * direction
        eye = torch.eye(latents.shape[1], dtype=torch.float64)
        for index in present:
            rows = without[family == index]
            count = self.config.components
            if len(rows) >= count:
                pick = torch.randperm(len(rows), generator=generator)[:count]
            else:
                pick = torch.randint(len(rows), (count,), generator=generator)
            self.prior_mean[index] = rows[pick].float()
            self.prior_scale[index] = spread * torch.linalg.cholesky(torch.cov(rows.T) + 1e-4 * eye).float()


class CDecoder(Pretrained):
    """The feature-vector decoder: (pitch, family, source, velocity, qualities) -> features ``(B, n_bins, frames)``.

    Shapes: ``pitch``, ``family``, ``source``, ``velocity`` ``(B,)`` int; ``qualities`` ``(B, n_qualities)`` in {0, 1}.
    ``presets`` ``(n_families, presets, 1 + n_qualities)``: the family's most frequent (source, qualities)
    vectors in the training data, most frequent first, which ``seed`` picks from when none is given.
    """

    config_class = GeneratorConfig
    model_type: ClassVar[str] = "cdecoder"

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        self.conditioning = NoteConditioning(config, vector=True)
        self.decoder = Decoder(config.n_bins, config.channels, 0, config.cond_size)
        self.register_buffer("presets", torch.zeros(config.n_families, config.presets, 1 + config.n_qualities))
        self.register_buffer("pitch_range", torch.tensor([[config.min_pitch, config.max_pitch]] * config.n_families))

    def forward(
        self,
        pitch: torch.Tensor,
        family: torch.Tensor,
        velocity: torch.Tensor,
        source: torch.Tensor,
        qualities: torch.Tensor,
    ) -> torch.Tensor:
        cond = self.conditioning(pitch, family, velocity, source, qualities)
        return self.decoder(cond.new_zeros(len(cond), 0), cond)[..., : self.config.frames]


MODELS: dict[str, type[Pretrained]] = {cls.model_type: cls for cls in (NoteGAN, CDecoder)}


def warm_start(model: NoteGAN | CDecoder, cvae: nn.Module) -> None:
    """Copy a ``cvae``'s pitch conditioning and decoder into ``model`` (same channels and pitch settings).

    The ``cdecoder`` has no latent: it gets the decoder head's conditioning columns, i.e. the ``cvae``
    decoding a zero latent (the centre of its latent space).
    """
    model.conditioning.pitch.load_state_dict(cvae.pitch.state_dict())
    state = cvae.decoder.state_dict()
    if isinstance(model, CDecoder):
        state["head.weight"] = state["head.weight"][:, cvae.config.latent_size :]
    model.decoder.load_state_dict(state)


class Discriminator(nn.Module):
    """Features ``(B, n_bins, frames)`` -> realness and auxiliary class logits (training only, not shipped).

    Strided 1-D convolutions along time (mel bands as channels) down to 8 frames, then a minibatch standard
    deviation channel (Karras et al. 2018, https://arxiv.org/abs/1710.10196: a collapsed batch is easy to
    spot) and a linear layer. Spectral normalisation on the realness path (Miyato et al. 2018,
    https://arxiv.org/abs/1802.05957).

    Returns a dict: ``adv`` ``(B,)``, ``pitch`` ``(B, n_pitches)``, ``family`` ``(B, n_families)``, ``velocity``
    ``(B, 5)`` logits, and ``hidden`` ``(B, hidden)`` (for feature matching).
    """

    def __init__(self, config: GeneratorConfig, channels: Sequence[int] = (128, 192, 256, 256, 384),
                 hidden: int = 256) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        c_in = config.n_bins
        for c_out in channels:
            layers += [sn(nn.Conv1d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.trunk = nn.Sequential(sn(nn.Linear((c_in + 1) * 8, hidden)), nn.LeakyReLU(0.2))
        self.adv = sn(nn.Linear(hidden, 1))
        self.pitch = nn.Linear(hidden, config.n_pitches)
        self.family = nn.Linear(hidden, config.n_families)
        self.velocity = nn.Linear(hidden, len(VELOCITIES))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.convs(F.pad(features, (0, 256 - features.shape[-1]), value=SILENCE))  # (B, C, 8)
        std = x.std(dim=0, unbiased=False).mean(dim=0) if len(x) > 1 else x.new_zeros(x.shape[-1])
        x = torch.cat([x, std.expand(len(x), 1, -1)], dim=1).flatten(1)
        hidden = self.trunk(x)
        return {
            "adv": self.adv(hidden)[:, 0],
            "pitch": self.pitch(hidden),
            "family": self.family(hidden),
            "velocity": self.velocity(hidden),
            "hidden": hidden,
        }


class NoteGenerator:
    """A trained ``gan`` or ``cdecoder`` with its output stage: labels in, 4-s notes out (44.1 kHz with the
    vocoder, else 16 kHz).

    Args:
        model: the network (its ``config.spectrogram`` builds the 16-kHz phase reconstruction).
        vocoder: the 44.1-kHz vocoder; ``None`` plays 16-kHz phase reconstructions.
    """

    def __init__(self, model: NoteGAN | CDecoder, vocoder: Vocoder | None = None) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.spectrogram = NoteSpectrogram(model.config.spectrogram).to(self.device)
        self.output = NoteAudio(self.spectrogram, vocoder)

    @classmethod
    def load(
        cls, name: str = "gan", weights: str | os.PathLike | None = None, device: str | torch.device | None = None,
        vocoder: str | None = VOCODER,
    ) -> NoteGenerator:
        """Load checkpoint ``name`` (``gan``, ``cdecoder`` or any folder name holding one).

        Args:
            weights: ``org/name[@revision]`` on the Hub or a checkpoint tree; default ``checkpoints/``.
            device: see :func:`hummingface.device.get_device`.
            vocoder: the vocoder checkpoint of ``weights`` that plays the notes at 44.1 kHz; ``None``, or
                weights without it, play 16-kHz phase reconstructions.
        """
        folder = WeightsSource.resolve(weights).checkpoint(name)
        return cls.from_folder(folder, device, load_vocoder(weights, get_device(device), vocoder))

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str | torch.device | None = None,
                    vocoder: Vocoder | None = None) -> NoteGenerator:
        return cls(model_class(folder, MODELS).from_folder(folder, device=get_device(device)), vocoder)

    @property
    def name(self) -> str:
        return self.model.model_type

    @property
    def sample_rate(self) -> int:
        """Hz of the audio it writes (44 100 with the vocoder, else 16 000)."""
        return self.output.sample_rate

    def family_pitches(self, family: str | int) -> range:
        """The pitches ``family`` was trained on (a ``range``; other pitches of 24-96 are extrapolated)."""
        low, high = self.model.pitch_range[family_index(family)].tolist()
        return range(int(low), int(high) + 1)

    @torch.inference_mode()
    def features(
        self,
        pitch: int | Sequence[int],
        family: str | int | Sequence[str | int],
        velocity: int | Sequence[int] = 100,
        seed: int | Sequence[int] = 0,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Features ``(B, n_bins, frames)`` for ``B`` notes; scalars broadcast against sequences.

        For the ``gan`` the seed draws the mixture component and ``z`` (scaled by ``temperature``: below 1 gives
        more typical notes); for the ``cdecoder`` it picks one of the family's :attr:`CDecoder.presets` (seed 0 =
        its most frequent source and qualities) and ``temperature`` is ignored.

        Raises:
            UserError: unknown family, or a pitch outside 24-96 or velocity outside 1-127.
        """
        pitch, velocity, seed = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (pitch, velocity, seed))
        families = [family] if isinstance(family, (str, int, np.integer)) else list(family)
        family = np.asarray([family_index(f) for f in families], dtype=np.int64)
        pitch, family, velocity, seed = np.broadcast_arrays(pitch, family, velocity, seed)
        check_pitches(pitch.tolist())
        for value in velocity.tolist():
            if not 1 <= value <= 127:
                raise UserError(f"Velocity {value} is not a MIDI velocity (1-127).")
        labels = {name: torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
                  for name, v in (("pitch", pitch), ("family", family), ("velocity", velocity))}
        if isinstance(self.model, NoteGAN):
            draws = [self.model.random_inputs(1, torch.Generator().manual_seed(int(s))) for s in seed.tolist()]
            noise, component = (torch.cat(parts) for parts in zip(*draws, strict=True))
            return self.model(noise * temperature, component, labels["pitch"], labels["family"], labels["velocity"])
        presets = self.model.presets[labels["family"], torch.from_numpy(seed % self.model.config.presets)]
        source, qualities = presets[:, 0].long(), presets[:, 1:]
        return self.model(labels["pitch"], labels["family"], labels["velocity"], source, qualities)

    def audio(self, features: torch.Tensor, pitch: int | Sequence[int] | torch.Tensor, vibrato: Vibrato | None = None
              ) -> np.ndarray:
        """Features ``(n_bins, frames)`` or ``(B, ...)`` of MIDI ``pitch`` -> float32 audio ``(samples,)`` or
        ``(B, samples)`` at :attr:`sample_rate`, each note peak-limited to 0.99, swinging with ``vibrato``
        (:mod:`hummingface.vibrato`; played by the vocoder only)."""
        return self.output(features, torch.as_tensor(pitch), vibrato)

    def generate(
        self, pitch: int, family: str | int, velocity: int = 100, seed: int = 0, temperature: float = 1.0,
        vibrato: Vibrato | None = None,
    ) -> np.ndarray:
        """One note: float32 ``(samples,)`` at :attr:`sample_rate`. ``family`` is a name (``"guitar"``) or index."""
        return self.audio(self.features(pitch, family, velocity, seed, temperature)[0], pitch, vibrato)

    def surprise(self, seed: int, velocity: int = 100) -> tuple[np.ndarray, int, str]:
        """A random family and a pitch of 36-84 it was trained on (``seed`` draws all): ``(audio, pitch, family)``."""
        pitch, family = self.surprise_labels(seed)
        return self.generate(pitch, family, velocity, seed), pitch, family

    def surprise_labels(self, seed: int, pitch: int | None = None) -> tuple[int, str]:
        """The ``(pitch, family)`` :meth:`surprise` plays for ``seed`` (keeping ``pitch`` if given)."""
        rng = np.random.default_rng([int(seed), 11])
        family = FAMILIES[int(rng.integers(len(FAMILIES)))]
        pitches = [p for p in self.family_pitches(family) if p in SURPRISE_PITCHES] or list(SURPRISE_PITCHES)
        drawn = int(rng.choice(pitches))
        return (drawn if pitch is None else pitch), family



def check_pitches(pitches: Sequence[int]) -> None:
    """:class:`UserError` naming the valid range if any pitch is outside :data:`GENERATE_PITCHES`."""
    for pitch in pitches:
        if pitch not in GENERATE_PITCHES:
            raise UserError(
                f"Pitch {pitch} is out of range; the note generators play MIDI pitches "
                f"{GENERATE_PITCHES.start}-{GENERATE_PITCHES.stop - 1}."
            )

