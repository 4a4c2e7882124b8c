"""The learned band extension behind ``upsample(mode="model")``: gains over a spectral band replication.

The network never invents phase or fine structure. :class:`~hummingface.band_replication.BandReplication` supplies a
phase-coherent copy of the 1.8-3.7 kHz band in every patch above 3.8 kHz; the network predicts, for every
generated STFT bin and frame, a log-magnitude gain on that copy, from the log power spectrum of the low band
(AP-BWE and AERO also work on the STFT; this is the cheapest member of that family). With its last layer
initialised to zero the model starts out as the blind SBR baseline, and training only has to learn how real
music's high band differs from a tilted copy: brighter cymbals, duller strings, silence above a synth's
cut-off, noise instead of copied harmonics.

Shapes: complex spectra ``(B, S, bins, frames)`` at 44.1 kHz (STFT 1024/256), S signals (mid first, then
each channel's difference from the mid). The network reads the mid only: ``(B, n_low, frames)`` ->
``(B, n_high, frames)``, 1-D convolutions over time with frequency bins as channels (ConvNeXt blocks,
dilated so the receptive field spans about half a second).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from hummingface.band_replication import OUTPUT_RATE, BandReplication
from hummingface.dsp import STFT
from hummingface.hub import Pretrained

LOG_FLOOR = 1e-8  # power floor of the features, as in the AERO/AP-BWE LSD


@dataclasses.dataclass(frozen=True)
class UpsamplerConfig:
    """Everything that builds the upsampler; saved as ``config.json`` beside the weights.

    Attributes:
        n_fft, hop_length: the STFT at 44.1 kHz the band is generated in.
        pass_below_hz, crossfade_hz: the input passes through below ``pass_below_hz``; the generated band
            fades in over the next ``crossfade_hz``.
        source_low_hz, source_high_hz: the band copied upwards.
        width: channels of the convolutional trunk.
        dilations: one ConvNeXt block per entry, with that dilation of its depthwise convolution.
        kernel_size: the depthwise convolutions' kernel (frames).
        max_gain: bound on the absolute log-magnitude gain (natural log), through a tanh.
    """

    n_fft: int = 1024
    hop_length: int = 256
    pass_below_hz: float = 3800.0
    crossfade_hz: float = 200.0
    source_low_hz: float = 1800.0
    source_high_hz: float = 3700.0
    width: int = 160
    dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)
    kernel_size: int = 7
    max_gain: float = 8.0


class ConvNeXtBlock(nn.Module):
    """``(B, C, T)`` -> ``(B, C, T)``: depthwise conv, layer norm over channels, pointwise MLP, residual."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, padding=padding, dilation=dilation, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, 2 * channels)
        self.down = nn.Linear(2 * channels, channels)
        self.scale = nn.Parameter(torch.full((channels,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x).transpose(1, 2)  # (B, C, T) -> (B, T, C)
        y = self.down(nn.functional.gelu(self.up(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class Upsampler(Pretrained):
    """Predicts log-magnitude gains over the band replication; see the module docstring."""

    config_class: ClassVar[type] = UpsamplerConfig
    model_type: ClassVar[str] = "upsampler"

    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__(config)
        self.stft = STFT(config.n_fft, config.hop_length)
        self.replication = BandReplication(
            config.n_fft,
            config.hop_length,
            OUTPUT_RATE,
            config.pass_below_hz,
            config.crossfade_hz,
            config.source_low_hz,
            config.source_high_hz,
        )
        self.n_low = self.replication.low_bin
        self.input = nn.Conv1d(self.n_low + 1, config.width, 1)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(config.width, config.kernel_size, d) for d in config.dilations))
        self.norm = nn.LayerNorm(config.width)
        self.output = nn.Linear(config.width, self.replication.n_high)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        """Mid spectrum ``(B, S, bins, frames)`` -> ``(B, n_low + 1, frames)``: the low band's log10 power
        relative to the frame's mean, and that mean (level), scaled to roughly unit range."""
        low = spec[:, 0, : self.n_low]
        log_power = (low.real.square() + low.imag.square()).clamp_min(LOG_FLOOR).log10()
        level = log_power.mean(dim=1, keepdim=True)
        return torch.cat([(log_power - level) / 2.0, (level + 2.0) / 4.0], dim=1)

    def gains(self, spec: torch.Tensor) -> torch.Tensor:
        """Natural-log magnitude gains ``(B, n_high, frames)`` on the replicated (tilted) band."""
        x = self.blocks(self.input(self.features(spec)))
        x = self.output(self.norm(x.transpose(1, 2))).transpose(1, 2)
        return self.config.max_gain * torch.tanh(x / self.config.max_gain)

    def extend(self, spec: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``(B, S, bins, frames)`` complex -> the same with the generated band above 3.8 kHz.

        Every signal (mid, side) gets the same gains, so the generated band pans like its source.
        ``offset``: where the block starts in a longer signal (see :meth:`BandReplication.extend`).
        """
        gains = self.replication.gains(spec) * self.gains(spec).exp()
        return self.replication.extend(spec, gains, offset)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Sinc-upsampled audio ``(B, S, samples)`` at 44.1 kHz -> band-extended audio of the same shape."""
        return self.stft.inverse(self.extend(self.stft(audio)), length=audio.shape[-1])

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
