"""HummingFace: latent-space sound design, conditional note generation and audio super-resolution.

Importing the package is cheap (no torch); each submodule pulls in what it needs.
"""

__version__ = "0.1.0"


def load(name: str = "cvae", weights=None, device=None, vocoder="vocoder"):
    """A trained timbre model (``ae``, ``vae``, ``mog-vae`` or ``cvae``) as a :class:`hummingface.models.Timbre`.

    It has ``encode(audio, sr, pitch=None)``, ``decode(latent, pitch=None, vibrato=None, performance=None)``,
    ``reconstruct(audio, sr)`` (played as the recording was: its loudness and pitch curves), ``sample(seed,
    pitch=60)``,
    ``interpolate(a, b, t)`` and the PCA helpers ``to_sliders`` / ``from_sliders`` / ``latent``. Imports torch
    only when called, so ``import hummingface`` stays cheap.

    Args:
        weights: ``org/name[@revision]`` on the Hub or a checkpoint tree; default ``checkpoints/``.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto`` (default ``$HUMMINGFACE_DEVICE`` or auto).
        vocoder: the checkpoint that plays the notes at 44.1 kHz (``model.sample_rate``); ``None``, or
            weights without it, play them at 16 kHz.
    """
    from hummingface.models.timbre import Timbre

    return Timbre.load(name, weights=weights, device=device, vocoder=vocoder)


def load_generator(name: str = "gan", weights=None, device=None, vocoder="vocoder"):
    """A note generator (``gan`` or ``cdecoder``) as a :class:`hummingface.models.generator.NoteGenerator`.

    It has ``generate(pitch, family, velocity=100, seed=0)`` -> float32 ``(176400,)`` at 44.1 kHz and
    ``surprise(seed)`` -> ``(audio, pitch, family)``. Arguments as for :func:`load`.
    """
    from hummingface.models.generator import NoteGenerator

    return NoteGenerator.load(name, weights=weights, device=device, vocoder=vocoder)


def upsample(audio, sr, mode="model", device=None, progress=False, **kwargs):
    """8 kHz -> 44.1 kHz music: ``(audio, sr)`` -> ``(audio (channels, samples) float32, 44100)``.

    ``mode`` is ``model`` (learned band extension, ``checkpoints/upsampler``), ``sbr`` (blind spectral band
    replication) or ``sinc``; input above 8 kHz is brought to 8 kHz first. ``progress`` is ``True`` for a
    tqdm bar or a callable taking the fraction done. See :func:`hummingface.upsampling.upsample`.
    """
    from hummingface.upsampling import upsample as run

    return run(audio, sr, mode=mode, device=device, progress=progress, **kwargs)


def __getattr__(name: str):
    """``hummingface.Vibrato`` and ``hummingface.measure_vibrato`` (:mod:`hummingface.vibrato`), imported (with
    torch) on first use."""
    if name in ("Vibrato", "measure_vibrato"):
        from hummingface import vibrato

        return getattr(vibrato, name)
    raise AttributeError(f"module 'hummingface' has no attribute {name!r}")
