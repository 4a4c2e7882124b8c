"""Vibrato: measured from recordings (sine and none), refused when malformed, played by the vocoder, kept by a
reconstruction, looped over whole swings in an exported instrument, and set from the CLI and the app's API."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from hummingface.dsp import NoteSpectrogram
from hummingface.errors import UserError
from hummingface.instruments.loop import played, seam_click_db
from hummingface.instruments.multisample import MultisampleConfig, build_multisample
from hummingface.instruments.source import NoteSource
from hummingface.models.vocoder import Vocoder, VocoderConfig
from hummingface.vibrato import Vibrato, measure_vibrato

TINY = VocoderConfig(width=8, dilations=(1, 2), pitch_embedding=4, n_envelope=8, n_detail=4, n_noise=8)


def tone(pitch: int, sr: int, vibrato: Vibrato | None = None, seconds: float = 4.0, harmonics: int = 20
         ) -> np.ndarray:
    """A held harmonic note of MIDI ``pitch`` whose pitch swings as ``vibrato`` says."""
    t = np.arange(int(seconds * sr)) / sr
    cents = vibrato.cents(torch.from_numpy(t)).numpy() if vibrato is not None else 0.0
    hz = 440.0 * 2 ** ((pitch - 69) / 12 + cents / 1200)
    phase = 2 * np.pi * np.cumsum(hz) / sr
    partials = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    return (0.2 * partials * np.minimum(t / 0.02, 1)).astype(np.float32)


@pytest.mark.parametrize("sr", [16000, 44100])
@pytest.mark.parametrize(("pitch", "depth", "rate", "harmonics"), [
    (57, 25.0, 5.0, 20), (45, 10.0, 3.5, 5), (70, 60.0, 7.0, 60), (30, 20.0, 5.0, 20), (84, 20.0, 6.0, 3)])
def test_a_sine_vibrato_is_measured_at_any_rate(sr, pitch, depth, rate, harmonics):
    measured = measure_vibrato(tone(pitch, sr, Vibrato(depth, rate), harmonics=harmonics), sr, pitch)
    assert measured.depth_cents == pytest.approx(depth, rel=0.15)
    assert measured.rate_hz == pytest.approx(rate, abs=0.1)


@pytest.mark.parametrize("audio", [
    tone(57, 16000),  # steady
    np.random.default_rng(0).normal(0, 0.1, 64000).astype(np.float32),  # noise
    tone(57, 16000, Vibrato(30, 5), seconds=0.8),  # too short to hold a swing
    np.zeros(64000, np.float32),  # silence
    np.full(64000, np.nan, np.float32),  # broken
    np.zeros(0, np.float32),  # empty
])
def test_no_vibrato_is_measured_where_there_is_none(audio):
    assert measure_vibrato(audio, 16000, 57).depth_cents == 0.0


@pytest.mark.parametrize(("depth", "rate"), [(-1, 5), (101, 5), (10, 0), (10, 50), ("deep", 5), (None, 5),
                                             (float("nan"), 5), (10, [5])])
def test_malformed_vibrato_is_one_sentence(depth, rate):
    with pytest.raises(UserError) as caught:
        Vibrato(depth, rate)
    assert str(caught.value).count("\n") == 0 and str(caught.value).endswith(".")


def features_of(audio: np.ndarray, sr: int) -> torch.Tensor:
    from hummingface.models.timbre import as_note

    with torch.inference_mode():
        return NoteSpectrogram()(torch.from_numpy(as_note(audio, sr)))


def test_the_vocoder_plays_the_vibrato_it_is_given():
    """An untrained vocoder plays the features' partials: given a vibrato, their pitch swings by it."""
    model = Vocoder(TINY).eval()
    features = features_of(tone(57, 44100), 44100)
    steady = model.decode(features, 57)
    swinging = model.decode(features, 57, Vibrato(30.0, 5.0))
    assert measure_vibrato(steady, 44100, 57).depth_cents == 0.0
    measured = measure_vibrato(swinging, 44100, 57)
    assert measured.depth_cents == pytest.approx(30.0, rel=0.15) and measured.rate_hz == pytest.approx(5.0, abs=0.1)
    # The swing fades in: the attack starts on the pitch, so the first 30 ms are the steady note's.
    assert np.allclose(steady[:1300], swinging[:1300], atol=1e-3)


