"""A piece of music as timed note events, and its rendering through FluidSynth.

Both music sources (music21 scores and procedural patterns) reduce to a :class:`Piece`; one renderer plays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hummingface.data.synth import DRUM_BANK, DRUM_CHANNEL, FluidRenderer

PAN, REVERB_SEND, CHORUS_SEND = 10, 91, 93  # MIDI controller numbers


@dataclass(frozen=True)
class NoteEvent:
    """One note: start and end in seconds, MIDI channel (9 = drums), pitch and velocity."""

    start: float
    end: float
    channel: int
    pitch: int
    velocity: int


@dataclass
class Piece:
    """A source piece. ``programs`` maps channel -> GM program (on channel 9: a drum kit of bank 128);
    ``controls`` maps channel -> {MIDI controller: value} (pan, reverb and chorus sends)."""

    name: str
    kind: str
    source: str
    programs: dict[int, int]
    events: list[NoteEvent]
    controls: dict[int, dict[int, int]] = field(default_factory=dict)


def render_piece(renderer: FluidRenderer, piece: Piece, seconds: float, tail: float = 2.0) -> np.ndarray:
    """Play the first ``seconds`` of ``piece`` plus a release/reverb tail.

    Returns:
        float32 ``(2, frames)`` at ``renderer.sample_rate``, peak-normalised to -1 dBFS (silence stays silent).
    """
    sr = renderer.sample_rate
    renderer.silence(flush_seconds=3.0)  # the previous piece's reverb must not leak into this one
    renderer.synth.system_reset()
    for channel, program in piece.programs.items():
        if channel == DRUM_CHANNEL:
            if not renderer.select(channel, program, DRUM_BANK):
                renderer.select(channel, 0, DRUM_BANK)
        else:
            renderer.select(channel, program)
    for channel, controls in piece.controls.items():
        for control, value in controls.items():
            renderer.synth.cc(channel, control, value)

    # (frame, 0 = off / 1 = on, channel, pitch, velocity): offs first, so a repeated note re-strikes.
    timeline = []
    for event in piece.events:
        if event.start < seconds:
            timeline.append((int(event.start * sr), 1, event.channel, event.pitch, event.velocity))
            timeline.append((int(min(event.end, seconds) * sr), 0, event.channel, event.pitch, 0))
    timeline.sort()
    chunks, cursor = [], 0
    for frame, on, channel, pitch, velocity in timeline:
        chunks.append(renderer.render(frame - cursor))
        cursor = frame
        if on:
            renderer.synth.noteon(channel, pitch, velocity)
        else:
            renderer.synth.noteoff(channel, pitch)
    chunks.append(renderer.render(int((seconds + tail) * sr) - cursor))
    audio = np.concatenate(chunks, axis=1)
    peak = float(np.abs(audio).max())
    return audio * (10 ** (-1 / 20) / peak) if peak > 0 else audio
