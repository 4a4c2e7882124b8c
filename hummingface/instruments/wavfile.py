"""16-bit mono WAV with a ``smpl`` chunk: the root note and the sustain loop, as samplers read them.

libsndfile does not write ``smpl`` chunks, so the RIFF is laid out here (Microsoft RIFF, "smpl" chunk):
``fmt `` (PCM), ``data`` and ``smpl`` (the MIDI unity note, and one forward loop with inclusive end).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np


def pcm16(audio: np.ndarray) -> bytes:
    """Float audio ``(samples,)`` in [-1, 1] -> little-endian 16-bit PCM bytes (clipped, rounded)."""
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def chunk(name: bytes, payload: bytes) -> bytes:
    """A RIFF chunk: 4-byte id, little-endian size, payload, padded to an even length."""
    return name + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def wav_bytes(audio: np.ndarray, sample_rate: int, root: int | None = None,
              loop: tuple[int, int] | None = None) -> bytes:
    """A mono 16-bit WAV file's bytes; with ``root`` a ``smpl`` chunk (and ``loop`` = (start, end) inclusive)."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    body = b"WAVE" + chunk(b"fmt ", fmt) + chunk(b"data", pcm16(audio))
    if root is not None:
        loops = [] if loop is None else [loop]
        header = struct.pack("<9I", 0, 0, round(1e9 / sample_rate), root, 0, 0, 0, len(loops), 0)
        records = b"".join(struct.pack("<6I", 0, 0, start, end, 0, 0) for start, end in loops)
        body += chunk(b"smpl", header + records)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, root: int | None = None,
              loop: tuple[int, int] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(audio, sample_rate, root, loop))
    return path


def read_smpl(path: str | os.PathLike) -> tuple[int, list[tuple[int, int]]]:
    """``(root, [(loop start, loop end), ...])`` from a WAV's ``smpl`` chunk (for tests and checks)."""
    data = Path(path).read_bytes()
    position = 12
    while position + 8 <= len(data):
        name, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        if name == b"smpl":
            fields = struct.unpack("<9I", data[position + 8 : position + 44])
            loops = [struct.unpack("<6I", data[position + 44 + 24 * i : position + 68 + 24 * i])[2:4]
                     for i in range(fields[7])]
            return fields[3], loops
        position += 8 + size + size % 2
    raise ValueError(f"{path} has no smpl chunk.")
