"""The 44.1-kHz vocoder: any note model's 16-kHz mel spectrogram + its MIDI pitch -> a 44.1-kHz note, through a
harmonic-plus-noise synthesiser.

Every note model (ae, vae, mog-vae, cvae, gan, cdecoder) writes the same features: 128 log-mel bands of a
16-kHz STFT, 251 frames per 4-s note. Today they become audio by mel inversion + phase reconstruction at
16 kHz, and that chain caps them: nothing above 8 kHz, merged partials of low notes (128 bands merge MIDI 36's
partials above ~2.6 kHz), a haze between harmonics. This vocoder replaces that last stage only. It writes the
waveform with an oscillator that *is told the pitch* (DDSP, Engel et al. 2020,
https://arxiv.org/abs/2001.04643), so partials sit exactly at multiples of f0 at every pitch, up to 22 kHz,
and a slow f0 curve can carry a detune or a scoop. A small network only has to read, frame by frame, how loud
each region of the spectrum is -- which the mel bands already say below 8 kHz -- and continue it into the top octave.
Because it sits after the models, every model's latent space, sliders, prior and conditioning keep their
meaning, and one trained vocoder moves all six to 44.1 kHz.

Signal path for ``(B, 128, 251)`` features + ``(B,)`` pitch -> ``(B, 176400)`` samples (4 s at 44.1 kHz):

1. **Controls** (the features' frame rate, 62.5 frames/s): a stack of dilated residual 1-D convolutions over
   the frames (receptive field ~0.5 s) reads the features and a pitch embedding and writes *corrections*:
   ``n_envelope`` log-spaced bands (20 Hz - 22 kHz) and ``n_detail`` per-harmonic values (a clarinet's
   missing even harmonics) for the harmonics, ``n_noise`` bands for the noise, and an f0 deviation curve in
   semitones (a scoop, a sample's detune; bounded to +-``max_deviation``). Its output layer starts at zero.
2. **Harmonics, by wavetable**: harmonic ``k`` gets ``exp`` of the features' own level at ``k * f0`` -- the
   features are natural-log magnitudes, read between the mel band centres on the mel axis, so a resolved low
   partial keeps its band's level -- plus the corrections. Above 6.5 kHz (where the 16-kHz features only hold
   the resampler's anti-aliasing slope) the level continues from the loudest band of 4.3-6.5 kHz, falling
   2 nepers per octave. So an *untrained* vocoder already plays a note's partials at about the right level
   and pitch, and training only learns what the bands cannot say: the split between partials and noise,
   the top octave, the detail, the detune. Partials above 0.95 x Nyquist are left out. One inverse FFT per
   frame turns the amplitudes into one period of the waveform (``table_size`` samples: MIDI 24 has ~640
   harmonics below 21 kHz); an oscillator phase (the cumulative sum of f0 at audio rate, in float64) reads
   the tables, crossfading between neighbouring frames. Its cost does not grow with the number of harmonics,
   unlike a bank of sines (300 sines at 44.1 kHz cost ~116 ms per 4-s note here).
3. **Noise**: complex Gaussian noise in the STFT domain (2048/512), shaped per frame by band gains (the
   features' level, 2 nepers down, continued above 6.5 kHz from the median band of 4.3-6.5 kHz at 4 nepers per
   octave, plus the corrections), then one inverse STFT: breath, bow and hammer noise, attacks, the inharmonic
   part of mallets and plucks.
4. **Equaliser** (:meth:`Vocoder.decode` only): the note is analysed again into the features' mel bands and its
   STFT scaled, band by band and frame by frame, towards the features below 6.5 kHz (:meth:`Vocoder.equalise`).

Measurements that chose this (2-core shared CPU machine):

- **The representation's ceiling** (``python -m benchmarks.synth_oracle``): the synthesiser's controls fitted
  directly to six held-out FluidR3 notes reach ViSQOL 4.26 (4.54 with free per-harmonic amplitudes), above
  the 4.13 of the same notes band-limited to 8 kHz -- the best any 16-kHz model can do.
- **What the controls are computed from.** The first design drew them from the cvae's global latent alone
  (a ``synth-decoder``): after 1 983 steps it scored ViSQOL 3.33 and LSD_dB 15.2 on held-out notes, 0 % in
  tune, with organ partials drawn as noise (``docs/benchmarks/notes44-run1-step1983.json``). Whatever the
  latent does not say about time -- attack, decay, vibrato -- it had to invent, and on two CPU cores it did
  not learn to in hours. Reading the models' own mel frames gives it all of that for free, leaving the
  network a local, nearly linear job.
- **Levels read at each partial, not through an envelope.** Reading the features onto a 96-band log-frequency
  envelope first blurred resolved partials: an untrained vocoder played a 1/k-harmonic A3's fifth harmonic
  louder than its fundamental. Read at ``k * f0`` on the mel axis, an untrained vocoder's LSD_dB on six
  held-out notes' own features is already near the 16-kHz phase reconstruction's (bass 0.87 vs 0.96,
  keyboard 2.26 vs 2.28, mallet 0.83 vs 0.30) and only breath-noise (flute 6.4 vs 2.9) and top-octave
  (brass 7.0 vs 5.1) notes are far off: the network's job.
- **The f0 it is trained with**: the oscillator is driven by each training note's *tracked* f0
  (:func:`hummingface.train.vocoder.track_f0`), not its MIDI label, while the network learns to predict the
  deviation. A few cents of detune already put the 20th partial of A4 a whole 4096-point FFT bin away, and a
  loss that cannot find the partials explains them as noise. At inference the predicted deviation costs
  0.2 dB LSD_dB against the tracked f0 (12 validation notes, step 1 400: 4.71 vs 4.49; the MIDI pitch alone
  4.65).
- **Noise above 6.5 kHz falls steeply, from the typical top band.** Continued at the partials' slope, the haze
  a model's mel holds in its top bands played as hiss up to 22 kHz (a cvae keyboard reconstruction). Continued
  from the *loudest* band of 4.3-6.5 kHz, as the partials are, it was a high note's partial level: a MIDI-96
  organ played from its true features drew loud noise from 7 to 22 kHz over clean partials (LSD_dB 21.6).
  From the bands' median (a valley between sparse partials; the same band in a dense or noisy spectrum) the
  shipped weights, unchanged, score on 40 validation notes 3.79 dB from true features against 4.31, and 4.85
  from the cvae's reconstructions as before (scratch run).
- **No vibrato is invented** (``python -m benchmarks.vibrato_probe``, ``docs/benchmarks/vibrato_probe.json``).
  On 35 validation notes with vibrato, the pitch movement (2-10 Hz) found in the cvae's reconstructions is
  0.03 x the real note's, in their true mel features 0.60 x: a global latent does not keep the wobble, so no
  reading of a model's features can restore it. Nor can it be guessed from the timbre: a small network on
  each note's time-pooled features predicts the vibrato of the 634 validation notes (other GM programs) from
  the cvae's reconstructions no better than a constant (mean error 2.97 against 2.90 cents; 2.59 from the
  true features). So the f0 deviation, taught on the tracked f0, follows a sample's detune but stays steady
  within a note, and vibrato is a control of its own (:mod:`hummingface.vibrato`): :meth:`Vocoder.decode` bends
  the f0 by it, and the partials, read from the features at their moving frequencies, swing through a fixed
  spectral envelope.
- **Trained on the reconstructions it is given?** A cvae reconstruction is blurrier than the note's own features:
  its valleys between partials are filled, which the vocoder plays as noise. Fine-tuning on training notes'
  reconstructions made as the app makes them (refined, at the note's loudness curve) did not carry to held-out
  programs, whose reconstructions are blurrier still: after a 25-minute fine-tune on 3/4 of the notes (lr 2e-4),
  40 validation notes scored 4.90 dB against the shipped weights' 4.85 (all of the notes, midway: no better;
  scratch runs). Nor did boosting only the partials in the equaliser (4.90-5.02).
- **Wavetable vs. exact sines** (1/k harmonics, table 2048; ``tests/test_vocoder.py`` checks it): SNR
  44.5 dB at MIDI 24, 53 dB at MIDI 36, 71 dB at MIDI 60.
"""

