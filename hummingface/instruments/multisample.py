"""A design rendered as a multisample: a note every ``step`` semitones, each at its true pitch.

Each note is rendered by the model at its own pitch (never one note resampled over octaves), its leading
silence trimmed, its loudness matched to the rest of the set (RMS of its first 1.5 s: what the ear weighs
most), and -- when the set sustains -- given a sustain loop (:mod:`.loop`). A player re-pitches each sample
by at most ``step / 2`` semitones to the keys between.

NSynth-style notes are held 3 s and released in the 4th second, so a sustaining sound is looped inside its
held part and, on note-off, plays on through its own release (SFZ ``loop_sustain``, SF2 sample mode 3).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from hummingface.constants import note_name
from hummingface.errors import UserError
from hummingface.instruments.loop import Loop, crossfade, find_loop
from hummingface.instruments.source import NoteSource

TARGET_RMS_DB = -20.0  # every sample's loudness (dBFS RMS over its first 1.5 s)
PEAK_CEILING = 0.89  # -1 dBFS: the whole set is turned down together if any sample would pass it
MAX_GAIN = 100.0  # +40 dB at most: a near-silent note stays quiet rather than turning the set down
TRIM_DB = -40.0  # leading audio quieter than this (re the note's peak) is cut
LAYER_VELOCITIES = (50, 75, 100, 127)  # velocity layers of the models that play velocity themselves
HOLD_SECONDS = 3.0  # how long the model's notes are held before their release
RELEASE_SECONDS = 0.3  # the players' release after note-off (the sample's own release plays under it)


def parse_pitches(text: str) -> tuple[int, int]:
    """``"24-96"`` -> ``(24, 96)``; :class:`UserError` unless two MIDI pitches, low first."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(text))
    if not match:
        raise UserError(f"--pitches {text!r} must be a range of MIDI pitches like 24-96.")
    low, high = int(match.group(1)), int(match.group(2))
    if not 0 <= low <= high <= 127:
        raise UserError(f"--pitches {text!r} must run from low to high within 0-127.")
    return low, high


def safe_name(name: str) -> str:
    """An instrument name usable in file names: letters, digits, ``-`` and ``_`` (others become ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")
    if not cleaned:
        raise UserError(f"--name {name!r} has no letters or digits to name files with.")
    return cleaned[:40]


@dataclasses.dataclass(frozen=True)
class MultisampleConfig:
    """What to sample.

    Attributes:
        pitches: lowest and highest MIDI pitch sampled (inclusive; the highest is sampled even off the step).
        step: semitones between sampled pitches.
        velocities: one velocity per layer, for models that play velocity (default :data:`LAYER_VELOCITIES`);
            other models render one layer at the last (default 100) and velocity is gain only.
        name: the instrument's name (file names, preset names).
    """

    pitches: tuple[int, int] = (24, 96)
    step: int = 3
    velocities: tuple[int, ...] | None = None
    name: str = "HummingFace"

    def __post_init__(self) -> None:
        if not 1 <= self.step <= 24:
            raise UserError(f"--step {self.step} must be 1-24 semitones.")
        for velocity in self.velocities or ():
            if not 1 <= velocity <= 127:
                raise UserError(f"Velocity {velocity} is not a MIDI velocity (1-127).")

    @property
    def roots(self) -> list[int]:
        low, high = self.pitches
        roots = list(range(low, high + 1, self.step))
        return roots if roots[-1] == high else [*roots, high]


@dataclasses.dataclass
class Sample:
    """One zone: a note and where it plays.

    Attributes:
        audio: float32 ``(samples,)`` at the multisample's rate, peak below :data:`PEAK_CEILING`.
        root: MIDI pitch the note was rendered at.
        keys: lowest and highest MIDI key it plays (inclusive).
        velocity: the velocity it was rendered at; ``velocities``: the range of played velocities it covers.
        loop: sustain loop, or ``None`` (a one-shot).
    """

    audio: np.ndarray
    root: int
    keys: tuple[int, int]
    velocity: int
    velocities: tuple[int, int]
    loop: Loop | None

    def file_name(self, instrument: str) -> str:
        """``Name_C3_v100.wav``: the root note and velocity in the name, as samplers and DAWs expect."""
        # "#" starts a preprocessor directive in SFZ, so C#3 is written Cs3 (as many sample libraries do).
        return f"{instrument}_{note_name(self.root).replace('#', 's')}_v{self.velocity}.wav"


@dataclasses.dataclass
class Multisample:
    """A sampled instrument: its samples (ordered by velocity layer, then pitch) at ``sample_rate`` Hz."""

    name: str
    sample_rate: int
    samples: list[Sample]
    sustaining: bool
    release_s: float = RELEASE_SECONDS

    def nearest(self, key: int, velocity: int = 100) -> Sample:
        """The sample a player uses for ``key`` at ``velocity``."""
        layer = [s for s in self.samples if s.velocities[0] <= velocity <= s.velocities[1]] or self.samples
        return min(layer, key=lambda s: (not s.keys[0] <= key <= s.keys[1], abs(s.root - key)))


def key_ranges(roots: list[int], reach: int = 12) -> list[tuple[int, int]]:
    """Each root plays the keys nearer to it than to its neighbours; the outer ones reach ``reach`` beyond."""
    ranges = []
    for i, root in enumerate(roots):
        low = max(0, root - reach) if i == 0 else (roots[i - 1] + root) // 2 + 1
        high = min(127, root + reach) if i == len(roots) - 1 else (root + roots[i + 1]) // 2
        ranges.append((low, high))
    return ranges


def velocity_ranges(velocities: tuple[int, ...]) -> list[tuple[int, int]]:
    """Each layer covers the velocities above the previous layer's, the first from 1 and the last to 127."""
    ordered = sorted(velocities)
    return [(1 if i == 0 else ordered[i - 1] + 1, 127 if i == len(ordered) - 1 else v) for i, v in enumerate(ordered)]


