"""Training data: an NSynth-layout note corpus rendered from SoundFonts, readers, and a music-clip corpus.

- :mod:`~hummingface.data.gm`: General MIDI programs -> NSynth families, sources and playable ranges.
- :mod:`~hummingface.data.notes`: the FluidSynth note renderer (``python -m hummingface data notes``).
- :mod:`~hummingface.data.datasets`: ``NSynthDataset`` and ``FolderDataset`` for training.
- :mod:`~hummingface.data.music`: 44.1 kHz stereo clips for the upsampler (``python -m hummingface data music``).

Submodules import their heavy dependencies themselves; importing this package costs nothing.
"""
