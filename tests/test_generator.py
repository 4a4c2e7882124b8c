"""Note generators at tiny capacity: shapes, warm start, one training step, save/load, the CLI grid and NDB/K."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from hummingface.__main__ import main
from hummingface.data.gm import FAMILIES
from hummingface.errors import UserError
from hummingface.metrics import ndb_k
from hummingface.models import autoencoder
from hummingface.models.autoencoder import CVAE, AutoencoderConfig
from hummingface.models.generator import (
    CDecoder,
    Discriminator,
    GeneratorConfig,
    NoteGAN,
    NoteGenerator,
    velocity_class,
    warm_start,
)
from hummingface.train.cdecoder import CDecoderTask, CDecoderTrainConfig
from hummingface.train.engine import train
from hummingface.train.gan import GanTask, GanTrainConfig

TINY = GeneratorConfig(latent_size=8, components=3, channels=(4, 4, 4, 4, 4), pitch_embedding=4, presets=2)
TINY_CVAE = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)


def tiny(cls, seed: int = 0):
    torch.manual_seed(seed)
    return cls(dataclasses.replace(TINY, latent_size=0) if cls is CDecoder else TINY)


def labels(batch: int = 3):
    return torch.tensor([30, 60, 90])[:batch], torch.tensor([0, 3, 10])[:batch], torch.tensor([25, 100, 127])[:batch]


@pytest.fixture(autouse=True, scope="module")
def one_thread_and_cached_templates():
    """One torch thread (tiny ops gain nothing from two, and lose much on a busy machine); pitch templates
    depend only on the spectrogram, so they are computed once per module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    original, cache = autoencoder.harmonic_templates, {}

    def cached(config):
        key = (config.spectrogram, config.n_bins)
        if key not in cache:
            cache[key] = original(config)
        return cache[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(autoencoder, "harmonic_templates", cached)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three splits of six 4-s harmonic notes each, with NSynth's fields (sources and qualities included)."""
    root = tmp_path_factory.mktemp("corpus")
    t = np.arange(64000) / 16000
    for split_index, split in enumerate(("train", "valid", "test")):
        folder = root / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        examples = {}
        for i, pitch in enumerate((36, 48, 55, 60, 67, 72)):
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 5)) * np.exp(-t / (0.5 + i / 3))
            note_str = f"tone_synthetic_{split_index:03d}-{pitch:03d}-100"
            sf.write(folder / "audio" / f"{note_str}.wav", (0.3 * tone).astype(np.float32), 16000, subtype="PCM_16")
            examples[note_str] = {
                "note_str": note_str, "pitch": pitch, "velocity": 100, "instrument": split_index,
                "instrument_family": i % 3, "instrument_source": i % 2, "qualities": [i % 2] + [0] * 9,
            }
        (folder / "examples.json").write_text(json.dumps(examples))
    return root


@pytest.fixture(scope="module")
def tiny_cvae(tmp_path_factory):
    torch.manual_seed(1)
    return CVAE(TINY_CVAE).save_pretrained(tmp_path_factory.mktemp("cvae") / "cvae")


@pytest.mark.parametrize("cls", [NoteGAN, CDecoder])
def test_shapes_and_gradients(cls):
    model = tiny(cls)
    pitch, family, velocity = labels()
    if cls is NoteGAN:
        out = model(torch.randn(3, 8), torch.tensor([0, 1, 2]), pitch, family, velocity)
    else:
        out = model(pitch, family, velocity, torch.tensor([0, 1, 2]), torch.zeros(3, 10))
    assert out.shape == (3, 128, 251)
    disc = Discriminator(TINY, channels=(4, 4, 4, 4, 4), hidden=8)
    scores = disc(out)
    assert scores["adv"].shape == (3,) and scores["pitch"].shape == (3, 88)
    assert scores["family"].shape == (3, 11) and scores["velocity"].shape == (3, 5)
    (scores["adv"].mean() + scores["family"].logsumexp(-1).mean()).backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_gan_noise_component_family_and_pitch_all_change_the_note():
    model = tiny(NoteGAN)
    with torch.no_grad():
        model.prior_mean.normal_()
    z, c = torch.randn(1, 8), torch.tensor([0])
    base = model(z, c, torch.tensor([60]), torch.tensor([3]), torch.tensor([100]))
    for other in [
        model(torch.randn(1, 8), c, torch.tensor([60]), torch.tensor([3]), torch.tensor([100])),
        model(z, torch.tensor([2]), torch.tensor([60]), torch.tensor([3]), torch.tensor([100])),
        model(z, c, torch.tensor([72]), torch.tensor([3]), torch.tensor([100])),
        model(z, c, torch.tensor([60]), torch.tensor([5]), torch.tensor([100])),
    ]:
        assert not torch.allclose(base, other)


