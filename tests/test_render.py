"""MIDI files played with a multisample: a small song written here (chords, the sustain pedal, repeated notes, a
long note) through the renderer and the ``render`` command; bad MIDI files and flags are refused in one sentence."""

import subprocess
import sys

import mido
import numpy as np
import pytest
import soundfile as sf

from hummingface.errors import UserError
from hummingface.instruments.midi import Note, read_midi
from hummingface.instruments.multisample import MultisampleConfig, build_multisample
from hummingface.instruments.render import RenderConfig, render_notes, schedule
from tests.test_instruments import HarmonicSource, midi_pitch

SR = 44100
TICKS = 480  # per beat; 120 bpm: a beat is 0.5 s


def write_song(path, events):
    """``events``: (beat, message) pairs; written as one track at 120 bpm."""
    midi = mido.MidiFile(ticks_per_beat=TICKS)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    now = 0
    for beat, message in sorted(events, key=lambda e: e[0]):
        tick = round(beat * TICKS)
        track.append(message.copy(time=tick - now))
        now = tick
    midi.save(path)
    return path


def on(beat, pitch, velocity=100):
    return beat, mido.Message("note_on", note=pitch, velocity=velocity)


def off(beat, pitch):
    return beat, mido.Message("note_off", note=pitch, velocity=0)


def pedal(beat, down):
    return beat, mido.Message("control_change", control=64, value=127 if down else 0)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    events = [
        *[e for p in (60, 64, 67) for e in (on(0, p), off(1, p))],  # a chord, 0-0.5 s
        pedal(2, True), on(2, 48), off(2.5, 48), pedal(4, False),  # pedalled: sounds 1-2 s
        on(5, 72), off(5.5, 72), on(5.5, 72, 60), off(6, 72),  # a repeated note
        on(7, 55), off(27, 55),  # a long note: 3.5-13.5 s, far past the 4-s samples
    ]
    return write_song(tmp_path_factory.mktemp("midi") / "song.mid", events)


@pytest.fixture(scope="module")
def instrument():
    return build_multisample(HarmonicSource(), MultisampleConfig(pitches=(45, 75), step=3, name="Tone"))


def test_notes_with_pedal_and_repeats(song):
    notes = read_midi(song)
    assert [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in notes] == [
        (60, 0.0, 0.5), (64, 0.0, 0.5), (67, 0.0, 0.5), (48, 1.0, 2.0), (72, 2.5, 2.75), (72, 2.75, 3.0),
        (55, 3.5, 13.5),
    ]
    assert notes[-2].velocity == 60


def test_a_re_struck_note_ends_the_pedalled_one():
    from hummingface.instruments.midi import _notes

    messages = [mido.Message("control_change", control=64, value=127, time=0),
                mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=0.2),
                mido.Message("note_on", note=60, velocity=90, time=0.3), mido.Message("note_off", note=60, time=0.2),
                mido.Message("control_change", control=64, value=0, time=1.0)]
    assert [(round(n.start, 2), round(n.end, 2)) for n in _notes(messages)] == [(0.0, 0.5), (0.5, 1.7)]


def test_render_of_the_song(song, instrument):
    audio = render_notes(read_midi(song), instrument, RenderConfig())
    assert audio.shape[0] == 2 and np.abs(audio).max() <= 0.89 + 1e-6
    mono = audio.mean(axis=0)

    def level(t0, t1):
        return 10 * np.log10(np.mean(mono[int(t0 * SR) : int(t1 * SR)] ** 2) + 1e-20)

    assert level(0.0, 0.05) > -40  # the chord starts at once
    assert level(1.6, 1.9) > level(0.9, 1.0) - 12  # the pedal holds the note released at 1.25 s
    assert level(2.45, 2.49) < level(1.6, 1.9) - 30  # ... and lets it go at 2 s (+0.3 s release)
    assert abs(midi_pitch(mono[int(5 * SR) : int(13 * SR)], SR) - 55) < 0.5  # the long note, in tune
    assert level(12.5, 13.4) > level(4.0, 5.0) - 6  # ... still sounding after 9 s (looped)
    assert abs(len(mono) / SR - 13.8) < 0.01  # ... and released over 0.3 s, where the song ends
    assert level(13.77, 13.8) < level(12.5, 13.4) - 20


