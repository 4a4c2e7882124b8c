"""The 44.1-kHz path: corpora at any rate, rate-aware readers, the f0 tracker, the vocoder (shapes, its
oscillator's partials, one training step through the engine, strict save/load with the rate in its config) and
the note models playing through it (or at 16 kHz without it)."""

import json
import re

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from hummingface.__main__ import main
from hummingface.data.datasets import NSynthDataset
from hummingface.dsp import NoteSpectrogram
from hummingface.models.autoencoder import CVAE, VAE, AutoencoderConfig
from hummingface.models.generator import CDecoder, GeneratorConfig, NoteGenerator
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import NOISE_LEVEL, Vocoder, VocoderConfig
from hummingface.train.engine import train
from hummingface.train.vocoder import MultiResolutionSTFTLoss, VocoderTask, VocoderTrainConfig, track_f0, track_window

TINY = VocoderConfig(width=8, dilations=(1, 2), pitch_embedding=4, n_envelope=8, n_detail=4, n_noise=8)
PITCHES = (36, 48, 60, 72)
FRAMES = 251


def tone(pitch: int, sr: int, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    partials = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 40) if h * f0 < sr / 2)
    return (0.2 * partials * np.exp(-t)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus44(tmp_path_factory):
    """Train and valid splits of four 4-s harmonic notes at 44.1 kHz, the rate recorded in examples.json."""
    root = tmp_path_factory.mktemp("corpus44")
    for split in ("train", "valid"):
        (root / f"nsynth-{split}" / "audio").mkdir(parents=True)
        examples = {}
        for i, pitch in enumerate(PITCHES):
            note_str = f"tone_synthetic_000-{pitch:03d}-100"
            sf.write(root / f"nsynth-{split}" / "audio" / f"{note_str}.wav", tone(pitch, 44100), 44100,
                     subtype="PCM_16")
            examples[note_str] = {
                "note_str": note_str, "pitch": pitch, "velocity": 100, "instrument": 0, "instrument_family": i,
                "instrument_source": 2, "qualities": [0] * 10, "sample_rate": 44100,
            }
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(examples))
    return root


@pytest.fixture(scope="module")
def tiny_cvae(tmp_path_factory):
    """An untrained tiny 16-kHz cvae checkpoint: the timbre model whose reconstructions the vocoder also hears."""
    folder = tmp_path_factory.mktemp("cvae")
    torch.manual_seed(0)
    CVAE(AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)).save_pretrained(folder)
    return folder


def features_of(audio: np.ndarray, sr: int) -> torch.Tensor:
    from hummingface.audio import resample

    return NoteSpectrogram()(torch.from_numpy(resample(audio, sr, 16000)))


def test_readers_keep_or_resample_the_corpus_rate(corpus44):
    native = NSynthDataset(corpus44, "valid", transform=lambda x: x, sample_rate=None)
    assert native.corpus_rate == 44100 and native[0][0].shape == (1, 176400)
    assert NSynthDataset(corpus44, "valid", transform=lambda x: x)[0][0].shape == (1, 64000)  # the models' 16 kHz
    features, _ = NSynthDataset(corpus44, "valid")[0]
    assert features.shape == (1, 128, 251)


@pytest.mark.parametrize("rate,seconds", [(44100, 4.0), (22050, 1.0), (48000, 0.5)])
def test_shapes_at_any_rate(rate, seconds):
    model = Vocoder(VocoderConfig(**{**TINY.__dict__, "sample_rate": rate, "note_seconds": seconds}))
    features = torch.randn(3, 128, FRAMES) * 0.3
    audio, deviation = model(features, torch.tensor([24, 60, 96]))
    assert audio.shape == (3, round(rate * seconds)) and torch.isfinite(audio).all()
    assert deviation.shape == (3, FRAMES) and deviation.abs().max() <= TINY.max_deviation
    model.eval()
    note = model.decode(features[0], pitch=60)
    assert note.shape == (round(rate * seconds),) and np.abs(note).max() <= 0.99 + 1e-6


def test_an_untrained_vocoder_already_plays_the_mel_partials_at_the_right_pitch():
    """Its output layer starts at zero, so the mel-derived envelope alone drives the oscillator: a 16-kHz tone's
    features come out with their partials at multiples of f0, and energy above 8 kHz the mel never held."""
    model = Vocoder(TINY).eval()
    audio = model.decode(features_of(tone(57, 44100), 44100), pitch=57)  # A3, 220 Hz
    spectrum = np.abs(np.fft.rfft(audio[: 44100] * np.hanning(44100)))
    hz = np.fft.rfftfreq(44100, 1 / 44100)
    peaks = hz[np.argsort(spectrum)[-5:]]
    assert np.allclose(peaks / 220.0, np.round(peaks / 220.0), atol=0.01)
    assert 220.0 in np.round(peaks)
    top = spectrum[(hz > 9000) & (hz < 20000)].max() / spectrum.max()
    assert 1e-4 < top  # the top octave is continued from the highest mel bands, not left empty


