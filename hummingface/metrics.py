"""Objective quality measures shared by the benchmarks and the training reports (definitions: docs/metrics.md)."""

from __future__ import annotations

import torch

from hummingface.dsp import STFT


def lsd_db(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    n_fft: int = 1024,
    hop_length: int = 256,
    dynamic_range_db: float = 80.0,
    counted: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-spectral distance of notes in dB.

    Per-frame RMS over bins of the difference of dB power spectra, each spectrogram clipped
    ``dynamic_range_db`` below its own peak, averaged over frames. At 16 kHz with the defaults,
    re-synthesising a note's true mel spectrogram with Griffin-Lim scores about 7 dB; a mean spectrum 23.

    Args:
        reference, estimate: ``(..., samples)`` audio at the same rate; the shorter length is used.
        counted: ``(n_fft // 2 + 1,)`` bool, the bins whose differences count, the others as if the estimate had
            them right (still in the RMS): what the distance would be were only those bins wrong.

    Returns:
        ``(...)`` distances in dB.
    """
    length = min(reference.shape[-1], estimate.shape[-1])
    stft = STFT(n_fft, hop_length).to(reference.device)
    ref_db = clipped_db(stft(reference[..., :length]).abs().square(), dynamic_range_db)
    est_db = clipped_db(stft(estimate[..., :length]).abs().square(), dynamic_range_db)
    return lsd_of_db(ref_db, est_db, counted)


def lsd_of_db(reference_db: torch.Tensor, estimate_db: torch.Tensor, counted: torch.Tensor | None = None,
              smoothing: float = 0.0) -> torch.Tensor:
    """:func:`lsd_db` of two :func:`clipped_db` spectrograms ``(..., bins, frames)`` -> ``(...)`` dB. ``smoothing``
    (dB squared) is added under each frame's square root: a loss needs it where a frame matches exactly, since
    sqrt has no slope at 0 (:meth:`hummingface.models.timbre.Timbre.listen`)."""
    difference = reference_db - estimate_db
    if counted is not None:
        difference = difference * counted.to(difference.device)[:, None]
    return (difference.square().mean(dim=-2) + smoothing).sqrt().mean(dim=-1)


def clipped_db(power: torch.Tensor, dynamic_range_db: float) -> torch.Tensor:
    """``(..., bins, frames)`` power -> dB, floored ``dynamic_range_db`` below each spectrogram's peak."""
    db = 10 * power.clamp_min(1e-20).log10()
    peak = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, peak - dynamic_range_db)


def lsd_spectral(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    sample_rate: int = 44100,
    min_hz: float | None = None,
    max_hz: float | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    floor: float = 1e-8,
) -> torch.Tensor:
    """Log-spectral distance as AERO and AP-BWE compute it, optionally over a band (LSD-LF, LSD-HF).

    ``log10`` of STFT power (Hann ``n_fft``/``hop_length``, power floored at ``floor``); per frame the RMS over
    bins of the difference; mean over frames. The unit is bels (no factor 10). ``min_hz``/``max_hz`` keep the
    bins with ``min_hz <= f < max_hz``: LSD-LF is ``max_hz=3800``, LSD-HF ``min_hz=4000``.

    Args:
        reference, estimate: ``(..., samples)`` audio at ``sample_rate``; the shorter length is used.

    Returns:
        ``(...)`` distances.
    """
    length = min(reference.shape[-1], estimate.shape[-1])
    stft = STFT(n_fft, hop_length).to(reference.device)
    ref = stft(reference[..., :length]).abs().square().clamp_min(floor).log10()
    est = stft(estimate[..., :length]).abs().square().clamp_min(floor).log10()
    freqs = torch.arange(ref.shape[-2], device=ref.device) * sample_rate / n_fft
    keep = torch.ones_like(freqs, dtype=torch.bool)
    if min_hz is not None:
        keep &= freqs >= min_hz
    if max_hz is not None:
        keep &= freqs < max_hz
    return (ref[..., keep, :] - est[..., keep, :]).square().mean(dim=-2).sqrt().mean(dim=-1)


def ndb_k(
    real: torch.Tensor, generated: torch.Tensor, k: int = 50, alpha: float = 0.05, seed: int = 0, iterations: int = 40
) -> float:
    """NDB/K: the share of k-means bins whose proportion of generated samples differs significantly from the real's.

    The number of statistically different bins (Richardson & Weiss 2018, https://arxiv.org/abs/1805.12462),
    divided by ``k``, as GANSynth reports it (k = 50, on log-spectrograms). k-means (k-means++ start, Lloyd
    iterations) is fitted on ``real``; every sample goes to its nearest centre; each bin's two proportions
    are compared with a two-proportion z-test at level ``alpha``. 0 is ideal; a collapsed generator that fills
    a few bins scores near 1.

    Args:
        real, generated: ``(N, D)`` and ``(M, D)`` feature vectors (e.g. flattened, pooled log-spectrograms).
    """
    real, generated = real.double(), generated.double()
    generator = torch.Generator().manual_seed(seed)
    centres = real[torch.randint(len(real), (1,), generator=generator)]
    for _ in range(1, k):  # k-means++: each new centre drawn in proportion to its squared distance
        distance = torch.cdist(real, centres).min(dim=1).values.square()
        centres = torch.cat([centres, real[torch.multinomial(distance / distance.sum(), 1, generator=generator)]])
    for _ in range(iterations):
        assign = torch.cdist(real, centres).argmin(dim=1)
        for index in range(k):
            members = real[assign == index]
            if len(members):
                centres[index] = members.mean(dim=0)
    real_share = torch.bincount(torch.cdist(real, centres).argmin(dim=1), minlength=k) / len(real)
    gen_share = torch.bincount(torch.cdist(generated, centres).argmin(dim=1), minlength=k) / len(generated)
    pooled = (real_share * len(real) + gen_share * len(generated)) / (len(real) + len(generated))
    error = (pooled * (1 - pooled) * (1 / len(real) + 1 / len(generated))).sqrt()
    z = (real_share - gen_share).abs() / error.clamp_min(1e-12)
    p_value = torch.erfc(z / 2**0.5)
    return float(((p_value < alpha) & (error > 0)).sum()) / k
