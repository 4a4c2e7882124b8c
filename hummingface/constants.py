"""Numbers more than one part of HummingFace agrees on: the note format, the pitch range, the app's limits."""

SAMPLE_RATE = 16000  # Hz: every note model reads and writes notes at NSynth's rate
NOTE_SAMPLES = 64000  # samples: a note is 4 s long, like NSynth's
TRAIN_PITCHES = range(24, 97)  # MIDI pitches the shipped note models train on and the generators accept
SLIDER_RANGE = 4.0  # Designer sliders span this many standard deviations either side of the mean
MAX_UPLOAD_SECONDS = 600.0  # the documented upload limit: 10 minutes of audio
MAX_FILE_SIZE = "200mb"  # Gradio's upload cap: a 10-minute 44.1 kHz stereo WAV is 106 MB
VIBRATO_MAX_CENTS = 100.0  # a semitone either way: beyond that it is a trill, not a vibrato
VIBRATO_RATES_HZ = (1.0, 12.0)  # the vibrato rates a design may ask for
# A recording's latent is the encoder's guess moved by this many Adam steps (Timbre.refine): ~0.16 s on 2 threads,
# worth ViSQOL 4.05 -> 4.10 and LSD_dB 5.1 -> 4.7 on held-out instruments (README, "Notes at 44.1 kHz").
REFINE_STEPS = 25
# ... then by this many steps listening to it through the vocoder (Timbre.listen): ~5 s on 2 threads. On 40
# validation notes LSD_dB 4.60 (none) -> 4.05 (30 steps) -> 4.02 (60) -> 4.00 (120) (README, "Notes at 44.1 kHz").
LISTEN_STEPS = 60
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name: 60 -> ``"C4"``, 69 -> ``"A4"``, 61 -> ``"C#4"``."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"
