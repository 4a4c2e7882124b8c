"""The app's pure functions (hummingface/studio.py) on tiny untrained models: no browser, no Gradio."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from hummingface import studio as studio_module
from hummingface.errors import UserError
from hummingface.studio import PRESET_DIR, Studio, bandwidth_hz, note_name, sweep, sweep_every

EXAMPLES = PRESET_DIR.parent / "examples"


@pytest.fixture(scope="module")
def studio(tiny_weights, tmp_path_factory):
    return Studio.load(str(tiny_weights), "cpu", listen_steps=2)  # listening itself: tests/test_models.py


def test_loads_every_model_in_the_tree(studio):
    assert set(studio.timbres) == {"cvae", "vae"}
    assert set(studio.generators) == {"gan", "cdecoder"}
    assert studio.upsampler is not None


def test_note_names():
    assert [note_name(p) for p in (60, 69, 21, 61)] == ["C4", "A4", "A0", "C#4"]


def test_design_gives_int16_audio_and_a_picture(studio):
    first = studio.design("cvae", [0.0] * studio.n_sliders("cvae"), pitch=60)
    moved = studio.design("cvae", [3.0] + [0.0] * (studio.n_sliders("cvae") - 1), pitch=60)
    rate, audio = first.audio
    assert rate == 44100 and audio.dtype == np.int16 and audio.shape == (176400,)  # through the vocoder
    assert first.picture.ndim == 3 and first.picture.shape[2] == 3 and first.picture.dtype == np.uint8
    assert not np.array_equal(first.audio[1], moved.audio[1])
    assert moved.sliders[0] == pytest.approx(3.0)


def test_design_ignores_a_base_latent_of_another_size(studio):
    result = studio.design("vae", [0.5], base=[0.0] * 3)
    assert result.latent.shape == (8,)


def test_start_from_a_preset_estimates_its_pitch(studio):
    preset = sorted(PRESET_DIR.glob("*.flac"))[0]
    latent, pitch, _ = studio.start_from("cvae", preset)
    assert latent.shape == (8,) and pitch == 60  # every preset is middle C
    values = studio.slider_values("cvae", latent)
    assert len(values) == studio.n_sliders("cvae") and all(-4 <= v <= 4 for v in values)


def test_morph_ends_are_the_two_sounds(studio):
    a, b = sorted(PRESET_DIR.glob("*.flac"))[:2]
    start, *_ = studio.morph("cvae", a, b, 0.0)
    end, *_ = studio.morph("cvae", a, b, 1.0)
    assert np.allclose(start, studio.start_from("cvae", a)[0], atol=1e-5)
    assert np.allclose(end, studio.start_from("cvae", b, 60)[0], atol=1e-5)


def test_start_from_garbage_is_one_sentence(studio, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(UserError, match="not an audio file"):
        studio.start_from("cvae", junk)


@pytest.mark.parametrize(("play", "seconds"), [("note", 4.0), ("chord", 4.0), ("scale", 7.5)])
def test_generate_note_scale_and_chord(studio, play, seconds):
    (rate, audio), picture = studio.generate_note("gan", 60, "guitar", 100, 3, play)
    assert rate == 44100 and audio.dtype == np.int16 and len(audio) == int(seconds * rate)
    assert picture.shape[2] == 3


def test_generator_errors(studio):
    with pytest.raises(UserError, match="Unknown family"):
        studio.generate_note("gan", 60, "kazoo")
    with pytest.raises(UserError, match="No 'nope' note generator"):
        studio.generate_note("nope")
    with pytest.raises(UserError, match="play mode"):
        studio.generate_note("cdecoder", play="arpeggio")


def test_surprise_is_seeded(studio):
    assert studio.surprise("gan", 5) == studio.surprise("gan", 5)
    pitch, family, velocity = studio.surprise("gan", 5)
    assert 24 <= pitch <= 96 and 1 <= velocity <= 127
    studio.generate_note("gan", pitch, family, velocity, 5)


def test_bandwidth_of_a_sine_and_of_an_8k_clip():
    t = np.arange(44100) / 44100
    assert bandwidth_hz(np.sin(2 * np.pi * 1000 * t), 44100) == pytest.approx(1000, abs=150)
    clip, sr = sf.read(EXAMPLES / "pop-0011-01-8k.flac", dtype="float32", always_2d=True)
    assert 3000 < bandwidth_hz(clip.T, sr) <= 4000


def test_describe_upload(studio):
    text = studio.describe_upload(EXAMPLES / "pop-0011-01-8k.flac")
    assert "8000 Hz" in text and "stereo" in text and "10.0 s" in text and "bandwidth" in text


@pytest.mark.parametrize("mode", ["model", "sbr", "sinc"])
def test_upsample_writes_44k1_and_pictures(studio, tmp_path, mode):
    fractions = []
    target, picture, note = studio.upsample(EXAMPLES / "pop-0011-01-8k.flac", mode, tmp_path, progress=fractions.append)
    info = sf.info(str(target))
    assert info.samplerate == 44100 and info.frames == 441000 and info.channels == 2
    assert target.parent.parent == tmp_path
    assert picture.shape[1] > picture.shape[0] and mode in note
    assert fractions and fractions[-1] == pytest.approx(1.0)


def test_written_results_are_deleted_after_keep_seconds(studio, tmp_path, monkeypatch):
    """Gradio cleans only the files it wrote itself; the studio's own results in its cache must go too."""
    clip = EXAMPLES / "pop-0011-01-8k.flac"
    first, _, _ = studio.upsample(clip, "sinc", tmp_path)
    second, _, _ = studio.upsample(clip, "sinc", tmp_path)
    assert first.is_file() and second.is_file()  # within keep_seconds both stay (two users, two results)
    monkeypatch.setattr(studio, "keep_seconds", 0.0)
    old = first.parent.stat().st_mtime - 10
    os.utime(first.parent, (old, old))
    third, _, _ = studio.upsample(clip, "sinc", tmp_path)
    assert not first.parent.exists() and third.is_file()


