"""Pieces every training loop here shares: the learning-rate schedule and Adam's state in safetensors."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file


def cosine_schedule(fraction: float, final_ratio: float) -> float:
    """Learning-rate multiplier at ``fraction`` (0-1) of the budget: 1 -> ``final_ratio`` along a half cosine."""
    fraction = min(max(fraction, 0.0), 1.0)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * fraction))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's state as flat named tensors (safetensors holds nothing else), for resuming."""
    tensors = {}
    for index, values in optimizer.state_dict()["state"].items():
        for name, value in values.items():
            tensors[f"{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Restore the state :func:`optimizer_tensors` saved to ``path`` into ``optimizer``."""
    tensors = load_file(str(path))
    state = optimizer.state_dict()
    restored: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        restored.setdefault(int(index), {})[name] = value
    state["state"] = restored
    optimizer.load_state_dict(state)
