"""Multisample export, checked by real players: pysfizz loads the .sfz, FluidSynth the .sf2, and both play keys
between the sampled ones in tune and hold long notes; the .dspreset against the documented elements; loop seams
click-free; the ``export`` command on tiny models, and its bad flags.

The tiny untrained models make noise, so the pitch oracles play a synthetic harmonic "design" instead.
"""

import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from hummingface.errors import UserError
from hummingface.instruments.export import export
from hummingface.instruments.loop import crossfade, find_loop, played, seam_click_db
from hummingface.instruments.multisample import MultisampleConfig, build_multisample, note_name, trim_start
from hummingface.instruments.source import NoteSource
from hummingface.instruments.wavfile import read_smpl

SR = 16000
PLAYER_SR = 44100


class HarmonicSource(NoteSource):
    """A synthetic design: 8 harmonics at the exact pitch, held 3 s then released (or plucked and decaying)."""

    def __init__(self, sustain: bool = True, layers: bool = False) -> None:
        self.sample_rate = SR
        self.velocity_layers = layers
        self.sustain = sustain
        self.calls = []

    def render(self, pitches, velocity=100):
        self.calls.append((list(pitches), velocity))
        t = np.arange(4 * SR) / SR
        notes = []
        for pitch in pitches:
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            tone = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 9) if f0 * h < SR / 2)
            if self.sustain:
                envelope = np.minimum(t / 0.02, 1) * np.where(t < 3, 1.0, np.exp(-(t - 3) * 8))
            else:
                envelope = np.exp(-t * 3)
            notes.append(0.3 * tone * envelope * velocity / 127)
        return np.asarray(notes, dtype=np.float32)


def midi_pitch(audio: np.ndarray, sr: int) -> float:
    """Median pyin pitch (fractional MIDI) of 1-3 s into the note."""
    import librosa

    clip = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=sr, target_sr=SR)[SR : 3 * SR]
    f0, voiced, _ = librosa.pyin(clip, fmin=50, fmax=2000, sr=SR, frame_length=2048)
    return float(librosa.hz_to_midi(np.median(f0[voiced])))


def level_db(audio: np.ndarray, sr: int, t0: float, t1: float) -> float:
    return float(10 * np.log10(np.mean(np.square(audio[int(t0 * sr) : int(t1 * sr)])) + 1e-20))


@pytest.fixture(scope="module")
def sustained(tmp_path_factory):
    instrument = build_multisample(HarmonicSource(), MultisampleConfig(pitches=(48, 72), step=3, name="Tone"))
    folder = tmp_path_factory.mktemp("tone")
    export(instrument, folder, "all")
    return instrument, folder


def test_every_sample_is_rendered_at_its_own_pitch_once():
    source = HarmonicSource()
    build_multisample(source, MultisampleConfig(pitches=(24, 96), step=3))
    assert source.calls == [(list(range(24, 97, 3)), 100)]


def test_velocity_layers_only_where_the_model_plays_velocity():
    layered = HarmonicSource(layers=True)
    instrument = build_multisample(layered, MultisampleConfig(pitches=(48, 60), step=6))
    assert sorted(v for _, v in layered.calls) == [50, 75, 100, 127]
    assert {s.velocities for s in instrument.samples} == {(1, 50), (51, 75), (76, 100), (101, 127)}
    plain = build_multisample(HarmonicSource(), MultisampleConfig(pitches=(48, 60), step=6))
    assert {s.velocities for s in plain.samples} == {(1, 127)}


def test_samples_are_loudness_matched_unclipped_and_named(sustained):
    instrument, folder = sustained
    levels = [10 * np.log10(np.mean(s.audio[: 24000] ** 2)) for s in instrument.samples]
    assert max(levels) - min(levels) < 1.0
    assert max(np.abs(s.audio).max() for s in instrument.samples) <= 0.9
    assert note_name(48) == "C3" and (folder / "Tone_samples" / "Tone_C3_v100.wav").is_file()
    assert instrument.sustaining and all(s.loop is not None for s in instrument.samples)


