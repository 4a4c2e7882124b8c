"""General MIDI programs mapped onto NSynth's label vocabularies.

NSynth (Engel et al. 2017, https://magenta.tensorflow.org/datasets/nsynth) labels every note with one of 11
instrument families, one of 3 sources and 10 binary qualities. The orders below are NSynth's, so the integer
labels of our renders and of the real download mean the same thing.

Only pitched instruments are kept. Dropped: Orchestra Hit (55, a chord rather than a note), the Synth Effects
(96-103), the unpitched percussion (Agogo, Woodblock, Taiko, Melodic Tom, Synth Drum, Reverse Cymbal) and the
Sound Effects (115-127). Synth pads (88-95) have no NSynth family of their own and go to ``synth_lead``, the
only synthesizer family. Each program also has a playable range: an instrument is only rendered where a
player could play it, as NSynth's instruments are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hummingface.errors import UserError

FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)


@dataclass(frozen=True)
class GMInstrument:
    """One General MIDI melodic program with its NSynth labels and playable MIDI pitch range (inclusive)."""

    program: int
    name: str
    family: str
    source: str
    low: int
    high: int

    @property
    def pitches(self) -> range:
        return range(self.low, self.high + 1)


# (program, name, family, source, lowest MIDI pitch, highest MIDI pitch)
_TABLE = (
    (0, "Acoustic Grand Piano", "keyboard", "acoustic", 21, 108),
    (1, "Bright Acoustic Piano", "keyboard", "acoustic", 21, 108),
    (2, "Electric Grand Piano", "keyboard", "electronic", 21, 108),
    (3, "Honky-tonk Piano", "keyboard", "acoustic", 21, 108),
    (4, "Electric Piano 1", "keyboard", "electronic", 28, 103),
    (5, "Electric Piano 2", "keyboard", "electronic", 28, 103),
    (6, "Harpsichord", "keyboard", "acoustic", 29, 89),
    (7, "Clavinet", "keyboard", "electronic", 29, 89),
    (8, "Celesta", "mallet", "acoustic", 60, 108),
    (9, "Glockenspiel", "mallet", "acoustic", 72, 108),
    (10, "Music Box", "mallet", "acoustic", 60, 108),
    (11, "Vibraphone", "mallet", "acoustic", 53, 89),
    (12, "Marimba", "mallet", "acoustic", 45, 96),
    (13, "Xylophone", "mallet", "acoustic", 65, 108),
    (14, "Tubular Bells", "mallet", "acoustic", 60, 77),
    (15, "Dulcimer", "mallet", "acoustic", 48, 96),
    (16, "Drawbar Organ", "organ", "electronic", 36, 96),
    (17, "Percussive Organ", "organ", "electronic", 36, 96),
    (18, "Rock Organ", "organ", "electronic", 36, 96),
    (19, "Church Organ", "organ", "acoustic", 24, 96),
    (20, "Reed Organ", "organ", "acoustic", 36, 96),
    (21, "Accordion", "reed", "acoustic", 41, 89),
    (22, "Harmonica", "reed", "acoustic", 60, 96),
    (23, "Tango Accordion", "reed", "acoustic", 41, 89),
    (24, "Acoustic Guitar (nylon)", "guitar", "acoustic", 40, 84),
    (25, "Acoustic Guitar (steel)", "guitar", "acoustic", 40, 84),
    (26, "Electric Guitar (jazz)", "guitar", "electronic", 40, 86),
    (27, "Electric Guitar (clean)", "guitar", "electronic", 40, 86),
    (28, "Electric Guitar (muted)", "guitar", "electronic", 40, 86),
    (29, "Overdriven Guitar", "guitar", "electronic", 40, 86),
    (30, "Distortion Guitar", "guitar", "electronic", 40, 86),
    (31, "Guitar Harmonics", "guitar", "electronic", 52, 96),
    (32, "Acoustic Bass", "bass", "acoustic", 28, 67),
    (33, "Electric Bass (finger)", "bass", "electronic", 28, 67),
    (34, "Electric Bass (pick)", "bass", "electronic", 28, 67),
    (35, "Fretless Bass", "bass", "electronic", 28, 67),
    (36, "Slap Bass 1", "bass", "electronic", 28, 67),
    (37, "Slap Bass 2", "bass", "electronic", 28, 67),
    (38, "Synth Bass 1", "bass", "synthetic", 24, 67),
    (39, "Synth Bass 2", "bass", "synthetic", 24, 67),
    (40, "Violin", "string", "acoustic", 55, 103),
    (41, "Viola", "string", "acoustic", 48, 91),
    (42, "Cello", "string", "acoustic", 36, 84),
    (43, "Contrabass", "string", "acoustic", 28, 67),
    (44, "Tremolo Strings", "string", "acoustic", 36, 96),
    (45, "Pizzicato Strings", "string", "acoustic", 28, 96),
    (46, "Orchestral Harp", "string", "acoustic", 24, 103),
    (47, "Timpani", "mallet", "acoustic", 40, 57),
    (48, "String Ensemble 1", "string", "acoustic", 28, 96),
    (49, "String Ensemble 2", "string", "acoustic", 28, 96),
    (50, "Synth Strings 1", "string", "synthetic", 28, 96),
    (51, "Synth Strings 2", "string", "synthetic", 28, 96),
    (52, "Choir Aahs", "vocal", "acoustic", 45, 81),
    (53, "Voice Oohs", "vocal", "acoustic", 45, 81),
    (54, "Synth Voice", "vocal", "synthetic", 45, 84),
    (56, "Trumpet", "brass", "acoustic", 54, 86),
    (57, "Trombone", "brass", "acoustic", 40, 72),
    (58, "Tuba", "brass", "acoustic", 28, 58),
    (59, "Muted Trumpet", "brass", "acoustic", 54, 86),
    (60, "French Horn", "brass", "acoustic", 34, 77),
    (61, "Brass Section", "brass", "acoustic", 36, 84),
    (62, "Synth Brass 1", "brass", "synthetic", 36, 96),
    (63, "Synth Brass 2", "brass", "synthetic", 36, 96),
    (64, "Soprano Sax", "reed", "acoustic", 56, 88),
    (65, "Alto Sax", "reed", "acoustic", 49, 81),
    (66, "Tenor Sax", "reed", "acoustic", 44, 76),
    (67, "Baritone Sax", "reed", "acoustic", 36, 69),
    (68, "Oboe", "reed", "acoustic", 58, 91),
    (69, "English Horn", "reed", "acoustic", 52, 81),
    (70, "Bassoon", "reed", "acoustic", 34, 75),
    (71, "Clarinet", "reed", "acoustic", 50, 91),
    (72, "Piccolo", "flute", "acoustic", 74, 108),
    (73, "Flute", "flute", "acoustic", 60, 96),
    (74, "Recorder", "flute", "acoustic", 60, 96),
    (75, "Pan Flute", "flute", "acoustic", 60, 96),
    (76, "Blown Bottle", "flute", "acoustic", 60, 84),
    (77, "Shakuhachi", "flute", "acoustic", 55, 84),
    (78, "Whistle", "flute", "acoustic", 72, 96),
    (79, "Ocarina", "flute", "acoustic", 60, 84),
    (80, "Lead 1 (square)", "synth_lead", "synthetic", 36, 96),
    (81, "Lead 2 (sawtooth)", "synth_lead", "synthetic", 36, 96),
    (82, "Lead 3 (calliope)", "synth_lead", "synthetic", 48, 96),
    (83, "Lead 4 (chiff)", "synth_lead", "synthetic", 48, 96),
    (84, "Lead 5 (charang)", "synth_lead", "synthetic", 36, 96),
    (85, "Lead 6 (voice)", "synth_lead", "synthetic", 48, 84),
    (86, "Lead 7 (fifths)", "synth_lead", "synthetic", 36, 84),
    (87, "Lead 8 (bass + lead)", "synth_lead", "synthetic", 28, 84),
    (88, "Pad 1 (new age)", "synth_lead", "synthetic", 36, 96),
    (89, "Pad 2 (warm)", "synth_lead", "synthetic", 36, 96),
    (90, "Pad 3 (polysynth)", "synth_lead", "synthetic", 36, 96),
    (91, "Pad 4 (choir)", "synth_lead", "synthetic", 36, 96),
    (92, "Pad 5 (bowed)", "synth_lead", "synthetic", 36, 96),
    (93, "Pad 6 (metallic)", "synth_lead", "synthetic", 36, 96),
    (94, "Pad 7 (halo)", "synth_lead", "synthetic", 36, 96),
    (95, "Pad 8 (sweep)", "synth_lead", "synthetic", 36, 96),
    (104, "Sitar", "guitar", "acoustic", 48, 84),
    (105, "Banjo", "guitar", "acoustic", 48, 84),
    (106, "Shamisen", "guitar", "acoustic", 50, 84),
    (107, "Koto", "guitar", "acoustic", 55, 91),
    (108, "Kalimba", "mallet", "acoustic", 60, 96),
    (109, "Bagpipe", "reed", "acoustic", 55, 84),
    (110, "Fiddle", "string", "acoustic", 55, 96),
    (111, "Shanai", "reed", "acoustic", 60, 91),
    (112, "Tinkle Bell", "mallet", "acoustic", 72, 108),
    (114, "Steel Drums", "mallet", "acoustic", 52, 88),
)

# Programs whose sound is distorted or multiphonic by definition, whatever effects are added on top.
DISTORTED_PROGRAMS = frozenset({29, 30})
MULTIPHONIC_PROGRAMS = frozenset({86})


def pitched_instruments() -> tuple[GMInstrument, ...]:
    """The melodic GM programs we render, in program order."""
    return tuple(GMInstrument(*row) for row in _TABLE)


def family_index(family: str | int) -> int:
    """A family name (``"guitar"``) or NSynth index -> index; :class:`UserError` listing the names if unknown."""
    if isinstance(family, (int, np.integer)) and 0 <= family < len(FAMILIES):
        return int(family)
    if family in FAMILIES:
        return FAMILIES.index(family)
    raise UserError(f"Unknown family {family!r}; choose from {', '.join(FAMILIES)}.")
