"""``python -m hummingface <command>`` (also the ``hummingface`` console script).

Each command is a ``cmd_*`` function taking the parsed arguments; heavy imports happen inside it, so
``--help`` and ``info`` stay fast. Bad input of any kind ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from hummingface import __version__
from hummingface.cli_args import SEED, Parser, add_vibrato_arguments, bounded, number, vibrato_from_args
from hummingface.constants import LISTEN_STEPS, REFINE_STEPS
from hummingface.errors import UserError
from hummingface.train.cli import add_train_command


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


def cmd_space(args: argparse.Namespace) -> None:
    """Publish the app as a Hugging Face Space that loads its weights from the model repo ``--weights``."""
    from hummingface.space import bundle, check, publish

    check(args.repo, args.weights, args.hardware)
    if args.dry_run:
        for name, source in bundle().items():
            print(source if source is not None else f"{name} (generated: the README with the Space's front matter)")
        return
    print(f"Published {publish(args.repo, args.weights, args.hardware, args.private)}")


def cmd_data(args: argparse.Namespace) -> None:
    """Render training data: an NSynth-layout note corpus, or 44.1 kHz music clips for the upsampler."""
    from pathlib import Path

    if args.corpus == "notes":
        from hummingface.data.notes import NoteRenderConfig, default_plan, parse_int_list, render_notes

        pitches, velocities = default_plan(args.sample_rate)
        config = NoteRenderConfig(
            soundfont=Path(args.soundfont),
            out=Path(args.out),
            pitches=parse_int_list(args.pitches or pitches, "pitches", 0, 127),
            velocities=parse_int_list(args.velocities or velocities, "velocities", 1, 127),
            variants=args.variants,
            seed=args.seed,
            limit=args.limit,
            sample_rate=args.sample_rate,
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
        from hummingface.data.synth import FLUIDR3_GM

        config = MusicConfig(
            out=Path(args.out),
            minutes=args.minutes,
            seed=args.seed,
            audio_dir=Path(args.audio) if args.audio else None,
            soundfont=Path(args.soundfont) if args.soundfont else FLUIDR3_GM,
        )
        summary = render_music(config)
        for split, kinds in summary.clips.items():
            detail = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
            print(f"  {split:<5} {sum(kinds.values()):5d} clips: {detail}")
        pieces = ", ".join(f"{kind} {n}" for kind, n in summary.pieces.items())
        print(f"Wrote {config.out / 'manifest.json'} in {summary.seconds:.1f} s; pieces: {pieces}.")


def cmd_upsample(args: argparse.Namespace) -> None:
    """8 kHz -> 44.1 kHz: each input (any rate, brought to 8 kHz first) gets a generated band above 4 kHz."""
    from hummingface.audio import audio_info
    from hummingface.upsampling import load_upsampler, upsample_file

    outputs = _note_outputs(args.inputs, args.output)
    for path in args.inputs:  # headers of every file checked before any work is done
        audio_info(path)
    model = load_upsampler(args.weights, args.device) if args.mode == "model" else None
    for path, target in zip(args.inputs, outputs, strict=True):
        upsample_file(path, target, args.mode, args.device, progress=True, model=model, bit_depth=args.bit_depth,
                      max_seconds=args.max_minutes * 60)
        print(f"{path} -> {target}")


def _generate_notes(args: argparse.Namespace) -> None:
    """The ``gan`` / ``cdecoder`` grid: one note per (family, pitch), named ``{family}-{pitch:03d}-{seed}.wav``.

    Without ``--family`` each note's family (and, without ``--pitch`` too, its pitch) is drawn from the seed:
    the generator's "surprise me".
    """
    from pathlib import Path

    from hummingface.audio import write_audio
    from hummingface.data.gm import FAMILIES
    from hummingface.models.generator import NoteGenerator, check_pitches, family_index

    if args.latent is not None:
        raise UserError(f"--latent sets timbre-model sliders; the {args.model} takes --seed (and --temperature).")
    velocity = 100 if args.velocity is None else args.velocity
    if not 1 <= velocity <= 127:
        raise UserError(f"Velocity {velocity} is not a MIDI velocity (1-127).")
    check_pitches(args.pitch or [])
    families = [FAMILIES[family_index(family)] for family in args.family] if args.family else [None]
    pitches = args.pitch or [None]
    target = Path(args.output)
    single = len(pitches) * len(families) == 1 and target.suffix.lower() in (".wav", ".flac")
    if not single and target.suffix:
        raise UserError(f"{len(pitches) * len(families)} notes need a folder for -o, not the file {target}.")
    model = NoteGenerator.load(args.model, weights=args.weights, device=args.device)
    for family in families:
        for pitch in pitches:
            if family is None:
                pitch, family_name = model.surprise_labels(args.seed, pitch)
            else:
                pitch, family_name = 60 if pitch is None else pitch, family
            path = target if single else target / f"{family_name}-{pitch:03d}-{args.seed}.wav"
            note = model.generate(pitch, family_name, velocity, args.seed, args.temperature, vibrato_from_args(args))
            write_audio(path, note, model.sample_rate)
            print(path)


def _note_outputs(inputs: list[str], out: str, suffix: str = ".wav"):
    """Output path per input: ``-o`` is the file for a single input ending in .wav/.flac, else a folder."""
    from pathlib import Path

    target = Path(out)
    if target.suffix.lower() in (".wav", ".flac"):
        if len(inputs) > 1:
            raise UserError(f"{len(inputs)} inputs need a folder for -o, not the file {target}.")
        return [target]
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a folder.")
    stems = [Path(path).stem for path in inputs]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise UserError(f"Several inputs share the stem {duplicates[0]!r}; their outputs would overwrite each other.")
    return [target / f"{stem}{suffix}" for stem in stems]


def cmd_reconstruct(args: argparse.Namespace) -> None:
    """Encode and decode notes: each input is brought to 4 s at 16 kHz mono for the encoder; outputs (44.1 kHz with
    the vocoder) keep the input's stem."""
    from hummingface.audio import read_audio, write_audio
    from hummingface.models.timbre import Timbre

    outputs = _note_outputs(args.inputs, args.output)
    notes = [read_audio(path, mono=True, max_seconds=600) for path in args.inputs]  # every file checked first
    model = Timbre.load(args.model, weights=args.weights, device=args.device)
    for path, (audio, sr), target in zip(args.inputs, notes, outputs, strict=True):
        note = model.reconstruct(audio, sr, args.pitch, args.refine_steps, args.listen_steps)
        write_audio(target, note, model.sample_rate)
        print(f"{path} -> {target}")


