"""Convolutional note autoencoders: ``ae``, ``vae``, ``mog-vae`` and ``cvae``, four configurations of one network.

All four read and write the shared note features of :class:`hummingface.dsp.NoteSpectrogram`: normalised
log-mel spectrograms ``(B, 128, 251)`` (128 bands, 251 frames = 4 s at 16 kHz, hop 256), roughly in [-1, 1].

The network treats the mel bands as *channels* and convolves along time only (1-D convolutions). A mel axis
is not shift-invariant -- a note's harmonics are not a translated copy of another pitch's -- so the
translation equivariance a 2-D convolution spends its parameters on buys little here, while dense mixing
across all bands at every layer lets the decoder draw any spectral envelope. It is also about four times
cheaper than a 2-D network of the same depth, which is what lets the decoder run in a few milliseconds on a
laptop CPU (``benchmarks/notes.py``).

Encoder: ``(B, 128, 256)`` (frames padded with silence) -> five stride-2 convs down to 8 frames -> linear
head -> latent mean (and log-variance). Decoder: the mirror image, doubling the frames with sub-pixel convolutions.

- ``ae``: deterministic; the latent is the mean.
- ``vae``: Gaussian posterior, standard normal prior, loss = L1 + beta * KL (Kingma & Welling 2014,
  https://arxiv.org/abs/1312.6114); beta warms up from 0 (RAVE's schedule), which keeps the posterior from
  collapsing before the decoder has learnt anything.
- ``mog-vae``: the prior is a learned mixture of Gaussians with one diagonal component per instrument family;
  during training each note's KL is taken against its own family's component (closed form), so sampling a
  component gives a note of that family.
- ``cvae``: encoder and decoder also see the MIDI pitch (a learned embedding beside a fixed harmonic
  template of the pitch in mel bands), so the latent is free to hold timbre only and one latent plays at
  any pitch (Sohn et al. 2015, https://papers.nips.cc/paper/5775).

The three unconditional models carry the pitch in their latent, and their decoders *read it out*: a linear
head turns the latent into a distribution over MIDI pitches, whose expected embedding and harmonic template
condition the decoder exactly as the ``cvae``'s given pitch does. Training adds a small cross-entropy on that
head (the pitch labels are free), so the latent learns to hold the pitch early. Without the read-out these
decoders have to draw a harmonic comb at the right place from a plain vector, and they stalled at about
14 dB LSD with smeared harmonics; with it they share the ``cvae``'s decoder shape, so they can start from its
trained weights (``train --init checkpoints/cvae``).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import ClassVar

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hummingface.dsp import SpectrogramConfig
from hummingface.hub import Pretrained

SILENCE = -1.0  # the features' value for silence (LogCompression's floor), used to pad frames


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that builds a note autoencoder; saved as ``config.json`` beside the weights.

    Attributes:
        latent_size: latent dimensions (16-128; larger reconstructs better).
        channels: conv channels at 128, 64, 32, 16 and 8 frames (five entries; the features have 256).
        pitch_embedding: size of the learned pitch embedding (``cvae`` only).
        min_pitch, max_pitch: MIDI pitches the ``cvae`` knows; others are clamped into this range.
        n_families: mixture components of ``mog-vae`` (NSynth's 11 instrument families).
        pitch_temperature: ``ae``/``vae``/``mog-vae``: the pitch read-out's softmax temperature when decoding
            (training decodes at 1). Above 1 the decoder hears a blend of the likely pitches, so a latent path
            from one pitch to another crossfades over a few steps rather than switching in one (at 1.3
            the largest step of such a path fell from up to 4.2x the mean to under 3x, for +0.3 dB LSD).
        frames: feature frames per note (251 for 4 s at hop 256).
        spectrogram: the feature representation the model reads and writes.
    """

    latent_size: int = 64
    channels: tuple[int, ...] = (256, 256, 384, 384, 512)
    pitch_embedding: int = 32
    min_pitch: int = 21
    max_pitch: int = 108
    n_families: int = 11
    pitch_temperature: float = 1.3
    frames: int = 251
    spectrogram: SpectrogramConfig = dataclasses.field(default_factory=SpectrogramConfig)

    def __post_init__(self) -> None:
        if len(self.channels) != 5:
            raise ValueError(f"channels needs 5 entries (128 .. 8 frames), not {len(self.channels)}.")
        if self.frames > 256:
            raise ValueError(f"frames must be at most 256, not {self.frames}.")

    @property
    def n_bins(self) -> int:
        return self.spectrogram.n_mels or self.spectrogram.n_fft // 2 + 1


