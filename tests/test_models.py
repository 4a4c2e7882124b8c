"""Note autoencoders at tiny capacity: shapes, conditioning, priors, save/load, and the latent space."""

import json
import math

import numpy as np
import pytest
import torch

from hummingface.errors import UserError
from hummingface.latent import LatentSpace, interpolate, smoothness_ratio
from hummingface.models import MODELS, AutoencoderConfig, Timbre
from hummingface.models.autoencoder import harmonic_templates

TINY = AutoencoderConfig(latent_size=8, channels=(4, 4, 4, 4, 4), pitch_embedding=4)


def tiny(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return MODELS[name](TINY)


@pytest.mark.parametrize("name", ["ae", "vae", "mog-vae", "cvae"])
def test_shapes_losses_and_gradients(name):
    model = tiny(name)
    features = torch.rand(3, 128, 251) * 2 - 1
    pitch, family = torch.tensor([40, 60, 90]), torch.tensor([0, 3, 10])
    out = model(features, pitch, family)
    assert out["reconstruction"].shape == features.shape
    assert out["recon/l1"].ndim == 0 and out["kl"].ndim == 0
    assert (out["kl"] == 0) == (name == "ae")
    assert out["kl"] >= 0
    (out["recon/l1"] + out["kl"]).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    posterior = model.encode_features(features, pitch)
    assert posterior.mean.shape == (3, 8) and (posterior.logvar is None) == (name == "ae")
    assert model.decode_features(posterior.mean, pitch).shape == (3, 128, 251)


def test_cvae_decoder_follows_the_pitch_and_needs_it():
    model = tiny("cvae")
    z = torch.randn(1, 8)
    low, high = model.decode_features(z, torch.tensor([40])), model.decode_features(z, torch.tensor([80]))
    assert not torch.allclose(low, high)
    with pytest.raises(ValueError, match="pitch"):
        model.decode_features(z)


def test_mog_prior_uses_the_family_component():
    model = tiny("mog-vae")
    features = torch.rand(2, 128, 251)
    posterior = model.encode_features(features)
    with torch.no_grad():
        model.prior_means[1] = posterior.mean[0] + 5
    near = model.kl(posterior, torch.tensor([0, 0]))
    far = model.kl(posterior, torch.tensor([1, 1]))
    assert far > near
    with pytest.raises(ValueError, match="family"):
        model.kl(posterior)
    generator = torch.Generator().manual_seed(0)
    samples = model.prior_sample(generator, count=500, family=1)
    assert torch.allclose(samples.mean(0), model.prior_means[1].detach(), atol=0.3)


def test_config_is_validated():
    with pytest.raises(ValueError, match="5 entries"):
        AutoencoderConfig(channels=(4, 4, 4))


def test_harmonic_templates_peak_at_the_fundamental():
    templates = harmonic_templates(TINY)
    assert templates.shape == (128, 128) and templates.min() >= 0 and templates.max() <= 1
    import librosa

    centres = librosa.mel_frequencies(n_mels=130, fmax=8000)[1:-1]  # centre frequency of each band
    a4 = int(np.argmin(np.abs(centres - 440)))
    assert abs(int(templates[69, :a4 + 4].argmax()) - a4) <= 1


def _latent_space(dim=8, n=300, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, dim, generator=generator) * torch.linspace(3, 0.1, dim)
    family = torch.arange(n) % 11
    return LatentSpace.fit(latents, family, 40 + torch.arange(n) % 30, torch.full((n,), 100),
                           [f"note-{i}" for i in range(n)], max_points=100)


def test_latent_space_pca_sliders_and_round_trip(tmp_path):
    space = _latent_space()
    assert torch.all(space.fidelity[1:] >= space.fidelity[:-1]) and abs(float(space.fidelity[-1]) - 1) < 1e-5
    assert 1 <= space.n_sliders <= 8 and float(space.fidelity[space.n_sliders - 1]) >= 0.95
    assert space.points.shape == (100, 2) and len(space.note_ids) == 100
    assert torch.allclose(space.points.std(0), torch.ones(2), atol=0.25)
    z = space.point_latents[3]
    assert torch.allclose(space.from_sliders(space.to_sliders(z, 8)), z, atol=1e-4)
    # Setting the first slider moves only along the first direction; the rest stays at the base.
    moved = space.from_sliders([2.0], base=z)
    assert torch.allclose(space.to_sliders(moved, 8)[1:], space.to_sliders(z, 8)[1:], atol=1e-4)
    assert abs(float(space.to_sliders(moved, 1)[0]) - 2.0) < 1e-4
    space.save(tmp_path / "latent.safetensors")
    loaded = LatentSpace.load(tmp_path / "latent.safetensors")
    assert loaded.note_ids == space.note_ids and loaded.n_sliders == space.n_sliders
    assert torch.equal(loaded.family_centroids, space.family_centroids)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError):
        LatentSpace.load(tmp_path / "bad.safetensors")


