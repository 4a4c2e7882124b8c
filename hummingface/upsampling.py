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
  only above 3.8 kHz, cross-fading in over 3.8-4 kHz, and an exact complementary FIR crossover
  (:func:`crossover_highpass`) removes what the STFT edit leaks below 3.8 kHz.
- **Stereo and more channels** are extended jointly, as mid and side (more channels: the mid and each
  channel's difference from it). The mid drives the model's gains; the tilt is fitted on all signals
  together; the side is replicated with the *same* gains. So the high band pans like the band it was copied
  from, identical channels stay identical, and a silent channel stays silent (two independent mono passes
  would invent panning).
- **Long files** run in overlapping chunks (20 s by default) with a second of context on each side and
  raised-cosine cross-fades of half a second, so memory is bounded by the chunk, not the file, and joins
  are seamless. Files are read and narrowed to 8 kHz block by block (:func:`read_narrow`) and written
  chunk by chunk (:func:`write_pieces`): the CLI and the app share this path (:func:`upsample_file`).
  Chunk edges sit on multiples of 80 samples at 8 kHz (441 at 44.1 kHz), so every chunk is
  resampled on the same sample grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr
import torch

from hummingface.band_replication import OUTPUT_RATE, BandReplication
from hummingface.errors import UserError

if TYPE_CHECKING:
    from hummingface.models.upsampler import Upsampler

INPUT_RATE = 8000
MODES = ("model", "sbr", "sinc")
GRID = 80  # samples at 8 kHz that map onto a whole number of samples (441) at 44.1 kHz
CHUNK_SECONDS = 20.0

ProgressCallback = Callable[[float], None]


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
        self.highpass = crossover_highpass(self.replication.pass_below_hz, self.replication.crossfade_hz)

    @torch.inference_mode()
    def __call__(self, block: np.ndarray, offset: int = 0) -> np.ndarray:
        """``(C, N)`` sinc-upsampled audio at 44.1 kHz that starts at sample ``offset`` of the whole signal ->
        the same with its high band generated.

        The STFT edit leaks a little below 3.8 kHz (each frame's gains change from hop to hop, and the window
        smears every bin), so only its high-passed difference is kept: ``block + highpass(extended - block)``,
        which is ``lowpass(block) + highpass(extended)`` for the complementary pair. Below 3.8 kHz the
        output is the input to within the filter's stop band (-100 dB)."""
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
        change = from_mid_side(signals, channels) - block
        return block + _filter(change, self.highpass)


def crossover_highpass(stop_hz: float, width_hz: float, attenuation_db: float = 100.0) -> np.ndarray:
    """Linear-phase FIR high-pass (odd length, centred: no delay): stop band below ``stop_hz``, pass band from
    ``stop_hz + width_hz``, at 44.1 kHz, float32 ``(taps,)``.

    It is the unit impulse minus a Kaiser-window low-pass (length and window shape from Kaiser's formulas for
    ``attenuation_db``), so the two add up to the identity exactly: an exact complementary crossover.
    """
    transition = 2 * math.pi * width_hz / OUTPUT_RATE  # radians per sample
    taps = math.ceil((attenuation_db - 7.95) / (2.285 * transition)) | 1  # odd: symmetric about its centre
    beta = 0.1102 * (attenuation_db - 8.7)
    time = np.arange(taps) - taps // 2
    cutoff = (stop_hz + width_hz / 2) / OUTPUT_RATE  # cycles per sample
    lowpass = 2 * cutoff * np.sinc(2 * cutoff * time) * np.kaiser(taps, beta)
    highpass = -lowpass / lowpass.sum()  # unit gain at 0 Hz for the low-pass
    highpass[taps // 2] += 1.0
    return highpass.astype(np.float32)


def _filter(signals: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``(C, N)`` convolved with the centred odd-length FIR ``taps`` (zero-padded edges), by FFT: ``(C, N)``."""
    size = signals.shape[-1] + len(taps) - 1
    fast = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(signals, fast, axis=-1) * np.fft.rfft(taps, fast)
    start = len(taps) // 2
    return np.fft.irfft(spectrum, fast, axis=-1)[:, start : start + signals.shape[-1]].astype(np.float32)


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

    The file is read and narrowed to 8 kHz block by block (:func:`read_narrow`), then upsampled and written
    one chunk at a time (:func:`write_pieces`), so memory holds the 8-kHz input and one chunk, never the
    file at its own rate or the 44.1 kHz result: about 40 MB plus a chunk for a 10-minute stereo file.

    Raises:
        AudioError: the source is not usable audio, or the target cannot be written.
    """
    narrow = read_narrow(source, max_seconds)
    pieces = stream(narrow, mode, device, progress, model, weights)
    return write_pieces(pieces, target, narrow.shape[0], bit_depth)


def read_narrow(source: str | os.PathLike, max_seconds: float | None = None, block_seconds: float = 10.0) -> np.ndarray:
    """An audio file at any rate -> float32 ``(channels, samples)`` at 8 kHz, read and resampled block by block.

    Raises:
        AudioError: missing, not audio, corrupt, truncated, too long, or non-finite samples.
    """
    from hummingface.audio import AudioError, audio_info, quiet_stderr, read_audio

    info = audio_info(source)
    if info.samplerate == INPUT_RATE:
        return read_audio(source, max_seconds=max_seconds)[0]  # already narrow: as small as it gets
    if max_seconds is not None and info.duration > max_seconds:
        read_audio(source, max_seconds=max_seconds)  # raises the usual one-sentence refusal
    resampler = soxr.ResampleStream(info.samplerate, INPUT_RATE, info.channels, dtype="float32", quality="HQ")
    parts, frames = [], 0
    try:
        with quiet_stderr():
            for block in sf.blocks(str(source), blocksize=int(block_seconds * info.samplerate), dtype="float32",
                                   always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{source} contains NaN or infinite sample values.")
                frames += len(block)
                parts.append(resampler.resample_chunk(block))
            parts.append(resampler.resample_chunk(np.zeros((0, info.channels), np.float32), last=True))
    except (sf.LibsndfileError, RuntimeError):
        raise AudioError(f"{source} is truncated or corrupt and cannot be decoded.") from None
    if frames < 0.9 * info.frames or frames == 0:
        raise AudioError(f"{source} is truncated: it decodes to less audio than its header announces.")
    narrow = np.empty((info.channels, sum(len(part) for part in parts)), dtype=np.float32)
    position = 0
    while parts:  # one copy at a time: the parts are released as they are copied
        part = parts.pop(0)
        narrow[:, position : position + len(part)] = part.T
        position += len(part)
    return narrow


def write_pieces(
    pieces: Iterator[np.ndarray], target: str | os.PathLike, channels: int, bit_depth: int = 16
) -> Path:
    """Write consecutive float pieces ``(channels, n)`` at 44.1 kHz into a WAV or FLAC, one at a time."""
    from hummingface.audio import WRITE_FORMATS, WRITE_SUBTYPES, AudioError

    target = Path(target)
    if target.suffix.lower() not in WRITE_FORMATS:
        raise AudioError(f"{target} must end in .wav or .flac to be written.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        subtype, file_format = WRITE_SUBTYPES[bit_depth], WRITE_FORMATS[target.suffix.lower()]
        with sf.SoundFile(str(target), "w", OUTPUT_RATE, channels, subtype, format=file_format) as file:
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
    if mode == "sinc":  # chunked too, so that memory stays bounded by the chunk in every mode
        yield from iter_chunks(narrow, lambda block, offset: block, progress, chunk_seconds)
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
