"""Objective quality measures shared by the benchmarks and the training reports (definitions: DESIGN.md)."""

from __future__ import annotations

import torch

from hummingface.dsp import STFT


def lsd_db(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    n_fft: int = 1024,
    hop_length: int = 256,
    dynamic_range_db: float = 80.0,
) -> torch.Tensor:
    """Log-spectral distance of notes in dB.

    Per-frame RMS over bins of the difference of dB power spectra, each spectrogram clipped
    ``dynamic_range_db`` below its own peak, averaged over frames. At 16 kHz with the defaults,
    re-synthesising a note's true mel spectrogram with Griffin-Lim scores about 7 dB; a mean spectrum 23.

    Args:
        reference, estimate: ``(..., samples)`` audio at the same rate; the shorter length is used.

    Returns:
        ``(...)`` distances in dB.
    """
    length = min(reference.shape[-1], estimate.shape[-1])
    stft = STFT(n_fft, hop_length).to(reference.device)
    ref_db = _clipped_db(stft(reference[..., :length]).abs().square(), dynamic_range_db)
    est_db = _clipped_db(stft(estimate[..., :length]).abs().square(), dynamic_range_db)
    return (ref_db - est_db).square().mean(dim=-2).sqrt().mean(dim=-1)


def _clipped_db(power: torch.Tensor, dynamic_range_db: float) -> torch.Tensor:
    """``(..., bins, frames)`` power -> dB, floored ``dynamic_range_db`` below each spectrogram's peak."""
    db = 10 * power.clamp_min(1e-20).log10()
    peak = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, peak - dynamic_range_db)
