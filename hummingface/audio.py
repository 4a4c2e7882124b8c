"""Reading, validating, resampling and writing audio.

Everything that touches a user's file goes through :func:`read_audio`, so that every bad file -- missing,
empty, not audio, truncated, silent of samples, NaN-filled or too long -- becomes one :class:`AudioError`
whose message is a single sentence naming the file and the problem. The CLI prints that sentence and exits
with status 2; the app shows it as a ``gr.Error``.

Arrays are float32 and channels-first: ``(channels, samples)``, values in [-1, 1].
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from hummingface.errors import UserError

WRITE_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class AudioError(UserError):
    """A file cannot be used as audio; ``str(error)`` is one sentence naming the file and the problem."""


@contextlib.contextmanager
def quiet_stderr():
    """Silence C libraries (mpg123 warns about fuzzy seeking) so the CLI prints only our sentence."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _declared_wav_truncation(info: sf._SoundFileInfo) -> bool:
    """True when a WAV header promises more sample data than the file holds.

    libsndfile quietly shortens such files and only notes ``data : N (should be M)`` in its log.
    Streaming writers put 0 or 0xFFFFFFFF in the header on purpose; those are not truncated.
    """
    match = re.search(r"data : (\d+) \(should be (\d+)\)", info.extra_info)
    if not match:
        return False
    declared, actual = int(match.group(1)), int(match.group(2))
    return actual < declared < 0xFFFFFFF0


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header of an audio file, after the checks that need no decoding.

    Raises:
        AudioError: the file is missing, a folder, empty, not audio, truncated or has no samples.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path} does not exist.")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes).")
    try:
        with quiet_stderr():
            info = sf.info(str(path))
    except sf.LibsndfileError:
        raise AudioError(
            f"{path} is not an audio file that can be read (WAV, FLAC, OGG, MP3 and AIFF are supported)."
        ) from None
    if info.format == "WAV" and _declared_wav_truncation(info):
        raise AudioError(f"{path} is truncated: its header promises more audio than the file holds.")
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path} contains no audio samples.")
    return info


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = False,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read and validate an audio file.

    Args:
        path: any file libsndfile reads (WAV 8/16/24/32-bit int or float, FLAC, OGG, MP3, AIFF, ...).
        sample_rate: resample to this rate in Hz (soxr, high quality); ``None`` keeps the file's rate.
        mono: average the channels into one.
        max_seconds: refuse files longer than this (checked from the header, before decoding).

    Returns:
        ``(audio, sample_rate)`` with audio float32 of shape ``(channels, samples)``.

    Raises:
        AudioError: with one sentence naming the file and what is wrong with it.
    """
    info = audio_info(path)
    if max_seconds is not None and info.duration > max_seconds:
        raise AudioError(
            f"{path} is {_describe_seconds(info.duration)} long; the limit is {_describe_seconds(max_seconds)}."
        )
    try:
        with quiet_stderr():
            audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError):
        raise AudioError(f"{path} is truncated or corrupt and cannot be decoded.") from None
    if audio.shape[0] == 0:
        raise AudioError(f"{path} contains no audio samples.")
    # Compressed streams (MP3) cut short decode to far fewer frames than their header announces.
    if audio.shape[0] < 0.9 * info.frames:
        raise AudioError(f"{path} is truncated: it decodes to less audio than its header announces.")
    if not np.isfinite(audio).all():
        raise AudioError(f"{path} contains NaN or infinite sample values.")
    audio = audio.T  # (samples, channels) -> (channels, samples)
    if mono:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != file_rate:
        audio = resample(audio, file_rate, sample_rate)
        file_rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), int(file_rate)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr's high-quality (HQ) filter.

    Args:
        audio: ``(channels, samples)`` or ``(samples,)`` float array.

    Returns:
        float32 array of the same layout at ``target_sr``.
    """
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(audio.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``num_samples``."""
    if audio.shape[-1] >= num_samples:
        return audio[..., :num_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, num_samples - audio.shape[-1])]
    return np.pad(audio, pad)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, bit_depth: int = 16) -> Path:
    """Write WAV or FLAC (chosen by extension) as 16- or 24-bit PCM, clipping to [-1, 1].

    Args:
        audio: ``(channels, samples)`` or ``(samples,)`` float array.
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_FORMATS:
        raise AudioError(f"{path} must end in .wav or .flac to be written.")
    if bit_depth not in WRITE_SUBTYPES:
        raise ValueError(f"bit_depth must be 16 or 24, not {bit_depth}.")
    audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    if audio.ndim == 2:
        audio = audio.T  # (channels, samples) -> (samples, channels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(
            str(path), audio, sample_rate, subtype=WRITE_SUBTYPES[bit_depth], format=WRITE_FORMATS[path.suffix.lower()]
        )
    except (OSError, sf.LibsndfileError) as error:
        raise AudioError(f"{path} cannot be written ({_reason(error)}).") from None
    return path


def peak_limit(audio: np.ndarray, ceiling: float = 0.99) -> np.ndarray:
    """Audio ``(..., samples)`` -> float32, each row scaled down to peak at ``ceiling`` if it peaks above it."""
    peak = np.abs(audio).max(axis=-1, keepdims=True) if audio.size else np.zeros((*audio.shape[:-1], 1))
    return (audio * np.where(peak > ceiling, ceiling / np.maximum(peak, 1e-9), 1.0)).astype(np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio ``(channels, samples)`` -> int16 ``(samples, channels)`` (or ``(samples,)`` for mono).

    Gradio plays int16 as is, whereas it peak-normalises float arrays.
    """
    audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    scaled = np.round(audio * 32767.0).astype(np.int16)
    if scaled.ndim == 2:
        scaled = scaled[0] if scaled.shape[0] == 1 else scaled.T
    return scaled


def _describe_seconds(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds:.1f} seconds"


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error).strip().rstrip(".")
