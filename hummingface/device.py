"""Choosing the torch device: CUDA, then Apple MPS, then the CPU, unless told otherwise."""

from __future__ import annotations

import os

import torch

from hummingface.errors import UserError

DEVICE_ENV = "HUMMINGFACE_DEVICE"


def available_devices() -> list[str]:
    """Device kinds usable in this process, best first."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def get_device(name: str | torch.device | None = None) -> torch.device:
    """Resolve a device request.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``. ``None``
            reads ``$HUMMINGFACE_DEVICE`` and falls back to ``"auto"`` (cuda -> mps -> cpu).

    Raises:
        UserError: the name is unknown or that device is not available here.
    """
    if isinstance(name, torch.device):
        return name
    requested = (name or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    devices = available_devices()
    if requested == "auto":
        return torch.device(devices[0])
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UserError(f"Unknown device {requested!r}; use auto, {', '.join(devices)}.") from None
    if device.type not in devices:
        raise UserError(f"Device {requested!r} is not available here; use auto, {', '.join(devices)}.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"Device {requested!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s).")
    return device
