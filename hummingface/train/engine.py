"""The one training engine every model trains through; each model adds a :class:`Task` (its hooks).

The engine owns what all runs share: the budget (epochs, steps or minutes: whichever runs out first, stopped
at the same step on every process), the cosine learning-rate schedule over that budget, the data order
(``DistributedSampler``: each process its share of every global batch, reshuffled per epoch), logging,
checkpoints and resuming. A task owns its data, its model(s), one training step and its evaluation.

``train`` writes into ``out`` (a checkpoint folder, e.g. ``checkpoints/cvae``), every ``checkpoint_minutes``
and at the end, from rank 0 only:

- ``config.json`` + ``model.safetensors`` (the shipped model, loadable with ``hub.py``), ``train_config.json``,
  and the task's own files (e.g. ``latent.safetensors``, ``samples.png``);
- ``metrics.json`` (last validation figures, loss history) and ``report.png`` (one panel per figure);
- ``.train/`` (hidden, never pushed): optimizer states, training-only modules (a discriminator) and
  ``state.json`` (step, seconds, history), which ``resume`` continues from exactly.

Every file is first written into ``.train/next`` and then moved in, so an interrupted save leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from hummingface.errors import UserError
from hummingface.hub import WEIGHTS_NAME, Pretrained, dataclass_from_dict
from hummingface.train.distributed import Distributed

TRAIN_CONFIG_NAME = "train_config.json"
STATE_DIR = ".train"
LOG_EVERY = 25
PRECISIONS = ("fp32", "bf16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What every run is given; each model's config adds its own fields. Saved as ``train_config.json``.

    Attributes:
        data: the training data (an NSynth-layout root, a folder of audio, or music clips: see each task).
        epochs, max_steps, minutes: the budget; the run stops at whichever comes first (``None``: not that
            one) and the learning rate anneals over it. At least one must be set.
        batch_size: the global batch: split evenly over the processes of a data-parallel run.
        learning_rate: the peak rate, cosine-annealed to ``learning_rate * final_lr_ratio``.
        grad_clip: max global gradient norm (``None``: no clipping).
        checkpoint_minutes: save this often (and at the end).
        limit: use only this many items of each split (smoke tests).
        seed: initialisation, data order and noise all derive from it.
        precision: ``fp32``, or ``bf16`` to run forward passes under bfloat16 autocast.
    """

    data: str = "data/notes-fluidr3"
    epochs: int | None = None
    max_steps: int | None = None
    minutes: float | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    final_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    checkpoint_minutes: float = 5.0
    limit: int | None = None
    seed: int = 0
    precision: str = "fp32"

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TRAIN_CONFIG_NAME
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path):
        path = Path(folder) / TRAIN_CONFIG_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path} cannot be read as JSON ({error}).") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} does not hold a JSON object of training settings.")
        return dataclass_from_dict(cls, data, path)


@dataclasses.dataclass
class TrainState:
    """Where a run is: steps done, seconds trained, the logged history and validations (``.train/state.json``)."""

    step: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    valid: list[dict[str, float]] = dataclasses.field(default_factory=list)


