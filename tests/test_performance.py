"""A recording's performance (hummingface.performance): its pitch curve, any shape, and its loudness, measured and
played back by a reconstruction; flat where there is no pitch to follow."""

import math

import numpy as np
import pytest
import torch

from hummingface.dsp import NoteSpectrogram
from hummingface.models.autoencoder import CVAE, AutoencoderConfig
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import Vocoder, VocoderConfig
from hummingface.performance import Performance, measure_performance
from hummingface.vibrato import Vibrato, measure_vibrato, pitch_track

TINY_VOCODER = VocoderConfig(width=8, dilations=(1, 2), pitch_embedding=4, n_envelope=8, n_detail=4, n_noise=8)


def wandering(t: np.ndarray) -> np.ndarray:
    """An irregular pitch curve in cents: a slow drift and two unrelated wobbles, like a voice's, no sine."""
    return 12 * np.sin(2 * np.pi * 0.7 * t) + 6 * np.sin(2 * np.pi * 2.9 * t + 1.0) + 5 * t


def played(pitch: int, sr: int, cents: np.ndarray) -> np.ndarray:
    """A harmonic note of MIDI ``pitch`` whose pitch follows ``cents`` (one value per sample)."""
    hz = 440.0 * 2 ** ((pitch - 69) / 12 + cents / 1200)
    phase = 2 * np.pi * np.cumsum(hz) / sr
    envelope = np.minimum(np.arange(len(cents)) / (0.02 * sr), 1)
    return (0.1 * envelope * sum(np.sin(k * phase) / k for k in range(1, 13))).astype(np.float32)


def test_the_pitch_curve_is_measured_whatever_its_shape():
    t = np.arange(64000) / 16000
    performance = measure_performance(played(60, 16000, wandering(t)), NoteSpectrogram(), 60)
    assert performance.bend_cents.shape == performance.loudness_db.shape == (251,)
    frames = np.arange(251) / 62.5
    error = performance.bend_cents.numpy()[10:240] - wandering(frames)[10:240]
    assert np.sqrt(np.mean(error**2)) < 1.5  # cents, against a 30-cent range, its tuning (+10 cents median) kept
    # Read at any time, held flat past the ends.
    assert float(performance.cents(torch.tensor([1.0]))) == pytest.approx(float(performance.bend_cents[62:64].mean()),
                                                                          abs=0.5)
    assert float(performance.cents(torch.tensor([9.0]))) == pytest.approx(float(performance.bend_cents[-1]))


@pytest.mark.parametrize("kind", ["silence", "noise", "short"])
def test_nothing_to_follow_is_a_flat_curve(kind):
    rng = np.random.default_rng(0)
    note = {"silence": np.zeros(64000), "noise": 0.1 * rng.standard_normal(64000),
            "short": np.pad(played(60, 16000, np.zeros(800)), (0, 63200))}[kind].astype(np.float32)
    performance = measure_performance(note, NoteSpectrogram(), 60)
    assert torch.isfinite(performance.loudness_db).all()
    assert float(performance.bend_cents.abs().max()) == 0.0


def test_a_reconstruction_follows_an_irregular_pitch_curve():
    """What a fitted sine cannot do: the recording's wander, no vibrato measured in it, comes back."""
    torch.manual_seed(0)
    timbre = Timbre(CVAE(AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)),
                    vocoder=Vocoder(TINY_VOCODER))
    t = np.arange(4 * 44100) / 44100
    recording = played(55, 44100, wandering(t))
    reconstruction = timbre.reconstruct(recording, 44100, pitch=55)
    times, real = pitch_track(recording, 44100, 55)
    reconstructed = np.interp(times, *pitch_track(reconstruction, 44100, 55))
    inside = (times > 0.3) & (times < 3.4)
    error = (reconstructed - real)[inside]
    assert np.ptp(real[inside]) > 25  # cents the recording moves
    assert np.sqrt(np.mean((error - np.median(error)) ** 2)) < 3.0
    # The latent with a sine fitted to the same recording moves far less like it.
    sine = timbre.decode(timbre.encode(recording, 44100, pitch=55), 55, measure_vibrato(recording, 44100, 55))
    error = (np.interp(times, *pitch_track(sine, 44100, 55)) - real)[inside]
    assert np.sqrt(np.mean((error - np.median(error)) ** 2)) > 6.0


def test_performance_is_a_pitch_bend_for_the_vocoder():
    bend = Performance(torch.linspace(-50, 50, 251), torch.zeros(251), 62.5)
    vocoder = Vocoder(TINY_VOCODER).eval()
    features = NoteSpectrogram()(torch.from_numpy(played(57, 16000, np.zeros(64000))))
    audio = vocoder.decode(features, 57, bend)
    times, cents = pitch_track(audio, 44100, 57)
    slope = np.polyfit(times[(times > 0.5) & (times < 3.0)], cents[(times > 0.5) & (times < 3.0)], 1)[0]
    assert slope == pytest.approx(100 / 4.0, rel=0.1)  # 100 cents over the 4 s


def test_a_recordings_pitch_is_played_instead_of_the_guessed_detune():
    """A Performance holds the tuning it measured; a vibrato swings around the vocoder's own guess of a detune."""
    vocoder = Vocoder(TINY_VOCODER).eval()
    deviation = TINY_VOCODER.n_envelope + TINY_VOCODER.n_detail  # the output channel of the f0 deviation
    with torch.no_grad():
        vocoder.out.bias[deviation] = math.atanh(0.5 / TINY_VOCODER.max_deviation)  # a guessed +50-cent detune
    features = NoteSpectrogram()(torch.from_numpy(played(57, 16000, np.zeros(64000))))
    recorded = Performance(torch.full((251,), -20.0), torch.zeros(251), 62.5)
    for bend, expected in ((recorded, -20.0), (Vibrato(), 50.0)):
        times, cents = pitch_track(vocoder.decode(features, 57, bend), 44100, 57)
        assert np.median(cents[(times > 0.5) & (times < 3.0)]) == pytest.approx(expected, abs=3.0)