from __future__ import annotations

import dataclasses
import math

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hummingface.audio import peak_limit, resample
from hummingface.dsp import STFT, LogCompression, NoteSpectrogram, SpectrogramConfig, resample_fft
from hummingface.hub import Pretrained
from hummingface.vibrato import PitchBend

# ln(harmonic amplitude) - ln(mel magnitude) of a resolved partial in the features (a sine of amplitude 0.1
# at 110 Hz - 1 kHz reads -2.34 .. -2.39; wide high bands hold several partials and read higher).
HARMONIC_LEVEL = -2.35
# ln(noise gain) - ln(mel magnitude) of white noise is ~0; the noise starts 2 nepers (17 dB) below the mel, so a
# fresh vocoder plays the mel's energy as partials, not as hiss.
NOISE_LEVEL = -2.0
# Nepers per octave of the mel-derived levels' continuation above TRUSTED_HZ: partials fall gently (a brass
# note's go on to 20 kHz), noise steeply -- a model's mel holds a haze in its top bands that, continued at the
# partials' slope, played as hiss up to 22 kHz.
TOP_OCTAVE_SLOPE = -2.0
NOISE_TOP_OCTAVE_SLOPE = -4.0
# The highest frequency the features are read at: resampling a note to 16 kHz (soxr) filters it from ~7.3 kHz up,
# so the top mel bands hold the anti-aliasing filter's slope, not the instrument; above this, the envelope is
# continued from here (and the network corrects the continuation).
TRUSTED_HZ = 6500.0
TOP_BAND_HZ = (4300.0, TRUSTED_HZ)  # the continuation starts from the loudest band here: a partial, not a valley
MAX_LOG_AMPLITUDE = 1.0  # ln of the largest harmonic amplitude: an untrained network cannot overflow exp()
# The equaliser of Vocoder.decode moves a band by at most this many nepers (12 dB): it corrects levels, it does not
# conjure a partial from silence. Its gains fade out over TRUSTED_HZ .. EQUALISER_TOP_HZ, where the features end.
EQUALISER_LIMIT = 12 * math.log(10) / 20
EQUALISER_TOP_HZ = 8000.0


