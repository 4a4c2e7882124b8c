"""Training: one engine (:mod:`.engine`, data-parallel through :mod:`.distributed`) and one task per model --
:mod:`.autoencoder` (ae, vae, mog-vae, cvae), :mod:`.gan`, :mod:`.cdecoder` (sharing :mod:`.generator`),
:mod:`.upsampler`, :mod:`.classifier` -- on cached note features (:mod:`.data`); the ``train`` CLI in :mod:`.cli`."""
