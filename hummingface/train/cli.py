"""``python -m hummingface train MODEL …``: one subcommand per model, each with only the flags it uses.

A flag another model takes is refused (one sentence, exit status 2) rather than silently ignored. Every model
takes the engine's flags (budget, global batch, seed, precision, resume); the rest map onto its train config
or its model config. Heavy imports happen inside :func:`cmd_train`, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from hummingface.cli_args import SEED, bounded
from hummingface.errors import UserError

TIMBRE_MODELS = ("ae", "vae", "mog-vae", "cvae")
MODELS = (*TIMBRE_MODELS, "gan", "cdecoder", "upsampler", "family-classifier", "vocoder")
# Flag destinations that are named differently in the train configs.
CONFIG_NAMES = {"lr": "learning_rate", "kl_warmup": "kl_warmup_steps", "d_lr": "d_learning_rate"}
MODEL_FLAGS = ("latent_size", "channels", "pitch_temperature", "width", "blocks")  # -> the model's own config
# argparse types that refuse, in one sentence, what no run could use (a count below 1, a negative rate, nan).
COUNT = bounded(int, 1)
AMOUNT = bounded(float, 0)


class ModelParser(argparse.ArgumentParser):
    """A ``train MODEL`` parser: any argument it does not know, and any other mistake, ends in one sentence."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            model = self.prog.split()[-1]
            flag = next((extra for extra in extras if extra.startswith("-")), extras[0])
            self.error(f"{flag} is not an option of the {model} model (see --help for the ones it takes).")
        return namespace, extras

    def error(self, message: str):
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """Register ``train`` and its model subcommands on the top-level parser's ``commands``."""
    train = commands.add_parser("train", help="train a model (one engine for all; torchrun for several processes)")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL", parser_class=ModelParser)
    helps = {
        "ae": "note autoencoder", "vae": "variational note autoencoder", "mog-vae": "VAE with a per-family prior",
        "cvae": "pitch-conditional VAE (the Designer's default)", "gan": "note GAN (mixture prior, AC-GAN)",
        "cdecoder": "labels-to-note decoder", "upsampler": "8 -> 44.1 kHz band extension",
        "family-classifier": "instrument-family judge of the generators",
        "vocoder": "44.1 kHz harmonic-plus-noise vocoder of every note model's mel spectrograms",
    }
    for name in MODELS:
        parser = models.add_parser(name, help=helps[name], description=f"Train the {name} ({helps[name]}).")
        _engine_flags(parser, name)
        if name in TIMBRE_MODELS:
            parser.add_argument("--latent-size", type=COUNT, help="latent dimensions (default 64)")
            parser.add_argument("--channels", help="conv channels at 128..8 frames, five numbers")
            parser.add_argument("--valid-notes", type=COUNT, help="validation notes per checkpoint (default 2048)")
            parser.add_argument("--init", help="start from this checkpoint folder's weights, e.g. checkpoints/cvae")
            parser.add_argument("--recolour-db", type=bounded(float, 0, 48),
                                help="hear half of the training notes through a random colour of up to this many dB "
                                "a band (default 0: off)")
            parser.add_argument("--blend-share", type=bounded(float, 0, 1),
                                help="share of the training notes heard layered with another at a harmonic pitch "
                                "(default 0: off)")
            if name != "ae":
                parser.add_argument("--beta", type=AMOUNT, help="final KL weight (default 0.1)")
                parser.add_argument("--kl-warmup", type=bounded(int, 0),
                                    help="steps over which beta rises from 0 (default 2000)")
            if name != "cvae":
                parser.add_argument("--pitch-temperature", type=bounded(float, 0.01),
                                    help="softmax temperature of the pitch read-out when decoding (default 1.3)")
        elif name in ("gan", "cdecoder"):
            parser.add_argument("--channels", help="conv channels at 128..8 frames, five numbers")
            parser.add_argument("--valid-notes", type=COUNT, help="validation notes per checkpoint (default 512)")
            parser.add_argument("--init", help="cvae checkpoint to warm-start from (default checkpoints/cvae; 'none')")
            if name == "gan":
                parser.add_argument("--latent-size", type=COUNT, help="latent dimensions (default 64)")
                parser.add_argument("--d-lr", type=AMOUNT, help="the discriminator's learning rate (default 2e-4)")
                parser.add_argument("--train-decoder", action="store_true", default=None,
                                    help="the game also tunes the decoder (default: the mixture prior only)")
        elif name == "upsampler":
            parser.add_argument("--crop-seconds", type=bounded(float, 0.1, 60),
                                help="length of each training crop (default 1.5)")
            parser.add_argument("--valid-clips", type=COUNT, help="validation clips scored per checkpoint (default 12)")
            parser.add_argument("--width", type=COUNT, help="channels of the conv trunk (default 160)")
            parser.add_argument("--blocks", type=COUNT, help="ConvNeXt blocks (default 6)")
        elif name == "vocoder":
            parser.add_argument("--timbre", help="note model whose reconstructions it also trains on "
                                "(default checkpoints/cvae; 'none': true spectrograms only)")
            parser.add_argument("--decoded-share", type=bounded(float, 0, 1),
                                help="share of training notes given as the --timbre model's reconstruction (0.5)")
            parser.add_argument("--loss-floor-db", type=bounded(float, 10, 200),
                                help="floor the loss's log spectra this far under each excerpt's peak, as LSD_dB does "
                                "(default: no floor)")
            parser.add_argument("--crop-seconds", type=bounded(float, 0.1, 4),
                                help="length of the excerpt rendered per note and step (default 1.0)")
            parser.add_argument("--width", type=COUNT, help="channels of the control network (default 192)")
            parser.add_argument("--blocks", type=COUNT, help="dilated residual blocks (default 8)")
            parser.add_argument("--valid-notes", type=COUNT, help="validation notes per checkpoint (default 24)")
            parser.add_argument("--init", help="start from this vocoder checkpoint's weights, e.g. checkpoints/vocoder")
        parser.set_defaults(func=cmd_train)