@dataclasses.dataclass(frozen=True)
class VocoderConfig:
    """Everything that builds a :class:`Vocoder`; saved as ``config.json`` beside the weights.

    Attributes:
        sample_rate: Hz of the audio it writes.
        note_seconds: length of a note.
        spectrogram: the features it reads (the note models' representation: 128 mels of a 16-kHz STFT).
        width: channels of the control network.
        dilations: one residual block per entry, with this dilation (kernel 3).
        n_envelope: bands of the spectral envelope (log-spaced, ``min_hz`` .. Nyquist).
        n_detail: lowest harmonics that get their own correction on top of the envelope.
        n_noise: bands of the filtered noise (the same log-frequency axis).
        table_size: samples in one wavetable period (harmonics up to ``table_size / 2 - 1``).
        noise_fft, noise_hop: STFT of the noise path (samples at ``sample_rate``).
        max_deviation: largest f0 deviation from the MIDI pitch (vibrato, detune), in semitones.
        min_pitch, max_pitch: MIDI pitches it knows; others are clamped.
        pitch_embedding: size of the learned pitch embedding given to every frame.
        min_hz: bottom of the log-frequency axis.
    """

    sample_rate: int = 44100
    note_seconds: float = 4.0
    spectrogram: SpectrogramConfig = dataclasses.field(default_factory=SpectrogramConfig)
    width: int = 192
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    n_envelope: int = 96
    n_detail: int = 24
    n_noise: int = 64
    table_size: int = 2048
    noise_fft: int = 2048
    noise_hop: int = 512
    max_deviation: float = 1.0
    min_pitch: int = 21
    max_pitch: int = 108
    pitch_embedding: int = 16
    min_hz: float = 20.0

    def __post_init__(self) -> None:
        if self.spectrogram.n_mels < 2:
            raise ValueError("The vocoder reads mel features (spectrogram.n_mels >= 2).")

    @property
    def samples(self) -> int:
        return round(self.sample_rate * self.note_seconds)

    @property
    def frame_rate(self) -> float:
        """Feature frames per second (62.5 for hop 256 at 16 kHz)."""
        return self.spectrogram.sample_rate / self.spectrogram.hop_length

    @property
    def n_controls(self) -> int:
        return self.n_envelope + self.n_detail + 1 + self.n_noise


def midi_to_hz(pitch: torch.Tensor) -> torch.Tensor:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def log_frequency_position(hz: torch.Tensor, n_bands: int, min_hz: float, max_hz: float) -> torch.Tensor:
    """Hz -> fractional band index on a log-frequency axis of ``n_bands`` points from ``min_hz`` to ``max_hz``."""
    position = (hz.clamp(min_hz, max_hz).log() - math.log(min_hz)) / (math.log(max_hz) - math.log(min_hz))
    return position * (n_bands - 1)


