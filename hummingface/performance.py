"""How a recorded note was played: its pitch and loudness frame by frame, which a reconstruction copies.

A note model's timbre latent is one vector per note. It holds the sound of the instrument, not every detail of
one performance: on the 40 held-out notes of ``benchmarks/notes44.py`` the cvae's reconstructions came out 4 dB
too quiet on average (up to 14 dB), with slow attacks, and with none of the recording's vibrato. DDSP's
autoencoder (Engel et al. 2020, https://arxiv.org/abs/2001.04643) splits a note the same way: f0 and loudness
are read from the audio and given to the decoder beside the latent, which only has to hold the rest. A
reconstruction here does that (:meth:`hummingface.models.timbre.Timbre.reconstruct`): the latent's features are
turned to the recording's loudness frame by frame, and the vocoder plays the recording's pitch curve -- its
tuning, vibrato, slow wander, scoops -- as the note's f0, instead of its own guess of a detune.

Measured on those 40 notes when this was chosen (cvae -> vocoder, ViSQOL / LSD_dB; today's in README): the latent
alone 4.01 / 6.98; at the recording's overall level 4.04 / 5.60 (``docs/benchmarks/notes44-level.json``);
following its loudness curve and pitch curve 4.05 / 5.14. A sine vibrato fitted to the recording describes the
strings' swing but not the brass's, reed's or voice's irregular wobble: over the 132 held-out notes with
vibrato, reconstructions keep the real depth within 30 % on 64 % of them with the sine and on 94 % with the pitch
curve (every family; ``docs/benchmarks/notes44-vibrato.json``). The Designer, which has no recording to follow,
keeps the latent's own loudness and the vibrato sliders.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from hummingface.constants import NOTE_SAMPLES, SAMPLE_RATE
from hummingface.dsp import NoteSpectrogram
from hummingface.vibrato import TRACK_RATE, pitch_track

MIN_TRACKED_S = 0.1  # less tracked pitch than this is no curve to follow


@dataclasses.dataclass(frozen=True)
class Performance:
    """A recorded note's pitch and loudness at the note features' frames.

    Attributes:
        bend_cents: ``(T,)`` its pitch in cents from the MIDI pitch: its tuning and what it does besides.
        loudness_db: ``(T,)`` each frame's level in the features' terms (:meth:`NoteSpectrogram.loudness_db`).
        frame_rate: frames a second (62.5 for the note models' features).
    """

    bend_cents: torch.Tensor
    loudness_db: torch.Tensor
    frame_rate: float
    holds_tuning: ClassVar[bool] = True  # the vocoder plays this pitch, not its own guess of a detune

    def cents(self, seconds: torch.Tensor) -> torch.Tensor:
        """Times ``(T,)`` in seconds -> the recording's pitch offset ``(T,)`` in cents there (linear between frames,
        held past the ends), so the vocoder plays it as it plays a :class:`~hummingface.vibrato.Vibrato`."""
        frames = np.arange(len(self.bend_cents)) / self.frame_rate
        return torch.from_numpy(np.interp(seconds.cpu().numpy(), frames, self.bend_cents.cpu().numpy())).float()


def measure_performance(note: np.ndarray, spectrogram: NoteSpectrogram, pitch: float) -> Performance:
    """A 16-kHz note ``(64000,)`` of MIDI ``pitch`` -> its :class:`Performance` at ``spectrogram``'s frames.

    The pitch curve is :func:`~hummingface.vibrato.pitch_track`'s YIN track (44.1 kHz, within two semitones of
    ``pitch``, 100 frames a second; its tuning included) read at the frames' times and held flat before the first and
    after the last sounding frame; flat where the note has no pitch to track (a drum, silence).
    """
    with torch.inference_mode():
        features = spectrogram(torch.from_numpy(np.asarray(note, dtype=np.float32)))
    frame_rate = SAMPLE_RATE / spectrogram.config.hop_length
    seconds, cents = pitch_track(note, SAMPLE_RATE, pitch, until_s=NOTE_SAMPLES / SAMPLE_RATE)
    times = np.arange(features.shape[-1]) / frame_rate
    bend = np.zeros(len(times))
    if len(seconds) >= MIN_TRACKED_S * TRACK_RATE:
        bend = np.interp(times, seconds, cents)
    return Performance(torch.from_numpy(bend).float(), spectrogram.loudness_db(features), frame_rate)
