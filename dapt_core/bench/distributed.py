"""One process or `torchrun`: the rank, world size and device of this process, and the collective
steps a benchmark needs (barrier, broadcast from rank 0)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import ConfigError


# ------------------------------------------------------------------------------------- distribution
@dataclass
class Distributed:
    rank: int
    world: int
    device: object  # torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def share(self, value):
        """Rank 0's `value` on every rank (a picklable object)."""
        if self.world == 1:
            return value
        import torch.distributed as dist
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


@contextmanager
def distributed(device: str | None = None):
    """Join torchrun's process group when its environment says there are several processes.

    NCCL on cuda:LOCAL_RANK where CUDA is available (and not --device cpu), else gloo on the CPU. A group
    someone else initialised is used as is; one initialised here is destroyed at the end.
    """
    import torch
    import torch.distributed as dist

    from ..engine.device import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if dist.is_available() and dist.is_initialized():
        yield Distributed(dist.get_rank(), dist.get_world_size(), _rank_device(device))
        return
    if world <= 1:
        yield Distributed(0, 1, pick_device(device))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cpu = device is not None and torch.device(device).type == "cpu"
    if torch.cuda.is_available() and not wants_cpu:
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
        dist.init_process_group("nccl", device_id=target)
    else:
        if device is not None and torch.device(device).type not in ("cpu",):
            raise ConfigError(f"--device {device} was asked for under torchrun, but no CUDA GPU is visible; "
                              f"use --device cpu (gloo) or run on a GPU machine.")
        target = torch.device("cpu")
        dist.init_process_group("gloo")
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), target)
    finally:
        dist.destroy_process_group()


def _rank_device(device: str | None):
    import torch

    from ..engine.device import pick_device

    chosen = pick_device(device)
    if chosen.type == "cuda" and chosen.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen
