"""Notes at 44.1 kHz on held-out instruments: the vocoder beside today's 16-kHz note models, in one run.

    PYTHONPATH=. python benchmarks/notes44.py [--vocoder checkpoints/vocoder] [--timbre checkpoints/cvae]
        [--generator checkpoints/gan] [--data data/notes44-fluidr3] [--notes 40] [--pitch-latents 1]
        [--pitch-step 4] [--pairs 10] [--threads 2] [--out docs/benchmarks/notes44.json]
        [--png docs/notes44-grid.png] [--sections cvae,models] [--models ae,vae,mog-vae,cdecoder]
        [--checkpoints checkpoints]

On ``--notes`` random notes of the 44.1-kHz corpus's *test* split (GM programs never trained on; seeded), each
system is scored against the true 44.1-kHz note (DESIGN.md, "How we measure"):

- ``cvae44``: the cvae's reconstruction (the posterior mean of the note's 16-kHz features refined by
  :data:`~hummingface.constants.REFINE_STEPS` steps of :meth:`Timbre.refine`, then by
  :data:`~hummingface.constants.LISTEN_STEPS` steps of :meth:`Timbre.listen` against the recording, decoded at its
  pitch) played as the recording was (:mod:`hummingface.performance`: its loudness curve, measured on its 16-kHz
  copy, and its pitch curve, which the vocoder follows): what :meth:`Timbre.reconstruct` plays;
- ``cvae44_refined``: ``cvae44`` without listening (``reconstruct --listen-steps 0``);
- ``cvae44_unrefined``: ``cvae44`` from the encoder's guess alone (``reconstruct --refine-steps 0 --listen-steps
  0``);
- ``cvae44_latent``: the ``cvae44`` latent alone, at its own loudness, with the sine vibrato fitted to the recording
  (:func:`hummingface.vibrato.measure_vibrato`): what the Designer's "Use this sound" plays;
- ``vocoder_true_mel``: the note's own 16-kHz features through the vocoder, following its pitch curve (its
  ceiling);
- ``cvae16``: the ``cvae44`` features (with the loudness curve) through today's 16-kHz phase reconstruction,
  resampled to 44.1 kHz;
- ``true_mel16``: the note's own features through that phase reconstruction (its ceiling);
- ``bandlimited8k``: the note resampled to 16 kHz and back (the ceiling of any 16-kHz model).

Figures: **ViSQOL** v3 audio mode at 48 kHz (``visqol-python``); full-band **LSD_dB** (STFT 2048/512 at
44.1 kHz, each spectrogram clipped 80 dB below its peak); **pitch**: the median pyin f0 of the first 2.5 s
within 0.5 semitone of the label; **f0 modulation depth**: the standard deviation, in cents, of the pyin f0
over 0.5-2.5 s after removing a straight-line trend, compared with the real note's on string, brass, reed,
flute and vocal notes whose real depth is at least 5 cents (the notes "with vibrato"). Also the pitch of
random cvae latents and of gan samples (a random family trained at that pitch, random seed) at MIDI 36-84,
each through the vocoder and through the 16-kHz path; the **smoothness** of ``--pairs`` straight cvae latent
paths in the 44.1-kHz audio (largest over mean step of its log-mel, both paths); and the time to decode one
4-s note on ``--threads`` threads (the vocoder alone, and cvae ``decode_features`` + vocoder), median wall and
CPU milliseconds.
Writes the JSON and a spectrogram grid: one row per family in the sample, real | cvae44 | cvae16 | a gan sample
of that family through the vocoder, dB up to 22 kHz.

``--sections models`` (alone, or beside ``cvae``) measures the other note models through the same vocoder, under
``"models"`` in the JSON (no grid): each timbre model of ``--models`` (``ae``, ``vae``, ``mog-vae``, also
``cvae``) reconstructs the same test notes -- the posterior mean, decoded as the app plays it: the
unconditional models decode under their tempered pitch read-out and the vocoder plays the pitch their latent
holds (:meth:`Timbre.held_pitch`) -- scored like ``cvae44``/``cvae16`` above as ``<model>44`` and ``<model>16``,
with the share of notes whose latent holds the right pitch. Each generator (``gan``, ``cdecoder``; no encoder)
is scored by the pitch of its notes at MIDI 36-84 as for the gan above (a random family trained at that pitch,
random seed), through the vocoder and through the 16-kHz path.

``--sections vibrato`` scores the vibrato figure on more notes than the 40 hold: every note of the test split in
the families above whose real depth is at least 5 cents, reconstructed by the cvae through the vocoder following
the recording's pitch curve, with the sine fitted to it, and with neither (``"vibrato"`` in the JSON, per system:
:data:`VIBRATO_SYSTEMS`; no ViSQOL); the depth ratios by
pyin as above (``systems``, ``per_family``) and by the finer YIN track (``systems_yin``, ``per_family_yin``:
:func:`fine_depth`).

``--sections noise`` measures the part of LSD_dB that drawn noise alone costs (``"noise_floor"``): each of the
``--notes`` notes' true features played twice by the vocoder, with its noise table and with the table shifted, and
the LSD_dB between the two plays (no ViSQOL). A real note's noise is another draw again, so no decoder that draws
its noise, however right its spectra, scores much under this against the recordings.

``--sections refine`` scores the cvae's reconstruction (played as recorded, as ``cvae44``) from latents refined
by each of ``--refine-steps`` step counts without listening, and by :data:`~hummingface.constants.REFINE_STEPS`
and then each of ``--listen-steps`` (``"refine"``: ViSQOL, LSD_dB, per family, the median seconds of a fit): what
the defaults buy, and what more would.

``--sections gap`` finds where the cvae's reconstructions lose to the vocoder's own ceiling (``"gap"``, no ViSQOL):
each note's reconstruction (as ``cvae44``) and true features (as ``vocoder_true_mel``) through the vocoder, and
the reconstruction played with the equaliser aimed at the *true* features (``reconstruction_aimed_at_truth``:
what knowing each band's true level would be worth); each scored by LSD_dB, and by LSD_dB with only the
differences below (``lsd_db_below_8k``) or above 8 kHz (``lsd_db_above_8k``) counted.

``--split valid`` scores the validation split's notes instead (other held-out GM programs): choose there,
report on test. ``--split train`` scores notes of programs the models trained on: whether a gap is the models'
fit or their reach to unheard programs.

``--sections speed`` measures only the decode times (``"decode_speed"``): run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from functools import partial
from pathlib import Path

import librosa
import numpy as np
import soxr
import torch

from hummingface.audio import fit_length, resample
from hummingface.constants import LISTEN_STEPS, NOTE_SAMPLES, REFINE_STEPS, SAMPLE_RATE
from hummingface.data.datasets import read_note
from hummingface.data.gm import FAMILIES
from hummingface.dsp import NoteSpectrogram, SpectrogramConfig
from hummingface.latent import interpolate, smoothness_ratio
from hummingface.metrics import lsd_db
from hummingface.models.autoencoder import MODELS as TIMBRE_MODELS
from hummingface.models.generator import MODELS as GENERATOR_MODELS
from hummingface.models.generator import NoteGenerator
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import Vocoder
from hummingface.performance import Performance, measure_performance
from hummingface.train.data import load_features
from hummingface.vibrato import FIT_SECONDS, Vibrato, measure_vibrato, pitch_track

RATE = 44100
VISQOL_RATE = 48000
VIBRATO_FAMILIES = ("string", "brass", "reed", "flute", "vocal")
MIN_VIBRATO_CENTS = 5.0
SAMPLE_PITCHES = range(36, 85)
SYSTEMS = ("cvae44", "cvae44_latent", "cvae44_refined", "cvae44_unrefined", "vocoder_true_mel", "cvae16", "true_mel16",
           "bandlimited8k")
GRID_COLUMNS = ("real", "cvae44", "cvae16", "gan44")
SECTIONS = ("cvae", "models", "vibrato", "noise", "refine", "gap", "speed")
VIBRATO_SYSTEMS = ("cvae44", "cvae44_sine", "cvae44_no_vibrato")
GAP_SYSTEMS = ("reconstruction", "true_features", "reconstruction_aimed_at_truth")


def visqol_scorer():
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")

    def score(reference: np.ndarray, estimate: np.ndarray) -> float:
        ref = soxr.resample(reference.astype(np.float64), RATE, VISQOL_RATE)
        est = soxr.resample(estimate.astype(np.float64), RATE, VISQOL_RATE)
        return float(api.measure_from_arrays(ref, est, sample_rate=VISQOL_RATE).moslqo)

    return score


def f0_track(audio: np.ndarray) -> np.ndarray:
    """pyin f0 in MIDI of the first 2.5 s of a 44.1-kHz note (analysed at 16 kHz, hop 256), NaN where unvoiced."""
    clip = resample(audio[: int(2.5 * RATE)], RATE, SAMPLE_RATE)
    f0, voiced, _ = librosa.pyin(clip, fmin=librosa.midi_to_hz(24), fmax=librosa.midi_to_hz(96), sr=SAMPLE_RATE,
                                 frame_length=2048, hop_length=256)
    return np.where(voiced & np.isfinite(f0), librosa.hz_to_midi(np.where(np.isfinite(f0), f0, 1.0)), np.nan)


def pitch_and_depth(audio: np.ndarray) -> tuple[float | None, float | None]:
    """(median f0 in MIDI, f0 modulation depth in cents over 0.5-2.5 s), ``None`` where too little is voiced."""
    track = f0_track(audio)
    voiced = np.isfinite(track)
    if not voiced.any():
        return None, None
    times = np.arange(len(track)) * 256 / SAMPLE_RATE
    window = voiced & (times >= 0.5)
    if window.sum() < 20:
        return float(np.median(track[voiced])), None
    cents = 100 * track[window]
    trend = np.polyval(np.polyfit(times[window], cents, 1), times[window])
    return float(np.median(track[voiced])), float(np.std(cents - trend))


def fine_depth(audio: np.ndarray, pitch: int) -> float | None:
    """The f0 modulation depth of a 44.1-kHz note (cents, over 0.5-2.5 s, straight trend removed) from the YIN
    track the vibrato is measured with (:func:`hummingface.vibrato.pitch_track`), not pyin: pyin's states are
    10 cents apart, too coarse for the ~8 cents of a FluidR3 string's vibrato (it reads 5-7.5 cents on the
    vocoder's notes that YIN, and the sine they were played with, put at 8.5)."""
    seconds, cents = pitch_track(audio, RATE, pitch)
    keep = (seconds >= 0.5) & (seconds <= 2.5)
    if keep.sum() < 20:
        return None
    t, cents = seconds[keep], cents[keep]
    return float(np.std(cents - np.polyval(np.polyfit(t, cents, 1), t)))


