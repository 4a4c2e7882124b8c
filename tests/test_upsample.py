"""The upsampler: baselines, the band kept below 3.8 kHz, stereo, chunk joins, bad and odd files, training, hub."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import hummingface
from hummingface.__main__ import main
from hummingface.audio import read_audio
from hummingface.errors import UserError
from hummingface.hub import WeightsSource, repo_checkpoints
from hummingface.metrics import lsd_spectral
from hummingface.models.upsampler import Upsampler, UpsamplerConfig
from hummingface.train.upsampler import UpsamplerTrainConfig, degrade
from hummingface.upsampling import INPUT_RATE, OUTPUT_RATE, process_chunks, upsample

TINY = UpsamplerConfig(width=8, dilations=(1, 2))


def music(seconds=2.0, sr=INPUT_RATE, channels=1, seed=0):
    """Harmonic tones with a few clicks, band-limited to below 4 kHz: ``(channels, samples)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = []
    for channel in range(channels):
        f0 = 220.0 * (1 + 0.5 * channel)
        x = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) / h for h in range(1, 40) if h * f0 < 3600)
        x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.02 * rng.standard_normal(len(t))
        out.append(0.2 * x / np.abs(x).max())
    return np.stack(out).astype(np.float32)


def tiny_model(seed=0) -> Upsampler:
    """A tiny upsampler whose gains are not zero (a fresh one would equal sbr)."""
    torch.manual_seed(seed)
    model = Upsampler(TINY)
    torch.nn.init.normal_(model.output.weight, std=0.1)
    torch.nn.init.normal_(model.output.bias, std=0.5)
    return model.eval()


def band_energy(audio: np.ndarray, sr: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / sr)
    return float(spectrum[..., (freqs >= low) & (freqs < high)].sum() / spectrum.sum())


def test_sinc_adds_nothing_and_sbr_adds_a_high_band():
    x = music()
    sinc, sr = upsample(x, INPUT_RATE, mode="sinc")
    sbr, _ = upsample(x, INPUT_RATE, mode="sbr")
    assert sr == OUTPUT_RATE and sinc.shape == sbr.shape == (1, 2 * OUTPUT_RATE)
    assert band_energy(sinc, sr, 4500, 22050) < 2e-5  # edges of the clip only
    assert band_energy(sbr, sr, 4500, 22050) > 1e-3
    assert band_energy(sbr, sr, 10000, 22050) > 1e-5  # the copies go on up, octave after octave


@pytest.mark.parametrize("mode", ["sbr", "model"])
def test_low_band_passes_through(mode):
    x = music(channels=2)
    sinc, _ = upsample(x, INPUT_RATE, mode="sinc")
    out, _ = upsample(x, INPUT_RATE, mode=mode, model=tiny_model() if mode == "model" else None)
    low = lsd_spectral(torch.from_numpy(sinc), torch.from_numpy(out), max_hz=3800)
    high = lsd_spectral(torch.from_numpy(sinc), torch.from_numpy(out), min_hz=4000)
    assert float(low.max()) < 0.01 and float(high.min()) > 1.0


def test_identical_channels_stay_identical_and_panning_is_kept():
    mono = music()[0]
    out, _ = upsample(np.stack([mono, mono]), INPUT_RATE, mode="model", model=tiny_model())
    assert out.shape == (2, 2 * OUTPUT_RATE)
    assert np.array_equal(out[0], out[1])
    hard_left = np.stack([mono, np.zeros_like(mono)])
    out, _ = upsample(hard_left, INPUT_RATE, mode="model", model=tiny_model())
    assert band_energy(out[0], OUTPUT_RATE, 4500, 22050) > 1e-3
    assert np.abs(out[1]).max() < 1e-5  # the silent channel gets no invented high band


@pytest.mark.parametrize("mode", ["sbr", "model"])
def test_chunk_joins_are_seamless(mode):
    """A sine crossing chunk boundaries: chunked output equals one-piece output, with no jump at the joins."""
    t = np.arange(int(1.5 * INPUT_RATE)) / INPUT_RATE
    x = (0.3 * np.sin(2 * np.pi * 3000 * t) + 0.2 * np.sin(2 * np.pi * 441 * t))[None].astype(np.float32)
    model = tiny_model() if mode == "model" else None
    whole, _ = upsample(x, INPUT_RATE, mode=mode, model=model, chunk_seconds=60)
    chunked, _ = upsample(x, INPUT_RATE, mode=mode, model=model, chunk_seconds=0.5)
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() < 1e-3 * np.abs(whole).max()
    steps = np.abs(np.diff(chunked[0]))
    assert steps.max() < 1.05 * np.abs(np.diff(whole[0])).max()


