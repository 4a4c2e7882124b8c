"""The last step of every note model: features + MIDI pitch -> audio.

Every note model (``ae``, ``vae``, ``mog-vae``, ``cvae``, ``gan``, ``cdecoder``) writes the same features, the
128-band log-mel of a 16-kHz STFT (:class:`~hummingface.dsp.NoteSpectrogram`). :class:`NoteAudio` turns them
into sound: with the 44.1-kHz :class:`~hummingface.models.vocoder.Vocoder` (checkpoint ``vocoder``) when the
weights hold one, else -- older weight trees -- by mel inversion and phase reconstruction at 16 kHz. The
models and their latent spaces are the same either way; only the rate and the sound of the output change.
"""

from __future__ import annotations

import numpy as np
import torch

from hummingface.audio import peak_limit
from hummingface.constants import NOTE_SAMPLES
from hummingface.dsp import NoteSpectrogram
from hummingface.hub import WeightsSource
from hummingface.models.vocoder import Vocoder
from hummingface.vibrato import PitchBend

VOCODER = "vocoder"  # the checkpoint name the note models look for beside them


class NoteAudio:
    """Features ``(n_bins, frames)`` or ``(B, n_bins, frames)`` + MIDI pitch -> float32 audio ``(samples,)`` or
    ``(B, samples)`` at :attr:`sample_rate`, each note peak-limited to 0.99.

    Args:
        spectrogram: the models' features (its phase reconstruction is the 16-kHz fallback).
        vocoder: the 44.1-kHz vocoder, or ``None`` for 16-kHz phase reconstruction.
    """

    def __init__(self, spectrogram: NoteSpectrogram, vocoder: Vocoder | None = None) -> None:
        self.spectrogram = spectrogram
        self.vocoder = vocoder.eval() if vocoder is not None else None

    @property
    def sample_rate(self) -> int:
        return self.vocoder.config.sample_rate if self.vocoder is not None else self.spectrogram.config.sample_rate

    @property
    def samples(self) -> int:
        """Samples per 4-s note at :attr:`sample_rate`."""
        return self.vocoder.config.samples if self.vocoder is not None else NOTE_SAMPLES

    @torch.inference_mode()
    def __call__(self, features: torch.Tensor, pitch: torch.Tensor | float | int | None,
                 bend: PitchBend | None = None) -> np.ndarray:
        """``bend`` (a vibrato or a recording's pitch curve) needs the vocoder: the 16-kHz path plays the features
        as they are."""
        if self.vocoder is not None:
            if pitch is None:
                raise ValueError("The vocoder needs each note's MIDI pitch.")
            return self.vocoder.decode(features, torch.as_tensor(pitch, dtype=torch.float32).cpu(), bend)
        device = self.spectrogram.stft.window.device
        return peak_limit(self.spectrogram.inverse(features.to(device), length=self.samples).float().cpu().numpy())


def load_vocoder(weights: str | None, device: torch.device, name: str | None = VOCODER) -> Vocoder | None:
    """The vocoder checkpoint ``name`` of ``weights`` (see :class:`WeightsSource`) on ``device``, or ``None`` when
    ``name`` is ``None`` or the weights hold none (then the models play at 16 kHz, as before the vocoder)."""
    if name is None:
        return None
    folder = WeightsSource.resolve(weights).fetch([name]).get(name)
    return Vocoder.from_folder(folder, device=device) if folder is not None else None
