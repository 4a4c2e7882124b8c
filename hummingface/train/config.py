"""The typed training config; saved as ``train_config.json`` beside the model's ``config.json`` and weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hummingface.hub import dataclass_from_dict

TRAIN_CONFIG_NAME = "train_config.json"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a note autoencoder is trained (the model itself is built from its ``AutoencoderConfig``).

    Attributes:
        model: ``ae``, ``vae``, ``mog-vae`` or ``cvae``.
        data: NSynth-layout corpus root (``nsynth-train`` and ``nsynth-valid`` are read).
        epochs: passes over the training notes; ``max_steps`` and ``minutes`` stop earlier if set.
        minutes: wall-clock budget; the learning rate anneals over whichever budget runs out first.
        batch_size: notes per step.
        learning_rate: Adam's peak rate; cosine-annealed to ``learning_rate * final_lr_ratio``.
        beta: final weight of the KL term (per feature value, see ``NoteAutoencoder.forward``).
        kl_warmup_steps: beta rises linearly from 0 over these steps (RAVE's warm-up), so the decoder learns
            to use the latent before the KL pulls it towards the prior.
        min_pitch, max_pitch: MIDI pitches trained on (inclusive).
        limit: use only the first ``limit`` notes of each split (smoke tests).
        valid_notes: validation notes evaluated at each checkpoint and fitted by the latent PCA.
        checkpoint_minutes: save weights, latent space and report this often.
        grad_clip: max global gradient norm.
        seed: batches, initialisation and sampling noise all derive from it.
        pitch_weight: weight of the unconditional models' pitch read-out cross-entropy.
        init: a checkpoint folder to start from instead of random weights (see
            :func:`hummingface.train.autoencoder.warm_start`); ``None`` starts from scratch.
    """

    model: str = "cvae"
    data: str = "data/notes-fluidr3"
    epochs: int = 20
    max_steps: int | None = None
    minutes: float | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    final_lr_ratio: float = 0.1
    beta: float = 0.1
    kl_warmup_steps: int = 2000
    min_pitch: int = 24
    max_pitch: int = 96
    limit: int | None = None
    valid_notes: int = 2048
    checkpoint_minutes: float = 5.0
    grad_clip: float = 1.0
    seed: int = 0
    pitch_weight: float = 0.02
    init: str | None = None

    def loss_weights(self, step: int) -> dict[str, float]:
        """Weights of the named loss terms at ``step``."""
        warmup = min(1.0, step / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0
        return {"recon/l1": 1.0, "kl": self.beta * warmup, "pitch/ce": self.pitch_weight}

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TRAIN_CONFIG_NAME
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> TrainConfig:
        path = Path(folder) / TRAIN_CONFIG_NAME
        return dataclass_from_dict(cls, json.loads(path.read_text()), path)
