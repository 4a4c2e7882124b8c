"""SFZ: a text file of ``<region>`` lines beside a folder of WAV samples (spec: sfzformat.com).

Sustaining sets loop with ``loop_mode=loop_sustain`` (loop while the key is held, then play on through the
sample's own release); decaying ones are ``one_shot`` (they ring out whatever the note-off). Velocity is
``amp_veltrack=100`` (gain 20 log10((v/127)^2) dB) on top of any velocity layers, since every sample is
loudness-matched. ``hint_ram_based=1`` asks sfizz to hold the (small) samples in memory rather than stream them
from disk, which under load could miss the start of a rarely played sample.
"""

from __future__ import annotations

from hummingface.instruments.multisample import Multisample


def sfz_text(instrument: Multisample, folder: str) -> str:
    """The .sfz file for ``instrument`` whose samples lie in ``folder`` (relative, forward slashes)."""
    mode = "loop_sustain" if instrument.sustaining else "one_shot"
    lines = [
        f"// {instrument.name}: made with HummingFace ({len(instrument.samples)} samples at "
        f"{instrument.sample_rate} Hz)",
        "<control>",
        f"default_path={folder}/ hint_ram_based=1",
        "<global>",
        f"loop_mode={mode} amp_veltrack=100 ampeg_attack=0.001 ampeg_release={instrument.release_s:g}",
    ]
    for sample in instrument.samples:
        region = (
            f"<region> sample={sample.file_name(instrument.name)} pitch_keycenter={sample.root} "
            f"lokey={sample.keys[0]} hikey={sample.keys[1]} lovel={sample.velocities[0]} hivel={sample.velocities[1]}"
        )
        if sample.loop is not None:
            region += f" loop_start={sample.loop.start} loop_end={sample.loop.end}"
        lines.append(region)
    return "\n".join(lines) + "\n"
