"""Training loops of the note generators: ``gan`` (adversarial, with auxiliary classifiers) and ``cdecoder`` (L1).

``train`` writes into ``out`` (e.g. ``checkpoints/gan``), every ``checkpoint_minutes`` and at the end:

- ``config.json`` + ``model.safetensors`` (the generator only, loadable with ``hub.py``), ``train_config.json``;
- ``metrics.json`` (validation figures and loss history), ``report.png`` (loss curves) and ``samples.png``
  (one generated note per family at MIDI 60, from fixed noise: the same notes at every checkpoint);
- ``.train/`` (hidden, never pushed): discriminator, optimizer states and the position in the data, for ``resume``.

Losses are named terms weighted by :meth:`GeneratorTrainConfig.loss_weights` (DAC's convention).

- ``gan``: hinge loss (Lim & Ye 2017, https://arxiv.org/abs/1705.02894); the discriminator's auxiliary
  classifiers learn pitch, family and velocity on real notes (cross-entropy), and the generator is asked to
  make notes they classify as requested (``ac/*``, AC-GAN); ``fm`` matches the mean discriminator features of
  real and generated batches (Salimans et al. 2016, https://arxiv.org/abs/1606.03498), which steadies the
  generator while the discriminator is still weak. Fake notes get the real batch's labels, so the generator
  sees pitches, families and velocities as often as the data has them (GANSynth samples pitches so too).
- ``cdecoder``: ``recon/l1``, the mean absolute error of the normalised log-mel features. Not MSE on linear
  magnitudes: on those sparse targets the all-zero spectrogram is a deep local minimum (the original
  project's outputs collapsed to it); the log-mel is dense and L1 keeps the median's sharp partials.

Warm start (``init``, default ``checkpoints/cvae``): both copy the ``cvae``'s pitch conditioning and
decoder; the ``gan`` also starts each family's mixture prior at the ``cvae`` latents of ``prior_notes``
training notes of that family (:meth:`NoteGAN.fit_prior`), so it begins as a family-conditional ``cvae``
sampler. Unless ``train_decoder``, the game then tunes only the prior (component means and scales, the
velocity direction): on 2 CPU cores it runs a few thousand steps, and a decoder tuned for that long against a
discriminator that still mistakes most families (its family accuracy on real notes stayed below 30 %)
rendered *fewer* notes as their family than the ``cvae``'s own decoder did.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file
from torch.nn import functional as F
from tqdm import tqdm

from hummingface.data.gm import FAMILIES
from hummingface.errors import UserError
from hummingface.hub import WEIGHTS_NAME, dataclass_from_dict
from hummingface.models.generator import (
    MODELS,
    CDecoder,
    Discriminator,
    GeneratorConfig,
    NoteGAN,
    velocity_class,
    warm_start,
)
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.loop import cosine_schedule, load_optimizer, optimizer_tensors

STATE_DIR = ".train"
TRAIN_CONFIG_NAME = "train_config.json"
LOG_EVERY = 25
SAMPLE_PITCH = 60


@dataclasses.dataclass(frozen=True)
class GeneratorTrainConfig:
    """How a note generator is trained (the network itself is built from its :class:`GeneratorConfig`).

    Attributes:
        model: ``gan`` or ``cdecoder``.
        data: NSynth-layout corpus root (``nsynth-train`` and ``nsynth-valid`` are read).
        init: ``cvae`` checkpoint folder to warm-start from, or ``None`` for a random start.
        minutes, max_steps: stop at whichever comes first (``None``: not that limit).
        batch_size: notes per step.
        learning_rate: Adam's rate for the generator (cosine-annealed to ``final_lr_ratio`` of it).
        d_learning_rate: the discriminator's (``gan``).
        betas: Adam's betas (GANs like a small beta1).
        disc_channels: discriminator conv channels at 128, 64, 32, 16 and 8 frames.
        adversarial, ac_pitch, ac_family, ac_velocity, feature_matching: loss weights (``gan``).
        prior_notes: training notes the ``cvae`` encodes to start the family mixtures (``gan`` with ``init``).
        prior_spread: each mixture component's spread, as a share of its family's latent spread.
        train_decoder: ``gan``: the game also tunes the decoder and conditioning (else the prior only).
        min_pitch, max_pitch: MIDI pitches trained on (inclusive).
        limit: use only the first ``limit`` notes of each split (smoke tests).
        valid_notes: validation notes evaluated at each checkpoint.
        checkpoint_minutes: save this often.
        grad_clip: max global gradient norm of the generator.
        seed: batches, initialisation and noise all derive from it.
    """

    model: str = "gan"
    data: str = "data/notes-fluidr3"
    init: str | None = "checkpoints/cvae"
    minutes: float | None = None
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-4
    d_learning_rate: float = 2e-4
    final_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.5, 0.99)
    disc_channels: tuple[int, ...] = (128, 192, 256, 256, 384)
    adversarial: float = 1.0
    ac_pitch: float = 1.0
    ac_family: float = 1.0
    ac_velocity: float = 0.5
    feature_matching: float = 1.0
    prior_notes: int = 8192
    prior_spread: float = 0.3
    train_decoder: bool = False
    min_pitch: int = 24
    max_pitch: int = 96
    limit: int | None = None
    valid_notes: int = 512
    checkpoint_minutes: float = 5.0
    grad_clip: float = 1.0
    seed: int = 0

    def loss_weights(self) -> dict[str, float]:
        """Weights of the generator's named loss terms."""
        if self.model == "cdecoder":
            return {"recon/l1": 1.0}
        return {
            "adv": self.adversarial, "ac/pitch": self.ac_pitch, "ac/family": self.ac_family,
            "ac/velocity": self.ac_velocity, "fm": self.feature_matching,
        }

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TRAIN_CONFIG_NAME
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> GeneratorTrainConfig:
        path = Path(folder) / TRAIN_CONFIG_NAME
        return dataclass_from_dict(cls, json.loads(path.read_text()), path)