def test_chunk_weights_sum_to_one():
    x = np.ones((1, 3 * INPUT_RATE + 123), dtype=np.float32)
    out = process_chunks(x, lambda block, offset: np.ones_like(block), chunk_seconds=0.5, fade_seconds=0.2)
    assert out.shape == (1, int(np.ceil(x.shape[-1] * OUTPUT_RATE / INPUT_RATE)))
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_progress_callback_and_rate_conversion():
    fractions = []
    x = music(seconds=1.5, sr=22050)  # above 8 kHz: narrowed to 8 kHz first
    out, sr = hummingface.upsample(x, 22050, mode="sbr", progress=fractions.append, chunk_seconds=0.5)
    assert sr == OUTPUT_RATE and abs(out.shape[-1] - 1.5 * OUTPUT_RATE) <= 1
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 2
    with pytest.raises(UserError, match="mode"):
        upsample(x, 22050, mode="magic")
    with pytest.raises(UserError, match="NaN"):
        upsample(np.full((1, 800), np.nan, dtype=np.float32), INPUT_RATE, mode="sbr")


def test_lsd_spectral_bands():
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.standard_normal(OUTPUT_RATE).astype(np.float32))
    assert float(lsd_spectral(ref, ref)) == 0.0
    louder = ref * 10.0  # +20 dB is exactly 2 bels everywhere
    assert float(lsd_spectral(ref, louder)) == pytest.approx(2.0, abs=1e-3)
    low_only = torch.from_numpy(upsample(ref.numpy()[None], OUTPUT_RATE, mode="sinc")[0][0])
    assert float(lsd_spectral(ref, low_only, max_hz=3700)) < 0.05
    assert float(lsd_spectral(ref, low_only, min_hz=4000)) > 3.0


def write(path, audio, sr, subtype="PCM_16"):
    sf.write(path, audio.T, sr, subtype=subtype)
    return str(path)


@pytest.mark.parametrize(
    "name, sr, channels, seconds, subtype",
    [
        ("hi.wav", 96000, 2, 0.5, "PCM_16"),
        ("short.wav", 8000, 1, 1.0, "PCM_16"),
        ("deep.wav", 16000, 2, 0.5, "PCM_24"),
        ("float.wav", 11025, 1, 0.5, "FLOAT"),
        ("lossy.mp3", 22050, 2, 1.0, "MPEG_LAYER_III"),
    ],
)
def test_cli_processes_odd_valid_audio(tmp_path, name, sr, channels, seconds, subtype):
    path = write(tmp_path / name, music(seconds, sr, channels), sr, subtype)
    assert main(["upsample", path, "-o", str(tmp_path / "out.flac"), "--mode", "sbr"]) == 0
    out, out_sr = sf.read(tmp_path / "out.flac", always_2d=True)
    assert out_sr == OUTPUT_RATE and out.shape[1] == channels
    assert abs(out.shape[0] - seconds * OUTPUT_RATE) < 0.1 * OUTPUT_RATE  # MP3 pads a little


def test_cli_several_inputs_keep_their_stems(tmp_path):
    a = write(tmp_path / "a.wav", music(0.5), INPUT_RATE)
    b = write(tmp_path / "b.flac", music(0.5, channels=2), INPUT_RATE)
    assert main(["upsample", a, b, "-o", str(tmp_path / "out"), "--mode", "sinc"]) == 0
    assert sf.info(tmp_path / "out" / "a.wav").samplerate == OUTPUT_RATE
    assert sf.info(tmp_path / "out" / "b.wav").channels == 2


def bad_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    good = tmp_path / "good.wav"
    sf.write(good, music(1.0)[0], INPUT_RATE, subtype="PCM_16")
    (tmp_path / "cut.wav").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    sf.write(tmp_path / "nan.wav", np.full(800, np.nan, dtype=np.float32), INPUT_RATE, subtype="FLOAT")
    return {
        "empty": "empty",
        "text": "not an audio file",
        "cut": "truncated",
        "nan": "NaN",
        "missing": "does not exist",
    }


