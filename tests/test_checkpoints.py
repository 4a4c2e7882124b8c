"""What ships: every checkpoint in ``checkpoints/`` loads strictly with today's code and passes a coarse check.

The checks are loose on purpose (a model that regressed to noise or silence fails them, a retrained one that is
a little worse does not): a few seconds each on one CPU thread. A missing checkpoint fails: it ships.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from hummingface.audio import read_audio, resample
from hummingface.data.gm import FAMILIES
from hummingface.dsp import NoteSpectrogram
from hummingface.hub import model_class
from hummingface.latent import LatentSpace
from hummingface.metrics import lsd_db, lsd_spectral
from hummingface.models.autoencoder import MODELS as AUTOENCODERS
from hummingface.models.family_classifier import FamilyClassifier
from hummingface.models.generator import MODELS as GENERATORS
from hummingface.models.generator import NoteGenerator
from hummingface.models.timbre import LATENT_FILE, Timbre, as_note, estimate_pitch, note_pitch
from hummingface.models.upsampler import Upsampler
from hummingface.models.vocoder import Vocoder
from hummingface.train.cli import _classes

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
SHIPPED = ("ae", "vae", "mog-vae", "cvae", "gan", "cdecoder", "upsampler", "family-classifier", "vocoder")
PRESETS = sorted((ROOT / "assets" / "presets").glob("*.flac"))
MEAN_SPECTRUM_LSD = 23.0  # dB: a dataset-mean spectrum's score (docs/metrics.md); a working model does far better


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_checkpoint_folder_is_known():
    assert sorted(p.name for p in CHECKPOINTS.iterdir() if p.is_dir()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_loads_strictly_with_its_train_config(name):
    folder = CHECKPOINTS / name
    registry = {**AUTOENCODERS, **GENERATORS, "upsampler": Upsampler, "family-classifier": FamilyClassifier,
                "vocoder": Vocoder}
    model = model_class(folder, registry).from_folder(folder)  # strict: every key present, none extra
    assert sum(p.numel() for p in model.parameters()) > 0
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    if (folder / "train_config.json").is_file():  # the run's recipe reads with today's engine config
        config_class = _classes(name)[0]
        assert config_class.load(folder).seed >= 0
    if name in AUTOENCODERS:
        space = LatentSpace.load(folder / LATENT_FILE)
        assert space.n_sliders >= 1 and len(space.note_ids) == len(space.points) > 100


@pytest.mark.parametrize("name", ["ae", "vae", "mog-vae", "cvae"])
def test_timbre_model_reconstructs_presets(name):
    """Three presets through encode/decode (at 44.1 kHz, through the shipped vocoder) score well under a
    dataset-mean spectrum's LSD."""
    model = Timbre.load(name, device="cpu")
    assert model.sample_rate == 44100
    for path in PRESETS[:3]:
        note = as_note(*read_audio(path, mono=True))
        pitch = note_pitch(note)
        decoded = resample(model.decode(model.encode(note, 16000, pitch=pitch), pitch=pitch), 44100, 16000)
        lsd = float(lsd_db(torch.from_numpy(note)[None], torch.from_numpy(decoded)[None]).mean())
        assert lsd < MEAN_SPECTRUM_LSD * 0.6, (path.stem, lsd)


def test_vocoder_plays_true_spectrograms_in_tune_and_above_8_khz(real_notes):
    """FluidR3 piano, nylon guitar, trumpet and flute: their own 16-kHz features through the shipped vocoder
    come out at their pitch, close to the 16-kHz originals below 7 kHz, with a top octave the features lack."""
    vocoder = Vocoder.from_folder(CHECKPOINTS / "vocoder", device="cpu")
    features = NoteSpectrogram()(torch.from_numpy(real_notes))
    pitches = [60, 52, 67, 72]  # the notes conftest renders
    audio = vocoder.decode(features, torch.tensor(pitches, dtype=torch.float32))
    for note, wide, pitch in zip(real_notes, audio, pitches, strict=True):
        estimate = estimate_pitch(wide, 44100)
        assert estimate is not None and abs(estimate - pitch) <= 0.5
        lsd = float(lsd_spectral(torch.from_numpy(note)[None], torch.from_numpy(resample(wide, 44100, 16000))[None],
                                 sample_rate=16000, max_hz=7000))
        assert lsd < 2.0, lsd  # bels
    spectrum = np.abs(np.fft.rfft(audio[2]))  # the trumpet: bright, so its partials go on above 8 kHz
    hz = np.fft.rfftfreq(audio.shape[-1], 1 / 44100)
    assert spectrum[(hz > 9000) & (hz < 16000)].max() > 1e-3 * spectrum.max()


@pytest.mark.parametrize("name", ["gan", "cdecoder"])
def test_generator_notes_are_in_tune(name):
    model = NoteGenerator.load(name, device="cpu")  # with the shipped vocoder: 44.1 kHz
    cells = [("keyboard", 48), ("brass", 60), ("string", 72)]
    in_tune = 0
    for family, pitch in cells:
        estimate = estimate_pitch(model.generate(pitch, family, 100, seed=0), model.sample_rate)
        in_tune += estimate is not None and abs(estimate - pitch) <= 0.5
    assert in_tune >= 2, f"{in_tune} of {len(cells)} cells in tune"


def test_family_classifier_names_training_instruments(real_notes):
    """FluidR3 piano, nylon guitar, trumpet and flute (instruments it trained on): most named right."""
    model = FamilyClassifier.from_folder(CHECKPOINTS / "family-classifier", device="cpu")
    with torch.inference_mode():
        guesses = model(NoteSpectrogram(model.config.spectrogram)(torch.from_numpy(real_notes))).argmax(-1)
    expected = [FAMILIES.index(family) for family in ("keyboard", "guitar", "brass", "flute")]
    assert int((guesses == torch.tensor(expected)).sum()) >= 3, guesses.tolist()


def test_upsampler_keeps_the_low_band_and_adds_a_high_one():
    from hummingface.upsampling import upsample

    audio, sr = read_audio(PRESETS[3], mono=True)  # a 16-kHz note: narrowed to 8 kHz inside upsample()
    model = Upsampler.from_folder(CHECKPOINTS / "upsampler", device="cpu")
    wide, rate = upsample(audio, sr, mode="model", device="cpu", model=model)
    sinc, _ = upsample(audio, sr, mode="sinc", device="cpu")
    assert rate == 44100 and wide.shape == sinc.shape
    wide_t, sinc_t = torch.from_numpy(wide), torch.from_numpy(sinc)
    assert float(lsd_spectral(sinc_t, wide_t, max_hz=3800).mean()) < 0.1  # bels: below 3.8 kHz, as sinc left it
    high = np.abs(np.fft.rfft(wide[0]))[int(4500 * wide.shape[-1] / rate) :]
    assert high.max() > 10 * np.abs(np.fft.rfft(sinc[0]))[int(4500 * sinc.shape[-1] / rate) :].max()
