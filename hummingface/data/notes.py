"""Render an NSynth-layout note corpus from a General MIDI SoundFont with FluidSynth.

Layout (the real NSynth download's, so either drops in)::

    DIR/nsynth-{train,valid,test}/examples.json     {note_str: {NSynth's fields, + gm_program, variant, ...}}
    DIR/nsynth-{train,valid,test}/audio/<note_str>.wav   mono PCM_16, 4 s at the corpus's rate

The rate is NSynth's 16 kHz by default and any other on request (``sample_rate``; every entry of
``examples.json`` records it, so readers know what they hold). At 44.1 kHz a 4-s note is 353 kB, so the
full plan (pitches 21-108 x five velocities, ~76 000 notes) would take ~27 GB: :data:`HIGH_RATE_PITCHES` and
:data:`HIGH_RATE_VELOCITIES` are the default subset above 16 kHz -- the pitches the note models train on
(24-96) at three velocities (soft, loud, full: FluidR3's velocity layers switch near there), ~44 000 notes,
~15.5 GB.

Each note is held for 3 s and released for 1 s, as in NSynth. An instrument is a General MIDI program (see
:mod:`~hummingface.data.gm`) played dry or through one seeded effect chain (:mod:`~hummingface.data.effects`);
it plays every requested pitch inside its playable range at every requested velocity. Splits are by *program*,
stratified by family: every variant of a program lands in the same split, so no test or valid instrument shares
samples with a training one. Renders that are silent (peak below -60 dBFS: the SoundFont has no sample there)
or clipped (peak at full scale) are dropped. Everything random derives from ``seed``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hummingface.data.effects import Variant, draw_variants
from hummingface.data.gm import FAMILIES, QUALITIES, SOURCES, GMInstrument, pitched_instruments
from hummingface.errors import UserError

SPLITS = ("train", "valid", "test")
SILENCE_PEAK = 10 ** (-60 / 20)
CLIP_PEAK = 0.999
HIGH_RATE_PITCHES = tuple(range(24, 97))  # the default plan above 16 kHz (see the module docstring)
HIGH_RATE_VELOCITIES = (50, 100, 127)


@dataclass
class NoteRenderConfig:
    """What to render; the defaults make the full corpus.

    Attributes:
        pitches: MIDI pitches to request; each instrument plays those inside its own range.
        velocities: MIDI velocities, NSynth's five by default.
        variants: instruments per program: the dry one plus ``variants - 1`` effect chains.
        limit: render only this many notes, drawn at random (seeded) from the full plan.
        sample_rate: Hz of the rendered notes (FluidSynth renders at it; no resampling).
        gain: FluidSynth master gain; 0.7 keeps FluidR3_GM's loudest dry note near -5 dBFS.
    """

    soundfont: Path
    out: Path
    pitches: tuple[int, ...] = tuple(range(21, 109))
    velocities: tuple[int, ...] = (25, 50, 75, 100, 127)
    variants: int = 3
    seed: int = 0
    limit: int | None = None
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    sample_rate: int = 16000
    hold_seconds: float = 3.0
    note_seconds: float = 4.0
    gain: float = 0.7


@dataclass(frozen=True)
class Instrument:
    """One program + variant, with its NSynth identity."""

    index: int
    name: str  # NSynth's instrument_str, e.g. "keyboard_acoustic_004"
    gm: GMInstrument
    variant: Variant
    split: str


@dataclass(frozen=True)
class NoteJob:
    note: int  # NSynth's "note": a unique id, stable whatever --limit selects
    instrument: Instrument
    pitch: int
    velocity: int

    @property
    def note_str(self) -> str:
        return f"{self.instrument.name}-{self.pitch:03d}-{self.velocity:03d}"


@dataclass
class RenderSummary:
    """What a render produced: notes kept per split and family, and what was dropped."""

    kept: dict[str, int]
    families: dict[str, dict[str, int]]
    instruments: dict[str, int]
    dropped_silent: int
    dropped_clipped: int
    seconds: float

    @property
    def notes_per_second(self) -> float:
        return (sum(self.kept.values()) + self.dropped_silent + self.dropped_clipped) / max(self.seconds, 1e-9)


def parse_int_list(text: str, name: str, low: int, high: int) -> tuple[int, ...]:
    """``"21-108"``, ``"60"`` or ``"25,50,60-64"`` -> sorted unique ints within ``[low, high]``.

    Raises:
        UserError: on bad syntax or values out of range.
    """
    spans = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            spans.append((int(first), int(last or first)))
    except ValueError:
        raise UserError(f"--{name} {text!r} is not a list of numbers or ranges like 21-108 or 25,50,75.") from None
    # Checked before a range is expanded: 1-10**12 must not fill memory.
    if any(start > stop for start, stop in spans):
        raise UserError(f"--{name} {text!r} has a range that runs backwards; write it low-high, e.g. 21-108.")
    if any(start < low or stop > high for start, stop in spans):
        raise UserError(f"--{name} {text!r} must lie within {low}-{high}.")
    values = {value for start, stop in spans for value in range(start, stop + 1)}
    return tuple(sorted(values))


def default_plan(sample_rate: int) -> tuple[str, str]:
    """The default ``(pitches, velocities)`` for a corpus at ``sample_rate`` Hz, as CLI strings.

    Raises:
        UserError: a rate outside 8-96 kHz.
    """
    if not 8000 <= sample_rate <= 96000:
        raise UserError(f"--sample-rate {sample_rate} must lie within 8000-96000 Hz.")
    if sample_rate <= 16000:
        return "21-108", "25,50,75,100,127"
    pitches = f"{HIGH_RATE_PITCHES[0]}-{HIGH_RATE_PITCHES[-1]}"
    return pitches, ",".join(str(v) for v in HIGH_RATE_VELOCITIES)


def plan_instruments(config: NoteRenderConfig) -> list[Instrument]:
    """Every instrument: programs x variants, numbered NSynth-style and assigned to a split."""
    programs = pitched_instruments()
    splits = _split_programs(programs, np.random.default_rng([config.seed, 0]))
    pairs = []
    for gm in programs:
        rng = np.random.default_rng([config.seed, 1, gm.program])
        pairs += [(gm, variant) for variant in draw_variants(rng, config.variants)]
    pairs.sort(key=lambda pair: (pair[0].family, pair[0].source, pair[0].program))
    counters: Counter[tuple[str, str]] = Counter()
    instruments = []
    for index, (gm, variant) in enumerate(pairs):
        number = counters[gm.family, gm.source]
        counters[gm.family, gm.source] += 1
        name = f"{gm.family}_{gm.source}_{number:03d}"
        instruments.append(Instrument(index, name, gm, variant, splits[gm.program]))
    return instruments


def plan_notes(config: NoteRenderConfig, instruments: list[Instrument]) -> list[NoteJob]:
    """Every note to render, in instrument order, cut to ``config.limit`` (a seeded random subset)."""
    wanted = set(config.pitches)
    jobs = []
    for instrument in instruments:
        for pitch in instrument.gm.pitches:
            if pitch in wanted:
                jobs += [NoteJob(len(jobs), instrument, pitch, v) for v in config.velocities]
    if not jobs:
        raise UserError(f"No instrument plays any of the requested pitches {config.pitches[0]}-{config.pitches[-1]}.")
    if config.limit is not None and config.limit < len(jobs):
        chosen = np.random.default_rng([config.seed, 2]).permutation(len(jobs))[: config.limit]
        jobs = [jobs[i] for i in sorted(chosen)]
    return jobs


def render_note(note_str: str, soundfont: str | os.PathLike, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """Render one corpus note again from its ``note_str`` (e.g. ``"guitar_acoustic_003-060-100"``).

    The instrument plan is a pure function of the seed, so this gives the same audio as the file the corpus
    render wrote (with the default ``variants``), without the corpus on disk. Returns float32
    ``(4 * sample_rate,)`` at ``sample_rate`` Hz.

    Raises:
        UserError: a malformed ``note_str``, an instrument this plan does not have, or a bad SoundFont.
    """
    from hummingface.data.synth import FluidRenderer

    try:
        name, pitch_text, velocity_text = note_str.rsplit("-", 2)
        pitch, velocity = int(pitch_text), int(velocity_text)
    except ValueError:
        raise UserError(f"{note_str!r} is not a note id like guitar_acoustic_003-060-100.") from None
    config = NoteRenderConfig(soundfont=Path(soundfont), out=Path("."), seed=seed, sample_rate=sample_rate)
    instrument = next((i for i in plan_instruments(config) if i.name == name), None)
    if instrument is None:
        raise UserError(f"No instrument {name!r} in the seed-{seed} corpus plan.")
    sr = config.sample_rate
    renderer = FluidRenderer(soundfont, sr, gain=config.gain, effects=False)
    try:
        renderer.select(0, instrument.gm.program)
        dry = renderer.note(pitch, velocity, int(config.hold_seconds * sr), int(config.note_seconds * sr))
    finally:
        renderer.close()
    return instrument.variant.apply(dry, sr).astype(np.float32)


def render_notes(config: NoteRenderConfig, progress: bool = True) -> RenderSummary:
    """Render the corpus into ``config.out`` and write each split's ``examples.json``.

    Raises:
        UserError: the SoundFont is missing or corrupt, or ``config.out`` cannot be written.
    """
    from tqdm import tqdm

    from hummingface.data.synth import FluidRenderer

    start = time.perf_counter()
    FluidRenderer(config.soundfont, config.sample_rate, effects=False).close()  # a bad SoundFont fails here, once
    check_writable(config.out)
    jobs = plan_notes(config, plan_instruments(config))
    for split in SPLITS:
        (config.out / f"nsynth-{split}" / "audio").mkdir(parents=True, exist_ok=True)

    # One task per handful of programs: each task loads the SoundFont once and renders each dry note once for
    # all of that program's variants.
    by_program: dict[int, list[NoteJob]] = defaultdict(list)
    for job in jobs:
        by_program[job.instrument.gm.program].append(job)
    # Below ~2 000 notes, starting worker processes costs more than it saves.
    count = max(2, len(jobs) // 3000) if len(jobs) >= 2000 else 1
    tasks = [(config, chunk) for chunk in _chunks(list(by_program.values()), count)]

    examples: dict[str, dict[str, dict]] = {split: {} for split in SPLITS}
    dropped: Counter[str] = Counter()
    with tqdm(total=len(jobs), unit="note", desc="rendering notes", disable=not progress) as bar:
        if config.workers > 1 and len(tasks) > 1:
            with multiprocessing.get_context("spawn").Pool(config.workers) as pool:
                results = pool.imap_unordered(_render_task, tasks)
                _collect(results, examples, dropped, bar)
        else:
            _collect(map(_render_task, tasks), examples, dropped, bar)

    for split, notes in examples.items():
        ordered = dict(sorted(notes.items(), key=lambda item: item[1]["note"]))
        path = config.out / f"nsynth-{split}" / "examples.json"
        path.write_text(json.dumps(ordered, indent=1))
    return RenderSummary(
        kept={split: len(notes) for split, notes in examples.items()},
        families={split: dict(sorted(Counter(n["instrument_family_str"] for n in notes.values()).items()))
                  for split, notes in examples.items()},
        instruments={split: len({n["instrument"] for n in notes.values()}) for split, notes in examples.items()},
        dropped_silent=dropped["silent"],
        dropped_clipped=dropped["clipped"],
        seconds=time.perf_counter() - start,
    )


def _collect(results, examples: dict[str, dict[str, dict]], dropped: Counter, bar) -> None:
    for rendered, skipped in results:
        for entry, split in rendered:
            examples[split][entry["note_str"]] = entry
        dropped.update(skipped)
        bar.update(len(rendered) + sum(skipped.values()))


def _render_task(task: tuple[NoteRenderConfig, list[list[NoteJob]]]) -> tuple[list[tuple[dict, str]], Counter]:
    """Render, check, write and label a batch of programs' notes (runs in a worker process)."""
    from hummingface.audio import write_audio
    from hummingface.data.qualities import measure_qualities
    from hummingface.data.synth import FluidRenderer

    config, programs = task
    sr = config.sample_rate
    hold, total = int(config.hold_seconds * sr), int(config.note_seconds * sr)
    renderer = FluidRenderer(config.soundfont, sr, gain=config.gain, effects=False)
    rendered, skipped = [], Counter()
    try:
        for jobs in programs:
            renderer.select(0, jobs[0].instrument.gm.program)
            key, dry = None, None
            # Sorted by note, so each dry note is rendered once and reused by every variant of the program.
            for job in sorted(jobs, key=lambda job: (job.pitch, job.velocity, job.note)):
                if key != (job.pitch, job.velocity):
                    key = (job.pitch, job.velocity)
                    dry = renderer.note(job.pitch, job.velocity, hold, total)
                variant = job.instrument.variant
                audio = variant.apply(dry, sr)
                peak = float(np.abs(audio).max())
                if peak < SILENCE_PEAK or peak >= CLIP_PEAK:
                    skipped["silent" if peak < SILENCE_PEAK else "clipped"] += 1
                    continue
                split = job.instrument.split
                write_audio(config.out / f"nsynth-{split}" / "audio" / f"{job.note_str}.wav", audio, sr)
                qualities = measure_qualities(audio, sr, job.pitch, job.instrument.gm.program,
                                              reverb=bool(variant.reverb_seconds), drive=bool(variant.drive))
                rendered.append((_example(job, qualities, config), split))
    finally:
        renderer.close()
    return rendered, skipped


