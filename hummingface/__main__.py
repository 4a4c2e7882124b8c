"""``python -m hummingface <command>`` (also the ``hummingface`` console script).

Each command is a ``cmd_*`` function taking the parsed arguments; heavy imports happen inside it, so
``--help`` and ``info`` stay fast. Bad input of any kind ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hummingface import __version__
from hummingface.errors import UserError


def cmd_info(args: argparse.Namespace) -> None:
    """Versions, the chosen device, and which checkpoints were found where."""
    import platform

    import huggingface_hub
    import torch

    from hummingface.device import available_devices, get_device
    from hummingface.hub import WeightsSource

    source = WeightsSource.resolve(args.weights)
    print(f"hummingface     {__version__}")
    print(f"python          {platform.python_version()}")
    print(f"torch           {torch.__version__}")
    print(f"huggingface_hub {huggingface_hub.__version__}")
    print(f"devices         {', '.join(available_devices())} (using {get_device(args.device)})")
    print(f"weights         {source}")
    found = source.available()
    if not found:
        print("  (no checkpoints found there)")
    for name, folder in found.items():
        size_mb = sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 1e6
        print(f"  {name:<12} {size_mb:6.1f} MB  {folder}")


def cmd_push(args: argparse.Namespace) -> None:
    """Upload ``checkpoints/`` (or ``--folder``) to a Hub model repo."""
    from pathlib import Path

    from hummingface.hub import push

    folder = Path(args.folder) if args.folder else None
    files = push(args.repo, folder=folder, dry_run=args.dry_run, private=args.private)
    verb = "Would upload" if args.dry_run else "Uploaded"
    print(f"{verb} {len(files)} files to {args.repo}:")
    for name in files:
        print(f"  {name}")


def cmd_data(args: argparse.Namespace) -> None:
    """Render training data: an NSynth-layout note corpus, or 44.1 kHz music clips for the upsampler."""
    from pathlib import Path

    if args.corpus == "notes":
        from hummingface.data.notes import NoteRenderConfig, parse_int_list, render_notes

        config = NoteRenderConfig(
            soundfont=Path(args.soundfont),
            out=Path(args.out),
            pitches=parse_int_list(args.pitches, "pitches", 0, 127),
            velocities=parse_int_list(args.velocities, "velocities", 1, 127),
            variants=args.variants,
            seed=args.seed,
            limit=args.limit,
        )
        summary = render_notes(config)
        kept = sum(summary.kept.values())
        print(
            f"{kept} notes in {summary.seconds:.1f} s ({summary.notes_per_second:.0f} notes/s); "
            f"dropped {summary.dropped_silent} silent and {summary.dropped_clipped} clipped renders."
        )
        for split, count in summary.kept.items():
            families = ", ".join(f"{name} {n}" for name, n in summary.families[split].items())
            print(f"  {split:<5} {count:6d} notes, {summary.instruments[split]:4d} instruments: {families}")
    else:
        from hummingface.data.music import MusicConfig, render_music

        config = MusicConfig(
            out=Path(args.out),
            minutes=args.minutes,
            seed=args.seed,
            audio_dir=Path(args.audio) if args.audio else None,
            soundfont=Path(args.soundfont),
        )
        summary = render_music(config)
        for split, kinds in summary.clips.items():
            detail = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
            print(f"  {split:<5} {sum(kinds.values()):5d} clips: {detail}")
        pieces = ", ".join(f"{kind} {n}" for kind, n in summary.pieces.items())
        print(f"Wrote {config.out / 'manifest.json'} in {summary.seconds:.1f} s; pieces: {pieces}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hummingface", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hummingface {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="versions, device and where the weights are")
    info.add_argument("--weights", help="org/name[@revision] on the Hub or a folder (default: checkpoints/)")
    info.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    info.set_defaults(func=cmd_info)

    push = commands.add_parser("push", help="upload checkpoints/ to a Hub model repo")
    push.add_argument("--repo", required=True, help="org/name of the model repo")
    push.add_argument("--folder", help="checkpoint tree to upload (default: checkpoints/)")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; send nothing")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.set_defaults(func=cmd_push)

    data = commands.add_parser("data", help="render training data (notes or music clips)")
    corpora = data.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    notes = corpora.add_parser("notes", help="NSynth-layout note corpus rendered from a SoundFont")
    notes.add_argument("--soundfont", required=True, help="General MIDI .sf2 (train on FluidR3_GM only)")
    notes.add_argument("--out", required=True, help="corpus root; gets nsynth-{train,valid,test}/")
    notes.add_argument("--limit", type=int, help="render only this many notes (a seeded random subset)")
    notes.add_argument("--pitches", default="21-108", help="MIDI pitches, e.g. 21-108 or 48,60,72 (default 21-108)")
    notes.add_argument("--velocities", default="25,50,75,100,127", help="MIDI velocities (default NSynth's five)")
    notes.add_argument("--variants", type=int, default=3, help="instruments per program: dry + effect chains")
    notes.add_argument("--seed", type=int, default=0, help="effects, splits and --limit draw from it (default 0)")
    notes.set_defaults(func=cmd_data)
    music = corpora.add_parser("music", help="10-s 44.1 kHz stereo clips for the upsampler")
    music.add_argument("--out", required=True, help="folder for {train,valid}/ clips and manifest.json")
    music.add_argument("--minutes", type=float, required=True, help="total length of the corpus")
    music.add_argument("--seed", type=int, default=0, help="pieces, patterns and splits draw from it (default 0)")
    music.add_argument("--audio", help="folder of real recordings to cut clips from (at most a third of them)")
    music.add_argument(
        "--soundfont",
        default="/usr/share/sounds/sf2/FluidR3_GM.sf2",
        help="General MIDI SoundFont that plays the scores and patterns",
    )
    music.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as error:
        print(f"hummingface {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hummingface {args.command}: interrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