def harmonic_templates(config: AutoencoderConfig) -> torch.Tensor:
    """Where each MIDI pitch's harmonics fall in the feature bands: ``(128 pitches, n_bins)`` in [0, 1].

    A sum of harmonics with 1/h amplitudes, each a Gaussian one FFT bin wide, through the mel filterbank,
    log-compressed and scaled to [0, 1] per pitch. A fixed, smooth function of pitch: the ``cvae`` decoder
    gets it beside the learned embedding, so even rarely-seen pitches come with their harmonic comb.
    """
    spec = config.spectrogram
    freqs = np.fft.rfftfreq(spec.n_fft, 1 / spec.sample_rate)
    bin_hz = spec.sample_rate / spec.n_fft
    f0 = 440.0 * 2.0 ** ((np.arange(128)[:, None] - 69) / 12)  # (128, 1) Hz
    harmonics = np.arange(1, 200)[None, :]  # (1, H)
    partials = f0 * harmonics  # (128, H)
    weight = np.where(partials < spec.sample_rate / 2, 1.0 / harmonics, 0.0)
    spectrum = np.einsum("ph,phf->pf", weight, np.exp(-0.5 * ((freqs - partials[..., None]) / bin_hz) ** 2))
    if spec.n_mels:
        filters = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels)
        spectrum = spectrum @ filters.T
    log = np.log(spectrum + 1e-3)
    log = (log - log.min(axis=1, keepdims=True)) / np.ptp(log, axis=1, keepdims=True).clip(1e-6)
    return torch.from_numpy(log.astype(np.float32))


class PitchConditioning(nn.Module):
    """MIDI pitch ``(B,)`` int -> conditioning vector ``(B, hidden)``: embedding + harmonic template, mixed."""

    def __init__(self, config: AutoencoderConfig, hidden: int = 128) -> None:
        super().__init__()
        self.min_pitch, self.max_pitch = config.min_pitch, config.max_pitch
        self.embedding = nn.Embedding(config.max_pitch - config.min_pitch + 1, config.pitch_embedding)
        self.register_buffer("templates", harmonic_templates(config), persistent=False)
        self.mix = nn.Sequential(
            nn.Linear(config.pitch_embedding + config.n_bins, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden)
        )
        self.size = hidden

    def forward(self, pitch: torch.Tensor) -> torch.Tensor:
        pitch = pitch.long().clamp(self.min_pitch, self.max_pitch)
        features = torch.cat([self.embedding(pitch - self.min_pitch), self.templates[pitch]], dim=-1)
        return self.mix(features)

    def expected(self, probabilities: torch.Tensor) -> torch.Tensor:
        """A distribution over the known pitches ``(B, n_pitches)`` -> the conditioning vector ``(B, hidden)``.

        The embedding and template are averaged under the distribution; a one-hot distribution gives exactly
        :meth:`forward` of that pitch.
        """
        table = torch.cat([self.embedding.weight, self.templates[self.min_pitch : self.max_pitch + 1]], dim=-1)
        return self.mix(probabilities @ table)


