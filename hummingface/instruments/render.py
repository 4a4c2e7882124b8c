"""Notes played with a multisample: 44.1 kHz stereo, as a sampler would play them.

Each MIDI note takes the nearest sample of its velocity layer and re-pitches it to its key: the sample is
read at ``sample_rate * 2**((key - root) / 12)`` Hz and converted to the output rate by soxr in one step, so
re-pitching and the model-rate -> 44.1 kHz conversion cost one high-quality resampling (the model is never
called per note: the multisample is rendered once). A held note loops its sample's sustain loop as long as
needed and, at note-off, finishes the loop pass and plays on through the sample's own release, under a
``release_s`` fade; a one-shot rings to its end. Velocity is gain ``(v / 127)**2`` (SFZ's ``amp_veltrack``
100); keys are panned gently across the stereo field. A repeated key releases the old voice (as FluidSynth
does: a held one starts its release, a released one rings on through it) rather than cutting it: the notes'
attacks rise over tens of ms, and an old voice faded out under one made the mix dip where the new note
starts. Beyond ``polyphony`` voices the oldest is stolen (faded) -- then a look-ahead peak limiter on the
mix, never any per-note normalisation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hummingface.audio import resample
from hummingface.instruments.midi import Note
from hummingface.instruments.multisample import Multisample, Sample


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """How notes are played.

    Attributes:
        sample_rate: output rate (Hz).
        polyphony: most voices at once; a new note beyond it steals the oldest.
        fade_s: fade of a stolen voice (s).
        gain: master gain before the limiter (samples are at -20 dBFS RMS, so a few voices fit).
        ceiling: the limiter's peak ceiling (linear; 0.89 = -1 dBFS).
        lookahead_s: how far ahead the limiter sees a peak coming (s).
        width: how far keys are panned (0 = mono, 1 = the lowest and highest keys fully apart).
    """

    sample_rate: int = 44100
    polyphony: int = 32
    fade_s: float = 0.01
    gain: float = 0.7
    ceiling: float = 0.89
    lookahead_s: float = 0.005
    width: float = 0.4


@dataclasses.dataclass
class Voice:
    """A scheduled note: the sample, the note, and when it stops sounding (s; ``cut`` when it is stolen).

    ``release`` is when its ``release_s`` fade starts (s): note-off for a looped sample, ``None`` for a
    one-shot that rings to its end, or earlier when the key is struck again.
    """

    note: Note
    sample: Sample
    end: float
    release: float | None = None
    cut: float | None = None


def schedule(notes: list[Note], instrument: Multisample, config: RenderConfig) -> list[Voice]:
    """One voice per note, the re-struck ones released and the stolen ones marked ``cut`` (notes sorted by
    start)."""
    voices: list[Voice] = []
    active: list[Voice] = []
    for note in notes:
        sample = instrument.nearest(note.pitch, note.velocity)
        if sample.loop is not None:
            release = note.end
            end = note.end + instrument.release_s
        else:
            release = None
            end = note.start + len(sample.audio) / (instrument.sample_rate * _ratio(note.pitch, sample))
        active = [v for v in active if (v.cut if v.cut is not None else v.end) > note.start]
        for voice in active:
            if voice.note.pitch == note.pitch and (voice.release is None or voice.release > note.start):
                voice.release = note.start
                voice.end = min(voice.end, note.start + instrument.release_s)
        playing = [v for v in active if v.cut is None]
        if len(playing) >= config.polyphony:
            min(playing, key=lambda v: v.note.start).cut = note.start
        voice = Voice(note, sample, end, release)
        voices.append(voice)
        active.append(voice)
    return voices


def _ratio(key: int, sample: Sample) -> float:
    return 2.0 ** ((key - sample.root) / 12)


def voice_audio(voice: Voice, instrument: Multisample, config: RenderConfig) -> np.ndarray:
    """One voice at the output rate, mono float32, from its start to its (possibly cut) end."""
    sample, note = voice.sample, voice.note
    rate = instrument.sample_rate * _ratio(note.pitch, sample)  # the sample read this fast plays the key
    stop = voice.end if voice.cut is None else min(voice.end, voice.cut + config.fade_s)
    needed = int(np.ceil((stop - note.start) * rate)) + 64
    x = sample.audio
    if sample.loop is not None:
        loop = sample.loop
        held = int((voice.release - note.start) * rate)
        passes = max(0, int(np.ceil((held - loop.end - 1) / loop.length)))
        body = x[loop.start : loop.end + 1]
        x = np.concatenate([x[: loop.end + 1], np.tile(body, passes), x[loop.end + 1 :]])
    stream = np.zeros(needed, dtype=np.float32)
    stream[: min(needed, len(x))] = x[:needed]
    out = resample(stream, rate, config.sample_rate)
    out = out[: round((stop - note.start) * config.sample_rate)]
    envelope = np.ones(len(out), dtype=np.float32)
    if voice.release is not None:
        _fade_from(envelope, (voice.release - note.start) * config.sample_rate,
                   instrument.release_s * config.sample_rate)
    if voice.cut is not None:
        _fade_from(envelope, (voice.cut - note.start) * config.sample_rate, config.fade_s * config.sample_rate)
    return out * envelope * (note.velocity / 127) ** 2


def _fade_from(envelope: np.ndarray, at: float, length: float) -> None:
    """Multiply ``envelope`` in place by a linear fade to 0 starting at sample ``at`` over ``length`` samples."""
    start = int(at)
    if start >= len(envelope):
        return
    ramp = 1.0 - np.arange(len(envelope) - start, dtype=np.float32) / max(length, 1.0)
    envelope[start:] *= np.clip(ramp, 0.0, 1.0)


def limit(mix: np.ndarray, ceiling: float, lookahead: int) -> np.ndarray:
    """A look-ahead peak limiter: ``(2, samples)`` -> the same, with no sample above ``ceiling``.

    The gain each sample needs is spread by a running minimum over ``2 * lookahead`` samples and then smoothed
    by a ``lookahead``-sample moving average; each averaged value is a mean of minima whose windows all contain
    the sample, so it never exceeds the gain that sample needs, and the gain dips smoothly before a peak.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peak = np.abs(mix).max(axis=0)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-9))
    if need.min() >= 1.0:
        return mix
    gain = uniform_filter1d(minimum_filter1d(need, 2 * lookahead + 1), lookahead | 1)
    return (mix * np.minimum(gain, need)).astype(np.float32)


def render_notes(notes: list[Note], instrument: Multisample, config: RenderConfig | None = None) -> np.ndarray:
    """Notes -> float32 stereo ``(2, samples)`` at ``config.sample_rate``, ending when the last voice does."""
    config = config or RenderConfig()
    voices = schedule(sorted(notes, key=lambda n: n.start), instrument, config)
    length = int(np.ceil(max(v.end if v.cut is None else v.cut + config.fade_s for v in voices)
                         * config.sample_rate)) + 1
    mix = np.zeros((2, length), dtype=np.float32)
    keys = [v.note.pitch for v in voices]
    middle = (min(keys) + max(keys)) / 2
    spread = max(max(keys) - min(keys), 12) / 2
    for voice in voices:
        audio = voice_audio(voice, instrument, config)
        pan = config.width * (voice.note.pitch - middle) / spread  # -width .. width
        angle = (pan + 1) * np.pi / 4  # equal-power
        start = round(voice.note.start * config.sample_rate)
        part = audio[: length - start]
        mix[0, start : start + len(part)] += np.cos(angle) * part
        mix[1, start : start + len(part)] += np.sin(angle) * part
    return limit(mix * config.gain, config.ceiling, max(1, int(config.lookahead_s * config.sample_rate)))
