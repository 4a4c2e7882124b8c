"""Training: typed configs (:mod:`.config`), cached note features (:mod:`.data`), the loop (:mod:`.autoencoder`)."""