def _backdate(path, seconds):
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def _gradio_like_cache(folder):
    """Gradio's layout: one folder per content hash holding the file; its delete pass no longer tracks them."""
    old = folder / ("a" * 64) / "audio.wav"
    new = folder / ("b" * 64) / "audio.wav"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"RIFF")
    orphan = folder / "tmpupload"  # an upload's empty temporary file left beside the folders
    orphan.write_bytes(b"")
    waiting = folder / "rendered" / "tmpfresh"  # a folder made for a result about to be written
    waiting.mkdir(parents=True)
    for path in (old, old.parent, orphan):
        _backdate(path, 120)
    return old, new, orphan, waiting


def test_sweep_deletes_old_files_no_one_tracked(tmp_path):
    """Gradio's scheduled pass stops under load, so the app sweeps its cache by what is on disk."""
    old, new, orphan, waiting = _gradio_like_cache(tmp_path)
    deleted = sweep(tmp_path, keep_seconds=60)
    assert deleted == {os.path.realpath(old), os.path.realpath(orphan)}
    assert not old.exists() and not old.parent.exists() and not orphan.exists()
    assert new.is_file() and waiting.is_dir() and tmp_path.is_dir()


def test_sweep_every_keeps_sweeping_and_forgets_what_it_deleted(tmp_path):
    """Gradio's pass died once and never ran again; this one must still sweep after its first rounds, and drop
    what it deleted from Gradio's sets of served files."""
    old, new, _, _ = _gradio_like_cache(tmp_path)
    served = {os.path.realpath(old), os.path.realpath(new)}
    stop = sweep_every(tmp_path, keep_seconds=60, every_seconds=0.01, tracked=[served])
    try:
        for again in (True, False):  # the same old file twice: only a thread still running removes it again
            for _ in range(1000):  # polled, not timed: at most 10 s on a busy machine
                if not old.exists() and os.path.realpath(old) not in served:
                    break
                stop.wait(0.01)
            assert not old.exists() and served == {os.path.realpath(new)} and new.is_file()
            if again:  # in a new folder, which the thread leaves alone until it is old
                served.add(os.path.realpath(old))
                old.parent.mkdir()
                old.write_bytes(b"RIFF")
                _backdate(old, 120)
    finally:
        stop.set()


def test_sweep_every_trims_malloc_after_each_pass(tmp_path, monkeypatch):
    """glibc keeps what a request freed in that thread's arena; the app hands it back once a minute."""
    trimmed = threading.Event()
    monkeypatch.setattr(studio_module, "trim_memory", trimmed.set)
    stop = sweep_every(tmp_path, keep_seconds=60, every_seconds=0.01)
    try:
        assert trimmed.wait(10)  # polled, not timed: at most 10 s on a busy machine
    finally:
        stop.set()


ARENAS = """
import ctypes, sys, threading
from hummingface.studio import limit_malloc_arenas
if sys.argv[1] == "limit":
    assert limit_malloc_arenas(2)
started = threading.Barrier(9)
def request():  # a Gradio worker thread: allocates with malloc (not pymalloc), still alive when counted
    kept = [bytearray(50_000) for _ in range(4)]
    started.wait()
    started.wait()
threads = [threading.Thread(target=request) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" paragraph per arena, on stderr
started.wait()
"""


@pytest.mark.skipif(studio_module._glibc() is None, reason="glibc only")
@pytest.mark.parametrize("mode", ["limit", "default"])
def test_limit_malloc_arenas_keeps_eight_threads_in_two_arenas(mode):
    """Eight live threads make eight more arenas by default (each grows to a request's peak: the soak's climbing
    resident memory); after limit_malloc_arenas(2) they share two. A fresh process: the limit holds for good."""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    stats = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, env=env,
                           check=True, cwd=PRESET_DIR.parent.parent).stderr
    arenas = sum(line.startswith("Arena ") for line in stats.splitlines())
    assert arenas == 2 if mode == "limit" else arenas > 2


