"""The Gradio app over HTTP: every endpoint with its defaults through gradio_client, and a garbage upload that is
refused while the app keeps answering. Tiny untrained models; the app runs in this process on 127.0.0.1."""

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "pop-0011-01-8k.flac"
INSTRUMENT_ENDPOINTS = {"/export_instrument", "/export_note_instrument", "/render_midi", "/render_note_midi"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_weights):
    import app
    from hummingface.studio import Studio

    demo = app.build_app(Studio.load(str(tiny_weights), "cpu"))
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
        max_file_size=app.MAX_FILE_SIZE,
    )
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    from gradio_client import Client

    return Client(app_url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def test_the_four_endpoints_are_named(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(endpoints) == {"/design", "/generate_note", "/upsample", "/explore", *INSTRUMENT_ENDPOINTS}


def test_design_with_its_defaults(client):
    audio, picture = client.predict(api_name="/design")
    assert sf.info(audio).samplerate == 44100 and sf.info(audio).frames == 176400
    assert Path(picture).stat().st_size > 0


def test_design_with_sliders(client):
    first, _ = client.predict("cvae", 60, *([2.0] + [0.0] * 15), api_name="/design")
    second, _ = client.predict("cvae", 60, *([-2.0] + [0.0] * 15), api_name="/design")
    assert sf.read(first)[0].tolist() != sf.read(second)[0].tolist()


def test_design_with_vibrato_after_the_sliders(client):
    """The vibrato's depth and speed come last; left out, the note has none."""
    from hummingface.vibrato import measure_vibrato

    plain, _ = client.predict("cvae", 60, *([0.0] * 16), api_name="/design")
    swinging, _ = client.predict("cvae", 60, *([0.0] * 16), 40, 5.0, api_name="/design")
    assert measure_vibrato(sf.read(plain)[0], 44100, 60).depth_cents == 0.0
    assert measure_vibrato(sf.read(swinging)[0], 44100, 60).depth_cents > 0.0


def test_generate_note_with_its_defaults(client):
    audio, _ = client.predict(api_name="/generate_note")
    assert sf.info(audio).samplerate == 44100 and sf.info(audio).frames == 176400


def test_upsample_one_file(client):
    from gradio_client import handle_file

    audio, written, _, note = client.predict(handle_file(str(EXAMPLE)), api_name="/upsample")
    assert sf.info(audio).samplerate == 44100 and sf.info(audio).channels == 2
    assert sf.info(written).samplerate == 44100 and "44100 Hz" in note


def test_explore_with_its_defaults(client):
    _, labels, _, reconstruction = client.predict(api_name="/explore")
    assert "pitch" in labels and sf.info(reconstruction).frames == 176400


def test_garbage_upload_is_refused_and_the_app_keeps_answering(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    junk = tmp_path / "song.wav"
    junk.write_bytes(b"\x00garbage, not a WAV" * 50)
    with pytest.raises(AppError, match="not an audio file"):
        client.predict(handle_file(str(junk)), "sbr", api_name="/upsample")
    audio, _ = client.predict(api_name="/design")
    assert sf.info(audio).frames == 176400


def test_readme_front_matter_describes_the_space():
    import gradio
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(ROOT / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == gradio.__version__
    assert (ROOT / card.data.app_file).is_file()
    assert card.data.python_version


def test_app_sets_offline_defaults_without_overriding_the_user(monkeypatch):
    import importlib

    import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    importlib.reload(app)
    assert os.environ["HF_HUB_OFFLINE"] == "0" and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_upsample_writes_only_where_it_is_told(tiny_weights, tmp_path, monkeypatch):
    import tempfile

    from hummingface.studio import Studio

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where a stray mkdtemp/NamedTemporaryFile would land
    studio = Studio.load(str(tiny_weights), "cpu")
    target, _, _ = studio.upsample(EXAMPLE, "sbr", tmp_path / "out")
    assert target.parent.parent == tmp_path / "out" and list(scratch.iterdir()) == []


def test_the_app_cleans_gradios_cache(tiny_weights):
    import app
    from hummingface.studio import Studio

    demo = app.build_app(Studio.load(str(tiny_weights), "cpu"))
    frequency, age = demo.delete_cache
    assert 0 < frequency <= age <= 3600


def test_explorer_maps_are_lru_bounded(tiny_weights, monkeypatch):
    import hummingface.studio
    from hummingface.studio import Studio

    monkeypatch.setattr(hummingface.studio, "MAX_MAPS", 2)
    studio = Studio.load(str(tiny_weights), "cpu")
    for axes in [(1, 2), (2, 1), (1, 2), (2, 3)]:
        studio.explore_map("cvae", *axes)
    assert list(studio._maps) == [("cvae", 1, 2), ("cvae", 2, 3)]  # (2, 1) was the least recently used


def test_pictures_never_touch_pyplot():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from hummingface.plots import latent_map, fidelity_plot, spectrogram_image; "
        "latent_map(np.random.randn(20, 2), np.arange(20) % 11, 'x', 'y', 't'); "
        "fidelity_plot(np.linspace(0.5, 1, 8), 3, 't'); spectrogram_image(np.zeros(4000), 16000); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0


def test_uploads_longer_than_ten_minutes_are_refused(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(601 * 8000, dtype=np.int16), 8000, subtype="PCM_16")
    with pytest.raises(AppError, match="limit is 10"):
        client.predict(handle_file(str(long)), "sinc", api_name="/upsample")


# -- Instruments: export zips and MIDI renders over HTTP ------------------------------------------------------


def test_export_instrument_gives_a_zip_of_the_format(client):
    import zipfile

    zipped = client.predict("cvae", *([1.0] + [0.0] * 15), "sfz", 48, 60, 6, "Tiny",
                            api_name="/export_instrument")
    names = zipfile.ZipFile(zipped).namelist()
    assert "Tiny.sfz" in names and "Tiny_samples/Tiny_C3_v100.wav" in names and len(names) == 4


def test_export_note_instrument_has_velocity_layers(client):
    import zipfile

    zipped = client.predict("gan", "organ", 3, "sf2", 60, 66, 3, "", api_name="/export_note_instrument")
    assert zipfile.ZipFile(zipped).namelist() == ["gan_organ_s3.sf2"]


def write_midi(path):
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for pitch in (60, 64, 67):
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
    track.append(mido.Message("note_off", note=60, time=480))
    track.append(mido.Message("note_off", note=64, time=0))
    track.append(mido.Message("note_off", note=67, time=0))
    midi.save(path)
    return path


def test_render_midi_gives_44k1_stereo(client, tmp_path):
    from gradio_client import handle_file

    song = handle_file(str(write_midi(tmp_path / "chord.mid")))
    audio, wav, picture, note = client.predict("cvae", *([0.0] * 16), song, api_name="/render_midi")
    assert sf.info(wav).samplerate == 44100 and sf.info(wav).channels == 2 and "3 notes" in note
    assert sf.info(audio).samplerate == 44100 and Path(picture).stat().st_size > 0
    audio, wav, _, _ = client.predict("gan", "guitar", 1, song, api_name="/render_note_midi")
    assert sf.info(wav).channels == 2


def test_render_midi_refuses_a_file_that_is_not_midi(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    junk = tmp_path / "junk.mid"
    junk.write_text("not MIDI")
    with pytest.raises(AppError, match="not a standard MIDI file"):
        client.predict("cvae", *([0.0] * 16), handle_file(str(junk)), api_name="/render_midi")
