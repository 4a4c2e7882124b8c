"""The 44.1-kHz ``vocoder``'s task for :mod:`hummingface.train.engine`: note features in, the true note out.

Each training note of a 44.1-kHz corpus (``data notes --sample-rate 44100``) gives a pair: its 16-kHz features
(the note models' representation, computed from the note resampled to 16 kHz) and its 44.1-kHz audio. With
probability ``decoded_share`` the features are instead the frozen timbre model's *reconstruction* of the note
(``--timbre``, default ``checkpoints/cvae``: its posterior mean decoded at the note's pitch): the smoother mel
spectrograms the vocoder will be given in the app, paired with the real note they stand for.

Every step renders a random ``crop_seconds`` excerpt of each note (the loss and the synthesiser cost per
sample, and a one-second excerpt teaches as much as a four-second one), with the oscillator driven by the
note's tracked f0 (:func:`track_f0`, cached once) while the network's f0 deviation is taught to match it.
Losses: a multi-resolution STFT loss (DDSP's multi-scale spectral loss: L1 on linear and on log magnitudes,
FFT 4096 .. 128 with 50 % overlap) plus ``deviation_weight`` x the L1 distance in semitones between the
predicted and tracked f0 on sounding frames. Validation renders whole notes with the *predicted* f0:
``lsd_db`` (full-band LSD_dB of DESIGN.md, STFT 2048/512 at 44.1 kHz, 80 dB floor) from the true features and
``lsd_db_decoded`` from the timbre model's reconstructions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn
from tqdm import tqdm

from hummingface.constants import TRAIN_PITCHES
from hummingface.data.datasets import read_note
from hummingface.errors import UserError
from hummingface.metrics import lsd_db
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import Vocoder, VocoderConfig, midi_to_hz
from hummingface.train.data import NoteFeatures, load_features
from hummingface.train.engine import Task, TrainConfig, warm_start


@dataclasses.dataclass(frozen=True)
class VocoderTrainConfig(TrainConfig):
    """How the ``vocoder`` is trained (the model itself is built from its ``VocoderConfig``).

    Attributes:
        timbre: checkpoint folder of the frozen timbre model whose reconstructions are also trained on
            (``"none"``: true features only).
        decoded_share: probability that a training note's features are the timbre model's reconstruction.
        crop_seconds: length of the excerpt each step renders per note.
        deviation_weight: weight of the f0-deviation loss (per semitone).
        init: a vocoder checkpoint folder to start from (:func:`~hummingface.train.engine.warm_start`), e.g. to
            fine-tune the shipped one; ``None``: random weights.
        min_pitch, max_pitch: MIDI pitches trained on (inclusive).
        valid_notes: validation notes scored at each checkpoint.
        fft_sizes: the STFT loss's resolutions (hop = size / 2).
        loss_floor_db: floor of the STFT loss's log magnitudes under each excerpt's peak (``None``: none).
    """

    data: str = "data/notes44-fluidr3"
    batch_size: int = 8
    learning_rate: float = 1e-3
    timbre: str = "checkpoints/cvae"
    decoded_share: float = 0.5
    crop_seconds: float = 1.0
    deviation_weight: float = 1.0
    init: str | None = None
    min_pitch: int = TRAIN_PITCHES.start
    max_pitch: int = TRAIN_PITCHES.stop - 1
    valid_notes: int = 24
    fft_sizes: tuple[int, ...] = (4096, 2048, 1024, 512, 256, 128)
    loss_floor_db: float | None = None


class MultiResolutionSTFTLoss(nn.Module):
    """``(B, samples)`` estimate and target -> scalar: mean over resolutions of L1(|S|) + L1(log |S|).

    With ``floor_db``, each excerpt's log magnitudes are floored ``floor_db`` under its own peak first, as LSD_dB
    floors its spectra (DESIGN.md): what lies 100 dB down in a quiet top octave is not heard, and not scored.
    """

    def __init__(self, fft_sizes: tuple[int, ...], eps: float = 1e-5, floor_db: float | None = None) -> None:
        super().__init__()
        self.fft_sizes, self.eps = fft_sizes, eps
        self.floor = None if floor_db is None else floor_db * math.log(10) / 20  # nepers under the peak
        for size in fft_sizes:
            self.register_buffer(f"window_{size}", torch.hann_window(size), persistent=False)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = estimate.new_zeros(())
        for size in self.fft_sizes:
            window = getattr(self, f"window_{size}")
            est, ref = (torch.stft(x, size, size // 2, window=window, return_complex=True).abs()
                        for x in (estimate, target))
            logs = [(x + self.eps).log() for x in (est, ref)]
            if self.floor is not None:
                logs = [x.maximum(x.amax((1, 2), keepdim=True) - self.floor) for x in logs]
            total = total + (est - ref).abs().mean() + (logs[0] - logs[1]).abs().mean()
        return total / len(self.fft_sizes)


@torch.no_grad()
def track_f0(audio: torch.Tensor, pitch: torch.Tensor, sample_rate: int, frame_rate: float, frames: int,
             max_cents: float = 100.0, step_cents: float = 2.0, max_hz: float = 5000.0, floor_db: float = 40.0,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The f0 of notes whose MIDI pitch is known: ``(B, samples)`` audio, ``(B,)`` pitch -> f0 ``(B, frames)`` Hz
    at ``frame_rate`` and whether each frame sounds ``(B, frames)``.

    A harmonic-sum search within +-``max_cents`` of the label: every 10 ms, a Hann window zero-padded 4x, and
    the candidate f0 (``step_cents`` apart, refined by a parabola) whose first 30 harmonics below ``max_hz``
    have the largest mean log magnitude. The window is 2048 samples at 44.1 kHz, longer for low notes
    (:func:`track_window`): a window too short to resolve the partials put MIDI 25-31 notes 80-100 cents flat.
    The label bounds it, so it makes no octave errors, and it is cheap (no pyin on 6 000 notes). Frames more
    than ``floor_db`` below the note's loudest do not sound; they get the note's median f0.
    """
    f0 = torch.zeros(len(audio), frames, device=audio.device)
    sounding = torch.zeros(len(audio), frames, dtype=torch.bool, device=audio.device)
    windows = [track_window(float(p), sample_rate) for p in pitch]
    for window in set(windows):
        rows = torch.tensor([w == window for w in windows], device=audio.device)
        f0[rows], sounding[rows] = _track(audio[rows], pitch[rows], sample_rate, frame_rate, frames, window,
                                          max_cents, step_cents, max_hz, floor_db)
    return f0, sounding