def test_a_reconstruction_swings_with_the_recording():
    from hummingface.models.autoencoder import CVAE, AutoencoderConfig
    from hummingface.models.timbre import Timbre

    torch.manual_seed(0)
    model = CVAE(AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4))
    timbre = Timbre(model, vocoder=Vocoder(TINY))
    recording = tone(57, 44100, Vibrato(40.0, 5.5))
    reconstruction = timbre.reconstruct(recording, 44100, pitch=57)
    latent, performance = timbre.fit(recording, 44100, pitch=57), timbre.performance(recording, 44100, 57)
    assert np.allclose(reconstruction, timbre.decode(latent, 57, performance=performance), atol=1e-5)
    measured = measure_vibrato(reconstruction, 44100, 57)
    assert measured.depth_cents == pytest.approx(40.0, rel=0.15) and measured.rate_hz == pytest.approx(5.5, abs=0.1)
    assert measure_vibrato(timbre.decode(latent, 57), 44100, 57).depth_cents == 0.0


class SwingingSource(NoteSource):
    """A held harmonic note with a 30-cent, 4.7-Hz vibrato at every pitch."""

    sample_rate = 16000
    velocity_layers = False
    vibrato = Vibrato(30.0, 4.7)

    def render(self, pitches, velocity=100):
        return np.stack([tone(p, self.sample_rate, self.vibrato, harmonics=8) * np.where(
            np.arange(64000) < 48000, 1.0, 0.0) for p in pitches])


def test_a_swinging_note_loops_over_whole_swings_without_a_click():
    """A loop of whole pitch periods but not whole swings would jump in pitch at every seam."""
    instrument = build_multisample(SwingingSource(), MultisampleConfig(pitches=(48, 72), step=6, name="Swing"))
    sr, period = instrument.sample_rate, SwingingSource.vibrato.period_s
    for sample in instrument.samples:
        swings = sample.loop.length / sr / period
        f0 = 440.0 * 2 ** ((sample.root - 69) / 12)
        assert abs(swings - round(swings)) * period <= 0.6 / f0  # whole swings, to within a pitch period
        audio = played(sample.audio, sample.loop, 8 * sr)
        seams = sample.loop.end + 1 + sample.loop.length * np.arange(int(5 * sr / sample.loop.length))
        assert seam_click_db(audio, seams, sr).max() <= 3.0


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hummingface", *args], capture_output=True, text=True)


@pytest.mark.parametrize("flags", [["--vibrato", "150"], ["--vibrato", "wide"], ["--vibrato-rate", "0"]])
def test_bad_vibrato_flags_are_one_sentence_and_exit_2(tiny_weights, tmp_path, flags):
    result = run_cli("generate", "--weights", str(tiny_weights), *flags, "-o", str(tmp_path / "x.wav"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_generate_and_export_play_a_vibrato(tiny_weights, tmp_path):
    import soundfile as sf

    for model in ("cvae", "gan"):
        plain, swinging = tmp_path / f"{model}-plain.wav", tmp_path / f"{model}-swing.wav"
        for path, flags in ((plain, []), (swinging, ["--vibrato", "40", "--vibrato-rate", "6"])):
            result = run_cli("generate", "--model", model, "--weights", str(tiny_weights), "--pitch", "60", *flags,
                             "--family", "keyboard", "-o", str(path), "--device", "cpu")
            assert result.returncode == 0, result.stderr
        assert not np.allclose(sf.read(plain)[0], sf.read(swinging)[0], atol=1e-3)
    result = run_cli("export", "--model", "cvae", "--weights", str(tiny_weights), "--pitches", "60-60", "--format",
                     "wav", "--vibrato", "40", "-o", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
