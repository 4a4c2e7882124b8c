"""The upsampler's task for :mod:`hummingface.train.engine`: 44.1 kHz music clips, randomised 8-kHz degradations.

Each item of an epoch is a random stretch of a training clip (a random channel or the mid, a random level),
drawn from a generator seeded by ``(seed, epoch, item)`` so that any split of the batch over processes draws
the same crops. Each is made into an "8 kHz file" the way some tool might have (:func:`degrade`),
sinc-upsampled back exactly as inference does, and the model is asked for the high band. Losses (a named
dict, weighted, DAC-style) compare log10 power spectra of output and original above 3.6 kHz at three STFT
resolutions (2048/512, the LSD's own, then 1024/256 and 512/128): ``logpow/l1`` and ``logpow/l2`` (the LSD
is an RMS, so the squared term targets it directly).

Data: ``train/``, ``valid/`` and ``test/`` clips (``python -m hummingface data music``). Checkpoints report
the LSD of ``valid_clips`` validation stretches beside the ``sbr`` baseline; the ``test`` split is never read
here, so ``benchmarks/upsample.py`` can score a model on clips that chose nothing.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import soxr
import torch
from scipy import signal

from hummingface.audio import read_audio
from hummingface.errors import UserError
from hummingface.metrics import lsd_spectral
from hummingface.models.upsampler import Upsampler, UpsamplerConfig
from hummingface.train.engine import Task, TrainConfig
from hummingface.upsampling import INPUT_RATE, OUTPUT_RATE, Extender, _resample, process_chunks

RESOLUTIONS = ((2048, 512), (1024, 256), (512, 128))
LOSS_FROM_HZ = 3600.0


@dataclasses.dataclass(frozen=True)
class UpsamplerTrainConfig(TrainConfig):
    """How the upsampler is trained (the network itself is built from its ``UpsamplerConfig``).

    Attributes:
        crop_seconds: length of each training crop.
        weight_decay: AdamW's.
        l2_weight: weight of ``logpow/l2`` beside ``logpow/l1``.
        valid_clips, valid_seconds: the held-out stretches scored (LSD) at each checkpoint.
    """

    data: str = "data/music"
    minutes: float | None = 45.0
    batch_size: int = 12
    crop_seconds: float = 1.5
    learning_rate: float = 2e-3
    final_lr_ratio: float = 0.05
    weight_decay: float = 1e-4
    l2_weight: float = 1.0
    valid_clips: int = 12
    valid_seconds: float = 5.0
    checkpoint_minutes: float = 4.0

    def loss_weights(self) -> dict[str, float]:
        return {"logpow/l1": 1.0, "logpow/l2": self.l2_weight}


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
    """Training pairs ``(sinc-upsampled degraded crop, original crop)``, each ``(samples,)``, one per item.

    An epoch holds about as many crops as the clips hold crop lengths; item ``i`` of epoch ``e`` is drawn from
    a generator seeded by ``(seed, e, i)``, so it is the same crop whichever process draws it.
    """

    def __init__(self, clips: list[np.ndarray], crop_seconds: float, seed: int) -> None:
        self.clips, self.seed = clips, seed
        self.crop = int(crop_seconds * INPUT_RATE) // 80 * 441  # a whole number of 8-kHz samples
        self.items = max(1, sum(clip.shape[-1] for clip in clips) // self.crop)

    def batch(self, index: np.ndarray, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)``, both float32 ``(len(index), samples)``."""
        pairs = [self.pair(np.random.default_rng([self.seed, epoch, int(item)])) for item in index]
        return tuple(torch.from_numpy(np.stack(side)) for side in zip(*pairs, strict=True))

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        while True:  # silent stretches teach nothing: draw again
            clip = self.clips[int(rng.integers(len(self.clips)))]
            start = int(rng.integers(0, max(1, clip.shape[-1] - self.crop)))
            channel = int(rng.integers(clip.shape[0] + 1))
            crop = clip[:, start : start + self.crop]
            crop = crop.mean(axis=0) if channel == clip.shape[0] else crop[channel]
            if crop.shape[-1] < self.crop:
                crop = np.pad(crop, (0, self.crop - crop.shape[-1]))
            if np.sqrt(np.mean(crop**2)) >= 1e-4:
                break
        crop = crop * 10 ** (rng.uniform(-20, 3) / 20)
        narrow = degrade(crop, rng)
        return _resample(narrow[None], INPUT_RATE, OUTPUT_RATE)[0, : self.crop], crop.astype(np.float32)


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


class UpsamplerTask(Task):
    name = "upsampler"
    items = "crops"
    config: UpsamplerTrainConfig
    model: Upsampler

    def __init__(self, config: UpsamplerTrainConfig, model_config: UpsamplerConfig) -> None:
        super().__init__(config, model_config)
        self.sbr: dict[str, float] | None = None

    def load_data(self, progress: bool) -> int:
        config = self.config
        self.sampler = CropSampler(load_clips(config.data, "train", config.limit), config.crop_seconds, config.seed)
        valid = load_clips(config.data, "valid", config.limit)
        self.pairs = validation_set(valid, config.valid_clips, config.valid_seconds)
        return self.sampler.items

    def build(self, resume: Path | None) -> None:
        model_config = Upsampler.from_folder(resume).config if resume is not None else self.model_config
        self.model = Upsampler(model_config).to(self.device)
        config = self.config
        self.optimizers = {"optimizer": torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate,
                                                          weight_decay=config.weight_decay)}

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        inputs, targets = (x.to(self.device) for x in self.sampler.batch(index, epoch))
        with self.autocast():
            estimate = self.trained(inputs[:, None])[:, 0]
        losses = log_power_losses(estimate.float(), targets)
        loss = sum(weight * losses[name] for name, weight in self.config.loss_weights().items())
        self.update(loss, self.optimizers["optimizer"])
        return {name: float(value.detach()) for name, value in losses.items()}

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.pairs)

    def baselines(self) -> dict[str, float]:
        if self.sbr is None:  # the same every checkpoint: scored once, by rank 0 alone
            self.sbr = evaluate(None, self.pairs)
        return self.sbr

    def save(self, folder: Path) -> dict:
        return {"valid_sbr": self.baselines(), "train_clips": len(self.sampler.clips),
                "valid_stretches": len(self.pairs)}
