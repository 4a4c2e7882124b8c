"""Training loop of the note autoencoders (``ae``, ``vae``, ``mog-vae``, ``cvae``).

``train`` writes into ``out`` (a checkpoint folder, e.g. ``checkpoints/cvae``), every ``checkpoint_minutes``
and at the end:

- ``config.json`` + ``model.safetensors`` (the model, loadable with ``hub.py``), ``latent.safetensors`` (the
  PCA of the validation latents, see :mod:`hummingface.latent`), ``train_config.json``;
- ``metrics.json`` (last and best validation figures, loss history) and ``report.png`` (loss curves);
- ``.train/`` (hidden, never pushed): the optimizer state and the position in the data, for ``resume``.

Losses are a dict of named terms weighted by :meth:`TrainConfig.loss_weights` (DAC's convention): ``recon/l1``,
the mean absolute error of the normalised log-mel features, ``kl``, the KL divergence per feature value, and
``pitch/ce``, the cross-entropy of the unconditional models' pitch read-out.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file
from tqdm import tqdm

from hummingface.errors import UserError
from hummingface.hub import WEIGHTS_NAME
from hummingface.latent import LatentSpace
from hummingface.models.autoencoder import MODELS, AutoencoderConfig, NoteAutoencoder
from hummingface.models.timbre import LATENT_FILE
from hummingface.train.config import TrainConfig
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.loop import cosine_schedule, load_optimizer, optimizer_tensors

STATE_DIR = ".train"
LOG_EVERY = 25


@dataclasses.dataclass
class TrainState:
    """Where a run is: steps done, seconds spent, and the logged history (JSON in ``.train/state.json``)."""

    step: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"step": [], "recon/l1": [], "kl_nats": [], "beta": [], "lr": []}
    )
    valid: list[dict[str, float]] = dataclasses.field(default_factory=list)


def train(
    config: TrainConfig,
    model_config: AutoencoderConfig,
    out: str | Path,
    resume: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Train (or, with ``resume``, continue training) and return the final metrics (also in ``metrics.json``).

    Raises:
        UserError: unknown model, missing data, or ``out`` holding a run while ``resume`` is off.
    """
    if config.model not in MODELS:
        raise UserError(f"Unknown model {config.model!r}; choose from {', '.join(MODELS)}.")
    out = Path(out)
    state_dir = out / STATE_DIR
    if resume:
        if not (state_dir / "state.json").is_file():
            raise UserError(f"{out} holds no training run to resume (no {STATE_DIR}/state.json).")
        model_config = MODELS[config.model].from_folder(out).config
    elif (state_dir / "state.json").is_file():
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out.")

    pitches = range(config.min_pitch, config.max_pitch + 1)
    train_set = load_features(config.data, "train", model_config.spectrogram, pitches, config.limit, progress)
    valid_set = load_features(config.data, "valid", model_config.spectrogram, pitches, config.limit, progress)
    valid_set = valid_set.subset(
        np.sort(np.random.default_rng([config.seed, 1]).permutation(len(valid_set))[: config.valid_notes])
    )

    torch.manual_seed(config.seed)
    model = MODELS[config.model](model_config).to(device)
    if config.init is not None and not resume:
        copied, partial = warm_start(model, Path(config.init))
        if progress:
            print(f"Started from {config.init}: {copied} tensors copied, {partial} partly (overlapping slices).")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    state = TrainState()
    if resume:
        load_model(model, str(out / WEIGHTS_NAME), strict=True)
        load_optimizer(optimizer, state_dir / "optimizer.safetensors")
        state = TrainState(**json.loads((state_dir / "state.json").read_text()))
        torch.manual_seed(config.seed + state.step)  # fresh sampling noise, still reproducible

    steps_per_epoch = max(1, len(train_set) // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    budget = config.minutes * 60 if config.minutes is not None else math.inf
    started, last_checkpoint = time.monotonic(), time.monotonic()
    order_epoch, order = -1, np.empty(0, dtype=np.int64)
    sums: dict[str, float] = {}
    model.train()
    bar = tqdm(total=total_steps, initial=state.step, unit="step", disable=not progress, desc=config.model)
    while state.step < total_steps:
        seconds = state.seconds + time.monotonic() - started
        if seconds >= budget:
            break
        epoch, position = divmod(state.step, steps_per_epoch)
        if epoch != order_epoch:  # each epoch's order depends only on (seed, epoch): resuming mid-epoch is exact
            order_epoch, order = epoch, np.random.default_rng([config.seed, 0, epoch]).permutation(len(train_set))
        index = order[position * config.batch_size : (position + 1) * config.batch_size]
        batch = train_set.batch(index, device)

        fraction = max(state.step / total_steps, seconds / budget)
        lr = config.learning_rate * cosine_schedule(fraction, config.final_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        weights = config.loss_weights(state.step)
        output = model(batch["features"], batch["pitch"], batch["family"])
        loss = sum(weight * output[name] for name, weight in weights.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        state.step += 1
        bar.update()

        kl_nats = float(output["kl"].detach()) * batch["features"][0].numel()
        for name, value in (("recon/l1", float(output["recon/l1"].detach())), ("kl_nats", kl_nats)):
            sums[name] = sums.get(name, 0.0) + value
        sums["count"] = sums.get("count", 0) + 1
        if state.step % LOG_EVERY == 0 or state.step == total_steps:
            _log(state, sums, weights["kl"], lr)
            bar.set_postfix(l1=f"{state.history['recon/l1'][-1]:.4f}", kl=f"{state.history['kl_nats'][-1]:.1f}")
        if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
            state.seconds += time.monotonic() - started
            started = last_checkpoint = time.monotonic()
            _checkpoint(model, optimizer, state, config, valid_set, out, device, train_set)
            model.train()
    bar.close()
    if sums.get("count"):
        _log(state, sums, config.loss_weights(state.step)["kl"], optimizer.param_groups[0]["lr"])
    state.seconds += time.monotonic() - started
    return _checkpoint(model, optimizer, state, config, valid_set, out, device, train_set)


def warm_start(model: NoteAutoencoder, folder: Path) -> tuple[int, int]:
    """Initialise ``model`` from the weights in ``folder`` (another note autoencoder, e.g. the trained ``cvae``).

    Tensors with the same name and shape are copied. Where only the sizes differ -- the heads, whose inputs
    or outputs include the ``cvae``'s pitch conditioning or a variational log-variance -- the overlapping
    leading slice is copied and the rest keeps its fresh initialisation. So an ``ae``, ``vae`` or ``mog-vae``
    starts with the ``cvae``'s trained convolutions and only has to learn to carry the pitch in its latent,
    which takes a fraction of the time training from scratch does.

    Returns:
        (tensors copied whole, tensors copied in part).

    Raises:
        UserError: ``folder`` holds no weights.
    """
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise UserError(f"--init {folder} holds no {WEIGHTS_NAME} to start from.")
    source = load_file(str(path))
    copied = partial = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name not in source or source[name].dim() != tensor.dim():
                continue
            given = source[name].to(tensor.dtype)
            if given.shape == tensor.shape:
                tensor.copy_(given)
                copied += 1
            else:
                overlap = tuple(slice(0, min(a, b)) for a, b in zip(tensor.shape, given.shape, strict=True))
                tensor[overlap] = given[overlap]
                partial += 1
    return copied, partial


def _log(state: TrainState, sums: dict[str, float], beta: float, lr: float) -> None:
    count = sums.pop("count")
    state.history["step"].append(state.step)
    for name in ("recon/l1", "kl_nats"):
        state.history[name].append(sums.pop(name) / count)
    state.history["beta"].append(beta)
    state.history["lr"].append(lr)


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


def _checkpoint(
    model: NoteAutoencoder,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: TrainConfig,
    valid_set: NoteFeatures,
    out: Path,
    device: torch.device | str,
    train_set: NoteFeatures,
) -> dict:
    """Evaluate, then write every file of the checkpoint into a scratch folder and move them in at once."""
    figures, latents = evaluate(model, valid_set, device)
    space = LatentSpace.fit(
        latents,
        torch.from_numpy(valid_set.family),
        torch.from_numpy(valid_set.pitch),
        torch.from_numpy(valid_set.velocity),
        valid_set.note_ids,
        seed=config.seed,
    )
    state.valid.append({"step": state.step, **figures})
    metrics = {
        "model": config.model,
        "step": state.step,
        "epochs": state.step * config.batch_size / len(train_set),
        "train_minutes": state.seconds / 60,
        "notes_per_second": state.step * config.batch_size / max(state.seconds, 1e-9),
        "parameters": model.parameter_count(),
        "train": {name: state.history[name][-1] for name in ("recon/l1", "kl_nats")} if state.history["step"] else {},
        "valid": figures,
        "latent": {
            "n_sliders": space.n_sliders,
            "fidelity_at_sliders": float(space.fidelity[space.n_sliders - 1]),
            "explorer_points": len(space.note_ids),
        },
        "train_notes": len(train_set),
        "valid_notes": len(valid_set),
    }
    scratch = out / STATE_DIR / "next"
    if scratch.exists():
        shutil.rmtree(scratch)
    model.save_pretrained(scratch)
    space.save(scratch / LATENT_FILE)
    config.save(scratch)
    report = {**metrics, "history": state.history, "valid_history": state.valid}
    (scratch / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    _plot(state, config, scratch / "report.png")
    save_file(optimizer_tensors(optimizer), str(scratch / "optimizer.safetensors"))
    (scratch / "state.json").write_text(json.dumps(dataclasses.asdict(state)) + "\n")
    for path in sorted(scratch.iterdir()):
        resume_file = path.name in ("optimizer.safetensors", "state.json")
        path.replace(out / STATE_DIR / path.name if resume_file else out / path.name)
    scratch.rmdir()
    return metrics


def _plot(state: TrainState, config: TrainConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = state.history
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    left.plot(history["step"], history["recon/l1"], label="train L1", lw=1)
    if state.valid:
        left.plot([v["step"] for v in state.valid], [v["recon/l1"] for v in state.valid], "o-", label="valid L1")
    left.set(xlabel="step", ylabel="L1 of normalised log-mel", yscale="log", title=f"{config.model}: reconstruction")
    left.legend()
    right.plot(history["step"], history["kl_nats"], label="train KL", lw=1)
    if state.valid:
        right.plot([v["step"] for v in state.valid], [v["kl_nats"] for v in state.valid], "o-", label="valid KL")
    right.set(xlabel="step", ylabel="nats per note", title="KL and beta (warm-up)")
    twin = right.twinx()
    twin.plot(history["step"], history["beta"], color="grey", ls="--", label="beta")
    twin.set_ylabel("beta")
    right.legend(loc="upper left")
    figure.savefig(path, dpi=100)
    plt.close(figure)