def _example(job: NoteJob, qualities: list[int], config: NoteRenderConfig) -> dict:
    """NSynth's fields for one note, plus where it came from."""
    gm = job.instrument.gm
    return {
        "note": job.note,
        "note_str": job.note_str,
        "instrument": job.instrument.index,
        "instrument_str": job.instrument.name,
        "instrument_family": FAMILIES.index(gm.family),
        "instrument_family_str": gm.family,
        "instrument_source": SOURCES.index(gm.source),
        "instrument_source_str": gm.source,
        "pitch": job.pitch,
        "velocity": job.velocity,
        "sample_rate": config.sample_rate,
        "qualities": qualities,
        "qualities_str": [name for name, on in zip(QUALITIES, qualities, strict=True) if on],
        "gm_program": gm.program,
        "gm_name": gm.name,
        "variant": job.instrument.variant.name,
        "soundfont": Path(config.soundfont).name,
    }


def _split_programs(programs: tuple[GMInstrument, ...], rng: np.random.Generator) -> dict[int, str]:
    """Program -> split, per family: ~10 % test (at least one), ~10 % valid (at least one from 5 programs)."""
    by_family: dict[str, list[int]] = defaultdict(list)
    for gm in programs:
        by_family[gm.family].append(gm.program)
    splits = {}
    for family in FAMILIES:
        members = [int(p) for p in rng.permutation(by_family[family])]
        n_test = max(1, round(len(members) / 10))
        n_valid = max(1, round(len(members) / 10)) if len(members) >= 5 else 0
        for i, program in enumerate(members):
            splits[program] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return splits


def _chunks(items: list, count: int) -> list[list]:
    """Deal ``items`` into ``count`` interleaved chunks (programs differ in size, so interleave to balance)."""
    return [chunk for chunk in (items[i::count] for i in range(count)) if chunk]


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove a file can be written there; UserError otherwise."""
    probe = out / ".hummingface-write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"Cannot write to {out} ({error.strerror or error}).") from None
