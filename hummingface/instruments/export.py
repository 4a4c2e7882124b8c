"""Write a :class:`~hummingface.instruments.multisample.Multisample` in the formats musicians load.

Into the folder ``out``:

- ``wav``: ``Name_samples/Name_C3_v100.wav`` ... -- 16-bit WAVs with the root note and loop in a ``smpl``
  chunk and the root note and velocity in the name (for Ableton Live, which imports neither SFZ nor SF2);
- ``sfz``: ``Name.sfz`` beside that folder;
- ``dspreset``: ``Name.dspreset`` (Decent Sampler) beside that folder;
- ``sf2``: ``Name.sf2``, self-contained;
- ``all``: every one of them (the SFZ and the Decent Sampler preset share the samples).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from hummingface.errors import UserError
from hummingface.instruments.dspreset import dspreset_text
from hummingface.instruments.multisample import Multisample
from hummingface.instruments.sf2 import write_sf2
from hummingface.instruments.sfz import sfz_text
from hummingface.instruments.wavfile import write_wav

FORMATS = ("sfz", "dspreset", "sf2", "wav", "all")


def export(instrument: Multisample, out: str | os.PathLike, fmt: str = "sfz") -> list[Path]:
    """Write ``instrument`` as ``fmt`` into the folder ``out``; returns the files written."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} exists and is not a folder.")
    formats = FORMATS[:-1] if fmt == "all" else (fmt,)
    folder = f"{instrument.name}_samples"
    written = []
    if set(formats) & {"sfz", "dspreset", "wav"}:
        for sample in instrument.samples:
            loop = None if sample.loop is None else (sample.loop.start, sample.loop.end)
            written.append(write_wav(out / folder / sample.file_name(instrument.name), sample.audio,
                                     instrument.sample_rate, sample.root, loop))
    texts = {"sfz": sfz_text, "dspreset": dspreset_text}
    for kind in formats:
        if kind in texts:
            path = out / f"{instrument.name}.{kind}"
            path.write_text(texts[kind](instrument, folder))
            written.append(path)
        elif kind == "sf2":
            written.append(write_sf2(out / f"{instrument.name}.sf2", instrument))
    return written


def zip_folder(folder: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Every file under ``folder`` into the zip ``target`` (paths relative to ``folder``)."""
    folder, target = Path(folder), Path(target)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return target
