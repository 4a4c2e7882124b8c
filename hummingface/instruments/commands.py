"""The ``export`` and ``render`` commands' work, so that ``__main__`` stays a thin parser.

Both take a design as the ``generate`` command does: ``--model``, ``--latent`` (slider values in std units),
``--seed`` and ``--family`` (the note generators' instrument), ``--velocity``, ``--vibrato`` and ``--vibrato-rate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hummingface.cli_args import vibrato_from_args
from hummingface.errors import UserError
from hummingface.instruments.source import GENERATORS, Design, source_for

RENDER_RANGE = (24, 96)  # pitches every model plays; MIDI keys beyond are re-pitched from the outer samples


def design_from_args(args: argparse.Namespace) -> Design:
    """The :class:`Design` the flags describe; :class:`UserError` for malformed ``--latent``."""
    sliders = None
    if args.latent is not None:
        try:
            sliders = tuple(float(value) for value in args.latent.split(","))
        except ValueError:
            raise UserError(f"--latent {args.latent!r} must be comma-separated numbers, e.g. 1.5,-0.5,0.") from None
    velocity = getattr(args, "velocity", None)
    if velocity is not None and not 1 <= velocity <= 127:
        raise UserError(f"Velocity {velocity} is not a MIDI velocity (1-127).")
    return Design(model=args.model, sliders=sliders, seed=args.seed, family=args.family,
                  velocity=velocity if args.model not in GENERATORS else None, vibrato=vibrato_from_args(args))


def default_name(design: Design) -> str:
    """``cvae``, ``cvae_latent``, ``gan_organ_s3``: what the instrument is called without ``--name``."""
    if design.model in GENERATORS:
        return f"{design.model}_{design.family or 'keyboard'}_s{design.seed}"
    return design.model.replace("-", "") + ("_latent" if design.sliders else "")


def export_command(args: argparse.Namespace) -> list[Path]:
    """``hummingface export``: build the multisample and write it; returns the files written."""
    import time

    from hummingface.instruments.export import FORMATS, export
    from hummingface.instruments.multisample import MultisampleConfig, build_multisample, parse_pitches

    if args.format not in FORMATS:
        raise UserError(f"--format {args.format!r} is not one of {', '.join(FORMATS)}.")
    design = design_from_args(args)
    velocities = (args.velocity,) if args.velocity is not None and args.model in GENERATORS else None
    config = MultisampleConfig(pitches=parse_pitches(args.pitches), step=args.step, velocities=velocities,
                               name=args.name or default_name(design))
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} exists and is not a folder.")
    source = source_for(design, weights=args.weights, device=args.device)
    started = time.perf_counter()
    instrument = build_multisample(source, config)
    files = export(instrument, out, args.format)
    kind = "looped (sustaining)" if instrument.sustaining else "one-shot (decaying)"
    print(f"{instrument.name}: {len(instrument.samples)} {kind} samples at {instrument.sample_rate} Hz in "
          f"{time.perf_counter() - started:.1f} s; wrote {len(files)} files to {out}.")
    return files


def render_outputs(songs: list[str], output: str) -> list[Path]:
    """``-o`` is the .wav for one song, else a folder getting ``<song stem>.wav`` for each."""
    target = Path(output)
    if target.suffix.lower() == ".wav":
        if len(songs) > 1:
            raise UserError(f"{len(songs)} songs need a folder for -o, not the file {target}.")
        return [target]
    if target.suffix:
        raise UserError(f"-o {target} must be a .wav file (one song) or a folder.")
    stems = [Path(song).stem for song in songs]
    if len(set(stems)) < len(stems):
        raise UserError("Several songs share a file stem; their outputs would overwrite each other.")
    return [target / f"{stem}.wav" for stem in stems]


def song_instrument(design: Design, notes_by_song: list, timbres=None, generators=None, weights=None, device=None,
                    step: int = 3):
    """The multisample that covers every song's keys (sampled every ``step`` within the models' 24-96)."""
    from hummingface.instruments.multisample import MultisampleConfig, build_multisample

    keys = [note.pitch for notes in notes_by_song for note in notes]
    low = min(max(min(keys) - 1, RENDER_RANGE[0]), RENDER_RANGE[1])
    high = max(min(max(keys) + 1, RENDER_RANGE[1]), low)
    source = source_for(design, timbres, generators, weights, device)
    return build_multisample(source, MultisampleConfig(pitches=(low, high), step=step, name=default_name(design)))


def render_command(args: argparse.Namespace) -> list[Path]:
    """``hummingface render``: every song (checked first) played with one multisample of the design."""
    import time

    from hummingface.audio import write_audio
    from hummingface.instruments.midi import read_midi
    from hummingface.instruments.render import RenderConfig, render_notes

    design = design_from_args(args)
    targets = render_outputs(args.songs, args.output)
    songs = [read_midi(song) for song in args.songs]
    instrument = song_instrument(design, songs, weights=args.weights, device=args.device)
    config = RenderConfig()
    for song, notes, target in zip(args.songs, songs, targets, strict=True):
        started = time.perf_counter()
        audio = render_notes(notes, instrument, config)
        write_audio(target, audio, config.sample_rate)
        seconds = audio.shape[1] / config.sample_rate
        print(f"{song} -> {target} ({len(notes)} notes, {seconds:.1f} s at {config.sample_rate} Hz, "
              f"rendered in {time.perf_counter() - started:.1f} s)")
    return targets
