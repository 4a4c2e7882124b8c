"""MIDI file -> notes in seconds, with the sustain pedal applied. Parsed with mido (tempo changes included).

Pedal rule (as magenta's ``sequences_lib.apply_sustain_control_changes``): a note released while its channel's
CC64 is down lasts until the pedal comes up or the same pitch is struck again, whichever is first. A note-on
of a pitch that is already sounding ends the sounding one there (a repeated note).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from hummingface.errors import UserError

MAX_SECONDS = 30 * 60  # longer files are refused
MIN_NOTE_SECONDS = 0.01  # a note-on and note-off at one instant still sound this long
PEDAL = 64


@dataclasses.dataclass(frozen=True)
class Note:
    """A played note: ``start``/``end`` in seconds, MIDI ``pitch`` and ``velocity`` (1-127)."""

    start: float
    end: float
    pitch: int
    velocity: int


def read_midi(path: str | os.PathLike) -> list[Note]:
    """The notes of a standard MIDI file, sorted by start.

    Raises:
        UserError: the file is missing, empty, not MIDI, has no notes or lasts more than 30 minutes.
    """
    import mido

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes), not a MIDI file.")
    try:
        midi = mido.MidiFile(str(path), clip=True)
        if midi.type == 2:
            raise UserError(f"{path} is a type-2 MIDI file (independent patterns), which cannot be played as one song.")
        length = midi.length
        messages = list(midi)
    except UserError:
        raise
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"{path} is not a standard MIDI file that can be read.") from None
    if length > MAX_SECONDS:
        raise UserError(f"{path} lasts {length / 60:.1f} minutes; songs of up to 30 minutes can be rendered.")
    notes = _notes(messages)
    if not notes:
        raise UserError(f"{path} has no notes to play.")
    return notes


def _notes(messages) -> list[Note]:
    """mido messages (``time`` = seconds since the previous one) -> notes, pedal applied."""
    now = 0.0
    sounding: dict[tuple[int, int], tuple[float, int]] = {}  # (channel, pitch) -> (start, velocity)
    held: dict[tuple[int, int], tuple[float, int]] = {}  # released under the pedal, still sounding
    pedal = [False] * 16
    notes = []

    def close(store: dict, key: tuple[int, int]) -> None:
        start, velocity = store.pop(key)
        notes.append(Note(start, max(now, start + MIN_NOTE_SECONDS), key[1], velocity))

    for message in messages:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            key = (message.channel, message.note)
            for store in (sounding, held):
                if key in store:
                    close(store, key)
            sounding[key] = (now, message.velocity)
        elif message.type in ("note_on", "note_off"):
            key = (message.channel, message.note)
            if key in sounding:
                if pedal[message.channel]:
                    held[key] = sounding.pop(key)
                else:
                    close(sounding, key)
        elif message.type == "control_change" and message.control == PEDAL:
            pedal[message.channel] = message.value >= 64
            if not pedal[message.channel]:
                for key in [k for k in held if k[0] == message.channel]:
                    close(held, key)
    for store in (sounding, held):
        for key in list(store):
            close(store, key)
    return sorted(notes, key=lambda n: (n.start, n.pitch))
