"""8 kHz -> 44.1 kHz music: the public :func:`upsample`, its two DSP baselines and long-file processing.

Three modes share one pipeline:

- ``sinc``: band-limited resampling with soxr (high quality). Nothing is added above 4 kHz.
- ``sbr``: blind spectral band replication, the classic trick of HE-AAC without the encoder's side
  information: the upper low band (about 1.8-3.7 kHz) is copied upwards patch by patch in the STFT domain,
  and each copied bin is scaled by the spectral tilt fitted to the low band's octaves, extrapolated.
- ``model``: the same copy, re-shaped by the learned gains of :class:`hummingface.models.upsampler.Upsampler`.

How the pipeline treats the signal:

- **Input band.** Any rate is accepted; audio is first brought to 8 kHz (soxr), so content above 4 kHz in
  the file is replaced, not kept. The result is sinc-resampled to 44.1 kHz, and everything below
  ``pass_below_hz`` (3.8 kHz) is that resampled input, untouched: the generated band is added on top of it
  only above 3.8 kHz, cross-fading in over 3.8-4 kHz.
- **Stereo and more channels** are extended jointly, as mid and side (more channels: the mid and each
  channel's difference from it). The mid drives the model's gains; the tilt is fitted on all signals
  together; the side is replicated with the *same* gains. So the high band pans like the band it was copied
  from, identical channels stay identical, and a silent channel stays silent (two independent mono passes
  would invent panning).
- **Long files** run in overlapping chunks (30 s by default) with a second of context on each side and
  raised-cosine cross-fades of half a second, so memory is bounded by the chunk, not the file, and joins
  are seamless. Chunk edges sit on multiples of 80 samples at 8 kHz (441 at 44.1 kHz), so every chunk is
  resampled on the same sample grid.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn

from hummingface.errors import UserError

if TYPE_CHECKING:
    from hummingface.models.upsampler import Upsampler

INPUT_RATE = 8000
OUTPUT_RATE = 44100
MODES = ("model", "sbr", "sinc")
GRID = 80  # samples at 8 kHz that map onto a whole number of samples (441) at 44.1 kHz
CHUNK_SECONDS = 20.0

ProgressCallback = Callable[[float], None]


class BandReplication(nn.Module):
    """Blind spectral band replication on a complex STFT ``(..., bins, frames)`` at 44.1 kHz.

    Target bins at and above ``pass_below_hz`` are filled with copies of the source band
    ``[source_low_hz, source_high_hz)`` translated up by whole patch widths. The patch width is a multiple
    of ``n_fft / hop_length`` bins, so a translated partial keeps advancing its phase coherently from frame to
    frame (the translation's phase rotation per hop is a whole number of turns): the copy is itself a
    consistent STFT of a frequency-shifted signal. A block that starts ``offset`` samples into a longer
    signal gets the phase the copy would have had in one piece, so chunks of a long file agree.

    Each copied bin is scaled by the spectral tilt of the low band, extrapolated from the source frequency
    to the target frequency. The tilt is a least-squares line through the log power of three octave bands
    (0.5-1, 1-2 and 2-3.7 kHz) against log frequency, per frame, after smoothing the band powers over
    ``smooth_frames`` frames; it is fitted on the sum over channels, so all channels share it.

    Args:
        n_fft, hop_length: the STFT the spectra come from (44.1 kHz).
        pass_below_hz: first frequency that is generated; bins below are left as they are.
        crossfade_hz: width of the cross-fade from the input to the generated band, above ``pass_below_hz``.
        source_low_hz, source_high_hz: the band that is copied up (rounded to a whole patch width).
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        sample_rate: int = OUTPUT_RATE,
        pass_below_hz: float = 3800.0,
        crossfade_hz: float = 200.0,
        source_low_hz: float = 1800.0,
        source_high_hz: float = 3700.0,
        smooth_frames: int = 21,
        max_slope: float = 0.0,
        min_slope: float = -2.0,
    ) -> None:
        super().__init__()
        bin_hz = sample_rate / n_fft
        n_bins = n_fft // 2 + 1
        step = max(1, n_fft // hop_length)
        self.low_bin = math.ceil(pass_below_hz / bin_hz)  # first generated bin
        self.n_high = n_bins - self.low_bin
        source_high = int(source_high_hz // bin_hz)
        width = max(step, round((source_high_hz - source_low_hz) / bin_hz / step) * step)
        source_low = source_high - width
        if source_low < 1 or source_high > self.low_bin:
            raise ValueError("The source band must lie inside the passed-through band.")
        target = torch.arange(self.low_bin, n_bins)
        source = source_low + (target - source_low) % width  # shifted down by whole patch widths
        freqs = torch.arange(n_bins) * bin_hz
        self.n_fft = n_fft
        self.register_buffer("source_index", source, persistent=False)
        self.register_buffer("shift", target - source, persistent=False)
        # Octaves from each copy's source to its target: the tilt (bels per octave) times this is its gain.
        self.register_buffer("octaves", torch.log2(freqs[target] / freqs[source]), persistent=False)
        ramp = ((freqs[target] - pass_below_hz) / crossfade_hz).clamp(0, 1)
        self.register_buffer("fade_in", torch.sin(0.5 * math.pi * ramp) ** 2, persistent=False)
        edges = [500.0, 1000.0, 2000.0, min(source_high_hz, pass_below_hz)]
        bands = torch.zeros(3, n_bins)
        for index, (low, high) in enumerate(itertools.pairwise(edges)):
            bands[index, (freqs >= low) & (freqs < high)] = 1.0
        bands = bands[:, : int(bands.nonzero()[:, 1].max()) + 1]  # only the bins the fit reads
        self.register_buffer("bands", bands / bands.sum(dim=1, keepdim=True), persistent=False)
        centres = torch.log2(torch.tensor([math.sqrt(a * b) for a, b in itertools.pairwise(edges)]))
        self.register_buffer("centres", centres - centres.mean(), persistent=False)
        self.smooth_frames, self.min_slope, self.max_slope = smooth_frames, min_slope, max_slope

    def tilt(self, spec: torch.Tensor) -> torch.Tensor:
        """Fitted spectral slope in bels (log10 power) per octave: ``(B, S, bins, frames)`` -> ``(B, frames)``."""
        low = spec[:, :, : self.bands.shape[1]]
        power = (low.real.square() + low.imag.square()).sum(dim=1)  # (B, bins, frames), all signals together
        band_power = torch.einsum("nk,bkf->bnf", self.bands, power)
        if self.smooth_frames > 1:
            kernel = torch.ones(3, 1, self.smooth_frames, device=spec.device) / self.smooth_frames
            padded = nn.functional.pad(band_power, (self.smooth_frames // 2,) * 2, mode="replicate")
            band_power = nn.functional.conv1d(padded, kernel, groups=3)
        log_power = band_power.clamp_min(1e-10).log10()
        slope = torch.einsum("n,bnf->bf", self.centres, log_power) / self.centres.square().sum()
        return slope.clamp(self.min_slope, self.max_slope)

    def gains(self, spec: torch.Tensor) -> torch.Tensor:
        """The tilt's magnitude gain for each copied bin: ``(B, S, bins, frames)`` -> ``(B, n_high, frames)``."""
        return torch.pow(10.0, 0.5 * self.tilt(spec)[:, None, :] * self.octaves[None, :, None])

    def extend(self, spec: torch.Tensor, gains: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """The spectrum with its high band cross-faded into the copy scaled by ``gains``.

        Args:
            spec: ``(B, S, bins, frames)`` complex; unchanged below ``pass_below_hz``.
            gains: ``(B, n_high, frames)`` real magnitude gains, the same for every signal.
            offset: the block's first sample in the whole signal (the copy is a shift by ``shift`` bins,
                ``x[n] * exp(2i pi shift n / n_fft)``, whose phase depends on where ``n`` counts from).

        Returns:
            ``(B, S, bins, frames)`` complex.
        """
        turns = (self.shift * (offset % self.n_fft)) % self.n_fft / self.n_fft
        rotation = torch.polar(self.fade_in, 2 * math.pi * turns.float())  # fade-in folded into the rotation
        copy = spec[:, :, self.source_index] * (gains * rotation[:, None])[:, None]
        high = spec[:, :, self.low_bin :] * (1 - self.fade_in)[:, None] + copy
        return torch.cat([spec[:, :, : self.low_bin], high], dim=2)

    def forward(self, spec: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Blind band replication: ``(B, S, bins, frames)`` -> the same with the tilted copy above 3.8 kHz."""
        return self.extend(spec, self.gains(spec), offset)


def to_mid_side(audio: np.ndarray) -> np.ndarray:
    """``(C, N)`` -> the signals processed: mono as is; stereo as mid and side; more channels as the mid and
    each channel's difference from it."""
    if audio.shape[0] == 1:
        return audio
    mid = audio.mean(axis=0, keepdims=True)
    if audio.shape[0] == 2:
        return np.concatenate([mid, 0.5 * (audio[:1] - audio[1:])])
    return np.concatenate([mid, audio - mid])


def from_mid_side(signals: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of :func:`to_mid_side`."""
    if channels == 1:
        return signals
    if channels == 2:
        return np.concatenate([signals[:1] + signals[1:], signals[:1] - signals[1:]])
    return signals[:1] + signals[1:]


class Extender:
    """Adds the high band to 44.1 kHz blocks, in ``sbr`` mode (no model) or with a learned model.

    Args:
        model: an :class:`~hummingface.models.upsampler.Upsampler` for ``model`` mode, ``None`` for ``sbr``.
    """

    def __init__(self, model: Upsampler | None = None, device: torch.device | str = "cpu") -> None:
        from hummingface.dsp import STFT

        self.model = model
        if model is not None:
            self.stft, self.replication = model.stft, model.replication
            self.device = next(model.parameters()).device
        else:
            self.stft, self.replication, self.device = STFT(1024, 256), BandReplication(), torch.device(device)
            self.stft.to(self.device)
            self.replication.to(self.device)

    @torch.inference_mode()
    def __call__(self, block: np.ndarray, offset: int = 0) -> np.ndarray:
        """``(C, N)`` sinc-upsampled audio at 44.1 kHz that starts at sample ``offset`` of the whole signal ->
        the same with its high band generated. Below 3.8 kHz the output is the input (STFT and inverse are
        exact there, to float precision)."""
        channels, length = block.shape
        # Frames on the whole signal's grid (multiples of the hop), whatever the block's start: chunks agree.
        pad = offset % self.stft.hop_length
        signals = np.pad(to_mid_side(block), ((0, 0), (pad, 0)))
        spec = self.stft(torch.from_numpy(signals).to(self.device))[None]  # (1, S, bins, frames)
        if self.model is not None:
            spec = self.model.extend(spec, offset - pad)
        else:
            spec = self.replication(spec, offset - pad)
        signals = self.stft.inverse(spec[0], length=pad + length)[:, pad:].cpu().numpy()
        return from_mid_side(signals, channels)


def load_upsampler(weights: str | None = None, device: str | torch.device | None = None) -> Upsampler:
    """The trained :class:`~hummingface.models.upsampler.Upsampler` from ``checkpoints/upsampler`` or ``weights``."""
    from hummingface.models.upsampler import Upsampler

    return Upsampler.from_pretrained("upsampler", weights=weights, device=device)


def upsample(
    audio: np.ndarray,
    sr: int,
    mode: str = "model",
    device: str | torch.device | None = None,
    progress: bool | ProgressCallback = False,
    model: Upsampler | None = None,
    weights: str | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
) -> tuple[np.ndarray, int]:
    """Upsample music to 44.1 kHz, generating the band above 4 kHz.

    Args:
        audio: ``(channels, samples)`` or ``(samples,)`` float audio at ``sr``, any rate; content above 4 kHz
            is discarded first (the input is brought to 8 kHz).
        mode: ``model`` (learned band extension), ``sbr`` (blind spectral band replication) or ``sinc``.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto`` (default ``$HUMMINGFACE_DEVICE`` or auto).
        progress: ``True`` for a tqdm bar, or a callable taking the fraction done (0-1) after each chunk.
        model: an already loaded :class:`~hummingface.models.upsampler.Upsampler` (``model`` mode); default
            ``checkpoints/upsampler`` or the Hub repo in ``weights`` / ``$HUMMINGFACE_WEIGHTS``.
        chunk_seconds: length of the chunks a long file is processed in.

    Returns:
        ``(audio, 44100)``: float32 ``(channels, samples)``, as many channels as the input.

    Raises:
        UserError: unknown mode, empty or non-finite audio.
    """
    narrow = _narrow(audio, sr, mode)
    output = np.empty((narrow.shape[0], math.ceil(narrow.shape[1] * OUTPUT_RATE / INPUT_RATE)), dtype=np.float32)
    position = 0
    for piece in stream(narrow, mode, device, progress, model, weights, chunk_seconds):
        output[:, position : position + piece.shape[1]] = piece
        position += piece.shape[1]
    return output, OUTPUT_RATE


def upsample_file(
    source: str | os.PathLike,
    target: str | os.PathLike,
    mode: str = "model",
    device: str | torch.device | None = None,
    progress: bool | ProgressCallback = False,
    model: Upsampler | None = None,
    weights: str | None = None,
    bit_depth: int = 16,
    max_seconds: float | None = None,
) -> Path:
    """Upsample an audio file into a 44.1 kHz WAV or FLAC, writing chunk by chunk.

    Only the 8-kHz input and one chunk are ever held in memory (the file is read once, whole, and narrowed),
    so a 10-minute stereo file needs a few hundred MB on top of the model.

    Raises:
        AudioError: the source is not usable audio, or the target cannot be written.
    """
    from hummingface.audio import WRITE_FORMATS, WRITE_SUBTYPES, AudioError, read_audio

    target = Path(target)
    if target.suffix.lower() not in WRITE_FORMATS:
        raise AudioError(f"{target} must end in .wav or .flac to be written.")
    narrow, _ = read_audio(source, sample_rate=INPUT_RATE, max_seconds=max_seconds)
    pieces = stream(narrow, mode, device, progress, model, weights)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        subtype, file_format = WRITE_SUBTYPES[bit_depth], WRITE_FORMATS[target.suffix.lower()]
        with sf.SoundFile(str(target), "w", OUTPUT_RATE, narrow.shape[0], subtype, format=file_format) as file:
            for piece in pieces:
                file.write(np.clip(piece, -1.0, 1.0).T)
    except (OSError, sf.LibsndfileError) as error:
        raise AudioError(f"{target} cannot be written ({getattr(error, 'strerror', None) or error}).") from None
    return target


def stream(
    narrow: np.ndarray,
    mode: str = "model",
    device: str | torch.device | None = None,
    progress: bool | ProgressCallback = False,
    model: Upsampler | None = None,
    weights: str | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Iterator[np.ndarray]:
    """8-kHz audio ``(C, N)`` -> consecutive finished pieces ``(C, n)`` of the 44.1 kHz result."""
    if mode not in MODES:
        raise UserError(f"Unknown upsampling mode {mode!r}; choose from {', '.join(MODES)}.")
    if mode == "sinc":
        yield _resample(narrow, INPUT_RATE, OUTPUT_RATE)
        _report(progress, 1.0)
        return
    if mode == "model" and model is None:
        model = load_upsampler(weights, device)
    from hummingface.device import get_device

    extender = Extender(model if mode == "model" else None, device=get_device(device))
    yield from iter_chunks(narrow, extender, progress, chunk_seconds)


def _narrow(audio: np.ndarray, sr: int, mode: str) -> np.ndarray:
    """Check the arguments and bring the audio to 8 kHz: ``(C, N)`` float32."""
    if mode not in MODES:
        raise UserError(f"Unknown upsampling mode {mode!r}; choose from {', '.join(MODES)}.")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise UserError(f"Audio must be (channels, samples) with at least one sample, not shape {audio.shape}.")
    if not np.isfinite(audio).all():
        raise UserError("The audio contains NaN or infinite sample values.")
    return _resample(audio, int(sr), INPUT_RATE)


def process_chunks(
    narrow: np.ndarray,
    extend: Callable[[np.ndarray, int], np.ndarray],
    progress: bool | ProgressCallback = False,
    chunk_seconds: float = CHUNK_SECONDS,
    fade_seconds: float = 0.5,
    context_seconds: float = 1.0,
) -> np.ndarray:
    """:func:`iter_chunks`, joined: float32 ``(C, ceil(N * 44100 / 8000))``."""
    pieces = iter_chunks(narrow, extend, progress, chunk_seconds, fade_seconds, context_seconds)
    return np.concatenate(list(pieces), axis=1)


def iter_chunks(
    narrow: np.ndarray,
    extend: Callable[[np.ndarray, int], np.ndarray],
    progress: bool | ProgressCallback = False,
    chunk_seconds: float = CHUNK_SECONDS,
    fade_seconds: float = 0.5,
    context_seconds: float = 1.0,
) -> Iterator[np.ndarray]:
    """Sinc-upsample 8-kHz audio ``(C, N)`` chunk by chunk, pass each chunk through ``extend``, cross-fade.

    ``extend(block, offset)`` gets a 44.1-kHz block and the index of its first sample in the whole output.
    Yields consecutive pieces of the output, each as soon as no later chunk overlaps it; together they are
    float32 ``(C, ceil(N * 44100 / 8000))``.

    Chunk ``i`` owns ``[i * hop, (i + 1) * hop)``; it is computed over that span plus half a fade and
    ``context_seconds`` on each side, and weighted by raised-cosine ramps over the fades, so neighbouring
    weights sum to one. All boundaries are multiples of :data:`GRID` samples at 8 kHz.
    """
    from tqdm import tqdm

    length = narrow.shape[1]
    ratio = OUTPUT_RATE / INPUT_RATE
    out_length = math.ceil(length * ratio)
    hop = max(2 * GRID, int(chunk_seconds * INPUT_RATE) // GRID * GRID)
    half_fade = min(max(GRID, int(fade_seconds * INPUT_RATE / 2) // GRID * GRID), hop // 2 // GRID * GRID)
    context = math.ceil(context_seconds * INPUT_RATE / GRID) * GRID
    # Inner boundaries leave every fade whole: none closer than a full fade to the end.
    bounds = [0, *range(hop, length - 2 * half_fade, hop), length]
    ramp_length = round(2 * half_fade * ratio)  # exact: half_fade is a multiple of GRID
    ramp = (np.sin(0.5 * np.pi * (np.arange(ramp_length) + 0.5) / ramp_length) ** 2).astype(np.float32)
    n_chunks = len(bounds) - 1
    carry = None  # the previous chunk's faded-out tail, waiting for this chunk's faded-in head
    bar = tqdm(total=n_chunks, unit="chunk", desc="upsample", disable=progress is not True, leave=False)
    for index in range(n_chunks):
        first, last = index == 0, index == n_chunks - 1
        keep_start = bounds[index] - (0 if first else half_fade)
        keep_stop = bounds[index + 1] + (0 if last else half_fade)
        read_start, read_stop = max(0, keep_start - context), min(length, keep_stop + context)
        offset = round(read_start * ratio)
        block = extend(_resample(narrow[:, read_start:read_stop], INPUT_RATE, OUTPUT_RATE), offset)
        a = round(keep_start * ratio)
        b = out_length if last else round(keep_stop * ratio)
        piece = block[:, a - offset : b - offset]
        if carry is not None:
            piece[:, :ramp_length] *= ramp
            piece[:, :ramp_length] += carry
        if not last:
            piece[:, -ramp_length:] *= ramp[::-1]
            carry = piece[:, -ramp_length:]
            piece = piece[:, :-ramp_length]
        bar.update()
        _report(progress, (index + 1) / n_chunks)
        yield piece
    bar.close()


def _report(progress: bool | ProgressCallback, fraction: float) -> None:
    if callable(progress):
        progress(fraction)


def _resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """soxr HQ resampling of ``(C, N)`` with the output length ``ceil(N * sr_out / sr_in)`` exactly."""
    if sr_in == sr_out:
        return np.ascontiguousarray(audio, dtype=np.float32)
    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality="HQ").T
    target = math.ceil(audio.shape[-1] * sr_out / sr_in)
    if out.shape[-1] < target:
        out = np.pad(out, ((0, 0), (0, target - out.shape[-1])))
    return np.ascontiguousarray(out[:, :target], dtype=np.float32)