def cmd_generate(args: argparse.Namespace) -> None:
    """Notes from the latent space: random (seeded) or set by slider values, at given pitches and families."""
    if args.model in ("gan", "cdecoder"):
        return _generate_notes(args)
    from pathlib import Path

    from hummingface.audio import write_audio
    from hummingface.data.gm import FAMILIES
    from hummingface.models.timbre import Timbre, family_index

    if args.latent is not None:
        try:
            sliders = [number(value, "A --latent value", -100, 100) for value in args.latent.split(",")]
        except UserError:
            raise UserError(
                f"--latent {args.latent!r} must be comma-separated numbers within ±100, e.g. 1.5,-0.5,0."
            ) from None
    if args.velocity is not None and not 1 <= args.velocity <= 127:
        raise UserError(f"Velocity {args.velocity} is not a MIDI velocity (1-127).")
    pitches = args.pitch or [60]
    for pitch in pitches:
        if not 0 <= pitch <= 127:
            raise UserError(f"Pitch {pitch} is not a MIDI pitch (0-127).")
    families = [FAMILIES[family_index(family)] for family in args.family] if args.family else [None]
    grid = len(pitches) * len(families) > 1
    target = Path(args.output)
    if not grid and target.suffix.lower() not in (".wav", ".flac"):
        raise UserError(f"-o {target} must end in .wav or .flac for a single note (give a folder for several).")
    if grid and target.suffix:
        raise UserError(f"{len(pitches) * len(families)} notes need a folder for -o, not the file {target}.")
    vibrato = vibrato_from_args(args)
    model = Timbre.load(args.model, weights=args.weights, device=args.device)
    for family in families:
        for pitch in pitches:
            if args.latent is not None:
                latent = model.from_sliders(sliders, base=model.base_latent(family, pitch, args.velocity))
            else:
                latent = model.random_latent(args.seed, family, pitch, args.temperature, args.velocity)
            path = target / f"{family or 'any'}-{pitch:03d}-{args.seed}.wav" if grid else target
            write_audio(path, model.decode(latent, pitch=pitch, vibrato=vibrato), model.sample_rate)
            print(path)



