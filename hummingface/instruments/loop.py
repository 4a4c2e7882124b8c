"""Sustain loops for single notes: whole pitch periods, best correlation, seams at zero crossings, crossfaded.

A sampler plays ``audio[:end + 1]`` and then jumps back from ``end`` to ``start`` for as long as the key is held
(``end`` inclusive, as in SFZ ``loop_end`` and the WAV ``smpl`` chunk). The jump is inaudible when the audio
just after ``end`` would have looked like the audio just after ``start``: the loop is a whole number of pitch
periods long (so the harmonics stay in phase), chosen where the note repeats itself best (normalised
correlation over a window around the seam), starting on an upward zero crossing, and the last ``fade`` samples
before the jump are crossfaded into the samples just before ``start`` -- so the played signal runs on
continuously into ``audio[start]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Loop:
    """A sustain loop: ``start`` and ``end`` (inclusive) sample indices, and how well the seam matched (-1..1)."""

    start: int
    end: int
    correlation: float

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def find_loop(
    audio: np.ndarray, sample_rate: int, f0_hz: float, region: tuple[float, float],
    lengths_s: tuple[float, float] = (0.25, 1.0), window_s: float = 0.02, max_lengths: int = 32,
    cycle_s: float | None = None,
) -> Loop | None:
    """The best loop inside ``region`` (seconds) of a mono note ``(samples,)``; ``None`` if the region is too short.

    Args:
        f0_hz: the note's fundamental: loop lengths are whole numbers of its periods.
        lengths_s: shortest and longest loop (s); longer loops repeat less audibly, shorter ones fit more places.
        window_s: the stretch around each seam whose shapes are compared.
        max_lengths: loop lengths tried, spread evenly over the allowed ones (each costs one pass over the note).
        cycle_s: a slower cycle the note goes through, a vibrato's period: the loop spans whole cycles (each
            length rounded to whole pitch periods), else every jump back would be a jump in pitch.
    """
    x = np.asarray(audio, dtype=np.float64)
    lo, hi = (round(t * sample_rate) for t in region)
    hi = min(hi, len(x) - 1)
    period = sample_rate / max(f0_hz, 1.0)
    half = max(int(window_s * sample_rate) // 2, int(period))
    if cycle_s:
        cycles = np.arange(max(1, int(np.ceil(lengths_s[0] / cycle_s))), max(1, int(lengths_s[1] / cycle_s)) + 1)
        periods = np.round(cycles * cycle_s * sample_rate / period)
    else:
        periods = np.arange(max(1, int(np.ceil(lengths_s[0] * sample_rate / period))),
                            int(lengths_s[1] * sample_rate / period) + 1)
    lengths = np.unique(np.round(periods * period).astype(int))
    lengths = lengths[lengths <= hi - lo - 2 * half]
    if lengths.size == 0:
        return None
    lengths = lengths[np.linspace(0, lengths.size - 1, min(max_lengths, lengths.size)).round().astype(int)]
    crossings = np.nonzero((x[lo + half : hi - half - 1] <= 0) & (x[lo + half + 1 : hi - half] > 0))[0] + lo + half + 1
    if crossings.size == 0:
        crossings = np.arange(lo + half, hi - half, max(1, int(period)))
    square = np.concatenate([[0.0], np.cumsum(x * x)])
    calm = local_click_db(x, sample_rate) <= 0.0
    best = None
    for length in lengths:
        starts = crossings[crossings + length + half < hi]
        quiet = starts[calm[starts] & calm[starts + length]]
        starts = quiet if quiet.size else starts
        if starts.size == 0:
            continue
        segment = x[lo : hi + 1]  # only the region: the products outside it are never read
        product = np.concatenate([[0.0], np.cumsum(segment[:-length] * segment[length:])])
        dot = product[starts + half - lo] - product[starts - half - lo]
        energy_a = square[starts + half] - square[starts - half]
        energy_b = square[starts + length + half] - square[starts + length - half]
        score = dot / np.sqrt(energy_a * energy_b + 1e-20)
        i = int(np.argmax(score))
        if best is None or score[i] > best.correlation:
            best = Loop(int(starts[i]), int(starts[i] + length - 1), float(score[i]))
    return best


def local_click_db(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 3000.0) -> np.ndarray:
    """``(samples,)``: high-passed energy in the 5 ms around each sample over that of the 50 ms around it (dB).

    The note's own texture (a bow's grain, a decoder's frame edges) has such bursts too; a seam placed on one
    would read as a click, so loops start and end where the note is locally calm (<= 0 dB).
    """
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, min(cutoff_hz, 0.4 * sample_rate), "highpass", fs=sample_rate, output="sos")
    high = np.concatenate([[0.0], np.cumsum(sosfiltfilt(sos, np.asarray(audio, dtype=np.float64)) ** 2)])
    n = len(audio)

    def mean_around(radius: int) -> np.ndarray:
        index = np.arange(n)
        lo, hi = np.clip(index - radius, 0, n), np.clip(index + radius, 0, n)
        return (high[hi] - high[lo]) / np.maximum(hi - lo, 1)

    inner, outer = mean_around(int(0.0025 * sample_rate)), mean_around(int(0.025 * sample_rate))
    return 10 * np.log10((inner + 1e-20) / (outer + 1e-20))


def crossfade(audio: np.ndarray, loop: Loop, fade: int) -> np.ndarray:
    """Audio with the ``fade`` samples ending at ``loop.end`` blended into those ending just before ``loop.start``.

    Equal-power (sine/cosine) weights: a well-matched seam is nearly correlated, a noisy one is not, and an
    equal-power fade keeps the level of either steady. Returns a new float32 array.
    """
    out = np.array(audio, dtype=np.float32)
    fade = int(min(fade, loop.start, loop.length // 2))
    if fade < 2:
        return out
    angle = np.linspace(0.0, np.pi / 2, fade, dtype=np.float32)
    tail = slice(loop.end + 1 - fade, loop.end + 1)
    out[tail] = out[tail] * np.cos(angle) + out[loop.start - fade : loop.start] * np.sin(angle)
    return out


def played(audio: np.ndarray, loop: Loop, samples: int) -> np.ndarray:
    """What a sampler plays while the key is held: ``samples`` samples of the note, looping (``(samples,)``)."""
    body = audio[loop.start : loop.end + 1]
    repeats = max(0, int(np.ceil((samples - loop.end - 1) / len(body))))
    return np.concatenate([audio[: loop.end + 1], np.tile(body, repeats)])[:samples]


def seam_click_db(audio: np.ndarray, seams: np.ndarray, sample_rate: int, cutoff_hz: float = 3000.0,
                  floor_db: float = -60.0) -> np.ndarray:
    """How much a seam stands out: high-passed energy in the 5 ms around each seam over that of the surrounding
    50 ms, in dB (``(n_seams,)``; a click shows as several dB, a clean seam as about 0).

    The surrounding high-passed energy is floored at ``floor_db`` below the surrounding full-band energy: a pure
    tone has almost nothing above the cutoff, and a seam 60 dB under the note is inaudible, not a click.
    """
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(audio, dtype=np.float64)
    sos = butter(4, min(cutoff_hz, 0.4 * sample_rate), "highpass", fs=sample_rate, output="sos")
    high = sosfiltfilt(sos, x) ** 2
    near, around = int(0.0025 * sample_rate), int(0.025 * sample_rate)
    out = []
    for seam in np.asarray(seams, dtype=int):
        if seam - around < 0 or seam + around > len(high):
            continue
        inner = high[seam - near : seam + near].mean()
        outside = np.r_[seam - around : seam - near, seam + near : seam + around]
        floor = (x[outside] ** 2).mean() * 10 ** (floor_db / 10)
        out.append(10 * np.log10((inner + floor + 1e-20) / (high[outside].mean() + floor + 1e-20)))
    return np.asarray(out)