def test_leading_silence_is_trimmed():
    class Late(HarmonicSource):
        def render(self, pitches, velocity=100):
            notes = super().render(pitches, velocity)
            return np.concatenate([np.zeros((len(notes), SR // 4), np.float32), notes[:, : -SR // 4]], axis=1)

    instrument = build_multisample(Late(), MultisampleConfig(pitches=(60, 60)))
    assert np.abs(instrument.samples[0].audio[: SR // 100]).max() > 0.01  # sound within 10 ms


def test_wav_smpl_chunk_holds_root_and_loop(sustained):
    instrument, folder = sustained
    sample = instrument.samples[2]
    root, loops = read_smpl(folder / "Tone_samples" / sample.file_name("Tone"))
    assert root == sample.root and loops == [(sample.loop.start, sample.loop.end)]


def test_loop_is_whole_periods_and_its_seams_are_click_free(sustained):
    instrument, _ = sustained
    for sample in instrument.samples:
        loop = sample.loop
        periods = loop.length * 440.0 * 2 ** ((sample.root - 69) / 12) / SR
        assert abs(periods - round(periods)) < 0.05
        audio = played(sample.audio, loop, 8 * SR)
        seams = loop.end + 1 + loop.length * np.arange(int(5 * SR / loop.length))
        assert seam_click_db(audio, seams, SR).max() <= 3.0


def test_a_bad_seam_is_caught_by_the_click_measure():
    t = np.arange(3 * SR) / SR
    tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    loop = find_loop(tone, SR, 221.7, (0.5, 2.5))  # a wrong f0: the loop is not whole periods
    raw = played(tone, loop, 6 * SR)
    seams = loop.end + 1 + loop.length * np.arange(3)
    assert seam_click_db(raw, seams, SR).max() > 3.0
    assert seam_click_db(played(crossfade(tone, loop, 480), loop, 6 * SR), seams, SR).max() < seam_click_db(
        raw, seams, SR).max()


def test_decaying_sound_is_a_one_shot(tmp_path):
    instrument = build_multisample(HarmonicSource(sustain=False), MultisampleConfig(pitches=(48, 60), step=6))
    assert not instrument.sustaining and all(s.loop is None for s in instrument.samples)
    export(instrument, tmp_path, "sfz")
    assert "loop_mode=one_shot" in (tmp_path / "HummingFace.sfz").read_text()


def test_sfizz_plays_unsampled_keys_in_tune_and_sustains(sustained):
    pysfizz = pytest.importorskip("pysfizz")
    _, folder = sustained
    synth = pysfizz.Synth(sample_rate=PLAYER_SR)
    assert synth.load_sfz_file(folder / "Tone.sfz")
    for key in (50, 61, 70):  # none of them sampled (48, 51, ..., 72)
        audio = synth.render_note(key, 100, 8.0, 9.0).mean(axis=0)
        assert abs(midi_pitch(audio, PLAYER_SR) - key) < 0.5
        assert level_db(audio, PLAYER_SR, 6.8, 7.2) > level_db(audio, PLAYER_SR, 0.5, 1.5) - 6  # still sounding
        assert level_db(audio, PLAYER_SR, 8.6, 9.0) < level_db(audio, PLAYER_SR, 6.8, 7.2) - 30  # released


def test_fluidsynth_plays_the_sf2_unsampled_keys_in_tune_and_sustains(sustained):
    from hummingface.data.synth import FluidRenderer

    _, folder = sustained
    renderer = FluidRenderer(folder / "Tone.sf2", PLAYER_SR, gain=0.5, effects=False)
    assert renderer.select(0, 0)
    for key in (50, 61, 70):
        audio = renderer.note(key, 100, 8 * PLAYER_SR, 9 * PLAYER_SR)
        assert abs(midi_pitch(audio, PLAYER_SR) - key) < 0.5
        assert level_db(audio, PLAYER_SR, 6.8, 7.2) > level_db(audio, PLAYER_SR, 0.5, 1.5) - 6
        assert level_db(audio, PLAYER_SR, 8.6, 9.0) < level_db(audio, PLAYER_SR, 6.8, 7.2) - 30
    renderer.close()


def test_dspreset_has_the_documented_elements_and_attributes(sustained):
    instrument, folder = sustained
    root = ET.parse(folder / "Tone.dspreset").getroot()
    assert root.tag == "DecentSampler"
    groups = root.findall("groups")
    assert len(groups) == 1 and float(groups[0].get("release")) > 0
    samples = groups[0].findall("group/sample")
    assert len(samples) == len(instrument.samples)
    documented = {"path", "rootNote", "loNote", "hiNote", "loVel", "hiVel", "loopStart", "loopEnd", "loopEnabled",
                  "loopCrossfade"}
    for element, sample in zip(samples, instrument.samples, strict=True):
        assert set(element.attrib) <= documented and {"path", "rootNote"} <= set(element.attrib)
        assert (folder / element.get("path")).is_file()
        assert int(element.get("rootNote")) == sample.root
        assert int(element.get("loNote")) <= sample.root <= int(element.get("hiNote"))
        assert element.get("loopEnabled") == "true" and int(element.get("loopEnd")) == sample.loop.end


def test_key_ranges_cover_the_keyboard_without_gaps(sustained):
    instrument, _ = sustained
    ranges = sorted(s.keys for s in instrument.samples)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    assert all(abs(k - s.root) <= 1 for s in instrument.samples for k in s.keys if 48 <= k <= 72)


def test_bad_settings_are_refused():
    with pytest.raises(UserError):
        MultisampleConfig(step=0)
    with pytest.raises(UserError):
        export(build_multisample(HarmonicSource(), MultisampleConfig(pitches=(60, 60))), "/tmp", "mp3")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hummingface", *args], capture_output=True, text=True)


@pytest.mark.parametrize("model", ["cvae", "vae", "gan"])
def test_export_command_on_tiny_models(tiny_weights, tmp_path, model):
    out = tmp_path / model
    result = run_cli("export", "--model", model, "--weights", str(tiny_weights), "--pitches", "48-60", "--step", "6",
                     "--format", "all", "--name", "Tiny", "-o", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    wavs = sorted((out / "Tiny_samples").glob("*.wav"))
    assert len(wavs) == (3 * 4 if model == "gan" else 3)
    assert {"Tiny.sfz", "Tiny.dspreset", "Tiny.sf2"} <= {p.name for p in out.iterdir()}
    assert (out / "Tiny_samples" / "Tiny_C3_v100.wav").is_file()


def test_export_with_latent_and_single_velocity(tiny_weights, tmp_path):
    result = run_cli("export", "--model", "cvae", "--latent", "1,-1", "--weights", str(tiny_weights),
                     "--pitches", "60-60", "--format", "wav", "-o", str(tmp_path), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "cvae_latent_samples").iterdir()] == ["cvae_latent_C4_v100.wav"]
    result = run_cli("export", "--model", "gan", "--velocity", "90", "--weights", str(tiny_weights),
                     "--pitches", "60-60", "--format", "wav", "-o", str(tmp_path / "g"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "g" / "gan_keyboard_s0_samples").iterdir()] == ["gan_keyboard_s0_C4_v90.wav"]


@pytest.mark.parametrize("flags", [
    ["--format", "mp3"], ["--pitches", "96-24"], ["--pitches", "low"], ["--step", "0"], ["--latent", "a,b"],
    ["--velocity", "200"], ["--model", "gan", "--latent", "1"], ["--model", "gan", "--family", "kazoo"],
    ["--model", "gan", "--pitches", "10-20"], ["--pitches", "0-12"], ["--name", "///"],
])
def test_export_bad_flags_give_one_sentence_and_exit_2(tiny_weights, tmp_path, flags):
    result = run_cli("export", "--weights", str(tiny_weights), *flags, "-o", str(tmp_path / "x"), "--device", "cpu")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# -- the app's side: keyboard payload, named sliders, mutate ---------------------------------------------------


@pytest.fixture(scope="module")
def studio(tiny_weights):
    from hummingface.studio import Studio

    return Studio.load(str(tiny_weights), "cpu")


def test_keyboard_payload_is_one_layer_of_decodable_samples(studio):
    import base64
    import io
    import json

    import soundfile as sf

    from hummingface.instruments.source import Design

    payload = json.loads(studio.keyboard(Design(model="gan", family="organ"), pitches=(48, 60), step=6))
    assert [s["root"] for s in payload["samples"]] == [48, 54, 60] and payload["rate"] == 44100  # the vocoder's rate
    audio, rate = sf.read(io.BytesIO(base64.b64decode(payload["samples"][0]["flac"])))
    assert rate == 44100 and len(audio) > rate // 2
    for sample in payload["samples"]:
        if sample["loop"] is not None:
            assert 0 < sample["loop"][0] < sample["loop"][1] <= len(audio) / SR + 4


def test_mutate_is_a_small_seeded_step_within_range(studio):
    start = [3.9] + [0.0] * 15
    first, again = studio.mutate("cvae", start, seed=5), studio.mutate("cvae", start, seed=5)
    assert first == again and len(first) == studio.n_sliders("cvae")
    assert max(abs(a - b) for a, b in zip(first, start, strict=False)) < 2.5 and max(first) <= 4.0
    assert studio.mutate("cvae", start, seed=6) != first


def test_name_sliders_command_writes_names_the_studio_shows(tiny_weights, tmp_path):
    import json
    import shutil

    from hummingface.studio import Studio

    shutil.copytree(tiny_weights / "vae", tmp_path / "vae")
    result = run_cli("name-sliders", "--model", "vae", "--weights", str(tmp_path), "--bases", "6", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    names = json.loads((tmp_path / "vae" / "slider_names.json").read_text())
    assert len(names["sliders"]) == Studio.load(str(tmp_path), "cpu").n_sliders("vae")
    for entry in names["sliders"]:
        assert all(term["agreement"] >= 0.9 for term in entry["named"]) and len(entry["named"]) <= 2
    names["sliders"][0]["label"] = "brighter, shorter decay"
    (tmp_path / "vae" / "slider_names.json").write_text(json.dumps(names))
    assert Studio.load(str(tmp_path), "cpu").slider_labels("vae")[0] == "1 · brighter, shorter decay"


def test_descriptors_move_the_way_their_words_say():
    from hummingface.instruments.descriptors import describe

    t = np.arange(3 * SR) / SR
    dull = np.sin(2 * np.pi * 220 * t)
    bright = dull + 0.5 * np.sin(2 * np.pi * 2200 * t)
    noisy = dull + 0.3 * np.random.default_rng(0).normal(size=t.size)
    vibrato = np.sin(2 * np.pi * 220 * t + 3 * np.sin(2 * np.pi * 5 * t))
    decaying = dull * np.exp(-t * 4)
    slow = dull * np.minimum(t / 0.5, 1)
    inharmonic = dull + 0.7 * np.sin(2 * np.pi * 220 * 2.5 * t)
    base = describe(dull, SR, 57)
    assert describe(bright, SR, 57)["centroid"] > base["centroid"]
    assert describe(noisy, SR, 57)["flatness"] > base["flatness"]
    assert describe(vibrato, SR, 57)["vibrato"] > base["vibrato"] + 10
    assert describe(decaying, SR, 57)["decay"] < base["decay"]
    assert describe(slow, SR, 57)["attack"] > base["attack"] + 0.3
    assert describe(inharmonic, SR, 57)["inharmonicity"] > base["inharmonicity"] + 0.2


def test_a_note_loud_from_its_first_sample_starts_without_a_click():
    # A decoded note can start at a tenth of its peak on sample 0: nothing to trim, but a player would click.
    sr = 16000
    t = np.arange(sr) / sr
    note = (0.1 + np.sin(2 * np.pi * 262 * t)).astype(np.float32) * np.exp(-t)
    out = trim_start(note, sr)
    assert abs(out[0]) < 1e-3 and abs(out[1]) < 0.1 * abs(note[1])  # ramps up over 1 ms
