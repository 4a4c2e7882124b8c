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
