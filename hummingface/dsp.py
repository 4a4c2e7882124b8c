"""Torch-native spectral DSP: STFT/iSTFT, mel scale, log compression and phase reconstruction.

Every transform is an ``nn.Module`` whose constants (windows, filterbanks) are registered buffers, so
``.to(device)`` moves it to CUDA or MPS; all maths is float32 (MPS has no float64). Shapes: audio is
``(..., samples)``; spectrograms are ``(..., bins, frames)``.

Phase reconstruction
--------------------
Models here predict magnitudes, so phase has to be rebuilt. Griffin-Lim (Griffin & Lim 1984; the fast,
momentum variant of Perraudin et al. 2013) is the baseline: it needs ~32 STFT/iSTFT round trips from a random
start and still leaves a metallic, phasey sound, because it only ever finds a local optimum.

:class:`PhaseGradient` instead computes the phase directly from the magnitude, following phase-gradient
heap integration (PGHI; Průša, Balazs & Søndergaard 2017, https://doi.org/10.1109/TASLP.2017.2678166). For a
Gaussian window of time spread sigma the STFT is analytic up to a factor, so the phase gradient follows from
the log-magnitude ``s``: along time it is ``omega + ds/domega / sigma**2`` (the instantaneous frequency),
along frequency ``-sigma**2 * ds/dt`` (the negative group delay). A Hann window is close enough to a Gaussian
with ``sigma**2 = 0.25645 * L**2 / (2 pi)``. PGHI integrates that gradient with a heap, always from the
largest coefficient outward -- a sequential loop that is slow in Python. We integrate in the same two
directions but fully vectorised, which is what makes it fast on a CPU:

1. along frequency, inside each frame, outward from every spectral peak across the bins that climb to it
   (so each partial's lobe is phase-coherent, and an onset's bins line up in time);
2. along time, each peak's phase advances by the instantaneous frequency (trapezoidal rule), as in a
   phase-locked vocoder (Laroche & Dolson 1999).

Musical notes are mostly stable partials, where this is exact up to discretisation. A few fast Griffin-Lim
iterations started from this phase then remove what is left of the inconsistency: the result scores a lower
spectral distance than 32 Griffin-Lim iterations at a fraction of the time (``benchmarks/phase.py``).
"""

from __future__ import annotations

import dataclasses
import math

import librosa
import torch
from torch import nn
from torch.nn import functional as F

HANN_GAUSSIAN_RATIO = 0.25645  # lambda / L**2 of the Gaussian closest to a Hann window (Průša et al. 2017)


