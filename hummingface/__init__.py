"""HummingFace: latent-space sound design, conditional note generation and audio super-resolution.

Importing the package is cheap (no torch); each submodule pulls in what it needs.
"""

__version__ = "0.1.0"


def load(name: str = "cvae", weights=None, device=None):
    """A trained timbre model (``ae``, ``vae``, ``mog-vae`` or ``cvae``) as a :class:`hummingface.models.Timbre`.

    It has ``encode(audio, sr, pitch=None)``, ``decode(latent, pitch=None)``, ``sample(seed, pitch=60)``,
    ``interpolate(a, b, t)`` and the PCA helpers ``to_sliders`` / ``from_sliders`` / ``latent``. Imports torch
    only when called, so ``import hummingface`` stays cheap.

    Args:
        weights: ``org/name[@revision]`` on the Hub or a checkpoint tree; default ``checkpoints/``.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto`` (default ``$HUMMINGFACE_DEVICE`` or auto).
    """
    from hummingface.models.timbre import Timbre

    return Timbre.load(name, weights=weights, device=device)