def _engine_flags(parser: argparse.ArgumentParser, name: str) -> None:
    data = "folder with train/, valid/ (and test/) clips" if name == "upsampler" else (
        "NSynth-layout root" + (", or any folder of audio" if name in TIMBRE_MODELS else ""))
    parser.add_argument("--data", help=f"{data} (default: data/music or data/notes-fluidr3)")
    parser.add_argument("--out", required=True, help=f"checkpoint folder, e.g. checkpoints/{name}")
    if name != "upsampler":
        parser.add_argument("--epochs", type=COUNT, help="passes over the training notes")
    parser.add_argument("--max-steps", type=COUNT, help="stop after this many steps")
    parser.add_argument("--minutes", type=AMOUNT, help="stop after this much training time (the LR anneals over it)")
    parser.add_argument("--batch-size", type=COUNT, help="global batch: split evenly over the processes")
    parser.add_argument("--lr", type=AMOUNT, help="peak learning rate")
    parser.add_argument("--seed", type=SEED, help="seed for init, data order and noise (default 0)")
    parser.add_argument("--limit", type=COUNT, help="use only this many items per split (smoke tests)")
    parser.add_argument("--checkpoint-minutes", type=AMOUNT, help="save this often")
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="bf16: forward passes under autocast")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--threads", type=COUNT, help="CPU threads for torch (per process)")
    parser.add_argument("--device", help="auto, cpu, cuda or mps (default: $HUMMINGFACE_DEVICE or auto)")


def task_from_args(args: argparse.Namespace):
    """The :class:`~hummingface.train.engine.Task` the parsed ``train MODEL`` arguments describe.

    With ``--resume`` the saved ``train_config.json`` is the base and only the flags given change it.
    """
    import dataclasses
    from pathlib import Path

    config_class, model_config_class, task_class = _classes(args.model)
    skip = {"model", "out", "resume", "threads", "device", "func", "command", *MODEL_FLAGS}
    given = {CONFIG_NAMES.get(key, key): value for key, value in vars(args).items()
             if key not in skip and value is not None}
    if isinstance(given.get("init"), str) and given["init"].lower() == "none":
        given["init"] = None
    if args.model in TIMBRE_MODELS:
        given["model"] = args.model
    out = Path(args.out)
    if args.resume and (out / "train_config.json").is_file():
        config = dataclasses.replace(config_class.load(out), **given)
    else:
        config = config_class(**given)
    try:
        model_config = model_config_class(**_model_changes(args, model_config_class))
    except ValueError as error:
        raise UserError(str(error)) from None
    return task_class(config, model_config)


