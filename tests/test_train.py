"""Training through the engine on a tiny NSynth-layout corpus and a folder of audio built here: feature cache,
one step, exact resume, per-model flags, and the CLI round trips."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from hummingface.__main__ import main
from hummingface.dsp import LogCompression
from hummingface.errors import UserError
from hummingface.models import AutoencoderConfig, Timbre
from hummingface.models.autoencoder import SILENCE
from hummingface.train.autoencoder import (
    AutoencoderTask,
    AutoencoderTrainConfig,
    blend,
    blend_partners,
    recolour,
)
from hummingface.train.data import load_features
from hummingface.train.engine import train

TINY = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)
TINY_ARGS = ["--channels", "4,4,4,4,4", "--latent-size", "8", "--batch-size", "2", "--valid-notes", "4"]


def note(pitch: int, seconds: float = 4.0, sr: int = 16000, decay: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6) if h * f0 < sr / 2)
    return (0.3 * tone * np.exp(-t / decay)).astype(np.float32)


def make_corpus(root):
    """Three splits of six 4-s harmonic notes each, with NSynth's fields, under ``root``."""
    for split_index, split in enumerate(("train", "valid", "test")):
        folder = root / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        examples = {}
        for i, pitch in enumerate((36, 48, 55, 60, 67, 72)):
            family = (i + split_index) % 11
            note_str = f"tone_synthetic_{split_index:03d}-{pitch:03d}-100"
            sf.write(folder / "audio" / f"{note_str}.wav", note(pitch, decay=0.5 + i / 3), 16000, subtype="PCM_16")
            examples[note_str] = {
                "note_str": note_str, "pitch": pitch, "velocity": 100, "instrument": split_index,
                "instrument_family": family, "instrument_source": 2, "qualities": [0] * 10, "sample_rate": 16000,
            }
        (folder / "examples.json").write_text(json.dumps(examples))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_config(corpus, **changes) -> AutoencoderTrainConfig:
    base = dict(model="cvae", data=str(corpus), max_steps=2, batch_size=2, valid_notes=4, kl_warmup_steps=1)
    return AutoencoderTrainConfig(**{**base, **changes})


def tiny_task(config: AutoencoderTrainConfig, model_config: AutoencoderConfig = TINY) -> AutoencoderTask:
    return AutoencoderTask(config, model_config)


def test_feature_cache(corpus):
    notes = load_features(corpus, "valid", progress=False)
    assert notes.features.shape == (6, 128, 251) and notes.features.dtype == np.float16
    assert sorted(notes.pitch.tolist()) == [36, 48, 55, 60, 67, 72]
    cached = list((corpus / ".cache").glob("valid-*.npy"))
    assert len(cached) == 1
    again = load_features(corpus, "valid", pitches=range(50, 70), progress=False)
    assert sorted(again.pitch.tolist()) == [55, 60, 67]
    batch = again.batch(np.array([0, 2]))
    assert batch["features"].shape == (2, 128, 251) and batch["features"].dtype == torch.float32
    assert batch["pitch"].tolist() == again.pitch[[0, 2]].tolist()
    with pytest.raises(UserError, match="pitch range"):
        load_features(corpus, "valid", pitches=range(100, 101), progress=False)


def test_kl_warmup_schedule():
    config = AutoencoderTrainConfig(beta=0.2, kl_warmup_steps=100)
    assert config.loss_weights(0)["kl"] == 0
    assert config.loss_weights(50)["kl"] == pytest.approx(0.1)
    assert config.loss_weights(500)["kl"] == pytest.approx(0.2)


def test_recolour_colours_half_the_notes_within_bounds_and_keeps_silence():
    features = torch.full((64, 128, 20), -0.5)
    features[..., 15:] = SILENCE
    coloured = recolour(features, 12.0, np.random.default_rng(0))
    gain_db = (coloured - features)[..., :15] * LogCompression().scale * 20 / math.log(10)
    changed = gain_db.abs().amax(dim=(1, 2)) > 0
    assert 16 < int(changed.sum()) < 48  # about half the notes
    assert float(gain_db.abs().max()) <= 4 * 6 + 6 + 1e-3  # four cosines and the tilt, 6 dB each at most
    assert float(gain_db[changed].std(dim=1).mean()) > 1  # a colour across the bands, not only a level
    assert torch.equal(coloured[..., 15:], features[..., 15:])  # silence stays silent
    first = gain_db[changed][0]
    assert not torch.allclose(first[:, 0], first[:, -1])  # the tilt grows over the note
    assert torch.equal(recolour(features, 12.0, np.random.default_rng(0)), coloured)


