"""The 44.1-kHz path: corpora at any rate, rate-aware readers, the synth-decoder (shapes, its oscillator's
partials, one training step through the engine, strict save/load with the rate in its config)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from hummingface.__main__ import main
from hummingface.data.datasets import NSynthDataset
from hummingface.models.autoencoder import CVAE, VAE, AutoencoderConfig
from hummingface.models.synth_decoder import SynthDecoder, SynthDecoderConfig
from hummingface.models.timbre import Timbre
from hummingface.train.engine import train
from hummingface.train.synth_decoder import SynthDecoderTask, SynthDecoderTrainConfig

TINY = SynthDecoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4, n_envelope=8, n_detail=4,
                          n_noise=8)
PITCHES = (36, 48, 60, 72)


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
    """An untrained tiny 16-kHz cvae checkpoint: the frozen timbre model whose latent is decoded."""
    folder = tmp_path_factory.mktemp("cvae")
    torch.manual_seed(0)
    CVAE(AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)).save_pretrained(folder)
    return folder


def test_readers_keep_or_resample_the_corpus_rate(corpus44):
    native = NSynthDataset(corpus44, "valid", transform=lambda x: x, sample_rate=None)
    assert native.corpus_rate == 44100 and native[0][0].shape == (1, 176400)
    assert NSynthDataset(corpus44, "valid", transform=lambda x: x)[0][0].shape == (1, 64000)  # the models' 16 kHz
    features, _ = NSynthDataset(corpus44, "valid")[0]
    assert features.shape == (1, 128, 251)


@pytest.mark.parametrize("rate,seconds", [(44100, 4.0), (22050, 1.0), (48000, 0.5)])
def test_shapes_at_any_rate(rate, seconds):
    model = SynthDecoder(TINY.__class__(**{**TINY.__dict__, "sample_rate": rate, "note_seconds": seconds}))
    audio = model(torch.randn(3, 8), torch.tensor([24, 60, 96]))
    assert audio.shape == (3, round(rate * seconds)) and torch.isfinite(audio).all()
    model.eval()
    note = model.decode(torch.randn(8), pitch=60)
    assert note.shape == (round(rate * seconds),) and np.abs(note).max() <= 0.99


def test_oscillator_puts_partials_at_multiples_of_f0_and_none_above_nyquist():
    model = SynthDecoder(TINY).eval()
    frames = TINY.control_frames
    f0 = torch.full((1, frames), 440.0)
    flat = torch.zeros(1, frames, TINY.n_envelope)
    audio = model.harmonics(f0, torch.ones(1, frames), flat, torch.zeros(1, frames, TINY.n_detail))[0].numpy()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    hz = np.fft.rfftfreq(len(audio), 1 / TINY.sample_rate)
    peaks = hz[np.argsort(spectrum)[-5:]]
    assert np.allclose(peaks / 440.0, np.round(peaks / 440.0), atol=0.01)  # the strongest bins are harmonics
    assert 440.0 in np.round(peaks)
    band = spectrum[hz > 0.96 * TINY.sample_rate / 2].max() / spectrum.max()
    assert band < 1e-3  # harmonics above 0.95 x Nyquist are left out, so nothing folds back


@pytest.mark.parametrize("pitch,min_snr_db", [(24, 40.0), (48, 55.0)])
def test_wavetable_matches_additive_sines(pitch, min_snr_db):
    """The wavetable oscillator against a bank of exact sines (1/k amplitudes, every harmonic below 0.95 Nyquist)."""
    model = SynthDecoder(TINY)
    hz = 440.0 * 2 ** ((pitch - 69) / 12)
    k = np.arange(1, int(0.95 * TINY.sample_rate / 2 / hz) + 1)
    amplitude = torch.from_numpy(1.0 / k).float().expand(1, TINY.control_frames, -1)
    out = model.wavetable(torch.full((1, TINY.control_frames), hz), amplitude)[0].double().numpy()
    n = np.arange(TINY.samples)
    exact = sum(np.sin(2 * np.pi * h * hz * n / TINY.sample_rate) / h for h in k)
    snr = 10 * np.log10((exact**2).sum() / ((out - exact) ** 2).sum())
    assert snr > min_snr_db


def test_f0_deviation_bends_but_never_retunes_the_note():
    torch.manual_seed(0)
    model = SynthDecoder(TINY)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))  # an untrained net's curves are near zero; shake them
        deviation = model.control_curves(torch.randn(4, 8), torch.tensor([36.0, 48, 60, 72]))["deviation"]
    assert deviation.abs().max() > 0.05 and deviation.abs().max() <= 2 * TINY.max_deviation
    assert torch.allclose(deviation.mean(dim=-1), torch.zeros(4), atol=1e-5)


def test_vibrato_moves_the_pitch():
    model = SynthDecoder(TINY).eval()
    frames = TINY.control_frames
    loudness, flat = torch.ones(1, frames), torch.zeros(1, frames, TINY.n_envelope)
    detail = torch.zeros(1, frames, TINY.n_detail)
    steady = model.harmonics(torch.full((1, frames), 440.0), loudness, flat, detail)
    bent = model.harmonics(torch.full((1, frames), 466.16), loudness, flat, detail)
    corr = float((steady * bent).sum() / (steady.norm() * bent.norm()))
    assert abs(corr) < 0.1  # a semitone up is a different signal, not a scaled copy


def test_one_training_step_then_strict_save_load(corpus44, tiny_cvae, tmp_path):
    config = SynthDecoderTrainConfig(data=str(corpus44), timbre=str(tiny_cvae), max_steps=1, batch_size=2,
                                     valid_notes=2)
    out = tmp_path / "synth"
    metrics = train(SynthDecoderTask(config, TINY), out, progress=False)
    assert metrics["step"] == 1 and np.isfinite(metrics["valid"]["lsd_db"]) and np.isfinite(metrics["train"]["stft"])
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == "synth-decoder" and saved["sample_rate"] == 44100 and saved["latent_size"] == 8
    model = SynthDecoder.from_folder(out)
    assert model.config == SynthDecoderConfig(**{**TINY.__dict__})
    latent = torch.randn(8)
    again = SynthDecoder.from_folder(out)
    assert np.array_equal(model.decode(latent, 60), again.decode(latent, 60))  # eval decodes are deterministic
    assert SynthDecoderTrainConfig.load(out).timbre == str(tiny_cvae)
    # The 16-kHz timbre model it decodes still loads and decodes as before.
    assert Timbre.from_folder(tiny_cvae).decode(latent, pitch=60).shape == (64000,)
    # Resuming continues the same run.
    resumed = train(SynthDecoderTask(SynthDecoderTrainConfig(**{**config.__dict__, "max_steps": 2}), TINY), out,
                    resume=True, progress=False)
    assert resumed["step"] == 2


def test_training_step_lowers_the_loss(corpus44, tiny_cvae, tmp_path):
    config = SynthDecoderTrainConfig(data=str(corpus44), timbre=str(tiny_cvae), max_steps=1, batch_size=4,
                                     valid_notes=4, learning_rate=3e-3)
    task = SynthDecoderTask(config, TINY)
    task.load_data(progress=False)
    torch.manual_seed(0)
    task.build(None)
    task.wrap()
    task.model.eval()  # fixed noise: the same loss on the same notes, before and after
    before = task.evaluate()["stft"]
    task.model.train()
    for step in range(5):
        task.step(np.arange(4), 0, step)
    task.model.eval()
    assert task.evaluate()["stft"] < before


def test_cli_trains_it_and_refuses_a_non_conditional_timbre(corpus44, tiny_cvae, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["train", "synth-decoder", "--data", str(corpus44), "--timbre", str(tiny_cvae), "--out", str(out),
          "--max-steps", "1", "--batch-size", "2", "--channels", "4,4,4,4,4", "--valid-notes", "2"])
    assert "synth-decoder: 1 steps" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["channels"] == [4, 4, 4, 4, 4]
    vae = tmp_path / "vae"
    VAE(AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)).save_pretrained(vae)
    code = main(["train", "synth-decoder", "--data", str(corpus44), "--timbre", str(vae), "--out", str(tmp_path / "x"),
                 "--max-steps", "1"])
    assert code == 2 and "decodes a cvae latent" in capsys.readouterr().err


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