class Task:
    """One model's hooks. The engine calls, in order: :meth:`load_data` (rank 0 first, so caches are built
    once), :meth:`build`, then :meth:`initialise` for a fresh run or loads the saved state to resume,
    :meth:`wrap`, and :meth:`step` per batch; at each checkpoint rank 0 calls :meth:`evaluate` and :meth:`save`.

    After :meth:`build` a task holds ``model`` (the shipped :class:`Pretrained`), ``optimizers`` (by name:
    their states are saved as ``.train/<name>.safetensors``) and ``extra_modules`` (trained but not shipped).
    """

    name: ClassVar[str]
    items: ClassVar[str] = "notes"  # what one batch row is, for the throughput figure

    def __init__(self, config: TrainConfig, model_config) -> None:
        self.config = config
        self.model_config = model_config  # builds a fresh model (a resumed one is built from its config.json)
        self.dist = Distributed()
        self.model: Pretrained
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.extra_modules: dict[str, nn.Module] = {}

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def load_data(self, progress: bool) -> int:
        """Read (and cache) the data; return how many items one epoch holds."""
        raise NotImplementedError

    def build(self, resume: Path | None) -> None:
        """Create ``model``, ``optimizers`` and ``extra_modules`` (from ``resume``'s config.json when resuming)."""
        raise NotImplementedError

    def initialise(self, progress: bool) -> None:
        """A fresh run's start beyond random weights (warm starts, statistics of the data). Default: nothing."""

    def wrap(self) -> None:
        """Wrap the trained modules for data parallelism (:meth:`Distributed.wrap`)."""
        raise NotImplementedError

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        """Train on this process's items ``index`` (positions in the data) at global ``step``; return figures."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Validation figures (rank 0 only, in eval mode)."""
        raise NotImplementedError

    def save(self, folder: Path) -> dict:
        """Write the task's own files into ``folder``; return extra metrics. Default: nothing."""
        return {}

    def baselines(self) -> dict[str, float]:
        """Reference values of validation figures, drawn dashed in the report. Default: none."""
        return {}

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' precision (``config.precision``)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One optimizer step on ``loss``: backward, clip, and step unless the gradient is not finite.

        Under data parallelism the gradients are already averaged over processes when ``backward`` returns,
        so every process clips and skips alike.
        """
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        if torch.isfinite(norm):  # a non-finite batch is skipped rather than poisoning the weights
            optimizer.step()


def cosine_schedule(fraction: float, final_ratio: float) -> float:
    """Learning-rate multiplier at ``fraction`` (0-1) of the budget: 1 -> ``final_ratio`` along a half cosine."""
    fraction = min(max(fraction, 0.0), 1.0)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * fraction))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's state as flat named tensors (safetensors holds nothing else), for resuming."""
    tensors = {}
    for index, values in optimizer.state_dict()["state"].items():
        for name, value in values.items():
            tensors[f"{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Restore the state :func:`optimizer_tensors` saved to ``path`` into ``optimizer``."""
    state = optimizer.state_dict()
    restored: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path)).items():
        index, name = key.split(".", 1)
        restored.setdefault(int(index), {})[name] = value
    state["state"] = restored
    optimizer.load_state_dict(state)