def in_tune(audio: np.ndarray, pitch: int) -> bool:
    estimate, _ = pitch_and_depth(audio)
    return estimate is not None and abs(estimate - pitch) <= 0.5


def audio16(model: Timbre | NoteGenerator, features: torch.Tensor, pitch) -> np.ndarray:
    """Today's 16-kHz path: ``model`` (loaded without the vocoder) plays features ``(n_mels, frames)`` or
    ``(B, n_mels, frames)`` by phase reconstruction, peak-limited to 0.99; resampled to float32 ``(..., 176400)``
    at 44.1 kHz."""
    return resample(model.audio(features, pitch), SAMPLE_RATE, RATE)[..., : NOTE_SAMPLES * RATE // SAMPLE_RATE]


@torch.inference_mode()
def fit_latent(timbre: Timbre, features: torch.Tensor, pitch: int, recording: np.ndarray | None = None,
               vocoder: Vocoder | None = None, performance: Performance | None = None,
               refine_steps: int = REFINE_STEPS, listen_steps: int = LISTEN_STEPS) -> torch.Tensor:
    """The latent ``(latent_size,)`` :meth:`Timbre.fit` finds for a note of MIDI ``pitch`` from its features
    ``(n_mels, frames)``: the posterior mean, refined for ``refine_steps`` (:meth:`Timbre.refine`), then -- given
    the ``recording`` ``(176400,)`` and the ``vocoder`` -- for ``listen_steps`` of :meth:`Timbre.listen`, played
    with the recording's ``performance``."""
    given = pitch if timbre.conditional else None
    latent = timbre.encode_features(features[None], given)[0]
    if refine_steps:
        latent = timbre.refine(latent, features, given, refine_steps)
    if recording is not None and listen_steps:
        listener = Timbre(timbre.model, timbre.latent, vocoder)  # the benchmark's timbre plays at 16 kHz
        latent = listener.listen(latent, recording, RATE, pitch, listen_steps, performance)
    return latent


@torch.inference_mode()
def play_latent(timbre: Timbre, latent: torch.Tensor, pitch: int, performance: Performance | None
                ) -> tuple[torch.Tensor, int]:
    """A latent's features ``(n_mels, frames)`` and the pitch they play: decoded at ``pitch`` (the cvae), or -- as
    the app plays an unconditional model's latent -- under its pitch read-out, at the pitch the latent holds; at
    the recording's loudness curve, as :meth:`Timbre.reconstruct` plays them, unless ``performance`` is ``None``."""
    given = pitch if timbre.conditional else None
    played = pitch if timbre.conditional else int(timbre.held_pitch(latent))
    decoded = timbre.decode_features(latent[None], given)[0]
    if performance is not None:
        decoded = timbre.spectrogram.with_loudness(decoded, performance.loudness_db)
    return decoded, played


def reconstruct(timbre: Timbre, features: torch.Tensor, pitch: int, performance: Performance | None,
                recording: np.ndarray | None = None, vocoder: Vocoder | None = None,
                refine_steps: int = REFINE_STEPS, listen_steps: int = LISTEN_STEPS) -> tuple[torch.Tensor, int]:
    """A timbre model's reconstruction ``(n_mels, frames)`` of a note and the pitch it plays: :func:`fit_latent`
    (listening only given the ``recording`` and ``vocoder``) played by :func:`play_latent`."""
    latent = fit_latent(timbre, features, pitch, recording, vocoder, performance, refine_steps, listen_steps)
    return play_latent(timbre, latent, pitch, performance)


@torch.inference_mode()
def systems_audio(timbre: Timbre, vocoder: Vocoder, features: torch.Tensor, pitch: int, real: np.ndarray,
                  performance: Performance, vibrato: Vibrato) -> dict[str, np.ndarray]:
    """Every system's version of one note (features ``(n_mels, frames)``), float32 ``(176400,)`` at 44.1 kHz: a
    reconstruction played with the recording's ``performance`` (the vocoder follows its pitch curve), and the
    latent alone with the sine ``vibrato`` fitted to the recording."""
    latent = fit_latent(timbre, features, pitch, real, vocoder, performance)
    reconstruction, _ = play_latent(timbre, latent, pitch, performance)
    refined, _ = reconstruct(timbre, features, pitch, performance)
    return {
        "cvae44": vocoder.decode(reconstruction, pitch, performance),
        "cvae44_latent": vocoder.decode(play_latent(timbre, latent, pitch, None)[0], pitch, vibrato),
        "cvae44_refined": vocoder.decode(refined, pitch, performance),
        "cvae44_unrefined": vocoder.decode(reconstruct(timbre, features, pitch, performance, refine_steps=0)[0],
                                           pitch, performance),
        "vocoder_true_mel": vocoder.decode(features, pitch, performance),
        "cvae16": audio16(timbre, reconstruction, pitch),
        "true_mel16": audio16(timbre, features, pitch),
        "bandlimited8k": fit_length(resample(resample(real, RATE, SAMPLE_RATE), SAMPLE_RATE, RATE), len(real)),
    }


def note_scores(real: np.ndarray, estimate: np.ndarray, pitch: int, score) -> dict:
    """One system's note ``(176400,)`` against the real one: full-band LSD_dB, ViSQOL (``None`` when ``score`` is),
    whether it plays MIDI ``pitch`` and its f0 modulation depth in cents."""
    f0, depth = pitch_and_depth(estimate)
    return {
        "lsd_db": float(lsd_db(torch.from_numpy(real), torch.from_numpy(estimate), 2048, 512)),
        "visqol": score(real, estimate) if score else None,
        "pitch_ok": f0 is not None and abs(f0 - pitch) <= 0.5,
        "depth_cents": depth,
    }


def median_ms(run, repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``run()`` over ``repeats`` calls, after 3 warm-up calls."""
    for _ in range(3):
        run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu))


def cvae44(timbre: Timbre, vocoder: Vocoder, latent: torch.Tensor, pitch: int) -> np.ndarray:
    """What a slider move costs at 44.1 kHz: the cvae's features of ``latent`` at ``pitch``, vocoded."""
    return vocoder.decode(timbre.decode_features(latent, pitch), pitch)


def cvae16(timbre: Timbre, latent: torch.Tensor, pitch: int) -> np.ndarray:
    """The same today: the cvae's features through the 16-kHz phase reconstruction (no resampling)."""
    return timbre.audio(timbre.decode_features(latent, pitch), pitch)


@torch.inference_mode()
def decode_ms(vocoder: Vocoder, timbre: Timbre, repeats: int = 15) -> dict[str, float]:
    """Milliseconds to turn one 4-s note into audio at MIDI 36, 60 and 84: ``vocoder`` (features -> 44.1 kHz),
    ``cvae44`` (latent -> features -> 44.1 kHz) and ``cvae16`` (latent -> features -> today's 16-kHz path); and
    ``refine``: :data:`REFINE_STEPS` steps of :meth:`Timbre.refine` (a reconstruction's extra cost), at MIDI 60."""
    latent = timbre.random_latent(0)
    out = {"refine_wall_ms": median_ms(partial(timbre.refine, latent, timbre.decode_features(latent, 60), 60,
                                               REFINE_STEPS), max(3, repeats // 3))[0]}
    for pitch in (36, 60, 84):
        features = timbre.decode_features(latent, pitch)
        runs = {
            "vocoder": partial(vocoder.decode, features, pitch),
            "cvae44": partial(cvae44, timbre, vocoder, latent, pitch),
            "cvae16": partial(cvae16, timbre, latent, pitch),
        }
        for name, run in runs.items():
            wall, cpu = median_ms(run, repeats)
            out[f"{name}_wall_ms_midi{pitch}"], out[f"{name}_cpu_ms_midi{pitch}"] = wall, cpu
    return out


@torch.inference_mode()
def gan_sample(generator: NoteGenerator, family: str, pitch: int, seed: int) -> torch.Tensor:
    """Features ``(n_mels, frames)`` of one gan note (velocity 100)."""
    return generator.features(pitch, family, 100, seed)[0]


def family_for(generator: NoteGenerator, pitch: int, rng: np.random.Generator) -> str:
    """A random family the generator was trained on at ``pitch`` (any family if none was)."""
    families = [f for f in FAMILIES if pitch in generator.family_pitches(f)] or list(FAMILIES)
    return families[int(rng.integers(len(families)))]


@torch.inference_mode()
def generator_pitch(vocoder: Vocoder, generator: NoteGenerator, latents: int, step: int, seed: int) -> list[dict]:
    """``latents`` notes of ``generator`` per pitch of MIDI 36-84 (every ``step``-th; a random family trained at
    that pitch, random seed): ``{"pitch", "family", "seed", "in_tune44", "in_tune16"}`` each, whether it plays
    its pitch through the vocoder and through today's 16-kHz path."""
    rng = np.random.default_rng([seed, 2])
    rows = []
    for pitch in SAMPLE_PITCHES[::step]:
        for _ in range(latents):
            family = family_for(generator, pitch, rng)
            note_seed = int(rng.integers(1 << 31))
            features = gan_sample(generator, family, pitch, note_seed)
            rows.append({"pitch": pitch, "family": family, "seed": note_seed,
                         "in_tune44": in_tune(vocoder.decode(features, pitch), pitch),
                         "in_tune16": in_tune(audio16(generator, features, pitch), pitch)})
    return rows


def pass_rate(hits: list[bool]) -> dict:
    return {"pass_rate": float(np.mean(hits)), "notes": len(hits)}


@torch.inference_mode()
def sample_pitch(vocoder: Vocoder, timbre: Timbre, generator: NoteGenerator, latents: int, step: int,
                 seed: int) -> dict[str, dict]:
    """Pitch pass rates of random cvae latents and gan samples at MIDI 36-84 (every ``step``-th), each through
    the vocoder (``*44``) and through today's 16-kHz path (``*16``)."""
    hits: dict[str, list[bool]] = {"cvae44": [], "cvae16": []}
    for pitch in SAMPLE_PITCHES[::step]:
        for k in range(latents):
            cvae = timbre.decode_features(timbre.random_latent(seed * 1000 + pitch * 10 + k), pitch)
            hits["cvae44"].append(in_tune(vocoder.decode(cvae, pitch), pitch))
            hits["cvae16"].append(in_tune(audio16(timbre, cvae, pitch), pitch))
    gan = generator_pitch(vocoder, generator, latents, step, seed)
    hits |= {f"gan{rate}": [row[f"in_tune{rate}"] for row in gan] for rate in (44, 16)}
    return {name: pass_rate(h) for name, h in hits.items()}


@torch.inference_mode()
def path_smoothness(timbre: Timbre, vocoder: Vocoder, notes, pairs: int, seed: int, steps: int = 16) -> dict:
    """Largest over mean step of the 44.1-kHz log-mel spectrogram (2048/512, 128 bands) along straight cvae latent
    paths between ``pairs`` pairs of the scored notes (at the first note's pitch), played through the vocoder
    (``cvae44``) and through today's 16-kHz path resampled (``cvae16``); max and median over the paths."""
    analysis = NoteSpectrogram(SpectrogramConfig(sample_rate=RATE, n_fft=2048, hop_length=512, n_mels=128))
    rng = np.random.default_rng([seed, 3])
    ratios: dict[str, list[float]] = {"cvae44": [], "cvae16": []}
    for _ in range(pairs):
        a, b = rng.choice(len(notes), 2, replace=False)
        batch = notes.batch(np.array([a, b]))
        pitch = int(batch["pitch"][0])
        latents = timbre.encode_features(batch["features"], batch["pitch"])
        features = timbre.decode_features(interpolate(latents[0], latents[1], np.linspace(0, 1, steps + 1)), pitch)
        wide = torch.from_numpy(vocoder.decode(features, pitch))
        narrow = torch.from_numpy(audio16(timbre, features, pitch))
        ratios["cvae44"].append(smoothness_ratio(analysis(wide)))
        ratios["cvae16"].append(smoothness_ratio(analysis(narrow)))
    return {name: {"max": float(np.max(v)), "median": float(np.median(v)), "paths": len(v)}
            for name, v in ratios.items()}


def pitch_plot(rows: list[tuple[str, int, dict[str, np.ndarray]]], path: Path) -> None:
    """One panel per (label, MIDI pitch, audio by name): the YIN pitch track (cents from its median) of the real
    note and the cvae's reconstructions of :data:`VIBRATO_SYSTEMS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"real": ("real", "black"), "cvae44_no_vibrato": ("cvae -> vocoder, no vibrato", "tab:blue"),
              "cvae44_sine": ("... with the fitted sine", "tab:green"),
              "cvae44": ("... following the pitch curve", "tab:orange")}
    figure, axes = plt.subplots(len(rows), 1, figsize=(8, 1.7 * len(rows)), squeeze=False, constrained_layout=True)
    for axis, (label, pitch, audio) in zip(axes[:, 0], rows, strict=True):
        for name, (title, colour) in styles.items():
            seconds, cents = pitch_track(audio[name], RATE, pitch)
            axis.plot(seconds, cents - np.median(cents) if len(cents) else cents, color=colour, lw=1, label=title)
        axis.set_xlim(0, FIT_SECONDS[1])
        axis.set_ylim(-40, 40)
        axis.set_ylabel(f"{label}\ncents", fontsize=7)
        axis.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=4)
    axes[-1, 0].set_xlabel("s", fontsize=7)
    figure.savefig(path, dpi=90)


def spectrogram_grid(rows: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    """One row per (label, audio by column), columns :data:`GRID_COLUMNS`; dB relative to the row's real note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"real": "real (44.1 kHz)", "cvae44": "cvae -> vocoder", "cvae16": "cvae 16 kHz (today)",
              "gan44": "gan sample -> vocoder"}
    figure, axes = plt.subplots(len(rows), len(GRID_COLUMNS), figsize=(3.2 * len(GRID_COLUMNS), 1.5 * len(rows)),
                                squeeze=False, constrained_layout=True)
    for row, (label, audio) in enumerate(rows):
        reference = np.abs(librosa.stft(audio["real"], n_fft=2048, hop_length=512)).max()
        for col, name in enumerate(GRID_COLUMNS):
            spec = np.abs(librosa.stft(audio[name], n_fft=2048, hop_length=512))
            db = librosa.amplitude_to_db(spec, ref=reference, top_db=None)
            axis = axes[row, col]
            axis.imshow(db, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
                        extent=(0, len(audio[name]) / RATE, 0, RATE / 2000))
            axis.tick_params(labelsize=6)
            if row == 0:
                axis.set_title(titles[name], fontsize=8)
            if col == 0:
                axis.set_ylabel(f"{label}\nkHz", fontsize=7)
            if row == len(rows) - 1:
                axis.set_xlabel("s", fontsize=7)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def summarise(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def system_figures(per_note: list[dict], name: str) -> tuple[dict, dict]:
    """System ``name``'s figures over the scored notes (rows holding its :func:`note_scores`): overall (ViSQOL,
    LSD_dB, pitch pass rate, vibrato depth) and per family (notes, ViSQOL, LSD_dB)."""
    vibrato = [(r[name]["depth_cents"], r["real_depth_cents"]) for r in per_note
               if r["family"] in VIBRATO_FAMILIES and (r["real_depth_cents"] or 0) >= MIN_VIBRATO_CENTS]
    ratios = [depth / real for depth, real in vibrato if depth is not None]
    overall = {
        "visqol": summarise([r[name]["visqol"] for r in per_note]),
        "lsd_db": summarise([r[name]["lsd_db"] for r in per_note]),
        "pitch_pass_rate": float(np.mean([r[name]["pitch_ok"] for r in per_note])),
        "vibrato_notes": len(vibrato),
        "vibrato_depth_ratio_median": float(np.median(ratios)) if ratios else None,
        "vibrato_within_30pct": float(np.mean([abs(r - 1) <= 0.3 for r in ratios])) if ratios else None,
    }
    per_family = {
        family: {"notes": len(rows), "visqol": summarise([r[name]["visqol"] for r in rows]),
                 "lsd_db": summarise([r[name]["lsd_db"] for r in rows])}
        for family in FAMILIES if (rows := [r for r in per_note if r["family"] == family])
    }
    return overall, per_family


def real_notes(data: Path, notes, split: str) -> list[tuple[np.ndarray, Performance, dict]]:
    """Each scored note's true 44.1-kHz audio ``(176400,)`` (from the corpus's ``split``), its performance, and its
    row: note id, family, MIDI pitch, the sine vibrato fitted to it, and the real note's own pitch check and f0
    modulation depth (cents)."""
    out, spectrogram = [], NoteSpectrogram()
    for i, note_id in enumerate(notes.note_ids):
        real = read_note(data / f"nsynth-{split}" / "audio" / f"{note_id}.wav", RATE)[0]
        pitch, family = int(notes.pitch[i]), FAMILIES[int(notes.family[i])]
        real_pitch, real_depth = pitch_and_depth(real)
        # What Timbre.reconstruct and "Use this sound" measure: on the note's 16-kHz copy. Measured once.
        note = resample(real, RATE, SAMPLE_RATE)
        vibrato = measure_vibrato(note, SAMPLE_RATE, pitch)
        out.append((real, measure_performance(note, spectrogram, pitch),
                    {"note": note_id, "family": family, "pitch": pitch, "real_depth_cents": real_depth,
                     "measured_vibrato": dataclasses.asdict(vibrato),
                     "real_pitch_ok": real_pitch is not None and abs(real_pitch - pitch) <= 0.5}))
    return out


def cvae_section(args, timbre: Timbre, generator: NoteGenerator, vocoder: Vocoder, notes, score) -> dict:
    """The cvae and gan against the 16-kHz path and the ceilings (module docstring); writes the grid ``args.png``."""
    per_note, grid = [], {}
    for i, (real, performance, note) in enumerate(real_notes(Path(args.data), notes, args.split)):
        pitch, family = note["pitch"], note["family"]
        audio = systems_audio(timbre, vocoder, notes.batch(np.array([i]))["features"][0], pitch, real, performance,
                              Vibrato(**note["measured_vibrato"]))
        row = {**note, **{name: note_scores(real, estimate, pitch, score) for name, estimate in audio.items()}}
        per_note.append(row)
        if family not in grid:
            pitches = generator.family_pitches(family)
            gan_pitch = min(max(pitch, pitches.start), pitches.stop - 1)
            gan = vocoder.decode(gan_sample(generator, family, gan_pitch, args.seed), gan_pitch)
            grid[family] = (f"{family} {pitch}", {"real": real, **audio, "gan44": gan})
        print(f"{row['note']}: " + ", ".join(f"{n} {row[n]['lsd_db']:.2f} dB/{row[n]['visqol'] or float('nan'):.2f}"
                                             for n in SYSTEMS), flush=True)

    results: dict = {"test_notes": len(per_note), "systems": {}, "per_family": {}}
    for name in SYSTEMS:
        results["systems"][name], results["per_family"][name] = system_figures(per_note, name)
    results["real_pitch_pass_rate"] = float(np.mean([r["real_pitch_ok"] for r in per_note]))
    results["sample_pitch"] = sample_pitch(vocoder, timbre, generator, args.pitch_latents, args.pitch_step,
                                           args.seed)
    results["smoothness"] = path_smoothness(timbre, vocoder, notes, args.pairs, args.seed)
    for name, figures in results["systems"].items():
        print(f"{name:16s} {json.dumps(figures)}")
    print("sample pitch", json.dumps(results["sample_pitch"]), "smoothness", json.dumps(results["smoothness"]))
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    spectrogram_grid([grid[f] for f in FAMILIES if f in grid], Path(args.png))
    results["notes"] = per_note
    return results


@torch.inference_mode()
def timbre_figures(timbre: Timbre, vocoder: Vocoder, notes, reals: list[tuple[np.ndarray, Performance, dict]],
                   score) -> dict:
    """A timbre model's reconstructions of the scored notes through the vocoder (``<model>44``) and through
    today's 16-kHz path (``<model>16``), with the share of notes it plays at their own pitch (``held_pitch_rate``:
    1 for the cvae, which is given it) and each system's pitch pass rate on those notes."""
    systems = (f"{timbre.name}44", f"{timbre.name}16")
    per_note = []
    for i, (real, performance, note) in enumerate(reals):
        features, played = reconstruct(timbre, notes.batch(np.array([i]))["features"][0], note["pitch"], performance,
                                       real, vocoder)
        audio = {systems[0]: vocoder.decode(features, played, performance),
                 systems[1]: audio16(timbre, features, played)}
        row = {**note, "played_pitch": played}
        row |= {name: note_scores(real, estimate, note["pitch"], score) for name, estimate in audio.items()}
        per_note.append(row)
        print(f"{timbre.name} {row['note']} (plays {played}): "
              + ", ".join(f"{n} {row[n]['lsd_db']:.2f} dB/{row[n]['visqol'] or float('nan'):.2f}" for n in systems),
              flush=True)
    held = [r for r in per_note if r["played_pitch"] == r["pitch"]]
    out: dict = {"held_pitch_rate": len(held) / len(per_note), "systems": {}, "per_family": {},
                 # the pitch pass rate where the latent holds the note's pitch: the output stage's own share
                 "pitch_pass_rate_held_right": {name: float(np.mean([r[name]["pitch_ok"] for r in held])) if held
                                                else None for name in systems}}
    for name in systems:
        out["systems"][name], out["per_family"][name] = system_figures(per_note, name)
    out["notes"] = per_note
    return out


def models_section(args, vocoder: Vocoder, notes) -> dict:
    """Every model of ``args.models`` through the vocoder beside the 16-kHz path (module docstring)."""
    reals = real_notes(Path(args.data), notes, args.split)
    score = None if args.no_visqol else visqol_scorer()
    out: dict = {"test_notes": len(reals), "real_pitch_pass_rate": float(np.mean([n["real_pitch_ok"]
                                                                                  for *_, n in reals]))}
    for name in args.models:
        folder = Path(args.checkpoints) / name
        if name in GENERATOR_MODELS:
            rows = generator_pitch(vocoder, NoteGenerator.from_folder(folder, device="cpu"), args.pitch_latents,
                                   args.pitch_step, args.seed)
            out[name] = {"sample_pitch": {f"{name}{rate}": pass_rate([r[f"in_tune{rate}"] for r in rows])
                                          for rate in (44, 16)}, "samples": rows}
            print(name, json.dumps(out[name]["sample_pitch"]), flush=True)
        else:
            out[name] = timbre_figures(Timbre.from_folder(folder, device="cpu"), vocoder, notes, reals, score)
            print(name, f"held pitch {out[name]['held_pitch_rate']:.3f}", json.dumps(out[name]["systems"]),
                  flush=True)
    return out


@torch.inference_mode()
def vibrato_section(args, vocoder: Vocoder, notes) -> dict:
    """Vibrato kept by cvae reconstructions on every test note of :data:`VIBRATO_FAMILIES` whose real f0
    modulation depth is at least :data:`MIN_VIBRATO_CENTS` (the notes "with vibrato"): each reconstruction's depth
    over the real note's, played as :meth:`Timbre.reconstruct` does (``cvae44``: following the recording's pitch
    curve) and, for comparison, with the sine vibrato fitted to the recording (``cvae44_sine``: what "Use this
    sound" gives the Designer) and without any (``cvae44_no_vibrato``); all three at the recording's loudness."""
    timbre = Timbre.from_folder(args.timbre, device="cpu")
    families = [FAMILIES.index(f) for f in VIBRATO_FAMILIES]
    candidates = notes.subset(np.nonzero(np.isin(notes.family, families))[0])
    rows, grid = [], {}
    for i, (real, performance, note) in enumerate(real_notes(Path(args.data), candidates, args.split)):
        if (note["real_depth_cents"] or 0) < MIN_VIBRATO_CENTS:
            continue
        pitch = note["pitch"]
        reconstruction, _ = reconstruct(timbre, candidates.batch(np.array([i]))["features"][0], pitch, performance,
                                        real, vocoder)
        vibrato = Vibrato(**note["measured_vibrato"])
        audio = {name: vocoder.decode(reconstruction, pitch, bend)
                 for name, bend in (("cvae44", performance), ("cvae44_sine", vibrato), ("cvae44_no_vibrato", None))}
        depths = {name: pitch_and_depth(played)[1] for name, played in audio.items()}
        fine = {name: fine_depth(played, pitch) for name, played in {"real": real, **audio}.items()}
        rows.append({**note, **{f"{name}_depth_cents": depth for name, depth in depths.items()},
                     **{f"{name}_fine_depth_cents": depth for name, depth in fine.items()}})
        if note["family"] not in grid:
            grid[note["family"]] = (f"{note['family']} {pitch}", pitch, {"real": real, **audio})
        print(f"{note['note']}: real {note['real_depth_cents']:.1f} cents (YIN {fine['real'] or float('nan'):.1f}), "
              f"measured {vibrato.depth_cents:.1f} cents at {vibrato.rate_hz:.2f} Hz, reconstruction "
              f"{depths['cvae44'] or float('nan'):.1f} (YIN {fine['cvae44'] or float('nan'):.1f})", flush=True)

    def ratios(name: str, family: str | None = None, measure: str = "depth_cents") -> dict:
        """Depth over the real note's, by pyin (``depth_cents``) or YIN (``fine_depth_cents``)."""
        chosen = [r for r in rows if family in (None, r["family"]) and r[f"real_{measure}"]]
        values = [(r[f"{name}_{measure}"] or 0.0) / r[f"real_{measure}"] for r in chosen]
        return {"notes": len(values), "depth_ratio_median": float(np.median(values)) if values else None,
                "within_30pct": float(np.mean([abs(v - 1) <= 0.3 for v in values])) if values else None}

    pitch_plot([grid[f] for f in VIBRATO_FAMILIES if f in grid], Path(args.vibrato_png))
    print(f"wrote {args.vibrato_png}")
    return {
        "scanned_notes": len(candidates), "notes_with_vibrato": len(rows),
        "measured_as_none": sum(r["measured_vibrato"]["depth_cents"] == 0 for r in rows),
        "systems": {name: ratios(name) for name in VIBRATO_SYSTEMS},
        "per_family": {name: {f: ratios(name, f) for f in VIBRATO_FAMILIES} for name in VIBRATO_SYSTEMS[:2]},
        "systems_yin": {name: ratios(name, measure="fine_depth_cents") for name in VIBRATO_SYSTEMS},
        "per_family_yin": {name: {f: ratios(name, f, "fine_depth_cents") for f in VIBRATO_FAMILIES}
                           for name in VIBRATO_SYSTEMS[:2]},
        "notes": rows,
    }


@torch.inference_mode()
def noise_floor(vocoder: Vocoder, notes) -> dict:
    """LSD_dB between two plays of each note's true features that differ only in their noise (module docstring),
    mean over the notes and per family."""
    table, rows = vocoder.noise_table, []
    for i in range(len(notes.note_ids)):
        features, pitch = notes.batch(np.array([i]))["features"][0], int(notes.pitch[i])
        vocoder.noise_table = table
        first = vocoder.decode(features, pitch)
        vocoder.noise_table = table.roll(37, dims=1)  # the same noise 37 frames later: uncorrelated
        second = vocoder.decode(features, pitch)
        rows.append((FAMILIES[int(notes.family[i])], float(lsd_db(torch.from_numpy(first), torch.from_numpy(second),
                                                                   2048, 512))))
    vocoder.noise_table = table
    families = sorted({family for family, _ in rows})
    return {"notes": len(rows), "lsd_db": float(np.mean([v for _, v in rows])),
            "per_family": {f: {"notes": sum(g == f for g, _ in rows),
                               "lsd_db": float(np.mean([v for g, v in rows if g == f]))} for f in families}}


@torch.inference_mode()
def refine_section(args, vocoder: Vocoder, notes, score) -> dict:
    """The cvae's reconstructions of the scored notes, played as recorded, from latents refined by each of
    ``args.refine_steps`` step counts without listening (``steps<n>`` systems), and by
    :data:`~hummingface.constants.REFINE_STEPS` and then each of ``args.listen_steps`` steps of
    :meth:`Timbre.listen` (``listen<n>``); figures as :func:`system_figures`, and the median seconds a fit took."""
    timbre = Timbre.from_folder(args.timbre, device="cpu")
    systems = {**{f"steps{n}": (n, 0) for n in args.refine_steps},
               **{f"listen{n}": (REFINE_STEPS, n) for n in args.listen_steps}}
    per_note, seconds = [], {name: [] for name in systems}
    for i, (real, performance, note) in enumerate(real_notes(Path(args.data), notes, args.split)):
        features, pitch = notes.batch(np.array([i]))["features"][0], note["pitch"]
        row = dict(note)
        for name, (refine_steps, listen_steps) in systems.items():
            start = time.perf_counter()
            latent = fit_latent(timbre, features, pitch, real, vocoder, performance, refine_steps, listen_steps)
            seconds[name].append(time.perf_counter() - start)
            decoded, _ = play_latent(timbre, latent, pitch, performance)
            row[name] = note_scores(real, vocoder.decode(decoded, pitch, performance), pitch, score)
        per_note.append(row)
        print(f"{row['note']}: " + ", ".join(f"{name} {row[name]['lsd_db']:.2f} dB/"
                                             f"{row[name]['visqol'] or float('nan'):.2f}" for name in systems),
              flush=True)
    results: dict = {"test_notes": len(per_note), "threads": args.threads, "systems": {}, "per_family": {},
                     "fit_seconds_median": {name: float(np.median(times)) for name, times in seconds.items()}}
    for name in systems:
        results["systems"][name], results["per_family"][name] = system_figures(per_note, name)
        print(f"{name:10s} {json.dumps(results['systems'][name])}")
    results["notes"] = per_note
    return results


@torch.inference_mode()
def gap_section(args, vocoder: Vocoder, notes) -> dict:
    """Reconstructions against true features and against reconstructions aimed at the true features, by LSD_dB
    over the whole band, below and above 8 kHz (module docstring): mean over the notes, per family, per note."""
    timbre = Timbre.from_folder(args.timbre, device="cpu")
    hz = torch.arange(1025) * RATE / 2048  # the bins of LSD_dB's 2048-point STFT
    parts = {"lsd_db": None, "lsd_db_below_8k": hz < 8000, "lsd_db_above_8k": hz >= 8000}
    per_note = []
    for i, (real, performance, note) in enumerate(real_notes(Path(args.data), notes, args.split)):
        features, pitch = notes.batch(np.array([i]))["features"][0], note["pitch"]
        reconstruction, _ = reconstruct(timbre, features, pitch, performance, real, vocoder)
        audio = dict(zip(GAP_SYSTEMS, (vocoder.decode(reconstruction, pitch, performance),
                                       vocoder.decode(features, pitch, performance),
                                       vocoder.decode(reconstruction, pitch, performance, aim=features)), strict=True))
        row = {"note": note["note"], "family": note["family"], "pitch": pitch}
        for name, estimate in audio.items():
            reference, estimate = torch.from_numpy(real), torch.from_numpy(estimate)
            row[name] = {part: float(lsd_db(reference, estimate, 2048, 512, counted=counted))
                         for part, counted in parts.items()}
        per_note.append(row)
        print(f"{row['note']}: " + ", ".join(f"{name} {row[name]['lsd_db']:.2f} dB" for name in audio), flush=True)

    def means(rows: list[dict]) -> dict:
        return {name: {part: float(np.mean([r[name][part] for r in rows])) for part in parts} for name in GAP_SYSTEMS}

    results = {"split": args.split, "notes": len(per_note), "systems": means(per_note),
               "per_family": {family: {"notes": len(rows), **means(rows)} for family in FAMILIES
                              if (rows := [r for r in per_note if r["family"] == family])},
               "per_note": per_note}
    print("gap", json.dumps(results["systems"]))
    return results


def vocoder_info(folder: Path, vocoder: Vocoder) -> dict:
    """Where the vocoder came from: its folder, size and, when it has a ``metrics.json``, its training step."""
    info: dict = {"folder": str(folder), "parameters": sum(p.numel() for p in vocoder.parameters())}
    metrics = folder / "metrics.json"
    if metrics.is_file():
        trained = json.loads(metrics.read_text())
        info.update(step=trained.get("step"), train_minutes=trained.get("train_minutes"), valid=trained.get("valid"))
    return info


def names(allowed: tuple[str, ...]):
    """An argparse type: a comma-separated list of names from ``allowed``."""
    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(allowed)}")
        return chosen
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocoder", default="checkpoints/vocoder", help="vocoder checkpoint folder")
    parser.add_argument("--timbre", default="checkpoints/cvae", help="the cvae whose reconstructions it plays")
    parser.add_argument("--generator", default="checkpoints/gan", help="the gan whose samples it plays")
    parser.add_argument("--data", default="data/notes44-fluidr3", help="44.1-kHz NSynth-layout corpus (test split)")
    parser.add_argument("--notes", type=int, default=40, help="test notes scored")
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test",
                        help="the corpus split the notes come from (valid: to choose without touching the test notes; "
                             "train: programs the models trained on)")
    parser.add_argument("--pitch-latents", type=int, default=1, help="random cvae latents and gan seeds per pitch")
    parser.add_argument("--pitch-step", type=int, default=4, help="test every n-th pitch of 36-84")
    parser.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (about 2 s per note and system)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (decode times are measured on them)")
    parser.add_argument("--pairs", type=int, default=10, help="latent paths for the smoothness figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/benchmarks/notes44.json")
    parser.add_argument("--png", default="docs/notes44-grid.png")
    parser.add_argument("--vibrato-png", default="docs/notes44-vibrato.png",
                        help="--sections vibrato: pitch tracks of real vs reconstruction without / with the vibrato")
    parser.add_argument("--sections", type=names(SECTIONS), default=["cvae"],
                        help="cvae (the cvae and gan in full, with the decode times), models (the --models), vibrato "
                             "(every test note with vibrato), noise (the noise's own LSD_dB), refine (the cvae at "
                             "several --refine-steps), gap (where reconstructions lose LSD_dB), speed (the decode "
                             "times alone), or several: cvae,models")
    parser.add_argument("--models", type=names((*TIMBRE_MODELS, *GENERATOR_MODELS)),
                        default=["ae", "vae", "mog-vae", "cdecoder"], help="note models of --sections models")
    parser.add_argument("--checkpoints", default="checkpoints", help="folder holding the --models checkpoints")
    parser.add_argument("--refine-steps", type=lambda text: [int(n) for n in text.split(",")],
                        default=[0, 25], help="--sections refine: refine step counts compared without listening")
    parser.add_argument("--listen-steps", type=lambda text: [int(n) for n in text.split(",") if n],
                        default=[30, 60, 120], help="--sections refine: listen step counts compared, after "
                        f"{REFINE_STEPS} refine steps ('' for none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vocoder = Vocoder.from_folder(args.vocoder, device="cpu").eval()
    every = load_features(Path(args.data), args.split, vocoder.config.spectrogram, range(24, 97), progress=False)
    notes = every.subset(np.sort(np.random.default_rng([args.seed, 1]).permutation(len(every))[: args.notes]))
    results: dict = {}
    if "speed" in args.sections and "cvae" not in args.sections:  # the decode times alone, on an idle machine
        results["decode_speed"] = {"threads": args.threads, **decode_ms(vocoder, Timbre.from_folder(args.timbre))}
        print("speed", json.dumps(results["decode_speed"]))
    if "cvae" in args.sections:
        timbre = Timbre.from_folder(args.timbre, device="cpu")
        generator = NoteGenerator.from_folder(args.generator, device="cpu")
        # Timed first: after pyin and ViSQOL have run, their worker threads inflated the same decode many-fold here.
        speed = {"threads": args.threads, **decode_ms(vocoder, timbre)}
        print("speed", json.dumps(speed))
        results = cvae_section(args, timbre, generator, vocoder, notes, None if args.no_visqol else visqol_scorer())
        results["decode_speed"] = speed
        print(f"wrote {args.png}")
    if "models" in args.sections:
        results["models"] = models_section(args, vocoder, notes)
    if "vibrato" in args.sections:
        results["vibrato"] = vibrato_section(args, vocoder, every)
    if "noise" in args.sections:
        results["noise_floor"] = noise_floor(vocoder, notes)
        print("noise floor", json.dumps(results["noise_floor"]))
    if "gap" in args.sections:
        results["gap"] = gap_section(args, vocoder, notes)
    if "refine" in args.sections:
        results["refine"] = refine_section(args, vocoder, notes, None if args.no_visqol else visqol_scorer())
    results["vocoder"] = vocoder_info(Path(args.vocoder), vocoder)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