def log_frequency_axis(n_bands: int, min_hz: float, max_hz: float) -> np.ndarray:
    """The ``n_bands`` centre frequencies (Hz) that :func:`log_frequency_position` indexes."""
    return np.geomspace(min_hz, max_hz, n_bands)


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


def slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    """Hz -> mels of the Slaney scale librosa's filterbank uses: linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3.0)
    return torch.where(hz < 1000.0, linear, 15.0 + 27.0 * torch.log(hz.clamp_min(1000.0) / 1000.0) / math.log(6.4))


def mel_band_position(spectrogram: SpectrogramConfig, hz: torch.Tensor) -> torch.Tensor:
    """Frequencies ``hz`` (any shape) -> their fractional mel band of the features, for :func:`sample_bands`:
    band ``i`` is centred at ``(i + 1)`` band spacings on the Slaney mel axis; read at most up to
    :data:`TRUSTED_HZ`, and clamped to the bands."""
    n_mels = spectrogram.n_mels
    spacing = float(slaney_mel(torch.tensor(spectrogram.sample_rate / 2.0))) / (n_mels + 1)
    return (slaney_mel(hz.clamp(max=TRUSTED_HZ)) / spacing - 1).clamp(0, n_mels - 1)


def mel_to_envelope(spectrogram: SpectrogramConfig, hz: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation from the mel band centres to frequencies ``hz`` ``(n,)``: a matrix ``(n, n_mels)``
    (rows above :data:`TRUSTED_HZ` unused) and, per frequency, the octaves above :data:`TRUSTED_HZ` ``(n,)``."""
    centres = librosa.mel_frequencies(spectrogram.n_mels + 2, fmin=0.0, fmax=spectrogram.sample_rate / 2)[1:-1]
    weights = np.zeros((len(hz), len(centres)))
    for row, frequency in enumerate(np.clip(hz, centres[0], TRUSTED_HZ)):
        upper = min(int(np.searchsorted(centres, frequency)), len(centres) - 1)
        lower = max(upper - 1, 0)
        span = centres[upper] - centres[lower]
        frac = (frequency - centres[lower]) / span if span > 0 else 0.0
        weights[row, lower] += 1 - frac
        weights[row, upper] += frac
    above = np.log2(np.maximum(hz / TRUSTED_HZ, 1.0))
    return torch.from_numpy(weights).float(), torch.from_numpy(above).float()


