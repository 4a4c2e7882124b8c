"""NSynth's note qualities, set only where they can be derived honestly.

NSynth's qualities were tagged by people listening. Ours come from what we did to the note or from what we
measure on the rendered 4-s note (held 3 s, then released). The rule, quality by quality:

- ``reverb``: the variant added reverb.  ``distortion``: the variant added drive, or the program is distorted by
  definition (Overdriven and Distortion Guitar).  ``multiphonic``: the program sounds two fundamentals
  (Lead 7 "fifths").
- ``fast_decay``: the level over 2.5-3.0 s, before the note-off, is at least 25 dB below the peak.
- ``long_release``: the level over the last 0.25 s (3.75-4.0 s) is within 45 dB of the peak.
- ``percussive``: a sharp transient: the peak comes within 40 ms of the onset (the first frame within 40 dB of
  the peak) and the level 200 ms after the peak is at least 10 dB down.
- ``bright``: the spectral centroid of the first second is at least ``max(6 f0, 1.5 kHz)``;
  ``dark``: it is at most ``min(2 f0, 1 kHz)``, where ``f0`` is the fundamental of the requested pitch.
- ``nonlinear_env`` and ``tempo-synced`` are never set: nothing is rendered to have them and there is no honest
  measurement.

Levels are RMS over 10 ms frames in dB relative to the loudest frame. On FluidR3_GM's dry notes (3 pitches per
program, velocities 25 and 127) these thresholds mark about 13 % bright, 5 % dark, 26 % fast_decay,
15 % long_release and 15 % percussive.
"""

from __future__ import annotations

import numpy as np

from hummingface.data.gm import DISTORTED_PROGRAMS, MULTIPHONIC_PROGRAMS, QUALITIES

FRAME_SECONDS = 0.01


def measure_qualities(
    audio: np.ndarray, sample_rate: int, pitch: int, program: int, reverb: bool, drive: bool
) -> list[int]:
    """NSynth's 10 quality flags, in :data:`~hummingface.data.gm.QUALITIES` order, for one note.

    Args:
        audio: mono float ``(samples,)``, the note held for 3 s and released, 4 s in all.
        sample_rate: Hz.
        pitch: the MIDI pitch that was played.
        program: its General MIDI program.
        reverb, drive: whether the variant added reverb / drive.
    """
    frame = int(FRAME_SECONDS * sample_rate)
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    level -= level.max()

    def seconds(t: float) -> int:
        return min(int(t / FRAME_SECONDS), level.size - 1)

    peak = int(level.argmax())
    onset = int(np.argmax(level > -40.0))
    centroid = _centroid(audio[: sample_rate], sample_rate)
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
    flags = {
        "bright": centroid >= max(6 * f0, 1500.0),
        "dark": centroid <= min(2 * f0, 1000.0),
        "distortion": drive or program in DISTORTED_PROGRAMS,
        "fast_decay": level[seconds(2.5) : seconds(3.0)].mean() <= -25.0,
        "long_release": level[seconds(3.75) :].mean() >= -45.0,
        "multiphonic": program in MULTIPHONIC_PROGRAMS,
        "percussive": peak - onset <= seconds(0.04) and level[min(peak + seconds(0.2), level.size - 1)] <= -10.0,
        "reverb": reverb,
    }
    return [int(bool(flags.get(name, False))) for name in QUALITIES]


def _centroid(audio: np.ndarray, sample_rate: int) -> float:
    """Magnitude-weighted mean frequency (Hz) of a Hann-windowed spectrum."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1.0 / sample_rate)
    return float((spectrum * freqs).sum() / max(spectrum.sum(), 1e-12))