def test_decode_equalises_the_note_towards_the_features_it_plays():
    """The synthesiser's band levels are off (an untrained one's by far); the equaliser hears the note again as
    the models do and brings its bands below TRUSTED_HZ back to the features, keeping the note's length."""
    from hummingface.models.vocoder import TRUSTED_HZ

    model = Vocoder(TINY).eval()
    features = features_of(tone(45, 44100) + 0.01 * np.random.default_rng(0).standard_normal(176400), 44100)[None]
    trusted = torch.from_numpy(librosa.mel_frequencies(130, fmax=8000)[1:-1] < TRUSTED_HZ)

    def error(audio: torch.Tensor) -> float:
        return float((features_of(audio[0].numpy(), 44100) - features[0])[trusted].abs().mean())

    with torch.inference_mode():
        played = model(features, torch.tensor([45.0]))[0]
        equalised = model.equalise(played, features)
    assert equalised.shape == played.shape
    assert error(equalised) < 0.6 * error(played)


def test_the_equaliser_has_a_gradient_and_hears_as_at_inference():
    """Timbre.listen takes gradients through the equaliser, which then hears the note through an FFT resampler
    instead of soxr: the same note comes out, within a small fraction of a dB, and the gradient reaches the input."""
    model = Vocoder(TINY).eval()
    features = features_of(tone(45, 44100) + 0.01 * np.random.default_rng(0).standard_normal(176400), 44100)[None]
    with torch.inference_mode():
        played = model(features, torch.tensor([45.0]))[0]
        reference = model.equalise(played, features)
    audio = played.clone().requires_grad_(True)
    equalised = model.equalise(audio, features)
    difference_db = 20 * torch.log10((equalised - reference).detach().square().mean().sqrt() / reference.std())
    assert difference_db < -30
    (gradient,) = torch.autograd.grad(equalised.square().sum(), audio)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_decode_aims_the_equaliser_at_other_features_when_told():
    """Features with their upper bands 10 dB too quiet, decoded with ``aim`` at the right ones, read closer to
    the right ones than decoded alone: the equaliser follows ``aim``, the synthesiser the features played."""
    from hummingface.models.vocoder import TRUSTED_HZ

    model = Vocoder(TINY).eval()
    right = features_of(tone(45, 44100) + 0.01 * np.random.default_rng(0).standard_normal(176400), 44100)
    wrong = right.clone()
    wrong[60:] -= 10 * np.log(10) / 20 / model.log.scale  # 10 dB in the features' units
    trusted = torch.from_numpy(librosa.mel_frequencies(130, fmax=8000)[1:-1] < TRUSTED_HZ)

    def error(audio: np.ndarray) -> float:
        return float((features_of(audio, 44100) - right)[trusted].abs().mean())

    assert error(model.decode(wrong, 45, aim=right)) < 0.8 * error(model.decode(wrong, 45))


def test_noise_above_the_features_starts_from_a_high_notes_valleys_not_its_partial():
    # MIDI 96's partials (2.1 kHz apart) leave most bands of 4.3-6.5 kHz empty: an untrained vocoder's noise above
    # 6.5 kHz must start there, far under the partial the harmonics continue from (else it hisses to 22 kHz).
    model = Vocoder(TINY).eval()
    with torch.inference_mode():
        curves = model.control_curves(features_of(tone(96, 44100), 44100)[None], torch.tensor([96.0]))
    held = slice(20, 150)  # frames of the held note
    first_above = int((model.noise_above > 0).nonzero()[0])
    below_partial = curves["top"][0, held] + NOISE_LEVEL - curves["noise"][0, held, first_above]
    assert float(below_partial.min()) > np.log(10)  # nepers: more than 20 dB under it