def test_interpolation_and_smoothness():
    a, b = torch.zeros(4), torch.ones(4)
    assert torch.equal(interpolate(a, b, 0.25), torch.full((4,), 0.25))
    path = interpolate(a, b, torch.linspace(0, 1, 9))
    assert path.shape == (9, 4) and torch.equal(path[-1], b)
    assert smoothness_ratio(path) == pytest.approx(1.0)
    jump = torch.cat([path[:4], path[4:] + 5])
    assert smoothness_ratio(jump) > 3


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_save_load_round_trip_through_hub(tmp_path, name):
    model = tiny(name, seed=1)
    root = tmp_path / "checkpoints"
    model.save_pretrained(root / name)
    _latent_space().save(root / name / "latent.safetensors")
    loaded = Timbre.load(name, weights=root, device="cpu")
    z = torch.randn(1, 8)
    pitch = torch.tensor([60]) if name == "cvae" else None
    assert torch.equal(loaded.model.decode_features(z, pitch), model.eval().decode_features(z, pitch))
    note = loaded.decode(z[0], pitch=60)
    assert note.shape == (64000,) and note.dtype == np.float32 and np.abs(note).max() <= 1
    encoded = loaded.encode(np.sin(np.arange(22050) / 10).astype(np.float32), 44100, pitch=60)
    assert encoded.shape == (8,)
    assert loaded.random_latent(3).shape == (8,) and torch.equal(loaded.random_latent(3), loaded.random_latent(3))
    assert loaded.sample(seed=1, pitch=50, family="guitar").shape == (64000,)
    assert loaded.to_sliders(encoded).shape == (loaded.n_sliders,)


def test_loading_is_strict_about_the_model_type(tmp_path):
    tiny("vae").save_pretrained(tmp_path / "vae")
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    (tmp_path / "vae" / "config.json").write_text(json.dumps({**config, "model_type": "cvae"}))
    with pytest.raises(UserError, match="does not match"):
        Timbre.from_folder(tmp_path / "vae")
    (tmp_path / "vae" / "config.json").write_text(json.dumps({**config, "model_type": "gan"}))
    with pytest.raises(UserError, match="gan"):
        Timbre.from_folder(tmp_path / "vae")


def test_sampling_starts_from_the_stored_notes(tmp_path):
    tiny("vae").save_pretrained(tmp_path / "vae")
    space = _latent_space()
    space.point_velocity = torch.where(torch.arange(100) % 2 == 0, 25, 127)
    space.save(tmp_path / "vae" / "latent.safetensors")
    model = Timbre.from_folder(tmp_path / "vae")
    at_45 = space.point_latents[space.point_pitch == 45].mean(0)
    assert torch.allclose(model.base_latent(pitch=45), at_45)  # the vae's latent holds the pitch
    assert torch.allclose(model.base_latent(family="brass"), space.family_centroids[1])
    soft = space.point_latents[space.point_velocity == 25].mean(0) - space.point_latents.mean(0)
    assert torch.allclose(model.base_latent(velocity=20), space.mean + soft, atol=1e-5)
    with pytest.raises(UserError, match="family"):
        model.base_latent(family="kazoo")