def track_window(pitch: float, sample_rate: int) -> int:
    """Samples of :func:`track_f0`'s window at MIDI ``pitch``: 2048 at 44.1 kHz, doubled (up to 4x) until it spans
    4 periods, so a Hann window's main lobe (4 bins wide) fits between neighbouring partials."""
    shortest = round(2048 * sample_rate / 44100)
    periods = 4 * sample_rate / float(midi_to_hz(torch.tensor(pitch)))
    return shortest * min(4, 2 ** max(0, math.ceil(math.log2(periods / shortest))))


def _track(audio: torch.Tensor, pitch: torch.Tensor, sample_rate: int, frame_rate: float, frames: int, win: int,
           max_cents: float, step_cents: float, max_hz: float, floor_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`track_f0` with one window length ``win`` for every note."""
    n_fft, hop = 4 * win, round(sample_rate / 100)
    spectrum = torch.stft(audio, n_fft, hop, win_length=win, window=torch.hann_window(win, device=audio.device),
                          return_complex=True).abs()  # (B, bins, T)
    log_mag = (spectrum + 1e-7).log().transpose(1, 2)  # (B, T, bins)
    cents = torch.arange(-max_cents, max_cents + step_cents / 2, step_cents, device=audio.device)
    k = torch.arange(1, 31, device=audio.device, dtype=torch.float32)
    candidates = midi_to_hz(pitch.float())[:, None] * 2.0 ** (cents / 1200)  # (B, C)
    partials = candidates[..., None] * k  # (B, C, K)
    valid = (partials < max_hz).float()
    valid[..., 0] = 1.0  # the fundamental always counts
    bins = (partials / (sample_rate / n_fft)).clamp(max=log_mag.shape[-1] - 2)
    low = bins.floor()
    frac = (bins - low).flatten(1)[:, None]
    low = low.long().flatten(1)[:, None].expand(-1, log_mag.shape[1], -1)  # (B, T, C*K)
    read = torch.gather(log_mag, -1, low) * (1 - frac) + torch.gather(log_mag, -1, low + 1) * frac
    score = (read.unflatten(-1, partials.shape[1:]) * valid[:, None]).sum(-1) / valid.sum(-1)[:, None]  # (B, T, C)
    best = score.argmax(-1).clamp(1, len(cents) - 2)
    left, centre, right = (torch.gather(score, -1, (best + d)[..., None])[..., 0] for d in (-1, 0, 1))
    offset = (0.5 * (left - right) / (left - 2 * centre + right).clamp(max=-1e-6)).clamp(-1, 1)
    f0 = torch.gather(candidates, 1, best) * 2.0 ** (offset * step_cents / 1200)  # (B, T)

    energy = 10 * torch.log10(spectrum.square().sum(1) + 1e-12)  # (B, T)
    sounding = energy > energy.amax(-1, keepdim=True) - floor_db
    median = torch.stack([row[mask].median() if mask.any() else midi_to_hz(p.float())
                          for row, mask, p in zip(f0, sounding, pitch, strict=True)])
    f0 = torch.where(sounding, f0, median[:, None])
    # From 100 frames/s to the features' frame times.
    times = torch.arange(frames, device=audio.device) / frame_rate * 100
    low = times.floor().long().clamp(max=f0.shape[1] - 2)
    frac = times - low
    f0 = f0[:, low] * (1 - frac) + f0[:, low + 1] * frac
    sounding = sounding[:, low] & sounding[:, low + 1]
    return f0, sounding


@dataclasses.dataclass
class VocoderNotes:
    """A split as the vocoder sees it: ``features`` (true) and ``decoded`` (the timbre model's, or ``None``)
    ``(N, n_mels, frames)`` float16, ``pitch`` ``(N,)``, tracked ``f0`` and ``sounding`` ``(N, frames)``, and
    where the audio is (``folder/audio/<note_id>.wav``)."""

    features: np.ndarray
    decoded: np.ndarray | None
    pitch: np.ndarray
    f0: np.ndarray
    sounding: np.ndarray
    note_ids: list[str]
    folder: Path

    def __len__(self) -> int:
        return len(self.note_ids)

    def subset(self, keep: np.ndarray) -> VocoderNotes:
        return VocoderNotes(self.features[keep], None if self.decoded is None else self.decoded[keep],
                            self.pitch[keep], self.f0[keep], self.sounding[keep], [self.note_ids[i] for i in keep],
                            self.folder)

    def audio(self, index: np.ndarray, sample_rate: int, start: int = 0, length: int | None = None) -> torch.Tensor:
        """``length`` samples from ``start`` of the notes at ``index``, ``(B, length)`` float32 at ``sample_rate``."""
        paths = [self.folder / "audio" / f"{self.note_ids[i]}.wav" for i in index]
        if length is None:
            return torch.from_numpy(np.concatenate([read_note(path, sample_rate) for path in paths]))
        clips = []
        for path in paths:
            clip, rate = sf.read(path, start=start, frames=length, dtype="float32", always_2d=True)
            if rate != sample_rate:
                raise UserError(f"{path} is at {rate} Hz; the vocoder trains on a {sample_rate}-Hz corpus.")
            clips.append(np.pad(clip.mean(1), (0, length - len(clip))))
        return torch.from_numpy(np.stack(clips))


def _cache(path: Path, compute, progress: bool) -> np.ndarray:
    """``compute()``'s array, kept at ``path`` (written atomically) so later runs read it."""
    if path.is_file():
        return np.load(path)
    array = compute(progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, array)
    partial.replace(path)
    return array


def _key(*parts: object) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:12]


class VocoderTask(Task):
    name = "vocoder"
    config: VocoderTrainConfig
    model: Vocoder

    def __init__(self, config: VocoderTrainConfig, model_config: VocoderConfig) -> None:
        super().__init__(config, model_config)

    def load_data(self, progress: bool) -> int:
        config = self.config
        timbre = None if config.timbre == "none" else Timbre.from_folder(config.timbre, device="cpu")
        if timbre is not None and timbre.model.config.spectrogram != self.model_config.spectrogram:
            raise UserError(f"--timbre {config.timbre} writes other features than the vocoder reads.")
        sets = {split: self._load_split(split, timbre, progress) for split in ("train", "valid")}
        self.train_set = sets["train"]
        order = np.sort(np.random.default_rng([config.seed, 1]).permutation(len(sets["valid"]))[: config.valid_notes])
        self.valid_set = sets["valid"].subset(order)
        return len(self.train_set)

    def _load_split(self, split: str, timbre: Timbre | None, progress: bool) -> VocoderNotes:
        config, model_config = self.config, self.model_config
        notes = load_features(config.data, split, model_config.spectrogram,
                              range(config.min_pitch, config.max_pitch + 1), config.limit, progress)
        folder = Path(config.data) / f"nsynth-{split}"
        cache = Path(config.data) / ".cache"
        ids = "\n".join(notes.note_ids)
        # The key names the tracker's window rule: tracks made with a fixed 2048-sample window are stale.
        key = _key(ids, model_config.sample_rate, model_config.frame_rate, "windows of >= 4 periods")
        f0 = _cache(cache / f"{split}-f0-{key}.npy",
                    lambda bar: self._track(notes, folder, bar), progress)
        decoded = None
        if timbre is not None:
            weights = Path(config.timbre) / "model.safetensors"
            key = _key(ids, weights.resolve(), weights.stat().st_mtime_ns)
            decoded = _cache(cache / f"{split}-decoded-{key}.npy", lambda bar: reconstruct(timbre, notes, bar),
                             progress)
        features = notes.features[notes.rows]
        return VocoderNotes(features, decoded, notes.pitch.astype(np.float32), f0[0], f0[1].astype(bool),
                            notes.note_ids, folder)

    def _track(self, notes: NoteFeatures, folder: Path, progress: bool, batch_size: int = 16) -> np.ndarray:
        """``(2, N, frames)``: tracked f0 (Hz) and whether each frame sounds, of every note of ``notes``."""
        config = self.model_config
        frames = notes.features.shape[-1]
        out = np.zeros((2, len(notes), frames), dtype=np.float32)
        for start in tqdm(range(0, len(notes), batch_size), desc="tracking f0", disable=not progress):
            index = np.arange(start, min(start + batch_size, len(notes)))
            audio = torch.from_numpy(np.concatenate([
                read_note(folder / "audio" / f"{notes.note_ids[i]}.wav", config.sample_rate) for i in index]))
            f0, sounding = track_f0(audio, torch.from_numpy(notes.pitch[index]), config.sample_rate,
                                    config.frame_rate, frames)
            out[0, index], out[1, index] = f0.numpy(), sounding.numpy()
        return out

    def build(self, resume: Path | None) -> None:
        model_config = Vocoder.from_folder(resume).config if resume is not None else self.model_config
        self.model = Vocoder(model_config).to(self.device)
        self.loss = MultiResolutionSTFTLoss(self.config.fft_sizes, floor_db=self.config.loss_floor_db).to(self.device)
        self.optimizers = {"optimizer": torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)}

    def initialise(self, progress: bool) -> None:
        if self.config.init is not None:
            copied, partial = warm_start(self.model, Path(self.config.init))
            if progress:
                print(f"Started from {self.config.init}: {copied} tensors copied, {partial} in part.")

    def wrap(self) -> None:
        self.trained = self.dist.wrap(self.model)

    def _features(self, notes: VocoderNotes, index: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        """The features of ``index``: each row the reconstruction with probability ``decoded_share`` (``rng``),
        or all true features (``rng`` is ``None``)."""
        features = notes.features[index]
        if rng is not None and notes.decoded is not None:
            use = rng.random(len(index)) < self.config.decoded_share
            features = np.where(use[:, None, None], notes.decoded[index], features)
        return torch.from_numpy(features.astype(np.float32)).to(self.device)

    def step(self, index: np.ndarray, epoch: int, step: int) -> dict[str, float]:
        notes, config, model_config = self.train_set, self.config, self.model_config
        rng = np.random.default_rng([config.seed, step, self.dist.rank])
        length = min(round(config.crop_seconds * model_config.sample_rate), model_config.samples)
        start = int(rng.integers(0, model_config.samples - length + 1))
        target = notes.audio(index, model_config.sample_rate, start, length).to(self.device)
        features = self._features(notes, index, rng)
        pitch = torch.from_numpy(notes.pitch[index]).to(self.device)
        f0 = torch.from_numpy(notes.f0[index]).to(self.device)
        sounding = torch.from_numpy(notes.sounding[index]).to(self.device)
        with self.autocast():
            audio, predicted = self.trained(features, pitch, f0=f0, start=start, length=length)
        stft = self.loss(audio.float(), target)
        tracked = 12 * torch.log2(f0 / midi_to_hz(pitch)[:, None])
        deviation = ((predicted.float() - tracked).abs() * sounding).sum() / sounding.sum().clamp_min(1)
        self.update(stft + config.deviation_weight * deviation, self.optimizers["optimizer"])
        return {"stft": stft.item(), "deviation_st": deviation.item()}

    @torch.inference_mode()
    def evaluate(self, batch_size: int = 8) -> dict[str, float]:
        """Full-band ``lsd_db`` (2048/512, 80 dB floor) of whole validation notes vocoded with the predicted f0, from
        their true features and (``lsd_db_decoded``) from the timbre model's reconstructions."""
        notes, rate = self.valid_set, self.model.config.sample_rate
        sums = {"lsd_db": 0.0, "lsd_db_decoded": 0.0}
        for start in range(0, len(notes), batch_size):
            index = np.arange(start, min(start + batch_size, len(notes)))
            target = notes.audio(index, rate).to(self.device)
            pitch = torch.from_numpy(notes.pitch[index]).to(self.device)
            sources = {"lsd_db": notes.features}
            if notes.decoded is not None:
                sources["lsd_db_decoded"] = notes.decoded
            for name, source in sources.items():
                features = torch.from_numpy(source[index].astype(np.float32)).to(self.device)
                sums[name] += float(lsd_db(target, self.model(features, pitch)[0], n_fft=2048, hop_length=512).sum())
        return {name: sums[name] / len(notes) for name in sources}

    def save(self, folder: Path) -> dict:
        return {"timbre": self.config.timbre, "train_notes": len(self.train_set), "valid_notes": len(self.valid_set)}


@torch.inference_mode()
def reconstruct(timbre: Timbre, notes: NoteFeatures, progress: bool, batch_size: int = 32) -> np.ndarray:
    """The timbre model's reconstruction ``(N, n_mels, frames)`` float16 of every note of ``notes``: its posterior
    mean, decoded at the note's pitch (the cvae; the others read the pitch from the latent)."""
    out = np.zeros((len(notes), *notes.features.shape[1:]), dtype=np.float16)
    for start in tqdm(range(0, len(notes), batch_size), desc=f"{timbre.name} reconstructions", disable=not progress):
        index = np.arange(start, min(start + batch_size, len(notes)))
        batch = notes.batch(index)
        pitch = batch["pitch"] if timbre.conditional else None
        latent = timbre.encode_features(batch["features"], pitch)
        out[index] = timbre.decode_features(latent, pitch).float().numpy().astype(np.float16)
    return out

