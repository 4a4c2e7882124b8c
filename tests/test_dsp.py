"""dsp.py against librosa and closed forms, and phase reconstruction on analytic signals and real notes."""

import math

import librosa
import numpy as np
import pytest
import torch

from hummingface.dsp import MAX_GAIN_DB, STFT, GriffinLim, LogCompression, MelScale, NoteSpectrogram, PhaseGradient
from hummingface.metrics import lsd_db

SR = 16000


def signals() -> dict[str, torch.Tensor]:
    t = torch.arange(64000) / SR
    clicks = torch.zeros(64000)
    clicks[1000::4000] = 1.0
    return {
        "sine": 0.5 * torch.sin(2 * math.pi * 440 * t),
        "chirp": 0.5 * torch.sin(2 * math.pi * (100 * t + 300 * t**2)),  # 100 Hz -> 2.5 kHz
        "clicks": clicks,
    }


@pytest.mark.parametrize("name", ["sine", "chirp", "clicks"])
def test_stft_matches_librosa(name):
    x = signals()[name]
    ours = STFT(1024, 256)(x)
    theirs = librosa.stft(x.numpy(), n_fft=1024, hop_length=256, window="hann", center=True)
    assert ours.shape == theirs.shape == (513, 251)
    torch.testing.assert_close(ours, torch.from_numpy(theirs), atol=1e-3, rtol=1e-4)


def test_stft_of_a_bin_centred_sine():
    """A sine on bin k gives |X| = A * sum(window) / 2 there, and nothing far from it."""
    k, amplitude = 40, 0.5
    t = torch.arange(64000) / SR
    spec = STFT(1024, 256)(amplitude * torch.cos(2 * math.pi * k * SR / 1024 * t)).abs()
    middle = spec[:, 10:-10]
    torch.testing.assert_close(middle[k], torch.full_like(middle[k], amplitude * 512 / 2), rtol=1e-3, atol=0.0)
    assert middle[k + 3 :].max() < 1e-3 * middle[k].min()


def test_istft_inverts_stft():
    stft = STFT(1024, 256)
    for x in signals().values():
        torch.testing.assert_close(stft.inverse(stft(x), length=x.shape[-1]), x, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:The length of signal is shorter")  # torch.istft, on the padded case
@pytest.mark.parametrize(("n_fft", "hop", "frames", "length"), [
    (1024, 256, 251, 64000), (2048, 512, 345, 176400), (2048, 512, 40, None), (512, 128, 9, 2000), (512, 96, 30, None)])
def test_inverse_is_torch_istft_of_any_spectrum(n_fft, hop, frames, length):
    """Any complex spectrum, not only a consistent one: the vocoder's noise is shaped in the STFT domain."""
    stft = STFT(n_fft, hop)
    spec = torch.randn(2, n_fft // 2 + 1, frames, dtype=torch.complex64, requires_grad=True)
    expected = torch.istft(spec.detach(), n_fft, hop, window=stft.window, center=True, length=length)
    audio = stft.inverse(spec, length)
    torch.testing.assert_close(audio, expected, atol=1e-6, rtol=1e-5)
    audio.square().sum().backward()  # the vocoder trains through it
    assert spec.grad is not None and spec.grad.abs().sum() > 0


def test_batched_shapes_and_float32():
    stft = STFT(512, 128)
    x = torch.randn(2, 3, 8000)
    spec = stft(x)
    assert spec.shape == (2, 3, 257, 63) and spec.dtype == torch.complex64
    assert stft.inverse(spec, 8000).shape == (2, 3, 8000)
    features = NoteSpectrogram()(torch.randn(2, 64000))
    assert features.shape == (2, 128, 251) and features.dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in NoteSpectrogram().buffers() if b.is_floating_point())


def test_mel_matches_librosa():
    x = signals()["chirp"]
    ours = MelScale(SR, 1024, 128)(STFT(1024, 256)(x).abs())
    theirs = librosa.feature.melspectrogram(y=x.numpy(), sr=SR, n_fft=1024, hop_length=256, n_mels=128, power=1.0)
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=1e-3, atol=1e-4)


def test_mel_inverse_recovers_a_smooth_spectrum():
    mel = MelScale(SR, 1024, 128)
    magnitude = torch.linspace(1.0, 0.1, 513)[:, None].repeat(1, 4)
    recovered = mel.inverse(mel(magnitude))
    assert recovered.min() >= 0
    # Away from DC (low mel bands are narrower than a bin) and Nyquist (past the last band's centre)
    # a linear ramp is in the filters' span and comes back within 2 %.
    assert ((recovered[20:480] - magnitude[20:480]).abs() / magnitude[20:480]).max() < 0.02


def test_log_compression_round_trip_and_range():
    log = LogCompression()
    magnitude = torch.tensor([1e-7, 1e-5, 1.0, 300.0])
    features = log(magnitude)
    assert features[0] == features[1]  # floored
    assert -1.05 < features.min() and features.max() < 1.05
    torch.testing.assert_close(log.inverse(features)[1:], magnitude[1:], rtol=1e-5, atol=0)