def test_voices_are_stolen_beyond_the_polyphony(instrument):
    notes = [Note(0.01 * i, 5.0, 48 + i, 100) for i in range(6)]
    voices = schedule(notes, instrument, RenderConfig(polyphony=4))
    assert [v.cut is not None for v in voices] == [True, True, False, False, False, False]
    assert render_notes(notes, instrument, RenderConfig(polyphony=4)).shape[0] == 2


@pytest.mark.parametrize("first_end", [0.45, 1.0], ids=["released", "held"])
def test_a_re_struck_key_releases_the_old_voice_without_a_dip(instrument, first_end):
    """The samples' attacks rise over 20 ms: an old voice cut under one made the mix dip at the new note."""
    notes = [Note(0.0, first_end, 60, 100), Note(0.5, 1.0, 60, 100)]
    mono = render_notes(notes, instrument, RenderConfig()).mean(axis=0)
    alone = render_notes(notes[1:], instrument, RenderConfig()).mean(axis=0)

    def level(audio, t0, t1):
        return 10 * np.log10(np.mean(audio[int(t0 * SR) : int(t1 * SR)] ** 2) + 1e-20)

    before = level(mono, 0.46, 0.5)
    for t in np.arange(0.5, 0.53, 0.005):  # 5-ms steps through the new note's attack
        assert level(mono, t, t + 0.005) > before - 3
    old = mono[: len(alone)] - alone[: len(mono)]  # the old voice alone (the limiter does not act here)
    assert level(old, 0.55, 0.6) > before - 12  # it rings on through its release ...
    assert level(old, 0.81, 0.85) < before - 60  # ... and is gone 0.3 s after the new note


def test_the_multisample_is_rendered_once_not_per_note(song):
    source = HarmonicSource()
    melody = build_multisample(source, MultisampleConfig(pitches=(45, 75), step=3))
    render_notes(read_midi(song), melody)
    assert len(source.calls) == 1


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hummingface", *args], capture_output=True, text=True)


def test_render_command_one_song_and_several(tiny_weights, song, tmp_path):
    result = run_cli("render", "--weights", str(tiny_weights), "--device", "cpu", str(song), "-o",
                     str(tmp_path / "one.wav"))
    assert result.returncode == 0, result.stderr
    info = sf.info(tmp_path / "one.wav")
    assert info.samplerate == 44100 and info.channels == 2 and info.duration > 13.5
    other = tmp_path / "other.mid"
    other.write_bytes(song.read_bytes())
    result = run_cli("render", "--model", "gan", "--family", "organ", "--weights", str(tiny_weights), "--device",
                     "cpu", str(song), str(other), "-o", str(tmp_path / "many"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["other.wav", "song.wav"]


def bad_files(folder):
    (folder / "text.mid").write_text("not a MIDI file at all")
    (folder / "empty.mid").write_bytes(b"")
    write_song(folder / "silent.mid", [pedal(0, True), pedal(1, False)])
    write_song(folder / "long.mid", [on(0, 60), off(3700, 60)])  # 31 minutes at 120 bpm
    return ["text.mid", "empty.mid", "silent.mid", "long.mid", "missing.mid"]


def test_bad_midi_is_refused_in_one_sentence(tmp_path):
    for name in bad_files(tmp_path):
        with pytest.raises(UserError):
            read_midi(tmp_path / name)


@pytest.mark.parametrize("name", ["text.mid", "empty.mid", "silent.mid", "long.mid", "missing.mid"])
def test_render_command_bad_midi_exits_2(tiny_weights, tmp_path, name):
    bad_files(tmp_path)
    result = run_cli("render", "--weights", str(tiny_weights), str(tmp_path / name), "-o", str(tmp_path / "o.wav"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags", [["-o", "x.mp3"], ["--latent", "x"], ["--model", "gan", "--family", "kazoo"]])
def test_render_command_bad_flags_exit_2(tiny_weights, song, tmp_path, flags):
    result = run_cli("render", "--weights", str(tiny_weights), str(song), "-o", str(tmp_path / "o.wav"), *flags)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