def test_blend_layers_some_notes_by_adding_powers():
    log = LogCompression()
    features = torch.full((64, 128, 20), -0.5)
    features[..., 15:] = SILENCE
    partners = torch.full((64, 128, 20), -0.5)
    partners[:, :64] = SILENCE  # the partner sounds in the top half of the bands only
    layered = blend(features, partners, np.random.default_rng(0), share=0.5)
    changed = (layered != features).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # about half the notes
    assert torch.equal(layered[~changed], features[~changed])
    gain_db = (layered - features)[changed] * log.scale * 20 / math.log(10)
    assert torch.equal(gain_db[:, :64, :15], torch.zeros_like(gain_db[:, :64, :15]))  # a silent partner adds nothing
    # Two equal powers add 3 dB; a partner 18 dB down adds 0.07 dB.
    assert 0.07 - 1e-3 <= float(gain_db[:, 64:, :15].min()) and float(gain_db[:, 64:, :15].max()) <= 3.01
    assert float(layered[changed][:, 64:, 15:].max()) < -0.5  # where only the partner sounds, it sounds, quieter
    assert torch.equal(blend(features, partners, np.random.default_rng(0), share=0.5), layered)


def test_blend_partners_sound_at_harmonic_intervals():
    notes_by_pitch = {pitch: np.array([pitch * 10, pitch * 10 + 1]) for pitch in range(24, 97)}
    pitch = np.full(400, 60)
    partners = blend_partners(pitch, notes_by_pitch, np.random.default_rng(0))
    assert set(np.unique(partners // 10)) == {60, 72, 79, 84}  # unison, octave, twelfth, double octave
    assert set(blend_partners(np.full(50, 96), notes_by_pitch, np.random.default_rng(0)) // 10) == {96}  # the top


@pytest.mark.parametrize("name", ["ae", "mog-vae"])
def test_one_training_step_writes_a_loadable_checkpoint(corpus, tmp_path, name):
    out = tmp_path / name
    metrics = train(tiny_task(tiny_config(corpus, model=name, max_steps=1)), out, progress=False)
    assert metrics["step"] == 1 and np.isfinite(metrics["valid"]["recon/l1"])
    for file in ("config.json", "model.safetensors", "latent.safetensors", "train_config.json", "metrics.json",
                 "report.png", ".train/state.json", ".train/optimizer.safetensors"):
        assert (out / file).is_file(), file
    model = Timbre.from_folder(out)
    assert model.name == name and model.latent is not None and len(model.latent.note_ids) == 4  # valid_notes
    assert AutoencoderTrainConfig.load(out).model == name


def test_training_learns_and_resumes(corpus, tmp_path):
    out = tmp_path / "cvae"
    config = tiny_config(corpus, max_steps=2, learning_rate=3e-3)
    train(tiny_task(config), out, progress=False)
    first = (out / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="--resume"):
        train(tiny_task(config), out, progress=False)
    resumed = train(tiny_task(tiny_config(corpus, max_steps=6, learning_rate=3e-3)), out, resume=True, progress=False)
    assert resumed["step"] == 6
    assert (out / "model.safetensors").read_bytes() != first
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["step"][-1] == 6
    with pytest.raises(UserError, match="no training run"):
        train(tiny_task(config), tmp_path / "fresh", resume=True, progress=False)


def test_cli_train_reconstruct_generate(corpus, tmp_path, capsys):
    checkpoints = tmp_path / "checkpoints"
    args = ["train", "cvae", "--data", str(corpus), "--out", str(checkpoints / "cvae"), "--max-steps", "1", *TINY_ARGS,
            "--recolour-db", "12", "--blend-share", "0.5"]
    assert main(args) == 0
    assert "1 steps" in capsys.readouterr().out
    assert AutoencoderTrainConfig.load(checkpoints / "cvae").recolour_db == 12
    assert AutoencoderTrainConfig.load(checkpoints / "cvae").blend_share == 0.5

    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "long.wav", np.stack([note(57, 6.0, 44100)] * 2).T, 44100)  # 6 s, stereo, 44.1 kHz
    sf.write(inputs / "short.flac", note(64, 1.0, 22050), 22050)
    out = tmp_path / "out"
    weights = ["--weights", str(checkpoints)]
    assert main(["reconstruct", "--model", "cvae", *weights, str(inputs / "long.wav"), str(inputs / "short.flac"),
                 "-o", str(out)]) == 0
    for stem in ("long", "short"):
        audio, sr = sf.read(out / f"{stem}.wav")
        assert sr == 16000 and audio.shape == (64000,)

    grid = tmp_path / "grid"
    assert main(["generate", "--model", "cvae", *weights, "--pitch", "48", "60", "--family", "guitar",
                 "--seed", "3", "-o", str(grid)]) == 0
    assert sorted(p.name for p in grid.iterdir()) == ["guitar-048-3.wav", "guitar-060-3.wav"]
    single = tmp_path / "one.wav"
    assert main(["generate", "--model", "cvae", *weights, "--latent", "1.5,-1", "--velocity", "30",
                 "-o", str(single)]) == 0
    assert sf.info(single).frames == 64000


@pytest.mark.parametrize(
    "args, message",
    [
        (["reconstruct", "--model", "cvae", "missing.wav", "-o", "{tmp}/x.wav"], "does not exist"),
        (["reconstruct", "--model", "cvae", "{tmp}/text.wav", "-o", "{tmp}/x.wav"], "not an audio file"),
        (["reconstruct", "--model", "vae", "{tmp}/text.wav", "{tmp}/text.wav", "-o", "{tmp}/x.wav"], "folder"),
        (["reconstruct", "--model", "nothing", "{tmp}/ok.wav", "-o", "{tmp}/x.wav"], "No checkpoint"),
        (["generate", "--model", "cvae", "--family", "kazoo", "-o", "{tmp}/x.wav"], "Unknown family"),
        (["generate", "--model", "cvae", "--latent", "1,x", "-o", "{tmp}/x.wav"], "comma-separated"),
        (["generate", "--model", "cvae", "--pitch", "200", "-o", "{tmp}/x.wav"], "MIDI pitch"),
        (["generate", "--model", "cvae", "--velocity", "0", "-o", "{tmp}/x.wav"], "MIDI velocity"),
        (["generate", "--model", "cvae", "--pitch", "40", "50", "-o", "{tmp}/x.wav"], "folder"),
        (["train", "vae", "--data", "{tmp}/nowhere", "--out", "{tmp}/run", "--max-steps", "1"], "is not a folder"),
        (["train", "vae", "--data", "{tmp}", "--out", "{tmp}/run", "--max-steps", "1"], "usable sounds"),
        (["train", "gan", "--data", "{tmp}", "--out", "{tmp}/run", "--beta", "0.5"], "--beta is not an option"),
        (["train", "ae", "--data", "{tmp}", "--out", "{tmp}/run", "--kl-warmup", "5"], "of the ae model"),
        (["train", "upsampler", "--out", "{tmp}/run", "--init", "x"], "--init is not an option"),
        (["train", "cvae", "--data", "{tmp}", "--out", "{tmp}/run", "--batch-size", "x"], "must be a number"),
        (["train", "vae", "--data", "{tmp}", "--out", "{tmp}/run", "--channels", "4,4"], "5 entries"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, capsys, args, message):
    (tmp_path / "text.wav").write_text("this is not audio")
    sf.write(tmp_path / "ok.wav", note(60, 0.5), 16000)
    checkpoints = tmp_path / "checkpoints"
    torch.manual_seed(0)
    from hummingface.models import MODELS

    for name in ("cvae", "vae"):
        MODELS[name](TINY).save_pretrained(checkpoints / name)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    if args[0] != "train":
        args += ["--weights", str(checkpoints)]
    try:
        code = main(args)
    except SystemExit as exit:  # argparse refuses a flag before main's own handling
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_warm_start_copies_matching_weights_and_overlapping_slices(tmp_path):
    from hummingface.models import MODELS
    from hummingface.train.engine import warm_start

    config = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)
    torch.manual_seed(0)
    source = MODELS["cvae"](config)
    source.save_pretrained(tmp_path / "cvae")
    target = MODELS["vae"](config)
    copied, partial = warm_start(target, tmp_path / "cvae")
    assert copied > 0 and partial == 1  # the encoder head: the cvae's also reads the pitch
    assert torch.equal(target.decoder.head.weight, source.decoder.head.weight)
    own = target.encoder.head.weight.shape[1]
    assert torch.equal(target.encoder.head.weight, source.encoder.head.weight[:, :own])
    with pytest.raises(UserError, match="holds no"):
        warm_start(target, tmp_path / "missing")


def test_training_from_init(corpus, tmp_path):
    from hummingface.models import MODELS

    config = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)
    MODELS["cvae"](config).save_pretrained(tmp_path / "cvae")
    metrics = train(tiny_task(tiny_config(corpus, model="vae", max_steps=1, init=str(tmp_path / "cvae")), config),
                    tmp_path / "vae", progress=False)
    assert metrics["step"] == 1


def test_resumed_run_equals_uninterrupted(corpus, tmp_path):
    """Interrupted after 2 of 5 steps and resumed: the same weights and optimizer state as one run of 5."""
    config = tiny_config(corpus, model="ae", max_steps=5, learning_rate=3e-3)
    train(tiny_task(config), tmp_path / "whole", progress=False)
    train(tiny_task(config), tmp_path / "parts", progress=False, stop_after=2)
    assert json.loads((tmp_path / "parts" / "metrics.json").read_text())["step"] == 2
    train(tiny_task(config), tmp_path / "parts", resume=True, progress=False)
    for name in ("model.safetensors", ".train/optimizer.safetensors"):
        whole, parts = load_file(tmp_path / "whole" / name), load_file(tmp_path / "parts" / name)
        assert whole.keys() == parts.keys()
        for key in whole:
            torch.testing.assert_close(parts[key], whole[key], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def sound_folder(tmp_path_factory):
    """A musician's folder: six NSynth-style names, three plain names (pitch estimated), a text file posing as
    audio and a silent file (both skipped)."""
    folder = tmp_path_factory.mktemp("sounds")
    for i, pitch in enumerate((40, 45, 50, 55, 62, 69)):
        sf.write(folder / f"pluck_{i:03d}-{pitch:03d}-100.wav", note(pitch, 1.0, 22050, decay=0.3), 22050)
    (folder / "plain").mkdir()
    for i, pitch in enumerate((48, 57, 64)):
        sf.write(folder / "plain" / f"pad_{i}.flac", note(pitch, 2.0, 16000, decay=1.0), 16000)
    (folder / "broken.wav").write_text("not audio")
    sf.write(folder / "silent_0.wav", np.zeros(16000, dtype=np.float32), 16000)
    return folder


def test_folder_of_sounds_trains_a_designer_model(sound_folder, tmp_path, capsys):
    out = tmp_path / "mine"
    assert main(["train", "cvae", "--data", str(sound_folder), "--out", str(out), "--max-steps", "2",
                 *TINY_ARGS]) == 0
    assert "skipped 2 unusable files" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_files"] == 2 and metrics["train_notes"] + metrics["valid_notes"] == 9
    model = Timbre.from_folder(out)
    assert model.latent is not None and len(model.latent.note_ids) == 9  # every sound is an Explorer point
    ids = model.latent.note_ids
    pitch = dict(zip(ids, model.latent.point_pitch.tolist(), strict=True))
    assert pitch["pluck_002-050-100"] == 50  # from the name
    assert abs(pitch["pad_1"] - 57) <= 1  # estimated with pyin
    assert model.decode(model.random_latent(0), pitch=60).shape == (64000,)


def test_family_classifier_and_bf16_train_through_the_engine(corpus, tmp_path):
    out = tmp_path / "judge"
    assert main(["train", "family-classifier", "--data", str(corpus), "--out", str(out), "--max-steps", "2",
                 "--batch-size", "3", "--precision", "bf16"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 2 and 0 <= metrics["valid"]["accuracy"] <= 1 and np.isfinite(metrics["train"]["ce"])
    from hummingface.models.family_classifier import FamilyClassifier

    assert FamilyClassifier.from_folder(out).config.n_families == 11
    assert json.loads((out / "train_config.json").read_text())["precision"] == "bf16"