def train(
    task: Task,
    out: str | Path,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Train ``task`` into ``out`` (or, with ``resume``, continue the run saved there); return the final metrics.

    Under torchrun every process calls this; rank 0 returns the metrics (also in ``metrics.json``), the others
    ``{"step": …}``. ``stop_after`` ends the run after that step, as an interruption would, with a checkpoint
    that ``resume`` continues exactly (the schedule still spans the whole budget).

    Raises:
        UserError: bad budget or batch size, missing data, or ``out`` holding a run while ``resume`` is off.
    """
    dist = Distributed.from_environment(device)
    try:
        return _Run(task, Path(out), dist, progress).fit(resume, stop_after)
    finally:
        dist.close()


class _Run:
    def __init__(self, task: Task, out: Path, dist: Distributed, progress: bool) -> None:
        self.task, self.out, self.dist = task, out, dist
        self.config = task.config
        self.progress = progress and dist.is_main
        task.dist = dist

    def fit(self, resume: bool, stop_after: int | None) -> dict:
        config, task, dist = self.config, self.task, self.dist
        state_file = self.out / STATE_DIR / "state.json"
        if resume and not state_file.is_file():
            raise UserError(f"{self.out} holds no training run to resume (no {STATE_DIR}/state.json).")
        if not resume and state_file.is_file():
            raise UserError(
                f"{self.out} already holds a training run; pass --resume to continue it or choose another --out."
            )
        if config.precision not in PRECISIONS:
            raise UserError(f"Precision {config.precision!r} is not one of {', '.join(PRECISIONS)}.")
        local_batch = dist.local_batch(config.batch_size)
        with dist.main_first():
            self.items = task.load_data(self.progress)
        steps_per_epoch = max(1, self.items // config.batch_size)
        total = min(
            config.epochs * steps_per_epoch if config.epochs is not None else math.inf,
            config.max_steps if config.max_steps is not None else math.inf,
        )
        budget = config.minutes * 60 if config.minutes is not None else math.inf
        if math.isinf(total) and math.isinf(budget):
            raise UserError("Give --epochs, --max-steps or --minutes: a run needs a budget.")

        torch.manual_seed(config.seed)
        task.build(self.out if resume else None)
        state = TrainState()
        if resume:
            state = self._load(state_file)
        else:
            task.initialise(self.progress)
        task.wrap()
        # Per-process noise (latent samples, generator inputs), reproducible across resumes.
        torch.manual_seed(int(np.random.SeedSequence([config.seed, state.step, dist.rank]).generate_state(1)[0]))
        base_lrs = {name: [group["lr"] for group in opt.param_groups] for name, opt in task.optimizers.items()}
        sampler = DistributedSampler(
            range(self.items), num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=config.seed
        )

        started = last_checkpoint = time.monotonic()
        order_epoch, order = -1, np.empty(0, dtype=np.int64)
        sums: dict[str, list[float]] = {}
        task.model.train()
        bar = tqdm(total=None if math.isinf(total) else total, initial=state.step, unit="step",
                   disable=not self.progress, desc=task.name)
        while state.step < total and (stop_after is None or state.step < stop_after):
            now = time.monotonic()
            out_of_time, due = dist.any(
                state.seconds + now - started >= budget, now - last_checkpoint >= config.checkpoint_minutes * 60
            )
            if out_of_time:
                break
            if due:
                state.seconds += now - started
                self._checkpoint(state)
                task.model.train()
                started = last_checkpoint = time.monotonic()
            epoch, position = divmod(state.step, steps_per_epoch)
            if epoch != order_epoch:  # the order depends only on (seed, epoch): resuming mid-epoch is exact
                sampler.set_epoch(epoch)
                order_epoch, order = epoch, np.fromiter(iter(sampler), dtype=np.int64)
            seconds = state.seconds + time.monotonic() - started
            fraction = max(state.step / total, seconds / budget)
            scale = cosine_schedule(fraction, config.final_lr_ratio)
            for name, optimizer in task.optimizers.items():
                for group, base in zip(optimizer.param_groups, base_lrs[name], strict=True):
                    group["lr"] = base * scale
            logged = task.step(order[position * local_batch : (position + 1) * local_batch], epoch, state.step)
            state.step += 1
            bar.update()
            for name, value in {**logged, "lr": config.learning_rate * scale}.items():
                values = sums.setdefault(name, [])  # every process logs the same names, finite or not
                if math.isfinite(value):
                    values.append(value)
            if state.step % LOG_EVERY == 0:
                self._log(state, sums)
                bar.set_postfix({name: f"{values[-1]:.3g}" for name, values in list(state.history.items())[1:4]})
        bar.close()
        self._log(state, sums)
        state.seconds += time.monotonic() - started
        return self._checkpoint(state)

    def _load(self, state_file: Path) -> TrainState:
        task, folder = self.task, state_file.parent
        load_model(task.model, str(self.out / WEIGHTS_NAME), strict=True)
        for name, module in task.extra_modules.items():
            module.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
        for name, optimizer in task.optimizers.items():
            load_optimizer(optimizer, folder / f"{name}.safetensors")
        return TrainState(**json.loads(state_file.read_text()))

    def _log(self, state: TrainState, sums: dict[str, list[float]]) -> None:
        """Append the means since the last log, averaged over processes, to the history."""
        if "lr" not in sums:
            return
        means = self.dist.mean({name: float(np.mean(values)) if values else math.nan for name, values in sums.items()})
        state.history.setdefault("step", []).append(state.step)
        for name, value in means.items():
            state.history.setdefault(name, []).append(value)
        sums.clear()

    def _checkpoint(self, state: TrainState) -> dict:
        """Rank 0 evaluates and writes a whole checkpoint; the others wait for it."""
        metrics: dict = {"step": state.step}
        if self.dist.is_main:
            metrics = self._write(state)
        self.dist.barrier()
        return metrics

    def _write(self, state: TrainState) -> dict:
        task, config, out = self.task, self.config, self.out
        task.model.eval()
        figures = task.evaluate()
        state.valid.append({"step": state.step, **figures})
        scratch = out / STATE_DIR / "next"
        if scratch.exists():
            shutil.rmtree(scratch)
        task.model.save_pretrained(scratch)
        config.save(scratch)
        extra = task.save(scratch)
        last = {name: values[-1] for name, values in state.history.items() if name not in ("step", "lr")}
        metrics = {
            "model": task.name,
            "step": state.step,
            "epochs": state.step * config.batch_size / self.items,
            "train_minutes": state.seconds / 60,
            f"{task.items}_per_second": state.step * config.batch_size / max(state.seconds, 1e-9),
            "processes": self.dist.world_size,
            "parameters": sum(p.numel() for p in task.model.parameters()),
            "train": last,
            "valid": figures,
            **extra,
        }
        report = {**metrics, "history": state.history, "valid_history": state.valid}
        (scratch / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
        plot_report(state, task.name, task.baselines(), scratch / "report.png")
        resume_files = {"state.json"}
        for name, optimizer in task.optimizers.items():
            save_file(optimizer_tensors(optimizer), str(scratch / f"{name}.safetensors"))
            resume_files.add(f"{name}.safetensors")
        for name, module in task.extra_modules.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
                      str(scratch / f"{name}.safetensors"))
            resume_files.add(f"{name}.safetensors")
        (scratch / "state.json").write_text(json.dumps(dataclasses.asdict(state)) + "\n")
        for path in sorted(scratch.iterdir()):
            path.replace(out / STATE_DIR / path.name if path.name in resume_files else out / path.name)
        scratch.rmdir()
        return metrics


def plot_report(state: TrainState, title: str, baselines: dict[str, float], path: Path) -> None:
    """One panel per logged figure: training means (line), validations (dots), baselines (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = state.history
    names = [name for name in history if name != "step"]
    names += [name for name in (state.valid[-1] if state.valid else {}) if name != "step" and name not in names]
    columns = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False,
                                constrained_layout=True)
    for axis, name in zip(axes.flat, names, strict=False):
        if name in history:
            axis.plot(history["step"], history[name], lw=1, label="train")
        valid = [(v["step"], v[name]) for v in state.valid if name in v]
        if valid:
            axis.plot(*zip(*valid, strict=True), "o-", ms=3, label="valid")
        if name in baselines:
            axis.axhline(baselines[name], ls="--", color="grey", lw=1, label="baseline")
        axis.set_title(name, fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in axes.flat[len(names):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=6)
    figure.suptitle(f"{title}: step {state.step}", fontsize=9)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def warm_start(model: nn.Module, folder: Path) -> tuple[int, int]:
    """Initialise ``model`` from the weights in ``folder`` (e.g. the trained ``cvae``, or an older ``vocoder``).

    Tensors with the same name and shape are copied. Where only the sizes differ -- the heads, whose inputs
    or outputs include the ``cvae``'s pitch conditioning or a variational log-variance -- the overlapping
    leading slice is copied and the rest keeps its fresh initialisation. So an ``ae``, ``vae`` or ``mog-vae``
    starts with the ``cvae``'s trained convolutions and only has to learn to carry the pitch in its latent,
    which takes a fraction of the time training from scratch does. Tensors ``folder`` lacks (a module added
    since) keep their fresh initialisation.

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
