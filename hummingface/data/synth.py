"""A FluidSynth instance with one SoundFont loaded, rendering float32 stereo.

pyfluidsynth's ``get_samples`` returns dithered int16 whose dither pattern depends on everything rendered before;
we read FluidSynth's float output instead, so a render depends only on its own events (deterministic, no
quantisation before our effects and level checks).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from hummingface.audio import quiet_stderr
from hummingface.errors import UserError

# Debian fluid-soundfont-gm: the only SoundFont we train on (others are the out-of-distribution check).
FLUIDR3_GM = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DRUM_CHANNEL = 9
DRUM_BANK = 128


def check_soundfont(path: str | os.PathLike) -> Path:
    """Refuse anything that is not a readable SoundFont (SF2 or SF3) before FluidSynth sees it.

    Raises:
        UserError: the file is missing, a folder, unreadable or lacks the RIFF ``sfbk`` header.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"SoundFont {path} does not exist.")
    if path.is_dir():
        raise UserError(f"SoundFont {path} is a folder, not a .sf2 file.")
    try:
        with path.open("rb") as file:
            header = file.read(12)
    except OSError as error:
        raise UserError(f"SoundFont {path} cannot be read ({error.strerror}).") from None
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise UserError(f"{path} is not a SoundFont (no RIFF sfbk header).")
    return path


class FluidRenderer:
    """FluidSynth with one SoundFont: program changes, notes and float32 ``(2, frames)`` rendering.

    Args:
        soundfont: path to an .sf2/.sf3 file.
        sample_rate: output rate in Hz.
        gain: FluidSynth's master gain (its default 0.2 leaves single notes far below full scale).
        effects: FluidSynth's built-in reverb and chorus; off for notes, whose effects we add ourselves.
    """

    def __init__(self, soundfont: str | os.PathLike, sample_rate: int, gain: float = 0.2, effects: bool = True):
        import fluidsynth

        path = check_soundfont(soundfont)
        self.sample_rate = sample_rate
        with quiet_stderr():
            self.synth = fluidsynth.Synth(
                gain=gain,
                samplerate=float(sample_rate),
                **{"synth.reverb.active": int(effects), "synth.chorus.active": int(effects)},
            )
            self.sfid = self.synth.sfload(str(path))
        if self.sfid < 0:
            self.synth.delete()
            raise UserError(f"{path} is a corrupt or truncated SoundFont that FluidSynth cannot load.")
        self._write_float = fluidsynth.cfunc(
            "fluid_synth_write_float", ctypes.c_int,
            ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1),
        )

    def select(self, channel: int, program: int, bank: int = 0) -> bool:
        """Give ``channel`` a preset; False when the SoundFont has no such preset."""
        with quiet_stderr():
            return self.synth.program_select(channel, self.sfid, bank, program) == 0

    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples of output, float32 ``(2, frames)``."""
        out = np.zeros((2, frames), dtype=np.float32)
        if frames > 0:
            self._write_float(self.synth.synth, frames, out[0].ctypes.data, 0, 1, out[1].ctypes.data, 0, 1)
        return out

    def note(self, pitch: int, velocity: int, hold_frames: int, total_frames: int, channel: int = 0) -> np.ndarray:
        """Play one note on ``channel``'s program: held ``hold_frames``, then released until ``total_frames``.

        Returns:
            float32 mono ``(total_frames,)``; every voice is stopped afterwards, so the next note starts clean.
        """
        self.synth.noteon(channel, pitch, velocity)
        held = self.render(hold_frames)
        self.synth.noteoff(channel, pitch)
        released = self.render(total_frames - hold_frames)
        self.silence()
        return np.concatenate([held, released], axis=1).mean(axis=0)  # stereo -> mono

    def silence(self, flush_seconds: float = 0.0) -> None:
        """Stop every voice at once and, with effects on, render the reverb/chorus tail away."""
        for channel in range(16):
            self.synth.all_sounds_off(channel)
        self.render(int(flush_seconds * self.sample_rate))

    def close(self) -> None:
        self.synth.delete()
