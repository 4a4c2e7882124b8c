"""The ``gan`` note generator's task for :mod:`hummingface.train.engine`: adversarial, with auxiliary classifiers.

Losses are named terms weighted by :meth:`GanTrainConfig.loss_weights` (DAC's convention): hinge loss (Lim &
Ye 2017, https://arxiv.org/abs/1705.02894); the discriminator's auxiliary classifiers learn pitch, family and
velocity on real notes (cross-entropy), and the generator is asked to make notes they classify as requested
(``ac/*``, AC-GAN); ``fm`` matches the mean discriminator features of real and generated batches (Salimans et
al. 2016, https://arxiv.org/abs/1606.03498), which steadies the generator while the discriminator is still
weak. Fake notes get the real batch's labels, so the generator sees pitches, families and velocities as often
as the data has them (GANSynth samples pitches so too). The discriminator is trained, saved for resuming in
``.train/discriminator.safetensors``, and not shipped.

Warm start (``init``, default ``checkpoints/cvae``): besides the ``cvae``'s conditioning and decoder, each
family's mixture prior starts at the ``cvae`` latents of ``prior_notes`` training notes of that family
(:meth:`NoteGAN.fit_prior`), so the game begins as a family-conditional ``cvae`` sampler. Unless
``train_decoder``, it then tunes only the prior (component means and scales, the velocity direction): on 2 CPU
cores it runs a few thousand steps, and a decoder tuned for that long against a discriminator that still
mistakes most families (its family accuracy on real notes stayed below 30 %) rendered *fewer* notes as their
family than the ``cvae``'s own decoder did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from hummingface.errors import UserError
from hummingface.models.generator import Discriminator, NoteGAN, velocity_class
from hummingface.train.generator import GeneratorTask, GeneratorTrainConfig


@dataclasses.dataclass(frozen=True)
class GanTrainConfig(GeneratorTrainConfig):
    """How the ``gan`` is trained (the network itself is built from its :class:`GeneratorConfig`).

    Attributes:
        d_learning_rate: the discriminator's peak rate (``learning_rate`` is the generator's).
        disc_channels: discriminator conv channels at 128, 64, 32, 16 and 8 frames.
        adversarial, ac_pitch, ac_family, ac_velocity, feature_matching: loss weights.
        prior_notes: training notes the ``cvae`` encodes to start the family mixtures (with ``init``).
        prior_spread: each mixture component's spread, as a share of its family's latent spread.
        train_decoder: the game also tunes the decoder and conditioning (else the prior only).
    """

    learning_rate: float = 1e-4
    d_learning_rate: float = 2e-4
    disc_channels: tuple[int, ...] = (128, 192, 256, 256, 384)
    adversarial: float = 1.0
    ac_pitch: float = 1.0
    ac_family: float = 1.0
    ac_velocity: float = 0.5
    feature_matching: float = 1.0
    prior_notes: int = 8192
    prior_spread: float = 0.3
    train_decoder: bool = False

    def loss_weights(self) -> dict[str, float]:
        """Weights of the generator's named loss terms."""
        return {
            "adv": self.adversarial, "ac/pitch": self.ac_pitch, "ac/family": self.ac_family,
            "ac/velocity": self.ac_velocity, "fm": self.feature_matching,
        }


