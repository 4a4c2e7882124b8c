"""Blind spectral band replication: the DSP that copies a low band upwards in the STFT domain (no learning).

:mod:`hummingface.upsampling` uses it alone for the ``sbr`` mode, and
:class:`hummingface.models.upsampler.Upsampler` scales its copy with learned gains for the ``model`` mode; both
import it from here, so the model and the upsampling API do not import each other.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

OUTPUT_RATE = 44100  # the rate the band is generated at (Hz)


class BandReplication(nn.Module):
    """Blind spectral band replication on a complex STFT ``(..., bins, frames)`` at 44.1 kHz.

    Target bins at and above ``pass_below_hz`` are filled with copies of the source band
    ``[source_low_hz, source_high_hz)`` translated up by whole patch widths. The patch width is a multiple
    of ``n_fft / hop_length`` bins, so a translated partial keeps advancing its phase coherently from frame to
    frame (the translation's phase rotation per hop is a whole number of turns): the copy is itself a
    consistent STFT of a frequency-shifted signal. A block that starts ``offset`` samples into a longer
    signal gets the phase the copy would have had in one piece, so chunks of a long file agree.

    Each copied bin is scaled by the spectral tilt of the low band, extrapolated from the source frequency
    to the target frequency. The tilt is a least-squares line through the log power of three octave bands
    (0.5-1, 1-2 and 2-3.7 kHz) against log frequency, per frame, after smoothing the band powers over
    ``smooth_frames`` frames; it is fitted on the sum over channels, so all channels share it.

    Args:
        n_fft, hop_length: the STFT the spectra come from (44.1 kHz).
        pass_below_hz: first frequency that is generated; bins below are left as they are.
        crossfade_hz: width of the cross-fade from the input to the generated band, above ``pass_below_hz``.
        source_low_hz, source_high_hz: the band that is copied up (rounded to a whole patch width).
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        sample_rate: int = OUTPUT_RATE,
        pass_below_hz: float = 3800.0,
        crossfade_hz: float = 200.0,
        source_low_hz: float = 1800.0,
        source_high_hz: float = 3700.0,
        smooth_frames: int = 21,
        max_slope: float = 0.0,
        min_slope: float = -2.0,
    ) -> None:
        super().__init__()
        bin_hz = sample_rate / n_fft
        n_bins = n_fft // 2 + 1
        step = max(1, n_fft // hop_length)
        self.low_bin = math.ceil(pass_below_hz / bin_hz)  # first generated bin
        self.n_high = n_bins - self.low_bin
        source_high = int(source_high_hz // bin_hz)
        width = max(step, round((source_high_hz - source_low_hz) / bin_hz / step) * step)
        source_low = source_high - width
        if source_low < 1 or source_high > self.low_bin:
            raise ValueError("The source band must lie inside the passed-through band.")
        target = torch.arange(self.low_bin, n_bins)
        source = source_low + (target - source_low) % width  # shifted down by whole patch widths
        freqs = torch.arange(n_bins) * bin_hz
        self.n_fft, self.sample_rate = n_fft, sample_rate
        self.pass_below_hz, self.crossfade_hz = pass_below_hz, crossfade_hz
        self.register_buffer("source_index", source, persistent=False)
        self.register_buffer("shift", target - source, persistent=False)
        # Octaves from each copy's source to its target: the tilt (bels per octave) times this is its gain.
        self.register_buffer("octaves", torch.log2(freqs[target] / freqs[source]), persistent=False)
        ramp = ((freqs[target] - pass_below_hz) / crossfade_hz).clamp(0, 1)
        self.register_buffer("fade_in", torch.sin(0.5 * math.pi * ramp) ** 2, persistent=False)
        edges = [500.0, 1000.0, 2000.0, min(source_high_hz, pass_below_hz)]
        bands = torch.zeros(3, n_bins)
        for index, (low, high) in enumerate(itertools.pairwise(edges)):
            bands[index, (freqs >= low) & (freqs < high)] = 1.0
        bands = bands[:, : int(bands.nonzero()[:, 1].max()) + 1]  # only the bins the fit reads
        self.register_buffer("bands", bands / bands.sum(dim=1, keepdim=True), persistent=False)
        centres = torch.log2(torch.tensor([math.sqrt(a * b) for a, b in itertools.pairwise(edges)]))
        self.register_buffer("centres", centres - centres.mean(), persistent=False)
        self.smooth_frames, self.min_slope, self.max_slope = smooth_frames, min_slope, max_slope

    def tilt(self, spec: torch.Tensor) -> torch.Tensor:
        """Fitted spectral slope in bels (log10 power) per octave: ``(B, S, bins, frames)`` -> ``(B, frames)``."""
        low = spec[:, :, : self.bands.shape[1]]
        power = (low.real.square() + low.imag.square()).sum(dim=1)  # (B, bins, frames), all signals together
        band_power = torch.einsum("nk,bkf->bnf", self.bands, power)
        if self.smooth_frames > 1:
            kernel = torch.ones(3, 1, self.smooth_frames, device=spec.device) / self.smooth_frames
            padded = nn.functional.pad(band_power, (self.smooth_frames // 2,) * 2, mode="replicate")
            band_power = nn.functional.conv1d(padded, kernel, groups=3)
        log_power = band_power.clamp_min(1e-10).log10()
        slope = torch.einsum("n,bnf->bf", self.centres, log_power) / self.centres.square().sum()
        return slope.clamp(self.min_slope, self.max_slope)

    def gains(self, spec: torch.Tensor) -> torch.Tensor:
        """The tilt's magnitude gain for each copied bin: ``(B, S, bins, frames)`` -> ``(B, n_high, frames)``."""
        return torch.pow(10.0, 0.5 * self.tilt(spec)[:, None, :] * self.octaves[None, :, None])

    def extend(self, spec: torch.Tensor, gains: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """The spectrum with its high band cross-faded into the copy scaled by ``gains``.

        Args:
            spec: ``(B, S, bins, frames)`` complex; unchanged below ``pass_below_hz``.
            gains: ``(B, n_high, frames)`` real magnitude gains, the same for every signal.
            offset: the block's first sample in the whole signal (the copy is a shift by ``shift`` bins,
                ``x[n] * exp(2i pi shift n / n_fft)``, whose phase depends on where ``n`` counts from).

        Returns:
            ``(B, S, bins, frames)`` complex.
        """
        turns = (self.shift * (offset % self.n_fft)) % self.n_fft / self.n_fft
        rotation = torch.polar(self.fade_in, 2 * math.pi * turns.float())  # fade-in folded into the rotation
        copy = spec[:, :, self.source_index] * (gains * rotation[:, None])[:, None]
        high = spec[:, :, self.low_bin :] * (1 - self.fade_in)[:, None] + copy
        return torch.cat([spec[:, :, : self.low_bin], high], dim=2)

    def forward(self, spec: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Blind band replication: ``(B, S, bins, frames)`` -> the same with the tilted copy above 3.8 kHz."""
        return self.extend(spec, self.gains(spec), offset)