def test_oscillator_puts_partials_at_multiples_of_f0_and_none_above_nyquist():
    model = Vocoder(TINY).eval()
    frames = 64
    f0 = torch.full((1, frames), 440.0)
    curves = {"log_mel": torch.zeros(1, frames, 128), "top": torch.zeros(1, frames),
              "envelope": torch.zeros(1, frames, TINY.n_envelope),
              "detail": torch.zeros(1, frames, TINY.n_detail)}  # a flat spectrum
    position = torch.linspace(0, frames - 1, TINY.samples)
    audio = model.harmonics(f0, curves, position)[0].numpy()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    hz = np.fft.rfftfreq(len(audio), 1 / TINY.sample_rate)
    peaks = hz[np.argsort(spectrum)[-5:]]
    assert np.allclose(peaks / 440.0, np.round(peaks / 440.0), atol=0.01)  # the strongest bins are harmonics
    band = spectrum[hz > 0.96 * TINY.sample_rate / 2].max() / spectrum.max()
    assert band < 1e-3  # harmonics above 0.95 x Nyquist are left out, so nothing folds back


@pytest.mark.parametrize("pitch,min_snr_db", [(24, 40.0), (48, 55.0)])
def test_wavetable_matches_additive_sines(pitch, min_snr_db):
    """The wavetable oscillator against a bank of exact sines (1/k amplitudes, every harmonic below 0.95 Nyquist)."""
    model = Vocoder(TINY)
    hz = 440.0 * 2 ** ((pitch - 69) / 12)
    k = np.arange(1, int(0.95 * TINY.sample_rate / 2 / hz) + 1)
    frames = 64
    amplitude = torch.from_numpy(1.0 / k).float().expand(1, frames, -1)
    position = torch.linspace(0, frames - 1, TINY.samples)
    out = model.wavetable(torch.full((1, frames), hz), amplitude, position)[0].double().numpy()
    n = np.arange(TINY.samples)
    exact = sum(np.sin(2 * np.pi * h * hz * n / TINY.sample_rate) / h for h in k)
    snr = 10 * np.log10((exact**2).sum() / ((out - exact) ** 2).sum())
    assert snr > min_snr_db


def test_an_excerpt_renders_what_the_whole_note_has_there():
    """Training renders excerpts: the same controls give the same spectrum there as the whole note does."""
    model = Vocoder(TINY).eval()
    features = features_of(tone(60, 44100), 44100)[None]
    pitch = torch.tensor([60.0])
    curves = model.control_curves(features, pitch)
    f0 = torch.full((1, FRAMES), 261.63)
    whole = model.render(curves, f0)[0, 44100:88200]
    excerpt = model.render(curves, f0, start=44100, length=44100)[0]
    assert excerpt.shape == (44100,)
    spectra = [torch.stft(x, 2048, 512, window=torch.hann_window(2048), return_complex=True).abs()[:, 4:-4]
               for x in (whole, excerpt)]  # the noise differs sample by sample, the levels must not
    ratio_db = 20 * torch.log10((spectra[0].sum(1) + 1e-6) / (spectra[1].sum(1) + 1e-6))
    loud = spectra[0].sum(1) > spectra[0].sum(1).max() * 1e-3
    assert ratio_db[loud].abs().median() < 1.0


def test_track_f0_finds_detune_and_vibrato():
    sr = 44100
    t = np.arange(4 * sr) / sr
    cents = 30 + 40 * np.sin(2 * np.pi * 5.5 * t)  # 30 cents sharp, +-40 cents of vibrato at 5.5 Hz
    hz = 220.0 * 2 ** (cents / 1200)
    phase = 2 * np.pi * np.cumsum(hz) / sr
    audio = sum(np.sin(k * phase) / k for k in range(1, 20)) * np.where(t < 3.5, 0.2, 0.0)
    f0, sounding = track_f0(torch.from_numpy(audio).float()[None], torch.tensor([57]), sr, 62.5, FRAMES)
    frames_t = np.arange(FRAMES) / 62.5
    truth = 220.0 * 2 ** ((30 + 40 * np.sin(2 * np.pi * 5.5 * frames_t)) / 1200)
    inside = (frames_t > 0.1) & (frames_t < 3.4)
    error_cents = 1200 * np.abs(np.log2(f0[0].numpy()[inside] / truth[inside]))
    assert np.median(error_cents) < 5 and np.percentile(error_cents, 95) < 15
    assert sounding[0, inside].all() and not sounding[0, frames_t > 3.6].any()


def test_track_f0_is_in_tune_on_low_notes():
    """A 2048-sample window cannot resolve MIDI 25-31's partials; it put such notes 80-100 cents flat."""
    sr = 44100
    t = np.arange(4 * sr) / sr
    assert [track_window(p, sr) for p in (57, 43, 40, 31, 25, 21)] == [2048, 2048, 4096, 4096, 8192, 8192]
    for pitch, detune in ((25, 10.0), (31, -20.0), (40, 30.0)):
        hz = 440.0 * 2 ** ((pitch - 69 + detune / 100) / 12)
        audio = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 40)) * 0.1
        f0, _ = track_f0(torch.from_numpy(audio).float()[None], torch.tensor([pitch]), sr, 62.5, FRAMES)
        cents = 1200 * np.log2(f0[0].numpy() / (440.0 * 2 ** ((pitch - 69) / 12)))
        assert abs(np.median(cents) - detune) < 3


