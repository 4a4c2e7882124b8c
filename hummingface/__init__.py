"""HummingFace: latent-space sound design, conditional note generation and audio super-resolution.

Importing the package is cheap (no torch); each submodule pulls in what it needs.
"""

__version__ = "0.1.0"
