"""A 44.1-kHz note decoder: the cvae's timbre latent and a MIDI pitch drive a harmonic-plus-noise synthesiser.

Why not decode mel spectrograms at a higher rate (DESIGN notes: ``reference/note-quality.md``)? Today's
notes go latent -> 128 log-mel bands at 16 kHz -> phase-gradient reconstruction, and that chain caps them:
nothing above 8 kHz, merged partials of low notes, vibrato averaged away, a haze between harmonics. This
decoder writes the waveform directly with an oscillator that *is told the pitch* (DDSP, Engel et al. 2020,
https://arxiv.org/abs/2001.04643), so partials sit exactly at multiples of f0 at every pitch, up to 22 kHz,
and vibrato is a curve, not a blur. A network only has to draw smooth controls, which is what lets it train on
a multi-resolution STFT loss alone, in CPU hours (an adversarial Vocos head needs GPU days to lose its
metallic texture; the synthesiser's prior does that job here).

Signal path for one note, ``(B, latent)`` + ``(B,)`` pitch -> ``(B, 176400)`` samples (4 s at 44.1 kHz):

1. **Controls**: the cvae's decoder shape (:class:`~hummingface.models.autoencoder.Decoder`: linear head,
   five sub-pixel upsamplings with FiLM by the pitch) turns latent + pitch into ``(B, n_controls, 256)``
   frames (64 frames/s): the harmonics' total amplitude, a spectral envelope (``n_envelope`` bands on a
   log-frequency axis, 20 Hz-22 kHz),
   ``n_detail`` per-harmonic corrections of the lowest harmonics (a clarinet's missing even ones), an f0
   deviation in semitones (vibrato, bounded to +-``max_deviation``, zero mean over the note) and
   ``n_noise`` noise-band gains.
2. **Harmonics, by wavetable**: per frame, harmonic ``k`` gets the envelope at ``k * f0`` plus its detail as a
   logit; a softmax over the harmonics below 0.95 x Nyquist shares the total amplitude out (DDSP's split of
   loudness and harmonic distribution: the gradient reaches every harmonic's share at any loudness, where
   independent per-harmonic amplitudes started near silence learnt too slowly and let the noise explain
   everything). One inverse FFT per frame turns them into one period of the
   waveform (``table_size`` samples, up to ``table_size / 2 - 1`` harmonics: MIDI 24 has ~640 below 21 kHz).
   An oscillator phase (the cumulative sum of f0 at audio rate, in float64) reads the tables, crossfading
   linearly between neighbouring frames. Its cost does not grow with the number of harmonics, unlike a bank
   of sines (300 sines at 44.1 kHz cost ~116 ms per 4-s note here).
3. **Noise**: complex Gaussian noise in the STFT domain (2048/512), shaped per frame by the noise bands
   (triangular on the same log-frequency axis), then one inverse STFT: breath, bow and hammer noise, the
   attacks' broadband bursts and the inharmonic part of mallets and plucks, in 86 frames/s.

The two add. Measurements that chose this (2-core shared CPU machine, fp32):

- **The representation's ceiling** (``python -m benchmarks.synth_oracle --notes 6 --steps 300``): controls
  fitted directly to six held-out FluidR3 notes (one per family, f0 from pyin) by 300 Adam steps reach
  ViSQOL 4.26 and full-band LSD_dB 4.22 (with independent per-harmonic amplitudes instead of the softmax
  distribution, the same fit reached 4.54 and 3.64: free per-frame logits fit faster without the softmax,
  a network learns faster with it); the same notes band-limited to 8 kHz -- the best any 16-kHz model can
  do -- score ViSQOL 4.13 (LSD 1.22: the 80-dB floor hides a missing top octave from LSD, not from ViSQOL).
- **Learnability**: with independent per-harmonic amplitudes starting near silence, 880 training steps on
  the corpus had drawn noise only (no partials, pitch 0 of 4); with the softmax distribution two notes
  overfit from LSD 15 to 4.0 and 7.8 dB in 150 steps, the harmonics carrying the sound.
- **Wavetable vs. exact sines** (1/k harmonics, table 2048; ``tests/test_decoder44.py`` checks it): SNR
  44.5 dB at MIDI 24 (640 harmonics), 53 dB at MIDI 36, 71 dB at MIDI 60; a 4096 table adds ~12 dB.
- **Speed**: one 4-s note decodes in 15-25 ms (MIDI 84 .. 24) on one thread, wall and CPU time alike,
  untrained or trained (1.3 M parameters; the same minute, today's cvae took 85 ms for a 16-kHz note). Two threads were
  *slower* for both while other jobs held the cores (0.5-0.7 s here, 2.0 s for the cvae): thread
  contention on a shared machine, so ``benchmarks/notes44.py`` reports CPU time beside wall time.
- **Training cost**: the loss dominates a step; 50 % STFT overlap instead of 75 % cut it threefold.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hummingface.hub import Pretrained
from hummingface.models.autoencoder import Decoder

NOISE_BIAS = -5.0  # noise bands start near silence (exp_sigmoid(-5) ~ 2e-5), so a fresh model is quiet
LOUDNESS_BIAS = -2.0  # the harmonics start at a total amplitude of ~0.015


@dataclasses.dataclass(frozen=True)
class SynthDecoderConfig:
    """Everything that builds a :class:`SynthDecoder`; saved as ``config.json`` beside the weights.

    Attributes:
        sample_rate: Hz of the audio it writes.
        note_seconds: length of a note.
        latent_size: size of the timbre latent it decodes (the cvae's).
        channels: conv channels of the control network at 128, 64, 32, 16 and 8 frames.
        control_frames: frames of the control curves (256: the conv stack's output, 64 frames/s over 4 s).
        n_envelope: bands of the harmonic spectral envelope (log-spaced, ``min_hz`` .. Nyquist).
        n_detail: lowest harmonics that get their own correction on top of the envelope.
        n_noise: bands of the filtered noise (the same log-frequency axis).
        table_size: samples in one wavetable period (harmonics up to ``table_size / 2 - 1``).
        noise_fft, noise_hop: STFT of the noise path (samples).
        max_deviation: largest f0 deviation (vibrato, glide) in semitones, around a zero mean over the note.
        min_pitch, max_pitch: MIDI pitches it knows; others are clamped.
        pitch_embedding: size of the learned pitch embedding that conditions the controls.
    """

    sample_rate: int = 44100
    note_seconds: float = 4.0
    latent_size: int = 64
    channels: tuple[int, ...] = (128, 128, 192, 256, 256)
    control_frames: int = 256
    n_envelope: int = 96
    n_detail: int = 24
    n_noise: int = 64
    table_size: int = 2048
    noise_fft: int = 2048
    noise_hop: int = 512
    max_deviation: float = 0.5
    min_pitch: int = 21
    max_pitch: int = 108
    pitch_embedding: int = 32
    min_hz: float = 20.0

    def __post_init__(self) -> None:
        if len(self.channels) != 5:
            raise ValueError(f"channels needs 5 entries (128 .. 8 frames), not {len(self.channels)}.")
        if self.control_frames != 256:
            raise ValueError("control_frames must be 256: the output of the five-stage conv stack.")

    @property
    def samples(self) -> int:
        return round(self.sample_rate * self.note_seconds)

    @property
    def n_controls(self) -> int:
        return 1 + self.n_envelope + self.n_detail + 1 + self.n_noise


def exp_sigmoid(x: torch.Tensor, exponent: float = math.log(10.0), max_value: float = 2.0) -> torch.Tensor:
    """DDSP's positive, bounded amplitude nonlinearity: ``max_value * sigmoid(x) ** exponent + 1e-7``."""
    return max_value * torch.sigmoid(x) ** exponent + 1e-7


def midi_to_hz(pitch: torch.Tensor) -> torch.Tensor:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def log_frequency_position(hz: torch.Tensor, n_bands: int, min_hz: float, max_hz: float) -> torch.Tensor:
    """Hz -> fractional band index on a log-frequency axis of ``n_bands`` points from ``min_hz`` to ``max_hz``."""
    position = (hz.clamp(min_hz, max_hz).log() - math.log(min_hz)) / (math.log(max_hz) - math.log(min_hz))
    return position * (n_bands - 1)


def sample_bands(bands: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``bands`` ``(B, T, n_bands)`` at fractional band ``position`` ``(B, T, K)``."""
    low = position.floor().clamp(0, bands.shape[-1] - 2)
    frac = position - low
    low = low.long()
    return torch.gather(bands, -1, low) * (1 - frac) + torch.gather(bands, -1, low + 1) * frac


def band_matrix(n_bands: int, n_bins: int, sample_rate: int, min_hz: float) -> torch.Tensor:
    """Triangular weights ``(n_bands, n_bins)`` from log-frequency band gains to linear FFT bins (sum 1 per bin)."""
    hz = torch.linspace(0, sample_rate / 2, n_bins, dtype=torch.float64)
    position = log_frequency_position(hz, n_bands, min_hz, sample_rate / 2)
    weights = (1 - (position[None, :] - torch.arange(n_bands, dtype=torch.float64)[:, None]).abs()).clamp_min(0)
    return (weights / weights.sum(0, keepdim=True)).float()


class SynthDecoder(Pretrained):
    """Timbre latent + MIDI pitch -> a 4-s note at ``config.sample_rate`` (see the module docstring).

    Shapes: latent ``(B, latent_size)``; pitch ``(B,)`` (int or float MIDI); audio ``(B, samples)``.
    """

    config_class = SynthDecoderConfig
    model_type = "synth-decoder"

    def __init__(self, config: SynthDecoderConfig) -> None:
        super().__init__(config)
        self.embedding = nn.Embedding(config.max_pitch - config.min_pitch + 1, config.pitch_embedding)
        cond = config.pitch_embedding + 1
        self.controls = Decoder(config.n_controls, config.channels, config.latent_size, cond)
        self.register_buffer("noise_bands", band_matrix(config.n_noise, config.noise_fft // 2 + 1,
                                                        config.sample_rate, config.min_hz), persistent=False)
        self.register_buffer("noise_window", torch.hann_window(config.noise_fft), persistent=False)
        # Inference reads its noise from this fixed table (same latent, same note, and no random numbers to draw
        # per note); training shifts it at random every step, so the controls cannot fit one noise pattern.
        frames = config.samples // config.noise_hop + 1
        table = torch.randn(2, config.noise_fft // 2 + 1, frames, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise_table", torch.complex(table[0], table[1]), persistent=False)

    def condition(self, pitch: torch.Tensor) -> torch.Tensor:
        """MIDI pitch ``(B,)`` -> ``(B, pitch_embedding + 1)``: a learned embedding beside the scaled pitch."""
        config = self.config
        index = pitch.round().long().clamp(config.min_pitch, config.max_pitch) - config.min_pitch
        return torch.cat([self.embedding(index), ((pitch.float() - 60.0) / 24.0)[:, None]], dim=-1)

    def control_curves(self, latent: torch.Tensor, pitch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The synthesiser's controls, frames last-but-one: ``loudness`` ``(B, T)``, the harmonics' total
        amplitude; ``envelope`` ``(B, T, n_envelope)`` and ``detail`` ``(B, T, n_detail)``, logits of the
        harmonic distribution; ``deviation`` ``(B, T)`` semitones; ``noise`` ``(B, T, n_noise)`` logits;
        ``T = control_frames``."""
        config = self.config
        out = self.controls(latent, self.condition(pitch)).transpose(1, 2)  # (B, T, n_controls)
        loudness, envelope, detail, deviation, noise = out.split(
            [1, config.n_envelope, config.n_detail, 1, config.n_noise], -1)
        # Zero mean over the note: the deviation may bend (vibrato, a scoop) but never retune the note. Left
        # free, the STFT loss's gradient through the oscillator phase drove it to +-1 semitone within 2 000
        # steps, and no decoded note kept its pitch.
        vibrato = config.max_deviation * torch.tanh(deviation[..., 0])
        return {
            "loudness": exp_sigmoid(loudness[..., 0] + LOUDNESS_BIAS),
            "envelope": envelope,
            "detail": detail,
            "deviation": vibrato - vibrato.mean(dim=-1, keepdim=True),
            "noise": noise + NOISE_BIAS,
        }

    def forward(self, latent: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """``(B, latent_size)`` + ``(B,)`` MIDI pitch -> audio ``(B, samples)`` (fresh noise in training mode)."""
        pitch = torch.as_tensor(pitch, device=latent.device).reshape(-1).expand(latent.shape[0]).float()
        curves = self.control_curves(latent, pitch)
        f0 = midi_to_hz(pitch)[:, None] * 2.0 ** (curves["deviation"] / 12.0)  # (B, T) Hz
        harmonic = self.harmonics(f0, curves["loudness"], curves["envelope"], curves["detail"])
        return harmonic + self.noise(curves["noise"])

    def harmonics(self, f0: torch.Tensor, loudness: torch.Tensor, envelope: torch.Tensor,
                  detail: torch.Tensor) -> torch.Tensor:
        """f0 and total amplitude ``(B, T)``, distribution logits -> ``(B, samples)``, through :meth:`wavetable`."""
        config = self.config
        nyquist = config.sample_rate / 2
        # Only the harmonics that can sound below 0.95 x Nyquist at the lowest f0 of the batch are computed:
        # MIDI 36 needs ~320, MIDI 84 ~20, so the frame-rate work shrinks with the pitch.
        n_harmonics = min(config.table_size // 2 - 1, int(0.95 * nyquist / float(f0.detach().min().clamp_min(1.0))))
        n_harmonics = max(n_harmonics, config.n_detail)
        k = torch.arange(1, n_harmonics + 1, device=f0.device, dtype=f0.dtype)
        partials = f0[..., None] * k  # (B, T, K) Hz
        logits = sample_bands(envelope, log_frequency_position(partials, config.n_envelope, config.min_hz, nyquist))
        logits = logits + F.pad(detail, (0, n_harmonics - config.n_detail))
        distribution = logits.masked_fill(partials >= 0.95 * nyquist, -torch.inf).softmax(dim=-1)
        return self.wavetable(f0, loudness[..., None] * distribution)

    def wavetable(self, f0: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
        """Wavetable oscillator: f0 ``(B, T)`` Hz, harmonic amplitudes ``(B, T, K)`` (K < table_size / 2) ->
        ``(B, samples)``, each harmonic ``k`` a sine ``amplitude[..., k - 1] * sin(2 pi k phase)``."""
        config = self.config
        batch, frames, n_harmonics = amplitude.shape
        # One period per frame: sum_k a_k sin(2 pi k x / N), as an inverse real FFT of -i N a_k / 2.
        spectrum = F.pad(torch.complex(torch.zeros_like(amplitude), amplitude * (-config.table_size / 2)),
                         (1, config.table_size // 2 - n_harmonics))
        tables = torch.fft.irfft(spectrum, n=config.table_size)  # (B, T, N)
        # Each period followed by its first sample, so reading at index + 1 never needs a wrap-around.
        stride = config.table_size + 1
        tables = torch.cat([tables, tables[..., :1]], dim=-1).reshape(batch, -1)  # (B, T * (N + 1))

        # Audio-rate phase in cycles (float64: 176 400 accumulated increments must not drift), starting at 0.
        samples = config.samples
        f0_audio = F.interpolate(f0[:, None], size=samples, mode="linear", align_corners=True)[:, 0].double()
        phase = torch.cumsum(f0_audio, dim=-1) - f0_audio
        phase = (phase / config.sample_rate).frac().float() * config.table_size  # (B, S) in [0, N)
        index = phase.long().clamp(max=config.table_size - 1)  # float32 rounding can land a phase on N itself
        frac = phase - index
        position = torch.linspace(0, frames - 1, samples, device=f0.device)
        frame = position.long().clamp(max=frames - 2)
        fade = position - frame
        frame = frame * stride

        def read(start: torch.Tensor) -> torch.Tensor:
            return torch.lerp(torch.gather(tables, 1, (start + index).expand(batch, -1)),
                              torch.gather(tables, 1, (start + index + 1).expand(batch, -1)), frac)

        return torch.lerp(read(frame), read(frame + stride), fade)

    def noise(self, bands: torch.Tensor) -> torch.Tensor:
        """Filtered noise: band logits ``(B, T, n_noise)`` -> ``(B, samples)`` through an inverse STFT."""
        config = self.config
        frames = config.samples // config.noise_hop + 1
        gains = F.interpolate(exp_sigmoid(bands).transpose(1, 2), size=frames, mode="linear", align_corners=True)
        magnitude = torch.einsum("bnt,nf->bft", gains, self.noise_bands)  # (B, bins, frames)
        noise = self.noise_table
        if self.training:  # a random circular shift in time and frequency: fresh noise without drawing any
            shifts = [int(torch.randint(size, ())) for size in noise.shape]
            noise = noise.roll(shifts, dims=(0, 1))
        # Scaled so that a gain of 1 in every bin is white noise of RMS ~1 after the overlap-add.
        scale = math.sqrt(config.noise_fft / 2 / config.noise_hop) / math.sqrt(config.noise_fft)
        spec = magnitude * noise * scale
        return torch.istft(spec, config.noise_fft, config.noise_hop, window=self.noise_window,
                           length=config.samples)

    @torch.inference_mode()
    def decode(self, latent: torch.Tensor, pitch: int | float) -> np.ndarray:
        """One latent ``(latent_size,)`` -> float32 audio ``(samples,)``, peak-limited to 0.99."""
        audio = self(latent.reshape(1, -1).to(self.noise_window.device), torch.tensor([float(pitch)]))[0]
        audio = audio.float().cpu().numpy()
        peak = float(np.abs(audio).max())
        return audio * (0.99 / peak) if peak > 0.99 else audio
