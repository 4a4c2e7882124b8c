"""The note autoencoders' task (``ae``, ``vae``, ``mog-vae``, ``cvae``) for :mod:`hummingface.train.engine`.

Data: an NSynth-layout root (``nsynth-train`` and ``nsynth-valid`` are read), or any folder of audio (see
:func:`hummingface.train.data.load_folder_features`). Losses are a dict of named terms weighted by
:meth:`AutoencoderTrainConfig.loss_weights` (DAC's convention): ``recon/l1``, the mean absolute error of the
normalised log-mel features, ``kl``, the KL divergence per feature value, and ``pitch/ce``, the cross-entropy
of the unconditional models' pitch read-out.

Besides the engine's files each checkpoint holds ``latent.safetensors``: the PCA of the latents (see
:mod:`hummingface.latent`) of the validation notes, or of every sound of a folder (its Explorer points).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from hummingface.constants import TRAIN_PITCHES
from hummingface.dsp import LogCompression
from hummingface.errors import UserError
from hummingface.latent import LatentSpace
from hummingface.models.autoencoder import MODELS, SILENCE, AutoencoderConfig, NoteAutoencoder
from hummingface.models.timbre import LATENT_FILE
from hummingface.train.data import FOLDER_VALID_SHARE, NoteFeatures, load_features, load_folder_features
from hummingface.train.engine import Task, TrainConfig, warm_start


@dataclasses.dataclass(frozen=True)
class AutoencoderTrainConfig(TrainConfig):
    """How a note autoencoder is trained (the model itself is built from its ``AutoencoderConfig``).

    Attributes:
        model: ``ae``, ``vae``, ``mog-vae`` or ``cvae``.
        beta: final weight of the KL term (per feature value, see ``NoteAutoencoder.forward``).
        kl_warmup_steps: beta rises linearly from 0 over these steps (RAVE's warm-up), so the decoder learns
            to use the latent before the KL pulls it towards the prior.
        min_pitch, max_pitch: MIDI pitches trained on (inclusive; an NSynth corpus's other notes are left out).
        valid_notes: validation notes evaluated at each checkpoint and fitted by the latent PCA.
        pitch_weight: weight of the unconditional models' pitch read-out cross-entropy.
        init: a checkpoint folder to start from instead of random weights (see :func:`warm_start`).
        recolour_db: when above 0, half of the training notes are heard through a random colour (:func:`recolour`)
            of at most this many dB a band -- so the latent learns more spectral envelopes than FluidR3's 82
            training programs show (0: off; the shipped ``cvae`` was continued with 12).
        blend_share: this share of the training notes is heard layered with another training note (:func:`blend`):
            sounds no single program makes, as an organ's stops are layered pipes (0: off).
    """

    model: str = "cvae"
    epochs: int | None = 20
    beta: float = 0.1
    kl_warmup_steps: int = 2000
    min_pitch: int = TRAIN_PITCHES.start
    max_pitch: int = TRAIN_PITCHES.stop - 1
    valid_notes: int = 2048
    pitch_weight: float = 0.02
    init: str | None = None
    recolour_db: float = 0.0
    blend_share: float = 0.0

    def loss_weights(self, step: int) -> dict[str, float]:
        """Weights of the named loss terms at ``step``."""
        warmup = min(1.0, step / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0
        return {"recon/l1": 1.0, "kl": self.beta * warmup, "pitch/ce": self.pitch_weight}


class AutoencoderTask(Task):
    def __init__(self, config: AutoencoderTrainConfig, model_config: AutoencoderConfig) -> None:
        if config.model not in MODELS:
            raise UserError(f"Unknown model {config.model!r}; choose from {', '.join(MODELS)}.")
        super().__init__(config, model_config)
        self.name = config.model
        self.skipped_files = 0

    def load_data(self, progress: bool) -> int:
        config = self.config
        spectrogram = self.model_config.spectrogram
        if (Path(config.data) / "nsynth-train").is_dir():
            pitches = range(config.min_pitch, config.max_pitch + 1)
            self.train_set = load_features(config.data, "train", spectrogram, pitches, config.limit, progress)
            valid = load_features(config.data, "valid", spectrogram, pitches, config.limit, progress)
            self.space_set = None
        else:  # any folder of audio: its Explorer shows every one of its sounds
            notes, self.skipped_files = load_folder_features(config.data, spectrogram, config.limit, progress)
            if progress and self.skipped_files:
                print(f"Skipped {self.skipped_files} unreadable or silent files in {config.data}.")
            self.train_set, valid = notes.split(FOLDER_VALID_SHARE, config.seed)
            self.space_set = notes
        order = np.random.default_rng([config.seed, 1]).permutation(len(valid))
        self.valid_set = valid.subset(np.sort(order[: config.valid_notes]))
        pitches = self.train_set.pitch
        self.notes_by_pitch = {int(p): np.flatnonzero(pitches == p) for p in np.unique(pitches)}
        return len(self.train_set)

    def build(self, resume: Path | None) -> None:
        cls = MODELS[self.config.model]
        model_config = cls.from_folder(resume).config if resume is not None else self.model_config
        self.model = cls(model_config).to(self.device)
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)}

    def initialise(self, progress: bool) -> None:
        if self.config.init is not None:
            copied, partial = warm_start(self.model, Path(self.config.init))
            if progress:
                print(f"Started from {self.config.init}: {copied} tensors copied, {partial} in part.")

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        batch = self.train_set.batch(index, self.device)
        if self.config.recolour_db > 0:
            rng = np.random.default_rng([self.config.seed, 6, step, self.dist.rank])
            batch["features"] = recolour(batch["features"], self.config.recolour_db, rng)
        if self.config.blend_share > 0:
            rng = np.random.default_rng([self.config.seed, 7, step, self.dist.rank])
            partners = self.train_set.batch(blend_partners(batch["pitch"].cpu().numpy(), self.notes_by_pitch, rng),
                                            self.device)["features"]
            batch["features"] = blend(batch["features"], partners, rng, self.config.blend_share)
        weights = self.config.loss_weights(step)
        with self.autocast():
            output = self.trained(batch["features"], batch["pitch"], batch["family"])
            loss = sum(weight * output[name].float() for name, weight in weights.items())
        self.update(loss, self.optimizers["optimizer"])
        kl_nats = float(output["kl"].detach()) * batch["features"][0].numel()
        return {"recon/l1": float(output["recon/l1"].detach()), "kl_nats": kl_nats, "beta": weights["kl"]}

    def evaluate(self) -> dict[str, float]:
        figures, self.latents = evaluate(self.model, self.valid_set, self.device)
        return figures

    def save(self, folder: Path) -> dict:
        notes, latents = self.valid_set, self.latents
        if self.space_set is not None:
            notes = self.space_set
            latents = evaluate(self.model, notes, self.device)[1]
        space = LatentSpace.fit(
            latents, torch.from_numpy(notes.family), torch.from_numpy(notes.pitch),
            torch.from_numpy(notes.velocity), notes.note_ids, seed=self.config.seed,
        )
        space.save(folder / LATENT_FILE)
        return {
            "latent": {
                "n_sliders": space.n_sliders,
                "fidelity_at_sliders": float(space.fidelity[space.n_sliders - 1]),
                "explorer_points": len(space.note_ids),
            },
            "train_notes": len(self.train_set),
            "valid_notes": len(self.valid_set),
            "skipped_files": self.skipped_files,
        }


def recolour(features: torch.Tensor, max_db: float, rng: np.random.Generator, share: float = 0.5) -> torch.Tensor:
    """Features ``(B, n_bins, frames)`` with ``share`` of the notes (at random) heard through another colour, as if
    through another body, microphone or filter: a fixed gain curve over the bands (four cosines, each up to
    ``max_db / 2`` dB) plus a tilt that grows from nothing at the start to ``max_db / 2`` dB at the top and bottom
    bands by the end (a note that brightens or darkens). Silent values stay silent.

    Why: the cvae's reconstructions of programs it never heard miss their band levels (README, "Where the rest of
    the gap lies"). The 86-minute cvae continued for 50 minutes at lr 3e-4 with 12 dB of recolouring (the shipped
    cvae) reached a validation L1 of 0.0543 against 0.0560 for the same continuation without (55 minutes), and its
    refined reconstructions through the vocoder LSD_dB 4.74 against 4.78 on 40 validation notes (4.85 before
    either); on the 40 held-out test notes of ``benchmarks/notes44.py`` 4.08 (4.29 before).
    """
    count, bands, frames = features.shape
    position = (torch.arange(bands, dtype=torch.float32) + 0.5) / bands  # (n_bins,) 0..1 up the bands
    cosines = torch.cos(torch.pi * torch.arange(1, 5, dtype=torch.float32)[:, None] * position)  # (4, n_bins)
    amounts = torch.from_numpy(rng.uniform(-1, 1, (count, 4)).astype(np.float32)) * max_db / 2
    tilt = torch.from_numpy(rng.uniform(-1, 1, (count, 1, 1)).astype(np.float32)) * max_db / 2
    gain_db = (amounts @ cosines)[..., None] + tilt * (2 * position - 1)[:, None] * torch.linspace(0, 1, frames)
    chosen = torch.from_numpy(rng.random((count, 1, 1)) < share)
    gain = LogCompression().gain(torch.where(chosen, gain_db, 0.0)).to(features.device)
    return torch.where(features > SILENCE, (features + gain).clamp_min(SILENCE), features)


# A layered note's partner sounds at the same pitch or a harmonic of it -- octave, twelfth, double octave -- as an
# organ's 8', 4', 2 2/3' and 2' stops do, so the layer stays harmonic.
BLEND_INTERVALS = (0, 0, 12, 19, 24)
BLEND_MAX_CUT_DB = 18.0  # the partner sounds 0..18 dB below the note it is layered with


def blend_partners(pitch: np.ndarray, notes_by_pitch: dict[int, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """For notes of MIDI ``pitch`` ``(B,)``, positions ``(B,)`` of random partners (in the set ``notes_by_pitch``
    indexes) at one of :data:`BLEND_INTERVALS` above each; the nearest pitch there is when none is."""
    known = np.array(sorted(notes_by_pitch))
    wanted = pitch + rng.choice(BLEND_INTERVALS, len(pitch))
    nearest = known[np.abs(known[None, :] - wanted[:, None]).argmin(1)]
    return np.array([rng.choice(notes_by_pitch[int(p)]) for p in nearest])


def blend(features: torch.Tensor, partners: torch.Tensor, rng: np.random.Generator, share: float) -> torch.Tensor:
    """Features ``(B, n_bins, frames)`` with ``share`` of the notes (at random) layered with ``partners`` (same
    shape) 0..:data:`BLEND_MAX_CUT_DB` dB quieter: their powers add, band by band and frame by frame.

    Why: most of the cvae's remaining reconstruction error is the band levels of programs it never heard, worst
    for the organs, reeds and synth leads (README, "Where the rest of the gap lies"); FluidR3's 82 training
    programs are few spectra, and layering any two of them gives the latent many more to learn.
    """
    log = LogCompression()
    cut = torch.from_numpy(rng.uniform(0, BLEND_MAX_CUT_DB, (len(features), 1, 1)).astype(np.float32))
    chosen = torch.from_numpy(rng.random((len(features), 1, 1)) < share).to(features.device)
    own = features * log.scale + log.offset  # ln magnitude
    other = (partners - log.gain(cut).to(features.device)) * log.scale + log.offset
    layered = (torch.logaddexp(2 * own, 2 * other) / 2 - log.offset) / log.scale
    return torch.where(chosen & (partners > SILENCE), layered.clamp_min(SILENCE), features)  # silence adds nothing


@torch.inference_mode()
def evaluate(
    model: NoteAutoencoder, notes: NoteFeatures, device: torch.device | str = "cpu", batch_size: int = 64
) -> tuple[dict[str, float], torch.Tensor]:
    """Validation figures with posterior means (``recon/l1``, ``kl_nats``) and the latents ``(N, latent_size)``."""
    model.eval()
    l1, kl, latents = 0.0, 0.0, []
    for start in range(0, len(notes), batch_size):
        batch = notes.batch(np.arange(start, min(start + batch_size, len(notes))), device)
        posterior = model.encode_features(batch["features"], batch["pitch"])
        reconstruction = model.decode_features(posterior.mean, batch["pitch"])
        count = len(batch["features"])
        l1 += float((reconstruction - batch["features"]).abs().mean()) * count
        kl += float(model.kl(posterior, batch["family"])) * count
        latents.append(posterior.mean.float().cpu())
    return {"recon/l1": l1 / len(notes), "kl_nats": kl / len(notes)}, torch.cat(latents)