class GanTask(GeneratorTask):
    name = "gan"
    config: GanTrainConfig
    model: NoteGAN

    def build(self, resume: Path | None) -> None:
        super().build(resume)
        config = self.config
        if not config.train_decoder:
            if config.init is None and resume is None:
                raise UserError("A gan started from random weights must train its decoder: pass --train-decoder.")
            for part in (self.model.decoder, self.model.conditioning):
                part.requires_grad_(False)
        self.disc = Discriminator(self.model.config, config.disc_channels).to(self.device)
        tuned = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        self.optimizers = {
            "optimizer": torch.optim.Adam(tuned, lr=config.learning_rate, betas=config.betas),
            "d_optimizer": torch.optim.Adam(self.disc.parameters(), lr=config.d_learning_rate, betas=config.betas),
        }
        self.extra_modules = {"discriminator": self.disc}

    def initialise(self, progress: bool) -> None:
        super().initialise(progress)
        if self.config.init is None:
            return
        notes, config = self.train_set, self.config
        rows = np.sort(np.random.default_rng([config.seed, 4]).permutation(len(notes))[: config.prior_notes])
        latents = []
        with torch.inference_mode():
            for start in range(0, len(rows), 64):
                batch = notes.batch(rows[start : start + 64], self.device)
                latents.append(self.cvae.encode_features(batch["features"], batch["pitch"]).mean.float())
        chosen = notes.subset(rows)
        self.model.fit_prior(torch.cat(latents).cpu(), torch.from_numpy(chosen.family),
                             torch.from_numpy(chosen.velocity), config.prior_spread,
                             torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)

    def wrap(self) -> None:
        self.generator, self.critic = self.dist.wrap(self.model), self.dist.wrap(self.disc)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        batch = self.batch(self.train_set, self.train_labels, index)
        real = batch["features"]
        pitch, family, velocity = batch["pitch"], batch["family"], batch["velocity"]
        targets = {"pitch": pitch - self.model.config.min_pitch, "family": family, "velocity": velocity_class(velocity)}
        with self.autocast():
            fake = self.generator(*self.model.random_inputs(len(real)), pitch, family, velocity)
            # One forward for both halves: data parallelism averages gradients once per forward and backward.
            d_both = self.critic(torch.cat([real, fake.detach()]))
            d_real = {name: value[: len(real)] for name, value in d_both.items()}
            d_fake = {name: value[len(real) :] for name, value in d_both.items()}
            d_terms = {
                "d/hinge": F.relu(1 - d_real["adv"]).mean() + F.relu(1 + d_fake["adv"]).mean(),
                **{f"d/ac/{name}": F.cross_entropy(d_real[name], target) for name, target in targets.items()},
            }
            d_loss = d_terms["d/hinge"] + sum(
                getattr(self.config, f"ac_{name}") * d_terms[f"d/ac/{name}"] for name in targets
            )
        self.update(d_loss, self.optimizers["d_optimizer"])
        with self.autocast():
            g_out = self.disc(fake)  # the plain module: its gradients here are never applied, so never averaged
            terms = {
                "adv": -g_out["adv"].mean(),
                **{f"ac/{name}": F.cross_entropy(g_out[name], target) for name, target in targets.items()},
                "fm": (g_out["hidden"].mean(dim=0) - d_real["hidden"].detach().mean(dim=0)).abs().mean(),
            }
            loss = sum(weight * terms[name] for name, weight in self.config.loss_weights().items())
        self.update(loss, self.optimizers["optimizer"])
        accuracy = {
            f"d/acc/{name}": float((d_real[name].argmax(-1) == target).float().mean())
            for name, target in targets.items()
        }
        return {"d/loss": d_loss.item(), **{k: v.item() for k, v in {**d_terms, **terms}.items()}, **accuracy}

    @torch.inference_mode()
    def evaluate(self, batch_size: int = 64) -> dict[str, float]:
        """Notes generated with the validation labels (fixed noise): the discriminator's class accuracies on
        them (``gen/acc/*``) and on the real notes (``real/acc/*``), and ``diversity/l1``: the mean L1 between
        two noises' notes of the same labels."""
        model, notes = self.model, self.valid_set
        self.disc.eval()
        sums: dict[str, float] = {}
        generator = torch.Generator().manual_seed(self.config.seed)
        for start in range(0, len(notes), batch_size):
            index = np.arange(start, min(start + batch_size, len(notes)))
            batch = self.batch(notes, self.valid_labels, index)
            conditions = (batch["pitch"], batch["family"], batch["velocity"])
            first = model(*model.random_inputs(len(index), generator), *conditions)
            second = model(*model.random_inputs(len(index), generator), *conditions)
            targets = {"pitch": batch["pitch"] - model.config.min_pitch, "family": batch["family"],
                       "velocity": velocity_class(batch["velocity"])}
            fake, real = self.disc(first), self.disc(batch["features"])
            values = {"diversity/l1": float((first - second).abs().mean())}
            for name, target in targets.items():
                values[f"gen/acc/{name}"] = float((fake[name].argmax(-1) == target).float().mean())
                values[f"real/acc/{name}"] = float((real[name].argmax(-1) == target).float().mean())
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value * len(index)
        self.disc.train()
        return {name: value / len(notes) for name, value in sums.items()}
