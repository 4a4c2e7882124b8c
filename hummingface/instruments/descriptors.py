"""What a note measurably is: six descriptors a musician has words for, from the audio of a 4-s note.

All are measured over the held part of the note (the first 3 s), with numpy only, a few ms per note:

- ``centroid`` (Hz): spectral centroid of the average power spectrum -- brighter / darker;
- ``attack`` (s): from the first frame within 40 dB of the peak to the first within 1 dB of it -- sharper / softer;
- ``decay`` (s): temporal centroid of the power envelope after its peak -- longer / shorter decay;
- ``flatness``: geometric over arithmetic mean of the average power spectrum (0 pure .. 1 white) -- noisier / purer;
- ``inharmonicity``: share of the power away from the harmonics of the note's pitch -- more / less inharmonic;
- ``vibrato`` (cents): standard deviation of the strongest low harmonic's frequency over the sustain,
  a straight trend removed -- more / less vibrato.
"""

from __future__ import annotations

import numpy as np

NAMES = ("centroid", "attack", "decay", "flatness", "inharmonicity", "vibrato")
WORDS = {  # descriptor -> (what it going up sounds like, what it going down sounds like)
    "centroid": ("brighter", "darker"),
    "attack": ("softer attack", "sharper attack"),
    "decay": ("longer decay", "shorter decay"),
    "flatness": ("noisier", "purer"),
    "inharmonicity": ("more inharmonic", "less inharmonic"),
    "vibrato": ("more vibrato", "less vibrato"),
}
HOLD_SECONDS = 3.0
N_FFT, HOP = 2048, 256


def _frames_power(audio: np.ndarray) -> np.ndarray:
    """``(samples,)`` -> power spectrogram ``(frames, N_FFT // 2 + 1)`` with a Hann window."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=-1)) ** 2


def describe(audio: np.ndarray, sample_rate: int, pitch: float) -> dict[str, float]:
    """One note ``(samples,)`` at ``sample_rate`` Hz, of MIDI ``pitch`` -> ``{descriptor: value}``."""
    x = np.asarray(audio, dtype=np.float64)[: int(HOLD_SECONDS * sample_rate)]
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    power = _frames_power(x)
    freqs = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    mean_power = power.mean(axis=0) + 1e-20
    envelope = power.sum(axis=1) + 1e-20
    times = np.arange(len(envelope)) * HOP / sample_rate
    level = 10 * np.log10(envelope)
    peak = int(np.argmax(level))
    onset = int(np.argmax(level >= level[peak] - 40))
    top = int(np.argmax(level >= level[peak] - 1))
    after = envelope[peak:]
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    harmonics = np.arange(1, int(sample_rate / 2 / f0) + 1) * f0
    near = np.zeros_like(freqs, dtype=bool)
    width = max(0.1 * f0, 2 * sample_rate / N_FFT)
    for h in harmonics:
        near |= np.abs(freqs - h) <= width
    return {
        "centroid": float((freqs * mean_power).sum() / mean_power.sum()),
        "attack": float(times[top] - times[onset]),
        "decay": float((after * (times[peak:] - times[peak])).sum() / after.sum()),
        "flatness": float(np.exp(np.log(mean_power).mean()) / mean_power.mean()),
        "inharmonicity": float(1.0 - mean_power[near].sum() / mean_power.sum()),
        "vibrato": _vibrato_cents(power, freqs, f0, sample_rate),
    }


def _vibrato_cents(power: np.ndarray, freqs: np.ndarray, f0: float, sample_rate: int) -> float:
    """Detrended standard deviation (cents) of the strongest of the first four harmonics' frequency, 0.3-2.8 s."""
    first, last = int(0.3 * sample_rate / HOP), int(2.8 * sample_rate / HOP)
    part = power[first:last]
    if len(part) < 4:
        return 0.0
    bins = [round(h * f0 * N_FFT / sample_rate) for h in range(1, 5) if h * f0 < 0.45 * sample_rate]
    if not bins:
        return 0.0
    strongest = max(bins, key=lambda b: part[:, max(b - 1, 1) : b + 2].sum())
    lo, hi = max(1, int(strongest * 0.94)), min(part.shape[1] - 2, int(strongest * 1.06) + 1)
    index = lo + np.argmax(part[:, lo : hi + 1], axis=1)
    a, b, c = (np.log(part[np.arange(len(part)), index + k] + 1e-20) for k in (-1, 0, 1))
    offset = np.clip(0.5 * (a - c) / np.where(a - 2 * b + c == 0, -1e-9, a - 2 * b + c), -0.5, 0.5)
    cents = 1200 * np.log2((index + offset) * sample_rate / N_FFT / f0 + 1e-12)
    t = np.arange(len(cents))
    residual = cents - np.polyval(np.polyfit(t, cents, 1), t)
    return float(residual.std())


def describe_many(notes: np.ndarray, sample_rate: int, pitches) -> dict[str, np.ndarray]:
    """Notes ``(B, samples)`` with pitches ``(B,)`` -> ``{descriptor: (B,)}``."""
    rows = [describe(note, sample_rate, float(p)) for note, p in zip(notes, pitches, strict=True)]
    return {name: np.array([row[name] for row in rows]) for name in NAMES}
