"""Numbers typed by users, checked once: argparse ``type=`` functions for the CLI and :func:`number` for the app.

A value that is not a number, not finite, or outside its range is refused with one sentence (argparse turns
the ``ArgumentTypeError`` into ``hummingface CMD: error: argument --x: ...``; the app gets a
:class:`~hummingface.errors.UserError`), never a traceback deep inside numpy or torch.
"""

from __future__ import annotations

import argparse
import math

from hummingface.constants import VIBRATO_MAX_CENTS, VIBRATO_RATES_HZ
from hummingface.errors import UserError

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes at most a signed 64-bit value


def number(value: object, name: str, low: float | None = None, high: float | None = None, integer: bool = False):
    """``value`` as a float (or an int with ``integer``) within ``[low, high]``.

    Raises:
        UserError: not a number (``None``, text, a list), not finite, not whole when ``integer``, out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{name} must be a number, not {type(value).__name__}.")
    try:
        result = float(value)
    except ValueError:
        raise UserError(f"{name} must be a number, not {str(value)[:40]!r}.") from None
    if not math.isfinite(result):
        raise UserError(f"{name} must be a finite number, not {value!r}.")
    if integer:
        if result != int(result):
            raise UserError(f"{name} must be a whole number, not {value!r}.")
        result = int(value) if isinstance(value, int) else int(result)
    if (low is not None and result < low) or (high is not None and result > high):
        raise UserError(f"{name} {value!r} is outside {_span(low, high)}.")
    return result


def bounded(kind: type, low: float | None = None, high: float | None = None, what: str | None = None):
    """An argparse ``type=``: an int or float within ``[low, high]``; ``what`` names it in the refusal, e.g.
    ``"a MIDI pitch"`` gives ``'200' is not a MIDI pitch (0-127)``."""

    def parse(text: str):
        value = number_or_error(text, kind)
        if (low is not None and value < low) or (high is not None and value > high):
            if what:
                raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({_span(low, high)}).")
            raise argparse.ArgumentTypeError(f"{text!r} is outside {_span(low, high)}.")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def number_or_error(text: str, kind: type):
    """``text`` as ``kind`` (int or float, finite), else an ``ArgumentTypeError`` with one sentence."""
    try:
        return number(text, "the value", integer=kind is int)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error).replace("the value ", "")) from None


SEED = bounded(int, 0, MAX_SEED, "a seed")


def add_vibrato_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vibrato CENTS`` and ``--vibrato-rate HZ``, for every command that plays a design."""
    parser.add_argument("--vibrato", type=bounded(float, 0.0, VIBRATO_MAX_CENTS, "a depth in cents"), default=0.0,
                        help="vibrato depth: the pitch swings this many cents either way (default 0: none)")
    parser.add_argument("--vibrato-rate", type=bounded(float, *VIBRATO_RATES_HZ, "a rate in Hz"), default=5.5,
                        help="vibrato rate in swings per second (default 5.5)")


def vibrato_from_args(args: argparse.Namespace):
    """The :class:`~hummingface.vibrato.Vibrato` of :func:`add_vibrato_arguments`' flags."""
    from hummingface.vibrato import Vibrato  # torch: not for a command that only prints its help

    return Vibrato(args.vibrato, args.vibrato_rate)


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line, ``hummingface CMD: error: ...`` and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _span(low: float | None, high: float | None) -> str:
    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if low is not None and high is not None:
        return f"{show(low)}-{show(high)}"
    return f">= {show(low)}" if low is not None else f"<= {show(high)}"
