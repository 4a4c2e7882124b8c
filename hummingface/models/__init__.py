"""Note models. ``autoencoder``: the ``ae``, ``vae``, ``mog-vae`` and ``cvae`` networks (features in, features out);
``timbre``: :class:`~hummingface.models.timbre.Timbre`, one of them with its spectrogram and latent space (audio in,
audio out), as the app, the CLI and :func:`hummingface.load` use it.
"""

from hummingface.models.autoencoder import AE, CVAE, MODELS, VAE, AutoencoderConfig, MoGVAE, NoteAutoencoder
from hummingface.models.timbre import Timbre

__all__ = ["AE", "CVAE", "MODELS", "VAE", "AutoencoderConfig", "MoGVAE", "NoteAutoencoder", "Timbre"]
