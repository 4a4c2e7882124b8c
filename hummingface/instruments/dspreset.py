"""Decent Sampler ``.dspreset``: XML naming each sample's zone (DecentSampler Developers Guide, "The <groups>
element": ``<DecentSampler><groups><group><sample path rootNote loNote hiNote loVel hiVel .../>``).

Loops are given in the XML (``loopStart``/``loopEnd``, inclusive sample frames) as well as in the WAVs. The
crossfade is already in the audio, so the player's own ``loopCrossfade`` stays off. Decaying sounds get a
release as long as the longest sample, so a note-off lets them ring like a one-shot.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hummingface.instruments.multisample import Multisample


def dspreset_text(instrument: Multisample, folder: str) -> str:
    """The .dspreset XML for ``instrument`` whose samples lie in ``folder`` (relative)."""
    longest = max(len(s.audio) for s in instrument.samples) / instrument.sample_rate
    release = instrument.release_s if instrument.sustaining else longest
    root = ET.Element("DecentSampler", minVersion="1.0.0")
    groups = ET.SubElement(root, "groups", attack="0.001", decay="0", sustain="1", release=f"{release:g}")
    group = ET.SubElement(groups, "group", name=instrument.name, ampVelTrack="1")
    for sample in instrument.samples:
        attributes = {
            "path": f"{folder}/{sample.file_name(instrument.name)}",
            "rootNote": str(sample.root),
            "loNote": str(sample.keys[0]),
            "hiNote": str(sample.keys[1]),
            "loVel": str(sample.velocities[0]),
            "hiVel": str(sample.velocities[1]),
            "loopEnabled": "true" if sample.loop is not None else "false",
        }
        if sample.loop is not None:
            attributes.update(loopStart=str(sample.loop.start), loopEnd=str(sample.loop.end), loopCrossfade="0")
        ET.SubElement(group, "sample", attributes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
