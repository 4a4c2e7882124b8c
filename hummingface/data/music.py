"""A corpus of 10-s, 44.1-kHz stereo music clips for the upsampler.

Layout::

    DIR/manifest.json                       {"sample_rate", "clip_seconds", "clips": [{path, split, kind, ...}]}
    DIR/{train,valid,test}/<piece>-<k>.wav  44.1 kHz, stereo, PCM_16, 10 s

Sources, in this order of filling: (a) real recordings from ``audio_dir`` (at most a third of the clips, up to
``clips_per_piece`` windows spread over each file); the rest 40 % (b) music21's bundled scores and 60 % (c)
seeded procedural dance/pop songs (:mod:`~hummingface.data.patterns`), both played through FluidSynth with its
reverb and chorus. Splits are by source piece: within each kind every tenth piece (the 2nd, 12th, ...) is
``valid`` and the one after it (3rd, 13th, ...) ``test``, so no held-out clip shares a piece with a training clip;
``test`` is never read by training, so the upsampler's benchmark scores clips that chose no checkpoint. Near-silent clips (RMS below -45 dBFS) are
skipped. Everything random derives from ``seed``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hummingface.audio import audio_info, read_audio, write_audio
from hummingface.data.notes import check_writable
from hummingface.data.sequencer import NoteEvent, Piece, render_piece
from hummingface.data.synth import FLUIDR3_GM
from hummingface.errors import UserError

# What a score's parts are played on when it names no instrument (most of music21's corpus).
ENSEMBLE_PROGRAMS = (0, 4, 6, 11, 12, 19, 21, 24, 40, 41, 42, 46, 48, 52, 56, 60, 68, 70, 71, 73)
RECORDING_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
CORPUS_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
MAX_SCORE_BYTES = 200_000  # large .abc files are whole songbooks that take minutes to parse
SILENT_RMS = 10 ** (-45 / 20)


@dataclass
class MusicConfig:
    """What to render.

    Attributes:
        minutes: total length of the corpus; ``round(minutes * 60 / clip_seconds)`` clips.
        audio_dir: a folder of real recordings to include, or ``None``.
        clips_per_piece: at most this many clips from one piece (consecutive windows for rendered pieces,
            windows spread over the file for recordings).
        music21_share: the share of the rendered (non-recording) clips taken from music21 scores.
        soundfont: the General MIDI SoundFont that plays the scores and patterns (train on FluidR3_GM only).
    """

    out: Path
    minutes: float
    seed: int = 0
    audio_dir: Path | None = None
    soundfont: Path = FLUIDR3_GM
    clip_seconds: float = 10.0
    clips_per_piece: int = 3
    music21_share: float = 0.4
    sample_rate: int = 44100
    gain: float = 0.3


@dataclass
class MusicSummary:
    clips: dict[str, dict[str, int]]  # split -> kind -> clips
    pieces: dict[str, int]  # kind -> pieces used
    seconds: float


def render_music(config: MusicConfig, progress: bool = True) -> MusicSummary:
    """Render the corpus into ``config.out`` and write ``manifest.json``.

    Raises:
        UserError: bad ``minutes``, an unusable ``audio_dir`` or SoundFont, or an unwritable ``out``.
    """
    from tqdm import tqdm

    from hummingface.data.synth import FluidRenderer

    start = time.perf_counter()
    if not config.minutes > 0:
        raise UserError(f"--minutes must be a positive number, not {config.minutes}.")
    recordings = _recordings(config.audio_dir) if config.audio_dir is not None else []
    check_writable(config.out)
    total = max(1, round(config.minutes * 60 / config.clip_seconds))
    available = sum(min(config.clips_per_piece, int(audio_info(p).duration // config.clip_seconds))
                    for p in recordings)
    n_audio = min(total // 3, available)
    n_music21 = round((total - n_audio) * config.music21_share)
    quotas = {"audio": n_audio, "music21": n_music21, "procedural": total - n_audio - n_music21}

    renderer = FluidRenderer(config.soundfont, config.sample_rate, gain=config.gain, effects=True)
    clips: list[dict] = []
    pieces: Counter[str] = Counter()
    clip_frames = int(config.clip_seconds * config.sample_rate)
    try:
        with tqdm(total=total, unit="clip", desc="rendering music", disable=not progress) as bar:
            for kind, quota in quotas.items():
                if kind == "procedural":  # the endless source makes up for silent windows skipped earlier
                    quota = total - len(clips)
                made = 0
                for name, source, audio, starts in _pieces(kind, config, recordings, renderer):
                    split = {1: "valid", 2: "test"}.get(pieces[kind] % 10, "train")
                    k = 0
                    for first in starts:
                        clip = audio[:, first : first + clip_frames]
                        if made == quota:
                            break
                        if clip.shape[1] < clip_frames or np.sqrt(np.mean(clip**2)) < SILENT_RMS:
                            continue
                        path = f"{split}/{name}-{k:02d}.wav"
                        write_audio(config.out / path, clip, config.sample_rate)
                        clips.append({"path": path, "split": split, "kind": kind, "piece": name, "source": source,
                                      "start_seconds": round(first / config.sample_rate, 3)})
                        k += 1
                        made += 1
                        bar.update()
                    pieces[kind] += k > 0
                    if made == quota:
                        break
    finally:
        renderer.close()

    manifest = {"sample_rate": config.sample_rate, "clip_seconds": config.clip_seconds, "seed": config.seed,
                "clips": clips}
    (config.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    counts: dict[str, dict[str, int]] = {"train": {}, "valid": {}, "test": {}}
    for clip in clips:
        counts[clip["split"]][clip["kind"]] = counts[clip["split"]].get(clip["kind"], 0) + 1
    return MusicSummary(counts, dict(pieces), time.perf_counter() - start)


def _pieces(kind: str, config: MusicConfig, recordings: list[Path], renderer) -> Iterator[tuple]:
    """Yield ``(name, source, audio (2, frames), clip start frames)`` for each piece of one kind, in seeded order."""
    sr, clip = config.sample_rate, int(config.clip_seconds * config.sample_rate)
    seconds = config.clips_per_piece * config.clip_seconds
    if kind == "audio":
        order = np.random.default_rng([config.seed, 10]).permutation(len(recordings))
        for i, index in enumerate(order):
            path = recordings[index]
            audio, _ = read_audio(path, sample_rate=sr)
            audio = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2]
            count = min(config.clips_per_piece, audio.shape[1] // clip)
            # Windows spread evenly over the recording, so a clip comes from the intro, middle and end alike.
            starts = np.linspace(0, audio.shape[1] - clip, count).astype(int) if count else []
            yield f"audio-{i:04d}-{_slug(path.stem)}", str(path), audio, starts
    elif kind == "music21":
        from music21 import corpus

        paths = sorted(p for p in corpus.getPaths()
                       if p.suffix in CORPUS_SUFFIXES and p.stat().st_size <= MAX_SCORE_BYTES)
        rng = np.random.default_rng([config.seed, 11])
        for i, index in enumerate(rng.permutation(len(paths))):
            piece = _score_piece(paths[index], f"music21-{i:04d}-{_slug(paths[index].stem)}", rng, seconds)
            if piece is not None:
                audio = render_piece(renderer, piece, seconds)
                yield piece.name, piece.source, audio, range(0, audio.shape[1], clip)
    else:
        from hummingface.data.patterns import dance_song

        for i in range(10**9):
            piece = dance_song(np.random.default_rng([config.seed, 12, i]), f"procedural-{i:04d}")
            audio = render_piece(renderer, piece, seconds)
            yield piece.name, piece.source, audio, range(0, audio.shape[1], clip)


def _score_piece(path: Path, name: str, rng: np.random.Generator, seconds: float) -> Piece | None:
    """The first ``seconds`` of a music21 corpus score as a :class:`Piece`; ``None`` if it cannot be used."""
    from music21 import corpus, tempo

    try:
        score = corpus.parse(path)
        if hasattr(score, "scores"):  # an Opus (a songbook): take its first tune
            score = score.scores[0]
        marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
        bpm = marks[0].getQuarterBPM() if marks and marks[0].number else None
        parts = list(score.parts)[:8]
    except Exception:  # music21 raises many types on the odd malformed corpus file; such a score is skipped
        return None
    seconds_per_quarter = 60.0 / (bpm or rng.uniform(70.0, 130.0))
    solo = ENSEMBLE_PROGRAMS[rng.integers(len(ENSEMBLE_PROGRAMS))] if rng.random() < 0.3 else None
    channels = [c for c in range(16) if c != 9]
    programs, events = {}, []
    for channel, part in zip(channels, parts, strict=False):
        instrument = part.getInstrument(returnDefault=False)
        program = instrument.midiProgram if instrument is not None else None
        programs[channel] = program if program is not None else (
            solo if solo is not None else ENSEMBLE_PROGRAMS[rng.integers(len(ENSEMBLE_PROGRAMS))])
        for note in part.flatten().stripTies().notes:
            start = float(note.offset) * seconds_per_quarter
            length = float(note.quarterLength) * seconds_per_quarter
            if start >= seconds:
                break
            if length <= 0:  # grace notes
                continue
            velocity = note.volume.velocity or int(rng.integers(60, 100))
            events += [NoteEvent(start, start + length, channel, p.midi, velocity) for p in note.pitches]
    if not events:
        return None
    controls = {channel: {10: int(rng.integers(20, 108)), 91: int(rng.integers(20, 80))} for channel in programs}
    return Piece(name, "music21", str(path).split("corpus/")[-1], programs, events, controls)


def _recordings(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"--audio {folder} is not a folder.")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in RECORDING_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"--audio {folder} holds no audio files ({', '.join(RECORDING_SUFFIXES)}).")
    return files


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40]

