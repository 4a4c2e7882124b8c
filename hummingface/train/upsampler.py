"""Training the upsampler on 44.1 kHz music clips with randomised 8-kHz degradations.

Each step crops ``batch_size`` random stretches of training clips (a random channel or the mid, a random
level), makes each into an "8 kHz file" the way some tool might have (:func:`degrade`), sinc-upsamples it
back exactly as inference does, and asks the model for the high band. Losses (a named dict, weighted,
DAC-style) compare log10 power spectra of output and original above 3.6 kHz at three STFT resolutions
(2048/512, the LSD's own, then 1024/256 and 512/128): ``logpow/l1`` and ``logpow/l2`` (the LSD is an RMS,
so the squared term targets it directly).

``train`` writes into ``out`` every ``checkpoint_minutes`` and at the end: ``config.json`` +
``model.safetensors``, ``train_config.json``, ``metrics.json`` (validation LSD of the model beside the
``sbr`` baseline, loss history) and ``report.png``; the optimizer state and step go to ``out/.train/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import soxr
import torch
from safetensors.torch import load_model, save_file
from scipy import signal
from tqdm import tqdm

from hummingface.audio import read_audio
from hummingface.errors import UserError
from hummingface.hub import WEIGHTS_NAME, dataclass_from_dict
from hummingface.metrics import lsd_spectral
from hummingface.models.upsampler import Upsampler, UpsamplerConfig
from hummingface.train.loop import cosine_schedule, load_optimizer, optimizer_tensors
from hummingface.upsampling import INPUT_RATE, OUTPUT_RATE, Extender, _resample, process_chunks

STATE_DIR = ".train"
TRAIN_CONFIG_NAME = "train_config.json"
LOG_EVERY = 10
RESOLUTIONS = ((2048, 512), (1024, 256), (512, 128))
LOSS_FROM_HZ = 3600.0


@dataclasses.dataclass(frozen=True)
class UpsamplerTrainConfig:
    """How the upsampler is trained (the network itself is built from its ``UpsamplerConfig``).

    Attributes:
        data: folder with ``train/`` and ``valid/`` 44.1 kHz clips (``python -m hummingface data music``).
        minutes: wall-clock budget; the learning rate anneals over it (or over ``max_steps``).
        max_steps: stop after this many steps.
        batch_size: crops per step.
        crop_seconds: length of each crop.
        learning_rate: AdamW's peak rate, cosine-annealed to ``learning_rate * final_lr_ratio``.
        valid_clips, valid_seconds: the held-out stretches scored (LSD) at each checkpoint.
        checkpoint_minutes: save this often.
        limit: use only this many clips per split (smoke tests).
        seed: crops, degradations and initialisation derive from it.
    """

    data: str = "data/music"
    minutes: float | None = 45.0
    max_steps: int | None = None
    batch_size: int = 12
    crop_seconds: float = 1.5
    learning_rate: float = 2e-3
    final_lr_ratio: float = 0.05
    weight_decay: float = 1e-4
    l2_weight: float = 1.0
    valid_clips: int = 12
    valid_seconds: float = 5.0
    checkpoint_minutes: float = 4.0
    grad_clip: float = 1.0
    limit: int | None = None
    seed: int = 0

    def loss_weights(self) -> dict[str, float]:
        return {"logpow/l1": 1.0, "logpow/l2": self.l2_weight}

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TRAIN_CONFIG_NAME
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> UpsamplerTrainConfig:
        path = Path(folder) / TRAIN_CONFIG_NAME
        return dataclass_from_dict(cls, json.loads(path.read_text()), path)


def load_clips(root: str | Path, split: str, limit: int | None = None) -> list[np.ndarray]:
    """The split's clips as float32 ``(channels, samples)`` at 44.1 kHz.

    Raises:
        UserError: the folder holds no audio.
    """
    paths = sorted((Path(root) / split).glob("*.wav")) + sorted((Path(root) / split).glob("*.flac"))
    if not paths:
        raise UserError(f"{Path(root) / split} holds no .wav or .flac clips; render them with `data music`.")
    return [read_audio(path, sample_rate=OUTPUT_RATE)[0] for path in paths[:limit]]


def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 44.1 kHz signal ``(samples,)`` -> an 8 kHz version, as one of many tools might have made it.

    Randomised: an optional IIR low-pass (Butterworth, Chebyshev I or elliptic, order 4-12, cut-off
    3.4-3.95 kHz, zero-phase or causal), then one resampler (soxr at four qualities, scipy's polyphase with a
    random Kaiser window, scipy's FFT resampling, or plain linear interpolation after a low-pass), and
    sometimes 8-bit mu-law or 16-bit quantisation or a faint noise floor.
    """
    x = audio.astype(np.float64)
    resampler = rng.choice(["soxr", "soxr", "poly", "fft", "linear"])
    if resampler == "linear" or rng.random() < 0.4:
        cutoff = rng.uniform(3400, 3950)
        kind, order = rng.choice(["butter", "cheby1", "ellip"]), int(rng.integers(4, 13))
        if kind == "butter":
            sos = signal.butter(order, cutoff, fs=OUTPUT_RATE, output="sos")
        elif kind == "cheby1":
            sos = signal.cheby1(min(order, 8), rng.uniform(0.05, 1.0), cutoff, fs=OUTPUT_RATE, output="sos")
        else:
            sos = signal.ellip(min(order, 8), rng.uniform(0.05, 1.0), rng.uniform(40, 80), cutoff, fs=OUTPUT_RATE,
                               output="sos")
        x = signal.sosfiltfilt(sos, x) if rng.random() < 0.5 else signal.sosfilt(sos, x)
    length = math.ceil(len(x) * INPUT_RATE / OUTPUT_RATE)
    if resampler == "soxr":
        quality = rng.choice(["VHQ", "HQ", "MQ", "LQ"])
        y = soxr.resample(x, OUTPUT_RATE, INPUT_RATE, quality=quality)
    elif resampler == "poly":
        y = signal.resample_poly(x, 80, 441, window=("kaiser", rng.uniform(4.0, 10.0)))
    elif resampler == "fft":
        y = signal.resample(x, length)
    else:
        y = np.interp(np.arange(length) * OUTPUT_RATE / INPUT_RATE, np.arange(len(x)), x)
    y = np.pad(y, (0, max(0, length - len(y))))[:length]
    roll = rng.random()
    if roll < 0.08:
        mu = 255.0
        peak = max(np.abs(y).max(), 1e-6)
        coded = np.sign(y / peak) * np.log1p(mu * np.abs(y / peak)) / np.log1p(mu)
        coded = np.round(coded * 127) / 127
        y = peak * np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    elif roll < 0.3:
        y = np.round(y * 32767) / 32767
    elif roll < 0.4:
        y = y + rng.normal(0, 10 ** rng.uniform(-5, -3.5), len(y))
    return y.astype(np.float32)


