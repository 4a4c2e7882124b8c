"""SoundFont 2 (.sf2): one preset, one instrument, a zone per sample, laid out as the SF2.04 spec's RIFF.

``RIFF sfbk`` = ``LIST INFO`` (version, engine, name) + ``LIST sdta`` (``smpl``: every sample as 16-bit mono,
each followed by 46 zero samples, as the spec requires) + ``LIST pdta`` (the "hydra": ``phdr pbag pmod pgen``
for presets, ``inst ibag imod igen`` for instruments, ``shdr`` for samples, each closed by a terminal record).

Zone generators: key and velocity range, sample mode (3 = loop while the key is held, then play to the end,
like SFZ ``loop_sustain``; 0 = no loop), volume-envelope release (timecents) and the sample. SF2 loop ends are
exclusive (the first sample after the loop), one past our inclusive ``Loop.end``. Velocity follows the
SoundFont default modulators (velocity -> attenuation), on top of any velocity layers.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

from hummingface.instruments.multisample import Multisample
from hummingface.instruments.wavfile import chunk, pcm16

PADDING = 46  # zero samples after each sample (SF2.04, 7.10)
KEY_RANGE, VEL_RANGE, RELEASE_VOL_ENV, INSTRUMENT, SAMPLE_ID, SAMPLE_MODES = 43, 44, 38, 41, 53, 54
LOOP_WHILE_HELD, NO_LOOP = 3, 0
MONO_SAMPLE = 1


def _name(text: str) -> bytes:
    """A 20-byte zero-padded ASCII name (19 characters at most, so it stays terminated)."""
    return text.encode("ascii", "replace")[:19].ljust(20, b"\0")


def _text(text: str) -> bytes:
    """A zero-terminated INFO string padded to an even size (FluidSynth refuses odd sizes)."""
    data = text.encode("ascii", "replace")[:254] + b"\0"
    return data + b"\0" * (len(data) % 2)


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return chunk(b"LIST", kind + b"".join(chunks))


def _timecents(seconds: float) -> int:
    return max(-12000, min(8000, round(1200 * math.log2(max(seconds, 1e-3)))))


def _generator(operator: int, amount: int | tuple[int, int]) -> bytes:
    if isinstance(amount, tuple):  # a range: low byte, high byte
        return struct.pack("<HBB", operator, *amount)
    return struct.pack("<Hh", operator, amount)


def sf2_bytes(instrument: Multisample) -> bytes:
    """The whole .sf2 file for ``instrument``."""
    info = _list(
        b"INFO",
        chunk(b"ifil", struct.pack("<HH", 2, 1)),
        chunk(b"isng", _text("EMU8000")),
        chunk(b"INAM", _text(instrument.name)),
        chunk(b"ISFT", _text("HummingFace")),
    )
    data, headers, generators, bags = bytearray(), bytearray(), bytearray(), bytearray()
    longest = max(len(s.audio) for s in instrument.samples) / instrument.sample_rate
    release = _timecents(instrument.release_s if instrument.sustaining else longest)
    for index, sample in enumerate(instrument.samples):
        start = len(data) // 2
        data += pcm16(sample.audio) + bytes(2 * PADDING)
        end = start + len(sample.audio)
        loop_start, loop_end = (start + sample.loop.start, start + sample.loop.end + 1) if sample.loop else (start, end)
        headers += _name(sample.file_name(instrument.name)[:-4]) + struct.pack(
            "<IIIIIBbHH", start, end, loop_start, loop_end, instrument.sample_rate, sample.root, 0, 0, MONO_SAMPLE
        )
        bags += struct.pack("<HH", len(generators) // 4, 0)
        generators += (
            _generator(KEY_RANGE, sample.keys)
            + _generator(VEL_RANGE, sample.velocities)
            + _generator(SAMPLE_MODES, LOOP_WHILE_HELD if sample.loop is not None else NO_LOOP)
            + _generator(RELEASE_VOL_ENV, release)
            + _generator(SAMPLE_ID, index)
        )
    zones = len(instrument.samples)
    headers += _name("EOS") + bytes(26)
    bags += struct.pack("<HH", len(generators) // 4, 0)
    generators += bytes(4)
    hydra = _list(
        b"pdta",
        chunk(b"phdr", _name(instrument.name) + struct.pack("<HHHIII", 0, 0, 0, 0, 0, 0)
              + _name("EOP") + struct.pack("<HHHIII", 0, 0, 1, 0, 0, 0)),
        chunk(b"pbag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)),
        chunk(b"pmod", bytes(10)),
        chunk(b"pgen", _generator(INSTRUMENT, 0) + bytes(4)),
        chunk(b"inst", _name(instrument.name) + struct.pack("<H", 0) + _name("EOI") + struct.pack("<H", zones)),
        chunk(b"ibag", bytes(bags)),
        chunk(b"imod", bytes(10)),
        chunk(b"igen", bytes(generators)),
        chunk(b"shdr", bytes(headers)),
    )
    body = b"sfbk" + info + _list(b"sdta", chunk(b"smpl", bytes(data))) + hydra
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_sf2(path: str | os.PathLike, instrument: Multisample) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sf2_bytes(instrument))
    return path