def _model_changes(args: argparse.Namespace, model_config_class) -> dict:
    changes = {}
    if getattr(args, "latent_size", None) is not None:
        changes["latent_size"] = args.latent_size
    if getattr(args, "channels", None):
        try:
            changes["channels"] = tuple(int(c) for c in args.channels.split(","))
        except ValueError:
            raise UserError(f"--channels {args.channels!r} must be comma-separated integers.") from None
        if min(changes["channels"]) < 1:
            raise UserError(f"--channels {args.channels!r} must all be at least 1.")
    if getattr(args, "pitch_temperature", None) is not None:
        changes["pitch_temperature"] = args.pitch_temperature
    if getattr(args, "width", None) is not None:
        changes["width"] = args.width
    if getattr(args, "blocks", None) is not None:
        changes["dilations"] = (model_config_class.dilations * 4)[: args.blocks]
    return changes


def _classes(model: str) -> tuple[type, type, type]:
    """(train config, model config, task) classes of ``model``."""
    if model in TIMBRE_MODELS:
        from hummingface.models.autoencoder import AutoencoderConfig
        from hummingface.train.autoencoder import AutoencoderTask, AutoencoderTrainConfig

        return AutoencoderTrainConfig, AutoencoderConfig, AutoencoderTask
    if model == "gan":
        from hummingface.models.generator import GeneratorConfig
        from hummingface.train.gan import GanTask, GanTrainConfig

        return GanTrainConfig, GeneratorConfig, GanTask
    if model == "cdecoder":
        from hummingface.models.generator import GeneratorConfig
        from hummingface.train.cdecoder import CDecoderTask, CDecoderTrainConfig

        return CDecoderTrainConfig, GeneratorConfig, CDecoderTask
    if model == "upsampler":
        from hummingface.models.upsampler import UpsamplerConfig
        from hummingface.train.upsampler import UpsamplerTask, UpsamplerTrainConfig

        return UpsamplerTrainConfig, UpsamplerConfig, UpsamplerTask
    if model == "vocoder":
        from hummingface.models.vocoder import VocoderConfig
        from hummingface.train.vocoder import VocoderTask, VocoderTrainConfig

        return VocoderTrainConfig, VocoderConfig, VocoderTask
    from hummingface.models.family_classifier import FamilyClassifierConfig
    from hummingface.train.classifier import ClassifierTask, ClassifierTrainConfig

    return ClassifierTrainConfig, FamilyClassifierConfig, ClassifierTask


def cmd_train(args: argparse.Namespace) -> None:
    """Train one model through the engine; under torchrun rank 0 alone prints the summary."""
    import torch

    from hummingface.train.engine import train

    if args.threads:
        torch.set_num_threads(args.threads)
    task = task_from_args(args)
    # Progress bars on a terminal only: piped into a log (a cluster job) they would bury the summary.
    metrics = train(task, args.out, resume=args.resume, device=args.device, progress=sys.stderr.isatty())
    if "valid" not in metrics:  # not rank 0
        return
    figures = ", ".join(f"{name} {value:.4g}" for name, value in metrics["valid"].items())
    sbr = metrics.get("valid_sbr")
    baseline = f" (sbr: {', '.join(f'{k} {v:.4g}' for k, v in sbr.items())})" if sbr else ""
    skipped = f"; skipped {metrics['skipped_files']} unusable files" if metrics.get("skipped_files") else ""
    print(
        f"{metrics['model']}: {metrics['step']} steps ({metrics['epochs']:.2f} epochs) in "
        f"{metrics['train_minutes']:.1f} min on {metrics['processes']} process(es); valid {figures}{baseline}"
        f"{skipped}; wrote {args.out}."
    )