def test_limit_malloc_arenas_leaves_an_explicit_setting_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert studio_module.limit_malloc_arenas(2) is False


def test_upsample_refuses_garbage(studio, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        studio.upsample(empty, "sbr", tmp_path)


def test_a_click_on_a_point_picks_that_point(studio):
    picture, view = studio.explore_map("cvae", 1, 2)
    assert picture.shape == (480, 640, 3)
    coords = studio._coordinates("cvae", 1, 2)
    for index in (0, 17, 40):
        found = studio.explore("cvae", 1, 2, view.to_pixel(*coords[index]))
        assert found.index == index and found.note_id in found.labels
        assert found.reconstruction[1].shape == (176400,)


def test_other_axes_and_bad_axes(studio):
    picture, _ = studio.explore_map("vae", 2, 3)
    assert picture.shape == (480, 640, 3)
    with pytest.raises(UserError, match="not on offer"):
        studio.explore_map("vae", 1, 99)


def test_original_note_from_the_corpus_folder(tiny_weights, tmp_path):
    studio = Studio.load(str(tiny_weights), "cpu")
    note_id = studio.timbres["cvae"].latent.note_ids[0]
    studio.notes_dir = tmp_path
    audio = np.sin(np.linspace(0, 2000, 64000)).astype(np.float32) * 0.3
    (tmp_path / "nsynth-valid" / "audio").mkdir(parents=True)
    sf.write(tmp_path / "nsynth-valid" / "audio" / f"{note_id}.wav", audio, 16000)
    coords = studio._coordinates("cvae", 1, 2)
    _, view = studio.explore_map("cvae", 1, 2)
    found = studio.explore("cvae", 1, 2, view.to_pixel(*coords[0]))
    assert found.original is not None and "from" in found.labels
    assert np.allclose(found.original[1] / 32767, audio, atol=1e-3)
    # The map's latent is refined to the original it found, so "Send to Designer" plays what was heard.
    timbre = studio.timbres["cvae"]
    assert torch.allclose(found.latent, timbre.fit(audio, 16000, found.pitch, listen_steps=0), atol=1e-3)
    assert not torch.allclose(found.latent, timbre.latent.point_latents[0])


def test_original_is_rendered_at_the_models_rate(tiny_weights, tmp_path):
    # A 16-kHz corpus file would be heard band-limited beside the 44.1-kHz reconstruction: FluidSynth (real,
    # FluidR3) renders the note again at the model's rate; a 44.1-kHz corpus file is read as it is.
    from hummingface.data.notes import NoteRenderConfig, plan_instruments
    from hummingface.data.synth import FLUIDR3_GM

    studio = Studio.load(str(tiny_weights), "cpu")
    space = studio.timbres["cvae"].latent
    space.note_ids[0] = plan_instruments(NoteRenderConfig(soundfont=FLUIDR3_GM, out=tmp_path))[0].name + "-060-100"
    studio.notes_dir = tmp_path
    folder = tmp_path / "nsynth-valid" / "audio"
    folder.mkdir(parents=True)
    pixel = studio.explore_map("cvae", 1, 2)[1].to_pixel(*studio._coordinates("cvae", 1, 2)[0])
    sf.write(folder / f"{space.note_ids[0]}.wav", np.full(64000, 0.1, np.float32), 16000)
    found = studio.explore("cvae", 1, 2, pixel)
    rate, audio = found.original
    assert rate == 44100 and "re-rendered with FluidSynth at 44.1 kHz" in found.labels
    assert np.abs(audio).max() > 1000  # the instrument, not the constant corpus file
    sf.write(folder / f"{space.note_ids[0]}.wav", np.full(176400, 0.1, np.float32), 44100)
    found = studio.explore("cvae", 1, 2, pixel)
    assert found.original[0] == 44100 and "from" in found.labels


def test_a_second_click_reuses_the_fitted_latent(tiny_weights, tmp_path, monkeypatch):
    studio = Studio.load(str(tiny_weights), "cpu")
    note_id = studio.timbres["cvae"].latent.note_ids[0]
    studio.notes_dir = tmp_path
    (tmp_path / "nsynth-valid" / "audio").mkdir(parents=True)
    sf.write(tmp_path / "nsynth-valid" / "audio" / f"{note_id}.wav", np.zeros(64000, np.float32) + 0.1, 16000)
    timbre = studio.timbres["cvae"]
    fits = []
    fit = timbre.fit
    monkeypatch.setattr(timbre, "fit", lambda *args, **kwargs: fits.append(args) or fit(*args, **kwargs))
    pixel = studio.explore_map("cvae", 1, 2)[1].to_pixel(*studio._coordinates("cvae", 1, 2)[0])
    first, second = studio.explore("cvae", 1, 2, pixel), studio.explore("cvae", 1, 2, pixel)
    assert len(fits) == 1 and torch.equal(first.latent, second.latent)


def test_fidelity_picture(studio):
    picture = studio.fidelity("cvae")
    assert picture.ndim == 3 and picture.shape[2] == 3