@pytest.mark.parametrize("name", ["ae", "vae", "mog-vae"])
def test_unconditional_models_read_the_pitch_out_of_the_latent(name):
    model = tiny(name)
    features = torch.rand(2, 128, 251) * 2 - 1
    out = model(features, torch.tensor([40, 70]), torch.tensor([0, 1]))
    assert out["pitch/ce"] > 0  # an untrained read-out is uncertain
    latent = torch.randn(2, 8)
    assert model.read_pitch(latent).shape == (2,)
    assert TINY.min_pitch <= int(model.read_pitch(latent).min()) <= TINY.max_pitch
    # The decoder follows the read-out: a head that is sure of pitch 40 decodes like that pitch given outright.
    with torch.no_grad():
        model.pitch_head.weight.zero_()
        model.pitch_head.bias.fill_(-1e4)
        model.pitch_head.bias[40 - TINY.min_pitch] = 0.0
    cond = model.pitch.expected(model.pitch_logits(latent).softmax(dim=-1))
    assert torch.allclose(cond, model.pitch(torch.tensor([40, 40])), atol=1e-5)


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_a_reconstruction_follows_its_recordings_loudness(name):
    """An untrained model decodes every latent at about the same level; reconstruct plays the recording's, frame
    by frame: a note that drops 20 dB after 2 s, and the same note 20 dB quieter."""
    model = Timbre(tiny(name))
    t = np.arange(64000) / 16000
    note = (0.05 * np.sin(2 * np.pi * 220 * t) * np.where(t < 2.0, 1.0, 0.1)).astype(np.float32)  # never limited

    def loudness(audio: np.ndarray) -> np.ndarray:
        """dB of the 16-kHz features at 0.5-1.5 s and 2.5-3.5 s."""
        curve = model.spectrogram.loudness_db(model.features(audio, 16000)).numpy()
        return np.array([np.median(curve[31:94]), np.median(curve[156:219])])

    loud, quiet = (loudness(model.reconstruct(x, 16000, pitch=57)) for x in (note, 0.1 * note))
    np.testing.assert_allclose(np.diff(loud), np.diff(loudness(note)), atol=1.0)  # the 20-dB drop
    np.testing.assert_allclose(loud - quiet, [20.0, 20.0], atol=1.0)
    # Measured again on the output, where phase reconstruction of random features loses up to ~5 dB.
    np.testing.assert_allclose(loud, loudness(note), atol=6.0)
    # Without it the latent plays at its own level, steady.
    latent = model.encode(note, 16000, pitch=57)
    assert abs(np.diff(loudness(model.decode(latent, pitch=57)))[0]) < 10.0


def test_pitch_temperature_blends_pitches_when_decoding_only():
    model = tiny("ae").eval()
    with torch.no_grad():  # a read-out torn between pitches 40 and 52 (logits 0 and -2), sure of nothing else
        model.pitch_head.weight.zero_()
        model.pitch_head.bias.fill_(-1e4)
        model.pitch_head.bias[40 - TINY.min_pitch] = 0.0
        model.pitch_head.bias[52 - TINY.min_pitch] = -2.0
    latent = torch.randn(1, 8)

    def blend(share: float) -> torch.Tensor:  # the decoder given 52 with weight ``share``, else 40
        weights = torch.zeros(1, TINY.max_pitch - TINY.min_pitch + 1)
        weights[0, 40 - TINY.min_pitch], weights[0, 52 - TINY.min_pitch] = 1 - share, share
        return model.decoder(latent, model.pitch.expected(weights))[..., :251]

    sharp, soft = 1 / (1 + math.exp(2)), 1 / (1 + math.exp(2 / TINY.pitch_temperature))
    assert TINY.pitch_temperature > 1 and soft > sharp
    torch.testing.assert_close(model.decode_features(latent), blend(soft))  # the config's temperature
    torch.testing.assert_close(model.decode_features(latent, pitch_temperature=1.0), blend(sharp))
    features = torch.rand(1, 128, 251) * 2 - 1
    training = model(features, torch.tensor([40]))["reconstruction"]  # the ae's latent is deterministic
    latent = model.encode_features(features).mean
    torch.testing.assert_close(training, model.decode_features(latent, pitch_temperature=1.0))