def equaliser_matrix(config: VocoderConfig) -> torch.Tensor:
    """Weights ``(n_mels, noise_fft // 2 + 1)`` from per-band gains to the noise STFT's bins: linear between the mel
    band centres, as :meth:`Vocoder.read_mel` reads the partials' levels, fading to zero over
    :data:`TRUSTED_HZ` .. :data:`EQUALISER_TOP_HZ`."""
    hz = torch.linspace(0, config.sample_rate / 2, config.noise_fft // 2 + 1)
    position = mel_band_position(config.spectrogram, hz)
    weights = (1 - (position[None, :] - torch.arange(config.spectrogram.n_mels)[:, None]).abs()).clamp_min(0)
    return weights * ((EQUALISER_TOP_HZ - hz) / (EQUALISER_TOP_HZ - TRUSTED_HZ)).clamp(0, 1)


def interpolate_frames(curves: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Curves ``(B, T, ...)`` read at fractional frame ``position`` ``(P,)`` -> ``(B, P, ...)`` (linear, clamped)."""
    frames = curves.shape[1]
    position = position.clamp(0, frames - 1)
    low = position.floor().long().clamp(max=frames - 2) if frames > 1 else position.long()
    high = (low + 1).clamp(max=frames - 1)
    frac = (position - low).reshape(1, -1, *([1] * (curves.ndim - 2)))
    return curves[:, low] * (1 - frac) + curves[:, high] * frac


class ResidualBlock(nn.Module):
    """``x + conv1x1(act(conv3_dilated(act(x))))`` over ``(B, channels, frames)``."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.gelu(self.conv(F.gelu(x))))


class Vocoder(Pretrained):
    """Note features + MIDI pitch -> a note at ``config.sample_rate`` (see the module docstring).

    Shapes: features ``(B, n_mels, frames)`` (the note models' normalised log-mel); pitch ``(B,)`` (int or
    float MIDI); audio ``(B, samples)``.
    """

    config_class = VocoderConfig
    model_type = "vocoder"

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__(config)
        n_mels = config.spectrogram.n_mels
        self.embedding = nn.Embedding(config.max_pitch - config.min_pitch + 1, config.pitch_embedding)
        self.inp = nn.Conv1d(n_mels + config.pitch_embedding, config.width, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(config.width, d) for d in config.dilations))
        self.out = nn.Conv1d(config.width, config.n_controls, 1)
        nn.init.zeros_(self.out.weight)  # an untrained vocoder plays the mel-derived envelope as it is
        nn.init.zeros_(self.out.bias)

        self.log = LogCompression()
        nyquist = config.sample_rate / 2
        weights, above = mel_to_envelope(config.spectrogram, log_frequency_axis(config.n_noise, config.min_hz, nyquist))
        self.register_buffer("noise_from_mel", weights, persistent=False)
        self.register_buffer("noise_above", above, persistent=False)
        centres = torch.from_numpy(librosa.mel_frequencies(n_mels + 2, fmax=config.spectrogram.sample_rate / 2)[1:-1])
        self.register_buffer("top_bands", ((centres >= TOP_BAND_HZ[0]) & (centres <= TOP_BAND_HZ[1])).nonzero()[:, 0],
                             persistent=False)
        self.register_buffer("noise_bands", band_matrix(config.n_noise, config.noise_fft // 2 + 1,
                                                        config.sample_rate, config.min_hz), persistent=False)
        self.noise_stft = STFT(config.noise_fft, config.noise_hop)
        self.analysis = NoteSpectrogram(config.spectrogram)  # decode's equaliser hears its output as the models do
        self.register_buffer("equaliser_bands", equaliser_matrix(config), persistent=False)
        # Inference reads its noise from this fixed table (same features, same note); training shifts it at
        # random every step, so the controls cannot fit one noise pattern.
        frames = config.samples // config.noise_hop + 1
        table = torch.randn(2, config.noise_fft // 2 + 1, frames, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise_table", torch.complex(table[0], table[1]), persistent=False)

    def control_curves(self, features: torch.Tensor, pitch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The synthesiser's controls, frames second: ``log_mel`` ``(B, T, n_mels)``, the features as natural-log
        magnitudes; ``envelope`` ``(B, T, n_envelope)`` and ``detail`` ``(B, T, n_detail)``, the network's
        corrections (nepers) of the harmonics' amplitudes read from ``log_mel``; ``deviation`` ``(B, T)``
        semitones; ``noise`` ``(B, T, n_noise)`` ln gains; ``T`` = the features' frames."""
        config = self.config
        index = pitch.round().long().clamp(config.min_pitch, config.max_pitch) - config.min_pitch
        embedding = self.embedding(index)[:, :, None].expand(-1, -1, features.shape[-1])
        hidden = self.blocks(self.inp(torch.cat([features, embedding], dim=1)))
        envelope, detail, deviation, noise = self.out(F.gelu(hidden)).transpose(1, 2).split(
            [config.n_envelope, config.n_detail, 1, config.n_noise], -1)
        log_mel = (features * self.log.scale + self.log.offset).transpose(1, 2)  # (B, T, n_mels), ln magnitude
        top_bands = log_mel[..., self.top_bands]  # (B, T, bands of TOP_BAND_HZ)
        # The partials continue above TRUSTED_HZ from the loudest top band (a partial), the noise from the typical
        # one: a high note's few partials leave most of those bands empty, and the noise sits in the valleys.
        top, noise_top = top_bands.amax(-1), top_bands.median(-1).values  # (B, T) each
        return {
            "log_mel": log_mel,
            "top": top,
            "envelope": envelope,
            "detail": detail,
            "deviation": config.max_deviation * torch.tanh(deviation[..., 0]),
            "noise": self.continued(log_mel @ self.noise_from_mel.T, noise_top[..., None], self.noise_above,
                                    NOISE_TOP_OCTAVE_SLOPE) + NOISE_LEVEL + noise,
        }

    def forward(self, features: torch.Tensor, pitch: torch.Tensor, f0: torch.Tensor | None = None, start: int = 0,
                length: int | None = None, bend: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``(B, n_mels, T)`` + ``(B,)`` MIDI pitch -> audio ``(B, samples)`` (fresh noise when training)
        and the predicted f0 deviation ``(B, T)`` in semitones.

        ``bend`` ``(T,)`` or ``(B, T)`` cents moves the f0 on top of the deviation (a vibrato). An ``f0`` ``(B, T)``
        Hz drives the oscillator instead of the prediction: training passes the note's tracked f0 (and renders only
        samples ``start .. start + length``, see :meth:`render`), :meth:`decode` a recording's measured pitch.
        """
        pitch = torch.as_tensor(pitch, device=features.device).reshape(-1).expand(features.shape[0]).float()
        curves = self.control_curves(features, pitch)
        if f0 is None:
            cents = 100.0 * curves["deviation"] + (0.0 if bend is None else bend.to(features.device))
            f0 = midi_to_hz(pitch)[:, None] * 2.0 ** (cents / 1200.0)
        return self.render(curves, f0, start, length), curves["deviation"]

    def render(self, curves: dict[str, torch.Tensor], f0: torch.Tensor, start: int = 0,
               length: int | None = None) -> torch.Tensor:
        """Controls and an f0 curve ``(B, T)`` Hz -> samples ``start .. start + length`` ``(B, length)``.

        Training renders a random excerpt of each note (the cost is per sample); frame ``t`` of the curves
        sits at ``t / frame_rate`` seconds, as the features' frames do.
        """
        config = self.config
        length = config.samples - start if length is None else length
        seconds = (start + torch.arange(length, device=f0.device, dtype=torch.float64)) / config.sample_rate
        position = (seconds * config.frame_rate).float()
        # Only the frames this excerpt reads are synthesised.
        first = max(int(position[0]), 0)
        last = min(int(position[-1]) + 2, f0.shape[1])
        first = min(first, last - 2) if last >= 2 else 0
        window = {name: curve[:, first:last] for name, curve in curves.items()}
        harmonic = self.harmonics(f0[:, first:last], window, position - first)
        # The noise STFT's frame j is centred on sample start + j * hop (frames = length // hop + 1).
        noise_seconds = (start + config.noise_hop * torch.arange(length // config.noise_hop + 1, device=f0.device,
                                                                 dtype=torch.float64)) / config.sample_rate
        noise = self.noise(interpolate_frames(window["noise"], (noise_seconds * config.frame_rate).float() - first),
                           length)
        return harmonic + noise

    def harmonics(self, f0: torch.Tensor, curves: dict[str, torch.Tensor], position: torch.Tensor) -> torch.Tensor:
        """f0 ``(B, T)`` Hz and the ``curves`` of :meth:`control_curves` -> ``(B, P)`` samples at fractional frame
        ``position`` ``(P,)``."""
        config = self.config
        nyquist = config.sample_rate / 2
        # Only the harmonics that can sound below 0.95 x Nyquist at the lowest f0 of the batch are computed:
        # MIDI 36 needs ~320, MIDI 84 ~20, so the frame-rate work shrinks with the pitch.
        n_harmonics = min(config.table_size // 2 - 1, int(0.95 * nyquist / float(f0.detach().min().clamp_min(1.0))))
        n_harmonics = max(n_harmonics, config.n_detail)
        k = torch.arange(1, n_harmonics + 1, device=f0.device, dtype=f0.dtype)
        partials = f0[..., None] * k  # (B, T, K) Hz
        log_amplitude = self.read_mel(curves["log_mel"], curves["top"], partials) + HARMONIC_LEVEL + sample_bands(
            curves["envelope"], log_frequency_position(partials, config.n_envelope, config.min_hz, nyquist))
        log_amplitude = log_amplitude + F.pad(curves["detail"], (0, n_harmonics - config.n_detail))
        amplitude = log_amplitude.clamp(max=MAX_LOG_AMPLITUDE).exp().masked_fill(partials >= 0.95 * nyquist, 0.0)
        return self.wavetable(f0, amplitude, position)

    def read_mel(self, log_mel: torch.Tensor, top: torch.Tensor, hz: torch.Tensor) -> torch.Tensor:
        """ln magnitudes ``(B, T, n_mels)`` read at frequencies ``hz`` ``(B, T, K)``: linear between the band centres
        on the mel axis (so resolved low partials keep their own band's level); above :data:`TRUSTED_HZ`, the
        loudest band of :data:`TOP_BAND_HZ` (``top`` ``(B, T)``) falling at :data:`TOP_OCTAVE_SLOPE`."""
        level = sample_bands(log_mel, mel_band_position(self.config.spectrogram, hz))
        return self.continued(level, top[..., None], torch.log2((hz / TRUSTED_HZ).clamp_min(1.0)), TOP_OCTAVE_SLOPE)

    @staticmethod
    def continued(level: torch.Tensor, top: torch.Tensor, octaves_above: torch.Tensor, slope: float) -> torch.Tensor:
        """``level`` ``(..., K)`` where ``octaves_above`` :data:`TRUSTED_HZ` is 0, else the loudest top band ``top``
        ``(..., 1)`` falling at ``slope`` nepers per octave."""
        return torch.where(octaves_above > 0, top, level) + slope * octaves_above

    def wavetable(self, f0: torch.Tensor, amplitude: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Wavetable oscillator: f0 ``(B, T)`` Hz, harmonic amplitudes ``(B, T, K)`` (K < table_size / 2),
        fractional frame ``position`` ``(P,)`` of each output sample -> ``(B, P)``, each harmonic ``k`` a sine
        ``amplitude[..., k - 1] * sin(2 pi k phase)``."""
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
        f0_audio = interpolate_frames(f0, position).double()
        phase = torch.cumsum(f0_audio, dim=-1) - f0_audio
        phase = (phase / config.sample_rate).frac().float() * config.table_size  # (B, P) in [0, N)
        index = phase.long().clamp(max=config.table_size - 1)  # float32 rounding can land a phase on N itself
        frac = phase - index
        position = position.clamp(0, frames - 1)
        frame = position.long().clamp(max=max(frames - 2, 0))
        fade = position - frame
        frame = frame * stride

        def read(start: torch.Tensor) -> torch.Tensor:
            return torch.lerp(torch.gather(tables, 1, (start + index).expand(batch, -1)),
                              torch.gather(tables, 1, (start + index + 1).expand(batch, -1)), frac)

        return torch.lerp(read(frame), read(frame + stride * int(frames > 1)), fade)

    def noise(self, bands: torch.Tensor, length: int) -> torch.Tensor:
        """Filtered noise: ln band gains ``(B, F, n_noise)``, one per noise-STFT frame -> ``(B, length)``."""
        config = self.config
        magnitude = torch.einsum("bfn,nk->bkf", bands.clamp(max=MAX_LOG_AMPLITUDE).exp(), self.noise_bands)
        frames = magnitude.shape[-1]
        noise = self.noise_table[:, :frames]
        if self.training:  # a random circular shift in time and frequency: fresh noise without drawing any
            shifts = [int(torch.randint(size, ())) for size in self.noise_table.shape]
            noise = self.noise_table.roll(shifts, dims=(0, 1))[:, :frames]
        # Scaled so that a gain of 1 in every bin is white noise of RMS ~1 after the overlap-add.
        scale = math.sqrt(config.noise_fft / 2 / config.noise_hop) / math.sqrt(config.noise_fft)
        return self.noise_stft.inverse(magnitude * noise * scale, length)

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, pitch: torch.Tensor | float, bend: PitchBend | None = None,
               aim: torch.Tensor | None = None) -> np.ndarray:
        """Features ``(n_mels, T)`` or ``(B, n_mels, T)`` -> float32 audio ``(samples,)`` or ``(B, samples)``,
        each note peak-limited to 0.99, its pitch moved by ``bend`` (a :class:`Vibrato` or a recording's pitch
        curve; the same for every note). A bend that holds the tuning (a recording's) replaces the predicted f0
        deviation: on the 40 held-out notes of ``benchmarks/notes44.py``, adding it to the deviation around the
        curve's median cost 0.13-0.14 dB LSD_dB (true features 3.13 vs 3.00, reconstructions 4.08 vs 3.94).
        ``aim`` (shaped as ``features``): other features for the equaliser to
        aim at than those played -- what knowing the true band levels would be worth (``benchmarks/notes44.py
        --sections gap``)."""
        single = features.ndim == 2
        features = features.reshape(-1, *features.shape[-2:]).to(self.noise_stft.window.device).float()
        pitch = torch.as_tensor(pitch, dtype=torch.float32, device=features.device).reshape(-1)
        pitch = pitch.expand(features.shape[0])
        f0, cents = self.bent(pitch, bend, features.shape[-1])
        aim = features if aim is None else aim.reshape(features.shape).to(features.device).float()
        audio = self.equalise(self(features, pitch, f0, bend=cents)[0].float(), aim)
        audio = peak_limit(audio.cpu().numpy())
        return audio[0] if single else audio

    def bent(self, pitch: torch.Tensor, bend: PitchBend | None, frames: int
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """MIDI ``pitch`` ``(B,)`` moved by ``bend`` over ``frames`` feature frames -> what :meth:`forward` takes:
        ``(f0, None)``, f0 ``(B, frames)`` Hz, for a bend that holds the tuning (a recording's measured pitch, played
        as it is, not beside a guessed detune); ``(None, cents)``, cents ``(frames,)``, for one that swings around
        the predicted deviation (a vibrato); ``(None, None)`` without a bend."""
        if bend is None:
            return None, None
        cents = bend.cents(torch.arange(frames) / self.config.frame_rate).float().to(pitch.device)
        if bend.holds_tuning:
            return midi_to_hz(pitch)[:, None] * 2.0 ** (cents / 1200.0), None
        return None, cents

    def equalise(self, audio: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Audio ``(B, samples)`` filtered so that it reads ``features`` ``(B, n_mels, T)`` below :data:`TRUSTED_HZ`.

        The synthesiser puts each band's energy into partials and noise by rules and a network that get a band's
        level wrong by a few dB, differently for every note (a voice too quiet throughout, a string's upper
        bands too bright). So the note is heard again as the models hear notes -- resampled to the features' rate
        and analysed into the same mel bands -- and every frame of its STFT (``noise_fft`` / ``noise_hop``) is
        scaled, band by band, by what it lacks (at most :data:`EQUALISER_LIMIT`), keeping its phases. Above
        :data:`TRUSTED_HZ` the correction fades out and the top octave stays as the synthesiser drew it.

        Measured on the 40 held-out notes of ``benchmarks/notes44.py``, ViSQOL / full-band LSD_dB: true
        features 4.10 / 4.24 -> 4.14 / 3.28, refined cvae reconstructions 4.10 / 4.71 -> 4.13 / 4.43, for ~6 ms
        per note. It corrects the level as well as the shape: matching only each frame's loudness gave 3.82 and
        4.55 dB; a second pass gains 0.01 dB on reconstructions, scaling the gains by 0.75 another 0.01. The bass
        reconstructions lose (2.8 -> 3.5 dB): the network had learnt to undo some of the cvae's errors, which the
        equaliser brings back. Aimed at the *true* features instead, the same reconstructions would score 3.32 dB
        (``benchmarks/notes44.py --sections gap``): their remaining gap is in the levels they ask for. On 40
        validation notes (scratch), gains smoothed over 3 mel bands, or limited to 3 dB of boost, or to 6 dB
        either way, all scored worse than this (true features 4.21 -> 4.39-4.42 dB, reconstructions 4.84 ->
        4.92-5.07). Wider limits score better by LSD_dB (the same validation notes, true features / reconstructions:
        12 dB 3.79 / 4.85, 24 dB 3.69 / 4.82, 36 dB 3.67 / 4.80, 60 dB 3.66 / 4.80; ViSQOL unchanged; a 36-dB
        limit for cuts alone 3.75 / 4.85), and 36 dB did on the test notes too (3.13 -> 3.03, 4.29 -> 4.25). But
        it conjures: where a gan organ's features hold a haze below and between its first partials, 36 dB of boost
        lifts the synthesiser's faint noise there into a rumble pyin hears as the pitch (gan samples in tune 96.9 ->
        92.9 %, four organs at MIDI 54-80; ``benchmarks/notes44.py``, scratch check of the same samples). So 12.
        """
        config = self.config
        rate = config.spectrogram.sample_rate
        if audio.requires_grad:  # a latent refined through the vocoder (Timbre.listen): soxr has no gradient
            heard = self.analysis(resample_fft(audio, round(audio.shape[-1] * rate / config.sample_rate)))
        else:
            heard = self.analysis(torch.from_numpy(resample(audio.cpu().numpy(), config.sample_rate, rate)
                                                   ).to(audio.device))
        frames = min(heard.shape[-1], features.shape[-1])
        lack = ((features[..., :frames] - heard[..., :frames]) * self.log.scale).clamp(-EQUALISER_LIMIT,
                                                                                       EQUALISER_LIMIT)
        spectrum = self.noise_stft(audio)  # (B, bins, F)
        position = torch.arange(spectrum.shape[-1], device=audio.device) * (config.noise_hop / config.sample_rate
                                                                            * config.frame_rate)
        gains = interpolate_frames(lack.transpose(1, 2), position.float()) @ self.equaliser_bands  # (B, F, bins)
        return self.noise_stft.inverse(spectrum * gains.exp().transpose(1, 2), audio.shape[-1])
