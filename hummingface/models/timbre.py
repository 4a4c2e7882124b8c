"""A note autoencoder as a musician's instrument: audio in, audio out, sliders, sampling and interpolation.

:class:`Timbre` wraps a trained :class:`~hummingface.models.autoencoder.NoteAutoencoder` with the spectrogram
it reads (:class:`hummingface.dsp.NoteSpectrogram`, 16-kHz mel), what turns its features into sound
(:class:`~hummingface.models.note_audio.NoteAudio`: the 44.1-kHz vocoder, or 16-kHz phase reconstruction for
weights without one) and its :class:`~hummingface.latent.LatentSpace` (PCA sliders, family centroids,
Explorer points). Notes are 4 s long; audio comes back as float32 ``(samples,)`` in [-1, 1] at
:attr:`Timbre.sample_rate` (``(176400,)`` at 44.1 kHz).

    >>> import hummingface
    >>> model = hummingface.load("cvae")
    >>> z = model.encode(audio, sr, pitch=60)          # (latent_size,)
    >>> note = model.decode(z, pitch=67)               # the same timbre a fifth up
    >>> note = model.decode(z, pitch=67, vibrato=Vibrato(depth_cents=20, rate_hz=5.5))
    >>> note = model.reconstruct(audio, sr)            # encoded and decoded, played as the recording was
    >>> note = model.sample(seed=3, pitch=48)          # a random instrument
    >>> path = model.interpolate(z, model.random_latent(4), [0, 0.5, 1])  # (3, latent_size)
    >>> sliders = model.to_sliders(z)                  # (n_sliders,) in standard deviations
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from hummingface.audio import fit_length, resample
from hummingface.constants import LISTEN_STEPS, NOTE_SAMPLES, REFINE_STEPS, SAMPLE_RATE
from hummingface.data.gm import family_index
from hummingface.device import get_device
from hummingface.dsp import STFT, NoteSpectrogram
from hummingface.errors import UserError
from hummingface.hub import WeightsSource, model_class
from hummingface.latent import LatentSpace, interpolate
from hummingface.metrics import clipped_db, lsd_of_db
from hummingface.models.autoencoder import MODELS, NoteAutoencoder
from hummingface.models.note_audio import VOCODER, NoteAudio, load_vocoder
from hummingface.models.vocoder import Vocoder
from hummingface.performance import Performance, measure_performance
from hummingface.vibrato import PitchBend, Vibrato, measure_vibrato

LATENT_FILE = "latent.safetensors"
REFINE_LR = 0.05  # Adam's step on the latent, in prior standard deviations
REFINE_PRIOR_WEIGHT = 1e-3  # the pull towards the prior's centre, against the features' L1 (~0.05 at the start)
LISTEN_LR = 0.1  # Adam's step on the latent in Timbre.listen
# Timbre.listen hears notes as benchmarks/notes44.py scores them: an STFT of 2048 / 512 samples at 44.1 kHz, each
# spectrogram floored this many dB below its peak. Its distance (~4 dB) is divided by LISTEN_DB_SCALE, so that it
# outweighs the features' L1 that keeps the latent alone in shape (~0.05) but not by orders of magnitude.
LISTEN_FFT, LISTEN_HOP, LISTEN_RANGE_DB, LISTEN_DB_SCALE = 2048, 512, 80.0, 10.0
LISTEN_BAND = 0.9  # of a recording's Nyquist frequency: above it a resampled recording holds nothing to hear


class Timbre:
    """A note model with its spectrogram, its output stage and latent space.

    Args:
        model: the network (its ``config.spectrogram`` builds the spectrogram).
        latent: the PCA of its validation latents; ``None`` for an untrained model (sliders and sampling
            then use a standard normal latent).
        vocoder: the 44.1-kHz vocoder; ``None`` plays 16-kHz phase reconstructions.
    """

    def __init__(self, model: NoteAutoencoder, latent: LatentSpace | None = None, vocoder: Vocoder | None = None
                 ) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.spectrogram = NoteSpectrogram(model.config.spectrogram).to(self.device)
        self.output = NoteAudio(self.spectrogram, vocoder)
        self.latent = latent
        self.folder = None  # the checkpoint folder, when loaded from one (slider names are kept there)

    @classmethod
    def load(
        cls, name: str = "cvae", weights: str | os.PathLike | None = None, device: str | torch.device | None = None,
        vocoder: str | None = VOCODER,
    ) -> Timbre:
        """Load checkpoint ``name`` (``ae``, ``vae``, ``mog-vae``, ``cvae`` or any folder name holding one).

        Args:
            weights: ``org/name[@revision]`` on the Hub or a checkpoint tree; default ``checkpoints/``.
            device: see :func:`hummingface.device.get_device`.
            vocoder: the vocoder checkpoint of ``weights`` that plays the notes at 44.1 kHz; ``None``, or
                weights without it, play 16-kHz phase reconstructions.
        """
        folder = WeightsSource.resolve(weights).checkpoint(name)
        return cls.from_folder(folder, device, load_vocoder(weights, get_device(device), vocoder))

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str | torch.device | None = None,
                    vocoder: Vocoder | None = None) -> Timbre:
        from pathlib import Path

        folder = Path(folder)
        model = model_class(folder, MODELS).from_folder(folder, device=get_device(device))
        latent = LatentSpace.load(folder / LATENT_FILE) if (folder / LATENT_FILE).is_file() else None
        timbre = cls(model, latent, vocoder)
        timbre.folder = folder
        return timbre

    @property
    def name(self) -> str:
        return self.model.model_type

    @property
    def conditional(self) -> bool:
        """Whether the decoder takes the pitch (``cvae``); the others carry the pitch in the latent."""
        return self.model.conditional

    @property
    def latent_size(self) -> int:
        return self.model.config.latent_size

    @property
    def sample_rate(self) -> int:
        """Hz of the audio :meth:`decode` writes (44 100 with the vocoder, else 16 000)."""
        return self.output.sample_rate

    @property
    def n_sliders(self) -> int:
        return self.latent.n_sliders if self.latent is not None else min(16, self.latent_size)

    # -- audio <-> latent -------------------------------------------------------------------------------

    def features(self, audio: np.ndarray | torch.Tensor, sr: int) -> torch.Tensor:
        """Any audio ``(samples,)`` or ``(channels, samples)`` at ``sr`` Hz -> features ``(n_bins, frames)``."""
        with torch.inference_mode():
            return self.spectrogram(torch.from_numpy(as_note(audio, sr)).to(self.device))

    @torch.inference_mode()
    def encode(self, audio: np.ndarray | torch.Tensor, sr: int, pitch: int | None = None) -> torch.Tensor:
        """Audio -> latent ``(latent_size,)`` (the posterior mean).

        Args:
            pitch: MIDI pitch of the note, used by the ``cvae`` only; estimated with pyin when ``None``
                (middle C if the note has no clear pitch).
        """
        note = as_note(audio, sr)
        if self.conditional:
            pitch = note_pitch(note, pitch)
        return self.encode_features(self.features(note, SAMPLE_RATE)[None], pitch)[0]

    @torch.inference_mode()
    def encode_features(self, features: torch.Tensor, pitch: int | Sequence[int] | torch.Tensor | None = None):
        """Features ``(B, n_bins, frames)`` -> latents ``(B, latent_size)`` on the CPU."""
        pitch = self._pitch(pitch, features.shape[0])
        return self.model.encode_features(features.to(self.device), pitch).mean.float().cpu()

    @torch.inference_mode()
    def decode_features(self, latent: torch.Tensor, pitch: int | Sequence[int] | torch.Tensor | None = None):
        """Latents ``(B, latent_size)`` or ``(latent_size,)`` -> features ``(B, n_bins, frames)`` (same batching)."""
        latent = torch.as_tensor(latent, dtype=torch.float32)
        single = latent.ndim == 1
        latent = latent.reshape(-1, self.latent_size).to(self.device)
        out = self.model.decode_features(latent, self._pitch(pitch, latent.shape[0]))
        return out[0] if single else out

    @torch.inference_mode()
    def decode(self, latent: torch.Tensor, pitch: int | None = None, vibrato: Vibrato | None = None,
               performance: Performance | None = None) -> np.ndarray:
        """Latent ``(latent_size,)`` or ``(B, latent_size)`` -> float32 audio ``(samples,)`` or ``(B, samples)`` at
        :attr:`sample_rate`.

        Args:
            pitch: MIDI pitch for the ``cvae`` (required there); ignored by the other models, whose
                latent holds the pitch.
            vibrato: a pitch swing (:mod:`hummingface.vibrato`; played by the vocoder only).
            performance: a recording's loudness and pitch curves (:meth:`performance`) to play the latent with,
                instead of its own loudness and ``vibrato``.
        """
        features = self.decode_features(latent, pitch)
        if performance is not None:
            features = self.spectrogram.with_loudness(features, performance.loudness_db)
        played = pitch if self.conditional else self.held_pitch(latent)
        return self.audio(features, played, performance if performance is not None else vibrato)

    @torch.inference_mode()
    def held_pitch(self, latent: torch.Tensor) -> torch.Tensor:
        """The MIDI pitch ``()`` or ``(B,)`` an unconditional model's latent ``(latent_size,)`` or ``(B, ...)``
        plays."""
        latent = torch.as_tensor(latent, dtype=torch.float32)
        pitch = self.model.read_pitch(latent.reshape(-1, self.latent_size).to(self.device)).cpu()
        return pitch[0] if latent.ndim == 1 else pitch

    def audio(self, features: torch.Tensor, pitch: int | torch.Tensor | None, bend: PitchBend | None = None
              ) -> np.ndarray:
        """Features ``(n_bins, frames)`` or ``(B, ...)`` of MIDI ``pitch`` -> float32 audio ``(samples,)`` or
        ``(B, samples)`` at :attr:`sample_rate`, each note peak-limited to 0.99, its pitch moved by ``bend`` (a
        vibrato or a recording's pitch curve)."""
        return self.output(features, pitch, bend)

    def analyse(self, audio: np.ndarray | torch.Tensor, sr: int, pitch: int | None = None,
                refine_steps: int = REFINE_STEPS, listen_steps: int = LISTEN_STEPS
                ) -> tuple[torch.Tensor, int, Vibrato]:
        """A recorded note -> its latent ``(latent_size,)`` (:meth:`fit`), its MIDI pitch (given, else the pyin
        estimate) and its vibrato, which the latent does not hold (:func:`~hummingface.vibrato.measure_vibrato`)."""
        note = as_note(audio, sr)
        pitch = note_pitch(note, pitch)
        latent = self.fit(audio, sr, pitch, refine_steps, listen_steps)
        return latent, pitch, measure_vibrato(note, SAMPLE_RATE, pitch)

    def fit(self, audio: np.ndarray | torch.Tensor, sr: int, pitch: int | None = None,
            refine_steps: int = REFINE_STEPS, listen_steps: int = LISTEN_STEPS,
            performance: Performance | None = None) -> torch.Tensor:
        """A recorded note of MIDI ``pitch`` (needed by the ``cvae`` only) -> the latent ``(latent_size,)`` that
        plays it best: :meth:`encode`'s guess, moved by ``refine_steps`` of :meth:`refine`, then by
        ``listen_steps`` of :meth:`listen` (played with ``performance``, else the recording's own)."""
        features = self.features(audio, sr)
        latent = self.encode_features(features[None], pitch)[0]
        if refine_steps:
            latent = self.refine(latent, features, pitch, refine_steps)
        return self.listen(latent, audio, sr, pitch, listen_steps, performance) if listen_steps else latent

    def performance(self, audio: np.ndarray | torch.Tensor, sr: int, pitch: int) -> Performance:
        """How a recording of MIDI ``pitch`` was played: its loudness and pitch curves, which the latent does not
        hold exactly (:mod:`hummingface.performance`)."""
        return measure_performance(as_note(audio, sr), self.spectrogram, pitch)

    def reconstruct(self, audio: np.ndarray | torch.Tensor, sr: int, pitch: int | None = None,
                    refine_steps: int = REFINE_STEPS, listen_steps: int = LISTEN_STEPS) -> np.ndarray:
        """A note through the model and back, played as the recording was: its latent (:meth:`fit`, with
        ``refine_steps`` of :meth:`refine` and ``listen_steps`` of :meth:`listen`) decoded with its
        :meth:`performance`; float32 ``(samples,)``."""
        note = as_note(audio, sr)
        pitch = note_pitch(note, pitch)
        performance = self.performance(note, SAMPLE_RATE, pitch)
        latent = self.fit(audio, sr, pitch, refine_steps, listen_steps, performance)
        return self.decode(latent, pitch, performance=performance)

    def refine(self, latent: torch.Tensor, features: torch.Tensor, pitch: int | None = None,
               steps: int = 25) -> torch.Tensor:
        """A latent ``(latent_size,)`` moved by ``steps`` Adam steps so that it decodes closer to a note's
        ``features`` ``(n_bins, frames)``: the encoder's one guess, improved where it generalises worst.

        The loss is the models' training loss, the features' mean absolute error, averaged with the same error
        of the decoded features turned to the note's own loudness curve (as :meth:`reconstruct` plays them), plus
        a small pull towards the prior's centre, so the latent stays where the sliders and the prior make sense.
        It closes part of the encoder's amortisation gap on held-out instruments (figures in README, "Notes at
        44.1 kHz"). Why both errors: a global latent cannot hold every note's exact envelope. Fitted to the
        features alone it spends itself on the envelope, which a reconstruction replaces by the recording's;
        fitted only through the loudness curve it leaves the envelope it plays alone ("Use this sound") to
        chance. On 40 validation notes (cvae, 25 steps, full-band LSD_dB through the vocoder) played as recorded /
        the latent alone: features alone 5.30 / 6.21 dB, through the curve alone 4.92 / 6.73, both 4.94 / 5.57.
        """
        with torch.inference_mode(False), torch.enable_grad():
            z = latent.detach().clone().to(self.device).reshape(1, -1).requires_grad_(True)
            target = features.detach().clone().to(self.device).reshape(1, *features.shape[-2:])
            loudness_db = self.spectrogram.loudness_db(target)
            cond = self._pitch(pitch, 1)
            optimiser = torch.optim.Adam([z], lr=REFINE_LR)
            for _ in range(int(steps)):
                decoded = self.model.decode_features(z, cond)
                played = self.spectrogram.with_loudness(decoded, loudness_db)
                error = ((decoded - target).abs().mean() + (played - target).abs().mean()) / 2
                loss = error + REFINE_PRIOR_WEIGHT * z.square().mean()
                (z.grad,) = torch.autograd.grad(loss, z)  # the latent's gradient only: the weights stay untouched
                optimiser.step()
        return z.detach()[0].cpu()

    def listen(self, latent: torch.Tensor, audio: np.ndarray | torch.Tensor, sr: int, pitch: int | None = None,
               steps: int = LISTEN_STEPS, performance: Performance | None = None) -> torch.Tensor:
        """A latent ``(latent_size,)`` moved by ``steps`` Adam steps so that the note it plays -- through the
        vocoder, with the recording's :meth:`performance` (or ``performance``), as :meth:`reconstruct` plays it --
        sounds closer to the recording ``audio`` at ``sr`` Hz; unchanged without a vocoder.

        :meth:`refine` fits the 16-kHz mel features, but what a listener hears is the vocoder's reading of them:
        its noise sits at each band's level between the partials, so the blur a latent leaves there (an unheard
        organ's valleys filled) becomes hiss, and the top octave is its guess from the bands below. Here the
        latent is judged by its sound instead: the log-spectral distance (dB, floored :data:`LISTEN_RANGE_DB`
        below each spectrogram's peak, bins under :data:`LISTEN_BAND` of the recording's Nyquist frequency) between
        the vocoder's note, equaliser included, and the recording at the vocoder's rate; plus the features' L1
        of the latent alone, so that "Use this sound" keeps its shape, and :meth:`refine`'s pull towards the
        prior's centre. Gradients flow through the cvae's decoder, the vocoder and its equaliser (heard through
        an FFT resampler, :func:`~hummingface.dsp.resample_fft`), never into their weights. Figures in README
        ("Notes at 44.1 kHz"): on held-out instruments it is what brings reconstructions within the target.
        """
        vocoder = self.output.vocoder
        if vocoder is None or not steps:
            return latent
        note = as_note(audio, sr)
        pitch = note_pitch(note, pitch)
        performance = performance if performance is not None else self.performance(note, SAMPLE_RATE, pitch)
        recording = as_note(audio, sr, vocoder.config.sample_rate, vocoder.config.samples)
        played_pitch = float(pitch if self.conditional else self.held_pitch(latent))
        # Everything the loop reads is made here, outside inference mode (a caller's would make inference tensors,
        # which autograd cannot save).
        with torch.inference_mode(False), torch.enable_grad():
            features = self.features(note, SAMPLE_RATE).clone()[None]
            stft = STFT(LISTEN_FFT, LISTEN_HOP).to(self.device)
            target = clipped_db(stft(torch.from_numpy(recording).to(self.device)).abs().square(), LISTEN_RANGE_DB)
            hz = torch.arange(target.shape[-2], device=self.device) * (vocoder.config.sample_rate / LISTEN_FFT)
            heard_bins = hz < LISTEN_BAND * min(int(sr), vocoder.config.sample_rate) / 2
            played_pitch = torch.tensor([played_pitch], device=self.device)
            f0, cents = vocoder.bent(played_pitch, performance, features.shape[-1])
            loudness_db = performance.loudness_db.clone().to(self.device)
            cond = self._pitch(pitch, 1)
            z = latent.detach().clone().to(self.device).reshape(1, -1).requires_grad_(True)
            optimiser = torch.optim.Adam([z], lr=LISTEN_LR)
            for _ in range(int(steps)):
                decoded = self.model.decode_features(z, cond)
                played = self.spectrogram.with_loudness(decoded, loudness_db)
                sound = vocoder.equalise(vocoder(played, played_pitch, f0, bend=cents)[0], played)[0]
                heard = clipped_db(stft(sound).abs().square(), LISTEN_RANGE_DB)
                distance = lsd_of_db(target, heard, heard_bins, smoothing=1e-6)
                loss = (distance / LISTEN_DB_SCALE + (decoded - features).abs().mean()
                        + REFINE_PRIOR_WEIGHT * z.square().mean())
                (z.grad,) = torch.autograd.grad(loss, z)  # the latent's gradient only: the weights stay untouched
                optimiser.step()
        return z.detach()[0].cpu()

    # -- sampling, sliders and paths -------------------------------------------------------------------

    def base_latent(
        self, family: str | int | None = None, pitch: int | None = None, velocity: int | None = None
    ) -> torch.Tensor:
        """Where sampling starts: the family's centroid (or the mean latent), moved towards ``velocity``.

        For models without pitch conditioning a requested pitch picks the centroid of the Explorer notes of the
        nearest stored pitch (and the family, where it has notes there), since their latent holds the pitch.
        None of the models is conditioned on velocity: a velocity adds the offset between the mean latent of the
        Explorer notes played at the nearest stored velocity and the mean of all of them.
        """
        if self.latent is None:
            return torch.zeros(self.latent_size)
        space = self.latent
        index = family_index(family) if family is not None else None
        if pitch is not None and not self.conditional:
            mask = torch.ones_like(space.point_pitch, dtype=torch.bool)
            if index is not None and (space.point_family == index).any():
                mask = space.point_family == index
            pitches = space.point_pitch[mask]
            nearest = pitches[(pitches - pitch).abs().argmin()]
            base = space.point_latents[mask & (space.point_pitch == nearest)].mean(dim=0)
        else:
            base = space.family_centroids[index] if index is not None else space.mean
        if velocity is not None:
            velocities = space.point_velocity
            nearest = velocities[(velocities - velocity).abs().argmin()]
            base = base + space.point_latents[velocities == nearest].mean(dim=0) - space.point_latents.mean(dim=0)
        return base

    def random_latent(
        self,
        seed: int,
        family: str | int | None = None,
        pitch: int | None = None,
        temperature: float = 1.0,
        velocity: int | None = None,
    ) -> torch.Tensor:
        """A seeded random latent ``(latent_size,)``.

        Drawn from the Gaussian the latent PCA fits to validation notes, centred on :meth:`base_latent` (the
        ``mog-vae`` draws a family from its own mixture component). Without a latent space: standard normal.
        """
        generator = torch.Generator().manual_seed(int(seed))
        if self.model.mixture_prior and family is not None and pitch is None and velocity is None:
            return self.model.prior_sample(generator, family=family_index(family))[0]
        if self.latent is None:
            return torch.randn(self.latent_size, generator=generator) * temperature
        if pitch is not None and not self.conditional:
            temperature *= 0.3  # far from the pitch's centroid the pitch itself drifts
        base = self.base_latent(family, pitch, velocity)
        return self.latent.random(generator, base=base, temperature=temperature)[0]

    def sample(
        self, seed: int, pitch: int = 60, family: str | int | None = None, temperature: float = 1.0
    ) -> np.ndarray:
        """A random note: :meth:`random_latent` decoded at ``pitch``; float32 ``(samples,)`` at :attr:`sample_rate`."""
        return self.decode(self.random_latent(seed, family, pitch, temperature), pitch=pitch)

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, t: float | Sequence[float]) -> torch.Tensor:
        """Latents on the straight line from ``a`` to ``b``: ``(latent_size,)`` for a scalar ``t``, else ``(T, D)``."""
        return interpolate(a, b, t)

    def to_sliders(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(latent_size,)`` -> slider values ``(n_sliders,)`` in standard deviations."""
        if self.latent is None:
            return torch.as_tensor(latent, dtype=torch.float32)[: self.n_sliders]
        return self.latent.to_sliders(torch.as_tensor(latent))

    def from_sliders(self, values: Sequence[float] | torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """Slider values (any number up to latent_size, std units) -> latent; other directions stay at ``base``."""
        values = torch.as_tensor(values, dtype=torch.float32)
        if self.latent is None:
            latent = torch.zeros(self.latent_size) if base is None else base.clone().float()
            latent[: values.shape[-1]] = values
            return latent
        return self.latent.from_sliders(values, base)

    def _pitch(self, pitch, batch: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if pitch is None:
            raise UserError(f"The {self.name} model needs a MIDI pitch.")
        pitch = torch.as_tensor(pitch, dtype=torch.long).reshape(-1)
        if pitch.numel() not in (1, batch):
            raise UserError(f"{pitch.numel()} pitches given for {batch} notes.")
        return pitch.expand(batch).to(self.device)



def as_note(audio: np.ndarray | torch.Tensor, sr: int, sample_rate: int = SAMPLE_RATE, samples: int = NOTE_SAMPLES
            ) -> np.ndarray:
    """Audio ``(samples,)`` or ``(channels, samples)`` at ``sr`` Hz -> float32 ``(samples,)``: mono, at
    ``sample_rate``, 4 s (the models' 64 000 samples at 16 kHz by default)."""
    audio = np.asarray(audio.cpu() if isinstance(audio, torch.Tensor) else audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1 or audio.size == 0:
        raise UserError(f"Audio must be (samples,) or (channels, samples) and not empty, not {audio.shape}.")
    return fit_length(resample(audio, int(sr), sample_rate), samples)


def estimate_pitch(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, seconds: float = 2.5) -> float | None:
    """Median pyin f0 over the voiced frames of the first ``seconds``, in (fractional) MIDI; ``None`` if unvoiced.

    The pitch check of ``docs/metrics.md`` (``benchmarks/notes.py``) uses the same measure. The search spans MIDI
    24-96, the pitches the models are trained on (a wider one costs twice the time for nothing). Audio at
    another rate is analysed at 16 kHz, so the measure (and its 2048-sample frame) is the same at any rate.
    """
    import librosa

    clip = resample(np.asarray(audio, dtype=np.float32)[: int(seconds * sample_rate)], int(sample_rate), SAMPLE_RATE)
    f0, voiced, _ = librosa.pyin(
        clip, fmin=librosa.midi_to_hz(24), fmax=librosa.midi_to_hz(96), sr=SAMPLE_RATE, frame_length=2048
    )
    f0 = f0[voiced & np.isfinite(f0)]
    if f0.size == 0:
        return None
    return float(librosa.hz_to_midi(np.median(f0)))


def note_pitch(note: np.ndarray, pitch: int | None = None) -> int:
    """``pitch`` if given, else the pyin estimate of a 16-kHz note, rounded, else middle C (60) if unpitched."""
    if pitch is not None:
        return pitch
    estimate = estimate_pitch(note)
    return round(estimate) if estimate is not None else 60