def test_cvae_has_no_read_out():
    model = tiny("cvae")
    assert model.pitch_head is None
    assert model(torch.rand(1, 128, 251), torch.tensor([60]))["pitch/ce"] == 0
    with pytest.raises(ValueError, match="no pitch read-out"):
        model.read_pitch(torch.randn(1, 8))


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_refining_a_latent_fits_the_note_better_and_leaves_the_weights(name, tmp_path):
    """Features the decoder can draw (another latent's), approached from the encoder's guess."""
    model = Timbre(tiny(name))
    t = np.arange(64000) / 16000
    note = (0.05 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)).astype(np.float32)
    latent = model.encode(note, 16000, pitch=57)
    offset = 0.5 * torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))
    features = model.decode_features(latent + offset, 57)

    def error(z: torch.Tensor) -> float:
        return float((model.decode_features(z, 57) - features).abs().mean())

    with torch.inference_mode():  # as the app's handlers call it
        refined = model.refine(latent, features, 57, steps=30)
    assert refined.shape == latent.shape and error(refined) < 0.5 * error(latent)
    assert all(p.grad is None for p in model.model.parameters())
    # A note that fades 30 dB, which the decoder cannot draw: fitted as reconstruct plays it, at its own loudness.
    spectrogram = model.spectrogram
    faded = spectrogram.with_loudness(features, spectrogram.loudness_db(features) - torch.linspace(0, 30, 251))

    def played_error(z: torch.Tensor) -> float:
        played = spectrogram.with_loudness(model.decode_features(z, 57), spectrogram.loudness_db(faded))
        return float((played - faded).abs().mean())

    assert played_error(model.refine(latent, faded, 57, steps=30)) < 0.5 * played_error(latent)
    # A model loaded inside inference mode (as a handler or a benchmark may) refines too.
    model.model.save_pretrained(tmp_path / name)
    with torch.inference_mode():
        loaded = Timbre.from_folder(tmp_path / name)
        assert torch.allclose(loaded.refine(latent, features, 57, steps=30), refined)
    # Recordings are refined by default: reconstructions, and the latent "Use this sound" starts from.
    assert not np.allclose(model.reconstruct(note, 16000, 57), model.reconstruct(note, 16000, 57, refine_steps=0))
    assert not torch.allclose(model.analyse(note, 16000, 57)[0], latent)
    assert torch.allclose(model.analyse(note, 16000, 57, refine_steps=0)[0], latent)


def test_listening_fits_how_the_note_sounds_and_leaves_the_weights(tmp_path):
    """A recording the models can play (another latent's note, played with a known performance), approached from
    a latent that plays it less well."""
    from hummingface.metrics import lsd_db
    from hummingface.models.vocoder import Vocoder, VocoderConfig
    from hummingface.performance import Performance

    torch.manual_seed(0)
    vocoder = Vocoder(VocoderConfig(width=8, dilations=(1,), pitch_embedding=4, n_envelope=8, n_detail=4, n_noise=8))
    model = Timbre(tiny("cvae"), vocoder=vocoder)
    latent = torch.zeros(TINY.latent_size)
    target = 2 * torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))
    performance = Performance(torch.zeros(251), model.spectrogram.loudness_db(model.decode_features(target, 57)), 62.5)
    recording = model.decode(target, 57, performance=performance)

    def distance(z: torch.Tensor) -> float:
        played = model.decode(z, 57, performance=performance)
        return float(lsd_db(torch.from_numpy(recording), torch.from_numpy(played), 2048, 512))

    assert distance(target) == 0 and distance(latent) > 0.1
    with torch.inference_mode():  # as the app's handlers call it
        listened = model.listen(latent, recording, 44100, 57, steps=10, performance=performance)
    assert listened.shape == latent.shape and distance(listened) < 0.7 * distance(latent)
    assert all(p.grad is None for p in (*model.model.parameters(), *vocoder.parameters()))
    assert torch.equal(model.listen(latent, recording, 44100, 57, steps=0), latent)
    assert torch.equal(Timbre(tiny("cvae")).listen(latent, recording, 44100, 57), latent)  # no vocoder, no ears
    # A vocoder loaded inside inference mode (as a handler or a benchmark may) listens too.
    vocoder.save_pretrained(tmp_path / "vocoder")
    with torch.inference_mode():
        loaded = Timbre(model.model, vocoder=Vocoder.from_folder(tmp_path / "vocoder"))
        assert torch.allclose(loaded.listen(latent, recording, 44100, 57, steps=10, performance=performance),
                              listened)
    # Recordings are listened to by default: reconstructions, and the latent "Use this sound" starts from.
    assert not np.allclose(model.reconstruct(recording, 44100, 57),
                           model.reconstruct(recording, 44100, 57, listen_steps=0))
    assert not torch.allclose(model.analyse(recording, 44100, 57)[0],
                              model.analyse(recording, 44100, 57, listen_steps=0)[0])