def test_warm_start_reproduces_the_cvae_decoder(tiny_cvae):
    cvae = CVAE.from_folder(tiny_cvae)
    gan, cdecoder = tiny(NoteGAN), tiny(CDecoder)
    warm_start(gan, cvae)
    warm_start(cdecoder, cvae)
    pitch, family, velocity = labels()
    z = torch.randn(3, 8)
    with torch.no_grad():  # identity prior, zero family/velocity embeddings: exactly the cvae at z
        out = gan(z, torch.tensor([0, 1, 2]), pitch, family, velocity)
        torch.testing.assert_close(out, cvae.decode_features(z, pitch))
        expected = cvae.decode_features(torch.zeros(3, 8), pitch)  # cdecoder = the cvae at the latent's centre
        out = cdecoder(pitch, family, velocity, torch.zeros(3, dtype=torch.long), torch.zeros(3, 10))
        torch.testing.assert_close(out, expected)


def test_fit_prior_draws_components_from_each_family_and_recovers_velocity():
    model = tiny(NoteGAN)
    gen = torch.Generator().manual_seed(0)
    family = torch.arange(2000) % 2
    velocity = torch.tensor([25, 127])[torch.randint(2, (2000,), generator=gen)]
    means = torch.randn(2, 8, generator=gen) * 3
    mixing = torch.randn(8, 8, generator=gen) * 0.5
    slope = torch.randn(8, generator=gen)
    v = (velocity.float() - 64) / 64
    latents = means[family] + torch.randn(2000, 8, generator=gen) @ mixing.T + v[:, None] * slope
    model.fit_prior(latents, family, velocity, spread=0.5)
    torch.testing.assert_close(model.velocity_direction, slope, atol=0.15, rtol=0)
    without = latents - v[:, None] * model.velocity_direction
    for index in range(2):  # each component is one of the family's notes, velocity removed
        distance = torch.cdist(model.prior_mean[index], without[family == index]).min(dim=1).values
        assert distance.max() < 1e-2  # (cdist rounding; notes lie about 1 apart)
    assert torch.equal(model.prior_mean[5], torch.zeros(3, 8))  # absent family: untouched
    scale = model.prior_scale[0] / 0.5
    assert (scale @ scale.T - mixing @ mixing.T).abs().max() < 0.25


def test_velocity_classes():
    assert velocity_class(torch.tensor([1, 25, 60, 100, 127, 120])).tolist() == [0, 0, 1, 3, 4, 4]


def test_train_one_step_resume_and_load(corpus, tiny_cvae, tmp_path):
    out = tmp_path / "gan"
    config = GanTrainConfig(data=str(corpus), init=str(tiny_cvae), max_steps=1, batch_size=2, valid_notes=4,
                            disc_channels=(4, 4, 4, 4, 4))
    metrics = train(GanTask(config, TINY), out, progress=False)
    assert metrics["step"] == 1 and np.isfinite(metrics["valid"]["diversity/l1"])
    for file in ("config.json", "model.safetensors", "train_config.json", "metrics.json", "report.png",
                 "samples.png", ".train/discriminator.safetensors", ".train/d_optimizer.safetensors"):
        assert (out / file).is_file(), file
    first = (out / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="--resume"):
        train(GanTask(config, TINY), out, progress=False)
    resumed = train(GanTask(dataclasses.replace(config, max_steps=2), TINY), out, resume=True, progress=False)
    assert resumed["step"] == 2 and (out / "model.safetensors").read_bytes() != first
    model = NoteGenerator.from_folder(out)
    assert model.name == "gan"
    assert model.model.pitch_range[:3].tolist() == [[36, 60], [48, 67], [55, 72]]  # per family, from the corpus
    assert not torch.equal(model.model.prior_mean[0], torch.zeros(3, 8))  # fitted to the cvae's latents
    cvae_decoder = CVAE.from_folder(tiny_cvae).decoder.state_dict()
    for name, weight in model.model.decoder.state_dict().items():  # the game tuned the prior only
        torch.testing.assert_close(weight, cvae_decoder[name], rtol=0, atol=0)
    with pytest.raises(UserError, match="--train-decoder"):
        train(GanTask(dataclasses.replace(config, init=None), TINY), tmp_path / "random", progress=False)


def test_cli_trains_a_cdecoder_that_learns_and_keeps_presets(corpus, tmp_path, capsys):
    out = tmp_path / "cdecoder"
    args = ["train", "cdecoder", "--data", str(corpus), "--out", str(out), "--max-steps", "8", "--init", "none",
            "--lr", "3e-3", "--channels", "4,4,4,4,4", "--valid-notes", "4", "--batch-size", "6"]
    assert main(args) == 0
    assert "8 steps" in capsys.readouterr().out
    assert json.loads((out / "train_config.json").read_text())["init"] is None
    model = NoteGenerator.from_folder(out)
    assert model.model.config.latent_size == 0
    task = CDecoderTask(CDecoderTrainConfig.load(out), model.model.config)
    task.load_data(progress=False)
    task.model = tiny(CDecoder)
    untrained = task.evaluate()["recon/l1"]
    task.model = model.model
    assert task.evaluate()["recon/l1"] < untrained
    # family 0 holds pitches 36 (source 0, not bright) and 60 (source 1, bright): both kept as presets
    assert {tuple(row) for row in model.model.presets[0, :, :2].tolist()} == {(0.0, 0.0), (1.0, 1.0)}
    one, two = model.features(60, 0, seed=[0, 1])
    assert not torch.equal(one, two)