def test_loudness_is_read_and_set_frame_by_frame():
    spectrogram = NoteSpectrogram()
    note = signals()["chirp"]
    loud, quiet = spectrogram(note), spectrogram(0.25 * note)
    assert spectrogram.loudness_db(loud).shape == (251,)
    # A quarter of the amplitude is 12.04 dB less energy, in every frame.
    difference = spectrogram.loudness_db(loud) - spectrogram.loudness_db(quiet)
    torch.testing.assert_close(difference, torch.full((251,), 12.04), atol=0.05, rtol=0)
    raised = spectrogram.with_loudness(quiet, spectrogram.loudness_db(loud))
    above_floor = quiet > quiet.min() + 0.01  # the floor (-100 dB) does not move with the gain
    torch.testing.assert_close(raised[above_floor], loud[above_floor], atol=2e-3, rtol=0)  # a gain: the same shape
    # Any curve, batched; down by any amount, up by at most MAX_GAIN_DB.
    target = torch.stack([spectrogram.loudness_db(loud) + torch.linspace(-60, 10, 251),
                          spectrogram.loudness_db(quiet) + 50.0])
    played = spectrogram.loudness_db(spectrogram.with_loudness(torch.stack([loud, quiet]), target))
    torch.testing.assert_close(played[0], target[0], atol=1e-3, rtol=0)
    torch.testing.assert_close(played[1], target[1] - 50.0 + MAX_GAIN_DB, atol=1e-3, rtol=0)


def test_phase_gradient_finds_the_instantaneous_frequency():
    """On a steady sine the rebuilt phase advances by 2 pi f hop / sr per frame at the peak bin."""
    t = torch.arange(64000) / SR
    stft = STFT(1024, 256)
    phase = PhaseGradient(stft).phase(stft(0.5 * torch.sin(2 * math.pi * 440 * t)).abs())
    advance = torch.remainder(phase[28, 11:240] - phase[28, 10:239], 2 * math.pi)
    expected = (2 * math.pi * 440 * 256 / SR) % (2 * math.pi)
    assert (advance - expected).abs().max() < 0.05


@pytest.mark.parametrize("name, limit", [("sine", 0.5), ("chirp", 1.0), ("clicks", 12.0)])
def test_phase_reconstruction_of_analytic_signals(name, limit):
    x = signals()[name]
    stft = STFT(1024, 256)
    rebuilt = PhaseGradient(stft)(stft(x).abs(), length=x.shape[-1])
    assert rebuilt.shape == x.shape
    assert lsd_db(x, rebuilt) < limit


def test_phase_gradient_beats_griffin_lim_on_real_notes(real_notes):
    notes = torch.from_numpy(real_notes)
    stft = STFT(1024, 256)
    magnitude = stft(notes).abs()
    ours = lsd_db(notes, PhaseGradient(stft)(magnitude, 64000)).mean()
    griffin_lim = lsd_db(notes, GriffinLim(stft, 32)(magnitude, 64000, generator=torch.Generator().manual_seed(0)))
    assert ours < griffin_lim.mean()
    # Both are far better than a random phase: the test would catch a broken reconstruction.
    random_phase = GriffinLim(stft, 0)(magnitude, 64000, generator=torch.Generator().manual_seed(0))
    assert ours < 0.5 * lsd_db(notes, random_phase).mean()


def test_note_spectrogram_round_trip(real_notes):
    spectrogram = NoteSpectrogram()
    notes = torch.from_numpy(real_notes)
    rebuilt = spectrogram.inverse(spectrogram(notes), length=64000)
    assert rebuilt.shape == notes.shape
    assert lsd_db(notes, rebuilt).mean() < 9.0  # the mel bands lose detail; ~7 dB is the GL baseline


def test_lsd_db_is_zero_for_identical_and_large_for_noise():
    x = signals()["sine"]
    assert lsd_db(x, x) == 0
    assert lsd_db(x, torch.randn(64000) * 0.1) > 20


def test_lsd_db_counts_only_the_bins_it_is_told_to():
    """A note right below 4 kHz and wrong above: counting only the low bins leaves little (the high partials'
    window leakage), counting only the high ones nearly the whole distance."""
    t = torch.arange(64000) / 16000
    low = torch.sin(2 * math.pi * 440 * t)
    reference = low + 0.3 * torch.sin(2 * math.pi * 5000 * t)
    estimate = low + 0.03 * torch.sin(2 * math.pi * 6000 * t)
    hz = torch.arange(513) * 16000 / 1024
    full = lsd_db(reference, estimate)
    below, above = (lsd_db(reference, estimate, counted=mask) for mask in (hz < 4000, hz >= 4000))
    assert below < 0.15 * full and above > 0.95 * full and full > 3


def test_fft_resampling_keeps_what_lies_below_the_new_nyquist_and_passes_gradients():
    from hummingface.audio import resample
    from hummingface.dsp import resample_fft

    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 11000 * t)  # 11 kHz is above 16 kHz's Nyquist
    audio = torch.tensor(tone, dtype=torch.float32, requires_grad=True)
    low = resample_fft(audio, 16000)
    expected = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert low.shape == (16000,) and np.abs(low.detach().numpy() - expected).max() < 1e-3
    assert np.abs(low.detach().numpy() - resample(tone, 44100, 16000))[200:-200].max() < 1e-2  # as soxr hears it
    (gradient,) = torch.autograd.grad(low.square().sum(), audio)
    assert torch.isfinite(gradient).all()