@pytest.mark.parametrize("stem", ["empty", "text", "cut", "nan", "missing"])
def test_cli_bad_input_is_one_line(tmp_path, capsys, stem):
    expected = bad_files(tmp_path)[stem]
    code = main(["upsample", str(tmp_path / f"{stem}.wav"), "-o", str(tmp_path / "out.wav"), "--mode", "sbr"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and f"{stem}.wav" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


def test_cli_model_without_weights_is_one_line(tmp_path, capsys):
    path = write(tmp_path / "a.wav", music(0.5), INPUT_RATE)
    (tmp_path / "weights").mkdir()
    code = main(["upsample", path, "-o", str(tmp_path / "o.wav"), "--weights", str(tmp_path / "weights")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "upsampler" in err and len(err.splitlines()) == 1


def test_save_load_round_trip_through_the_hub(tmp_path):
    model = tiny_model(seed=3)
    model.save_pretrained(tmp_path / "upsampler")
    assert WeightsSource.resolve(tmp_path).checkpoint("upsampler") == tmp_path / "upsampler"
    loaded = Upsampler.from_pretrained("upsampler", weights=str(tmp_path), device="cpu")
    assert loaded.config == TINY
    x = music(1.0)
    expected, _ = upsample(x, INPUT_RATE, model=model)
    np.testing.assert_allclose(upsample(x, INPUT_RATE, weights=str(tmp_path), device="cpu")[0], expected, atol=1e-6)
    config = json.loads((tmp_path / "upsampler" / "config.json").read_text())
    config["width"] = 16
    (tmp_path / "upsampler" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="does not match"):
        Upsampler.from_pretrained("upsampler", weights=str(tmp_path))


def test_degradations_make_finite_8khz_audio():
    x = music(1.0, sr=OUTPUT_RATE)[0]
    for seed in range(12):
        y = degrade(x, np.random.default_rng(seed))
        assert y.shape == (INPUT_RATE,) and np.isfinite(y).all()
        assert 0.3 < np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) < 1.5


@pytest.fixture
def clips(tmp_path):
    for split, count in (("train", 2), ("valid", 1)):
        (tmp_path / "music" / split).mkdir(parents=True)
        for i in range(count):
            sf.write(tmp_path / "music" / split / f"{i}.wav", music(2.0, OUTPUT_RATE, 2, seed=i).T, OUTPUT_RATE)
    return tmp_path / "music"


def test_one_training_step_then_resume(clips, tmp_path, capsys):
    out = tmp_path / "upsampler"
    args = ["train", "upsampler", "--data", str(clips), "--out", str(out), "--max-steps", "1", "--batch-size", "2",
            "--crop-seconds", "0.5", "--valid-clips", "1", "--width", "8", "--blocks", "2"]
    assert main(args) == 0
    for name in ("config.json", "model.safetensors", "train_config.json", "metrics.json", "report.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 1 and np.isfinite(metrics["valid"]["lsd"]) and "lsd_hf" in metrics["valid_sbr"]
    model = Upsampler.from_folder(out)
    assert model.config == TINY and model.output.weight.abs().sum() > 0  # one step moved the zero-initialised head
    capsys.readouterr()
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main([*args[:-8], "--max-steps", "2", "--resume"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 2 and len(metrics["valid_history"]) == 2
    assert UpsamplerTrainConfig.load(out).crop_seconds == 0.5


def test_shipped_checkpoint_runs():
    if not (repo_checkpoints() / "upsampler" / "model.safetensors").is_file():
        pytest.skip("no shipped upsampler checkpoint")
    x = music(1.0, channels=2)
    out, sr = upsample(x, INPUT_RATE, device="cpu")
    assert sr == OUTPUT_RATE and out.shape == (2, OUTPUT_RATE) and np.isfinite(out).all()
    assert band_energy(out, sr, 4500, 22050) > 1e-4


@pytest.mark.parametrize("example", ["pop-0011-01-8k.flac", "orchestral-traveling-minstrels-8k.flac"])
def test_shipped_checkpoint_leaves_the_band_below_the_crossover_alone(example):
    """The Upsampler tab's promise, on the shipped weights and real music: below 3.8 kHz the output is the input."""
    if not (repo_checkpoints() / "upsampler" / "model.safetensors").is_file():
        pytest.skip("no shipped upsampler checkpoint")
    x, sr = read_audio(repo_checkpoints().parent / "assets" / "examples" / example)
    x = x[:, : 4 * sr]
    sinc, _ = upsample(x, sr, mode="sinc")
    out, _ = upsample(x, sr, device="cpu")
    low = lsd_spectral(torch.from_numpy(sinc), torch.from_numpy(out), max_hz=3800)
    high = lsd_spectral(torch.from_numpy(sinc), torch.from_numpy(out), min_hz=4000)
    assert float(low.max()) <= 0.01 and float(high.min()) > 1.0



def test_cli_writes_what_the_api_returns(tmp_path):
    x = music(1.0, sr=16000, channels=2)
    path = write(tmp_path / "in.wav", x, 16000, "FLOAT")
    assert main(["upsample", path, "-o", str(tmp_path / "out.wav"), "--mode", "sbr", "--bit-depth", "24"]) == 0
    written, sr = sf.read(tmp_path / "out.wav", always_2d=True)
    expected, _ = upsample(x, 16000, mode="sbr")
    assert sr == OUTPUT_RATE and np.abs(written.T - np.clip(expected, -1, 1)).max() < 1e-5
