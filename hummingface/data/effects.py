"""Effect chains that turn one General MIDI program into several distinct instruments.

NSynth has ~1 000 instruments; a General MIDI SoundFont has 128 programs. Each program is therefore rendered dry
and through a few seeded chains of drive, low-pass filter, chorus and reverb, applied here in numpy (not by
FluidSynth, whose shared reverb and chorus would carry one note's tail into the next). Audio is mono float32
``(samples,)`` at the note's sample rate; the output keeps the input's length, so a tail past 4 s is cut, as in
NSynth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

# Chains a variant may use, in the order the effects are applied.
CHAINS = ("reverb", "chorus", "drive", "filter", "chorus+reverb", "drive+filter", "filter+reverb", "drive+reverb")


@dataclass(frozen=True)
class Variant:
    """One effect chain with its settings; ``Variant()`` is the dry instrument.

    Attributes:
        drive: tanh drive gain (0: off); 3 is warm, 12 is fuzz.
        cutoff_hz: 4th-order Butterworth low-pass cutoff (0: off).
        chorus_depth_ms: delay modulation depth of the three chorus voices (0: off).
        reverb_seconds: RT60 of the synthetic room (0: off).
        reverb_mix: wet share of the reverb output.
        seed: seeds the chorus rates and the reverb's noise, so a variant always sounds the same.
    """

    drive: float = 0.0
    cutoff_hz: float = 0.0
    chorus_depth_ms: float = 0.0
    reverb_seconds: float = 0.0
    reverb_mix: float = 0.0
    seed: int = 0

    @property
    def name(self) -> str:
        parts = [n for n, on in (("drive", self.drive), ("filter", self.cutoff_hz),
                                 ("chorus", self.chorus_depth_ms), ("reverb", self.reverb_seconds)) if on]
        return "+".join(parts) or "dry"

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Run the chain on mono ``(samples,)`` float32 audio; returns the same shape."""
        if self.drive:
            audio = _drive(audio, self.drive)
        if self.cutoff_hz:
            sos = signal.butter(4, self.cutoff_hz, fs=sample_rate, output="sos")
            audio = signal.sosfilt(sos, audio)
        rng = np.random.default_rng(self.seed)
        if self.chorus_depth_ms:
            audio = _chorus(audio, sample_rate, self.chorus_depth_ms, rng)
        if self.reverb_seconds:
            audio = _reverb(audio, sample_rate, self.reverb_seconds, self.reverb_mix, rng)
        return audio.astype(np.float32)


def draw_variants(rng: np.random.Generator, count: int) -> list[Variant]:
    """The dry instrument plus ``count - 1`` variants with distinct chains and random settings."""
    variants = [Variant()]
    chains = rng.choice(len(CHAINS), size=min(count - 1, len(CHAINS)), replace=False)
    for index in chains:
        effects = CHAINS[index].split("+")
        reverb = "reverb" in effects
        variants.append(Variant(
            drive=float(rng.uniform(3.0, 12.0)) if "drive" in effects else 0.0,
            cutoff_hz=float(rng.uniform(700.0, 3000.0)) if "filter" in effects else 0.0,
            chorus_depth_ms=float(rng.uniform(1.5, 5.0)) if "chorus" in effects else 0.0,
            reverb_seconds=float(rng.uniform(0.8, 3.0)) if reverb else 0.0,
            reverb_mix=float(rng.uniform(0.25, 0.5)) if reverb else 0.0,
            seed=int(rng.integers(2**31)),
        ))
    return variants


def _drive(audio: np.ndarray, gain: float) -> np.ndarray:
    """Soft clipping relative to the note's own peak, so the amount of distortion does not depend on velocity."""
    peak = float(np.abs(audio).max())
    if peak == 0.0:
        return audio
    return peak * np.tanh(gain * audio / peak) / np.tanh(gain)


def _chorus(audio: np.ndarray, sample_rate: int, depth_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Three voices delayed by 15-25 ms, each delay swept by a slow sine LFO, mixed with the dry signal."""
    t = np.arange(audio.size) / sample_rate
    out = audio.copy()
    for _ in range(3):
        lfo = np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t + rng.uniform(0.0, 2 * np.pi))
        delay_ms = rng.uniform(15.0, 25.0) + depth_ms * lfo
        out += np.interp(t - delay_ms / 1000.0, t, audio, left=0.0)
    return out / 2.0


def _reverb(audio: np.ndarray, sample_rate: int, rt60: float, mix: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with exponentially decaying noise (a diffuse room), low-passed so highs die first."""
    n = int(min(rt60, 4.0) * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at t = rt60
    ir = signal.sosfilt(signal.butter(1, 0.3 * sample_rate / 2, fs=sample_rate, output="sos"), ir)
    ir[: int(0.01 * sample_rate)] = 0.0  # 10 ms pre-delay before the first reflections
    ir /= np.sqrt(np.sum(ir**2))
    wet = signal.fftconvolve(audio, ir)[: audio.size]
    return (1.0 - mix) * audio + mix * wet
