"""The 44.1-kHz ``synth-decoder``'s task for :mod:`hummingface.train.engine`: the cvae's latent in, audio out.

The timbre model (``--timbre``, default ``checkpoints/cvae``) stays frozen: its encoder maps each training note
(resampled to its 16 kHz, as it was trained) to a posterior, once, at the start; every step decodes a sample
of that posterior with the note's pitch through :class:`~hummingface.models.synth_decoder.SynthDecoder` and
compares it with the note's audio at the decoder's rate (read from the corpus, resampled if the corpus holds
another rate). So the cvae's latent space -- its PCA sliders, family centroids, the GAN's prior over it --
keeps its meaning, and only the way it is rendered changes. Decoding posterior *samples* rather than means
teaches the decoder the neighbourhood a slider moves through.

The loss is a multi-resolution STFT loss only (DDSP's multi-scale spectral loss: L1 on linear and on log
magnitudes, FFT 4096 .. 128 with 50 % overlap -- 75 %, DDSP's, cost three times as much CPU per step here):
with an oscillator that is given the pitch it needs no adversary. Validation: ``lsd_db``, the full-band
LSD_dB of DESIGN.md (STFT 2048/512 at 44.1 kHz, 80 dB floor).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hummingface.constants import TRAIN_PITCHES
from hummingface.data.datasets import read_note
from hummingface.errors import UserError
from hummingface.metrics import lsd_db
from hummingface.models.autoencoder import NoteAutoencoder
from hummingface.models.synth_decoder import SynthDecoder, SynthDecoderConfig
from hummingface.models.timbre import Timbre
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.engine import Task, TrainConfig


@dataclasses.dataclass(frozen=True)
class SynthDecoderTrainConfig(TrainConfig):
    """How the ``synth-decoder`` is trained (the model itself is built from its ``SynthDecoderConfig``).

    Attributes:
        timbre: checkpoint folder of the frozen timbre model whose latent is decoded (a cvae).
        min_pitch, max_pitch: MIDI pitches trained on (inclusive).
        valid_notes: validation notes scored at each checkpoint.
        fft_sizes: the STFT loss's resolutions (hop = size / 2).
    """

    data: str = "data/notes44-fluidr3"
    batch_size: int = 4
    learning_rate: float = 1e-3
    timbre: str = "checkpoints/cvae"
    min_pitch: int = TRAIN_PITCHES.start
    max_pitch: int = TRAIN_PITCHES.stop - 1
    valid_notes: int = 24
    fft_sizes: tuple[int, ...] = (4096, 2048, 1024, 512, 256, 128)


class MultiResolutionSTFTLoss(nn.Module):
    """``(B, samples)`` estimate and target -> scalar: mean over resolutions of L1(|S|) + L1(log |S|)."""

    def __init__(self, fft_sizes: tuple[int, ...], eps: float = 1e-5) -> None:
        super().__init__()
        self.fft_sizes, self.eps = fft_sizes, eps
        for size in fft_sizes:
            self.register_buffer(f"window_{size}", torch.hann_window(size), persistent=False)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = estimate.new_zeros(())
        for size in self.fft_sizes:
            window = getattr(self, f"window_{size}")
            est, ref = (torch.stft(x, size, size // 2, window=window, return_complex=True).abs()
                        for x in (estimate, target))
            total = total + (est - ref).abs().mean() + ((est + self.eps).log() - (ref + self.eps).log()).abs().mean()
        return total / len(self.fft_sizes)


@dataclasses.dataclass
class EncodedNotes:
    """A split's notes as the timbre model sees them: posterior ``mean``/``std`` ``(N, latent)``, ``pitch`` ``(N,)``,
    and where their audio is (``folder/audio/<note_id>.wav``)."""

    mean: torch.Tensor
    std: torch.Tensor
    pitch: torch.Tensor
    family: np.ndarray
    note_ids: list[str]
    folder: Path

    def __len__(self) -> int:
        return len(self.note_ids)

    def audio(self, index: np.ndarray, sample_rate: int) -> torch.Tensor:
        """The notes at ``index``, ``(B, 4 * sample_rate)`` float32 at ``sample_rate``."""
        paths = [self.folder / "audio" / f"{self.note_ids[i]}.wav" for i in index]
        return torch.from_numpy(np.concatenate([read_note(path, sample_rate) for path in paths]))


@torch.inference_mode()
def encode_notes(model: NoteAutoencoder, notes: NoteFeatures, folder: Path, batch_size: int = 64) -> EncodedNotes:
    """Posteriors of every note of ``notes`` under the (conditional) timbre ``model``."""
    means, stds = [], []
    for start in range(0, len(notes), batch_size):
        batch = notes.batch(np.arange(start, min(start + batch_size, len(notes))))
        posterior = model.encode_features(batch["features"], batch["pitch"])
        means.append(posterior.mean.float())
        stds.append((0.5 * posterior.logvar).exp().float() if posterior.logvar is not None
                    else torch.zeros_like(posterior.mean))
    return EncodedNotes(torch.cat(means), torch.cat(stds), torch.from_numpy(notes.pitch).float(),
                        notes.family, notes.note_ids, folder)


class SynthDecoderTask(Task):
    name = "synth-decoder"
    config: SynthDecoderTrainConfig
    model: SynthDecoder

    def __init__(self, config: SynthDecoderTrainConfig, model_config: SynthDecoderConfig) -> None:
        super().__init__(config, model_config)

    def load_data(self, progress: bool) -> int:
        config = self.config
        timbre = Timbre.from_folder(config.timbre, device="cpu")
        if not timbre.conditional:
            raise UserError(f"--timbre {config.timbre} holds a {timbre.name}; the synth-decoder decodes a cvae latent.")
        self.timbre = timbre.model
        spectrogram = timbre.model.config.spectrogram
        pitches = range(config.min_pitch, config.max_pitch + 1)
        sets = {}
        for split in ("train", "valid"):
            notes = load_features(config.data, split, spectrogram, pitches, config.limit, progress)
            sets[split] = encode_notes(timbre.model, notes, Path(config.data) / f"nsynth-{split}")
        self.train_set = sets["train"]
        order = np.sort(np.random.default_rng([config.seed, 1]).permutation(len(sets["valid"]))[: config.valid_notes])
        valid = sets["valid"]
        self.valid_set = EncodedNotes(valid.mean[order], valid.std[order], valid.pitch[order], valid.family[order],
                                      [valid.note_ids[i] for i in order], valid.folder)
        return len(self.train_set)

    def build(self, resume: Path | None) -> None:
        model_config = SynthDecoder.from_folder(resume).config if resume is not None else dataclasses.replace(
            self.model_config, latent_size=self.timbre.config.latent_size)
        self.model = SynthDecoder(model_config).to(self.device)
        self.loss = MultiResolutionSTFTLoss(self.config.fft_sizes).to(self.device)
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)}

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        notes, rate = self.train_set, self.model.config.sample_rate
        latent = notes.mean[index] + notes.std[index] * torch.randn_like(notes.mean[index])
        target = notes.audio(index, rate).to(self.device)
        with self.autocast():
            audio = self.trained(latent.to(self.device), notes.pitch[index].to(self.device))
        loss = self.loss(audio.float(), target)
        self.update(loss, self.optimizers["optimizer"])
        return {"stft": loss.item()}

    @torch.inference_mode()
    def evaluate(self, batch_size: int = 8) -> dict[str, float]:
        """``stft`` loss and full-band ``lsd_db`` (2048/512, 80 dB floor) of the validation notes' posterior means."""
        notes, rate = self.valid_set, self.model.config.sample_rate
        stft = lsd = 0.0
        for start in range(0, len(notes), batch_size):
            index = np.arange(start, min(start + batch_size, len(notes)))
            target = notes.audio(index, rate).to(self.device)
            audio = self.model(notes.mean[index].to(self.device), notes.pitch[index].to(self.device))
            stft += float(self.loss(audio, target)) * len(index)
            lsd += float(lsd_db(target, audio, n_fft=2048, hop_length=512).sum())
        return {"stft": stft / len(notes), "lsd_db": lsd / len(notes)}

    def save(self, folder: Path) -> dict:
        return {"timbre": self.config.timbre, "train_notes": len(self.train_set), "valid_notes": len(self.valid_set)}