@dataclasses.dataclass
class TrainState:
    """Where a run is: steps done, seconds spent, and the logged history (JSON in ``.train/state.json``)."""

    step: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    valid: list[dict[str, float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Labels:
    """Labels beyond :class:`NoteFeatures`' (from ``examples.json``): source ``(N,)``, qualities ``(N, 10)``."""

    source: np.ndarray
    qualities: np.ndarray

    @classmethod
    def read(cls, root: Path, split: str, notes: NoteFeatures) -> Labels:
        examples = json.loads((root / f"nsynth-{split}" / "examples.json").read_text())
        rows = [examples[note] for note in notes.note_ids]
        return cls(
            np.asarray([row["instrument_source"] for row in rows], dtype=np.int64),
            np.asarray([row["qualities"] for row in rows], dtype=np.float32),
        )


def train(
    config: GeneratorTrainConfig,
    model_config: GeneratorConfig,
    out: str | Path,
    resume: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Train (or, with ``resume``, continue training) and return the final metrics (also in ``metrics.json``).

    Raises:
        UserError: unknown model, missing data or init checkpoint, or ``out`` holding a run while ``resume`` is off.
    """
    if config.model not in MODELS:
        raise UserError(f"Unknown generator {config.model!r}; choose from {', '.join(MODELS)}.")
    out = Path(out)
    state_dir = out / STATE_DIR
    if resume:
        if not (state_dir / "state.json").is_file():
            raise UserError(f"{out} holds no training run to resume (no {STATE_DIR}/state.json).")
        model_config = MODELS[config.model].from_folder(out).config
    elif (state_dir / "state.json").is_file():
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out.")
    if config.model == "cdecoder":
        model_config = dataclasses.replace(model_config, latent_size=0)

    root = Path(config.data)
    pitches = range(config.min_pitch, config.max_pitch + 1)
    train_set = load_features(root, "train", model_config.spectrogram, pitches, config.limit, progress)
    valid_set = load_features(root, "valid", model_config.spectrogram, pitches, config.limit, progress)
    valid_set = valid_set.subset(
        np.sort(np.random.default_rng([config.seed, 1]).permutation(len(valid_set))[: config.valid_notes])
    )
    train_labels, valid_labels = Labels.read(root, "train", train_set), Labels.read(root, "valid", valid_set)

    torch.manual_seed(config.seed)
    model = MODELS[config.model](model_config).to(device)
    disc = Discriminator(model_config, config.disc_channels).to(device) if config.model == "gan" else None
    if isinstance(model, NoteGAN) and not config.train_decoder:
        if config.init is None and not resume:
            raise UserError("A gan started from random weights must train its decoder: pass --train-decoder.")
        for part in (model.decoder, model.conditioning):
            part.requires_grad_(False)
    tuned = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(tuned, lr=config.learning_rate, betas=config.betas)
    d_optimizer = (
        torch.optim.Adam(disc.parameters(), lr=config.d_learning_rate, betas=config.betas) if disc else None
    )
    state = TrainState()
    if resume:
        load_model(model, str(out / WEIGHTS_NAME), strict=True)
        load_optimizer(optimizer, state_dir / "optimizer.safetensors")
        if disc is not None:
            disc.load_state_dict(load_file(str(state_dir / "discriminator.safetensors")))
            load_optimizer(d_optimizer, state_dir / "d_optimizer.safetensors")
        state = TrainState(**json.loads((state_dir / "state.json").read_text()))
        torch.manual_seed(config.seed + state.step)  # fresh noise, still reproducible
    else:
        _initialise(model, config, train_set, train_labels, device, progress)

    steps_per_epoch = max(1, len(train_set) // config.batch_size)
    total_steps = config.max_steps if config.max_steps is not None else math.inf
    budget = config.minutes * 60 if config.minutes is not None else math.inf
    if not math.isfinite(total_steps) and not math.isfinite(budget):
        raise UserError("Give --minutes or --max-steps: a generator run needs a budget.")
    started, last_checkpoint = time.monotonic(), time.monotonic()
    order_epoch, order = -1, np.empty(0, dtype=np.int64)
    sums: dict[str, float] = {}
    model.train()
    bar = tqdm(total=None if math.isinf(total_steps) else total_steps, initial=state.step, unit="step",
               disable=not progress, desc=config.model)
    while state.step < total_steps:
        seconds = state.seconds + time.monotonic() - started
        if seconds >= budget:
            break
        epoch, position = divmod(state.step, steps_per_epoch)
        if epoch != order_epoch:  # each epoch's order depends only on (seed, epoch): resuming mid-epoch is exact
            order_epoch, order = epoch, np.random.default_rng([config.seed, 0, epoch]).permutation(len(train_set))
        index = order[position * config.batch_size : (position + 1) * config.batch_size]
        batch = _batch(train_set, train_labels, index, device)

        fraction = max(state.step / total_steps, seconds / budget)
        scale = cosine_schedule(fraction, config.final_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * scale
        if config.model == "gan":
            for group in d_optimizer.param_groups:
                group["lr"] = config.d_learning_rate * scale
            logged = _gan_step(model, disc, optimizer, d_optimizer, batch, config)
        else:
            logged = _cdecoder_step(model, optimizer, batch, config)
        state.step += 1
        bar.update()
        for name, value in logged.items():
            sums[name] = sums.get(name, 0.0) + value
        sums["count"] = sums.get("count", 0) + 1
        if state.step % LOG_EVERY == 0:
            _log(state, sums, config.learning_rate * scale)
            bar.set_postfix({k: f"{v[-1]:.3f}" for k, v in state.history.items() if k in ("recon/l1", "d/loss", "adv")})
        if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
            state.seconds += time.monotonic() - started
            started = last_checkpoint = time.monotonic()
            _checkpoint(model, disc, optimizer, d_optimizer, state, config, valid_set, valid_labels, out, device,
                        len(train_set))
            model.train()
    bar.close()
    if sums.get("count"):
        _log(state, sums, optimizer.param_groups[0]["lr"])
    state.seconds += time.monotonic() - started
    return _checkpoint(model, disc, optimizer, d_optimizer, state, config, valid_set, valid_labels, out, device,
                       len(train_set))


def _batch(notes: NoteFeatures, labels: Labels, index: np.ndarray, device) -> dict[str, torch.Tensor]:
    batch = notes.batch(index, device)
    batch["source"] = torch.from_numpy(labels.source[index]).to(device)
    batch["qualities"] = torch.from_numpy(labels.qualities[index]).to(device)
    return batch


def _initialise(model, config: GeneratorTrainConfig, notes: NoteFeatures, labels: Labels, device, progress) -> None:
    """Pitch ranges and presets from the training labels; then the warm start from ``config.init``, if any."""
    for family in range(model.config.n_families):
        pitches = notes.pitch[notes.family == family]
        if len(pitches):
            model.pitch_range[family] = torch.tensor([int(pitches.min()), int(pitches.max())])
    if isinstance(model, CDecoder):
        model.presets.copy_(presets(notes.family, labels, model.config))
    if config.init is None:
        return
    from hummingface.models.autoencoder import CVAE

    init = Path(config.init)
    if not (init / "config.json").is_file():
        raise UserError(f"--init {init} is not a checkpoint folder (no config.json); give a cvae or 'none'.")
    cvae = CVAE.from_folder(init, device=device)
    cvae_config = cvae.config
    mismatch = [name for name in ("channels", "pitch_embedding", "min_pitch", "max_pitch", "spectrogram")
                if getattr(cvae_config, name) != getattr(model.config, name)]
    if isinstance(model, NoteGAN) and cvae_config.latent_size != model.config.latent_size:
        mismatch.append("latent_size")
    if cvae.pitch.size != model.config.cond_size:
        mismatch.append("cond_size")
    if mismatch:
        raise UserError(f"--init {init} differs from the generator in {', '.join(mismatch)}; it cannot warm-start it.")
    warm_start(model, cvae)
    if isinstance(model, NoteGAN):
        rows = np.sort(np.random.default_rng([config.seed, 4]).permutation(len(notes))[: config.prior_notes])
        latents = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(rows), 64), desc="cvae prior", unit="batch", disable=not progress):
                batch = notes.batch(rows[start : start + 64], device)
                latents.append(cvae.encode_features(batch["features"], batch["pitch"]).mean.float())
        chosen = notes.subset(rows)
        model.fit_prior(torch.cat(latents).cpu(), torch.from_numpy(chosen.family), torch.from_numpy(chosen.velocity),
                        config.prior_spread, torch.Generator().manual_seed(config.seed))
        model.to(device)


def presets(family: np.ndarray, labels: Labels, config: GeneratorConfig) -> torch.Tensor:
    """Each family's most frequent (source, qualities) vectors ``(n_families, presets, 1 + n_qualities)``.

    A family with fewer distinct vectors repeats its most frequent one; an absent family gets zeros.
    """
    table = torch.zeros(config.n_families, config.presets, 1 + config.n_qualities)
    for index in range(config.n_families):
        rows = np.flatnonzero(family == index)
        if len(rows) == 0:
            continue
        counts = Counter((int(labels.source[r]), *labels.qualities[r].astype(int).tolist()) for r in rows)
        ranked = [vector for vector, _ in counts.most_common(config.presets)]
        ranked += [ranked[0]] * (config.presets - len(ranked))
        table[index] = torch.tensor(ranked, dtype=torch.float32)
    return table


def _gan_step(model: NoteGAN, disc: Discriminator, optimizer, d_optimizer, batch, config) -> dict[str, float]:
    real = batch["features"]
    pitch, family, velocity = batch["pitch"], batch["family"], batch["velocity"]
    targets = {"pitch": pitch - model.config.min_pitch, "family": family, "velocity": velocity_class(velocity)}
    fake = model(*model.random_inputs(len(real)), pitch, family, velocity)

    d_real, d_fake = disc(real), disc(fake.detach())
    d_terms = {
        "d/hinge": F.relu(1 - d_real["adv"]).mean() + F.relu(1 + d_fake["adv"]).mean(),
        **{f"d/ac/{name}": F.cross_entropy(d_real[name], target) for name, target in targets.items()},
    }
    d_loss = d_terms["d/hinge"] + sum(
        getattr(config, f"ac_{name}") * d_terms[f"d/ac/{name}"] for name in targets
    )
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()

    g_out = disc(fake)
    terms = {
        "adv": -g_out["adv"].mean(),
        **{f"ac/{name}": F.cross_entropy(g_out[name], target) for name, target in targets.items()},
        "fm": (g_out["hidden"].mean(dim=0) - d_real["hidden"].detach().mean(dim=0)).abs().mean(),
    }
    loss = sum(weight * terms[name] for name, weight in config.loss_weights().items())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    accuracy = {
        f"d/acc/{name}": float((d_real[name].argmax(-1) == target).float().mean()) for name, target in targets.items()
    }
    return {"d/loss": d_loss.item(), **{k: v.item() for k, v in {**d_terms, **terms}.items()}, **accuracy}


def _cdecoder_step(model: CDecoder, optimizer, batch, config) -> dict[str, float]:
    out = model(batch["pitch"], batch["family"], batch["velocity"], batch["source"], batch["qualities"])
    loss = F.l1_loss(out, batch["features"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return {"recon/l1": loss.item()}


def _log(state: TrainState, sums: dict[str, float], lr: float) -> None:
    count = sums.pop("count")
    history = state.history
    history.setdefault("step", []).append(state.step)
    history.setdefault("lr", []).append(lr)
    for name in list(sums):
        history.setdefault(name, []).append(sums.pop(name) / count)


@torch.inference_mode()
def evaluate(model, disc: Discriminator | None, notes: NoteFeatures, labels: Labels, seed: int, device,
             batch_size: int = 64) -> dict[str, float]:
    """Validation figures.

    ``cdecoder``: ``recon/l1`` against the notes. ``gan``: notes generated with the validation labels (fixed
    noise) -- the discriminator's class accuracies on them (``gen/acc/*``) and on the real notes
    (``real/acc/*``), and ``diversity/l1``: the mean L1 between two noises' notes of the same labels.
    """
    model.eval()
    sums: dict[str, float] = {}
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(notes), batch_size):
        index = np.arange(start, min(start + batch_size, len(notes)))
        batch = _batch(notes, labels, index, device)
        count = len(index)
        if isinstance(model, CDecoder):
            out = model(batch["pitch"], batch["family"], batch["velocity"], batch["source"], batch["qualities"])
            values = {"recon/l1": float((out - batch["features"]).abs().mean())}
        else:
            conditions = (batch["pitch"], batch["family"], batch["velocity"])
            first = model(*model.random_inputs(count, generator), *conditions)
            second = model(*model.random_inputs(count, generator), *conditions)
            targets = {"pitch": batch["pitch"] - model.config.min_pitch, "family": batch["family"],
                       "velocity": velocity_class(batch["velocity"])}
            fake, real = disc(first), disc(batch["features"])
            values = {"diversity/l1": float((first - second).abs().mean())}
            for name, target in targets.items():
                values[f"gen/acc/{name}"] = float((fake[name].argmax(-1) == target).float().mean())
                values[f"real/acc/{name}"] = float((real[name].argmax(-1) == target).float().mean())
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value * count
    return {name: value / len(notes) for name, value in sums.items()}


def _checkpoint(model, disc, optimizer, d_optimizer, state: TrainState, config: GeneratorTrainConfig,
                valid_set: NoteFeatures, valid_labels: Labels, out: Path, device, train_notes: int) -> dict:
    """Evaluate, then write every file of the checkpoint into a scratch folder and move them in at once."""
    figures = evaluate(model, disc, valid_set, valid_labels, config.seed, device)
    state.valid.append({"step": state.step, **figures})
    history = state.history
    metrics = {
        "model": config.model,
        "step": state.step,
        "epochs": state.step * config.batch_size / train_notes,
        "train_minutes": state.seconds / 60,
        "notes_per_second": state.step * config.batch_size / max(state.seconds, 1e-9),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train": {name: values[-1] for name, values in history.items() if name not in ("step", "lr")},
        "valid": figures,
        "train_notes": train_notes,
        "valid_notes": len(valid_set),
        "init": config.init,
    }
    scratch = out / STATE_DIR / "next"
    if scratch.exists():
        shutil.rmtree(scratch)
    model.save_pretrained(scratch)
    config.save(scratch)
    (scratch / "metrics.json").write_text(json.dumps({**metrics, "history": history, "valid_history": state.valid},
                                                     indent=1) + "\n")
    _plot(state, config, scratch / "report.png")
    _samples(model, config.seed, device, scratch / "samples.png")
    resume_files = {"optimizer.safetensors", "state.json", "discriminator.safetensors", "d_optimizer.safetensors"}
    save_file(optimizer_tensors(optimizer), str(scratch / "optimizer.safetensors"))
    if disc is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in disc.state_dict().items()},
                  str(scratch / "discriminator.safetensors"))
        save_file(optimizer_tensors(d_optimizer), str(scratch / "d_optimizer.safetensors"))
    (scratch / "state.json").write_text(json.dumps(dataclasses.asdict(state)) + "\n")
    for path in sorted(scratch.iterdir()):
        path.replace(out / STATE_DIR / path.name if path.name in resume_files else out / path.name)
    scratch.rmdir()
    return metrics


def _plot(state: TrainState, config: GeneratorTrainConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = state.history
    steps = history.get("step", [])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    if config.model == "cdecoder":
        left.plot(steps, history.get("recon/l1", []), label="train L1", lw=1)
        if state.valid:
            left.plot([v["step"] for v in state.valid], [v["recon/l1"] for v in state.valid], "o-", label="valid L1")
        left.set(xlabel="step", ylabel="L1 of normalised log-mel", yscale="log", title="cdecoder")
        right.plot(steps, history.get("lr", []), lw=1)
        right.set(xlabel="step", ylabel="learning rate", title="schedule")
    else:
        for name in ("d/hinge", "adv", "fm"):
            left.plot(steps, history.get(name, []), label=name, lw=1)
        left.set(xlabel="step", title="gan: adversarial terms")
        for name in ("ac/pitch", "ac/family", "ac/velocity"):
            right.plot(steps, history.get(name, []), label=f"G {name}", lw=1)
        for name in ("pitch", "family"):
            right.plot([v["step"] for v in state.valid], [1 - v[f"gen/acc/{name}"] for v in state.valid], "o--",
                       label=f"valid 1 - D acc on generated {name}")
        right.set(xlabel="step", title="auxiliary classifiers (cross-entropy)", yscale="log")
        right.legend(fontsize=7)
    left.legend(fontsize=7)
    figure.savefig(path, dpi=100)
    plt.close(figure)


@torch.inference_mode()
def _samples(model, seed: int, device, path: Path) -> None:
    """One note per family at :data:`SAMPLE_PITCH` from fixed noise (the same at every checkpoint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    n = model.config.n_families
    pitch = torch.full((n,), SAMPLE_PITCH, device=device)
    family = torch.arange(n, device=device)
    velocity = torch.full((n,), 100, device=device)
    if isinstance(model, CDecoder):
        vector = model.presets[family, 0]
        images = model(pitch, family, velocity, vector[:, 0].long(), vector[:, 1:])
    else:
        images = model(*model.random_inputs(n, torch.Generator().manual_seed(seed)), pitch, family, velocity)
    figure, axes = plt.subplots(1, n, figsize=(1.3 * n, 1.8), constrained_layout=True)
    for axis, image, name in zip(axes, images, FAMILIES, strict=True):
        axis.imshow(image.cpu().numpy(), origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma")
        axis.set_title(name, fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.savefig(path, dpi=80)
    plt.close(figure)