class SubPixelUp(nn.Module):
    """Doubles the frames: ``(B, c_in, T)`` -> ``(B, c_out, 2T)`` by a k3 conv to ``2 * c_out`` channels, interleaved.

    The sub-pixel form of a stride-2 transposed convolution (Shi et al. 2016, https://arxiv.org/abs/1609.05158):
    it runs on the fast (oneDNN) convolution kernels, whereas PyTorch's CPU ``conv_transpose1d`` took its slow
    reference path (``slow_conv_transpose2d``) for single notes here.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, 2 * c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x).unflatten(1, (-1, 2))  # (B, c_out, 2, T)
        return out.transpose(-1, -2).flatten(-2)  # (B, c_out, T, 2) -> (B, c_out, 2T)


class Encoder(nn.Module):
    """Features ``(B, n_bins, 256)`` (+ optional conditioning ``(B, cond)``) -> ``(B, out_size)``."""

    def __init__(self, n_bins: int, channels: tuple[int, ...], out_size: int, cond_size: int = 0) -> None:
        super().__init__()
        layers = [nn.Conv1d(n_bins, channels[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.Conv1d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1] * 8 + cond_size, out_size)

    def forward(self, features: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.convs(features).flatten(1)  # (B, C, 8) -> (B, C * 8)
        if cond is not None:
            hidden = torch.cat([hidden, cond], dim=-1)
        return self.head(hidden)


class Decoder(nn.Module):
    """Latent ``(B, latent)`` (+ optional conditioning ``(B, cond)``) -> features ``(B, n_bins, 256)``.

    With conditioning, every stage is also shifted and scaled per channel by it (FiLM; Perez et al. 2018,
    https://arxiv.org/abs/1709.07871), so the pitch reaches the full-resolution layers directly.
    """

    def __init__(self, n_bins: int, channels: tuple[int, ...], latent_size: int, cond_size: int = 0) -> None:
        super().__init__()
        self.top = channels[-1]
        self.head = nn.Linear(latent_size + cond_size, channels[-1] * 8)
        reversed_channels = channels[::-1]
        self.ups = nn.ModuleList(
            SubPixelUp(c_in, c_out)
            for c_in, c_out in itertools.pairwise(reversed_channels)
        )
        self.films = nn.ModuleList(nn.Linear(cond_size, 2 * c) for c in reversed_channels[1:]) if cond_size else None
        self.out = SubPixelUp(channels[0], n_bins)

    def forward(self, latent: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        inputs = latent if cond is None else torch.cat([latent, cond], dim=-1)
        hidden = F.leaky_relu(self.head(inputs), 0.2).unflatten(1, (self.top, 8))  # (B, C, 8)
        for i, up in enumerate(self.ups):
            hidden = up(hidden)
            if self.films is not None:
                scale, shift = self.films[i](cond).unsqueeze(-1).chunk(2, dim=1)
                hidden = hidden * (1 + scale) + shift
            hidden = F.leaky_relu(hidden, 0.2)
        return self.out(hidden)


@dataclasses.dataclass
class Posterior:
    """The encoder's output: ``mean`` ``(B, latent)`` and ``logvar`` (``None`` for the deterministic ``ae``)."""

    mean: torch.Tensor
    logvar: torch.Tensor | None = None

    def sample(self) -> torch.Tensor:
        if self.logvar is None:
            return self.mean
        return self.mean + torch.randn_like(self.mean) * (0.5 * self.logvar).exp()


class NoteAutoencoder(Pretrained):
    """Base of the four note autoencoders; subclasses only set the class flags below.

    Shapes: features ``(B, n_bins, frames)``; latents ``(B, latent_size)``; pitch, family ``(B,)`` int.
    """

    config_class = AutoencoderConfig
    model_type: ClassVar[str] = "ae"
    variational: ClassVar[bool] = False
    conditional: ClassVar[bool] = False
    mixture_prior: ClassVar[bool] = False

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        self.pitch = PitchConditioning(config)
        cond = self.pitch.size
        latent_out = config.latent_size * (2 if self.variational else 1)
        self.encoder = Encoder(config.n_bins, config.channels, latent_out, cond if self.conditional else 0)
        self.decoder = Decoder(config.n_bins, config.channels, config.latent_size, cond)
        # The unconditional models read the pitch out of the latent (see the module docstring).
        n_pitches = config.max_pitch - config.min_pitch + 1
        self.pitch_head = None if self.conditional else nn.Linear(config.latent_size, n_pitches)
        if self.mixture_prior:
            # Spread the components apart from the start so that families separate.
            self.prior_means = nn.Parameter(torch.randn(config.n_families, config.latent_size))
            self.prior_logvars = nn.Parameter(torch.zeros(config.n_families, config.latent_size))

    def _condition(self, pitch: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if pitch is None:
            raise ValueError(f"The {self.model_type} model needs the MIDI pitch of every note.")
        pitch = torch.as_tensor(pitch, device=self.decoder.head.weight.device).reshape(-1).expand(batch)
        return self.pitch(pitch)

    def encode_features(self, features: torch.Tensor, pitch: torch.Tensor | None = None) -> Posterior:
        """``(B, n_bins, frames)`` features -> :class:`Posterior` over ``(B, latent_size)``."""
        padded = F.pad(features, (0, 256 - features.shape[-1]), value=SILENCE)
        out = self.encoder(padded, self._condition(pitch, features.shape[0]))
        if not self.variational:
            return Posterior(out)
        mean, logvar = out.chunk(2, dim=-1)
        return Posterior(mean, logvar.clamp(-12.0, 6.0))

    def decode_features(
        self, latent: torch.Tensor, pitch: torch.Tensor | None = None, pitch_temperature: float | None = None
    ) -> torch.Tensor:
        """``(B, latent_size)`` -> ``(B, n_bins, frames)`` features.

        ``pitch`` is used by the ``cvae`` only; the others decode under their pitch read-out, softened by
        ``pitch_temperature`` (default: the config's).
        """
        if self.conditional:
            cond = self._condition(pitch, latent.shape[0])
        else:
            temperature = self.config.pitch_temperature if pitch_temperature is None else pitch_temperature
            cond = self.pitch.expected((self.pitch_logits(latent) / temperature).softmax(dim=-1))
        return self.decoder(latent, cond)[..., : self.config.frames]

    def pitch_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """The unconditional models' pitch read-out: ``(B, latent_size)`` -> logits ``(B, n_pitches)``."""
        if self.pitch_head is None:
            raise ValueError("The cvae is given the pitch; it has no pitch read-out.")
        return self.pitch_head(latent)

    def read_pitch(self, latent: torch.Tensor) -> torch.Tensor:
        """The MIDI pitch an unconditional model's latent ``(B, latent_size)`` holds: ``(B,)`` int."""
        return self.pitch_logits(latent).argmax(dim=-1) + self.config.min_pitch

    def forward(
        self, features: torch.Tensor, pitch: torch.Tensor | None = None, family: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training pass: ``{"reconstruction": (B, n_bins, frames), "recon/l1": (), "kl": (), "pitch/ce": ()}``.

        ``kl`` is the KL divergence in nats per note divided by the number of feature values, so that beta
        weighs it against the per-value L1 whatever the feature size (0 for the ``ae``). ``pitch/ce`` is the
        cross-entropy of the pitch read-out (0 for the ``cvae``, which is given the pitch).
        """
        posterior = self.encode_features(features, pitch)
        latent = posterior.sample()
        reconstruction = self.decode_features(latent, pitch, pitch_temperature=1.0)
        kl = self.kl(posterior, family) / features[0].numel()
        pitch_ce = kl.new_zeros(())
        if self.pitch_head is not None and pitch is not None:
            target = pitch.long().clamp(self.config.min_pitch, self.config.max_pitch) - self.config.min_pitch
            pitch_ce = F.cross_entropy(self.pitch_logits(latent), target)
        return {
            "reconstruction": reconstruction,
            "recon/l1": F.l1_loss(reconstruction, features),
            "kl": kl,
            "pitch/ce": pitch_ce,
        }

    def kl(self, posterior: Posterior, family: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over the batch of KL(q(z|x) || p(z)) in nats (``p`` = the family's component for ``mog-vae``)."""
        if posterior.logvar is None:
            return posterior.mean.new_zeros(())
        mean, logvar = posterior.mean, posterior.logvar
        if self.mixture_prior:
            if family is None:
                raise ValueError("The mog-vae model needs each note's family to train.")
            prior_mean, prior_logvar = self.prior_means[family], self.prior_logvars[family]
        else:
            prior_mean, prior_logvar = torch.zeros_like(mean), torch.zeros_like(logvar)
        kl = 0.5 * (prior_logvar - logvar + (logvar.exp() + (mean - prior_mean).square()) / prior_logvar.exp() - 1)
        return kl.sum(dim=-1).mean()

    def prior_sample(self, generator: torch.Generator, count: int = 1, family: int | None = None) -> torch.Tensor:
        """Latents ``(count, latent_size)`` from the prior (a family's component for ``mog-vae``)."""
        noise = torch.randn(count, self.config.latent_size, generator=generator)
        if self.mixture_prior:
            if family is None:
                family = int(torch.randint(self.config.n_families, (1,), generator=generator))
            std = (0.5 * self.prior_logvars[family]).exp().detach().cpu()
            return self.prior_means[family].detach().cpu() + std * noise
        return noise

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class AE(NoteAutoencoder):
    model_type = "ae"


class VAE(NoteAutoencoder):
    model_type = "vae"
    variational = True


class MoGVAE(NoteAutoencoder):
    model_type = "mog-vae"
    variational = True
    mixture_prior = True


class CVAE(NoteAutoencoder):
    model_type = "cvae"
    variational = True
    conditional = True


MODELS: dict[str, type[NoteAutoencoder]] = {cls.model_type: cls for cls in (AE, VAE, MoGVAE, CVAE)}
