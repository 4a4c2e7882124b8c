"""The app's work, as plain Python: inputs in, ``(sample_rate, int16 audio)`` and pictures out.

``app.py`` only lays out components and wires events to the methods of :class:`Studio`; everything here runs
(and is tested) without a browser or Gradio. Errors a user can cause raise :class:`~hummingface.errors.UserError`
with one sentence, which the app shows as a ``gr.Error``.

Four tabs, four groups of methods:

- Designer: :meth:`Studio.design` (slider values -> note), :meth:`Studio.start_from` (a sound -> slider values),
  :meth:`Studio.randomise`, :meth:`Studio.morph`.
- Note Generator: :meth:`Studio.generate_note` (one note, a scale or a chord), :meth:`Studio.surprise`.
- Upsampler: :meth:`Studio.describe_upload`, :meth:`Studio.upsample`.
- Latent Explorer: :meth:`Studio.explore_map`, :meth:`Studio.explore` (a clicked pixel -> the nearest note).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from hummingface.audio import audio_info, read_audio, to_int16, write_audio
from hummingface.cli_args import MAX_SEED, number
from hummingface.constants import LISTEN_STEPS, MAX_UPLOAD_SECONDS, note_name
from hummingface.data.gm import FAMILIES
from hummingface.device import get_device
from hummingface.errors import UserError
from hummingface.hub import WeightsSource
from hummingface.latent import interpolate
from hummingface.models.note_audio import VOCODER
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import Vocoder
from hummingface.plots import MapView, fidelity_plot, latent_map, ring, side_by_side, spectrogram_image
from hummingface.vibrato import Vibrato, measure_vibrato

TIMBRE_MODELS = ("cvae", "vae", "mog-vae", "ae")  # Designer order: the default first
GENERATOR_MODELS = ("gan", "cdecoder")
PICTURE_SECONDS = 30.0  # the Upsampler's pictures and bandwidth measure show at most this much of a file
MAX_STD = 10.0  # slider values beyond this many standard deviations are refused (the app's sliders span ±4)
M_ARENA_MAX = -8  # glibc's mallopt parameter for the arena limit (malloc.h)
MAX_MAPS = 16  # Explorer maps kept (least recently used dropped): about 1 MB each
PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"
NOTES_DIR_ENV = "HUMMINGFACE_NOTES"  # the note corpus root, for the Explorer's original notes
DEFAULT_NOTES_DIR = Path("data/notes-fluidr3")
Audio = tuple[int, np.ndarray]  # what gr.Audio plays: (sample rate, int16 (samples,) or (samples, channels))


def playable(audio: np.ndarray, sample_rate: int) -> Audio:
    """Float audio ``(samples,)`` or ``(channels, samples)`` -> what ``gr.Audio`` plays unchanged (int16).

    Gradio would peak-normalise a float array; int16 keeps the loudness the model made.
    """
    return sample_rate, to_int16(audio)


def bandwidth_hz(audio: np.ndarray, sample_rate: int, floor_db: float = -60.0) -> float:
    """Highest frequency whose average power is within ``floor_db`` of the loudest one (Hz).

    The measured bandwidth an upload really has, whatever its sample rate claims: an 8 kHz file resampled to
    44.1 kHz still measures about 4 kHz.
    """
    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    n_fft = 2048
    if len(mono) < n_fft:
        mono = np.pad(mono, (0, n_fft - len(mono)))
    hop = max(n_fft, len(mono) // 400)  # at most ~400 frames: fast on a 10-minute file
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    power = (np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2).mean(axis=0)
    db = 10 * np.log10(power + 1e-20)
    loud = np.nonzero(db >= db.max() + floor_db)[0]
    return float(np.fft.rfftfreq(n_fft, 1 / sample_rate)[loud[-1]]) if loud.size else 0.0


@dataclasses.dataclass
class Design:
    """A Designer result: the note, its picture, and where it sits (``latent`` ``(D,)``, ``sliders`` ``(k,)``)."""

    audio: Audio
    picture: np.ndarray
    latent: torch.Tensor
    sliders: list[float]


@dataclasses.dataclass
class Explored:
    """An Explorer click: the nearest note's labels, its latent, its reconstruction and (if found) the original,
    whose vibrato the reconstruction plays."""

    index: int
    note_id: str
    labels: str
    latent: torch.Tensor
    pitch: int
    reconstruction: Audio
    original: Audio | None
    picture: np.ndarray
    vibrato: Vibrato


class Studio:
    """Every model the app serves, loaded once, and the app's actions on them.

    Args:
        timbres: Designer/Explorer models by name (``cvae``, ``vae``, ...).
        generators: Note Generator models by name (``gan``, ``cdecoder``); may be empty.
        upsampler: the learned upsampler, or ``None`` (the sbr and sinc modes always work).
        notes_dir: the note corpus root, where the Explorer finds original notes (else it re-renders them).
        keep_seconds: how long the files it writes under an ``out_dir`` (upsamples, exports, renders) are kept:
            each new one first deletes the older ones. Gradio's ``delete_cache`` removes only the files Gradio
            wrote itself, so without this they piled up in its cache (+700 MB in a 4-minute load test). The app
            sweeps its whole cache with the same age (:func:`sweep_every`).
        listen_steps: how long an uploaded or preset sound is listened to when the Designer starts from it
            (:meth:`Timbre.listen`, ~0.07-0.1 s a step on two CPU cores); 0 fits its features only.
    """

    def __init__(
        self,
        timbres: dict[str, Timbre],
        generators: dict | None = None,
        upsampler: object | None = None,
        notes_dir: str | os.PathLike | None = None,
        keep_seconds: float = 600.0,
        listen_steps: int = LISTEN_STEPS,
    ) -> None:
        if not timbres:
            raise UserError("No timbre model found: the Designer needs at least one of " + ", ".join(TIMBRE_MODELS))
        self.timbres = timbres
        self.generators = generators or {}
        self.upsampler = upsampler
        self.notes_dir = Path(notes_dir or os.environ.get(NOTES_DIR_ENV, DEFAULT_NOTES_DIR))
        self.keep_seconds = keep_seconds
        self.listen_steps = listen_steps
        self._maps: OrderedDict[tuple[str, int, int], tuple[np.ndarray, MapView]] = OrderedDict()  # LRU
        # Explorer notes' latents fitted to their originals, by (model, map point): a click on a fitted note takes
        # 449 ms instead of 717 (benchmarks/app.py); the map's points bound the dict (2 048 x 64 floats a model).
        self._fits: dict[tuple[str, int], torch.Tensor] = {}

    @classmethod
    def load(cls, weights: str | None = None, device: str | torch.device | None = None,
             keep_seconds: float = 600.0, listen_steps: int = LISTEN_STEPS) -> Studio:
        """Load every model found in ``weights`` (default ``checkpoints/``, or ``$HUMMINGFACE_WEIGHTS``).

        A Hub repo is downloaded when the Hub answers, else read from the local cache (see
        :meth:`~hummingface.hub.WeightsSource.fetch`); neither is one :class:`UserError` sentence.
        """
        source = WeightsSource.resolve(weights)
        found = source.fetch((*TIMBRE_MODELS, *GENERATOR_MODELS, "upsampler", VOCODER))
        # One vocoder plays every note model at 44.1 kHz; weights without one play at 16 kHz.
        vocoder = Vocoder.from_folder(found[VOCODER], device=get_device(device)) if VOCODER in found else None
        timbres = {name: Timbre.from_folder(found[name], device, vocoder) for name in TIMBRE_MODELS if name in found}
        generators = {}
        if any(name in found for name in GENERATOR_MODELS):
            from hummingface.models.generator import NoteGenerator

            generators = {name: NoteGenerator.from_folder(found[name], device, vocoder)
                          for name in GENERATOR_MODELS if name in found}
        upsampler = None
        if "upsampler" in found:
            from hummingface.models.upsampler import Upsampler

            upsampler = Upsampler.from_folder(found["upsampler"], device)
        if not timbres:
            raise UserError(f"No timbre model ({', '.join(TIMBRE_MODELS)}) was found in the weights {source}.")
        return cls(timbres, generators, upsampler, keep_seconds=keep_seconds, listen_steps=listen_steps)

    # -- Designer -------------------------------------------------------------------------------------

    def timbre(self, name: str) -> Timbre:
        if not isinstance(name, str) or name not in self.timbres:
            raise UserError(f"No {name!r} model is loaded; choose from {', '.join(self.timbres)}.")
        return self.timbres[name]

    def n_sliders(self, model: str) -> int:
        return self.timbre(model).n_sliders

    def design(
        self, model: str, sliders: Sequence[float], pitch: int = 60, base: Sequence[float] | None = None,
        vibrato: Vibrato | None = None,
    ) -> Design:
        """Slider values (std units along the PCA directions) -> the note they describe.

        Args:
            sliders: one value per slider; extra values (beyond the model's count) are ignored.
            pitch: MIDI pitch (the ``cvae`` plays any; the others hold pitch in the latent and ignore it).
            base: the latent ``(D,)`` the sliders move away from, e.g. an encoded sound (default: the mean).
            vibrato: the note's pitch swing (default none).
        """
        timbre = self.timbre(model)
        values = [number(v, "A slider value", -MAX_STD, MAX_STD) for v in _sequence_of(sliders)[: timbre.n_sliders]]
        pitch = number(pitch, "Pitch", 0, 127, integer=True)
        base_latent = None
        if base is not None:
            base_latent = torch.tensor([number(v, "A latent value") for v in _sequence_of(base)], dtype=torch.float32)
            if base_latent.shape != (timbre.latent_size,):
                base_latent = None  # a latent from another model: start from the mean instead
        latent = timbre.from_sliders(values, base=base_latent)
        audio = timbre.decode(latent, pitch=pitch, vibrato=vibrato)
        rate = timbre.sample_rate
        return Design(playable(audio, rate), spectrogram_image(audio, rate), latent, values)

    def slider_values(self, model: str, latent: torch.Tensor | Sequence[float]) -> list[float]:
        """Latent ``(D,)`` -> the model's slider values (std units), clipped to the sliders' range of ±4."""
        latent = torch.as_tensor(latent, dtype=torch.float32)
        return [float(v) for v in self.timbre(model).to_sliders(latent).clamp(-4, 4)]

    def start_from(self, model: str, sound: str | os.PathLike, pitch: int | None = None
                   ) -> tuple[torch.Tensor, int, Vibrato]:
        """An uploaded or preset sound -> (its latent ``(D,)``, its MIDI pitch: given, else the pyin estimate, its
        vibrato as measured)."""
        audio, sr = read_audio(sound, mono=True, max_seconds=MAX_UPLOAD_SECONDS)
        return self.timbre(model).analyse(audio, sr, pitch, listen_steps=self.listen_steps)

    def randomise(self, model: str, seed: int) -> torch.Tensor:
        """A seeded random latent ``(D,)`` from the model's latent distribution."""
        return self.timbre(model).random_latent(number(seed, "Seed", 0, MAX_SEED, integer=True))

    def morph(self, model: str, a: str, b: str, mix: float, pitch: int | None = None
              ) -> tuple[torch.Tensor, int, Vibrato]:
        """Two sounds -> (the latent ``mix`` of the way from A to B, A's pitch unless given, the nearer one's
        vibrato)."""
        mix = number(mix, "Mix", 0.0, 1.0)
        latent_a, pitch_a, vibrato_a = self.start_from(model, a, pitch)
        latent_b, _, vibrato_b = self.start_from(model, b, pitch_a)
        return interpolate(latent_a, latent_b, mix), pitch_a, vibrato_a if mix < 0.5 else vibrato_b

    # -- Note Generator --------------------------------------------------------------------------------

    def generator(self, name: str):
        if not isinstance(name, str) or name not in self.generators:
            available = ", ".join(self.generators) or "none (no gan or cdecoder checkpoint)"
            raise UserError(f"No {name!r} note generator is loaded; available: {available}.")
        return self.generators[name]

    def generate_note(
        self, model: str, pitch: int = 60, family: str = "keyboard", velocity: int = 100, seed: int = 0,
        play: str = "note", vibrato: Vibrato | None = None,
    ) -> tuple[Audio, np.ndarray]:
        """One note, or a major scale (8 notes) / major triad built on ``pitch``, as one clip, each note swinging
        with ``vibrato`` (default none).

        Returns:
            (audio, spectrogram picture). A scale plays each note for half a second.
        """
        generator = self.generator(model)
        chords = {"note": (0,), "scale": (0, 2, 4, 5, 7, 9, 11, 12), "chord": (0, 4, 7)}
        if not isinstance(play, str) or play not in chords:
            raise UserError(f"Unknown play mode {play!r}; choose {', '.join(chords)}.")
        if not isinstance(family, str) or family not in FAMILIES:
            raise UserError(f"Unknown family {family!r}; choose from {', '.join(FAMILIES)}.")
        pitch = number(pitch, "Pitch", 0, 127, integer=True)
        velocity = number(velocity, "Velocity", 1, 127, integer=True)
        seed = number(seed, "Seed", 0, MAX_SEED, integer=True)
        pitches = [pitch + step for step in chords[play]]  # the generator refuses pitches it was not trained on
        notes = generator.audio(generator.features(pitches, family, velocity, seed), pitches, vibrato)  # (B, samples)
        rate = generator.sample_rate
        if play == "scale":
            audio = _sequence(list(notes), rate // 2)
        else:
            audio = notes.sum(axis=0) / len(notes)
        return playable(audio, rate), spectrogram_image(audio, rate)

    def surprise(self, model: str, seed: int) -> tuple[int, str, int]:
        """A seeded random (pitch, family, velocity) for "Surprise me": a pitch the family was trained on."""
        seed = number(seed, "Seed", 0, MAX_SEED, integer=True)
        pitch, family = self.generator(model).surprise_labels(seed)
        velocity = int(np.random.default_rng(seed).choice((50, 75, 100, 127)))
        return pitch, family, velocity

    # -- Upsampler -------------------------------------------------------------------------------------

    def describe_upload(self, path: str | os.PathLike) -> str:
        """One line about an upload: rate, channels, length and measured bandwidth (checks the file; reads at
        most its first :data:`PICTURE_SECONDS` to measure)."""
        info = audio_info(path)
        if info.duration > MAX_UPLOAD_SECONDS:
            read_audio(path, max_seconds=MAX_UPLOAD_SECONDS)  # raises the one-sentence refusal
        head = _head(path, PICTURE_SECONDS)
        channels = "stereo" if info.channels == 2 else f"{info.channels} channel(s)"
        return (
            f"{info.samplerate} Hz, {channels}, {info.duration:.1f} s, {info.format}; "
            f"measured bandwidth {bandwidth_hz(head, info.samplerate) / 1000:.1f} kHz"
        )

    def upsample(
        self, path: str | os.PathLike, mode: str, out_dir: str | os.PathLike,
        progress: Callable[[float], None] | None = None,
    ) -> tuple[Path, np.ndarray, str]:
        """An upload -> (the written 44.1 kHz WAV, before/after spectrograms of its start, a description).

        Streams like the CLI (:func:`hummingface.upsampling.upsample_file`): memory holds the 8-kHz input and
        one chunk, not the file; only the first :data:`PICTURE_SECONDS` of the result are kept, for the picture.

        Args:
            mode: ``model`` (learned), ``sbr`` or ``sinc`` (baselines, to compare).
            out_dir: the folder the WAV is written to (the app passes Gradio's cache; see ``keep_seconds``).
            progress: called with the fraction done, 0-1.
        """
        from hummingface.upsampling import INPUT_RATE, OUTPUT_RATE, read_narrow, stream, write_pieces

        if mode not in ("model", "sbr", "sinc"):
            raise UserError(f"Unknown upsampling mode {mode!r}; choose model, sbr or sinc.")
        if mode == "model" and self.upsampler is None:
            raise UserError("The learned upsampler is not loaded; choose the sbr or sinc mode.")
        if not isinstance(path, (str, os.PathLike)):
            raise UserError("Upload a clip first.")
        narrow = read_narrow(path, MAX_UPLOAD_SECONDS)
        head: list[np.ndarray] = []

        def keep_head(pieces):
            kept = 0
            for piece in pieces:
                if kept < PICTURE_SECONDS * OUTPUT_RATE:
                    head.append(piece[:, : int(PICTURE_SECONDS * OUTPUT_RATE) - kept].copy())
                    kept += head[-1].shape[1]
                yield piece

        target = _fresh_folder(out_dir, self.keep_seconds) / f"{Path(path).stem}-44k1-{mode}.wav"
        pieces = stream(narrow, mode, model=self.upsampler, progress=progress or False)
        write_pieces(keep_head(pieces), target, narrow.shape[0])
        shown = narrow[:, : int(PICTURE_SECONDS * INPUT_RATE)]
        before = spectrogram_image(shown, INPUT_RATE, max_hz=OUTPUT_RATE / 2, width=600)
        after = spectrogram_image(np.concatenate(head, axis=1), OUTPUT_RATE, max_hz=OUTPUT_RATE / 2, width=600)
        seconds = narrow.shape[1] / INPUT_RATE
        shown_note = f"first {PICTURE_SECONDS:.0f} s shown" if seconds > PICTURE_SECONDS else "all shown"
        note = (f"{mode}: {INPUT_RATE} Hz -> {OUTPUT_RATE} Hz, {seconds:.1f} s; "
                f"left: before, right: after ({shown_note})")
        return target, side_by_side([before, after]), note

    # -- Latent Explorer -------------------------------------------------------------------------------

    def axes_choices(self, model: str) -> list[int]:
        """The principal components offered as map axes (1-based): the slider directions, at least two."""
        return list(range(1, max(2, self.timbre(model).n_sliders) + 1))

    def explore_map(self, model: str, x_component: int = 1, y_component: int = 2) -> tuple[np.ndarray, MapView]:
        """The PCA map of the model's Explorer notes on two principal components (1-based), coloured by family.

        Drawn once per (model, axes) and kept (the :data:`MAX_MAPS` most recently used): a click only rings the
        chosen point on a copy.
        """
        timbre = self.timbre(model)
        space = timbre.latent
        if space is None:
            raise UserError(f"The {model} checkpoint has no latent.safetensors, so there is no map to explore.")
        components = self.axes_choices(model)
        x_component = number(x_component, "A principal component", integer=True)
        y_component = number(y_component, "A principal component", integer=True)
        for component in (x_component, y_component):
            if component not in components:
                raise UserError(f"Principal component {component} is not on offer; choose 1-{components[-1]}.")
        key = (model, x_component, y_component)
        if key not in self._maps:
            coords = self._coordinates(model, int(x_component), int(y_component))
            self._maps[key] = latent_map(
                coords, space.point_family.numpy(), f"PC {x_component} (std)", f"PC {y_component} (std)",
                f"{model}: {len(coords)} validation notes",
            )
            while len(self._maps) > MAX_MAPS:
                self._maps.popitem(last=False)
        self._maps.move_to_end(key)
        return self._maps[key]

    def explore(self, model: str, x_component: int, y_component: int, pixel: Sequence[float]) -> Explored:
        """A click on the map at image ``pixel`` (x, y) -> the nearest note: labels, reconstruction and original."""
        timbre = self.timbre(model)
        picture, view = self.explore_map(model, x_component, y_component)
        x_component, y_component = int(x_component), int(y_component)  # checked by explore_map
        pixel = _sequence_of(pixel)
        if len(pixel) != 2:
            raise UserError("A click is two pixel coordinates, x and y.")
        data = view.to_data(*(number(p, "A pixel coordinate", -1e6, 1e6) for p in pixel))
        coords = self._coordinates(model, x_component, y_component)
        index = int(np.argmin(((coords - np.asarray(data)) ** 2).sum(axis=1)))
        space = timbre.latent
        latent = space.point_latents[index]
        pitch, family = int(space.point_pitch[index]), FAMILIES[int(space.point_family[index])]
        velocity, note_id = int(space.point_velocity[index]), space.note_ids[index]
        original, original_rate, where = self._original(note_id, timbre.sample_rate)
        # The latent holds neither the original's vibrato nor its exact loudness: the reconstruction is played as
        # the original was (hummingface.performance), and its vibrato is measured for "Send to Designer". With the
        # original at hand, the map's latent (the encoder's guess) is refined to it, as an upload's is -- but not
        # listened to (Timbre.listen): a click is a preview, and seconds of CPU a click would starve a busy Space.
        vibrato = measure_vibrato(original, original_rate, pitch) if original is not None else Vibrato()
        performance = timbre.performance(original, original_rate, pitch) if original is not None else None
        if original is not None:
            if (model, index) not in self._fits:
                self._fits[model, index] = timbre.fit(original, original_rate, pitch, listen_steps=0)
            latent = self._fits[model, index]
        reconstruction = timbre.decode(latent, pitch=pitch, performance=performance)
        labels = (
            f"{note_id}: {family}, pitch {pitch} ({note_name(pitch)}), velocity {velocity}; "
            f"at PC{x_component} {coords[index, 0]:+.2f}, PC{y_component} {coords[index, 1]:+.2f}. Original: {where}."
        )
        return Explored(
            index, note_id, labels, latent, pitch, playable(reconstruction, timbre.sample_rate),
            playable(original, original_rate) if original is not None else None,
            ring(picture, view.to_pixel(*coords[index])), vibrato,
        )

    def fidelity(self, model: str) -> np.ndarray:
        """The explained-variance curve of the model's latent PCA, as a picture."""
        space = self.timbre(model).latent
        if space is None:
            raise UserError(f"The {model} checkpoint has no latent.safetensors.")
        return fidelity_plot(space.fidelity.numpy(), space.n_sliders, f"{model}: fidelity")

    def _coordinates(self, model: str, x_component: int, y_component: int) -> np.ndarray:
        """``(N, 2)`` Explorer points on two principal components (1-based), in std units."""
        space = self.timbre(model).latent
        count = max(x_component, y_component)
        coords = space.to_sliders(space.point_latents, count).numpy()
        return coords[:, [x_component - 1, y_component - 1]]

    def _original(self, note_id: str, sample_rate: int) -> tuple[np.ndarray | None, int, str]:
        """The original note ``(audio, its rate, where from)``, for a model that writes ``sample_rate`` Hz.

        The corpus file if present at that rate or above, else the note rendered again with FluidSynth at
        ``sample_rate`` (so a 44.1-kHz reconstruction is heard beside a 44.1-kHz original, not the 16-kHz
        corpus's), else the corpus file at its lower rate, else ``None``.
        """
        corpus = [self.notes_dir / f"nsynth-{split}/audio/{note_id}.wav" for split in ("valid", "test", "train")]
        path = next((path for path in corpus if path.is_file()), None)
        if path is None or audio_info(path).samplerate < sample_rate:
            try:
                from hummingface.data.notes import render_note
                from hummingface.data.synth import FLUIDR3_GM

                audio = render_note(note_id, FLUIDR3_GM, sample_rate=sample_rate)
                return audio, sample_rate, f"re-rendered with FluidSynth at {sample_rate / 1000:g} kHz"
            except (UserError, ImportError, OSError):
                if path is None:
                    return None, sample_rate, "not available (no corpus and no FluidSynth here)"
        audio, rate = read_audio(path, mono=True)
        return audio[0], rate, f"from {path}"

    # -- Instruments: keyboard, export, MIDI render, named sliders, mutate -------------------------------

    def slider_labels(self, model: str) -> list[str]:
        """One label per slider: ``"3 · brighter, shorter decay"`` where the checkpoint's names say, else ``"3"``."""
        from hummingface.instruments.names import load_labels

        timbre = self.timbre(model)
        return load_labels(timbre.folder, timbre.n_sliders)

    def mutate(self, model: str, sliders: Sequence[float], seed: int, amount: float = 0.5) -> list[float]:
        """A small seeded random step (``amount`` std per slider) around the current slider values, kept in ±4."""
        count = self.n_sliders(model)
        values = np.array([float(v) for v in list(sliders)[:count]] + [0.0] * (count - len(list(sliders)[:count])))
        step = np.random.default_rng(int(seed)).normal(0.0, amount, count)
        return [float(v) for v in np.clip(values + step, -4.0, 4.0)]

    def instrument(self, design, pitches: tuple[int, int] = (24, 96), step: int = 3, name: str | None = None,
                   velocities: tuple[int, ...] | None = None):
        """A :class:`~hummingface.instruments.source.Design` -> its multisample, from the loaded models."""
        from hummingface.instruments.commands import default_name
        from hummingface.instruments.multisample import MultisampleConfig, build_multisample
        from hummingface.instruments.source import source_for

        self._check_design(design)
        config = MultisampleConfig(pitches=pitches, step=int(step), velocities=velocities,
                                   name=name or default_name(design))
        return build_multisample(source_for(design, self.timbres, self.generators), config)

    def keyboard(self, design, pitches: tuple[int, int] = (36, 96), step: int = 3, velocity: int = 100) -> str:
        """The browser keyboard's multisample as JSON: one velocity layer, FLAC in base64, loops in seconds.

        Looped samples stop at their loop end (the browser fades them on key-up); one-shots keep their decay.
        """
        import base64
        import io
        import json

        import soundfile as sf

        instrument = self.instrument(design, pitches, step, velocities=(int(velocity),))
        rate = instrument.sample_rate
        samples = []
        for sample in instrument.samples:
            audio = sample.audio if sample.loop is None else sample.audio[: sample.loop.end + 1]
            buffer = io.BytesIO()
            sf.write(buffer, audio, rate, format="FLAC", subtype="PCM_16")
            loop = None if sample.loop is None else [sample.loop.start / rate, (sample.loop.end + 1) / rate]
            samples.append({"root": sample.root, "lo": sample.keys[0], "hi": sample.keys[1], "loop": loop,
                            "flac": base64.b64encode(buffer.getvalue()).decode("ascii")})
        return json.dumps({"name": instrument.name, "rate": rate, "sustaining": instrument.sustaining,
                           "release": instrument.release_s, "samples": samples})

    def export_instrument(self, design, fmt: str, pitches: tuple[int, int], step: int, name: str | None,
                          out_dir: str | os.PathLike) -> Path:
        """Export a design as a .zip of the chosen format(s) (see :mod:`hummingface.instruments.export`).

        Only the zip stays, in a fresh folder under ``out_dir`` (the app passes Gradio's cache; see ``keep_seconds``):
        the samples are written to a scratch folder beside it and removed once zipped.
        """
        import tempfile

        from hummingface.instruments.export import FORMATS, export, zip_folder

        if fmt not in FORMATS:
            raise UserError(f"Unknown format {fmt!r}; choose {', '.join(FORMATS)}.")
        low, high = (number(p, "The pitch range", 0, 127, integer=True) for p in pitches)
        step = number(step, "The step", 1, 24, integer=True)
        instrument = self.instrument(design, (low, high), step, name or None)
        folder = _fresh_folder(out_dir, self.keep_seconds)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            export(instrument, Path(scratch) / instrument.name, fmt)
            return zip_folder(Path(scratch) / instrument.name, folder / f"{instrument.name}-{fmt}.zip")

    def render_midi(self, design, path: str | os.PathLike, out_dir: str | os.PathLike
                    ) -> tuple[Audio, Path, np.ndarray, str]:
        """A MIDI file played with a design -> (44.1 kHz stereo audio, its WAV in a fresh folder under ``out_dir``,
        spectrogram, a description)."""
        from hummingface.instruments.commands import song_instrument
        from hummingface.instruments.midi import read_midi
        from hummingface.instruments.render import RenderConfig, render_notes

        self._check_design(design)
        notes = read_midi(path)
        instrument = song_instrument(design, [notes], self.timbres, self.generators)
        config = RenderConfig()
        audio = render_notes(notes, instrument, config)
        target = _fresh_folder(out_dir, self.keep_seconds) / f"{Path(path).stem}-{instrument.name}.wav"
        write_audio(target, audio, config.sample_rate)
        picture = spectrogram_image(audio, config.sample_rate, width=600)
        note = (f"{len(notes)} notes played with {instrument.name} ({len(instrument.samples)} samples): "
                f"{audio.shape[1] / config.sample_rate:.1f} s at {config.sample_rate} Hz, stereo")
        return playable(audio, config.sample_rate), target, picture, note

    def _check_design(self, design) -> None:
        """:class:`UserError` unless the design's model is loaded here."""
        if design.model in GENERATOR_MODELS:
            self.generator(design.model)
        else:
            self.timbre(design.model)



def _fresh_folder(out_dir: str | os.PathLike, keep_seconds: float) -> Path:
    """A new, empty folder under ``out_dir`` (two users' results of the same name never overwrite each other),
    after sweeping out what was written there more than ``keep_seconds`` ago (:func:`sweep`)."""
    import tempfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep(out_dir, keep_seconds)
    return Path(tempfile.mkdtemp(dir=out_dir))


def sweep(folder: str | os.PathLike, keep_seconds: float) -> set[str]:
    """Delete every file under ``folder`` last written more than ``keep_seconds`` ago, then the folders that were
    already that old and are left empty; returns the deleted files' paths (``folder`` resolved, then joined).

    It looks at what is on disk, not at a list of what was written, so it also removes what no one kept track of:
    Gradio's ``delete_cache`` only deletes the files in its own sets, and its scheduled pass stops for good the
    first time a request adds a file while it runs (``RuntimeError: Set changed size during iteration``), which
    under steady load is its first pass. A folder's age is read before its files go, so a folder just made for a
    result about to be written is left alone. Files that vanish or cannot be removed meanwhile are skipped.
    """
    import time

    top = os.path.realpath(folder)
    cutoff = time.time() - keep_seconds
    deleted: set[str] = set()
    old_folders: list[str] = []
    for root, _, names in os.walk(top):  # top-down: each folder is seen before anything under it is deleted
        try:
            if root != top and os.stat(root).st_mtime < cutoff:
                old_folders.append(root)
        except OSError:
            pass
        for name in names:
            path = os.path.join(root, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
                    deleted.add(path)
            except OSError:  # already gone, or not ours to remove
                pass
    for root in reversed(old_folders):  # the deepest first, so a parent is empty by the time it comes
        try:
            os.rmdir(root)
        except OSError:  # not empty: something new is in it
            pass
    return deleted


def sweep_every(folder: str | os.PathLike, keep_seconds: float, every_seconds: float,
                tracked: Sequence[set[str]] = ()) -> threading.Event:
    """Run :func:`sweep` on ``folder`` every ``every_seconds`` in a daemon thread; set the returned event to stop.

    The app runs it on Gradio's cache, which otherwise keeps every file served once Gradio's own pass has stopped
    (a 20-minute soak grew it by ~140 MB a minute; README, "The app"). ``tracked``: sets of paths someone keeps
    for the files (Gradio's ``Blocks.temp_file_sets``); the deleted ones are dropped from them, as Gradio's pass
    would, or they would grow by a path for every file ever served. ``set.difference_update`` is one step under
    the GIL, so requests may add to them meanwhile. Each pass ends with :func:`trim_memory`, so the memory
    glibc keeps after a burst of requests goes back to the system.
    """
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_seconds):
            deleted = sweep(folder, keep_seconds)
            for paths in list(tracked):
                paths.difference_update(deleted)
            trim_memory()

    threading.Thread(target=run, name="hummingface-sweep", daemon=True).start()
    return stop


def limit_malloc_arenas(count: int = 2) -> bool:
    """Let glibc's malloc keep at most ``count`` arenas in this process, as ``MALLOC_ARENA_MAX`` does; ``False``
    (nothing done) where the C library is not glibc, or when ``MALLOC_ARENA_MAX`` is set (glibc obeyed it already).

    Why: glibc gives each thread that allocates an arena of its own, up to 8 per core, and keeps what is freed
    there for reuse in that arena. Gradio runs each request in whichever of its worker threads is free, so
    every arena in turn grows to hold the peak of an upsample, an export or a MIDI render, and resident memory
    climbs with the number of arenas although nothing is kept (README, "Load and soak"). Call it before the
    server's threads start: glibc settles its limit once it has made 8 arenas.
    """
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim_memory() -> bool:
    """Hand the free pages glibc's malloc keeps back to the system (``malloc_trim(0)``, every arena); ``False``
    (nothing done) where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or ``None`` (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl (Alpine) has no libc.so.6
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _sequence(notes: Sequence[np.ndarray], step: int, fade: int = 400) -> np.ndarray:
    """Notes played one after another every ``step`` samples, each cut with a short fade-out, and the last whole."""
    total = step * (len(notes) - 1) + len(notes[-1])
    out = np.zeros(total, dtype=np.float32)
    ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    for i, note in enumerate(notes):
        part = np.array(note, dtype=np.float32)
        if i < len(notes) - 1:
            part = part[: step + fade]
            part[-fade:] *= ramp[: len(part[-fade:])]
        out[i * step : i * step + len(part)] += part
    return out


def _sequence_of(values: object) -> list:
    """``values`` as a list, refusing what is not a sequence of values (a number, text, a mapping)."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence | np.ndarray | torch.Tensor):
        raise UserError(f"Expected a list of numbers, not {type(values).__name__}.")
    return list(values)


def _head(path: str | os.PathLike, seconds: float) -> np.ndarray:
    """The first ``seconds`` of an audio file, float32 ``(channels, samples)`` at its own rate."""
    import soundfile as sf

    from hummingface.audio import AudioError, quiet_stderr

    info = audio_info(path)
    try:
        with quiet_stderr():
            audio = sf.read(str(path), frames=int(seconds * info.samplerate), dtype="float32", always_2d=True)[0]
    except (sf.LibsndfileError, RuntimeError):
        raise AudioError(f"{path} is truncated or corrupt and cannot be decoded.") from None
    if not len(audio) or not np.isfinite(audio).all():
        raise AudioError(f"{path} holds no finite audio samples.")
    return audio.T