def test_one_training_step_then_strict_save_load(corpus44, tiny_cvae, tmp_path):
    config = VocoderTrainConfig(data=str(corpus44), timbre=str(tiny_cvae), max_steps=1, batch_size=2, valid_notes=2)
    out = tmp_path / "vocoder"
    metrics = train(VocoderTask(config, TINY), out, progress=False)
    assert metrics["step"] == 1 and np.isfinite(metrics["train"]["stft"])
    assert np.isfinite(metrics["valid"]["lsd_db"]) and np.isfinite(metrics["valid"]["lsd_db_decoded"])
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == "vocoder" and saved["sample_rate"] == 44100
    assert saved["spectrogram"]["sample_rate"] == 16000 and saved["spectrogram"]["n_mels"] == 128
    model = Vocoder.from_folder(out)
    assert model.config == TINY
    features = torch.randn(128, FRAMES) * 0.3
    again = Vocoder.from_folder(out)
    assert np.array_equal(model.decode(features, 60), again.decode(features, 60))  # eval decodes are deterministic
    assert VocoderTrainConfig.load(out).timbre == str(tiny_cvae)
    resumed = train(VocoderTask(VocoderTrainConfig(**{**config.__dict__, "max_steps": 2}), TINY), out, resume=True,
                    progress=False)
    assert resumed["step"] == 2


def test_the_loss_floor_ignores_what_lies_under_it():
    """A partial 120 dB under the note changes the floored loss by nothing, the plain loss by a lot."""
    t = torch.arange(22050) / 44100
    note = torch.sin(2 * torch.pi * 440 * t)[None]
    whisper = note + 1e-6 * torch.sin(2 * torch.pi * 15000 * t)[None]
    plain, floored = MultiResolutionSTFTLoss((1024, 256)), MultiResolutionSTFTLoss((1024, 256), floor_db=80)
    assert float(floored(whisper, note)) < 1e-4 < 1e-2 < float(plain(whisper, note))
    louder = note + 1e-2 * torch.sin(2 * torch.pi * 15000 * t)[None]  # 40 dB under: heard, and scored
    assert float(floored(louder, note)) > 1e-2


def test_init_starts_from_the_given_vocoder(corpus44, tmp_path):
    torch.manual_seed(1)
    Vocoder(TINY).save_pretrained(tmp_path / "older")
    given = Vocoder.from_folder(tmp_path / "older").state_dict()
    task = VocoderTask(VocoderTrainConfig(data=str(corpus44), timbre="none", init=str(tmp_path / "older")), TINY)
    torch.manual_seed(2)
    task.build(None)
    assert not all(torch.equal(task.model.state_dict()[k], v) for k, v in given.items())  # fresh weights differ
    task.initialise(progress=False)
    assert all(torch.equal(task.model.state_dict()[k], v) for k, v in given.items())


def test_training_steps_lower_the_loss(corpus44, tmp_path):
    config = VocoderTrainConfig(data=str(corpus44), timbre="none", max_steps=1, batch_size=4, valid_notes=4,
                                learning_rate=3e-3)
    task = VocoderTask(config, TINY)
    task.load_data(progress=False)
    torch.manual_seed(0)
    task.build(None)
    task.wrap()
    notes = task.train_set
    index = np.arange(4)
    features = torch.from_numpy(notes.features[index].astype(np.float32))
    pitch, f0 = torch.from_numpy(notes.pitch[index]), torch.from_numpy(notes.f0[index])
    target = notes.audio(index, TINY.sample_rate)

    def loss() -> float:
        task.model.eval()  # fixed noise: the same figure on the same notes, before and after
        with torch.no_grad():
            value = float(task.loss(task.model(features, pitch, f0=f0)[0], target))
        task.model.train()
        return value

    before = loss()
    for step in range(8):
        task.step(index, 0, step)
    assert loss() < before


