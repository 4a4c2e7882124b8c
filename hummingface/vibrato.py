"""Vibrato: a periodic swing of a note's pitch, set by the musician or measured from a recording.

No note model keeps vibrato. Their one global timbre latent averages the wobble away: on 35 held-out notes with
vibrato, the cvae's reconstructions keep 0.03 x the real pitch movement, and a network cannot even guess a
note's vibrato from its timbre (``python -m benchmarks.vibrato_probe``). So vibrato is not part of the timbre
but a control of its own, the way a synthesiser's LFO or a player's left hand is: a depth in cents and a rate
in Hz, played by the vocoder as a pitch bend on top of the note's pitch
(:meth:`hummingface.models.vocoder.Vocoder.decode`). The vocoder reads each partial's level from the note's
features at the partial's moving frequency, so the spectral envelope (the formants) stays put while the
partials swing through it, as on a real instrument.

A musician turns it up in the Designer or Generator; a reconstruction measures it from the recording
(:func:`measure_vibrato`): the note's pitch track (:func:`pitch_track`), its straight trend removed, fitted by a
sine of the best rate. The FluidR3 strings' vibrato is a triangle at 3.55 Hz that a sine fits to within 0.6-1.8
cents of 8 cents; a sung note's irregular wobble is not a sine and is measured as none when the sine explains
less than :data:`MIN_EXPLAINED` of it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Protocol

import numpy as np
import torch

from hummingface.audio import resample
from hummingface.cli_args import number
from hummingface.constants import VIBRATO_MAX_CENTS, VIBRATO_RATES_HZ

FADE_IN_S = 0.3  # the swing grows in over the attack, as a player's does, so the note starts on its pitch
FIT_SECONDS = (0.3, 3.5)  # after the attack (and the fade-in), before the end of a 4-s note
MIN_DEPTH_CENTS = 2.0  # less is tracker jitter, not vibrato
MIN_EXPLAINED = 0.3  # share of the detrended pitch movement a measured sine must explain
MEASURED_RATES_HZ = (2.0, 9.0)  # the span of real vibratos searched, in 0.02-Hz steps
RATE = 44100  # Hz the pitch is tracked at: YIN's period resolution is one sample
TRACK_RATE = 100  # pitch frames a second
# The most YIN's normalised difference at the chosen period may be for a frame to count as pitched. Notes read
# 0.0-0.2, breathy voices up to ~0.4; white noise ~0.9, and without this limit it read as a +-100-cent warble.
MAX_APERIODICITY = 0.5


class PitchBend(Protocol):
    """What moves a played note's pitch over time: a :class:`Vibrato`, or a recording's own pitch curve
    (:class:`hummingface.performance.Performance`).

    ``holds_tuning``: whether the offset is the note's whole pitch, its tuning included (a recording's measured
    pitch), which the vocoder then plays *instead of* its own guess of a detune; else it is added to that guess.
    """

    holds_tuning: bool

    def cents(self, seconds: torch.Tensor) -> torch.Tensor:
        """Times ``(T,)`` in seconds -> the pitch offset ``(T,)`` in cents."""
        ...


@dataclasses.dataclass(frozen=True)
class Vibrato:
    """A sine pitch swing.

    Attributes:
        depth_cents: the largest deviation either side of the pitch (cents; 0 = none). Its standard deviation
            is ``depth_cents / sqrt(2)``.
        rate_hz: swings per second.
        phase: radians of the sine at 0 s (a measured note keeps its own, so a reconstruction swings with it).
    """

    depth_cents: float = 0.0
    rate_hz: float = 5.5
    phase: float = 0.0
    holds_tuning: ClassVar[bool] = False  # a swing around whatever tuning the vocoder hears in the features

    def __post_init__(self) -> None:
        # Checked and made floats here, so an app's or a CLI's value fails with one sentence, not in the vocoder.
        object.__setattr__(self, "depth_cents", number(self.depth_cents, "The vibrato depth (cents)", 0.0,
                                                       VIBRATO_MAX_CENTS))
        object.__setattr__(self, "rate_hz", number(self.rate_hz, "The vibrato rate (Hz)", *VIBRATO_RATES_HZ))
        object.__setattr__(self, "phase", number(self.phase, "The vibrato phase"))

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz

    def cents(self, seconds: torch.Tensor) -> torch.Tensor:
        """Times ``(..., T)`` in seconds -> the pitch offset ``(..., T)`` in cents, faded in over :data:`FADE_IN_S`
        (a raised cosine)."""
        fade = 0.5 - 0.5 * torch.cos(math.pi * (seconds / FADE_IN_S).clamp(0, 1))
        return self.depth_cents * fade * torch.sin(2 * math.pi * self.rate_hz * seconds + self.phase)


def measure_vibrato(audio: np.ndarray, sample_rate: int, pitch: float) -> Vibrato:
    """The vibrato of a recorded note ``(samples,)`` of MIDI ``pitch``; ``Vibrato()`` (none) where the note is too
    short, too quiet or too irregular for a sine to describe (see the module docstring)."""
    seconds, cents = pitch_track(audio, sample_rate, pitch)
    keep = (seconds >= FIT_SECONDS[0]) & (seconds <= FIT_SECONDS[1])
    t, cents = seconds[keep], cents[keep]
    if len(t) < TRACK_RATE:  # under a second of sustain
        return Vibrato()
    cents = cents - np.polyval(np.polyfit(t, cents, 1), t)
    # Least squares a * sin + b * cos at every candidate rate at once: (R, N) bases, 2x2 normal equations.
    rates = np.arange(*MEASURED_RATES_HZ, 0.02)
    angle = 2 * np.pi * rates[:, None] * t
    sin, cos = np.sin(angle), np.cos(angle)
    ss, cc, sc = (sin * sin).sum(1), (cos * cos).sum(1), (sin * cos).sum(1)
    sy, cy = sin @ cents, cos @ cents
    det = ss * cc - sc**2
    a, b = (cc * sy - sc * cy) / det, (ss * cy - sc * sy) / det
    explained = a * sy + b * cy  # the fitted sine's share of sum(cents ** 2)
    best = int(np.argmax(explained))
    depth = float(np.hypot(a[best], b[best]))
    if depth < MIN_DEPTH_CENTS or explained[best] < MIN_EXPLAINED * float(np.sum(cents**2)):
        return Vibrato()
    return Vibrato(min(depth, VIBRATO_MAX_CENTS), float(rates[best]), float(np.arctan2(b[best], a[best])))


def pitch_track(audio: np.ndarray, sample_rate: int, pitch: float, until_s: float = FIT_SECONDS[1]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where a note ``(samples,)`` of MIDI ``pitch`` sounds: times ``(N,)`` (s) and its pitch there ``(N,)`` in cents
    from ``pitch``, :data:`TRACK_RATE` frames a second over its first ``until_s`` seconds.

    YIN (de Cheveigné & Kawahara 2002) at 44.1 kHz, searched within 2 semitones of ``pitch`` (so no octave errors),
    over a window of one longest period: a longer one averages the swing away (2048 samples at 16 kHz kept 14-74 %
    of a 5-Hz vibrato), and the vocoder's own f0 tracker, whose harmonic sum snaps to FFT bins, read 5-harmonic
    tones' vibrato 0-40 % off. (librosa's YIN measures the same but compiles for 8 s on first use.) Frames 40 dB
    below the loudest, or whose best period lies on the search's edge (none found), are left out.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        return np.zeros(0), np.zeros(0)
    audio = resample(audio[: int((until_s + 0.1) * sample_rate)], int(sample_rate), RATE).astype(np.float64)
    shortest = int(RATE / (440.0 * 2 ** ((pitch + 2 - 69) / 12)))  # lags (samples) of the search
    longest = int(np.ceil(RATE / (440.0 * 2 ** ((pitch - 2 - 69) / 12)))) + 1
    window, span = longest, 2 * longest + 1
    if len(audio) < span:
        return np.zeros(0), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(audio, span)[:: RATE // TRACK_RATE]  # (N, span)
    # d(lag) = sum_j (x_j - x_{j+lag})^2 over the window = energy(0) + energy(lag) - 2 * correlation(lag)
    n = 2 * span
    correlation = np.fft.irfft(np.fft.rfft(frames, n) * np.conj(np.fft.rfft(frames[:, :window], n)), n)
    squares = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(longest + 1)
    energy = squares[:, lags + window] - squares[:, lags]  # (N, lags)
    difference = np.maximum(energy[:, :1] + energy - 2 * correlation[:, : longest + 1], 0.0)
    # The cumulative-mean normalisation: no dip at lag 0, and a fair comparison across lags.
    normalised = difference[:, 1:] * lags[1:] / np.maximum(np.cumsum(difference[:, 1:], axis=1), 1e-12)
    best = shortest + np.argmin(normalised[:, shortest - 1 :], axis=1)  # lag, in samples
    inside = (best > shortest) & (best < longest)
    left, centre, right = (normalised[np.arange(len(best)), np.clip(best + d - 1, 0, longest - 1)] for d in (-1, 0, 1))
    curvature = left - 2 * centre + right
    offset = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1.0), 0.0)
    f0 = RATE / (best + np.clip(offset, -1, 1))
    level = energy[:, 0]
    sounding = inside & (level > level.max() * 1e-4) & (centre < MAX_APERIODICITY)  # 40 dB, and a clear period
    seconds = (np.arange(len(frames)) * (RATE // TRACK_RATE) + span / 2) / RATE
    return seconds[sounding], 1200 * np.log2(f0[sounding] / (440.0 * 2 ** ((pitch - 69) / 12)))
