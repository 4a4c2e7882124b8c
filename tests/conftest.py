"""Shared fixtures. Tests run offline: the Hub is reached only through caches the tests build themselves."""

import os
import tempfile

import numpy as np
import pytest


def pytest_configure(config):
    # huggingface_hub reads these once, at import: set them before any test imports it.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="hummingface-hub-cache-")
    os.environ.pop("HUMMINGFACE_WEIGHTS", None)
    os.environ.pop("HUMMINGFACE_DEVICE", None)


@pytest.fixture(scope="session")
def hub_cache() -> str:
    """The Hugging Face cache folder this test session uses (empty until a test lays out a repo)."""
    return os.environ["HF_HUB_CACHE"]


@pytest.fixture(scope="session")
def real_notes() -> np.ndarray:
    """Four real FluidR3 notes (piano, nylon guitar, trumpet, flute), float32 ``(4, 64000)`` at 16 kHz.

    Rendered as the corpus renders them: held 3 s, then 1 s of release.
    """
    from hummingface.data.synth import FLUIDR3_GM, FluidRenderer

    renderer = FluidRenderer(FLUIDR3_GM, sample_rate=16000, effects=False)
    notes = []
    for program, pitch in [(0, 60), (24, 52), (56, 67), (73, 72)]:
        renderer.select(0, program)
        notes.append(renderer.note(pitch, 100, hold_frames=48000, total_frames=64000))
    renderer.close()
    notes = np.stack(notes)
    return (0.5 * notes / np.abs(notes).max(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A checkpoint tree of untrained tiny models, laid out like ``checkpoints/``: cvae and vae (with latent
    spaces), gan, cdecoder, upsampler and the vocoder that plays the note models at 44.1 kHz. Enough to drive the
    studio and the app end to end in seconds."""
    import dataclasses

    import torch

    from hummingface.latent import LatentSpace
    from hummingface.models.autoencoder import MODELS, AutoencoderConfig
    from hummingface.models.generator import CDecoder, GeneratorConfig, NoteGAN
    from hummingface.models.timbre import LATENT_FILE
    from hummingface.models.upsampler import Upsampler, UpsamplerConfig
    from hummingface.models.vocoder import Vocoder, VocoderConfig

    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for name in ("cvae", "vae"):
        model = MODELS[name](AutoencoderConfig(latent_size=8, channels=(8, 8, 8, 8, 8), pitch_embedding=4))
        model.save_pretrained(root / name)
        n = 64
        space = LatentSpace.fit(
            torch.randn(n, 8), torch.arange(n) % 11, 40 + torch.arange(n) % 40, torch.full((n,), 100),
            [f"note_{i:03d}-060-100" for i in range(n)],
        )
        space.save(root / name / LATENT_FILE)
    generator = GeneratorConfig(latent_size=4, channels=(8, 8, 8, 8, 8), pitch_embedding=4, cond_size=8)
    NoteGAN(generator).save_pretrained(root / "gan")
    CDecoder(dataclasses.replace(generator, latent_size=0)).save_pretrained(root / "cdecoder")
    Upsampler(UpsamplerConfig(width=8, dilations=(1,))).save_pretrained(root / "upsampler")
    Vocoder(VocoderConfig(width=8, dilations=(1,), pitch_embedding=4, n_envelope=8, n_detail=4, n_noise=8)
            ).save_pretrained(root / "vocoder")
    return root
