"""Training: typed configs (:mod:`.config`), cached note features (:mod:`.data`), shared pieces (:mod:`.loop`), and
one loop per model family (:mod:`.autoencoder`, :mod:`.gan`, :mod:`.upsampler`)."""
