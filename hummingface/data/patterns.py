"""Seeded procedural dance/pop songs: GM drum kit (kick, snare/clap, hi-hats, cymbals), bass, pad, lead, arpeggio.

The upsampler has to learn what lives above 4 kHz; in dance music that is mostly hi-hats, cymbals, shakers and
bright synths, which classical scores lack. A song is 20 bars in sections (intro, main, break, main), a
four-chord progression in a random key, with instruments drawn from the General MIDI palettes below.
"""

from __future__ import annotations

import numpy as np

from hummingface.data.sequencer import CHORUS_SEND, PAN, REVERB_SEND, NoteEvent, Piece
from hummingface.data.synth import DRUM_CHANNEL

KICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, TAMBOURINE, SPLASH, SHAKER = (
    36, 38, 39, 42, 44, 46, 49, 51, 54, 55, 70,
)
DRUM_KITS = (0, 8, 16, 24, 25)  # Standard, Room, Power, Electronic, TR-808
BASS_PROGRAMS = (33, 34, 35, 38, 39, 87)
PAD_PROGRAMS = (4, 16, 48, 50, 88, 89, 90, 91, 94, 95)
LEAD_PROGRAMS = (11, 26, 30, 56, 62, 65, 73, 80, 81, 84, 85)
ARP_PROGRAMS = (5, 6, 12, 24, 27, 46, 81, 108)
MINOR, MAJOR = (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 5, 7, 9, 11)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 3), (5, 3, 0, 4), (0, 4, 5, 3), (0, 6, 5, 4), (0, 3, 5, 4))
BARS = 20
SECTIONS = ("intro",) * 4 + ("main",) * 8 + ("break",) * 4 + ("main",) * 4


def dance_song(rng: np.random.Generator, name: str) -> Piece:
    """One song; everything about it (tempo, key, instruments, patterns) is drawn from ``rng``."""
    step = 60.0 / rng.uniform(96.0, 132.0) / 4  # a sixteenth note, in seconds
    scale = MINOR if rng.random() < 0.6 else MAJOR
    root = 36 + int(rng.integers(12))
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    style = {
        "four_on_floor": rng.random() < 0.7,
        "hat_sixteenths": rng.random() < 0.5,
        "open_hat_offbeats": rng.random() < 0.6,
        "clap": rng.random() < 0.5,
        "shaker": rng.random() < 0.4,
        "offbeat_bass": rng.random() < 0.5,
        "arp": rng.random() < 0.6,
    }
    motif = [(s, int(rng.integers(7))) for s in range(32) if rng.random() < rng.uniform(0.3, 0.5)]
    events: list[NoteEvent] = []

    def note(channel: int, at_step: float, steps: float, pitch: int, velocity: float) -> None:
        start = at_step * step
        events.append(NoteEvent(start, start + steps * step, channel, int(pitch), int(np.clip(velocity, 1, 127))))

    def degree(d: int, octave: int) -> int:
        return root + 12 * (octave + d // 7) + scale[d % 7]

    for bar, section in enumerate(SECTIONS):
        at = bar * 16
        chord = progression[bar % 4]
        triad = [degree(chord + k, 2) for k in (0, 2, 4)]
        # Drums: hats and cymbals in every section, kick and snare outside the break.
        if section != "break":
            for beat in range(4):
                if style["four_on_floor"] or beat in (0, 2):
                    note(DRUM_CHANNEL, at + 4 * beat, 1, KICK, rng.normal(110, 6))
                if beat in (1, 3):
                    note(DRUM_CHANNEL, at + 4 * beat, 1, CLAP if style["clap"] else SNARE, rng.normal(100, 8))
            if not style["four_on_floor"]:
                note(DRUM_CHANNEL, at + 10, 1, KICK, rng.normal(95, 6))
        hat_step = 1 if style["hat_sixteenths"] else 2
        for s in range(0, 16, hat_step):
            accent = 20 if s % 4 == 0 else 0
            if style["open_hat_offbeats"] and s % 4 == 2 and section != "intro":
                note(DRUM_CHANNEL, at + s, 2, OPEN_HAT, rng.normal(85, 8))
            else:
                hat = CLOSED_HAT if section != "break" else PEDAL_HAT
                note(DRUM_CHANNEL, at + s, 1, hat, rng.normal(70, 8) + accent)
            if style["shaker"] and section == "main":
                note(DRUM_CHANNEL, at + s, 1, SHAKER, rng.normal(55, 8))
        if bar % 8 == 4 or (bar % 4 == 0 and section == "main"):
            note(DRUM_CHANNEL, at, 8, CRASH, rng.normal(105, 8))
        if section == "break" and bar % 2 == 0:
            note(DRUM_CHANNEL, at, 4, SPLASH, rng.normal(80, 8))
            for beat in range(4):
                note(DRUM_CHANNEL, at + 4 * beat, 2, RIDE if bar % 4 == 0 else TAMBOURINE, rng.normal(75, 8))
        # Pad: the chord held for the bar.
        for pitch in triad:
            note(2, at, 16, pitch + 12, rng.normal(70, 5))
        if section == "intro":
            continue
        # Bass: root on the off-beats (house) or on eighths (pop), octave jumps now and then.
        if section == "main":
            for s in range(2 if style["offbeat_bass"] else 0, 16, 4 if style["offbeat_bass"] else 2):
                note(1, at + s, 1.5, triad[0] - 12 + 12 * (rng.random() < 0.15), rng.normal(100, 6))
            if style["arp"]:
                for s in range(16):
                    note(4, at + s, 0.9, triad[s % 3] + 24 + 12 * (s % 8 >= 6), rng.normal(75, 8))
        # Lead: a two-bar motif, transposed with the chord.
        for s, d in motif:
            if s // 16 == bar % 2:
                note(3, at + s % 16, 2, degree(chord + d, 4), rng.normal(90, 8))

    programs = {
        DRUM_CHANNEL: DRUM_KITS[rng.integers(len(DRUM_KITS))],
        1: BASS_PROGRAMS[rng.integers(len(BASS_PROGRAMS))],
        2: PAD_PROGRAMS[rng.integers(len(PAD_PROGRAMS))],
        3: LEAD_PROGRAMS[rng.integers(len(LEAD_PROGRAMS))],
        4: ARP_PROGRAMS[rng.integers(len(ARP_PROGRAMS))],
    }
    controls = {
        channel: {PAN: int(rng.integers(24, 104)), REVERB_SEND: int(rng.integers(10, 90)),
                  CHORUS_SEND: int(rng.integers(0, 60))}
        for channel in programs
    }
    controls[DRUM_CHANNEL][PAN] = 64
    return Piece(name, "procedural", "procedural dance/pop pattern", programs, events, controls)