def log_power_losses(estimate: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Multi-resolution L1 and L2 of log10 power above :data:`LOSS_FROM_HZ`: ``(B, samples)`` pairs."""
    l1, l2 = 0.0, 0.0
    for n_fft, hop in RESOLUTIONS:
        window = torch.hann_window(n_fft, device=estimate.device)
        low = math.floor(LOSS_FROM_HZ * n_fft / OUTPUT_RATE)
        spectra = [torch.stft(x, n_fft, hop, window=window, return_complex=True)[:, low:] for x in (estimate, target)]
        # re**2 + im**2, not abs()**2: abs has no gradient at an exactly silent bin (NaN).
        est, ref = ((s.real.square() + s.imag.square()).clamp_min(1e-8).log10() for s in spectra)
        l1 = l1 + (est - ref).abs().mean()
        l2 = l2 + (est - ref).square().mean()
    return {"logpow/l1": l1 / len(RESOLUTIONS), "logpow/l2": l2 / len(RESOLUTIONS)}


class CropSampler:
    """Random training pairs: ``(sinc-upsampled degraded crops, original crops)``, both ``(B, samples)``."""

    def __init__(self, clips: list[np.ndarray], crop_seconds: float) -> None:
        self.clips = clips
        self.crop = int(crop_seconds * INPUT_RATE) // 80 * 441  # a whole number of 8-kHz samples

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = [], []
        while len(inputs) < batch_size:
            clip = self.clips[int(rng.integers(len(self.clips)))]
            start = int(rng.integers(0, max(1, clip.shape[-1] - self.crop)))
            channel = int(rng.integers(clip.shape[0] + 1))
            crop = clip[:, start : start + self.crop]
            crop = crop.mean(axis=0) if channel == clip.shape[0] else crop[channel]
            if crop.shape[-1] < self.crop:
                crop = np.pad(crop, (0, self.crop - crop.shape[-1]))
            if np.sqrt(np.mean(crop**2)) < 1e-4:
                continue
            crop = crop * 10 ** (rng.uniform(-20, 3) / 20)
            narrow = degrade(crop, rng)
            inputs.append(_resample(narrow[None], INPUT_RATE, OUTPUT_RATE)[0, : self.crop])
            targets.append(crop.astype(np.float32))
        return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


def validation_set(clips: list[np.ndarray], n_clips: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(8-kHz input (C, n), 44.1-kHz reference (C, N))`` stretches from the middle of held-out clips.

    Degraded as the benchmark does it: soxr (HQ) to 8 kHz.
    """
    length = int(seconds * INPUT_RATE) // 80 * 441
    pairs = []
    for clip in clips[:n_clips]:
        start = max(0, (clip.shape[-1] - length) // 2) // 441 * 441
        reference = clip[:, start : start + length]
        pairs.append((_resample(reference, OUTPUT_RATE, INPUT_RATE), reference))
    return pairs


@torch.inference_mode()
def evaluate(model: Upsampler | None, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean LSD, LSD-LF and LSD-HF (see :func:`hummingface.metrics.lsd_spectral`) of the model or of ``sbr``."""
    if model is not None:
        model.eval()
    extend = Extender(model)
    sums = {"lsd": 0.0, "lsd_lf": 0.0, "lsd_hf": 0.0}
    for narrow, reference in pairs:
        estimate = torch.from_numpy(process_chunks(narrow, extend))
        reference = torch.from_numpy(reference)
        sums["lsd"] += float(lsd_spectral(reference, estimate).mean())
        sums["lsd_lf"] += float(lsd_spectral(reference, estimate, max_hz=3800).mean())
        sums["lsd_hf"] += float(lsd_spectral(reference, estimate, min_hz=4000).mean())
    return {name: value / max(1, len(pairs)) for name, value in sums.items()}


@dataclasses.dataclass
class TrainState:
    """Where a run is (JSON in ``.train/state.json``)."""

    step: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"step": [], "logpow/l1": [], "logpow/l2": [], "lr": []}
    )
    valid: list[dict[str, float]] = dataclasses.field(default_factory=list)
    sbr: dict[str, float] = dataclasses.field(default_factory=dict)


def train(
    config: UpsamplerTrainConfig,
    model_config: UpsamplerConfig,
    out: str | Path,
    resume: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Train (or continue) the upsampler and return the final metrics (also in ``metrics.json``).

    Raises:
        UserError: missing data, or ``out`` holding a run while ``resume`` is off.
    """
    out = Path(out)
    state_dir = out / STATE_DIR
    if resume:
        if not (state_dir / "state.json").is_file():
            raise UserError(f"{out} holds no training run to resume (no {STATE_DIR}/state.json).")
        model_config = Upsampler.from_folder(out).config
    elif (state_dir / "state.json").is_file():
        raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out.")
    sampler = CropSampler(load_clips(config.data, "train", config.limit), config.crop_seconds)
    pairs = validation_set(load_clips(config.data, "valid", config.limit), config.valid_clips, config.valid_seconds)

    torch.manual_seed(config.seed)
    model = Upsampler(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = TrainState()
    if resume:
        load_model(model, str(out / WEIGHTS_NAME), strict=True)
        load_optimizer(optimizer, state_dir / "optimizer.safetensors")
        state = TrainState(**json.loads((state_dir / "state.json").read_text()))
    if not state.sbr:
        state.sbr = evaluate(None, pairs)
    rng = np.random.default_rng([config.seed, state.step])  # a resumed run draws fresh, reproducible crops

    total_steps = config.max_steps if config.max_steps is not None else math.inf
    budget = config.minutes * 60 if config.minutes is not None else math.inf
    if math.isinf(total_steps) and math.isinf(budget):
        raise UserError("Give --minutes or --max-steps: the upsampler trains until one of them runs out.")
    started, last_checkpoint = time.monotonic(), time.monotonic()
    sums: dict[str, float] = {}
    weights = config.loss_weights()
    bar = tqdm(
        total=None if math.isinf(total_steps) else total_steps, initial=state.step, unit="step", disable=not progress
    )
    model.train()
    while state.step < total_steps:
        seconds = state.seconds + time.monotonic() - started
        if seconds >= budget:
            break
        fraction = max(state.step / total_steps, seconds / budget)
        lr = config.learning_rate * cosine_schedule(fraction, config.final_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = sampler.batch(config.batch_size, rng)
        inputs, targets = inputs.to(device), targets.to(device)
        estimate = model(inputs[:, None])[:, 0]
        losses = log_power_losses(estimate, targets)
        loss = sum(weight * losses[name] for name, weight in weights.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if torch.isfinite(norm):  # a non-finite batch is skipped rather than poisoning the weights
            optimizer.step()
        state.step += 1
        bar.update()
        if not torch.isfinite(loss):
            continue
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        sums["count"] = sums.get("count", 0) + 1
        if state.step % LOG_EVERY == 0:
            _log(state, sums, lr)
            bar.set_postfix(l1=f"{state.history['logpow/l1'][-1]:.3f}", l2=f"{state.history['logpow/l2'][-1]:.3f}")
        if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
            state.seconds += time.monotonic() - started
            _checkpoint(model, optimizer, state, config, pairs, out, len(sampler.clips))
            started = last_checkpoint = time.monotonic()
            model.train()
    bar.close()
    if sums.get("count"):
        _log(state, sums, optimizer.param_groups[0]["lr"])
    state.seconds += time.monotonic() - started
    return _checkpoint(model, optimizer, state, config, pairs, out, len(sampler.clips))


def _log(state: TrainState, sums: dict[str, float], lr: float) -> None:
    count = sums.pop("count")
    state.history["step"].append(state.step)
    for name in ("logpow/l1", "logpow/l2"):
        state.history[name].append(sums.pop(name) / count)
    state.history["lr"].append(lr)


def _checkpoint(
    model: Upsampler,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: UpsamplerTrainConfig,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    out: Path,
    train_clips: int,
) -> dict:
    """Evaluate, write every file of the checkpoint into a scratch folder, then move them in."""
    figures = evaluate(model, pairs)
    state.valid.append({"step": state.step, **figures})
    metrics = {
        "model": "upsampler",
        "step": state.step,
        "train_minutes": state.seconds / 60,
        "crops_per_second": state.step * config.batch_size / max(state.seconds, 1e-9),
        "parameters": model.parameter_count(),
        "train": {name: values[-1] for name, values in state.history.items() if values and name.startswith("logpow")},
        "valid": figures,
        "valid_sbr": state.sbr,
        "train_clips": train_clips,
        "valid_stretches": len(pairs),
    }
    scratch = out / STATE_DIR / "next"
    if scratch.exists():
        shutil.rmtree(scratch)
    model.save_pretrained(scratch)
    config.save(scratch)
    report = {**metrics, "history": state.history, "valid_history": state.valid}
    (scratch / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    _plot(state, scratch / "report.png")
    save_file(optimizer_tensors(optimizer), str(scratch / "optimizer.safetensors"))
    (scratch / "state.json").write_text(json.dumps(dataclasses.asdict(state)) + "\n")
    for path in sorted(scratch.iterdir()):
        resume_file = path.name in ("optimizer.safetensors", "state.json")
        path.replace(out / STATE_DIR / path.name if resume_file else out / path.name)
    scratch.rmdir()
    return metrics


def _plot(state: TrainState, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = state.history
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    left.plot(history["step"], history["logpow/l1"], label="train L1", lw=1)
    left.plot(history["step"], history["logpow/l2"], label="train L2", lw=1)
    left.set(xlabel="step", ylabel="log10 power above 3.6 kHz", title="upsampler: training losses")
    left.legend()
    if state.valid:
        steps = [v["step"] for v in state.valid]
        for name, style in (("lsd", "o-"), ("lsd_hf", "s-")):
            right.plot(steps, [v[name] for v in state.valid], style, label=f"model {name}")
            if state.sbr:
                right.axhline(state.sbr[name], ls="--", color="grey", lw=1)
        right.text(0.02, 0.02, "dashed: sbr baseline", transform=right.transAxes, color="grey")
    right.set(xlabel="step", ylabel="LSD (bels)", title="held-out clips, soxr 8 kHz input")
    right.legend()
    figure.savefig(path, dpi=100)
    plt.close(figure)