def cmd_export(args: argparse.Namespace) -> None:
    """A design as a playable multisample (SFZ, Decent Sampler, SF2, WAV folder): see hummingface/instruments/."""
    from hummingface.instruments.commands import export_command

    export_command(args)


def cmd_render(args: argparse.Namespace) -> None:
    """MIDI files played with a design, 44.1 kHz stereo WAV: see hummingface/instruments/render.py."""
    from hummingface.instruments.commands import render_command

    render_command(args)


def cmd_name_sliders(args: argparse.Namespace) -> None:
    """Name what each slider of a timbre model does; writes slider_names.json beside its weights."""
    from hummingface.instruments.names import name_sliders, save_names
    from hummingface.models.timbre import Timbre

    model = Timbre.load(args.model, weights=args.weights, device=args.device)
    if model.latent is None or model.folder is None:
        raise UserError(f"The {args.model} checkpoint has no latent.safetensors, so it has no sliders to name.")
    names = name_sliders(model, count=args.bases, seed=args.seed)
    path = save_names(names, model.folder)
    for entry in names["sliders"]:
        print(f"  {entry['slider']:2d} · {entry['label'] or '(no clear effect)'}")
    print(f"Wrote {path}.")

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hummingface", description=__doc__.splitlines()[0])
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

    space = commands.add_parser("space", help="publish the app as a Hugging Face Space (weights stay in --weights)")
    space.add_argument("--repo", required=True, help="org/name of the Space")
    space.add_argument("--weights", required=True, help="org/name[@revision] of the model repo `push` filled")
    space.add_argument("--hardware", help="Space hardware, e.g. cpu-basic, cpu-upgrade, t4-small, zero-a10g")
    space.add_argument("--private", action="store_true", help="create the Space as private")
    space.add_argument("--dry-run", action="store_true", help="list the local files it would upload; send nothing")
    space.set_defaults(func=cmd_space)

    data = commands.add_parser("data", help="render training data (notes or music clips)")
    corpora = data.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    notes = corpora.add_parser("notes", help="NSynth-layout note corpus rendered from a SoundFont")
    notes.add_argument("--soundfont", required=True, help="General MIDI .sf2 (train on FluidR3_GM only)")
    notes.add_argument("--out", required=True, help="corpus root; gets nsynth-{train,valid,test}/")
    notes.add_argument("--limit", type=bounded(int, 1), help="render only this many notes (a seeded random subset)")
    notes.add_argument("--pitches", help="MIDI pitches, e.g. 21-108 or 48,60,72 (default 21-108; 24-96 above 16 kHz)")
    notes.add_argument("--velocities", help="MIDI velocities (default NSynth's five; 50,100,127 above 16 kHz)")
    notes.add_argument("--sample-rate", type=bounded(int, 8000, 96000), default=16000,
                       help="Hz of the notes (default 16000, NSynth's)")
    notes.add_argument("--variants", type=bounded(int, 1, 100), default=3,
                       help="instruments per program: dry + effect chains")
    notes.add_argument("--seed", type=SEED, default=0, help="effects, splits and --limit draw from it (default 0)")
    notes.set_defaults(func=cmd_data)
    music = corpora.add_parser("music", help="10-s 44.1 kHz stereo clips for the upsampler")
    music.add_argument("--out", required=True, help="folder for {train,valid}/ clips and manifest.json")
    music.add_argument("--minutes", type=bounded(float, 0.01, 100000), required=True, help="total length of the corpus")
    music.add_argument("--seed", type=SEED, default=0, help="pieces, patterns and splits draw from it (default 0)")
    music.add_argument("--audio", help="folder of real recordings to cut clips from (at most a third of them)")
    music.add_argument("--soundfont", help="General MIDI SoundFont that plays the music (default: FluidR3_GM)")
    music.set_defaults(func=cmd_data)
    add_train_command(commands)

    upsample = commands.add_parser("upsample", help="8 kHz -> 44.1 kHz music (any rate in, 44.1 kHz out)")
    upsample.add_argument("inputs", nargs="+", metavar="IN", help="audio files; above 8 kHz they are narrowed first")
    upsample.add_argument("-o", "--output", required=True, help="output .wav/.flac for one input, else a folder")
    upsample.add_argument("--mode", choices=["model", "sbr", "sinc"], default="model", help="default: model")
    upsample.add_argument("--bit-depth", type=int, choices=[16, 24], default=16, help="output PCM bits (default 16)")
    upsample.add_argument("--max-minutes", type=bounded(float, 0.001, 10000), default=60.0,
                          help="refuse longer inputs (default 60)")
    upsample.add_argument("--weights", help="org/name[@revision] on the Hub or a folder (default: checkpoints/)")
    upsample.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    upsample.set_defaults(func=cmd_upsample)

    models = ["ae", "vae", "mog-vae", "cvae"]
    reconstruct = commands.add_parser(
        "reconstruct", help="encode and decode notes through a timbre model, played as each recording was")
    reconstruct.add_argument("inputs", nargs="+", metavar="IN", help="audio files (any length and rate)")
    reconstruct.add_argument("-o", "--output", required=True, help="output .wav for one input, else a folder")
    reconstruct.add_argument("--model", default="cvae", help=f"checkpoint name: {', '.join(models)} (default cvae)")
    reconstruct.add_argument("--pitch", type=bounded(int, 0, 127, "a MIDI pitch"),
                             help="MIDI pitch of the inputs for cvae (default: pyin estimate)")
    reconstruct.add_argument("--refine-steps", type=bounded(int, 0, 1000, "a number of steps"), default=REFINE_STEPS,
                             help=f"gradient steps fitting each latent to its note (Timbre.refine; default "
                                  f"{REFINE_STEPS}, ~0.16 s; 0: the encoder's guess alone)")
    reconstruct.add_argument("--listen-steps", type=bounded(int, 0, 1000, "a number of steps"), default=LISTEN_STEPS,
                             help=f"then gradient steps fitting it to how the note sounds through the vocoder "
                                  f"(Timbre.listen; default {LISTEN_STEPS}; 0: none)")
    reconstruct.add_argument("--weights", help="org/name[@revision] on the Hub or a folder (default: checkpoints/)")
    reconstruct.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    reconstruct.set_defaults(func=cmd_reconstruct)

    generate = commands.add_parser("generate", help="notes from a timbre model's latent space or a note generator")
    generate.add_argument("--model", default="cvae",
                          help=f"checkpoint name: {', '.join(models)}, gan, cdecoder (default cvae)")
    generate.add_argument("--pitch", type=bounded(int, 0, 127, "a MIDI pitch"), nargs="+",
                          help="MIDI pitches (default 60)")
    generate.add_argument("--family", nargs="+", help="instrument families: start from their centroids")
    generate.add_argument("--velocity", type=bounded(int, 1, 127, "a MIDI velocity"),
                          help="MIDI velocity 1-127: moves the latent towards its notes")
    generate.add_argument("--latent", help="slider values in std units along the PCA directions, e.g. 1.5,-0.5")
    generate.add_argument("--temperature", type=bounded(float, 0, 100), default=1.0,
                          help="spread of random latents (default 1)")
    generate.add_argument("--seed", type=SEED, default=0, help="seed of the random latent (default 0)")
    add_vibrato_arguments(generate)
    generate.add_argument("-o", "--output", required=True, help="output .wav, or a folder for several notes")
    generate.add_argument("--weights", help="org/name[@revision] on the Hub or a folder (default: checkpoints/)")
    generate.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    generate.set_defaults(func=cmd_generate)

    design_help = {
        "--model": f"checkpoint name: {', '.join(models)}, gan, cdecoder (default cvae)",
        "--latent": "slider values in std units along the PCA directions, e.g. 1.5,-0.5 (timbre models)",
        "--seed": "the note generator's instrument (default 0)",
        "--family": "instrument family: the generator's, or the timbre model's starting centroid",
    }
    export = commands.add_parser("export", help="a design as a multisample: SFZ, Decent Sampler, SF2 or WAVs")
    render = commands.add_parser("render", help="MIDI files played with a design (44.1 kHz stereo WAV)")
    for command in (export, render):
        command.add_argument("--model", default="cvae", help=design_help["--model"])
        command.add_argument("--latent", help=design_help["--latent"])
        command.add_argument("--seed", type=int, default=0, help=design_help["--seed"])
        command.add_argument("--family", help=design_help["--family"])
        add_vibrato_arguments(command)
        command.add_argument("--weights", help="org/name[@revision] on the Hub or a folder (default: checkpoints/)")
        command.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    export.add_argument("--velocity", type=int,
                        help="gan/cdecoder: one velocity layer at V (default 4 layers); others: velocity offset")
    export.add_argument("--pitches", default="24-96", help="lowest-highest sampled MIDI pitch (default 24-96)")
    export.add_argument("--step", type=int, default=3, help="semitones between sampled pitches (default 3)")
    export.add_argument("--format", default="sfz", help="sfz, dspreset, sf2, wav or all (default sfz)")
    export.add_argument("--name", help="instrument name, used in file names (default from the design)")
    export.add_argument("-o", "--output", required=True, help="output folder")
    export.set_defaults(func=cmd_export)
    render.add_argument("songs", nargs="+", metavar="SONG.mid", help="standard MIDI files (up to 30 minutes)")
    render.add_argument("-o", "--output", required=True, help="output .wav for one song, else a folder")
    render.set_defaults(func=cmd_render)
    names = commands.add_parser("name-sliders", help="name what each slider of a timbre model does to the sound")
    names.add_argument("--model", default="cvae", help=f"checkpoint name: {', '.join(models)} (default cvae)")
    names.add_argument("--bases", type=int, default=50, help="random base sounds each slider is moved from (50)")
    names.add_argument("--seed", type=int, default=0, help="seed of the base sounds (default 0)")
    names.add_argument("--weights", help="a checkpoint folder tree (default: checkpoints/)")
    names.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")
    names.set_defaults(func=cmd_name_sliders)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help and --version (0), or argparse's one-line refusal (2)
        return stop.code
    try:
        args.func(args)
    except UserError as error:
        print(f"hummingface {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hummingface {args.command}: interrupted.", file=sys.stderr)
        return 130
    return 0


def _stop(signum: int, frame: object) -> None:
    # `kill PID` (SIGTERM) would end the process at once and orphan its worker processes (`data notes` renders in
    # a pool, which would go on rendering); as an interrupt it unwinds like Ctrl-C and the pool is terminated.
    raise KeyboardInterrupt


def run() -> None:
    """The console script and ``python -m hummingface``: :func:`main`, with ``kill`` taken as Ctrl-C."""
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main())


if __name__ == "__main__":
    run()
