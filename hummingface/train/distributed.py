"""Data parallelism as torchrun launches it: one process per device, each with its share of the global batch.

``torchrun --standalone --nproc-per-node=N -m hummingface train MODEL …`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in each process; without them the run is a single process and nothing here communicates.
Processes join over gloo on the CPU and NCCL on CUDA. Models are wrapped in ``DistributedDataParallel``,
which broadcasts rank 0's weights when it wraps them and averages gradients during ``backward``, so equal
shares of one global batch give the gradient of the whole batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import torch
from torch import distributed as dist
from torch import nn

from hummingface.device import get_device
from hummingface.errors import UserError


@dataclasses.dataclass(frozen=True)
class Distributed:
    """This process's place in the run: ``rank`` of ``world_size`` processes, training on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_environment(cls, device: str | None = None) -> Distributed:
        """Join the process group torchrun describes in the environment (a single process if it describes none).

        Under torchrun each process takes the GPU of its ``LOCAL_RANK`` when ``device`` resolves to CUDA, else
        the CPU: gloo cannot move MPS tensors.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        chosen = get_device(device)
        if world_size == 1:
            return cls(device=chosen)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if chosen.type == "cuda":
            chosen = torch.device("cuda", local_rank)
            torch.cuda.set_device(chosen)
        else:
            chosen = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        return cls(rank=rank, world_size=world_size, device=chosen)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes weights, optimizer state, reports and logs."""
        return self.rank == 0

    def local_batch(self, global_batch: int) -> int:
        """Each process's share of ``global_batch``.

        Raises:
            UserError: the batch does not split evenly (unequal shares would weigh the processes unequally).
        """
        if global_batch % self.world_size:
            raise UserError(
                f"--batch-size {global_batch} does not split evenly over {self.world_size} processes; "
                f"give a multiple of {self.world_size}."
            )
        return global_batch // self.world_size

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in ``DistributedDataParallel`` when there are several processes, else itself."""
        if self.world_size == 1 or not any(p.requires_grad for p in module.parameters()):
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. builds a cache on disk), then the others run it (and read it)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true on every process if it is true on any: how processes stop at the same step."""
        if self.world_size == 1:
            return flags
        values = torch.tensor([float(flag) for flag in flags], device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return tuple(bool(value) for value in values.tolist())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the processes (every process must pass the same keys)."""
        if self.world_size == 1 or not values:
            return values
        names = sorted(values)
        tensor = torch.tensor([values[name] for name in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {name: value / self.world_size for name, value in zip(names, tensor.tolist(), strict=True)}

    def close(self) -> None:
        """Leave the process group (the launcher ends the processes)."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