def trim_start(audio: np.ndarray, sample_rate: int, pre_roll_s: float = 0.002, fade_in_s: float = 0.001
               ) -> np.ndarray:
    """Cut the leading silence (below :data:`TRIM_DB` re the peak), keeping a 2-ms pre-roll, and fade in.

    The fade covers the pre-roll, and at least ``fade_in_s``: a decoded note can start at a tenth of its peak
    on its very first sample, and a player starting it there clicks.
    """
    peak = float(np.abs(audio).max())
    if peak == 0:
        return audio
    first = int(np.argmax(np.abs(audio) >= peak * 10 ** (TRIM_DB / 20)))
    pre = int(pre_roll_s * sample_rate)
    start = max(0, first - pre)
    out = np.array(audio[start:], dtype=np.float32)
    ramp = min(max(first - start, int(fade_in_s * sample_rate)), len(out))
    out[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
    return out


def rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-20))


def envelope_db(audio: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS level per 20-ms frame in dB: ``(frames,)``."""
    frame = max(1, int(frame_s * sample_rate))
    frames = len(audio) // frame
    power = np.square(audio[: frames * frame].reshape(frames, frame), dtype=np.float64).mean(axis=1)
    return 10 * np.log10(power + 1e-20)


def sustains(audio: np.ndarray, sample_rate: int) -> bool:
    """Whether a note holds its level until note-off: late in the hold it is within 20 dB of its peak and has
    lost under 6 dB since the first second (an organ does; a piano or a pluck does not)."""
    level = envelope_db(audio, sample_rate)
    per_s = sample_rate / max(1, int(0.02 * sample_rate))

    def at(t0: float, t1: float) -> float:
        part = level[int(t0 * per_s) : int(t1 * per_s)]
        return float(part.mean()) if part.size else -200.0

    late, early = at(HOLD_SECONDS - 0.8, HOLD_SECONDS - 0.2), at(0.8, 1.4)
    return bool(late >= level.max() - 20 and late >= early - 6)


def build_multisample(source: NoteSource, config: MultisampleConfig) -> Multisample:
    """Render, trim, loudness-match and loop every sample of ``config`` (see the module docstring)."""
    sr = source.sample_rate
    roots = config.roots
    velocities = config.velocities or (LAYER_VELOCITIES if source.velocity_layers else (100,))
    velocities = velocities if source.velocity_layers else velocities[-1:]
    layers = velocity_ranges(velocities) if source.velocity_layers else [(1, 127)]
    notes = {velocity: source.render(roots, velocity) for velocity in sorted(velocities)}
    raw = [note for velocity in sorted(velocities) for note in notes[velocity]]
    sustaining = bool(sum(sustains(note, sr) for note in raw) * 2 >= len(raw))
    cycle_s = source.vibrato.period_s if source.vibrato.depth_cents > 0 else None
    samples = []
    for velocity, played in zip(sorted(velocities), layers, strict=True):
        for note, root, keys in zip(notes[velocity], roots, key_ranges(roots), strict=True):
            trimmed = trim_start(note, sr)
            shift = (len(note) - len(trimmed)) / sr  # seconds cut from the front
            loop = None
            if sustaining:
                region = (max(0.3, 0.4 - shift), HOLD_SECONDS - 0.15 - shift)
                loop = find_loop(trimmed, sr, 440.0 * 2 ** ((root - 69) / 12), region, cycle_s=cycle_s)
            if loop is not None:
                trimmed = crossfade(trimmed, loop, fade=min(int(0.03 * sr), loop.length // 2))
            gain = min(10 ** ((TARGET_RMS_DB - rms_db(trimmed[: int(1.5 * sr)])) / 20), MAX_GAIN)
            samples.append(Sample((trimmed * gain).astype(np.float32), root, keys, velocity, played, loop))
    peak = max(float(np.abs(s.audio).max()) for s in samples)
    if peak > PEAK_CEILING:
        for sample in samples:
            sample.audio *= PEAK_CEILING / peak
    return Multisample(safe_name(config.name), sr, samples, sustaining)