def test_cli_trains_it_and_refuses_a_timbre_with_other_features(corpus44, tiny_cvae, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["train", "vocoder", "--data", str(corpus44), "--timbre", str(tiny_cvae), "--out", str(out),
          "--max-steps", "1", "--batch-size", "2", "--width", "8", "--blocks", "2", "--valid-notes", "2",
          "--crop-seconds", "0.5"])
    assert "vocoder: 1 steps" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert saved["width"] == 8 and saved["dilations"] == [1, 2]
    linear = tmp_path / "linear"
    config = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)
    VAE(AutoencoderConfig(**{**config.__dict__, "spectrogram": config.spectrogram.__class__(n_mels=0)})
        ).save_pretrained(linear)
    code = main(["train", "vocoder", "--data", str(corpus44), "--timbre", str(linear), "--out", str(tmp_path / "x"),
                 "--max-steps", "1"])
    assert code == 2 and "other features" in capsys.readouterr().err


def test_note_models_play_through_the_vocoder_or_at_16_khz_without_it(tiny_cvae, tmp_path):
    vocoder = Vocoder(TINY)
    plain = Timbre.from_folder(tiny_cvae)
    voiced = Timbre.from_folder(tiny_cvae, vocoder=vocoder)
    latent = torch.randn(8)
    assert plain.sample_rate == 16000 and plain.decode(latent, pitch=60).shape == (64000,)
    assert voiced.sample_rate == 44100 and voiced.decode(latent, pitch=60).shape == (176400,)
    assert voiced.decode(torch.randn(3, 8), pitch=[48, 60, 72]).shape == (3, 176400)
    # Loading by name finds the vocoder beside the models, or plays at 16 kHz when the tree has none.
    tree = tmp_path / "weights"
    CVAE.from_folder(tiny_cvae).save_pretrained(tree / "cvae")
    assert Timbre.load("cvae", weights=tree).sample_rate == 16000
    vocoder.save_pretrained(tree / "vocoder")
    assert Timbre.load("cvae", weights=tree).sample_rate == 44100
    assert Timbre.load("cvae", weights=tree, vocoder=None).sample_rate == 16000
    config = GeneratorConfig(channels=(4, 4, 4, 4, 4), pitch_embedding=4)
    CDecoder(config).save_pretrained(tree / "cdecoder")
    generator = NoteGenerator.load("cdecoder", weights=tree)
    assert generator.sample_rate == 44100 and generator.generate(60, "guitar").shape == (176400,)


def test_data_notes_renders_at_the_requested_rate(tmp_path, capsys):
    from hummingface.data.notes import render_note
    from hummingface.data.synth import FLUIDR3_GM

    out = tmp_path / "notes44"
    main(["data", "notes", "--soundfont", str(FLUIDR3_GM), "--out", str(out), "--sample-rate", "44100",
          "--limit", "3"])
    examples = {k: v for split in ("train", "valid", "test")
                for k, v in json.loads((out / f"nsynth-{split}" / "examples.json").read_text()).items()}
    assert len(examples) >= 1 and {e["sample_rate"] for e in examples.values()} == {44100}
    assert all(24 <= e["pitch"] <= 96 and e["velocity"] in (50, 100, 127) for e in examples.values())
    note_str = next(iter(examples))
    split = next(s for s in ("train", "valid", "test") if (out / f"nsynth-{s}" / "audio" / f"{note_str}.wav").is_file())
    info = sf.info(out / f"nsynth-{split}" / "audio" / f"{note_str}.wav")
    assert info.samplerate == 44100 and info.frames == 176400
    again = render_note(note_str, FLUIDR3_GM, sample_rate=44100)
    written, _ = sf.read(out / f"nsynth-{split}" / "audio" / f"{note_str}.wav", dtype="float32")
    assert again.shape == (176400,) and np.abs(again - written).max() < 2e-4  # 16-bit rounding only
    code = main(["data", "notes", "--soundfont", str(FLUIDR3_GM), "--out", str(out), "--sample-rate", "1000"])
    assert code == 2 and "8000-96000" in capsys.readouterr().err


def test_two_ranks_train_it_together(corpus44, tmp_path):
    """Under torchrun (2 CPU processes, gloo) both ranks take the same steps and one checkpoint is written."""
    from test_distributed import DRIVER, torchrun

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "two"
    output = torchrun(str(driver), "0", "train", "vocoder", "--data", str(corpus44), "--out", str(out), "--timbre",
                      "none", "--width", "8", "--blocks", "2", "--batch-size", "2", "--valid-notes", "2",
                      "--crop-seconds", "0.5", "--max-steps", "2")
    assert dict(re.findall(r"rank (\d+) stopped at step (\d+)", output)) == {"0": "2", "1": "2"}
    assert json.loads((out / "metrics.json").read_text())["processes"] == 2
    assert Vocoder.from_folder(out).config.width == 8