@pytest.mark.parametrize("cls", [NoteGAN, CDecoder])
def test_save_load_round_trip_and_generator_api(cls, tmp_path):
    model = tiny(cls)
    with torch.no_grad():
        for parameter in model.conditioning.family.parameters():
            parameter.normal_()
    model.save_pretrained(tmp_path / cls.model_type)
    loaded = NoteGenerator.load(cls.model_type, weights=tmp_path)
    torch.testing.assert_close(loaded.features(48, "brass", 80, 2), NoteGenerator(model).features(48, "brass", 80, 2))
    note = loaded.generate(60, "guitar", seed=1)
    assert note.shape == (64000,) and note.dtype == np.float32 and np.abs(note).max() <= 0.99 + 1e-6
    assert loaded.features([40, 50], ["flute", 3], seed=[0, 1]).shape == (2, 128, 251)
    audio, pitch, family = loaded.surprise(seed=5)
    assert audio.shape == (64000,) and 36 <= pitch <= 84 and family in FAMILIES
    with pytest.raises(UserError, match="choose from bass, brass"):
        loaded.features(60, "kazoo")
    with pytest.raises(UserError, match="24-96"):
        loaded.features(100, "guitar")


def test_gan_seeds_differ_and_repeat(tmp_path):
    model = NoteGenerator(tiny(NoteGAN))
    a, b, c = model.features(60, "reed", seed=[1, 1, 2])
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.surprise_labels(3) == model.surprise_labels(3)
    assert len({model.surprise_labels(s) for s in range(20)}) > 5


@pytest.mark.parametrize("name", ["gan", "cdecoder"])
def test_cli_generate_grid(tmp_path, capsys, name):
    tiny(NoteGAN if name == "gan" else CDecoder).save_pretrained(tmp_path / "weights" / name)
    grid = tmp_path / "grid"
    args = ["generate", "--model", name, "--weights", str(tmp_path / "weights"), "--pitch", "48", "60",
            "--family", "guitar", "flute", "--velocity", "90", "--seed", "3", "-o", str(grid)]
    assert main(args) == 0
    names = ["flute-048-3.wav", "flute-060-3.wav", "guitar-048-3.wav", "guitar-060-3.wav"]
    assert sorted(p.name for p in grid.iterdir()) == names
    info = sf.info(grid / "guitar-060-3.wav")
    assert info.samplerate == 16000 and info.frames == 64000
    surprise = tmp_path / "surprise"
    assert main(["generate", "--model", name, "--weights", str(tmp_path / "weights"), "--seed", "4",
                 "-o", str(surprise)]) == 0
    (made,) = surprise.iterdir()
    family, pitch, seed = made.stem.rsplit("-", 2)
    assert seed == "4" and 36 <= int(pitch) <= 84 and family in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "kazoo"], "Unknown family 'kazoo'; choose from bass, brass, flute"),
        (["--pitch", "100"], "Pitch 100 is out of range; the note generators play MIDI pitches 24-96."),
        (["--pitch", "12", "60", "--family", "bass"], "Pitch 12 is out of range"),
        (["--velocity", "0"], "MIDI velocity"),
        (["--latent", "1,2"], "--seed"),
        (["--pitch", "40", "50", "--family", "reed"], "folder"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    tiny(NoteGAN).save_pretrained(tmp_path / "weights" / "gan")
    full = ["generate", "--model", "gan", "--weights", str(tmp_path / "weights"), *args, "-o", str(tmp_path / "x.wav")]
    assert main(full) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()


def test_train_refuses_a_mismatched_init(corpus, tmp_path, tiny_cvae):
    config = GanTrainConfig(data=str(corpus), init=str(tiny_cvae), max_steps=1, batch_size=2)
    with pytest.raises(UserError, match="latent_size"):
        train(GanTask(config, dataclasses.replace(TINY, latent_size=4)), tmp_path / "gan", progress=False)


def test_ndb_k():
    gen = torch.Generator().manual_seed(0)
    clusters = torch.randn(10, 16, generator=gen) * 5

    def sample(n, which):
        return clusters[which[torch.randint(len(which), (n,), generator=gen)]] + torch.randn(n, 16, generator=gen)

    everything = torch.arange(10)
    same = ndb_k(sample(2000, everything), sample(2000, everything), k=10)
    collapsed = ndb_k(sample(2000, everything), sample(2000, torch.tensor([0, 1])), k=10)
    assert same <= 0.2 and collapsed >= 0.8