class STFT(nn.Module):
    """Short-time Fourier transform with a periodic Hann window, centred frames, and its inverse.

    Args:
        n_fft: FFT size in samples (also the window length).
        hop_length: frame step in samples.
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 256) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` float -> ``(..., n_fft // 2 + 1, frames)`` complex, frames = samples // hop + 1."""
        shape = audio.shape
        spec = torch.stft(
            audio.reshape(-1, shape[-1]),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",  # zeros before the start, as librosa does: a note starts from silence
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(..., bins, frames)`` complex -> ``(..., samples)`` float: ``length`` samples, else
        ``hop * (frames - 1)``, as ``torch.istft`` gives (to within float32 rounding).

        The overlap-add is written out for hops that divide the FFT size (all of ours): ``torch.istft``'s general
        fold made it 5x slower (2048/512, 345 frames, one thread: 9.3 ms against 1.7), and the vocoder runs one
        on every note it plays.
        """
        if self.n_fft % self.hop_length:
            return self._torch_inverse(spec, length)
        shape = spec.shape
        length = self.hop_length * (shape[-1] - 1) if length is None else length
        frames = torch.fft.irfft(spec.reshape(-1, *shape[-2:]).transpose(-1, -2), n=self.n_fft) * self.window
        squared = self.window.square().expand(1, shape[-1], -1)  # the windows' summed energy, to divide out
        audio = overlap_add(frames, self.hop_length) / overlap_add(squared, self.hop_length).clamp_min(1e-11)
        audio = audio[:, self.n_fft // 2 : self.n_fft // 2 + length]  # centred frames: the first starts at -n_fft/2
        audio = F.pad(audio, (0, length - audio.shape[-1]))
        return audio.reshape(*shape[:-2], length)

    def _torch_inverse(self, spec: torch.Tensor, length: int | None) -> torch.Tensor:
        shape = spec.shape
        audio = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return audio.reshape(*shape[:-2], audio.shape[-1])


def resample_fft(audio: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Audio ``(..., samples)`` -> ``(..., num_samples)`` over the same time span, by cutting (or zero-padding) its
    spectrum: an ideal low-pass, and differentiable, where :func:`hummingface.audio.resample` (soxr) is not."""
    spectrum = torch.fft.rfft(audio)[..., : num_samples // 2 + 1]
    return torch.fft.irfft(spectrum, n=num_samples) * (num_samples / audio.shape[-1])


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """``(B, frames, size)`` windows, each starting ``hop`` samples after the last -> their sum ``(B, (frames - 1) *
    hop + size)``; ``size`` a multiple of ``hop``."""
    batch, count, size = frames.shape
    parts = size // hop
    chunks = frames.reshape(batch, count, parts, hop)
    # Part c of frame t lands on output block t + c: shift each part's blocks by c and add them up.
    total = sum(F.pad(chunks[:, :, c], (0, 0, c, parts - 1 - c)) for c in range(parts))
    return total.reshape(batch, -1)


class MelScale(nn.Module):
    """Linear-frequency magnitudes <-> mel bands, with librosa's (Slaney-normalised) filterbank.

    ``inverse`` is the non-negative least-squares-style pseudo-inverse: exact on the span of the filters,
    clamped at zero; what the mel bands threw away (fine detail inside a wide high band) stays lost.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
        filters = torch.from_numpy(filters).float()  # (n_mels, bins)
        self.register_buffer("filters", filters, persistent=False)
        self.register_buffer("pseudo_inverse", torch.linalg.pinv(filters), persistent=False)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``(..., bins, frames)`` -> ``(..., n_mels, frames)``."""
        return self.filters @ magnitude

    def inverse(self, mel: torch.Tensor) -> torch.Tensor:
        """``(..., n_mels, frames)`` -> ``(..., bins, frames)``, non-negative."""
        return (self.pseudo_inverse @ mel).clamp_min(0.0)


class LogCompression(nn.Module):
    """Magnitude <-> normalised log-magnitude: ``(log(max(x, floor)) - offset) / scale``.

    The defaults map a 16-bit note's STFT magnitudes (``floor`` = 1e-5, about -100 dB, up to ~300 for a
    full-scale sine under a 1024-point Hann window) onto roughly [-1, 1], the range networks like.
    """

    def __init__(self, floor: float = 1e-5, offset: float = -3.0, scale: float = 8.5) -> None:
        super().__init__()
        self.floor, self.offset, self.scale = floor, offset, scale

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return (magnitude.clamp_min(self.floor).log() - self.offset) / self.scale

    def inverse(self, features: torch.Tensor) -> torch.Tensor:
        # The clamp keeps an untrained network's wild outputs from overflowing exp().
        return (features * self.scale + self.offset).clamp(max=12.0).exp()

    def gain(self, gain_db: torch.Tensor) -> torch.Tensor:
        """A gain in dB (any shape) -> the offset that applies it to these features (same shape): a gain is an offset
        of log magnitudes."""
        return gain_db * (math.log(10) / 20 / self.scale)


class GriffinLim(nn.Module):
    """Fast Griffin-Lim phase reconstruction (Perraudin, Balazs & Søndergaard 2013, arXiv:1309.3168).

    Args:
        stft: the transform the magnitudes came from.
        n_iter: STFT/iSTFT round trips.
        momentum: 0 gives the classic algorithm; 0.99 is librosa's and torchaudio's default.
    """

    def __init__(self, stft: STFT, n_iter: int = 32, momentum: float = 0.99) -> None:
        super().__init__()
        self.stft, self.n_iter, self.momentum = stft, n_iter, momentum

    def forward(
        self,
        magnitude: torch.Tensor,
        length: int | None = None,
        phase: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``(..., bins, frames)`` magnitude -> ``(..., samples)`` audio.

        Args:
            phase: starting phase in radians, same shape as ``magnitude``; random when ``None``.
            generator: for the random start (drawn on the CPU so every device gives the same result).
        """
        if phase is None:
            phase = 2 * math.pi * torch.rand(magnitude.shape, generator=generator).to(magnitude.device)
        angles = torch.polar(torch.ones_like(magnitude), phase)
        previous = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            rebuilt = self.stft(self.stft.inverse(magnitude * angles, length))
            angles = torch.sgn(torch.add(rebuilt, previous, alpha=-self.momentum / (1 + self.momentum)))
            previous = rebuilt
        return self.stft.inverse(magnitude * angles, length)


class PhaseGradient(nn.Module):
    """Phase from magnitude by vectorised phase-gradient integration, polished by a few Griffin-Lim steps.

    See the module docstring for the method and why. ``n_iter=0`` gives the pure integration.

    Args:
        stft: the transform the magnitudes came from (Hann window).
        n_iter: fast Griffin-Lim iterations started from the integrated phase.
        momentum: their momentum.
    """

    def __init__(self, stft: STFT, n_iter: int = 6, momentum: float = 0.99) -> None:
        super().__init__()
        self.stft = stft
        self.polish = GriffinLim(stft, n_iter=n_iter, momentum=momentum)
        n_fft, hop = stft.n_fft, stft.hop_length
        sigma2 = HANN_GAUSSIAN_RATIO * n_fft**2 / (2 * math.pi)  # Gaussian time variance, samples**2
        self.time_gain = n_fft**2 / (4 * math.pi**2 * sigma2) / 2  # bins per log-magnitude difference
        self.hop_radians = 2 * math.pi * hop / n_fft  # phase advance over one hop per bin of frequency
        self.freq_gain = 2 * math.pi * sigma2 / (n_fft * hop) / 2  # per central difference over 2 frames
        # A peak "continues" unless the previous frame was over 20 dB quieter there (an onset).
        self.continuation = 0.1
        bins = torch.arange(n_fft // 2 + 1)
        # Phase advance of bin k's centre frequency over one hop, reduced exactly modulo 2 pi.
        self.register_buffer("bin_advance", (bins * hop % n_fft) * (2 * math.pi / n_fft), persistent=False)
        # torch.stft measures phase from each frame's start, the integration from its centre.
        self.register_buffer("frame_start_shift", -math.pi * (bins % 2).float(), persistent=False)

    def phase(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``(..., bins, frames)`` magnitude -> phase in radians, same shape (torch.stft's convention)."""
        # Work frame-major, (..., frames, bins): every gather and scan below runs along contiguous bins.
        magnitude = magnitude.transpose(-1, -2).contiguous()
        log_mag = magnitude.clamp_min(1e-8).log()
        # Phase change from bin k to k + 1 (inside a frame) and from frame m to m + 1 (inside a bin).
        freq_step = -self.freq_gain * _central_difference(log_mag, dim=-2)
        time_step = self.bin_advance + self.hop_radians * _bin_offset(log_mag, self.time_gain)
        time_advance = 0.5 * (time_step[..., 1:, :] + time_step[..., :-1, :])  # trapezoid, frames - 1
        freq_integral = torch.cumsum(0.5 * (freq_step[..., 1:] + freq_step[..., :-1]), dim=-1)
        freq_integral = nn.functional.pad(freq_integral, (1, 0))

        # Each bin is phase-locked to a source bin of its frame: the peak it climbs to when that peak
        # continues from the previous frame, else (an onset: nothing to continue) the frame's loudest bin,
        # so a new event is coherent across the whole spectrum, as heap integration would make it.
        peak = _basin_peaks(magnitude)
        loudest = magnitude.argmax(dim=-1, keepdim=True).expand_as(peak)
        previous = nn.functional.pad(magnitude[..., :-1, :], (0, 0, 1, 0))
        continues = torch.gather(previous >= self.continuation * magnitude, -1, peak)
        source = torch.where(continues, peak, loudest)

        # Frame m's phase is gather(frame m-1's phase + advance, source) + offset: a chain of maps
        # phi -> gather(phi, index) + shift. Such maps compose into maps of the same form, so a parallel
        # prefix scan (log2(frames) steps) replaces the frame-by-frame loop.
        index = source.clone()
        shift = torch.gather(nn.functional.pad(time_advance, (0, 0, 1, 0)) - freq_integral, -1, source)
        shift += freq_integral
        span = 1
        while span < magnitude.shape[-2]:
            later = index[..., span:, :]
            carried = torch.gather(shift[..., :-span, :], -1, later)
            index[..., span:, :] = torch.gather(index[..., :-span, :], -1, later)
            shift[..., span:, :] += carried
            span *= 2
        return (shift + self.frame_start_shift).transpose(-1, -2)

    def forward(self, magnitude: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(..., bins, frames)`` magnitude -> ``(..., samples)`` audio."""
        return self.polish(magnitude, length, phase=self.phase(magnitude))


def _central_difference(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x[i + 1] - x[i - 1]`` along ``dim``, one-sided (doubled) at the edges; same shape as ``x``."""
    n = x.shape[dim]
    forward = x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1)  # x[i + 1] - x[i], n - 1 values
    first, last = forward.narrow(dim, 0, 1), forward.narrow(dim, n - 2, 1)
    inner = x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2)
    return torch.cat([2 * first, inner, 2 * last], dim=dim)


def _bin_offset(log_mag: torch.Tensor, gaussian_gain: float) -> torch.Tensor:
    """Where each bin's partial really is, in bins from the bin centre: ``(..., frames, bins)``.

    Near a peak the parabola through three log-magnitudes is exact for a Gaussian window and far closer
    than the Gaussian formula for a Hann one (its main lobe is wider); elsewhere the Gaussian formula
    ``gaussian_gain * (s[k + 1] - s[k - 1])`` applies.
    """
    below = torch.cat([log_mag[..., :1], log_mag[..., :-1]], dim=-1)  # s[k - 1], edge repeated
    above = torch.cat([log_mag[..., 1:], log_mag[..., -1:]], dim=-1)  # s[k + 1]
    curvature = below - 2 * log_mag + above
    parabola = (0.5 * (below - above) / curvature.clamp(max=-1e-6)).clamp(-1.0, 1.0)
    return torch.where(curvature < 0, parabola, gaussian_gain * (above - below))


def _basin_peaks(magnitude: torch.Tensor) -> torch.Tensor:
    """For every bin, the local spectral maximum reached by always stepping to the louder neighbour.

    Each bin points one step uphill; pointer jumping (``up = up[up]``, log2(bins) rounds) follows the
    whole climb in parallel.

    Args:
        magnitude: ``(..., frames, bins)``.

    Returns:
        int64 ``(..., frames, bins)`` bin indices.
    """
    n_bins = magnitude.shape[-1]
    index = torch.arange(n_bins, device=magnitude.device)
    left = nn.functional.pad(magnitude[..., :-1], (1, 0), value=-1.0)
    right = nn.functional.pad(magnitude[..., 1:], (0, 1), value=-1.0)
    up = torch.where(right > torch.maximum(left, magnitude), index + 1, index)
    up = torch.where((left > magnitude) & (left >= right), index - 1, up)
    for _ in range(math.ceil(math.log2(n_bins))):
        up = torch.gather(up, -1, up)
    return up


# The most NoteSpectrogram.with_loudness turns a frame up (dB).
MAX_GAIN_DB = 30.0


@dataclasses.dataclass(frozen=True)
class SpectrogramConfig:
    """The shared note representation: normalised log-magnitude (mel or linear) of a 16-kHz STFT.

    Attributes:
        sample_rate: Hz.
        n_fft: FFT size in samples; hop_length: frame step in samples.
        n_mels: mel bands, or 0 for the linear ``n_fft // 2 + 1`` bins.
        phase_iters: Griffin-Lim polishing iterations after phase-gradient integration.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    phase_iters: int = 6


class NoteSpectrogram(nn.Module):
    """Audio <-> the features every note model reads and writes.

    ``forward``: ``(..., samples)`` audio -> ``(..., bins, frames)`` normalised log-magnitude (``bins`` =
    ``n_mels``, or ``n_fft // 2 + 1`` when ``n_mels`` is 0). ``inverse``: features -> audio, through mel
    inversion and :class:`PhaseGradient`.
    """

    def __init__(self, config: SpectrogramConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SpectrogramConfig()
        self.stft = STFT(config.n_fft, config.hop_length)
        self.mel = MelScale(config.sample_rate, config.n_fft, config.n_mels) if config.n_mels else None
        self.log = LogCompression()
        self.phase = PhaseGradient(self.stft, n_iter=config.phase_iters)

    @property
    def n_bins(self) -> int:
        return self.config.n_mels or self.config.n_fft // 2 + 1

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` -> linear STFT magnitude ``(..., n_fft // 2 + 1, frames)``."""
        return self.stft(audio).abs()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        magnitude = self.magnitude(audio)
        if self.mel is not None:
            magnitude = self.mel(magnitude)
        return self.log(magnitude)

    def to_magnitude(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> linear STFT magnitude ``(..., n_fft // 2 + 1, frames)``."""
        magnitude = self.log.inverse(features)
        return self.mel.inverse(magnitude) if self.mel is not None else magnitude

    def inverse(self, features: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(..., bins, frames)`` features -> ``(..., samples)`` audio."""
        return self.phase(self.to_magnitude(features), length)

    def loudness_db(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., bins, frames)`` features -> ``(..., frames)`` each frame's level: dB of its magnitudes' energy.

        Only differences mean anything: a note played 6 dB quieter reads 6 dB less in every frame (down to the
        features' floor, 100 dB under full scale)."""
        log_magnitude = features * self.log.scale + self.log.offset
        return (10 / math.log(10)) * torch.logsumexp(2 * log_magnitude, dim=-2)

    def with_loudness(self, features: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        """``features`` ``(..., bins, frames)`` turned up or down frame by frame so that :meth:`loudness_db` reads
        ``loudness_db`` ``(..., frames)`` -- up by at most :data:`MAX_GAIN_DB`: a frame left near the floor holds no
        spectrum worth raising. A gain is an offset of log magnitudes, so each frame keeps its spectral shape."""
        target = torch.as_tensor(loudness_db, dtype=features.dtype, device=features.device)
        gain_db = (target - self.loudness_db(features)).clamp(max=MAX_GAIN_DB)
        return features + self.log.gain(gain_db)[..., None, :]
